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
 * The copies without close-on-exec live from before the spawn until it
 * returns (the child has exec'd or failed by then): a fork()+exec() in
 * another thread meanwhile passes them on too, to an image that maps them
 * if it runs the shim and otherwise holds memfds it does not know of.
 * The file actions run in the child before its exec: one that closes
 * every fd (posix_spawn_file_actions_addclosefrom_np) takes the copies
 * with it, and the new image, finding no slab at the numbers named,
 * answers as it did before; one that puts another file at such a number
 * is told by the checks at start-up (a sealed memfd of our size and
 * magic). The attributes (POSIX_SPAWN_SETSIGDEF, SETSIGMASK, SETPGROUP,
 * SETSID...) are glibc's to apply; the new image's shim installs its own
 * signal stand-in at start-up (signals.c).
 */
#include <dlfcn.h>
#include <errno.h>
#include <spawn.h>

#include "shim.h"

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);

static spawn_fn real_spawn, real_spawnp;

static int spawn_with_slabs(spawn_fn real, int search, pid_t *pid, const char *path,
                            const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                            char *const argv[], char *const envp[])
{
    if (!real)
        return ENOSYS;
    if (!shim_init())
        return real(pid, path, fa, attr, argv, envp);
    shim_exec_env x = {.nfds = 0, .env = NULL, .hand = -1};
    char *const *env = shim_newimage_runs_shim(path, -1, search, envp)
                           ? shim_slots_exec_env(&x, envp)
                           : envp;
    int r = real(pid, path, fa, attr, argv, env);
    int e = errno;
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
    if (!real_spawn)
        real_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
    return spawn_with_slabs(real_spawn, 0, pid, path, fa, attr, argv, envp);
}

SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                             const posix_spawnattr_t *attr, char *const argv[],
                             char *const envp[])
{
    if (!real_spawnp)
        real_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
    return spawn_with_slabs(real_spawnp, 1, pid, file, fa, attr, argv, envp);
}
#pragma GCC diagnostic pop
