/* The descriptors a connect needs, kept in reserve, and the connect the
 * supervisor still cannot carry (supervise.h).
 *
 * A connect under the supervisor takes fds of ours, not the program's: a
 * pidfd, a copy of the program's socket, and the shim's own (a UDP socket,
 * a bridge's two ends). The engine's closing connections hold theirs a
 * while after the program closed (TIME_WAIT's drain), so a program that
 * dials fast at a low limit (Go's TestTCPSpuriousConnSetupCompletion at
 * `ulimit -n 2048`) had ours run out: pidfd_open, pidfd_getfd or the
 * shim's socket() said EMFILE and the connect was continued, plain TCP
 * with no line and no counter, with a key too. Now: the soft limit is
 * the hard one, and RESERVE fds are held, given up when a connect meets
 * EMFILE (then it tries again at once), taken again when there are fds to
 * spare; short still, the connect waits up to SHORT_WAIT_MS for the
 * engine to give some back. A connect that still cannot be carried goes over kernel TCP only as the
 * preload's fallback (shim/engine/fallback.c) lets a connect go: where
 * the fallback is on (RUDP_FALLBACK=tcp, the default without a key), said
 * at warn once per destination and counted (RUDP_STATS, rudp-stat);
 * where it is off (the keyed default), it fails with ENOBUFS, said at
 * warn once per destination too, and counted. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

/* Enough for one connect's fds: a pidfd, the copy, the shim's UDP socket,
 * its bridge's two ends, the fallback's copy of the socket. */
#define RESERVE 8
/* How long a connect short of fds waits for some, looking every
 * SHORT_NAP_MS: the engine's closing connections give theirs back within
 * a few round trips (TIME_WAIT's drain is 3 PTO), so a storm of dials
 * finds some (10,000 at ulimit -n 256: none left rudp, where 8,500 did
 * with the reserve alone). A connect() that returns that much later is
 * what a busy host's TCP gives too; kernel TCP in its place is not. */
#define SHORT_WAIT_MS 100
#define SHORT_NAP_MS 2

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int spare[RESERVE];
static int nspare;

/* counted for escape_stats */
static _Atomic uint64_t n_released, n_naps, n_tcp, n_failed;

void reserve_init(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    reserve_refill();
}

void reserve_refill(void)
{
    pthread_mutex_lock(&mu);
    while (nspare < RESERVE) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            break;
        spare[nspare++] = fd;
    }
    pthread_mutex_unlock(&mu);
}

int reserve_release(int err)
{
    if (err != EMFILE && err != ENFILE)
        return 0;
    pthread_mutex_lock(&mu);
    int had = nspare;
    while (nspare > 0)
        close(spare[--nspare]);
    pthread_mutex_unlock(&mu);
    if (had)
        atomic_fetch_add(&n_released, 1);
    return had > 0;
}

const char *short_of(int err)
{
    switch (err) {
    case EMFILE: return "no file descriptor left in rudp-supervise";
    case ENFILE: return "no file descriptor left in the system";
    case ENOMEM: return "no memory left in rudp-supervise";
    case ENOBUFS: return "no buffer or connection slot left in rudp-supervise";
    default: return NULL;
    }
}

int short_again(int err, long long *until, struct sup *s, uint64_t id)
{
    if (!short_of(err))
        return 0;
    long long now = mono_ms();
    if (*until == 0) {
        *until = now + SHORT_WAIT_MS;
        if (reserve_release(err))
            return 1; /* at once: the reserve is ours */
    }
    if (now >= *until || !notif_valid(s->lfd, id))
        return 0;
    struct timespec t = {.tv_sec = 0, .tv_nsec = SHORT_NAP_MS * 1000000L};
    nanosleep(&t, NULL);
    atomic_fetch_add(&n_naps, 1);
    return 1;
}

/* Whether the preload's fallback is on in this process: the rule of
 * shim/base/config.c (RUDP_FALLBACK, else on without RUDP_KEY_FILE). The
 * shim validated both at its start: a bad value stopped us there. */
