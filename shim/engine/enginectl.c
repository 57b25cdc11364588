/*
 * enginectl.c: the process's engines as a whole, for the layers above the
 * engine, which do not touch G (engine.h) themselves: how many run and
 * which, whose they are (the pid, a keeper's), the command lock, pausing
 * them all at their safe point and resuming them, what fork does to them,
 * and the steps of handing them to a keeper (keeper.c decides when and
 * forks it; the engines' state is changed here).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#include "base/poison.h"

/* ---- which engines, whose ---- */

int shim_engines_nrun(void)
{
    return __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
}

struct engine *shim_engine_nth(int k)
{
    return &G.e[k];
}

struct engine *shim_engine_if_running(unsigned k)
{
    int nrun = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    return k < (unsigned)nrun ? &G.e[k] : NULL;
}

int shim_engine_index(const struct engine *e)
{
    return (int)(e - G.e);
}

pid_t shim_engines_pid(void)
{
    return __atomic_load_n(&G.pid, __ATOMIC_RELAXED);
}

int shim_engines_keeper(void)
{
    return __atomic_load_n(&G.keeper_mode, __ATOMIC_RELAXED);
}

int shim_engines_in_handoff(void)
{
    return __atomic_load_n(&G.in_handoff, __ATOMIC_RELAXED);
}

void shim_engines_set_handoff(int on)
{
    G.in_handoff = on;
}

/* ---- the command lock ---- */

void shim_engines_lock(void)
{
    shim_mutex_lock(&G.mu);
}

void shim_engines_unlock(void)
{
    shim_mutex_unlock(&G.mu);
}

int shim_engines_wait(const struct timespec *until)
{
    return pthread_cond_timedwait(&G.cv, &G.mu.m, until);
}

void shim_engines_wake(void)
{
    pthread_cond_broadcast(&G.cv);
}

void shim_engines_lock_renew(void)
{
    shim_mutex_init(&G.mu);
    shim_mutex_lock(&G.mu);
}

int shim_engines_here_locked(void)
{
    return G.pid == shim_procenv_self() ? G.nrun : 0;
}

int shim_engines_here(void)
{
    shim_mutex_lock(&G.mu);
    int running = G.nrun > 0 && G.pid == shim_procenv_self();
    shim_mutex_unlock(&G.mu);
    return running;
}

/* ---- pausing them all ---- */

/* Whether every running engine is parked (paused = 1) or, for resume,
 * has left the pause (paused = 0; a broken engine stays "paused"). */
static int all_paused_locked(int want)
{
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        if (want ? !e->paused : e->paused && !e->broken)
            return 0;
    }
    return 1;
}

void shim_engines_pause(struct engine *self)
{
    if (self) /* parked here, not in its loop: its writes in memory taken (txring.c) */
        shim_txring_close(self, 1);
    shim_mutex_lock(&G.mu);
    __atomic_store_n(&G.pause_req, 1, __ATOMIC_RELEASE); /* read without G.mu too (engine.c) */
    if (self)
        self->paused = 1;
    for (int k = 0; k < G.nrun; k++) {
        uint64_t one = 1;
        ssize_t w = real_write(shim_engine_doorbell(&G.e[k]), &one, sizeof one);
        (void)w;
    }
    while (!all_paused_locked(1))
        pthread_cond_wait(&G.cv, &G.mu.m);
    shim_mutex_unlock(&G.mu);
}

/* Releases the paused engines and waits until each has left the pause, so
 * that a pause requested right after cannot mistake the old
 * acknowledgement for a new one. */
static void resume_locked(void)
{
    __atomic_store_n(&G.pause_req, 0, __ATOMIC_RELEASE); /* read without G.mu too (engine.c) */
    pthread_cond_broadcast(&G.cv);
    while (!all_paused_locked(0))
        pthread_cond_wait(&G.cv, &G.mu.m);
}

void shim_engine_resume(void)
{
    shim_mutex_lock(&G.mu);
    resume_locked();
    shim_mutex_unlock(&G.mu);
}

pid_t shim_engine_table_tid(const struct engine *e)
{
    return shim_fds_apart() ? e->apart_tid : 0;
}

