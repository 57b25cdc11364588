/*
 * crit: shim/base/crit.c's sections for a wait in the kernel (a blocked
 * read's, interpose/recv.c), as the trampoline of lifetime/signals.c
 * drives them: here a handler of the test's own calls shim_crit_defer()
 * first, as the trampoline does, and runs the program's part only when
 * that says no.
 *
 * - A section defers a signal that comes inside it: the handler's part
 *   does not run, shim_crit_deferred() names it, and the mask hint is the
 *   program's mask (the deferral's own hold not in it).
 * - shim_crit_cycle() runs the deferred handler between leaving and
 *   entering again: it runs once, nothing is deferred after, and the
 *   section holds again (a second signal is deferred too).
 * - The hint is the thread's mask without a system call; a change the
 *   shim does not see leaves it stale, and shim_crit_mask_ask() reads the
 *   kernel's again.
 * - enter_wait inside another section holds the mask instead (only the
 *   outermost's end lets deferred signals in), and puts it back.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/base.h"
#include "shimtest.h"

TestSuite(crit, .init = shimtest_setup);

static volatile sig_atomic_t ran;

static void on_usr(int sig, siginfo_t *si, void *uc)
{
    if (shim_crit_defer(sig, si, uc))
        return; /* queued again for the section's end */
    ran++;
}

static void deferring(void)
{
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_sigaction = on_usr;
    a.sa_flags = SA_SIGINFO;
    sigemptyset(&a.sa_mask);
    cr_assert(sigaction(SIGUSR1, &a, NULL) == 0);
    cr_assert(sigaction(SIGUSR2, &a, NULL) == 0);
    shim_crit_deferring(1);
    ran = 0;
}

static uint64_t bits(const sigset_t *s)
{
    uint64_t b;
    memcpy(&b, s, sizeof b);
    return b;
}

static void kernel_mask(sigset_t *m)
{
    cr_assert(pthread_sigmask(SIG_BLOCK, NULL, m) == 0);
}

Test(crit, defers_then_cycle_runs_the_handler)
{
    deferring();
    shim_crit c;
    cr_assert(shim_crit_enter_wait(&c) == 1);
    cr_assert(!c.masked, "a section that defers, not the mask");
    raise(SIGUSR1);
    cr_assert(ran == 0, "the handler ran inside the section");
    cr_assert(shim_crit_deferred() == (1ull << (SIGUSR1 - 1)), "deferred: %#llx",
              (unsigned long long)shim_crit_deferred());
    sigset_t hint, now;
    shim_crit_mask_hint(&c, &hint);
    kernel_mask(&now);
    cr_assert(sigismember(&now, SIGUSR1) == 1, "the deferral holds it in the kernel's mask");
    cr_assert(sigismember(&hint, SIGUSR1) != 1, "the hint is the program's mask");
    shim_crit_mask_ask(&c, &hint); /* asked of the kernel while the deferral holds it */
    cr_assert(sigismember(&hint, SIGUSR1) != 1,
              "asked: the deferral's hold taken for the program's");
    cr_assert(shim_crit_cycle(&c) == 1);
    cr_assert(ran == 1, "cycle ran the deferred handler %d times", (int)ran);
    cr_assert(shim_crit_deferred() == 0);
    raise(SIGUSR2); /* inside the section entered again */
    cr_assert(ran == 1, "the section did not hold after cycle");
    cr_assert(shim_crit_deferred() == (1ull << (SIGUSR2 - 1)));
    shim_crit_leave(&c);
    cr_assert(ran == 2, "leave ran the second");
    kernel_mask(&now);
    cr_assert(sigismember(&now, SIGUSR1) != 1 && sigismember(&now, SIGUSR2) != 1,
              "a deferred signal left held");
}

Test(crit, hint_is_the_mask_and_ask_reads_it_again)
{
    deferring();
    sigset_t blk, now, hint;
    sigemptyset(&blk);
    sigaddset(&blk, SIGWINCH);
    cr_assert(pthread_sigmask(SIG_BLOCK, &blk, NULL) == 0);
    shim_crit_mask_changed(); /* as the interposed pthread_sigmask says */
    shim_crit c;
    cr_assert(shim_crit_enter_wait(&c) == 1 && !c.masked);
    shim_crit_mask_hint(&c, &hint);
    kernel_mask(&now);
    cr_assert(bits(&hint) == bits(&now), "hint %#llx, kernel %#llx",
              (unsigned long long)bits(&hint), (unsigned long long)bits(&now));
    /* a change the shim does not see: the raw system call */
    uint64_t more = 1ull << (SIGURG - 1);
    cr_assert(syscall(SYS_rt_sigprocmask, SIG_BLOCK, &more, NULL, sizeof more) == 0);
    shim_crit_mask_hint(&c, &hint);
    cr_assert(sigismember(&hint, SIGURG) != 1, "the hint is asked once, not at every call");
    shim_crit_mask_ask(&c, &hint);
    cr_assert(sigismember(&hint, SIGURG) == 1 && sigismember(&hint, SIGWINCH) == 1,
              "ask reads the kernel's mask");
    shim_crit_leave(&c);
}

Test(crit, enter_wait_inside_a_section_holds_the_mask)
{
    deferring();
    shim_crit outer, inner;
    sigset_t before, now;
    kernel_mask(&before);
    cr_assert(shim_crit_enter(&outer) == 1 && !outer.masked);
    cr_assert(shim_crit_enter_wait(&inner) == 1);
    cr_assert(inner.masked, "nested: the mask, not a deferral only the outer's end lets in");
    kernel_mask(&now);
    cr_assert(sigismember(&now, SIGUSR1) == 1 && sigismember(&now, SIGSEGV) != 1,
              "held: every signal but the faults");
    sigset_t hint;
    shim_crit_mask_hint(&inner, &hint);
    cr_assert(bits(&hint) == bits(&before), "the mask to put back");
    cr_assert(shim_crit_cycle(&inner) == 1, "nothing to cycle under the mask");
    shim_crit_leave(&inner);
    shim_crit_leave(&outer);
    kernel_mask(&now);
    cr_assert(bits(&now) == bits(&before), "the mask put back");
}
