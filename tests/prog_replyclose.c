/*
 * prog_replyclose: a server reads a client's bytes, writes its reply and
 * close()s while the client keeps sending a byte at a time. TCP's write()
 * sends the reply at once, its close() the FIN, and the client's next
 * bytes draw a reset after them: the client reads the whole reply every
 * time (then EOF or ECONNRESET). 300 rounds, each its own connection,
 * of an 8-byte reply.
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
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_replyclose";

/* A round's reply: `len` bytes of pattern_byte(). */
static size_t reply_len;
static unsigned char *reply;

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
    SYS(fcntl(s, F_SETFL, 0)); /* the whole reply in one write, as a server's */
    if (write(s, reply, reply_len) != (ssize_t)reply_len)
        failf(__LINE__, "server: the reply: %s", strerror(errno));
    SYS(close(s));
    return NULL;
}

/* One round; 1 if the client read the whole reply. */
static int round_trip(unsigned char *got, int *ended_err)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, server, &a) == 0, "pthread_create");
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    size_t n = 0;
    int end = 0; /* the read that ended it: 0 (EOF) or its errno */
    double until = now_s() + 10;
    for (;;) {
        /* the client's trickle: its errors after the reset are TCP's too */
        (void)send(c, "x", 1, MSG_NOSIGNAL);
        ssize_t r = read(c, got + n, reply_len + 1 - n);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0 || errno != EAGAIN) {
            end = r == 0 ? 0 : errno; /* the end: EOF, or the reset */
            break;
        }
        CHECK(now_s() < until, "no reply and no end within 10 s (%zu bytes)", n);
        usleep(20);
    }
    CHECK(n <= reply_len, "%zu bytes read, more than the reply's %zu", n, reply_len);
    for (size_t i = 0; i < n; i++)
        CHECK(got[i] == reply[i], "the reply's byte %zu differs", i);
    CHECK(end == 0 || end == ECONNRESET || end == EPIPE, "the end read as %s", strerror(end));
    if (end)
        (*ended_err)++;
    SYS(close(c));
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    return n == reply_len;
}

/* rounds rounds with a reply of len bytes: every one read whole. */
static void rounds_of(int rounds, size_t len)
{
    reply_len = len;
    reply = malloc(len);
    unsigned char *got = malloc(len + 1);
    CHECK(reply && got, "malloc");
    for (size_t i = 0; i < len; i++)
        reply[i] = pattern_byte(i);
    int whole = 0, reset = 0;
    for (int i = 0; i < rounds; i++)
        whole += round_trip(got, &reset);
    CHECK(whole == rounds, "a %zu-byte reply cut short in %d rounds of %d", len, rounds - whole,
          rounds);
    printf("ok: a %zu-byte reply read whole in %d rounds of %d (%d then an error, the others "
           "EOF)\n",
           len, whole, rounds, reset);
    free(reply);
    free(got);
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
    rounds_of(300, 8);
    /* Not a reply past the client's first window (64 KiB): kernel TCP's
     * own cut 2 rounds of 100 of a 100,000-byte one under load (two busy
     * loops), so it is no reference there; the sim's tests check ours
     * (test_conn.c: reset_for_unread_data_follows_the_whole_reply). */
    return 0;
}
