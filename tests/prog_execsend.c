/*
 * prog_execsend PORT_A PORT_B: a connection inherited over exec keeps its
 * bytes. The first image connects to PORT_A, writes "A1:" and execs itself
 * with the fd; the new image (whose own connection IDs and slots start
 * afresh, as the old image's did) sets an option on the inherited fd,
 * connects to PORT_B and writes "B1:", then, with both engines asleep,
 * "meant-for-A" to the inherited fd. The listeners (nc, t_prog_appsend.sh)
 * must read "A1:meant-for-A" and "B1:". Under the shim, the app-thread send
 * once took the new image's connection for the inherited one (same slot
 * and id) and B read "B1:meant-for-A".
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_execsend";

int main(int argc, char **argv)
{
    watchdog(60);
    if (argc == 3) {
        int fd = connect_lo((unsigned)atoi(argv[1]));
        write_exact(fd, "A1:", 3);
        char s[16];
        snprintf(s, sizeof s, "%d", fd);
        execl("/proc/self/exe", argv[0], argv[1], argv[2], s, (char *)NULL);
        CHECK(0, "exec: %s", strerror(errno));
    }
    CHECK(argc == 4, "usage: prog_execsend PORT_A PORT_B");
    int fd = atoi(argv[3]);
    printf("transport: %s\n", fd_transport(fd));
    int one = 1;
    SYS(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    int fb = connect_lo((unsigned)atoi(argv[2]));
    printf("transport: %s\n", fd_transport(fb));
    write_exact(fb, "B1:", 3);
    usleep(300000); /* the engines asleep */
    write_exact(fd, "meant-for-A", 11);
    usleep(100000);
    close(fb);
    close(fd);
    printf("ok\n");
    return 0;
}
