/*
 * udpio: shim/engine/udpio.c's batch. A datagram built where
 * shim_udpio_room said (the core's DATA packets: enginestart.c's
 * on_tx_room) is queued without a copy and leaves as built, among
 * datagrams queued by copy, with or without GSO trains, and also when the
 * batch is full and flushed between the room and the send, where the bytes
 * built at the old end of the batch move to its start; and a batch full of
 * bytes is sent before the room is given, which then is its start again.
 * Each flush is read back as it comes, so the default receive buffer is
 * enough (no privilege needed).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/udpio.h"
#include "shimtest.h"

TestSuite(udpio, .init = shimtest_setup, .timeout = 20);

enum { DLEN = 1400 };

typedef struct pair {
    int tx, rx;
} pair;

/* A UDP socket connected to another on loopback, which reads what it
 * sends. Each flush of a batch arrives whole in its receive buffer before
 * sendmmsg() returns (loopback delivers in the sender's call): 64 messages
 * of at most 1,400 bytes, well within the default 208 KiB. */
static pair pair_up(void)
{
    pair p;
    p.rx = socket(AF_INET, SOCK_DGRAM, 0);
    p.tx = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(p.rx >= 0 && p.tx >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    cr_assert(bind(p.rx, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(p.rx, (struct sockaddr *)&a, &al) == 0);
    cr_assert(connect(p.tx, (struct sockaddr *)&a, sizeof a) == 0);
    return p;
}

static uint8_t byte_of(int i, size_t k)
{
    return (uint8_t)(i * 31 + (int)k * 7 + 1);
}

/* Datagram i's length, of `full` bytes or every tenth short (a short one
 * ends a GSO train). */
static size_t len_of(int i, size_t full)
{
    return i % 10 == 9 ? 300 + (size_t)i : full;
}

/* Reads what p.rx holds, checking each datagram against the next expected
 * one (*next); returns how many it read. */
static int drain(pair p, int *next)
{
    static uint8_t got[65536];
    int read = 0;
    ssize_t n;
    while ((n = recv(p.rx, got, sizeof got, MSG_DONTWAIT)) >= 0) {
        int i = (*next)++;
        cr_assert(eq(sz, (size_t)n, len_of(i, DLEN)), "datagram %d: %zd bytes", i, n);
        for (size_t k = 0; k < (size_t)n; k++)
            cr_assert(eq(u8, got[k], byte_of(i, k)), "datagram %d byte %zu", i, k);
        read++;
    }
    return read;
}

/* Queues `count` datagrams on p.tx, every other one built in place (`every`
 * 2) or all of them (`every` 1), the rest copied from a buffer of ours,
 * flushing after each `flush_every` (0: only when the batch fills); reads
 * what each flush sent as it goes, in order, each byte checked. */
static void send_and_check(int offload, int every, int count, int flush_every)
{
    pair p = pair_up();
    shim_udpio *u = shim_udpio_new(offload);
    cr_assert_not_null(u);
    shim_udpio_setup(u, p.tx);
    static uint8_t own[DLEN];
    uint64_t in_place = 0;
    int next = 0;
    for (int i = 0; i < count; i++) {
        size_t len = len_of(i, DLEN);
        uint8_t *b = own;
        if (i % every == 0) {
            b = shim_udpio_room(u, DLEN);
            cr_assert_not_null(b);
            in_place++;
        }
        for (size_t k = 0; k < len; k++)
            b[k] = byte_of(i, k);
        shim_udpio_send(u, p.tx, 1, NULL, 0, NULL, b, len);
        if (flush_every && (i + 1) % flush_every == 0)
            shim_udpio_flush(u);
        drain(p, &next);
    }
    shim_udpio_flush(u);
    drain(p, &next);
    cr_assert(eq(int, next, count), "%d of %d datagrams arrived", next, count);
    cr_assert(eq(u64, shim_udpio_stats_get(u)->datagrams_out, (uint64_t)count));
    cr_assert(gt(u64, in_place, 0));
    if (offload && shim_udpio_gso_on(u))
        cr_assert(gt(u64, shim_udpio_stats_get(u)->trains, 0));
    shim_udpio_free(u);
    close(p.tx);
    close(p.rx);
}

/* Without GSO each datagram is a message of its own: the 65th fills the
 * batch (64 messages), which a send flushes after the room was given. */
Test(udpio, datagrams_built_in_place_leave_as_built_one_message_each)
{
    send_and_check(0, 1, 150, 0);
    send_and_check(0, 2, 150, 0);
}

/* With GSO, trains of 9 full datagrams and a short one; flushed every 30
 * (a whole batch of trains would be 640 datagrams at once). */
Test(udpio, datagrams_built_in_place_leave_as_built_in_gso_trains)
{
    send_and_check(1, 1, 150, 30);
    send_and_check(1, 2, 150, 30);
}

/* 40,000-byte datagrams built in place: the 14th passes the batch's 512
 * KiB, so the room flushes the 13 before it and is the batch's start
 * again; nothing is read back (the 520 KB flushed at once would want a
 * receive buffer past the default): the send count says it. */
Test(udpio, a_batch_full_of_bytes_is_sent_before_the_room_is_given)
{
    pair p = pair_up();
    shim_udpio *u = shim_udpio_new(0);
    cr_assert_not_null(u);
    shim_udpio_setup(u, p.tx);
    uint8_t *first = shim_udpio_room(u, 40000);
    cr_assert_not_null(first);
    for (int i = 0; i < 13; i++) {
        uint8_t *b = shim_udpio_room(u, 40000);
        cr_assert(eq(ptr, b, first + (size_t)i * 40000));
        memset(b, i, 40000);
        shim_udpio_send(u, p.tx, 1, NULL, 0, NULL, b, 40000);
    }
    cr_assert(eq(u64, shim_udpio_stats_get(u)->send_calls, 0)); /* all queued */
    cr_assert(eq(ptr, shim_udpio_room(u, 40000), first)); /* flushed for the 14th */
    cr_assert(gt(u64, shim_udpio_stats_get(u)->send_calls, 0));
    shim_udpio_free(u);
    close(p.tx);
    close(p.rx);
}

/* The room is at the batch's end, and a full batch is flushed before it is
 * given: never past the batch's buffer, however much is queued. */
Test(udpio, the_room_follows_what_is_queued_and_a_full_batch_is_flushed_first)
{
    pair p = pair_up();
    shim_udpio *u = shim_udpio_new(0);
    cr_assert_not_null(u);
    shim_udpio_setup(u, p.tx);
    uint8_t *first = shim_udpio_room(u, DLEN);
    cr_assert_not_null(first);
    memset(first, 1, 100);
    shim_udpio_send(u, p.tx, 1, NULL, 0, NULL, first, 100);
    cr_assert(eq(ptr, shim_udpio_room(u, DLEN), first + 100));
    cr_assert_null(shim_udpio_room(u, (size_t)1 << 30)); /* larger than the batch */
    shim_udpio_flush(u);
    cr_assert(eq(ptr, shim_udpio_room(u, DLEN), first)); /* empty again */
    shim_udpio_free(u);
    close(p.tx);
    close(p.rx);
}

/* A datagram's kernel receive time (SO_TIMESTAMPNS) on shim_now's clock
 * (rxmod.c's moderation at the sender times its ACKs so): one sent, then
 * read 5 ms later, is timed between its send and its read, at least the
 * 5 ms it waited unread before the read; a stamp later than the wall
 * clock's read is timed at the read; one past SHIM_ARRIVAL_MAX before it
 * (a wall clock stepped meanwhile) no earlier than that; and none before
 * the floor (when the socket was last found empty). */
Test(udpio, a_datagram_is_timed_by_its_kernel_receive_time)
{
    pair p = pair_up();
    shim_udpio *u = shim_udpio_new(0);
    cr_assert_not_null(u);
    int on = 1;
    cr_assert(eq(int, setsockopt(p.rx, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on), 0));
    /* The kernel turns its receive stamps on in a work item of its own
     * when the first socket asks (net_enable_timestamp): until then a
     * datagram is stamped when it is read. Sent again, each read 5 ms
     * later, until one is stamped when it came (at most 200 tries). */
    rudp_time sent = 0, now = 0, at = 0;
    uint64_t stamp = 0, wall = 0;
    for (int tries = 0; tries < 200; tries++) {
        sent = shim_now();
        cr_assert(eq(sz, (size_t)send(p.tx, "x", 1, 0), 1));
        struct timespec five = {.tv_nsec = 5000000};
        nanosleep(&five, NULL);
        uint8_t buf[16], ctl[192];
        struct iovec v = {.iov_base = buf, .iov_len = sizeof buf};
        struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl,
                           .msg_controllen = sizeof ctl};
        cr_assert(eq(sz, (size_t)recvmsg(p.rx, &m, MSG_DONTWAIT), 1));
        wall = shim_udpio_wall_ns();
        now = shim_now();
        uint32_t drops = 0;
        shim_udpio_rx_meta(u, &m, &drops, &stamp);
        cr_assert(gt(u64, stamp, 0), "the kernel stamped it");
        at = shim_udpio_arrival(stamp, wall, now, 0);
        if (at + RUDP_MS(5) <= now)
            break;
    }
    cr_assert(ge(u64, at, sent), "not before it was sent (%lld ns)", (long long)(at - sent));
    cr_assert(le(u64, at + RUDP_MS(5), now), "it waited 5 ms unread: timed %lld ns before the read",
              (long long)(now - at));
    /* stamped after the wall clock's read: the read's time */
    cr_assert(eq(u64, shim_udpio_arrival(wall + 1, wall, now, 0), now));
    cr_assert(eq(u64, shim_udpio_arrival(0, wall, now, 0), now), "no stamp: the read's time");
    /* past SHIM_ARRIVAL_MAX before it: no earlier than that */
    cr_assert(eq(u64, shim_udpio_arrival(stamp - RUDP_SEC(3600), wall, now, 0),
                 now - SHIM_ARRIVAL_MAX));
    /* never before the socket was last found empty, nor after the read */
    cr_assert(eq(u64, shim_udpio_arrival(stamp, wall, now, at + 1000), at + 1000));
    cr_assert(eq(u64, shim_udpio_arrival(stamp, wall, now, now + 1000), now));
    shim_udpio_free(u);
    close(p.tx);
    close(p.rx);
}

/* Control data another party shapes (a datagram's cmsgs are the kernel's,
 * but their lengths are read, not trusted): a stamp, a GRO size or a drop
 * count whose cmsg_len is shorter than its data is not read. */
Test(udpio, a_cmsg_shorter_than_its_data_is_not_read)
{
    shim_udpio *u = shim_udpio_new(0);
    cr_assert_not_null(u);
    union {
        struct cmsghdr align;
        uint8_t b[192];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m = {.msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_TIMESTAMPNS;
    c->cmsg_len = CMSG_LEN(4); /* a timespec is 16 bytes */
    struct timespec ts = {.tv_sec = 1, .tv_nsec = 2};
    memcpy(CMSG_DATA(c), &ts, sizeof ts);
    m.msg_controllen = CMSG_SPACE(sizeof ts);
    uint32_t drops = 0;
    uint64_t stamp = 7;
    cr_assert(eq(u32, shim_udpio_rx_meta(u, &m, &drops, &stamp), 0));
    cr_assert(eq(u64, stamp, 0), "a short stamp is none");
    /* the same, whole: read */
    c->cmsg_len = CMSG_LEN(sizeof ts);
    shim_udpio_rx_meta(u, &m, &drops, &stamp);
    cr_assert(eq(u64, stamp, 1000000002ull));
    /* a drop count too short to hold one: not counted */
    c->cmsg_type = SO_RXQ_OVFL;
    c->cmsg_len = CMSG_LEN(2);
    uint32_t ten = 10;
    memcpy(CMSG_DATA(c), &ten, sizeof ten);
    shim_udpio_rx_meta(u, &m, &drops, &stamp);
    cr_assert(eq(u32, drops, 0));
    cr_assert(eq(u64, shim_udpio_stats_get(u)->rx_dropped, 0));
    c->cmsg_len = CMSG_LEN(sizeof ten);
    shim_udpio_rx_meta(u, &m, &drops, &stamp);
    cr_assert(eq(u32, drops, 10), "whole: counted");
    shim_udpio_free(u);
}
