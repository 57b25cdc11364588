/*
 * prog_smallstack: socket work in threads made with small stacks.
 *
 *   prog_smallstack           run every check below; exit 0 iff all hold
 *
 * glibc carves a thread's static TLS (that of the program and of every
 * library loaded at start, an LD_PRELOAD'ed one too) out of the stack the
 * creator asked for: pthread_create fails with EINVAL when that stack
 * cannot hold it. Programs make threads with small stacks on purpose
 * (MariaDB's timer thread: 64 KiB, "Can't initialize timers" then abort).
 * A preloaded library must not take that room away.
 *
 * For IPv4, then IPv6 (the first round before anything started the shim's
 * engine, the second after), two threads with stacks of PTHREAD_STACK_MIN +
 * 16 KiB: one listens on loopback (port chosen by the kernel), accepts,
 * reads 64 KiB and writes them back; the other connects, writes the 64 KiB
 * and reads them back. Each pthread_create must succeed, and the bytes must
 * come back intact.
 *
 * Prints one "ok:" line per check and "transport: KIND" for the accepted
 * and connected fds (tcp = a kernel TCP socket). Exit 0 iff every check
 * held; 1 with a "FAIL:" line otherwise; 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

#define WATCHDOG_S 60
#define EVENT_MS 10000 /* bound on every wait for bytes */
#define LEN 65536

const char *prog_name = "prog_smallstack";

/* The threads' buffers: static, as a thread of 32 KiB cannot hold them. */
static unsigned char srv_buf[LEN], cli_buf[LEN];

typedef struct round {
    int family;
    int portpipe[2]; /* the listener's port, from the server to the client */
    const char *srv_transport, *cli_transport;
} round;

static void *server(void *arg)
{
    round *r = arg;
    struct sockaddr_storage ss;
    socklen_t len;
    int l = bound_loopback(r->family, &ss, &len);
    SYS(listen(l, 4));
    unsigned port = port_of(&ss);
    write_exact(r->portpipe[1], &port, sizeof port);
    int a = accept_ready(l, EVENT_MS);
    r->srv_transport = fd_transport(a);
    read_exact(a, srv_buf, LEN, EVENT_MS);
    write_exact(a, srv_buf, LEN);
    SYS(close(a));
    SYS(close(l));
    return NULL;
}

static void *client(void *arg)
{
    round *r = arg;
    unsigned port;
    read_exact(r->portpipe[0], &port, sizeof port, EVENT_MS);
    struct sockaddr_storage ss;
    socklen_t len = loopback(r->family, port, &ss);
    int c = socket(r->family, SOCK_STREAM, 0);
    SYS(c);
    SYS(connect(c, (struct sockaddr *)&ss, len));
    r->cli_transport = fd_transport(c);
    for (size_t i = 0; i < LEN; i++)
        cli_buf[i] = pattern_byte(i);
    write_exact(c, cli_buf, LEN);
    memset(cli_buf, 0, LEN);
    read_exact(c, cli_buf, LEN, EVENT_MS);
    for (size_t i = 0; i < LEN; i++)
        CHECK(cli_buf[i] == pattern_byte(i), "%s: byte %zu came back as %u, want %u",
              fam_name(r->family), i, cli_buf[i], pattern_byte(i));
    SYS(close(c));
    return NULL;
}

static pthread_t start(void *(*fn)(void *), round *r, size_t stack, const char *what)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    int err = pthread_attr_setstacksize(&attr, stack);
    CHECK(err == 0, "pthread_attr_setstacksize(%zu): %s", stack, strerror(err));
    pthread_t t;
    err = pthread_create(&t, &attr, fn, r);
    pthread_attr_destroy(&attr);
    /* EINVAL: the stack cannot hold the static TLS of the libraries loaded */
    CHECK(err == 0, "%s: pthread_create with a %zu-byte stack: %s", what, stack, strerror(err));
    return t;
}

static void one_round(int family, size_t stack)
{
    round r = {.family = family};
    SYS(pipe(r.portpipe));
    pthread_t s = start(server, &r, stack, "server thread");
    pthread_t c = start(client, &r, stack, "client thread");
    int err = pthread_join(c, NULL);
    CHECK(err == 0, "pthread_join: %s", strerror(err));
    err = pthread_join(s, NULL);
    CHECK(err == 0, "pthread_join: %s", strerror(err));
    SYS(close(r.portpipe[0]));
    SYS(close(r.portpipe[1]));
    printf("ok: %s: threads with %zu-byte stacks listened, accepted, connected and echoed %d bytes\n",
           fam_name(family), stack, LEN);
    printf("transport: %s\n", r.srv_transport);
    printf("transport: %s\n", r.cli_transport);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, WATCHDOG_S);
    /* a run-time value in glibc >= 2.34 (sysconf) */
    size_t stack = (size_t)PTHREAD_STACK_MIN + 16384;
    one_round(AF_INET, stack);  /* the first sockets: the engine starts here */
    /* with the engine running (IPv4 again where IPv6 is off) */
    one_round(family_usable(AF_INET6, "IPv6: a second IPv4 round instead") ? AF_INET6 : AF_INET,
              stack);
    return 0;
}
