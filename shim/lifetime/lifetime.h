/*
 * lifetime.h: the lifetime layer, for interpose/ (layers: base/base.h).
 *
 * Contract of lifetime/: a process's life as the shim sees it, and its
 * connections outliving it: a keeper process that carries the engines on
 * after exec and exit (keeper.c, named in ps by proctitle.c); what an exec
 * passes to the new image (execpass.c, newimage.c) and a connect racing
 * kernel TCP across it (exechand.c); the signals that would end the process
 * (signals.c); a CLONE_VM child's fds (adopt.c); a process made without
 * fork() (renew.c). Uses ports/, engine/, state/ and base/.
 */
#ifndef SHIM_LIFETIME_H
#define SHIM_LIFETIME_H

#include "ports/ports.h"

/* lifetime.c: what the engine calls of a process's lifetime, registered
 * with it (engine/hooks.h); from the shim's init, before any engine runs. */
void shim_lifetime_init(void);

/* A keeper names itself "rudp-keeper" and its command line "rudp-keeper:
 * <the program's>", so ps does not show it as the program (proctitle.c).
 * Single-threaded, in the keeper before it starts engine threads. */
void shim_proctitle_keeper(void);

/* newimage.c: whether the image exec'd from path (searched in PATH if
 * search and it has no '/'), or from fd when path is NULL, with envp
 * will run the shim: its LD_PRELOAD (or /etc/ld.so.preload) names this
 * library, and it is a dynamic ELF of our class and machine, not set-uid
 * or set-gid. 1 where it cannot tell. resetids: the child runs with our
 * real ids (posix_spawn's POSIX_SPAWN_RESETIDS). Safe after vfork(). The
 * slabs go only to an image that runs the shim. shim_newimage_init (at
 * start-up) finds our own file. */
int shim_newimage_runs_shim(const char *path, int fd, int search, char *const envp[],
                            int resetids);
void shim_newimage_init(void);

/* ---- exechand.c: a connect racing kernel TCP across exec ----
 *
 * shim_exechand_prepare, before the engines are handed over for exec: if
 * some connect races, makes the pair whose one end the keeper keeps and
 * whose other (x->hand, close-on-exec) the keeper passes to the new image
 * (execpass.c) with the racing app fds (x->hand_apps); shim_exechand_failed
 * undoes it when the exec failed. In the keeper: shim_exechand_live says whether
 * a new image can take sockets; shim_exechand_send passes TCP socket tfd
 * for the app's fd app_fd (inode app_ino, slot, connection id) and returns
 * 0 or a negative errno; shim_exechand_answer returns 1 with *result (1:
 * it is at the app's fd; -1: the app had closed it) once the new image
 * answered for id, -1 if it never will (its end is closed), 0 not yet;
 * shim_exechand_idle closes the keeper's end once nothing races any more.
 * shim_exechand_adopt, at the new image's start-up, takes the pair the
 * keeper passed (shim_execpass_hand) and starts the thread that puts the
 * sockets in place. */
/* fn(&fd, ctx) for each field naming an fd of the program's table that a
 * keeper needs (keeper.c copies them into the engines' own table). */
void shim_exechand_each_fd(void (*fn)(int *fd, void *ctx), void *ctx);
void shim_execpass_each_fd(void (*fn)(int *fd, void *ctx), void *ctx);
void shim_exechand_prepare(shim_exec_env *x);
void shim_exechand_failed(shim_exec_env *x);
int shim_exechand_live(void);
int shim_exechand_send(int tfd, int app_fd, uint64_t app_ino, uint32_t slot, uint64_t id);
int shim_exechand_answer(uint64_t id, int *result);
void shim_exechand_idle(void);
void shim_exechand_adopt(void);

/* ---- execpass.c: what our exec passes to the new image, through the keeper ----
 *
 * shim_execpass_prepare (exec, before the hand-over, for an image that runs
 * the shim): copies of the slabs and the racing pair's end, all
 * close-on-exec, and an abstract socket with a random name to serve them
 * on (x->pass_val), held for the keeper to be forked. shim_execpass_env,
 * after the hand-over (keeper: whether one was forked): where no keeper
 * serves them, forks a holder, or lets the copies cross the exec open
 * when no other thread shares the fd table; then our copies are closed
 * and the environment to exec with returned (shim_slots_exec_env).
 * shim_execpass_failed: the exec failed, the holder is told to leave.
 * shim_execpass_keeper (in the keeper, once the exec of pid from happened)
 * serves them on a thread, if that pid prepared them; shim_execpass_keeper_wait waits for it. shim_execpass_adopt
 * (the new image's start-up) fetches them; shim_execpass_hand hands the
 * pair's end (-1 if none) and the app fds to exechand.c. */
void shim_execpass_prepare(shim_exec_env *x);
char *const *shim_execpass_env(shim_exec_env *x, int keeper, char *const envp[]);
void shim_execpass_failed(shim_exec_env *x);
void shim_execpass_keeper(pid_t from);
void shim_execpass_keeper_wait(void);
void shim_execpass_adopt(void);
int shim_execpass_hand(const char **apps);

/* relay.c. In a keeper, or for a CLONE_VM child's connect (fallback.c): carries a
 * connection on between the bridge's end efd and the TCP socket tfd (both
 * ours from then on, engine-owned), on threads of its own, and retires
 * slot (UINT32_MAX: none) when it ends; 0 or -errno (then both are still
 * the caller's). shim_relays_wait returns once every relay has
 * ended. */
