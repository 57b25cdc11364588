/*
 * test_engineloop.c: an engine thread's loop (shim/engine/engine.c) run
 * with the memory front end (state/front_mem.c) as the application's file
 * table, on simulated time (lib_clock.c), with a UDP socket of the test's
 * own on loopback as the peer that never answers. (This path reaches no
 * application end through the front end: the connection fails before it
 * is established; the record is there as connect() leaves it.) A connect handed to the engine as interpose/connect.c
 * hands it (shim_engine_connect) sends its first datagram at once; while
 * the clock stands still the engine sends nothing more, whatever real time
 * passes; each time the test moves the clock and wakes the engine, the
 * handshake's timers fire as that time says: a retransmission, then, past
 * the connect timeout, the connection ends in ETIMEDOUT, which the slot
 * and the application's end of the bridge both report.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimtest.h"

#include "engine/engine.h"

#define T0 RUDP_SEC(1000)

static void setup(void)
{
    shimtest_setup();
    cr_assert(shim_front_set(&shim_front_memory) == 0);
    shimtest_clock_set(T0);
}

TestSuite(engineloop, .init = setup, .timeout = 60);

/* A datagram on fd within ms of real time: its length, or -1. */
static ssize_t datagram_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1)
        return -1;
    char buf[65536];
    return recv(fd, buf, sizeof buf, 0);
}

/* The engine sleeps until its next deadline by the clock it read; a
 * command (here one that changes nothing: uncork a connection never
 * corked) wakes it to read the clock again. */
static void wake(uint64_t id)
{
    shim_engine_set_cork(id, 0);
}

static int udp_socket(struct sockaddr_in *bound)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    socklen_t len = sizeof *bound;
    cr_assert(getsockname(fd, (struct sockaddr *)bound, &len) == 0);
    return fd;
}

Test(engineloop, handshake_timers_follow_the_simulated_clock)
{
    struct sockaddr_in peer_addr, client_addr;
    int peer = udp_socket(&peer_addr);
    int udp = udp_socket(&client_addr);
    cr_assert(connect(udp, (struct sockaddr *)&peer_addr, sizeof peer_addr) == 0);
    int sv[2];
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);

    cr_assert(shim_engine_start() == 0);
    shim_connect_req req;
    memset(&req, 0, sizeof req);
    req.udp_fd = udp;
    req.efd = sv[1];
    shim_to_rudp_addr((const struct sockaddr *)&peer_addr, &req.peer);
    req.id = shim_engine_new_id();
    req.slot = shim_slot_alloc(req.id);
    cr_assert(req.slot != UINT32_MAX);
    req.app_fd = -1;
    req.tcp_fd = -1;
    req.swap_fd = -1;
    rudp_config_default(&req.cfg);
    req.cfg.connect_timeout = RUDP_SEC(5);
    /* the application's socket, as the memory front end records it */
    shim_fd rec = {.fd = sv[0], .kind = SHIM_FD_BRIDGED, .id = req.id, .slot = req.slot};
    shim_fd_put(&rec);
    cr_assert(shim_engine_connect(&req) == 0);

    /* the first datagram leaves at once */
    ssize_t first = datagram_within(peer, 5000);
    cr_assert(first > 0, "the handshake's first datagram reaches the peer");
    shim_slot *s = shim_slot_get(req.slot, req.id);
    cr_assert_not_null(s);
    cr_assert_eq(atomic_load(&s->state), SHIM_SLOT_CONNECTING);

    /* the clock stands still: five times the real time in which the
     * real clock brings the retransmission (0.3 s) passes, and nothing
     * more is sent */
    wake(req.id);
    cr_assert_eq(datagram_within(peer, 1500), -1,
                 "no retransmission while the simulated clock stands still");

    /* three seconds later by the clock: the handshake is sent again */
    shimtest_clock_advance(RUDP_SEC(3));
    wake(req.id);
    ssize_t again = datagram_within(peer, 5000);
    cr_assert_eq(again, first, "the same handshake again once its timer is due (%zd, %zd)",
                 again, first);
    cr_assert_eq(atomic_load(&s->state), SHIM_SLOT_CONNECTING);

    /* past the connect timeout: the connection ends in ETIMEDOUT */
    shimtest_clock_advance(RUDP_SEC(10));
    wake(req.id);
    struct pollfd p = {.fd = sv[0], .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1, "the application's end hears the end");
    cr_assert_eq(atomic_load(&s->state), SHIM_SLOT_FAILED);
    cr_assert_eq(atomic_load(&s->so_error), ETIMEDOUT);
    char b;
    cr_assert_leq(read(sv[0], &b, 1), 0, "no byte, only the end");

    shim_fd got;
    cr_assert_eq(shim_fd_get(sv[0], &got), 1, "the record is the memory front end's");
    cr_assert_eq(got.id, req.id);
    close(peer);
    close(sv[0]);
}

