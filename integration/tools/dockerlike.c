/*
 * dockerlike [--no-ipv6] CMD [ARG...]: runs CMD (as root) with what a
 * container of Docker's defaults lacks, to find the tests that would fail
 * there rather than skip, on a machine where a container cannot be made:
 *
 *   - the capabilities: the bounding set cut to Docker's default fourteen
 *     (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP,
 *     NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP),
 *     which root's next execve takes as its own: no CAP_NET_ADMIN,
 *     CAP_SYS_ADMIN, CAP_SYS_PTRACE, CAP_SYS_RESOURCE;
 *   - the system calls its default seccomp profile (moby/profiles
 *     seccomp/default.json) refuses without those: EPERM for unshare,
 *     setns, mount, umount2, bpf, perf_event_open, syslog (CAP_SYS_ADMIN),
 *     kcmp, pidfd_getfd (CAP_SYS_PTRACE), io_uring_setup/enter/register,
 *     userfaultfd, keyctl, add_key, request_key, open_by_handle_at,
 *     name_to_handle_at, pivot_root, reboot (not in its list); ENOSYS for
 *     clone3 (so that glibc falls back to clone, as there). Not modelled:
 *     its argument checks (clone's namespace flags, socket families,
 *     personality), which the capabilities cover here;
 *   - with --no-ipv6, IPv6 on loopback: a network namespace of its own
 *     with lo up and net.ipv6.conf.*.disable_ipv6 = 1, as in a container of
 *     an IPv4-only network (no ::1).
 *
 * Exit: CMD's, or 1 with a message if a step fails (127: CMD not found).
 * `make test` so: `build/progs/dockerlike make test` (integration/README.md).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Docker's default capabilities (moby: oci/caps/defaults.go) */
static const int docker_caps[] = {
    CAP_CHOWN,  CAP_DAC_OVERRIDE,     CAP_FOWNER,  CAP_FSETID,     CAP_KILL,
    CAP_SETGID, CAP_SETUID,           CAP_SETPCAP, CAP_NET_BIND_SERVICE,
    CAP_NET_RAW, CAP_SYS_CHROOT,      CAP_MKNOD,   CAP_AUDIT_WRITE, CAP_SETFCAP,
};

static int docker_has(int cap)
{
    for (size_t i = 0; i < sizeof docker_caps / sizeof docker_caps[0]; i++)
        if (docker_caps[i] == cap)
            return 1;
    return 0;
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A network namespace of our own whose lo is up and has no ::1. */
static int no_ipv6(void)
{
    if (unshare(CLONE_NEWNET) != 0) {
        perror("dockerlike: unshare(CLONE_NEWNET)");
        return -1;
    }
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq r;
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, sizeof r.ifr_name, "lo");
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &r) != 0 ||
        (r.ifr_flags = (short)(r.ifr_flags | IFF_UP), ioctl(s, SIOCSIFFLAGS, &r) != 0)) {
        perror("dockerlike: lo up");
        return -1;
    }
    close(s);
    static const char *const knobs[] = {"all", "default", "lo"};
    for (size_t i = 0; i < sizeof knobs / sizeof knobs[0]; i++) {
        char path[64];
        snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", knobs[i]);
        if (write_file(path, "1\n") != 0 && errno != ENOENT) { /* ENOENT: IPv6 not built */
            fprintf(stderr, "dockerlike: %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

#define DENY(nr, err)                                                                              \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                           \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((err) & SECCOMP_RET_DATA))

static int filter(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI (i386): as it is */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        DENY(SYS_unshare, EPERM),
        DENY(SYS_setns, EPERM),
        DENY(SYS_mount, EPERM),
        DENY(SYS_umount2, EPERM),
        DENY(SYS_bpf, EPERM),
        DENY(SYS_perf_event_open, EPERM),
        DENY(SYS_syslog, EPERM),
        DENY(SYS_kcmp, EPERM),
        DENY(SYS_pidfd_getfd, EPERM),
        DENY(SYS_io_uring_setup, EPERM),
        DENY(SYS_io_uring_enter, EPERM),
        DENY(SYS_io_uring_register, EPERM),
        DENY(SYS_userfaultfd, EPERM),
        DENY(SYS_keyctl, EPERM),
        DENY(SYS_add_key, EPERM),
        DENY(SYS_request_key, EPERM),
        DENY(SYS_open_by_handle_at, EPERM),
        DENY(SYS_name_to_handle_at, EPERM),
        DENY(SYS_pivot_root, EPERM),
        DENY(SYS_reboot, EPERM),
        DENY(SYS_clone3, ENOSYS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog p = {.len = (unsigned short)(sizeof f / sizeof f[0]), .filter = f};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &p) != 0) {
        perror("dockerlike: seccomp");
        return -1;
    }
    return 0;
}

/* The bounding set cut to Docker's: root's next execve gets no more. */
static int drop_caps(void)
{
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        if (docker_has(cap) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            fprintf(stderr, "dockerlike: dropping capability %d: %s\n", cap, strerror(errno));
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int a = 1, v6 = 1;
    if (a < argc && strcmp(argv[a], "--no-ipv6") == 0) {
        v6 = 0;
        a++;
    }
    if (a >= argc || argv[a][0] == '-') {
        fprintf(stderr, "usage: dockerlike [--no-ipv6] CMD [ARG...]\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "dockerlike: must run as root (a container's root is what it models)\n");
        return 1;
    }
    /* the namespace and the filter while we still may; the capabilities
     * last (the filter needs CAP_SYS_ADMIN or no_new_privs, which would
     * keep set-uid programs from working as they do in a container) */
    if ((!v6 && no_ipv6() != 0) || filter() != 0 || drop_caps() != 0)
        return 1;
    execvp(argv[a], argv + a);
    fprintf(stderr, "dockerlike: %s: %s\n", argv[a], strerror(errno));
    return 127;
}
