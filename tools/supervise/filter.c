/* Stage 1's filter, assembled for an architecture's numbers (filter.h). */
#include <elf.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "filter.h"

/* Each architecture's numbers, written out: the kernel's tables
 * (arch/x86/entry/syscalls/syscall_64.tbl; aarch64 takes the generic
 * include/uapi/asm-generic/unistd.h), which never renumber a call. The
 * build checks the table of the architecture it builds for against its
 * own <sys/syscall.h>, so a cross build checks the other's. */
#define X86_64_CALLS(X)                                                                       \
    X(connect, 42) X(getsockname, 51) X(getpeername, 52) X(bind, 49) X(listen, 50)            \
    X(accept, 43) X(accept4, 288) X(getsockopt, 55) X(setsockopt, 54) X(ioctl, 16)            \
    X(sendto, 44) X(sendmsg, 46)
#define AARCH64_CALLS(X)                                                                      \
    X(connect, 203) X(getsockname, 204) X(getpeername, 205) X(bind, 200) X(listen, 201)       \
    X(accept, 202) X(accept4, 242) X(getsockopt, 209) X(setsockopt, 208) X(ioctl, 29)         \
    X(sendto, 206) X(sendmsg, 211)

#define FIELD(call, nr) .call = nr,
#define SAME_AS_KERNEL(call, nr) _Static_assert(SYS_##call == nr, "SYS_" #call);

const struct filter_abi filter_abi_x86_64 = {.name = "x86_64", .arch = AUDIT_ARCH_X86_64,
                                             .machine = EM_X86_64, X86_64_CALLS(FIELD)};
const struct filter_abi filter_abi_aarch64 = {.name = "aarch64", .arch = AUDIT_ARCH_AARCH64,
                                              .machine = EM_AARCH64, AARCH64_CALLS(FIELD)};

#if defined(__x86_64__) && !defined(__ILP32__)
X86_64_CALLS(SAME_AS_KERNEL)
#define NATIVE (&filter_abi_x86_64)
#elif defined(__aarch64__) && !defined(__AARCH64EB__) && !defined(__ILP32__)
AARCH64_CALLS(SAME_AS_KERNEL)
#define NATIVE (&filter_abi_aarch64)
#else
#define NATIVE NULL
#endif

const struct filter_abi *filter_abi_native(void)
{
    return NATIVE;
}

/* The filter, assembled: jumps name a label, resolved once all is laid. */
enum { L_NOTIF, L_ALLOW, L_LEVEL, L_IOCTL, L_SENDTO, L_SENDMSG, L_N };
struct asm_ {
    struct sock_filter *f;
    unsigned max, n;
    uint8_t jt_label[FILTER_MAX], jf_label[FILTER_MAX]; /* label + 1, 0: no jump */
    unsigned at[L_N];
};

static void op(struct asm_ *a, uint16_t code, uint32_t k)
{
    if (a->n < a->max)
        a->f[a->n] = (struct sock_filter)BPF_STMT(code, k);
    a->n++;
}

/* A conditional jump: to label jt if it holds, else to jf (-1: the next). */
static void jmp(struct asm_ *a, uint16_t code, uint32_t k, int jt, int jf)
{
    if (a->n < a->max) {
        a->jt_label[a->n] = (uint8_t)(jt + 1);
        a->jf_label[a->n] = (uint8_t)(jf + 1);
        a->f[a->n] = (struct sock_filter)BPF_JUMP(BPF_JMP | code | BPF_K, k, 0, 0);
    }
    a->n++;
}

static void label(struct asm_ *a, int l)
{
    a->at[l] = a->n;
}

static void link_jumps(struct asm_ *a)
{
    for (unsigned i = 0; i < a->n; i++) {
        if (a->jt_label[i])
            a->f[i].jt = (uint8_t)(a->at[a->jt_label[i] - 1] - i - 1);
        if (a->jf_label[i])
            a->f[i].jf = (uint8_t)(a->at[a->jf_label[i] - 1] - i - 1);
    }
}

/* The low half of argument n: both architectures are little-endian. */
#define ARG_LO(n) (uint32_t)offsetof(struct seccomp_data, args[n])

int filter_assemble(const struct filter_abi *abi, struct sock_filter *f, unsigned max)
{
    const uint32_t calls[] = {abi->connect, abi->getsockname, abi->getpeername, abi->bind,
                              abi->listen,  abi->accept,      abi->accept4};
    static const uint32_t levels[] = {SOL_SOCKET, IPPROTO_TCP, IPPROTO_IP, IPPROTO_IPV6};
    struct asm_ a;
    memset(&a, 0, sizeof a);
    a.f = f;
    a.max = max < FILTER_MAX ? max : FILTER_MAX;
    op(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    jmp(&a, BPF_JEQ, abi->arch, -1, L_ALLOW);
    op(&a, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (unsigned k = 0; k < sizeof calls / sizeof calls[0]; k++)
        jmp(&a, BPF_JEQ, calls[k], L_NOTIF, -1);
    jmp(&a, BPF_JEQ, abi->getsockopt, L_LEVEL, -1);
    jmp(&a, BPF_JEQ, abi->setsockopt, L_LEVEL, -1);
    jmp(&a, BPF_JEQ, abi->ioctl, L_IOCTL, -1);
    jmp(&a, BPF_JEQ, abi->sendto, L_SENDTO, -1);
    jmp(&a, BPF_JEQ, abi->sendmsg, L_SENDMSG, L_ALLOW);
    /* socket options only at the levels the shim emulates */
    label(&a, L_LEVEL);
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
    for (unsigned k = 0; k < sizeof levels / sizeof levels[0]; k++)
        jmp(&a, BPF_JEQ, levels[k], L_NOTIF, -1);
    op(&a, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    /* ioctl(fd, req): the request is an unsigned int to the kernel */
    label(&a, L_IOCTL);
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
    jmp(&a, BPF_JEQ, SIOCOUTQ, L_NOTIF, -1);
    jmp(&a, BPF_JEQ, SIOCOUTQNSD, L_NOTIF, L_ALLOW);
    /* sendto(fd, buf, len, flags, ...), sendmsg(fd, msg, flags): the
     * flags are an int; an ordinary send costs two instructions more */
    label(&a, L_SENDTO);
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(3));
    jmp(&a, BPF_JSET, MSG_FASTOPEN, L_NOTIF, -1);
    /* sendto with an address (a pointer not NULL, either half): TCP
     * ignores it on a connection, the bridge would say EISCONN
     * (sendaddr.c); a UDP program's sendto pays the round trip */
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(4));
    jmp(&a, BPF_JEQ, 0, -1, L_NOTIF);
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(4) + 4);
    jmp(&a, BPF_JEQ, 0, L_ALLOW, L_NOTIF);
    label(&a, L_SENDMSG);
    op(&a, BPF_LD | BPF_W | BPF_ABS, ARG_LO(2));
    jmp(&a, BPF_JSET, MSG_FASTOPEN, L_NOTIF, L_ALLOW);
    label(&a, L_ALLOW);
    op(&a, BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    label(&a, L_NOTIF);
    op(&a, BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
    if (a.n > a.max)
        return -ENOSPC;
    link_jumps(&a);
    return (int)a.n;
}