void shim_engines_run_parked(struct engine *e, void (*fn)(void *), void *arg)
{
    if (!shim_fds_apart() || shim_fds_in_engines() == shim_engine_index(e) + 1) {
        fn(arg); /* this thread's table is e's */
        return;
    }
    shim_mutex_lock(&G.mu);
    if (!e->broken) { /* a broken one's loop is gone, and its fds */
        e->park_fn = fn;
        e->park_arg = arg;
        pthread_cond_broadcast(&G.cv);
        while (e->park_fn)
            pthread_cond_wait(&G.cv, &G.mu.m);
    }
    shim_mutex_unlock(&G.mu);
}

/* ---- handing them to a keeper ---- */

int shim_engines_listener_backlog(uint64_t ino)
{
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        for (uint32_t i = 0; i < e->nsocks; i++) {
            esock *s = e->socks[i];
            if (s && s->listener && s->listener_ino == ino)
                return s->backlog;
        }
    }
    return -1;
}

int shim_engines_listeners(uint64_t *ino, int *backlog, int max)
{
    int n = 0;
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        for (uint32_t i = 0; i < e->nsocks; i++) {
            esock *s = e->socks[i];
            if (!s || !s->listener)
                continue;
            if (n < max) {
                ino[n] = s->listener_ino;
                backlog[n] = s->backlog;
            }
            n++;
        }
    }
    return n;
}

int shim_engines_may_hand_over(int for_exec)
{
    shim_mutex_lock(&G.mu);
    int run = G.nrun && !G.broken && G.pid == shim_procenv_self() && !G.keeper_mode && !G.handed_over;
    if (run && !for_exec)
        G.handed_over = 1;
    shim_mutex_unlock(&G.mu);
    return run;
}

void shim_engines_each(shim_engine_fn fn, rudp_time now)
{
    for (int k = 0; k < G.nrun; k++)
        fn(&G.e[k], now);
}

pid_t shim_engines_keep(int only, int *n)
{
    G.keeper_mode = 1;
    pthread_cond_init(&G.cv, NULL); /* the parent's paused engines waited on it */
    pid_t handed = G.pid;
    __atomic_store_n(&G.pid, getpid(), __ATOMIC_RELAXED); /* read without the lock (txring.c) */
    __atomic_store_n(&G.pause_req, 0, __ATOMIC_RELEASE); /* read without G.mu too (engine.c) */
    G.in_handoff = 0;
    atomic_store(&G.sig_handoff, 0);
    /* The app's copies of listeners may be gone: check them soon. */
    rudp_time now = shim_now();
    int kept = 0;
    for (int k = 0; k < G.nrun; k++) {
        struct engine *e = &G.e[k];
        e->paused = 0;
        e->park_fn = NULL;
        if (only >= 0 && k != only) {
            /* another table's: its own keeper carries it, this one never
             * touches it (its fds are not here) */
            e->broken = 1;
            continue;
        }
        kept++;
        shim_appsend_renew(e); /* its loop held it at the fork */
        shim_txring_init(e);   /* an app thread may have held the arena's */
        for (uint32_t i = 0; i < e->nsocks; i++)
            if (e->socks[i] && e->socks[i]->listener)
                e->socks[i]->alive_check = now;
        e->retry_at = now;
    }
    if (only <= 0)
        shim_control_reopen(&G.e[0]); /* a new pid: rudp-stat finds the keeper */
    else
        shim_control_forget(); /* engine 0's, in another table */
    *n = kept;
    return handed;
}

void shim_engines_run_kept(void)
{
    /* Only this thread came through fork: the first engine kept runs
     * here, the others on threads of their own, each until its work is
     * done. */
    int here = -1;
    for (int k = 0; k < G.nrun && here < 0; k++)
        if (!G.e[k].broken)
            here = k;
    int started[SHIM_ENGINES_MAX] = {0};
    for (int k = here + 1; here >= 0 && k < G.nrun; k++) {
        if (!G.e[k].broken)
            started[k] = pthread_create(&G.e[k].thread, NULL, shim_engine_loop, &G.e[k]) == 0;
        if (!started[k]) /* nobody runs it: the others do not wait for it to finish */
            atomic_store(&G.e[k].keeper_idle, 1);
    }
    if (here >= 0) {
        G.e[here].thread = pthread_self(); /* its engine's thread now (grow_efd) */
        shim_engine_loop(&G.e[here]);
    }
    for (int k = 0; k < G.nrun; k++)
        if (started[k])
            pthread_join(G.e[k].thread, NULL);
}

void shim_engines_report_remaining(void)
{
    if (G.pid == shim_procenv_self() && !G.keeper_mode)
        for (int k = 0; k < G.nrun; k++)
            if (G.e[k].ctx && G.e[k].paused)
                rudp_ctx_report_remaining(G.e[k].ctx);
}

