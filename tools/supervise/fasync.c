/* O_ASYNC's fd number on a file placed at the program's number
 * (supervise.h). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervise.h"

/* A signal O_ASYNC sends (F_SETSIG's, with siginfo) names the fd in si_fd:
 * the number fasync_helper() noted when O_ASYNC was turned on, which is
 * the fcntl caller's (fa_fd; send_sigio passes it on). The shim turns it
 * on for the file that replaces the program's socket (a bridge, a
 * listener: shim_fdswap carries the status flags) at the number of the
 * supervisor's copy, so the program's signal named our number. Turning it
 * off and on again notes a new one (fasync_insert_entry updates the entry
 * of the same file), but only through that number: setfl() hands the fd
 * to ->fasync. So a thread of ours with an fd table of its own
 * (unshare(CLONE_FILES): the process's is left alone) puts the file at
 * the program's number there and turns O_ASYNC off and on; its table goes
 * when it ends, its copies with it (no last close: the program holds the
 * file; POSIX locks are owned by the table, the process's are kept). Raw
 * system calls: the shim's dup3 and fcntl are for the program's fds. */
struct renumber {
    int src, fd, flags, err;
};

static void *renumber_thread(void *arg)
{
    struct renumber *r = arg;
    if (unshare(CLONE_FILES) < 0 || syscall(SYS_dup3, r->src, r->fd, O_CLOEXEC) < 0 ||
        syscall(SYS_fcntl, r->fd, F_SETFL, r->flags & ~O_ASYNC) < 0 ||
        syscall(SYS_fcntl, r->fd, F_SETFL, r->flags) < 0)
        r->err = errno;
    return NULL;
}

void fasync_renumber(const struct sup *s, int src, int fd)
{
    int flags = (int)syscall(SYS_fcntl, src, F_GETFL);
    if (flags < 0 || !(flags & O_ASYNC))
        return;
    struct renumber r = {.src = src, .fd = fd, .flags = flags, .err = 0};
    pthread_t t;
    if ((r.err = pthread_create(&t, NULL, renumber_thread, &r)) == 0)
        pthread_join(t, NULL);
    if (r.err)
        warn("fd %d: O_ASYNC's signals name another fd number (%s)", fd, strerror(r.err));
    else if (s->debug)
        fprintf(stderr, "%s: fd %d: O_ASYNC renumbered\n", me, fd);
}
