/*
 * The supervisor's seccomp filter (tools/supervise/filter.c), both
 * architectures' builds of it, run over recorded struct seccomp_data by
 * the classic-BPF interpreter below: qemu-user refuses seccomp(), so
 * this is how the aarch64 filter's decisions are tested (make aarch64 runs
 * this file built for aarch64 under qemu too, where the aarch64 table was
 * checked against the arm64 kernel headers at compile time). The numbers
 * here are the kernel's tables', written out again on purpose.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "filter.h"

/* Runs prog over d as the kernel would: the instructions the filter uses
 * (LD W ABS, JEQ/JGT/JSET K, AND K, RET K); anything else fails the test. */
static uint32_t run(const struct sock_filter *f, int n, const struct seccomp_data *d)
{
    uint32_t acc = 0;
    for (int pc = 0; pc < n; pc++) {
        const struct sock_filter *i = &f[pc];
        switch (i->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            cr_assert(i->k + 4 <= sizeof *d && i->k % 4 == 0, "load at %u", i->k);
            memcpy(&acc, (const char *)d + i->k, 4);
            break;
        case BPF_ALU | BPF_AND | BPF_K:
            acc &= i->k;
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
            pc += acc == i->k ? i->jt : i->jf;
            break;
        case BPF_JMP | BPF_JGT | BPF_K:
            pc += acc > i->k ? i->jt : i->jf;
            break;
        case BPF_JMP | BPF_JSET | BPF_K:
            pc += (acc & i->k) ? i->jt : i->jf;
            break;
        case BPF_RET | BPF_K:
            return i->k;
        default:
            cr_fatal("instruction %d: code 0x%x", pc, i->code);
        }
    }
    cr_fatal("ran off the end of the filter");
    return 0;
}

/* A recorded call: its number on x86_64 and on aarch64 (-1: not played
 * there), its arguments, and the filter's answer. */
struct call {
    const char *what;
    int nr[2];
    uint64_t args[6];
    uint32_t want;
};

#define NOTIF SECCOMP_RET_USER_NOTIF
#define ALLOW SECCOMP_RET_ALLOW
#define ADDR 0x7ffc12345678ull /* a pointer, as a program passes one */

static const struct call calls[] = {
    {"connect", {42, 203}, {3, ADDR, 16}, NOTIF},
    {"bind", {49, 200}, {3, ADDR, 16}, NOTIF},
    {"listen", {50, 201}, {3, 128}, NOTIF},
    {"accept", {43, 202}, {3, 0, 0}, NOTIF},
    {"accept4", {288, 242}, {3, 0, 0, SOCK_CLOEXEC}, NOTIF},
    {"getsockname", {51, 204}, {3, ADDR, ADDR}, NOTIF},
    {"getpeername", {52, 205}, {3, ADDR, ADDR}, NOTIF},
    {"getsockopt TCP", {55, 209}, {3, IPPROTO_TCP, 1, ADDR, ADDR}, NOTIF},
    {"setsockopt SOL_SOCKET", {54, 208}, {3, SOL_SOCKET, SO_REUSEADDR, ADDR, 4}, NOTIF},
    {"setsockopt IPv6", {54, 208}, {3, IPPROTO_IPV6, 26, ADDR, 4}, NOTIF},
    {"setsockopt SOL_IP", {54, 208}, {3, IPPROTO_IP, 1, ADDR, 4}, NOTIF},
    {"setsockopt UDP level", {54, 208}, {3, IPPROTO_UDP, 1, ADDR, 4}, ALLOW},
    {"ioctl SIOCOUTQ", {16, 29}, {3, SIOCOUTQ, ADDR}, NOTIF},
    {"ioctl SIOCOUTQNSD", {16, 29}, {3, SIOCOUTQNSD, ADDR}, NOTIF},
    {"ioctl FIONREAD", {16, 29}, {3, SIOCINQ, ADDR}, ALLOW},
    {"sendto MSG_FASTOPEN", {44, 206}, {3, ADDR, 10, MSG_FASTOPEN, ADDR, 16}, NOTIF},
    {"sendto MSG_FASTOPEN, no address", {44, 206}, {3, ADDR, 10, MSG_FASTOPEN, 0, 0}, NOTIF},
    {"send MSG_OOB", {44, 206}, {3, ADDR, 1, MSG_OOB, 0, 0}, ALLOW},
    {"sendto with an address", {44, 206}, {3, ADDR, 10, 0, ADDR, 16}, NOTIF},
    {"sendto, address above 4 GiB only", {44, 206}, {3, ADDR, 10, 0, 1ull << 32, 16}, NOTIF},
    {"send (sendto, no address)", {44, 206}, {3, ADDR, 10, MSG_NOSIGNAL, 0, 0}, ALLOW},
    {"sendmsg MSG_FASTOPEN", {46, 211}, {3, ADDR, MSG_FASTOPEN}, NOTIF},
    {"sendmsg", {46, 211}, {3, ADDR, MSG_NOSIGNAL}, ALLOW},
    {"read", {0, 63}, {3, ADDR, 10}, ALLOW},
    {"write", {1, 64}, {3, ADDR, 10}, ALLOW},
    {"recvfrom", {45, 207}, {3, ADDR, 10, 0, ADDR, ADDR}, ALLOW},
    {"socket", {41, 198}, {AF_INET, SOCK_STREAM, 0}, ALLOW},
    /* the other architecture's numbers mean other calls here */
    {"aarch64's connect number", {203, -1}, {3, ADDR, 16}, ALLOW},
    {"x86_64's connect number", {-1, 42}, {3, ADDR, 16}, ALLOW},
    {"x86_64's accept4 number", {-1, 288}, {3, 0, 0, 0}, ALLOW},
};

/* Each call is run as abi's (column col: it must get want) and as a call
 * of another architecture (it must be allowed whatever it is). */
static void check(const struct filter_abi *abi, int col, uint32_t other_arch)
{
    struct sock_filter f[FILTER_MAX];
    cr_assert(eq(int, filter_assemble(abi, f, 8), -ENOSPC), "too little room is said");
    int len = filter_assemble(abi, f, FILTER_MAX);
    cr_assert(gt(int, len, 0));
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        const struct call *c = &calls[i];
        if (c->nr[col] < 0)
            continue;
        struct seccomp_data d;
        memset(&d, 0, sizeof d);
        d.nr = c->nr[col];
        d.arch = abi->arch;
        d.instruction_pointer = 0x400000;
        memcpy(d.args, c->args, sizeof d.args);
        cr_expect(eq(u32, run(f, len, &d), c->want), "%s %s (%d)", abi->name, c->what, d.nr);
        d.arch = other_arch;
        cr_expect(eq(u32, run(f, len, &d), ALLOW), "%s as another arch", c->what);
    }
}

Test(filter, x86_64_reports_the_socket_calls_and_allows_the_rest)
{
    check(&filter_abi_x86_64, 0, AUDIT_ARCH_I386);
}

Test(filter, aarch64_reports_the_socket_calls_and_allows_the_rest)
{
    /* AArch32 (compat) calls: another arch, allowed untouched */
    check(&filter_abi_aarch64, 1, AUDIT_ARCH_ARM);
}

Test(filter, the_native_architecture_is_one_of_the_two)
{
    const struct filter_abi *abi = filter_abi_native();
    cr_assert(abi != NULL, "this build has no filter");
#if defined(__x86_64__)
    cr_assert(eq(str, (char *)abi->name, "x86_64"));
#elif defined(__aarch64__)
    cr_assert(eq(str, (char *)abi->name, "aarch64"));
#endif
}
