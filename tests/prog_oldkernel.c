/*
 * prog_oldkernel: runs a command as on a kernel before 6.9, as far as the
 * supervisor's pidfds go: a seccomp filter fails pidfd_open() with any
 * flag set (PIDFD_THREAD, 6.9+) with EINVAL, the answer of a kernel that
 * does not know the flag (Debian 12's 6.1, Ubuntu 22.04's 5.15, RHEL 9's
 * 5.14). Everything else passes; the filter is inherited across fork and
 * exec, so the supervisor and the program it starts both run under it.
 *
 *   prog_oldkernel --check     installs the filter and shows it works:
 *                              pidfd_open(self, PIDFD_THREAD) says EINVAL,
 *                              pidfd_open(self, 0) gives a pidfd, and
 *                              pidfd_open(a thread, 0) none (EINVAL before
 *                              6.9, ENOENT since: this kernel's own
 *                              answer, which the filter cannot change);
 *                              prints "filter: ..." and exits 0
 *   prog_oldkernel CMD ARG...  installs it and executes CMD
 *
 * Exits 1 with a "FAIL:" line when the filter cannot be installed (the
 * test says "skip:" for a kernel without seccomp filters).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_oldkernel";

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

#define ARG1_LO (offsetof(struct seccomp_data, args) + 8)
#define ARG1_HI (ARG1_LO + 4)

static void install(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pidfd_open, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG1_LO),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3), /* flags set: EINVAL */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG1_HI),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    SYS(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static pid_t thread_tid;
static int done;

static void *idle(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    thread_tid = (pid_t)syscall(SYS_gettid);
    pthread_cond_broadcast(&cv);
    while (!done)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int check(void)
{
    install();
    long r = syscall(SYS_pidfd_open, getpid(), PIDFD_THREAD);
    CHECK(r < 0 && errno == EINVAL, "pidfd_open(self, PIDFD_THREAD): %ld (%s), want EINVAL", r,
          r < 0 ? strerror(errno) : "a pidfd");
    r = syscall(SYS_pidfd_open, getpid(), 0);
    CHECK(r >= 0, "pidfd_open(self, 0): %s", strerror(errno));
    close((int)r);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle, NULL) == 0, "pthread_create");
    pthread_mutex_lock(&mu);
    while (!thread_tid)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    r = syscall(SYS_pidfd_open, thread_tid, 0);
    int e = errno;
    CHECK(r < 0, "pidfd_open(a thread, 0) gave a pidfd");
    pthread_mutex_lock(&mu);
    done = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(t, NULL);
    printf("filter: pidfd_open(PIDFD_THREAD) says EINVAL; a plain pidfd for the leader, none "
           "for a thread (%s)\n", strerror(e));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--check") == 0)
        return check();
    CHECK(argc >= 2, "usage: prog_oldkernel --check | CMD ARG...");
    install();
    execvp(argv[1], argv + 1);
    CHECK(0, "exec %s: %s", argv[1], strerror(errno));
    return 1;
}