static int fallback_on(void)
{
    const char *v = getenv("RUDP_FALLBACK");
    if (v && *v)
        return v[0] == 't';
    v = getenv("RUDP_KEY_FILE");
    return !(v && *v);
}

/* Destinations said at warn: the last TOLD of them (fallback.c's rule). */
enum { TOLD = 64 };
static struct sockaddr_storage told[TOLD];
static unsigned told_next;

static int first_telling(const struct sockaddr_storage *to)
{
    pthread_mutex_lock(&mu);
    int first = 1;
    for (int i = 0; i < TOLD && first; i++)
        if (memcmp(&told[i], to, sizeof *to) == 0)
            first = 0;
    if (first)
        told[told_next++ % TOLD] = *to;
    pthread_mutex_unlock(&mu);
    return first;
}

/* "a.b.c.d:port" or "[v6]:port" */
static void format_addr(const struct sockaddr_storage *to, char *out, size_t len)
{
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)to;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)to;
    int six = to->ss_family == AF_INET6;
    char ip[INET6_ADDRSTRLEN] = "?";
    inet_ntop(to->ss_family, six ? (const void *)&v6->sin6_addr : (const void *)&v4->sin_addr,
              ip, sizeof ip);
    snprintf(out, len, six ? "[%s]:%d" : "%s:%d", ip, ntohs(six ? v6->sin6_port : v4->sin_port));
}

int escape(const struct sockaddr_storage *to, socklen_t len, int err, const char *what)
{
    struct sockaddr_storage key;
    memset(&key, 0, sizeof key);
    memcpy(&key, to, len < sizeof key ? len : sizeof key);
    char peer[80];
    format_addr(&key, peer, sizeof peer);
    int tcp = fallback_on();
    atomic_fetch_add(tcp ? &n_tcp : &n_failed, 1);
    if (!first_telling(&key))
        return tcp ? 0 : ENOBUFS;
    if (tcp)
        warn("connect to %s: over kernel TCP, not rudp: %s (%s). Said once per destination, "
             "counted in its stats; RUDP_FALLBACK=none fails such connects instead",
             peer, what, strerrorname_np(err) ? strerrorname_np(err) : strerror(err));
    else
        warn("connect to %s: failed (ENOBUFS), not sent over kernel TCP (RUDP_FALLBACK=none%s): "
             "%s (%s). Said once per destination, counted in its stats",
             peer, getenv("RUDP_FALLBACK") ? "" : ", a key's default", what,
             strerrorname_np(err) ? strerrorname_np(err) : strerror(err));
    return tcp ? 0 : ENOBUFS;
}

void escape_answer(struct sup *s, const struct seccomp_notif *req,
                   const struct sockaddr_storage *to, socklen_t len, int err, const char *what)
{
    /* Short before the socket could be looked at (no pidfd, no copy): an
     * inet address may be TCP's, taken as such; another family is not
     * ours to carry. */
    int e = to->ss_family == AF_INET || to->ss_family == AF_INET6 ? escape(to, len, err, what)
                                                                   : 0;
    reserve_refill();
    respond(s, req->id, e == 0, 0, e);
}

void escape_stats(void (*line)(void *, const char *), void *arg)
{
    uint64_t tcp = atomic_load(&n_tcp), failed = atomic_load(&n_failed);
    uint64_t released = atomic_load(&n_released);
    char text[256];
    snprintf(text, sizeof text,
             "rudp-supervise: connects it could not carry (no file descriptor left, or memory) "
             "%llu: over kernel TCP %llu, failed with ENOBUFS %llu; reserve of %d fds given "
             "up %llu times; waits of %d ms for fds %llu",
             (unsigned long long)(tcp + failed), (unsigned long long)tcp,
             (unsigned long long)failed, RESERVE, (unsigned long long)released, SHORT_NAP_MS,
             (unsigned long long)atomic_load(&n_naps));
    line(arg, text);
}
