/*
 * epollreg: shim/state/epollreg.c, the application's epoll interest in an
 * fd whose file the shim replaces (dup3 at connect() or listen()). The
 * kernel ties a registration to the file, so without the notes a swap
 * leaves the program's epoll set blind to the new file. Each swap here is
 * the shim's: detach, dup3 of another file at the number, attach; real
 * epoll sets and socket pairs show what the program would see.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(epollreg, .init = shimtest_setup);

/* A connected pair: [0] the app's end, [1] the far end that writes. */
static void pair(int sv[2])
{
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

static int epoll(void)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    cr_assert(ep >= 0);
    return ep;
}

/* epoll_ctl as the interposed one does it: the kernel's call, then the
 * note for a marked fd. */
static void ctl(int ep, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    cr_assert(epoll_ctl(ep, op, fd, &ev) == 0, "epoll_ctl: %s", strerror(errno));
    if (shim_epollreg_marked(fd))
        shim_epollreg_note(ep, op, fd, &ev);
}

/* The shim's swap: a new connected pair's end put at fd; the far end of
 * the new pair into *far (its data makes fd readable). */
static void swap(int fd, int keep, int *far)
{
    int sv[2];
    pair(sv);
    shim_epollreg_detach(fd);
    cr_assert(dup3(sv[0], fd, O_CLOEXEC) == fd);
    close(sv[0]);
    shim_epollreg_attach(fd, keep);
    *far = sv[1];
}

/* What one epoll_wait without waiting reports: the event count, and the
 * first event's data and events. */
static int ready(int ep, uint64_t *data, uint32_t *events)
{
    struct epoll_event ev[4];
    int n = epoll_wait(ep, ev, 4, 0);
    cr_assert(n >= 0);
    if (n > 0) {
        *data = ev[0].data.u64;
        *events = ev[0].events;
    }
    return n;
}

/* ep reports one event, of the program's data want; its events. */
static uint32_t reports(int ep, uint64_t want)
{
    uint64_t data = 0;
    uint32_t events = 0;
    cr_assert(eq(int, ready(ep, &data, &events), 1));
    cr_assert(eq(u64, data, want), "the program's data, for the file there now");
    return events;
}

/* A pair whose app end socket() would have marked. */
static void marked_pair(int sv[2])
{
    pair(sv);
    shim_epollreg_mark(sv[0]);
}

static int registered(int ep, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN};
    return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0 ? 1 : (errno == ENOENT ? 0 : -1);
}

Test(epollreg, marks_low_and_high_numbers)
{
    const int fds[] = {0, 5, 63, 64, 1 << 19, (1 << 20) - 1, 1 << 20, (1 << 20) + 7, 0x7ffffff0};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        cr_assert(eq(int, shim_epollreg_marked(fds[i]), 0), "%d", fds[i]);
        shim_epollreg_mark(fds[i]);
        cr_assert(eq(int, shim_epollreg_marked(fds[i]), 1), "%d", fds[i]);
    }
    cr_assert(eq(int, shim_epollreg_marked(1), 0), "a neighbour stays unmarked");
    cr_assert(eq(int, shim_epollreg_marked(-1), 0));
    shim_epollreg_mark(-1);
    cr_assert(eq(int, shim_epollreg_marked(-1), 0));
    shim_epollreg_unmark(64);
    cr_assert(eq(int, shim_epollreg_marked(64), 0));
    cr_assert(eq(int, shim_epollreg_marked(63), 1));
    shim_epollreg_unmark(1 << 20);
    cr_assert(eq(int, shim_epollreg_marked(1 << 20), 0));
    cr_assert(eq(int, shim_epollreg_marked((1 << 20) + 7), 1));
    /* close_range's form: low and high marks in the range, none outside */
    shim_epollreg_forget_range(5, (1 << 20) + 7);
    cr_assert(eq(int, shim_epollreg_marked(5), 0));
    cr_assert(eq(int, shim_epollreg_marked(1 << 19), 0));
    cr_assert(eq(int, shim_epollreg_marked((1 << 20) + 7), 0));
    cr_assert(eq(int, shim_epollreg_marked(0), 1));
    cr_assert(eq(int, shim_epollreg_marked(0x7ffffff0), 1));
}

