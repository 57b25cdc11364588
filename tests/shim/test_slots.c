/*
 * slots: shim/state/slots.c, the per-connection state an engine publishes
 * for the application's threads and forked children. A slot is named by
 * (index, id): the id is the generation, so a name kept after its
 * connection ended finds nothing once the index serves another.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(slots, .init = shimtest_setup);

Test(slots, alloc_gives_a_fresh_slot_named_by_index_and_id)
{
    uint32_t a = shim_slot_alloc(101), b = shim_slot_alloc(102);
    cr_assert(a != UINT32_MAX && b != UINT32_MAX);
    cr_assert(a != b);
    shim_slot *s = shim_slot_get(a, 101);
    cr_assert(s != NULL);
    cr_assert(eq(u64, atomic_load(&s->id), 101));
    cr_assert(eq(i32, atomic_load(&s->state), SHIM_SLOT_CONNECTING));
    cr_assert(eq(i32, atomic_load(&s->efd), -1));
    cr_assert(eq(i32, atomic_load(&s->app_fd), -1));
    cr_assert(eq(ptr, shim_slot_get(b, 102), s + (b - a)), "one slab, indexed");
    /* a wrong id, or an index past the table, names nothing */
    cr_assert(eq(ptr, shim_slot_get(a, 102), NULL));
    cr_assert(eq(ptr, shim_slot_get(SHIM_MAX_SLOTS, 101), NULL));
    cr_assert(eq(ptr, shim_slot_get(UINT32_MAX, 0), NULL));
}

Test(slots, a_freed_index_reused_is_not_found_by_its_old_id)
{
    uint32_t i = shim_slot_alloc(7);
    shim_slot *s = shim_slot_get(i, 7);
    cr_assert(s != NULL);
    atomic_store(&s->so_error, ECONNRESET);
    atomic_store(&s->flags, SHIM_SLOT_F_LINGER0);
    atomic_store(&s->unacked, 1234);
    atomic_store(&s->app_fd, 5);
    shim_slot_free(i);
    cr_assert(eq(ptr, shim_slot_get(i, 7), NULL), "freed: its name finds nothing");
    cr_assert(eq(i32, atomic_load(&s->state), SHIM_SLOT_FREE));
    uint32_t j = shim_slot_alloc(8); /* the free list before fresh slots */
    cr_assert(eq(u32, j, i));
    cr_assert(eq(ptr, shim_slot_get(i, 7), NULL), "the old generation stays gone");
    cr_assert(eq(ptr, shim_slot_get(j, 8), s));
    /* nothing of the connection before */
    cr_assert(eq(i32, atomic_load(&s->so_error), 0));
    cr_assert(eq(u32, atomic_load(&s->flags), 0));
    cr_assert(eq(u64, atomic_load(&s->unacked), 0));
    cr_assert(eq(i32, atomic_load(&s->app_fd), -1));
}

Test(slots, exhaustion_then_free_and_retired_slots_reused, .timeout = 30)
{
    for (uint32_t k = 0; k < SHIM_MAX_SLOTS; k++)
        cr_assert(eq(u32, shim_slot_alloc(1000 + k), k), "fresh slots in order");
    cr_assert(eq(u32, shim_slot_alloc(1), UINT32_MAX), "all taken");
    /* a failed connection's slot stays readable until nothing else is left */
    shim_slot_retire(10);
    shim_slot_retire(20);
    cr_assert(shim_slot_get(10, 1010) != NULL);
    shim_slot_free(30);
    cr_assert(eq(u32, shim_slot_alloc(2), 30), "a freed slot first");
    cr_assert(shim_slot_get(10, 1010) != NULL, "retired kept while a free one was left");
    cr_assert(eq(u32, shim_slot_alloc(3), 10), "then the oldest retired");
    cr_assert(eq(ptr, shim_slot_get(10, 1010), NULL));
    cr_assert(shim_slot_get(10, 3) != NULL);
    cr_assert(eq(u32, shim_slot_alloc(4), 20));
    cr_assert(eq(u32, shim_slot_alloc(5), UINT32_MAX));
}

