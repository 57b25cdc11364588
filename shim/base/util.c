/* util.c: address conversion, fd placement, what a socket is (sock_diag
 * dumps), the clock, small /proc files. */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "base.h"

#include "poison.h"

void shim_to_rudp_addr(const struct sockaddr *sa, rudp_addr *out)
{
    memset(out, 0, sizeof *out);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->family = AF_INET;
        out->port = ntohs(in->sin_port);
        memcpy(out->ip, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        out->family = AF_INET6;
        out->port = ntohs(in6->sin6_port);
        memcpy(out->ip, &in6->sin6_addr, 16);
        /* A scope names an interface for a link-local address only; the
         * kernel ignores it on others (::1 with scope 99 connects) and
         * gives 0 back, from getpeername and with each datagram. Kept,
         * it made the peer's SYNACK from ::1 (scope 0) another address
         * than the one connected to: dropped, the connect fell back to
         * TCP after 250 ms, or timed out with RUDP_FALLBACK=none. */
        out->scope_id = IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr) ||
                                IN6_IS_ADDR_MC_LINKLOCAL(&in6->sin6_addr)
                            ? in6->sin6_scope_id
                            : 0;
    }
}

socklen_t shim_from_rudp_addr(const rudp_addr *a, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)out;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return sizeof *in;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(a->port);
    memcpy(&in6->sin6_addr, a->ip, 16);
    in6->sin6_scope_id = a->scope_id;
    return sizeof *in6;
}

int shim_to_rudp_local(int fd, rudp_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (real_getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    shim_to_rudp_addr((struct sockaddr *)&ss, out);
    return 0;
}

void shim_cmsg_each_fd(struct msghdr *m, void (*fn)(int fd, void *arg), void *arg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
        size_t at = (size_t)((char *)c - (char *)m->msg_control);
        if (c->cmsg_len < CMSG_LEN(0) || c->cmsg_len > m->msg_controllen - at)
            break; /* a header that does not fit: the kernel's EINVAL */
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fn(fd, arg);
        }
    }
}

typedef struct taken {
    int *fds, max, n;
} taken;

static void take_one(int fd, void *arg)
{
    taken *t = arg;
    if (t->n < t->max)
        t->fds[t->n++] = fd;
    else
        real_close(fd);
}

int shim_cmsg_take_fds(struct msghdr *m, int *fds, int max)
{
    taken t = {.fds = fds, .max = max, .n = 0};
    shim_cmsg_each_fd(m, take_one, &t);
    return t.n;
}

unsigned shim_ss_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

static int lib_is(struct dl_phdr_info *info, size_t size, void *stem)
{
    (void)size;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strncmp(base, stem, strlen(stem)) == 0;
}

int shim_lib_loaded(const char *stem)
{
    return dl_iterate_phdr(lib_is, (void *)(uintptr_t)stem) != 0;
}

uint64_t shim_fd_ino(int fd)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int shim_fd_dup_high(int fd)
{
    int c = real_fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
    /* EINVAL: an fd limit below SHIM_FD_BASE; EMFILE: every number from
     * there to the limit taken (listen.c's reserve went lower then) */
    if (c < 0 && (errno == EINVAL || errno == EMFILE))
        c = real_fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return c;
}

int shim_fd_copy_of(int fd, uint64_t ino)
{
    if (fd < 0 || !ino)
        return -1;
    int c;
    if (shim_fds_in_engines()) {
        /* fd is the program's: from the engines' own table, a copy taken */
        c = shim_fds_take_program(fd);
    } else {
        c = shim_fd_dup_high(fd);
    }
    if (c >= 0 && shim_fd_ino(c) != ino) {
        real_close(c); /* the number names another file now */
        c = -1;
    }
    return c;
}

