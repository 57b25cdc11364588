/*
 * filter.h: stage 1's seccomp filter (supervise.h), assembled for one
 * architecture's system-call numbers. Apart from the rest of the
 * supervisor, and with no system call of its own, so that a unit test on
 * any machine can lay the filter of either architecture and run its BPF
 * over recorded struct seccomp_data (tests/supervise/test_filter.c): the
 * aarch64 filter cannot be loaded under qemu-user, which refuses seccomp.
 */
#ifndef RUDP_SUPERVISE_FILTER_H
#define RUDP_SUPERVISE_FILTER_H

#include <linux/filter.h>
#include <stdint.h>

/* An architecture as the filter sees it: the AUDIT_ARCH_ value the kernel
 * puts in seccomp_data.arch, the ELF machine of its programs (classify.c)
 * and the numbers of the calls the filter reports. */
struct filter_abi {
    const char *name; /* "x86_64", "aarch64": for messages */
    uint32_t arch;
    uint16_t machine;
    uint32_t connect, getsockname, getpeername, bind, listen, accept, accept4, getsockopt,
        setsockopt, ioctl, sendto, sendmsg;
};

extern const struct filter_abi filter_abi_x86_64;
extern const struct filter_abi filter_abi_aarch64;

/* The architecture this binary was built for, or NULL where the supervisor
 * has no filter (then install_filter() fails with ENOSYS and classify()
 * reaches no program). */
const struct filter_abi *filter_abi_native(void);

/* The most instructions filter_assemble() lays. */
#define FILTER_MAX 64

/* Lays abi's filter into f (room for max instructions): a call of another
 * architecture (seccomp_data.arch other than abi->arch: i386 via int 0x80,
 * x32 on x86_64; AArch32 on aarch64) is allowed untouched; connect(),
 * bind(), listen(), accept(), accept4(), getsockname(), getpeername(),
 * get/setsockopt() at the socket, TCP, IP and IPv6 levels, ioctl()
 * SIOCOUTQ and SIOCOUTQNSD, sendto()/sendmsg() with MSG_FASTOPEN and
 * sendto() with an address return SECCOMP_RET_USER_NOTIF; everything else
 * SECCOMP_RET_ALLOW. Returns the number of instructions, or -ENOSPC when
 * max is too small. */
int filter_assemble(const struct filter_abi *abi, struct sock_filter *f, unsigned max);

#endif
