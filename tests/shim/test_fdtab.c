/*
 * fdtab: shim/state/fdtab.c's records of the application's fds, by number:
 * put, get and delete; a record whose number names another file now (an fd
 * reused behind the shim's back) dropped; the hint the send interposers
 * read without a lock; and the per-table records of a child that shares
 * the process's memory but has an fd table of its own (clone(CLONE_VM)
 * without CLONE_FILES). Not the records by file of rudp-supervise.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(fdtab, .init = shimtest_setup);

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    return fd;
}

static uint64_t ino_of(int fd)
{
    struct stat st;
    cr_assert(fstat(fd, &st) == 0);
    return (uint64_t)st.st_ino;
}

static shim_fd record(int fd, int kind)
{
    shim_fd r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.kind = kind;
    r.slot = UINT32_MAX;
    r.family = AF_INET;
    return r;
}

Test(fdtab, put_get_del)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    cr_assert(eq(int, shim_fd_get(fd, &out), 0), "no record yet");
    r.nodelay = 1;
    r.keepidle = 30;
    r.ino = 12345; /* stamped by put, whatever the caller says */
    shim_fd_put(&r);
    memset(&out, 0, sizeof out);
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    cr_assert(eq(int, out.fd, fd));
    cr_assert(eq(int, out.kind, SHIM_FD_CANDIDATE));
    cr_assert(eq(int, out.nodelay, 1));
    cr_assert(eq(int, out.keepidle, 30));
    cr_assert(eq(u64, out.ino, ino_of(fd)));
    /* a second put replaces, never adds */
    r.kind = SHIM_FD_LISTENER;
    r.nodelay = 0;
    shim_fd_put(&r);
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    cr_assert(eq(int, out.kind, SHIM_FD_LISTENER));
    cr_assert(eq(int, out.nodelay, 0));
    int list[8];
    cr_assert(eq(int, shim_fd_list_range(list, 8, 0, ~0u), 1));
    cr_assert(eq(int, list[0], fd));
    shim_fd_del(fd);
    cr_assert(eq(int, shim_fd_get(fd, &out), 0));
    cr_assert(eq(int, shim_fd_list_range(list, 8, 0, ~0u), 0));
    shim_fd_del(fd); /* nothing to delete: no harm */
}

Test(fdtab, a_record_whose_file_changed_is_dropped)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    r.cork = 1;
    shim_fd_put(&r);
    /* dup2 over the number, as a program may behind the shim's back; the
     * interposers' dup2 and the like say so (shim_fd_unseen) */
    cr_assert(eq(int, shimtest_new_file_at(fd), fd));
    shim_fd_unseen();
    int list[8];
    cr_assert(eq(int, shim_fd_list_range(list, 8, 0, ~0u), 1), "still kept: nobody looked");
    cr_assert(eq(int, shim_fd_get(fd, &out), 0), "not the record of the file there now");
    cr_assert(eq(int, shim_fd_list_range(list, 8, 0, ~0u), 0), "and dropped by the look");
    /* the new file's own record, with nothing of the old */
    shim_fd r2 = record(fd, SHIM_FD_CANDIDATE);
    shim_fd_put(&r2);
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    cr_assert(eq(int, out.cork, 0));
    cr_assert(eq(u64, out.ino, ino_of(fd)));
}

/* An option call writes back the record it read (shim_fd_update): only
 * to the file it read it from. A dup2() over the number in another thread
 * meanwhile must not make the new file the record's. */
