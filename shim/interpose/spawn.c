/*
 * spawn.c: posix_spawn() and posix_spawnp(). glibc's start the new image
 * with its internal execve (in a clone(CLONE_VM | CLONE_VFORK) child),
 * which no preload sees, so without these the image got no slabs and
 * answered TCP_INFO as CLOSE and SO_ERROR 0 for the connections it
 * inherited. The caller goes on, and so does its engine, serving those
 * connections as it serves a forked child's: only the slabs need passing,
 * as our exec passes them (slots.c), to an image that runs the shim
 * (newimage.c).
 *
 * The copies stay close-on-exec in the caller all along, so that a
 * fork()+exec() in another thread meanwhile passes nothing on; the
 * spawned child clears the flag itself, before its exec, by an adddup2 of
 * each copy onto itself in the file actions (POSIX, Austin Group issue
 * 411; glibc's spawni.c: a dup2 action whose fd and newfd are equal
 * clears FD_CLOEXEC, and fails the spawn if the fd is not open).
 *
 * Those actions must run before the caller's: one that closes every fd
 * (posix_spawn_file_actions_addclosefrom_np) or our numbers would
 * otherwise make our fcntl, and so the whole spawn, fail with EBADF.
 * Appending to the caller's object (and restoring __used afterwards)
 * would run them last, and may realloc the array under another thread
 * spawning with the same object at the same time (posix_spawn takes it
 * const: concurrent use is the caller's right); so it is only read. We
 * build an array of our own: our actions (made by the public adddup2 on
 * an object of ours), then a byte copy of the caller's __used actions,
 * in a copy of its posix_spawn_file_actions_t (<spawn.h>: __allocated,
 * __used, __actions) pointing at it. The copy is shallow (an open
 * action's path stays the caller's, untouched), freed by us alone, never
 * destroyed. What we assume: the actions are an array of equal-size
 * elements holding the fds as ints, as glibc's struct __spawn_action
 * is; the element size is measured once (action_stride) from an object
 * of ours, and where it cannot be, the copies lose close-on-exec in the
 * caller as before (the window comes back, nothing breaks). We assume
 * too that no thread changes the caller's object during the call, which
 * POSIX leaves undefined anyway.
 *
 * The file actions run in the child before its exec, after ours: one
 * that closes every fd takes the copies with it, and the new image,
 * finding no slab at the numbers named, answers as it did before; one
 * that puts another file at such a number is told by the checks at
 * start-up (a sealed memfd of our size and magic). The attributes
 * (POSIX_SPAWN_SETSIGDEF, SETSIGMASK, SETPGROUP, SETSID...) are glibc's to
 * apply; the new image's shim installs its own signal stand-in at
 * start-up (signals.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdatomic.h>
#include <string.h>

#include "interpose.h"
#include "base/poison.h"

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);

static spawn_fn real_spawn, real_spawnp;

/* The size of one file action in glibc's array, measured from an object of
 * ours holding three dup2 actions of known fds: the distance between
 * their (fd, newfd) pairs, which must be equal and larger than the first
 * pair's offset. 0 where it cannot be told. */
static size_t action_stride(void)
{
    static _Atomic size_t known; /* 0: not measured; 1: failed */
    size_t s = atomic_load(&known);
    if (s)
        return s > 1 ? s : 0;
    static const int probe[3][2] = {{11, 13}, {17, 19}, {23, 29}};
    posix_spawn_file_actions_t t;
    size_t at[3] = {0, 0, 0};
    s = 1;
    if (posix_spawn_file_actions_init(&t) != 0)
        return 0;
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++)
        ok = posix_spawn_file_actions_adddup2(&t, probe[i][0], probe[i][1]) == 0;
    if (ok && t.__used == 3 && t.__allocated >= 3) {
        /* Each pair is searched for after the one before; the real one is
         * inside the array, so the scan never reads past it unless the
         * layout is not the assumed one (then within 768 bytes of heap). */
        const unsigned char *arr = (const unsigned char *)t.__actions;
        const size_t limit = 3 * 256;
        size_t from = 0;
        for (int i = 0; i < 3 && ok; i++) {
            ok = 0;
            for (at[i] = from; at[i] + 2 * sizeof(int) <= limit; at[i] += sizeof(int)) {
                int v[2];
                memcpy(v, arr + at[i], sizeof v);
                if (v[0] == probe[i][0] && v[1] == probe[i][1]) {
                    ok = 1;
                    break;
                }
            }
            from = at[i] + sizeof(int);
        }
        size_t d = at[1] - at[0];
        if (ok && at[1] > at[0] && at[2] - at[1] == d && at[0] < d && d <= 256)
            s = d;
    }
    posix_spawn_file_actions_destroy(&t);
    atomic_store(&known, s);
    return s > 1 ? s : 0;
}

