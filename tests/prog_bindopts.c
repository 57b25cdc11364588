/*
 * prog_bindopts: the options and addresses that decide where a socket's
 * packets go, as TCP answers them (a helper's hunt, 2026-11-29).
 *
 *   prog_bindopts DOWN_IF ADD_CMD
 *
 * Run in a network namespace of the test's own (t_prog_bindopts.sh), with
 * lo up, an interface DOWN_IF that is down, and ADD_CMD a shell command
 * that gives lo the address 10.199.0.50.
 *
 *   device     a client bound to DOWN_IF (SO_BINDTODEVICE) connects to
 *              127.0.0.1: ENETUNREACH, as TCP (the shim ignored the option
 *              and connected over lo)
 *   freebind   a listener with IP_FREEBIND on 10.199.0.50, not yet an
 *              address of the host, listens; once ADD_CMD ran a client
 *              reaches it (the shim's listen() said EADDRNOTAVAIL)
 *   broadcast  connect() to 127.255.255.255: ENETUNREACH (the shim said
 *              EACCES, UDP's answer)
 *   mapped     a listener on ::ffff:0.0.0.0: the connection accepted from
 *              127.0.0.1 is named ::ffff:127.0.0.1 (the shim named it by
 *              the wildcard)
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_bindopts";

static void device_case(const char *dev)
{
    int l = listener_lo(0, 8);
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    SYS(getsockname(l, (struct sockaddr *)&a, &al));
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    SYS(setsockopt(c, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev) + 1));
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    CHECK(r < 0 && errno == ENETUNREACH,
          "device: a client bound to %s (down) connected to 127.0.0.1: %s, not ENETUNREACH", dev,
          r == 0 ? "0" : strerror(errno));
    close(c);
    close(l);
    printf("ok: device: a client bound to a down interface says ENETUNREACH\n");
}

static void freebind_case(const char *add)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    SYS(l);
    setsockopt_int(l, IPPROTO_IP, IP_FREEBIND, 1);
    struct sockaddr_in a = ipv4_addr("10.199.0.50", 0);
    SYS(bind(l, (struct sockaddr *)&a, sizeof a));
    CHECK(listen(l, 8) == 0, "freebind: listen() on an address not yet here: %s", strerror(errno));
    socklen_t al = sizeof a;
    SYS(getsockname(l, (struct sockaddr *)&a, &al));
    CHECK(system(add) == 0, "freebind: the command adding the address failed: %s", add);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&a, sizeof a));
    printf("transport: %s\n", fd_transport(c));
    int s = accept_ready(l, 5000);
    write_exact(c, "f", 1);
    char b;
    read_exact(s, &b, 1, 5000);
    close(s);
    close(c);
    close(l);
    printf("ok: freebind: the listener listened before its address came, and took a client\n");
}

static void broadcast_case(void)
{
    int c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(c);
    struct sockaddr_in a = ipv4_addr("127.255.255.255", 9);
    int r = connect(c, (struct sockaddr *)&a, sizeof a);
    CHECK(r < 0 && errno == ENETUNREACH, "broadcast: connect: %s, not ENETUNREACH",
          r == 0 ? "0" : strerror(errno));
    close(c);
    printf("ok: broadcast: connect() to a broadcast address says ENETUNREACH\n");
}

static void mapped_case(void)
{
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    SYS(l);
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    SYS(inet_pton(AF_INET6, "::ffff:0.0.0.0", &a.sin6_addr) == 1 ? 0 : -1);
    SYS(bind(l, (struct sockaddr *)&a, sizeof a));
    SYS(listen(l, 8));
    socklen_t al = sizeof a;
    SYS(getsockname(l, (struct sockaddr *)&a, &al));
    int c = connect_lo(ntohs(a.sin6_port));
    int s = accept_ready(l, 5000);
    struct sockaddr_in6 n;
    socklen_t nl = sizeof n;
    SYS(getsockname(s, (struct sockaddr *)&n, &nl));
    char txt[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &n.sin6_addr, txt, sizeof txt);
    CHECK(!strcmp(txt, "::ffff:127.0.0.1"), "mapped: the accepted connection is named %s", txt);
    close(s);
    close(c);
    close(l);
    printf("ok: mapped: a listener on ::ffff:0.0.0.0 names its connection ::ffff:127.0.0.1\n");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(60);
    CHECK(argc == 3, "usage: prog_bindopts DOWN_IF ADD_CMD");
    device_case(argv[1]);
    freebind_case(argv[2]);
    broadcast_case();
    mapped_case();
    return 0;
}