Test(fdtab, an_update_reaches_only_the_file_it_was_read_from)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&r);
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    out.nodelay = 1;
    shim_fd_update(&out);
    shim_fd again;
    cr_assert(eq(int, shim_fd_get(fd, &again), 1));
    cr_assert(eq(int, again.nodelay, 1), "the same file: updated");
    /* read, then the number replaced, then the write-back */
    shim_fd read_before;
    cr_assert(eq(int, shim_fd_get(fd, &read_before), 1));
    cr_assert(eq(int, shimtest_new_file_at(fd), fd));
    shim_fd_unseen(); /* dup2() says so */
    read_before.cork = 1;
    shim_fd_update(&read_before);
    cr_assert(eq(int, shim_fd_get(fd, &out), 0), "the new file has no record");
    /* a record made anew (no inode yet) is put */
    shim_fd fresh = record(fd, SHIM_FD_CANDIDATE);
    fresh.keepcnt = 7;
    shim_fd_update(&fresh);
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    cr_assert(eq(int, out.keepcnt, 7));
    cr_assert(eq(u64, out.ino, ino_of(fd)));
}

Test(fdtab, a_closed_fd_has_no_record)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&r);
    close(fd);
    shim_fd_unseen(); /* a close not through close() (close() drops the record) */
    cr_assert(eq(int, shim_fd_get(fd, &out), 0));
}

/* The point of the epoch: a record proved since the last call that may
 * have changed a number is taken without asking the kernel again, so a
 * change no such call announced is not seen; the next shim_fd_unseen()
 * has it proved again. Numbers 0-2 and stdio's (shim_fd_prove_always)
 * are proved at every lookup. */
Test(fdtab, a_record_proved_in_this_epoch_is_trusted_until_a_change_is_announced)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&r);
    cr_assert(eq(int, shimtest_new_file_at(fd), fd));
    cr_assert(eq(int, shim_fd_get(fd, &out), 1), "trusted: no call said the number changed");
    cr_assert(eq(int, shim_fd_tryget(fd, &out), 1));
    shim_fd_unseen();
    cr_assert(eq(int, shim_fd_get(fd, &out), 0), "proved again: another file");
    /* a number stdio has is proved at every lookup, whatever record it
     * holds: one put after the mark too (fdopen before connect) */
    int g = tcp_socket();
    shim_fd_prove_always(g);
    shim_fd rg = record(g, SHIM_FD_CANDIDATE);
    shim_fd_put(&rg);
    cr_assert(eq(int, shim_fd_get(g, &out), 1));
    cr_assert(eq(int, shimtest_new_file_at(g), g));
    cr_assert(eq(int, shim_fd_get(g, &out), 0), "stdio's number: proved, another file");
}

/* The shim's own dup3 of a file of ours over a number (connect()'s bridge
 * over the app's socket: appfd.c's swap) changes that number alone: its
 * records are proved again, and every other number's proof stands (a
 * global epoch there had each connect() cost every other connection a
 * proof by fstat at its next call). */
Test(fdtab, a_reproved_number_is_proved_again_and_the_others_are_not)
{
    int a = tcp_socket(), b = tcp_socket();
    shim_fd ra = record(a, SHIM_FD_CANDIDATE), rb = record(b, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&ra);
    shim_fd_put(&rb);
    cr_assert(eq(int, shimtest_new_file_at(a), a));
    cr_assert(eq(int, shimtest_new_file_at(b), b)); /* unannounced: a stale proof */
    shim_fd_reprove(a);
    cr_assert(eq(int, shim_fd_get(a, &out), 0), "a: proved again, another file");
    cr_assert(eq(int, shim_fd_get(b, &out), 1), "b: its proof stands (asked nothing)");
    shim_fd_unseen();
    cr_assert(eq(int, shim_fd_get(b, &out), 0), "until a change anywhere is announced");
    /* the new file's record, put by whoever put it there, is proved */
    shim_fd ra2 = record(a, SHIM_FD_CANDIDATE);
    ra2.keepcnt = 3;
    shim_fd_put(&ra2);
    cr_assert(eq(int, shim_fd_get(a, &out), 1));
    cr_assert(eq(int, out.keepcnt, 3));
    shim_fd_reprove(-1); /* out of range: nothing */
    shim_fd_reprove(SHIM_FD_HINTS);
}

