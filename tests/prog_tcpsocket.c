/*
 * prog_tcpsocket: makes one socket and closes it, printing nothing, so
 * that a test sees only what the shim writes.
 *
 *   prog_tcpsocket [tcp|tcp6|udp]   (default tcp)
 *
 * Exits 0 when socket() succeeds, else with socket()'s errno (EACCES: 13),
 * so a test can tell a refused TCP socket from any other failure.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "tcp";
    int domain = strcmp(kind, "tcp6") == 0 ? AF_INET6 : AF_INET;
    int type = strcmp(kind, "udp") == 0 ? SOCK_DGRAM : SOCK_STREAM;
    int fd = socket(domain, type, 0);
    if (fd < 0)
        return errno > 0 && errno < 126 ? errno : 125;
    close(fd);
    return 0;
}
