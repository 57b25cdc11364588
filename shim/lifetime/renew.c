/*
 * renew.c: a process made without fork() starts afresh (lifetime's half of
 * base/procenv.c, which notices such a process: the wipe-on-fork mark read
 * 0 on an interposed entry, shim_procenv_check). What the fork handlers do
 * in a forked child is done here, once, by the first thread of the new
 * process to enter the shim; every other thread waits for it.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <unistd.h>

#include "lifetime.h"

#include "base/poison.h"

static _Atomic pid_t renewing;  /* the process whose first thread renews its state */
static _Atomic pid_t renewed;   /* ... and it is done */

/* A raw clone's child: the engines' threads are the parent's. What the
 * fork handlers (sock.c, enginectl.c) do in a child, done now. Their locks may
 * have been held at the clone by a thread this process does not have:
 * each is made anew and taken, as the prepare handlers would have taken
 * it, for the child handlers to release. */
static void renew(void)
{
    shim_alloc_lock_renew(); /* first: whatever follows may allocate */
    shim_engines_lock_renew();
    shim_ownfds_lock_renew();
    shim_qlog_lock_renew();
    shim_appfd_lock_renew();
    shim_fdtab_lock_renew();
    shim_front_lock_renew();
    shim_slots_lock_renew();
    shim_relays_renew();
    shim_appfd_atfork_child();
    shim_front_atfork_child();
    shim_fdtab_atfork_child();
    shim_slots_atfork_child();
    shim_names_atfork_child();
    shim_engine_atfork_child();
    SHIM_LOG(RUDP_LOG_INFO, "a new process made without fork() (its parent's engines are %d's): "
                            "its own engine starts with its first connection",
             (int)shim_engines_pid());
}

void shim_renew_process(void)
{
    pid_t me = getpid();
    /* A keeper being born (keeper.c) is a fork child that keeps the
     * engines on purpose; it takes them over (shim_engines_keep). */
    if (shim_engines_in_handoff() || shim_engines_keeper()) {
        if (shim_engines_pid() == me)
            shim_procenv_own_page();
        return;
    }
    if (__atomic_load_n(&renewed, __ATOMIC_ACQUIRE) == me)
        return; /* an older kernel: the check runs on every entry */
    pid_t was = __atomic_load_n(&renewing, __ATOMIC_RELAXED);
    if (was != me && __atomic_compare_exchange_n(&renewing, &was, me, 0, __ATOMIC_ACQ_REL,
                                                 __ATOMIC_RELAXED)) {
        /* The first thread of this process here: nrun is what the parent
         * left (0 after fork(), whose handlers did the work). */
        if (shim_engines_nrun() && shim_engines_pid() != me)
            renew();
        shim_procenv_settled(me);
        __atomic_store_n(&renewed, me, __ATOMIC_RELEASE);
        return;
    }
    /* Another thread of this new process renews its state: wait for it. */
    while (__atomic_load_n(&renewed, __ATOMIC_ACQUIRE) != me)
        sched_yield();
}