Test(slots, retired_slots_wait_behind_fresh_ones)
{
    uint32_t a = shim_slot_alloc(1);
    shim_slot_retire(a);
    uint32_t b = shim_slot_alloc(2);
    cr_assert(b != a);
    cr_assert(shim_slot_get(a, 1) != NULL);
}

Test(slots, the_slab_is_known_under_our_pid)
{
    cr_assert(eq(int, shim_slot_slab_known(getpid()), 0), "mapped on first use");
    cr_assert(shim_slot_alloc(1) != UINT32_MAX);
    cr_assert(eq(int, shim_slot_owner(), getpid()));
    cr_assert(eq(int, shim_slot_slab_known(getpid()), 1));
    cr_assert(eq(int, shim_slot_slab_known(getpid() + 1), 0));
    cr_assert(eq(int, shim_slots_fd(-1), 0));
    int fds[SHIM_SLABS_MAX];
    int n = shim_slots_fds(fds, SHIM_SLABS_MAX);
    cr_assert(eq(int, n, 1), "one memfd");
    cr_assert(eq(int, shim_slots_fd(fds[0]), 1));
    cr_assert(fds[0] >= SHIM_FD_BASE, "held high, out of the program's way");
    cr_assert(eq(int, fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC));
}

/* A forked child reads the parent's live slot (MAP_SHARED) and allocates
 * from a slab of its own. The child reports by exit status: 0 all well,
 * else the number of the check that failed. */
static int child_checks(uint32_t idx, uint64_t id, pid_t parent)
{
    shim_slots_atfork_child();
    shim_slot *s = shim_slot_get_pid(idx, id, parent);
    if (!s)
        return 1;
    if (atomic_load(&s->so_error) != ETIMEDOUT)
        return 2;
    atomic_store(&s->end_error, ECONNRESET); /* the parent sees it */
    uint32_t mine = shim_slot_alloc(99);
    if (mine == UINT32_MAX)
        return 3;
    if (shim_slot_owner() != getpid())
        return 4;
    if (shim_slot_get_pid(mine, 99, parent) != NULL)
        return 5; /* not in the parent's slab */
    if (!shim_slot_get(mine, 99))
        return 6;
    return 0;
}

Test(slots, a_forked_child_reads_the_parent_slab_and_allocates_its_own)
{
    uint32_t idx = shim_slot_alloc(42);
    shim_slot *s = shim_slot_get(idx, 42);
    cr_assert(s != NULL);
    atomic_store(&s->so_error, ETIMEDOUT);
    pid_t parent = getpid();
    shim_slots_atfork_prepare();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0)
        _exit(child_checks(idx, 42, parent));
    shim_slots_atfork_parent();
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cr_assert(eq(int, status, 0), "the child's check %d failed", status);
    cr_assert(eq(i32, atomic_load(&s->end_error), ECONNRESET), "the child's write is shared");
    cr_assert(eq(u32, shim_slot_alloc(43), idx + 1), "the child took none of ours");
}