int shim_relay_start(int efd, int tfd, uint32_t slot);
void shim_relays_wait(void);
/* How many relays run (a keeper is needed for them). Before the keeper's
 * fork shim_relays_park stops every relay's threads at a safe point; an
 * exec that fails lets them go on (shim_relays_unpark); the keeper starts
 * threads for those in its table (shim_relays_adopt). Fork handlers
 * (sock.c): keeper is 1 in a keeper being born, which keeps them. */
int shim_relays_live(void);
void shim_relays_count_here(void *n_out);
void shim_relays_park(void);
void shim_relays_unpark(void);
void shim_relays_adopt(void);
void shim_relays_atfork_prepare(void);
void shim_relays_atfork_parent(void);
void shim_relays_atfork_child(int keeper);
/* A process made without fork(): the parent's relays are forgotten. */
void shim_relays_renew(void);

/* At exit: whatever the engine still carries goes on in a keeper process. */
void shim_keeper_exit(void);

/*
 * Before exec or _exit: pause the engine and fork a keeper that takes over
 * its connections and listeners. Returns 0 if there was nothing to hand
 * over, -1 on failure, else > 0; for exec, *abort_fd then receives the
 * pipe on which to say the exec failed (write a byte, close it, then call
 * shim_engine_resume()); on success exec closes it and the keeper starts.
 */
pid_t shim_keeper_handoff(int for_exec, int *abort_fd);

/* adopt.c: in a child with an fd table of its own (shim_procenv_table()
 * != 0), has engine e of the owner copy fds[0..n) (n <= 4) into the
 * owner's table; where the engines keep their fds in tables of their own
 * (enginestart.c), into e's. On success fds[] hold the engine's numbers
 * and the caller's copies are closed. -ENOSYS: no engine runs; -EMFILE:
 * e's table is full; -EPERM and the like: pidfd_getfd refused;
 * -ETIMEDOUT: no engine answered in 10 s. On failure the caller's fds are
 * as they were. Logged once. */
int shim_adopt_fds(struct engine *e, int *fds, int n);

/* ---- renew.c: a process made without fork() (base/procenv.c notices) ---- */

/* The mark read 0: in a child that no fork handler prepared (a raw
 * clone()), forgets the parent's engines as a forked child does; after
 * fork(), only stops checking until an engine starts here. */
void shim_renew_process(void);
/* On every interposed entry: one load and a compare, then nothing, unless
 * this is a new process. */
static inline void shim_procenv_check(void)
{
    volatile uint8_t *m = __atomic_load_n(&shim_procenv_mark, __ATOMIC_ACQUIRE);
    if (__builtin_expect(m != NULL && *m == 0, 0))
        shim_renew_process();
}

/* ---- signals.c: a stand-in for the default action of the signals that end the process ---- */

void shim_signals_init(void);
void shim_signals_off(void); /* a keeper: signals are its own business */
/* The engines handed to a keeper from a signal handler, as the stand-in
 * does: engine 0 does it between two turns, and this waits 5 s at most
 * for it (the thread the handler interrupted may hold what a fork
 * takes, as glibc's allocator lock: then the connections end with the
 * process). Only what a handler may do: a write and nanosleep. */
void shim_signals_hand_over(void);
/* fork: the registry of the program's handlers (signals.c) unlocked in
 * both processes, never inherited held */
void shim_signals_atfork_prepare(void);
void shim_signals_atfork_parent(void);
void shim_signals_atfork_child(void);

/* In a keeper: whether the process that handed its engines over (at exit,
 * _exit or a fatal signal) may still be exiting, so that its copies of the
 * app's listeners must not count as held (keeper.c). */
int shim_keeper_handing_over(rudp_time now);

/* Engine 0's thread, asked by a fatal signal's stand-in: hands the engines
 * to a keeper and stays parked (keeper.c). */
void shim_keeper_take_signal(struct engine *self);

/* ---- adopt.c: a CLONE_VM child's fds, copied into the owner's table ---- */

struct shim_adopt_req;
/* CMD_ADOPT, on the engine thread: copies the child's fds (pidfd_getfd),
 * answers and wakes it. Consumes the engine's reference. */
void shim_adopt_run(struct shim_adopt_req *a);
/* In a child with an fd table of its own: a number of its table that
 * writes to e's eventfd (*own 1: a copy the caller closes after), or
 * -errno if it cannot have one (pidfd_getfd refused). */
int shim_adopt_wake_fd(struct engine *e, int *own);

/* signals.c: 1 when a read() the signals in pending (and not in blocked)
 * interrupt would say EINTR: one has a handler without SA_RESTART. */
int shim_signals_interrupt(const sigset_t *pending, const sigset_t *blocked);
/* ... 1 when a poll() would say EINTR: one has a handler (poll() is never
 * restarted, whatever SA_RESTART says: man 7 signal). */
int shim_signals_handled(const sigset_t *pending, const sigset_t *blocked);
/* ... and, every signal held back, lets in exactly those of pending that
 * blocked does not block (their handlers run now), then holds every one
 * back again: one that comes meanwhile stays pending for the caller's next
 * look, where letting in the whole mask would run its handler unseen (a
 * read restarted, a poll() gone on waiting, though a handler ran). */
void shim_signals_let_in(const sigset_t *pending, const sigset_t *blocked);

#endif