Test(epollreg, a_swap_without_notes_leaves_the_set_blind)
{
    /* what the module is for: the kernel's own behaviour */
    int sv[2], far;
    pair(sv);
    int ep = epoll();
    ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN, 1); /* not marked: not noted */
    swap(sv[0], 0, &far);
    cr_assert(write(far, "x", 1) == 1);
    uint64_t data;
    uint32_t events;
    cr_assert(eq(int, ready(ep, &data, &events), 0));
    cr_assert(eq(int, registered(ep, sv[0]), 0), "the program's MOD would say ENOENT");
}

Test(epollreg, a_noted_registration_follows_the_swap)
{
    int sv[2], far;
    marked_pair(sv);
    int ep1 = epoll(), ep2 = epoll();
    ctl(ep1, EPOLL_CTL_ADD, sv[0], EPOLLIN, 0xfeed);
    ctl(ep2, EPOLL_CTL_ADD, sv[0], EPOLLOUT | EPOLLET, 0xbeef);
    ctl(ep1, EPOLL_CTL_MOD, sv[0], EPOLLIN | EPOLLRDHUP, 0xf00d); /* the note follows MOD */
    int old = dup(sv[0]); /* the old file lives on, as a listener's port in the engine */
    cr_assert(old >= 0);
    swap(sv[0], 0, &far);
    uint64_t data;
    uint32_t events;
    cr_assert(eq(int, ready(ep1, &data, &events), 0), "nothing to read yet");
    cr_assert(write(far, "x", 1) == 1);
    cr_assert(ne(u32, reports(ep1, 0xf00d) & EPOLLIN, 0));
    /* a new file ready when added is reported */
    cr_assert(ne(u32, reports(ep2, 0xbeef) & EPOLLOUT, 0));
    /* the old file no longer reports under the program's data */
    char c;
    cr_assert(read(sv[0], &c, 1) == 1);
    cr_assert(write(sv[1], "y", 1) == 1);
    cr_assert(eq(int, ready(ep1, &data, &events), 0));
    /* forgotten after the swap (keep 0): a second swap is not carried */
    int far2;
    swap(sv[0], 0, &far2);
    cr_assert(eq(int, registered(ep1, sv[0]), 0));
}

Test(epollreg, kept_notes_follow_a_second_swap)
{
    int sv[2], far;
    marked_pair(sv);
    int ep = epoll();
    ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN, 7);
    swap(sv[0], 1, &far);
    swap(sv[0], 0, &far);
    cr_assert(write(far, "x", 1) == 1);
    reports(ep, 7);
}

Test(epollreg, a_deleted_or_forgotten_registration_is_not_carried)
{
    int sv[2], far;
    marked_pair(sv);
    int ep1 = epoll(), ep2 = epoll(), ep3 = epoll();
    ctl(ep1, EPOLL_CTL_ADD, sv[0], EPOLLIN, 1);
    ctl(ep2, EPOLL_CTL_ADD, sv[0], EPOLLIN, 2);
    ctl(ep3, EPOLL_CTL_ADD, sv[0], EPOLLIN, 3);
    struct epoll_event none = {0};
    cr_assert(epoll_ctl(ep1, EPOLL_CTL_DEL, sv[0], &none) == 0);
    shim_epollreg_note(ep1, EPOLL_CTL_DEL, sv[0], NULL);
    shim_epollreg_forget(ep2); /* the program closed that epoll set */
    swap(sv[0], 0, &far);
    cr_assert(eq(int, registered(ep1, sv[0]), 0));
    cr_assert(eq(int, registered(ep2, sv[0]), 0));
    cr_assert(eq(int, registered(ep3, sv[0]), 1));
}

