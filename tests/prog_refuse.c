/*
 * prog_refuse: runs a command under a seccomp filter that refuses some
 * system calls with EPERM, as a container's profile does (Docker's refuses
 * unshare without CAP_SYS_ADMIN, pidfd_getfd without CAP_SYS_PTRACE).
 * Everything else passes; the filter is inherited across fork and exec.
 *
 *   prog_refuse NAME[,NAME...] CMD ARG...
 *
 * NAME: unshare, close_range, pidfd_getfd, process_vm_readv, epoll_pwait2
 * (x86_64's numbers; another architecture prints "skip:" and exits 77). Exits 1
 * with a "FAIL:" line
 * when the filter cannot be installed, 2 on a name it does not know.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_refuse";

static const struct {
    const char *name;
    long nr;
} calls[] = {
    {"unshare", SYS_unshare},
    {"close_range", SYS_close_range},
    {"pidfd_getfd", SYS_pidfd_getfd},
    {"process_vm_readv", SYS_process_vm_readv},
    {"epoll_pwait2", SYS_epoll_pwait2},
};
#define NCALLS (sizeof calls / sizeof calls[0])

int main(int argc, char **argv)
{
#if !defined(__x86_64__)
    (void)argc;
    (void)argv;
    printf("skip: the filter knows x86_64's numbers only\n");
    return 77;
#else
    if (argc < 3) {
        fprintf(stderr, "usage: prog_refuse NAME[,NAME...] CMD ARG...\n");
        return 2;
    }
    long nr[NCALLS];
    int n = 0;
    char list[256];
    snprintf(list, sizeof list, "%s", argv[1]);
    for (char *save = NULL, *w = strtok_r(list, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < NCALLS && strcmp(calls[i].name, w) != 0)
            i++;
        if (i == NCALLS || n == (int)NCALLS) {
            fprintf(stderr, "prog_refuse: %s: not a call it refuses\n", w);
            return 2;
        }
        nr[n++] = calls[i].nr;
    }
    /* arch check, load nr, then for each refused call: equal -> EPERM */
    struct sock_filter f[3 + 2 * NCALLS + 1];
    int k = 0;
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
    for (int i = 0; i < n; i++) {
        /* equal: on to the EPERM after every test, past the ALLOW */
        unsigned char to_eperm = (unsigned char)(n - 1 - i + 1);
        f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr[i],
                                              to_eperm, 0);
    }
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
    struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
    SYS(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    SYS(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog));
    execvp(argv[2], argv + 2);
    CHECK(0, "exec %s: %s", argv[2], strerror(errno));
    return 1;
#endif
}