Test(fdtab, numbers_0_to_2_are_proved_at_every_lookup)
{
    int saved = dup(0);
    cr_assert(saved >= 0);
    int s = tcp_socket();
    cr_assert(eq(int, dup2(s, 0), 0));
    close(s);
    shim_fd r = record(0, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&r);
    cr_assert(eq(int, shim_fd_get(0, &out), 1));
    cr_assert(eq(int, shimtest_new_file_at(0), 0)); /* daemon()'s dup2 inside libc */
    int found = shim_fd_get(0, &out);
    cr_assert(eq(int, dup2(saved, 0), 0));
    close(saved);
    cr_assert(eq(int, found, 0), "fd 0 proved: another file");
}

Test(fdtab, records_listed_by_range_and_fallback)
{
    int a = tcp_socket(), b = tcp_socket(), c = tcp_socket();
    shim_fd ra = record(a, SHIM_FD_BRIDGED), rb = record(b, SHIM_FD_BRIDGED),
            rc = record(c, SHIM_FD_CANDIDATE);
    rb.fallback = 1;
    rc.fallback = 1; /* only a bridged connect falls back */
    shim_fd_put(&ra);
    shim_fd_put(&rb);
    shim_fd_put(&rc);
    int out[8];
    cr_assert(eq(int, shim_fd_list_fallback(out, 8), 1));
    cr_assert(eq(int, out[0], b));
    cr_assert(eq(int, shim_fd_list_range(out, 8, 0, ~0u), 3));
    cr_assert(eq(int, shim_fd_list_range(out, 8, (unsigned)b, (unsigned)b), 1));
    cr_assert(eq(int, out[0], b));
    cr_assert(eq(int, shim_fd_list_range(out, 1, 0, ~0u), 1), "at most max");
    cr_assert(eq(int, shim_fd_list_range(out, 8, (unsigned)c + 1, ~0u), 0));
}

Test(fdtab, a_bridged_record_is_hinted_and_its_slot_told_where_it_is)
{
    uint32_t idx = shim_slot_alloc(9);
    shim_slot *s = shim_slot_get(idx, 9);
    cr_assert(s != NULL);
    int fd = tcp_socket(), other = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_BRIDGED), out;
    r.slot = idx;
    r.id = 9;
    cr_assert(eq(ptr, shim_fd_hinted(fd), NULL));
    shim_fd_put(&r);
    cr_assert(eq(ptr, shim_fd_hinted(fd), s));
    cr_assert(eq(i32, atomic_load(&s->app_fd), fd));
    cr_assert(eq(u64, atomic_load(&s->app_ino), ino_of(fd)));
    cr_assert(eq(ptr, shim_fd_hinted(other), NULL));
    /* the hint goes with the record: deleted, replaced, or found stale */
    shim_fd_del(fd);
    cr_assert(eq(ptr, shim_fd_hinted(fd), NULL));
    shim_fd_put(&r);
    shim_fd r2 = record(fd, SHIM_FD_CANDIDATE);
    shim_fd_put(&r2);
    cr_assert(eq(ptr, shim_fd_hinted(fd), NULL));
    shim_fd_put(&r);
    cr_assert(eq(ptr, shim_fd_hinted(fd), s));
    cr_assert(eq(int, shimtest_new_file_at(fd), fd));
    shim_fd_unseen();
    cr_assert(eq(int, shim_fd_get(fd, &out), 0));
    cr_assert(eq(ptr, shim_fd_hinted(fd), NULL));
    /* a bridged record of a slot that is gone hints nothing */
    shim_slot_free(idx);
    shim_fd r3 = record(other, SHIM_FD_BRIDGED);
    r3.slot = idx;
    r3.id = 9;
    shim_fd_put(&r3);
    cr_assert(eq(ptr, shim_fd_hinted(other), NULL));
    cr_assert(eq(ptr, shim_fd_hinted(-1), NULL));
    cr_assert(eq(ptr, shim_fd_hinted(SHIM_FD_HINTS), NULL));
}