Test(slots, exec_copies_name_the_slab_and_adopt_takes_only_ours)
{
    uint32_t idx = shim_slot_alloc(5);
    atomic_store(&shim_slot_get(idx, 5)->so_error, EPIPE);
    shim_exec_env x;
    memset(&x, 0, sizeof x);
    x.cloexec = 1;
    x.hand = -1;
    char *envp[] = {"A=1", "RUDP_EXEC_SLABS=9", NULL};
    char *const *env = shim_slots_exec_env(&x, envp);
    cr_assert(eq(int, x.nfds, 1));
    char want[64];
    snprintf(want, sizeof want, "RUDP_EXEC_SLABS=%d", x.fds[0]);
    cr_assert(eq(str, env[0], "A=1"));
    cr_assert(eq(str, env[1], want), "the stale value replaced");
    cr_assert(eq(ptr, env[2], NULL));
    /* what a new image does with it: the same memory, the same slot */
    cr_assert(eq(int, shim_slots_adopt_fd(x.fds[0]), 0));
    shim_slot *s = shim_slot_get(idx, 5);
    cr_assert(s != NULL);
    cr_assert(eq(i32, atomic_load(&s->so_error), EPIPE));
    /* a file that is not a slab of ours is refused and left alone */
    int p[2];
    cr_assert(pipe(p) == 0);
    cr_assert(eq(int, shim_slots_adopt_fd(p[0]), -1));
    cr_assert(fcntl(p[0], F_GETFD) >= 0, "left open");
    int m = memfd_create("not-a-slab", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    cr_assert(m >= 0 && ftruncate(m, 4096) == 0);
    cr_assert(eq(int, shim_slots_adopt_fd(m), -1), "unsealed, wrong size");
    cr_assert(eq(int, shim_slots_adopt_fd(-1), -1));
    shim_slots_exec_failed(&x);
    cr_assert(eq(int, x.nfds, 0));
}

Test(slots, keepers_entered_and_taken_out)
{
    cr_assert(shim_slot_alloc(1) != UINT32_MAX);
    pid_t me = getpid();
    cr_assert(eq(int, shim_slots_is_keeper(me, me), 0));
    shim_slots_keeper(); /* as a keeper forked from the engine would */
    cr_assert(eq(int, shim_slots_is_keeper(me, me), 1));
    cr_assert(eq(int, shim_slots_is_keeper(me + 1, me), 0), "another owner's slab");
    cr_assert(eq(int, shim_slots_is_keeper(me, 0), 0));
    shim_slots_keeper_done();
    cr_assert(eq(int, shim_slots_is_keeper(me, me), 0));
}

/* A read's mode (state.h: rxmode): unknown in a fresh slot, kept once
 * noted, asked again after a change, never kept for a socket that went
 * foreign; and an answer asked across a change is not kept. Whether a
 * poll's bytes may be kept for the read (shim_slot_keepable) follows: a
 * known low-water mark of 1, blocking or not, and never foreign. */
Test(slots, a_read_mode_is_kept_until_changed_and_never_once_foreign)
{
    uint32_t i = shim_slot_alloc(301);
    cr_assert(i != UINT32_MAX);
    shim_slot *s = shim_slot_get(i, 301);
    uint32_t m;
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1), "a fresh slot knows nothing");
    cr_assert(eq(int, shim_slot_keepable(s), 0), "nothing known: nothing kept");
    shim_slot_rx_note(s, m, 1, 1);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), 1), "noted: plain");
    cr_assert(eq(int, shim_slot_keepable(s), 1), "plain: kept");
    shim_slot_rx_changed(s);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1), "changed: asked again");
    cr_assert(eq(int, shim_slot_keepable(s), 0), "changed: not until asked");
    shim_slot_rx_note(s, m, 0, 1);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), 0), "noted: not plain");
    cr_assert(eq(int, shim_slot_keepable(s), 1), "non-blocking, a mark of 1: kept");
    shim_slot_rx_changed(s);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1));
    shim_slot_rx_note(s, m, 0, 0);
    cr_assert(eq(int, shim_slot_keepable(s), 0), "a low-water mark past 1: never kept");

    /* asked, then changed before the answer is noted: not kept */
    shim_slot_rx_changed(s);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1));
    shim_slot_rx_changed(s); /* another thread's F_SETFL meanwhile */
    shim_slot_rx_note(s, m, 1, 1);
    uint32_t m2;
    cr_assert(eq(int, shim_slot_rx_mode(s, &m2), -1), "an answer from before a change");

    shim_slot_rx_foreign(s);
    shim_slot_rx_note(s, m2, 1, 1);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1), "foreign: never kept");
    cr_assert(eq(int, shim_slot_keepable(s), 0), "foreign: no bytes kept");
    shim_slot_rx_changed(s);
    cr_assert(eq(int, shim_slot_rx_mode(s, &m), -1), "a change keeps it foreign");
}

/* The program's epoll registrations of a connection (state.h: ep_note):
 * one set's, level-triggered for EPOLLIN, is the only case a wait on that
 * set may tell from memory; a second registration, one in another
 * process's set or another number's, a delete of one of several, a
 * poison, or edge-triggered or one-shot events say no; a set gone takes
 * its one registration with it; a fresh slot knows none. */
