/*
 * sandbox: shim/base/sandbox.c's answer to whether the app threads may make
 * the calls of their own paths. Its child, asked under no filter, says yes;
 * under a filter that refuses one of the calls (EPERM), kills for one, or
 * traps one (SIGSYS, with a handler the program installed), it says no,
 * naming why, and this process lives on, its handler never run. A process
 * that started under a filter (Seccomp: 2, read at start) asks once, at
 * the first question: yes under a filter allowing every call (Docker's
 * default profile allows them), no under one that refuses ppoll; a filter
 * the program installs itself says no whatever the child said. A reaper
 * of the program's taking every child (__WALL) changes no answer; a call
 * a supervisor holds ends the question at 2 s, with no. Each test installs
 * its filter in its own process (Criterion runs each test in one).
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(sandbox, .init = shimtest_setup);

/* Installs a filter that answers `action` to system call nr, everything
 * else allowed; with flags (SECCOMP_FILTER_FLAG_NEW_LISTENER) returns what
 * seccomp() does. */
static int filter_flags(long nr, unsigned action, unsigned flags)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {.len = sizeof f / sizeof f[0], .filter = f};
    cr_assert(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs: %s", strerror(errno));
    int r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
    cr_assert(r >= 0, "seccomp: %s", strerror(errno));
    return r;
}

static void filter(long nr, unsigned action)
{
    filter_flags(nr, action, 0);
}

Test(sandbox, the_calls_are_allowed_without_a_filter)
{
    char why[96] = "";
    cr_assert(shim_sandbox_probe_calls(why, sizeof why) == 1, "refused: %s", why);
}

Test(sandbox, a_refused_call_is_named)
{
    filter(SYS_ppoll, SECCOMP_RET_ERRNO | EPERM);
    char why[96] = "";
    cr_assert(shim_sandbox_probe_calls(why, sizeof why) == 0);
    cr_assert(strcmp(why, "ppoll refused") == 0, "why: %s", why);
}

Test(sandbox, a_filter_that_kills_kills_only_the_child)
{
    filter(SYS_process_vm_readv, SECCOMP_RET_KILL_PROCESS);
    char why[96] = "";
    cr_assert(shim_sandbox_probe_calls(why, sizeof why) == 0);
    cr_assert(strcmp(why, "killed by signal 31") == 0, "why: %s", why); /* SIGSYS */
    cr_assert(getpid() > 0, "and this process goes on");
}

static volatile sig_atomic_t handled;
static void on_sigsys(int sig)
{
    (void)sig;
    handled = 1;
}

Test(sandbox, a_trap_runs_no_handler_of_the_program)
{
    struct sigaction sa = {.sa_handler = on_sigsys};
    cr_assert(sigaction(SIGSYS, &sa, NULL) == 0);
    filter(SYS_signalfd4, SECCOMP_RET_TRAP);
    char why[96] = "";
    cr_assert(shim_sandbox_probe_calls(why, sizeof why) == 0);
    cr_assert(strcmp(why, "killed by signal 31") == 0, "why: %s", why);
    cr_assert(handled == 0, "the program's SIGSYS handler ran");
}

Test(sandbox, started_under_a_filter_that_allows_the_calls)
{
    filter(SYS_reboot, SECCOMP_RET_ERRNO | EPERM); /* a filter, none of our calls */
    shim_sandbox_start();
    cr_assert(shim_sandboxed() == 0, "a filter allowing the calls keeps the paths on");
    cr_assert(shim_sandboxed() == 0, "and asks once");
}

Test(sandbox, started_under_a_filter_that_refuses_one)
{
    filter(SYS_pselect6, SECCOMP_RET_ERRNO | EPERM);
    shim_sandbox_start();
    cr_assert(shim_sandboxed() == 1);
}

Test(sandbox, a_filter_the_program_installs_wins)
{
    shim_sandbox_start();
    cr_assert(shim_sandboxed() == 0, "no filter at start");
    shim_sandbox_set();
    cr_assert(shim_sandboxed() == 1);
}

static volatile int reaping = 1;
static volatile int reaped_others;

/* A reaper of the program's that takes every child, clone children too */
static void *reaper(void *arg)
{
    (void)arg;
    while (reaping) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | __WALL) == 0 && si.si_pid != 0)
            reaped_others++;
    }
    return NULL;
}

Test(sandbox, a_reaper_of_the_programs_does_not_change_the_answer)
{
    pthread_t t;
    cr_assert(pthread_create(&t, NULL, reaper, NULL) == 0);
    int ok = 0;
    char why[96] = "";
    for (int i = 0; i < 20; i++)
        ok += shim_sandbox_probe_calls(why, sizeof why);
    reaping = 0;
    pthread_join(t, NULL);
    cr_assert(ok == 20, "only %d of 20 said yes (last: %s); the reaper took %d", ok, why,
              reaped_others);
}

Test(sandbox, a_call_held_by_a_supervisor_that_never_answers, .timeout = 20)
{
    /* SECCOMP_RET_USER_NOTIF with its listener kept open and never read:
     * the child's getpeername waits for ever; the question ends at 2 s */
    int listener = filter_flags(SYS_getpeername, SECCOMP_RET_USER_NOTIF,
                                SECCOMP_FILTER_FLAG_NEW_LISTENER);
    char why[96] = "";
    cr_assert(shim_sandbox_probe_calls(why, sizeof why) == 0);
    cr_assert(strcmp(why, "no answer within 2000 ms") == 0, "why: %s", why);
    close(listener);
}