Test(epollreg, a_fired_oneshot_comes_back_disarmed)
{
    int sv[2], far;
    marked_pair(sv);
    int ep = epoll();
    ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN | EPOLLONESHOT, 5);
    cr_assert(write(sv[1], "x", 1) == 1);
    reports(ep, 5); /* it fires once */
    uint64_t data;
    uint32_t events;
    swap(sv[0], 0, &far);
    cr_assert(write(far, "x", 1) == 1);
    cr_assert(eq(int, ready(ep, &data, &events), 0), "still disarmed after the swap");
    /* but registered: the program's MOD re-arms it, as before the swap */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 6};
    cr_assert(epoll_ctl(ep, EPOLL_CTL_MOD, sv[0], &ev) == 0);
    reports(ep, 6);
}

Test(epollreg, an_armed_oneshot_stays_armed)
{
    int sv[2], far;
    marked_pair(sv);
    int ep = epoll();
    ctl(ep, EPOLL_CTL_ADD, sv[0], EPOLLIN | EPOLLONESHOT, 5);
    swap(sv[0], 0, &far);
    cr_assert(write(far, "x", 1) == 1);
    reports(ep, 5);
}

Test(epollreg, discover_reads_back_registrations_nobody_noted)
{
    int sv[2], far;
    pair(sv);
    int ep1 = epoll(), ep2 = epoll(), other = epoll();
    int unrelated[2];
    pair(unrelated);
    ctl(ep1, EPOLL_CTL_ADD, sv[0], EPOLLIN, 0x1111);
    ctl(ep2, EPOLL_CTL_ADD, sv[0], EPOLLIN | EPOLLET, 0x2222);
    ctl(other, EPOLL_CTL_ADD, unrelated[0], EPOLLIN, 0x3333);
    cr_assert(eq(int, shim_epollreg_marked(sv[0]), 0));
    shim_epollreg_discover(sv[0]); /* connect(AF_UNSPEC) on an established fd */
    swap(sv[0], 0, &far);
    cr_assert(write(far, "x", 1) == 1);
    reports(ep1, 0x1111);
    cr_assert(ne(u32, reports(ep2, 0x2222) & EPOLLIN, 0));
    cr_assert(eq(int, registered(other, sv[0]), 0), "a set that did not watch it");
}

/* Many connects in flight, as an event loop's: each note follows its own
 * fd's swap and no other, and closing an epoll fd forgets what it held
 * while the other set's notes stay. */
Test(epollreg, many_notes_each_follow_their_own_fd, .timeout = 30)
{
    enum { N = 300 };
    int app[N], far[N];
    int ep1 = epoll(), ep2 = epoll();
    for (int i = 0; i < N; i++) {
        int sv[2];
        marked_pair(sv);
        app[i] = sv[0];
        far[i] = sv[1];
        ctl(ep1, EPOLL_CTL_ADD, app[i], EPOLLIN, 1000u + (unsigned)i);
        if (i % 2 == 0)
            ctl(ep2, EPOLL_CTL_ADD, app[i], EPOLLIN, 5000u + (unsigned)i);
    }
    /* the program closes every third one: its notes go with it */
    for (int i = 0; i < N; i += 3) {
        close(far[i]);
        close(app[i]);
        shim_epollreg_forget(app[i]);
        shim_epollreg_unmark(app[i]);
    }
    /* ep2 closed: its notes go, ep1's stay */
    close(ep2);
    shim_epollreg_forget(ep2);
    for (int i = 1; i < N; i++) {
        if (i % 3 == 0)
            continue;
        close(far[i]); /* the old pair's far end: the swap's new pair reads */
        swap(app[i], 0, &far[i]);
    }
    uint64_t data;
    uint32_t events;
    cr_assert(eq(int, ready(ep1, &data, &events), 0), "nothing written yet");
    for (int i = 1; i < N; i++) {
        if (i % 3 == 0)
            continue;
        cr_assert(write(far[i], "x", 1) == 1);
        reports(ep1, 1000u + (unsigned)i);
        char c;
        cr_assert(read(app[i], &c, 1) == 1);
        cr_assert(eq(int, ready(ep1, &data, &events), 0), "fd %d: one event only", app[i]);
    }
}