Test(fdtab, tryget_gives_up_while_the_table_is_held)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    shim_fd_put(&r);
    cr_assert(eq(int, shim_fd_tryget(fd, &out), 1));
    shim_fdtab_atfork_prepare(); /* holds the table's lock, as a fork does */
    cr_assert(eq(int, shim_fd_tryget(fd, &out), -1));
    shim_fdtab_atfork_parent();
    cr_assert(eq(int, shim_fd_tryget(fd, &out), 1));
}

/*
 * A clone(CLONE_VM) child without CLONE_FILES: our memory, its own fd
 * table. It reports through `step`, the number of its last check passed
 * (the memory is shared), and its exit status: 0 when all held.
 */
struct child {
    int fd;          /* the parent's socket, whose copy the child inherits */
    int nodelay;     /* what the parent's record says */
    _Atomic int step;
};

static int child_main(void *arg)
{
    struct child *c = arg;
    shim_fd out;
    /* its copy of our socket is the same file: our record is its too */
    if (shim_fd_get(c->fd, &out) != 1 || out.nodelay != c->nodelay)
        return 1;
    atomic_store(&c->step, 1);
    /* a socket of its own at the same number: a record of its own table */
    if (shimtest_new_file_at(c->fd) != c->fd)
        return 2;
    if (shim_fd_get(c->fd, &out) != 0)
        return 3; /* ours does not name its file */
    shim_fd r;
    memset(&r, 0, sizeof r);
    r.fd = c->fd;
    r.kind = SHIM_FD_CANDIDATE;
    r.keepalive = 1;
    shim_fd_put(&r);
    if (shim_fd_get(c->fd, &out) != 1 || out.keepalive != 1 || out.nodelay != 0)
        return 4;
    atomic_store(&c->step, 2);
    int list[4];
    if (shim_fd_list_range(list, 4, 0, ~0u) != 1 || list[0] != c->fd)
        return 5; /* its own table's only */
    /* its delete takes its own record, never ours */
    shim_fd_del(c->fd);
    if (shim_fd_get(c->fd, &out) != 0)
        return 6;
    atomic_store(&c->step, 3);
    return 0;
}

Test(fdtab, a_child_sharing_memory_keeps_records_of_its_own_table, .timeout = 10)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    r.nodelay = 1;
    shim_fd_put(&r);
    struct child c = {.fd = fd, .nodelay = 1};
    size_t size = 256 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
    cr_assert(stack != MAP_FAILED);
    /* what interpose/clonevm.c's clone() says first (not linked here) */
    shim_procenv_vm_child();
    pid_t pid = clone(child_main, stack + size, CLONE_VM | SIGCHLD, &c);
    cr_assert(pid > 0);
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    cr_assert(eq(int, status, 0), "the child's check %d failed (after step %d)", status,
              atomic_load(&c.step));
    munmap(stack, size);
    /* ours as it was: the child's put and delete were its own table's */
    cr_assert(eq(int, shim_fd_get(fd, &out), 1));
    cr_assert(eq(int, out.nodelay, 1));
    cr_assert(eq(int, out.keepalive, 0));
    cr_assert(eq(u64, out.ino, ino_of(fd)));
}

Test(fdtab, a_forked_copy_keeps_the_records_of_its_copied_files)
{
    int fd = tcp_socket();
    shim_fd r = record(fd, SHIM_FD_CANDIDATE), out;
    r.linger_on = 1;
    shim_fd_put(&r);
    shim_fdtab_atfork_prepare();
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        shim_fdtab_atfork_child();
        shim_procenv_forked();
        /* the copy's fds are the same files: its record is there */
        _exit(shim_fd_get(fd, &out) == 1 && out.linger_on == 1 ? 0 : 1);
    }
    shim_fdtab_atfork_parent();
    int st;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    cr_assert(eq(int, WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0));
}
