/* rusage -o FILE -- CMD [ARG...]: runs CMD and writes what it cost, all its
 * threads and the children it reaped, to FILE in perf stat's -x, form
 * (integration/bench/report.py read_perf): CPU in ms as "task-clock",
 * voluntary and involuntary context switches as "context-switches".
 *
 * Why not perf stat: its per-task counters and its tracepoint on every
 * system call cost each context switch and each call, so a transport that
 * makes more of them is slowed more (redis-benchmark under the shim, 50
 * clients, this VM: 45,000 requests/s bare, 27,000-35,000 under perf stat;
 * kernel TCP 54,000 and 50,000). The bench's measured passes run under
 * this; the system calls are counted by perf in a pass of their own.
 *
 * Exits with CMD's status (128 + its signal if one ended it). SIGINT,
 * SIGTERM, SIGHUP and SIGQUIT are passed on to CMD, which decides; this
 * waits for it and writes FILE, as perf stat does. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;

static void pass_on(int sig)
{
    if (child_pid > 0)
        kill((pid_t)child_pid, sig);
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "-o") != 0 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: rusage -o FILE -- CMD [ARG...]\n");
        return 2;
    }
    const char *out = argv[2];
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = pass_on;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigset_t block, old;
    sigemptyset(&block);
    const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaddset(&block, sigs[i]);
    /* held until the child's pid is known, so none is lost between */
    sigprocmask(SIG_BLOCK, &block, &old);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("rusage: fork");
        return 126;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        signal(SIGQUIT, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(argv[4], argv + 4);
        fprintf(stderr, "rusage: %s: %s\n", argv[4], strerror(errno));
        _exit(127);
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("rusage: wait4");
            return 126;
        }
    }
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "rusage: %s: %s\n", out, strerror(errno));
    } else {
        double ms = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
        fprintf(f, "# rusage of %s (wait4: all threads, reaped children)\n", argv[4]);
        fprintf(f, "%.3f,msec,task-clock,,,\n", ms);
        fprintf(f, "%ld,,context-switches,,,\n", ru.ru_nvcsw + ru.ru_nivcsw);
        fclose(f);
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
