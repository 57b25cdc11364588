/*
 * prog_replyclose: a server reads a client's bytes, writes its reply and
 * close()s while the client keeps sending a byte at a time. TCP's write()
 * sends the reply at once, its close() the FIN, and the client's next
 * bytes draw a reset after them: the client reads the whole reply every
 * time (then EOF or ECONNRESET). 300 rounds, each its own connection.
 *
 * Under the shim, before the reset was made to wait for what the server
 * wrote (core/conn_input.c: new bytes for a released connection), a
 * client datagram that reached the server's engine in the turn that read
 * its close() drew the reset before the reply and the FIN went out: the
 * client read EOF with nothing, 1 to 24 rounds of 300.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (120 s) fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_replyclose";

#define ROUNDS 300
static const char REPLY[] = "RESPONSE";
#define REPLY_LEN (sizeof REPLY - 1)

/* The server's side of a round: the client's first byte, a while of its
 * trickle, all of it read, then the reply and close(). */
static void *server(void *arg)
{
    int s = *(int *)arg;
    char b[4096];
    if (read(s, b, 1) != 1)
        failf(__LINE__, "server: the first byte: %s", strerror(errno));
    usleep(2000);
    SYS(fcntl(s, F_SETFL, O_NONBLOCK));
    while (read(s, b, sizeof b) > 0)
        ;
    if (write(s, REPLY, REPLY_LEN) != (ssize_t)REPLY_LEN)
        failf(__LINE__, "server: the reply: %s", strerror(errno));
    SYS(close(s));
    return NULL;
}

/* One round; 1 if the client read the whole reply. */
static int round_trip(int *ended_err)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, server, &a) == 0, "pthread_create");
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    char got[64];
    size_t n = 0;
    int end = 0; /* the read that ended it: 0 (EOF) or its errno */
    double until = now_s() + 10;
    for (;;) {
        /* the client's trickle: its errors after the reset are TCP's too */
        (void)send(c, "x", 1, MSG_NOSIGNAL);
        ssize_t r = read(c, got + n, sizeof got - n);
        if (r > 0) {
            n += (size_t)r;
        } else if (r == 0 || errno != EAGAIN) {
            end = r == 0 ? 0 : errno; /* the end: EOF, or the reset */
            break;
        }
        CHECK(now_s() < until, "no reply and no end within 10 s (%zu bytes)", n);
        usleep(20);
    }
    if (n > REPLY_LEN || (n == REPLY_LEN && memcmp(got, REPLY, REPLY_LEN)))
        failf(__LINE__, "the reply read as %zu other bytes", n);
    CHECK(end == 0 || end == ECONNRESET || end == EPIPE, "the end read as %s", strerror(end));
    if (end)
        (*ended_err)++;
    SYS(close(c));
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    return n == REPLY_LEN;
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 120);
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    close(c);
    close(a);
    int whole = 0, reset = 0;
    for (int i = 0; i < ROUNDS; i++)
        whole += round_trip(&reset);
    CHECK(whole == ROUNDS, "the reply lost in %d rounds of %d", ROUNDS - whole, ROUNDS);
    printf("ok: the reply read whole in %d rounds of %d (%d then an error, the others EOF)\n", whole,
           ROUNDS, reset);
    return 0;
}