/* Makes *out the file actions the spawn runs: a dup2 of each copy onto
 * itself, then the caller's (fa, may be NULL). *buf is the array to free
 * afterwards (shim_free), *ours the object to destroy. Returns 0, or -1
 * when it cannot (then nothing is left to free and the caller clears
 * close-on-exec on the copies itself). */
static int with_our_actions(const shim_exec_env *x, const posix_spawn_file_actions_t *fa,
                            posix_spawn_file_actions_t *ours, posix_spawn_file_actions_t *out,
                            void **buf)
{
    *buf = NULL;
    size_t stride = fa ? action_stride() : 0;
    if ((fa && !stride) || posix_spawn_file_actions_init(ours) != 0)
        return -1;
    for (int i = 0; i < x->nfds; i++) {
        if (posix_spawn_file_actions_adddup2(ours, x->fds[i], x->fds[i]) != 0) {
            posix_spawn_file_actions_destroy(ours);
            return -1;
        }
    }
    if (!fa) {
        *out = *ours;
        return 0;
    }
    int theirs = fa->__used > 0 ? fa->__used : 0;
    size_t n = (size_t)ours->__used + (size_t)theirs;
    unsigned char *a = shim_malloc(n * stride);
    if (!a) {
        posix_spawn_file_actions_destroy(ours);
        return -1;
    }
    memcpy(a, ours->__actions, (size_t)ours->__used * stride);
    if (theirs)
        memcpy(a + (size_t)ours->__used * stride, fa->__actions, (size_t)theirs * stride);
    *out = *fa;
    out->__actions = (void *)a;
    out->__allocated = out->__used = (int)n;
    *buf = a;
    return 0;
}

static int spawn_with_slabs(spawn_fn real, int search, pid_t *pid, const char *path,
                            const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                            char *const argv[], char *const envp[])
{
    if (!real)
        return ENOSYS;
    if (!shim_init())
        return real(pid, path, fa, attr, argv, envp);
    shim_exec_env x = {.nfds = 0, .cloexec = 1, .env = NULL, .hand = -1};
    short flags = 0;
    if (attr && posix_spawnattr_getflags(attr, &flags) != 0)
        flags = 0;
    int runs = shim_newimage_runs_shim(path, -1, search, envp,
                                       (flags & POSIX_SPAWN_RESETIDS) != 0);
    if (!runs) /* it may change a bridge's O_NONBLOCK unseen (recv.c) */
        shim_fd_hints_foreign();
    char *const *env = runs ? shim_slots_exec_env(&x, envp) : envp;
    posix_spawn_file_actions_t ours, merged;
    void *buf = NULL;
    const posix_spawn_file_actions_t *use = fa;
    if (x.nfds) {
        if (with_our_actions(&x, fa, &ours, &merged, &buf) == 0) {
            use = &merged;
        } else {
            for (int i = 0; i < x.nfds; i++) /* as before: the window is back */
                real_fcntl(x.fds[i], F_SETFD, 0);
        }
    }
    int r = real(pid, path, use, attr, argv, env);
    int e = errno;
    if (use == &merged) {
        shim_free(buf);
        posix_spawn_file_actions_destroy(&ours); /* dup2 actions only: no path of the caller's */
    }
    shim_slots_exec_failed(&x); /* closes our copies: the caller goes on */
    errno = e;
    return r;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
SHIM_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                            const posix_spawnattr_t *attr, char *const argv[],
                            char *const envp[])
{
    shim_kept_flush(); /* the new image reads the bridges */
    if (!real_spawn)
        real_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
    return spawn_with_slabs(real_spawn, 0, pid, path, fa, attr, argv, envp);
}

SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                             const posix_spawnattr_t *attr, char *const argv[],
                             char *const envp[])
{
    shim_kept_flush();
    if (!real_spawnp)
        real_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
    return spawn_with_slabs(real_spawnp, 1, pid, file, fa, attr, argv, envp);
}
#pragma GCC diagnostic pop
