/*
 * prog_outq: SIOCOUTQ as delivery feedback (the chat server's receipts):
 * once the peer's reply to our bytes has been read, those bytes are
 * acknowledged, and SIOCOUTQ must not count them any more.
 *
 *   prog_outq [N]          N rounds (default 500); exit 0 iff all hold
 *
 * A thread is the peer: it reads 1000 bytes and answers one byte. The main
 * thread writes 1000 bytes, reads the answer, then asks SIOCOUTQ. Over
 * kernel TCP the answer's segment carries the ACK of the request, and the
 * ACK is processed before the answer can be read: SIOCOUTQ is 0 every
 * time. Under the shim the reply's datagram carries the ACK likewise; the
 * engine must publish it before it hands the reply to the application.
 *
 * Then SIOCOUTQ counts bytes: with a peer that reads nothing, we write
 * until EAGAIN, then one byte at a time while the kernel takes them. Each
 * byte may add one to SIOCOUTQ, never more (acknowledgements only lower
 * it). Over kernel TCP that holds by construction; under the shim the
 * bytes still in the unix bridge were counted as AF_UNIX's SIOCOUTQ counts
 * them, memory: each small write added its buffer's overhead (~640 per
 * one-byte write), and a chat server's receipts missed acknowledged lines.
 *
 * Prints "ok:" and "transport: KIND"; exit 1 with a "FAIL:" line otherwise,
 * 3 if the watchdog (60 s) fired.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_outq";

static int peer_fd, rounds;

static void *peer(void *arg)
{
    (void)arg;
    char buf[1000];
    for (int i = 0; i < rounds; i++) {
        read_exact(peer_fd, buf, sizeof buf, 10000);
        CHECK(write(peer_fd, "q", 1) == 1, "peer write: %s", strerror(errno));
    }
    return NULL;
}

static int outq(int fd)
{
    int q = -1;
    SYS(ioctl(fd, SIOCOUTQ, &q));
    return q;
}

/* The peer (peer_fd) reads nothing from now on. */
static void bytes_counted(int c)
{
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    long total = fill_until_refused(c);
    int q0 = outq(c), n = 0;
    CHECK(q0 <= total, "SIOCOUTQ %d after %ld bytes written", q0, total);
    for (; n < 200 && write(c, "y", 1) == 1; n++)
        ;
    int q1 = outq(c);
    CHECK(q1 - q0 <= n, "%d one-byte writes to a peer that reads nothing raised SIOCOUTQ by %d "
                        "(%d -> %d): it counts more than bytes", n, q1 - q0, q0, q1);
    printf("ok: SIOCOUTQ counts bytes: %ld written, %d queued; %d one-byte writes more, +%d\n",
           total, q0, n, q1 - q0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    watchdog(60);
    rounds = argc > 1 ? atoi(argv[1]) : 500;
    int c;
    loopback_pair(AF_INET, &c, &peer_fd);
    printf("transport: %s\n", fd_transport(c));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, peer, NULL) == 0, "pthread_create");
    char msg[1000];
    memset(msg, 'x', sizeof msg);
    int stale = 0, worst = 0;
    for (int i = 0; i < rounds; i++) {
        CHECK(write(c, msg, sizeof msg) == (ssize_t)sizeof msg, "write: %s", strerror(errno));
        char r;
        read_exact(c, &r, 1, 10000);
        int q = -1;
        SYS(ioctl(c, SIOCOUTQ, &q));
        if (q) {
            stale++;
            if (q > worst)
                worst = q;
        }
    }
    pthread_join(t, NULL);
    CHECK(stale == 0, "%d of %d replies were read while SIOCOUTQ still counted the bytes "
                      "they answered (up to %d)", stale, rounds, worst);
    printf("ok: %d replies read, SIOCOUTQ 0 after each\n", rounds);
    bytes_counted(c);
    return 0;
}