/* ---- a fatal signal (keeper.c, signals.c) ---- */

int shim_engine_signal_handoff(void)
{
    int n = __atomic_load_n(&G.nrun, __ATOMIC_ACQUIRE);
    if (!n || __atomic_load_n(&G.pid, __ATOMIC_RELAXED) != shim_procenv_self() ||
        __atomic_load_n(&G.keeper_mode, __ATOMIC_RELAXED) || G.e[0].broken)
        return 0;
    int idle = 0;
    if (atomic_compare_exchange_strong(&G.sig_handoff, &idle, 1)) {
        uint64_t one = 1;
        ssize_t w = real_write(G.e[0].evfd, &one, sizeof one);
        (void)w;
    }
    return 1;
}

int shim_engine_signal_handed(void)
{
    return atomic_load(&G.sig_handoff) == 2;
}

void shim_engines_signal_done(struct engine *self)
{
    atomic_store(&G.sig_handoff, 2);
    if (!self)
        return;
    shim_mutex_lock(&G.mu);
    while (G.pause_req)
        pthread_cond_wait(&G.cv, &G.mu.m);
    self->paused = 0;
    pthread_cond_broadcast(&G.cv);
    shim_mutex_unlock(&G.mu);
    shim_txring_close(self, 0);
}

/* ---- fork ---- */

/* Every fork parks the engine at its safe point first: a child forked
 * while the engine thread held an allocator's lock (libasan's is not
 * fork-safe) would inherit it held and hang at its first malloc, and the
 * engine's state is consistent for a keeper only there. */
static int fork_paused;

void shim_engine_atfork_prepare(void)
{
    shim_mutex_lock(&G.mu);
    int park = G.nrun && !G.broken && G.pid == shim_procenv_self() && !G.in_handoff && !G.keeper_mode;
    shim_mutex_unlock(&G.mu);
    fork_paused = 0;
    if (park) {
        shim_engines_pause(NULL);
        fork_paused = 1;
    }
    shim_mutex_lock(&G.mu);
    shim_ownfds_lock();
    shim_qlog_atfork_prepare();
}

void shim_engine_atfork_parent(void)
{
    shim_qlog_atfork_parent();
    shim_ownfds_unlock();
    if (fork_paused)
        resume_locked();
    fork_paused = 0;
    shim_mutex_unlock(&G.mu);
}

void shim_engine_atfork_child(void)
{
    /* The prepare handler locked these in this very thread: unlock them
     * (re-initialising a locked mutex is undefined, and TSan says so). */
    shim_qlog_atfork_child(G.in_handoff);
    shim_ownfds_unlock();
    shim_mutex_unlock(&G.mu);
    if (G.in_handoff)
        return; /* becoming a keeper: the engines' state and fds are the point */
    shim_engine_ids_anew(); /* its connections' ids apart from the parent's */
    /* The parent's engines keep serving every connection made before the
     * fork; this child must not hold copies of their fds, or a bridge the
     * parent closes would stay open here. The child gets engines of its
     * own for what it opens itself. The log file and the qlog directory
     * are the child's too: its own connections log and trace there. */
    int keep[2] = {shim_cfg.log_fd > 2 ? shim_cfg.log_fd : -1, shim_cfg.qlog_dirfd};
    shim_close_all_owned(keep, 2);
    shim_fds_set_apart(0); /* the parent's engines' table: this child's choose anew */
    shim_control_forget();
    pthread_cond_init(&G.cv, NULL);
    /* Memory of the parent's engines is left as is: it belongs to threads
     * that do not exist here and is never touched again. */
    G.nrun = 0;
    atomic_store(&G.appfd1, 0); /* closed with the parent's engines' fds */
    G.broken = 0;
    __atomic_store_n(&G.pause_req, 0, __ATOMIC_RELEASE); /* read without G.mu too (engine.c) */
    G.handed_over = 0;
    atomic_store(&G.sig_handoff, 0);
    atomic_store(&G.answering, 0); /* the parent's engines' answers, not ours */
    atomic_store(&G.answer_waiters, 0);
    atomic_store(&G.answer_waits, 0);
    memset((void *)G.clients, 0, sizeof G.clients); /* ... and their clients */
    memset(G.e, 0, sizeof G.e);
    shim_bridge_kept_forget();
}