Test(slots, an_epoll_registration_is_followed_only_while_it_is_the_one)
{
    uint32_t i = shim_slot_alloc(302);
    cr_assert(i != UINT32_MAX);
    shim_slot *s = shim_slot_get(i, 302);
    uint64_t a = SHIM_EP_KEY(100, 5, 0), b = SHIM_EP_KEY(100, 6, 0), d;
    uint32_t ev;
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0), "a fresh slot: none");
    shim_slot_ep_note(s, a, EPOLL_CTL_ADD, EPOLLIN, 42);
    cr_assert(eq(int, shim_slot_ep_one(s, a, &ev, &d), 1), "one, level-triggered");
    cr_assert(eq(u32, ev, EPOLLIN));
    cr_assert(eq(u64, d, 42));
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 0), "another set's wait");
    cr_assert(eq(int, shim_slot_ep_one(s, SHIM_EP_KEY(101, 5, 0), NULL, NULL), 0),
              "the same number in another process");
    cr_assert(eq(int, shim_slot_ep_one(s, SHIM_EP_KEY(100, 5, 1), NULL, NULL), 0),
              "the number closed and made again");
    shim_slot_ep_note(s, a, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT, 43);
    cr_assert(eq(int, shim_slot_ep_one(s, a, &ev, &d), 1));
    cr_assert(eq(u32, ev, EPOLLIN | EPOLLOUT), "MOD's events");
    cr_assert(eq(u64, d, 43), "MOD's data");
    shim_slot_ep_note(s, a, EPOLL_CTL_MOD, EPOLLIN | EPOLLET, 43);
    cr_assert(eq(int, shim_slot_ep_one(s, a, &ev, NULL), 1), "edge-triggered: followed too");
    cr_assert(eq(u32, ev, EPOLLIN | EPOLLET), "its events say so (told once per arrival)");
    shim_slot_ep_note(s, a, EPOLL_CTL_MOD, EPOLLIN | EPOLLONESHOT, 43);
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0), "one-shot");
    shim_slot_ep_note(s, a, EPOLL_CTL_MOD, EPOLLOUT, 43);
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0), "not for reading");
    shim_slot_ep_note(s, a, EPOLL_CTL_MOD, EPOLLIN, 44);
    shim_slot_ep_note(s, b, EPOLL_CTL_MOD, EPOLLIN, 45); /* the kernel's ENOENT: never noted */
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, &d), 1));
    cr_assert(eq(u64, d, 44), "a MOD for another set does not change it");
    shim_slot_ep_note(s, a, EPOLL_CTL_DEL, 0, 0);
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0), "deleted");
    shim_slot_ep_note(s, b, EPOLL_CTL_ADD, EPOLLIN, 7);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 1), "added again elsewhere");
    shim_slot_ep_note(s, a, EPOLL_CTL_ADD, EPOLLIN, 8);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 0), "two sets: neither");
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0));
    shim_slot_ep_note(s, a, EPOLL_CTL_DEL, 0, 0);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 0),
              "one of two deleted: which is left is not known");
    shim_slot_ep_note(s, b, EPOLL_CTL_ADD, EPOLLIN, 9);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 0), "poisoned for good");

    uint32_t j = shim_slot_alloc(303);
    cr_assert(j != UINT32_MAX);
    s = shim_slot_get(j, 303);
    shim_slot_ep_note(s, a, EPOLL_CTL_ADD, EPOLLIN, 1);
    shim_slot_ep_gone(s, b);
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 1), "another set gone");
    shim_slot_ep_gone(s, a);
    cr_assert(eq(int, shim_slot_ep_one(s, a, NULL, NULL), 0), "its set gone");
    shim_slot_ep_note(s, b, EPOLL_CTL_ADD, EPOLLIN, 2);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 1), "the only one again");
    shim_slot_ep_poison(s);
    cr_assert(eq(int, shim_slot_ep_one(s, b, NULL, NULL), 0), "poisoned");
}
