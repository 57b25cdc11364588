/*
 * pristine.c: the TCP sockets socket() made here whose options nobody has
 * touched since, so that their connect() need not read them back.
 *
 * A connect over rudp takes the app's TCP socket's options into the
 * connection and onto the bridge that replaces it (sock.c's takeover and
 * copy_options, connect.c's token, appfd.c's owner): 23 system calls per
 * connect on a socket nobody set an option on, which is what a client that
 * opens many connections makes (B12: 9 % of the fan-in's time, the
 * connecting thread being its critical path).
 *
 * An entry holds the socket's inode and the epoch at its socket(). Every
 * call that could change what connect() reads back from a TCP socket of
 * this process (a setsockopt, ioctl or owner-setting fcntl of ours on a
 * socket not ours, a bind; `syscall()` with one of those numbers) starts a
 * new epoch: not only on the fd it names, since a dup of the socket shares
 * its options and dup()/dup2() are not ours to see. connect() checks the
 * fd's inode (an fd closed and reused behind our back holds another), and
 * an entry is for one connect only; close() forgets it.
 *
 * What escapes it, said in docs/design.md: an option set by a raw system
 * call or io_uring, or by another process holding the socket (a forked
 * child's setsockopt on its copy, which bumps only the child's epoch).
 *
 * fds below PRISTINE_FDS only, the owner's table only (a child with a
 * table of its own has other files at the same numbers): anything else is
 * read as before.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>

#include "state.h"

#include "base/poison.h"

#define PRISTINE_FDS 65536u

/* (epoch << 33) | (IPv6 << 32) | inode; 0: none. A socket's inode is
 * sockfs's 32-bit counter (get_next_ino); the epoch is kept to 31 bits. */
static _Atomic uint64_t entry[PRISTINE_FDS];
static _Atomic uint32_t epoch = 1;

#define EPOCH_MASK 0x7fffffffu

static int tracked(int fd)
{
    return fd >= 0 && (unsigned)fd < PRISTINE_FDS && shim_procenv_table() == 0;
}

void shim_pristine_mark(int fd, uint64_t ino, int family)
{
    if (!tracked(fd))
        return;
    uint64_t e = 0;
    if (ino && ino <= UINT32_MAX && (family == AF_INET || family == AF_INET6)) {
        uint32_t ep = atomic_load_explicit(&epoch, memory_order_acquire) & EPOCH_MASK;
        e = (uint64_t)ep << 33 | (uint64_t)(family == AF_INET6) << 32 | ino;
    }
    atomic_store_explicit(&entry[fd], e, memory_order_release);
}

void shim_pristine_touched(void)
{
    atomic_fetch_add_explicit(&epoch, 1, memory_order_acq_rel);
}

void shim_pristine_forget(int fd)
{
    if (tracked(fd))
        atomic_store_explicit(&entry[fd], 0, memory_order_relaxed);
}

int shim_pristine_take(int fd, uint64_t *inop)
{
    *inop = 0;
    if (!tracked(fd))
        return 0;
    uint64_t e = atomic_exchange_explicit(&entry[fd], 0, memory_order_acq_rel);
    uint32_t ep = atomic_load_explicit(&epoch, memory_order_acquire) & EPOCH_MASK;
    if (e == 0 || (uint32_t)(e >> 33) != ep)
        return 0; /* nothing to ask the kernel: a touched socket pays no fstat here */
    uint64_t ino = shim_fd_ino(fd);
    *inop = ino;
    if ((e & UINT32_MAX) != ino)
        return 0;
    return (e >> 32) & 1 ? AF_INET6 : AF_INET;
}

int shim_fcntl_sets_owner(int cmd)
{
    return cmd == F_SETOWN || cmd == F_SETOWN_EX || cmd == F_SETSIG;
}
