/*
 * udpio: shim/engine/udpio.c's batch. A datagram built where
 * shim_udpio_room said (the core's DATA packets: enginestart.c's
 * on_tx_room) is queued without a copy and leaves as built, among
 * datagrams queued by copy, with or without GSO trains, and also when the
 * batch is full and flushed between the room and the send, where the bytes
 * built at the old end of the batch move to its start.
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
 * sends; its receive buffer is asked for 4 MiB (what the kernel gave:
 * got_rcvbuf). */
static int got_rcvbuf;
static pair pair_up(void)
{
    pair p;
    p.rx = socket(AF_INET, SOCK_DGRAM, 0);
    p.tx = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(p.rx >= 0 && p.tx >= 0);
    int big = 4 << 20;
    if (setsockopt(p.rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        setsockopt(p.rx, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    socklen_t gl = sizeof got_rcvbuf;
    getsockopt(p.rx, SOL_SOCKET, SO_RCVBUF, &got_rcvbuf, &gl);
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

/* Queues `count` datagrams of `full` bytes on p.tx, every other one built
 * in place (`every` 2) or all of them (`every` 1), the rest copied from a
 * buffer of ours; then reads them all back in order and checks each byte. */
static void send_and_check(int offload, int every, int count, size_t full)
{
    pair p = pair_up();
    if ((size_t)got_rcvbuf < 2 * (size_t)count * (full + 1024))
        cr_skip_test("skip: the receive buffer holds %d bytes, too few for the test's "
                     "%d datagrams at once (SO_RCVBUFFORCE needs CAP_NET_ADMIN)",
                     got_rcvbuf, count);
    shim_udpio *u = shim_udpio_new(offload);
    cr_assert_not_null(u);
    shim_udpio_setup(u, p.tx);
    static uint8_t own[65536];
    uint64_t in_place = 0;
    for (int i = 0; i < count; i++) {
        size_t len = len_of(i, full);
        uint8_t *b = own;
        if (i % every == 0) {
            b = shim_udpio_room(u, full);
            cr_assert_not_null(b);
            in_place++;
        }
        for (size_t k = 0; k < len; k++)
            b[k] = byte_of(i, k);
        shim_udpio_send(u, p.tx, 1, NULL, 0, NULL, b, len);
    }
    shim_udpio_flush(u);
    cr_assert(eq(u64, shim_udpio_stats_get(u)->datagrams_out, (uint64_t)count));
    cr_assert(gt(u64, in_place, 0));
    static uint8_t got[65536];
    for (int i = 0; i < count; i++) {
        ssize_t n = recv(p.rx, got, sizeof got, MSG_DONTWAIT);
        cr_assert(eq(sz, (size_t)n, len_of(i, full)), "datagram %d: %zd bytes", i, n);
        for (size_t k = 0; k < (size_t)n; k++)
            cr_assert(eq(u8, got[k], byte_of(i, k)), "datagram %d byte %zu", i, k);
    }
    cr_assert(eq(sz, recv(p.rx, got, sizeof got, MSG_DONTWAIT), -1)); /* no more */
    shim_udpio_free(u);
    close(p.tx);
    close(p.rx);
}

/* Without GSO each datagram is a message of its own: the 65th fills the
 * batch (64 messages), which a send flushes after the room was given. */
Test(udpio, datagrams_built_in_place_leave_as_built_one_message_each)
{
    send_and_check(0, 1, 150, DLEN);
    send_and_check(0, 2, 150, DLEN);
}

Test(udpio, datagrams_built_in_place_leave_as_built_in_gso_trains)
{
    send_and_check(1, 1, 150, DLEN);
    send_and_check(1, 2, 150, DLEN);
}

/* 40,000-byte datagrams: the 14th passes the batch's 512 KiB, which the
 * room flushes before it gives the room. */
Test(udpio, a_batch_full_of_bytes_is_sent_before_the_room_is_given)
{
    send_and_check(0, 1, 20, 40000);
    send_and_check(1, 2, 20, 40000);
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