ssize_t shim_read_text(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = real_read(fd, buf, size - 1);
    real_close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Copies between our memory and the application's that say EFAULT where
 * the kernel's copy_to_user/copy_from_user would, instead of faulting in
 * the shim. Inside a span (the caller's mask is the program's here):
 * fault.c's guarded memcpy, with every other signal held for the span, on
 * a thread that takes SIGSEGV and SIGBUS (two rt_sigprocmask for the
 * span, 0.3 us each on the VM of issue 46, against 2 us for each
 * process_vm call, which pins the pages); else, the guard off or the
 * faults blocked by the program, process_vm_readv/writev on ourselves
 * (the kernel checks the application's pointer). Where a sandbox refuses
 * those calls too, a plain copy, as before (the application's bad pointer
 * then faults, in the call it made). */
void shim_user_begin(shim_user_span *s)
{
    s->guarded = shim_fault_hold(&s->crit);
}

void shim_user_end(shim_user_span *s)
{
    if (s->guarded)
        shim_fault_release(&s->crit);
}

int shim_user_copy(const shim_user_span *s, void *dst, const void *src, size_t n, int to_user)
{
    static _Atomic int refused;
    if (!n)
        return 0;
    if (s->guarded) {
        if (shim_fault_copy(dst, src, n) == 0)
            return 0;
        errno = EFAULT;
        return -1;
    }
    if (!atomic_load_explicit(&refused, memory_order_relaxed)) {
        struct iovec ours = {to_user ? (void *)(uintptr_t)src : dst, n};
        struct iovec theirs = {to_user ? dst : (void *)(uintptr_t)src, n};
        ssize_t r = to_user ? process_vm_writev(shim_procenv_self(), &ours, 1, &theirs, 1, 0)
                            : process_vm_readv(shim_procenv_self(), &ours, 1, &theirs, 1, 0);
        if (r == (ssize_t)n)
            return 0;
        if (r >= 0 || errno == EFAULT) {
            errno = EFAULT;
            return -1;
        }
        atomic_store_explicit(&refused, 1, memory_order_relaxed);
    }
    if (!dst || !src) {
        errno = EFAULT;
        return -1;
    }
    memcpy(dst, src, n);
    return 0;
}

static int user_copy(void *dst, const void *src, size_t n, int to_user)
{
    if (!n)
        return 0;
    shim_user_span s;
    shim_user_begin(&s);
    int r = shim_user_copy(&s, dst, src, n, to_user);
    shim_user_end(&s);
    return r;
}

int shim_user_write(void *dst, const void *src, size_t n)
{
    return user_copy(dst, src, n, 1);
}

int shim_user_read(void *dst, const void *src, size_t n)
{
    return user_copy(dst, src, n, 0);
}

int shim_addr_out(const void *ss, socklen_t full, struct sockaddr *addr, socklen_t *len)
{
    /* move_addr_to_user(): the length asked is read, a negative one is
     * EINVAL, the address is cut to it, the full length written back. */
    shim_user_span s;
    shim_user_begin(&s);
    int want, r = shim_user_copy(&s, &want, len, sizeof want, 0);
    if (r == 0 && want < 0) {
        errno = EINVAL;
        r = -1;
    }
    size_t n = r == 0 && (size_t)want < full ? (size_t)want : full;
    if (r == 0)
        r = shim_user_copy(&s, addr, ss, n, 1);
    if (r == 0)
        r = shim_user_copy(&s, len, &full, sizeof full, 1);
    shim_user_end(&s);
    return r;
}

int shim_fd_move_high(int fd)
{
    int hi = real_fcntl(fd, F_DUPFD_CLOEXEC, SHIM_FD_BASE);
    if (hi < 0) {
        /* Over the fd limit's range: keep it where it is, close-on-exec. */
        int fl = real_fcntl(fd, F_GETFD);
        if (fl >= 0)
            real_fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        return fd;
    }
    real_close(fd);
    return hi;
}

int shim_fd_move_high_cloexec(int fd)
{
    return fd >= SHIM_FD_BASE ? fd : shim_fd_move_high(fd);
}

/* Larger UDP buffers when we may (root): a burst of datagrams must not
 * overflow them while the engine is busy. A listener's socket takes every
 * peer's handshake and, today, all its accepted connections' datagrams:
 * 16 MiB (the kernel doubles it) holds 4,000 padded SYNs (2.3 KB of
 * buffer each) twice over. Memory is charged only while datagrams wait. */
void shim_udp_grow_buffers(int udp, int listener)
{
    int sz = listener ? 16 << 20 : 8 << 20;
    if (real_setsockopt(udp, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
        real_setsockopt(udp, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    if (real_setsockopt(udp, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
        real_setsockopt(udp, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

int shim_inet_family(int fd, int type, int protocol)
{
    int v;
    socklen_t l = sizeof v;
    if (real_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &l) < 0 || v != protocol)
        return 0;
    l = sizeof v;
    if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &l) < 0 || v != type)
        return 0;
    l = sizeof v;
    if (real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &l) < 0)
        return 0;
    return v == AF_INET || v == AF_INET6 ? v : 0;
}

/* A thread started from the engines' own fd table is in it too: it says
 * so before it runs fn (ownfds.c). */
typedef struct engines_start {
    void *(*fn)(void *);
    void *arg;
    int table; /* shim_fds_in_engines() of the starter */
} engines_start;

static void *in_engines_table(void *p)
{
    engines_start s = *(engines_start *)p;
    shim_free(p);
    shim_fds_enter_engines(s.table - 1);
    return s.fn(s.arg);
}

int shim_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    engines_start *s = NULL;
    if (shim_fds_in_engines()) {
        if (!(s = shim_malloc(sizeof *s)))
            return -ENOMEM;
        s->fn = fn;
        s->arg = arg;
        s->table = shim_fds_in_engines();
        fn = in_engines_table;
        arg = s;
    }
    /* every signal held off in the new thread but the faults, which its
     * guarded copies (fault.c) must be able to take */
    sigset_t all, old;
    shim_sigfill_but_faults(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int err = pthread_create(t, &attr, fn, arg);
    if (err && s)
        shim_free(s);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -err;
}

/* NLA_ALIGN and NLA_HDRLEN compute in int (NLA_ALIGNTO is 4, not 4u) */
#define ALIGN4(x) ((size_t)(((size_t)(x) + 3u) & ~(size_t)3u))

int shim_diag_dump(const void *req, size_t reqlen,
                   int (*visit)(const struct nlmsghdr *h, void *ctx), void *ctx)
{
    return shim_netlink_dump(NETLINK_SOCK_DIAG, req, reqlen, visit, ctx);
}

int shim_netlink_dump(int proto, const void *req, size_t reqlen,
                      int (*visit)(const struct nlmsghdr *h, void *ctx), void *ctx)
{
    int fd = real_socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, proto);
    if (fd < 0)
        return -1;
    int r = -1;
    /* on the heap, not in thread-local storage (which every thread of the
     * program would pay for, and threads made with small stacks could not
     * start: MariaDB's timer thread); a dump is rare (a bind, a listen), and
     * costs a netlink socket already */
    union diagbuf {
        struct nlmsghdr h;
        uint8_t b[32768];
    } *buf = shim_malloc(sizeof *buf);
    if (!buf)
        goto out;
    /* write/read: to and from the kernel, the netlink socket's default */
    if (real_write(fd, req, reqlen) != (ssize_t)reqlen)
        goto out;
    for (;;) {
        ssize_t n;
        do
            n = real_read(fd, buf, sizeof *buf);
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            goto out;
        size_t left = (size_t)n;
        for (const struct nlmsghdr *h = &buf->h; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                r = 0;
                goto out;
            }
            if (h->nlmsg_type == NLMSG_ERROR || visit(h, ctx) < 0)
                goto out;
        }
    }
out:
    shim_free(buf);
    real_close(fd);
    return r;
}

const void *shim_nla_get(const void *attrs, size_t len, int type, size_t *plen)
{
    const size_t hdr = ALIGN4(sizeof(struct nlattr));
    const uint8_t *p = attrs;
    while (len >= sizeof(struct nlattr)) {
        struct nlattr a;
        memcpy(&a, p, sizeof a);
        if (a.nla_len < sizeof a || a.nla_len > len)
            return NULL;
        if (a.nla_type == type && a.nla_len >= hdr) {
            *plen = a.nla_len - hdr;
            return p + hdr;
        }
        size_t step = ALIGN4(a.nla_len);
        if (step >= len)
            return NULL;
        p += step;
        len -= step;
    }
    return NULL;
}

struct shim_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

int shim_dir_each_num(const char *path, int (*fn)(int d, const char *name, long n, void *ctx),
                      void *ctx)
{
    int d = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return -1;
    d = shim_fd_move_high(d);
    int r = 0;
    char buf[2048] __attribute__((aligned(8)));
    long n;
    while (!r && (n = syscall(SYS_getdents64, d, buf, sizeof buf)) != 0) {
        if (n < 0) {
            r = -1; /* the listing cut short: not "all seen" */
            break;
        }
        for (long off = 0; off < n && !r;) {
            const struct shim_dirent64 *de = (const void *)(buf + off);
            off += de->d_reclen;
            long v = 0;
            const char *c = de->d_name;
            for (; *c >= '0' && *c <= '9' && v < 1L << 30; c++)
                v = v * 10 + (*c - '0');
            if (!*c && c != de->d_name)
                r = fn(d, de->d_name, v, ctx);
        }
    }
    real_close(d);
    return r;
}