/* However far the deadline, none included, a wait ends within
 * SHIM_WAIT_MAX: the engine's timers run at least that often (twice an
 * engine slept past its connection's SYN timer: the notes of issue 46). */
Test(engineloop, a_wait_ends_within_its_bound_whatever_the_deadline)
{
    rudp_time now = T0;
    cr_assert_eq(shim_engine_wait_end(RUDP_TIME_NEVER, now), now + SHIM_WAIT_MAX);
    cr_assert_eq(shim_engine_wait_end(now + RUDP_SEC(3600), now), now + SHIM_WAIT_MAX);
    cr_assert_eq(shim_engine_wait_end(now + RUDP_MS(300), now), now + RUDP_MS(300));
    cr_assert_eq(shim_engine_wait_end(now - RUDP_MS(1), now), now - RUDP_MS(1));
    cr_assert_eq(shim_engine_wait_end(now + SHIM_WAIT_MAX, now), now + SHIM_WAIT_MAX);
}

/* Commands queued from several threads at once: the engine reads its
 * doorbell before it takes its queue, and a command queued behind one
 * that rang does not ring again (engines.c, push_wake_locked). Each must
 * still be run: commands run only when the doorbell is read, so one left
 * behind would wait for another command's ring, which never comes here
 * (and the clock stands still: no handshake is sent again). The test
 * reads the datagrams while the threads connect, so that its socket's
 * buffer (rmem_max caps SO_RCVBUF) never holds them all. */
enum { RING_THREADS = 4, RING_EACH = 40 };

typedef struct ringer {
    struct sockaddr_in peer;
    int fds[RING_EACH][3]; /* udp, app end, engine end */
    int failed;
} ringer;

static void *ring_connects(void *arg)
{
    ringer *r = arg;
    for (int i = 0; i < RING_EACH; i++) {
        struct sockaddr_in mine;
        int udp = udp_socket(&mine);
        int sv[2];
        if (connect(udp, (struct sockaddr *)&r->peer, sizeof r->peer) != 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
            r->failed++;
            continue;
        }
        shim_connect_req req;
        memset(&req, 0, sizeof req);
        req.udp_fd = udp;
        req.efd = sv[1];
        shim_to_rudp_addr((const struct sockaddr *)&r->peer, &req.peer);
        req.id = shim_engine_new_id();
        req.slot = shim_slot_alloc(req.id);
        req.app_fd = req.tcp_fd = req.swap_fd = -1;
        rudp_config_default(&req.cfg);
        req.cfg.connect_timeout = RUDP_SEC(60);
        shim_fd rec = {.fd = sv[0], .kind = SHIM_FD_BRIDGED, .id = req.id, .slot = req.slot};
        shim_fd_put(&rec);
        if (req.slot == UINT32_MAX || shim_engine_connect(&req) != 0)
            r->failed++;
        r->fds[i][0] = udp;
        r->fds[i][1] = sv[0];
        r->fds[i][2] = sv[1];
    }
    return NULL;
}

Test(engineloop, commands_queued_at_once_are_all_run_without_another_wake_up)
{
    struct sockaddr_in peer_addr;
    int peer = udp_socket(&peer_addr);
    int big = 4 << 20;
    setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    cr_assert(shim_engine_start() == 0);
    static ringer r[RING_THREADS];
    pthread_t t[RING_THREADS];
    for (int i = 0; i < RING_THREADS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].peer = peer_addr;
        cr_assert(pthread_create(&t[i], NULL, ring_connects, &r[i]) == 0);
    }
    int got = 0;
    while (got < RING_THREADS * RING_EACH && datagram_within(peer, 3000) > 0)
        got++;
    for (int i = 0; i < RING_THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i].failed, 0, "thread %d's connects were all handed over", i);
    }
    cr_assert_eq(got, RING_THREADS * RING_EACH,
                 "every connect's first datagram, none 3 s after the one before");
    close(peer);
}
