/*
 * epollreg.c: the app's epoll interest in an fd whose file the shim may
 * replace: a TCP socket from socket() until connect()/listen() puts the
 * bridge at its number, and a connecting fd until its handshake is
 * settled (it may become a kernel TCP socket, fallback.c, or a fresh one
 * to connect again, reconnect.c).
 *
 * epoll registers a (file, fd) pair, and a registration goes away with its
 * file, not with the fd number (fs/eventpoll.c: eventpoll_release() at the
 * file's last fput). When dup3 puts another file at the app's fd, every
 * epoll set watching the old one forgets the app's interest in the new
 * one: an event loop that registered before connect() and waits for
 * EPOLLOUT would wait for ever, and its EPOLL_CTL_MOD/DEL after connect()
 * says ENOENT. Worse, where the old file lives on (the engine keeps the
 * app's TCP socket: a listener's port, the fallback's socket), its
 * registration stays and reports that socket's events under the app's
 * data. So epoll_ctl on such an fd is noted here, and the swap takes the
 * registrations out of their sets before dup3 (EPOLL_CTL_DEL on the old
 * file) and adds them back, with the app's events and data, for the new
 * file after it. The kernel reports a new file that is ready when added
 * (ep_insert polls it), so nothing that happened at the swap is missed.
 *
 * Which fds: socket() marks the TCP sockets it makes (a bitmap below 2^20,
 * a small array above, where fs.nr_open was raised); epoll_ctl
 * notes a registration only for a marked fd (one atomic load otherwise);
 * a plain connect() or listen() (kernel TCP, never swapped), a swap to a
 * file that stays (listen(), the fallback's), the first epoll_ctl once a
 * connect is settled (sock.c) and close() clear the mark; a swap to a file
 * that may give way again (connect(), reconnect.c) keeps it. A mark left behind (an fd closed
 * behind our back) costs a note, never a wrong registration: the swap
 * re-adds only what EPOLL_CTL_DEL found in the kernel.
 *
 * EPOLLONESHOT: a registration that fired is disabled until the app's
 * next MOD (its events cut to the private bits). The kernel shows that
 * state in /proc/self/fdinfo/EPFD ("tfd: N events: X"), read at the swap
 * for noted one-shot registrations only; a disabled one is added back with
 * no events, which the kernel arms for EPOLLERR and EPOLLHUP alone
 * (epoll_ctl always adds those).
 *
 * An established fd is not marked; its registrations are read back from
 * the kernel (shim_epollreg_discover: /proc/self/fdinfo of each epoll fd)
 * when connect(AF_UNSPEC) swaps it, which is rare.
 *
 * A child that shares our memory but has an fd table of its own (vfork(),
 * clone(CLONE_VM): procenv.c) has its notes tagged with its table
 * (shim_procenv_table) and sees only those; the marks are the owner's
 * alone. Such a child's connect() reads its registrations back from the
 * kernel, as connect(AF_UNSPEC) does.
 *
 * The notes live in hash tables under one lock (below).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "table.h"

#include "base/poison.h"

/* A registration, in three uthash tables: regs by (table, epfd, fd); the
 * registrations of one fd, a short list (the epoll sets watching it) off
 * its entry in by_fd; and by_ep, how many registrations each epoll fd
 * holds, so that a close() of a watched fd, or of any fd at all, costs a
 * lookup, not a walk of every registration (an event loop with thousands
 * of connects in flight notes one for each). */
typedef struct regkey {
    pid_t table; /* whose fd table the numbers are (shim_procenv_table) */
    int epfd, fd;
} regkey;

typedef struct fdkey {
    pid_t table;
    int fd; /* the watched fd (by_fd) or the epoll fd (by_ep) */
} fdkey;

typedef struct reg {
    UT_hash_handle hh;
    regkey key;
    int live; /* set by detach: the kernel had it, so attach adds it back */
    struct epoll_event ev;
    struct reg *next; /* the next registration of key.fd */
} reg;

typedef struct fdent {
    UT_hash_handle hh;
    fdkey key;
    reg *head;
} fdent;

typedef struct epent {
    UT_hash_handle hh;
    fdkey key;
    size_t n;
} epent;

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static reg *regs;
static fdent *by_fd;
static epent *by_ep;
static _Atomic size_t count; /* registrations noted, read without the lock */

/* The marks: fd numbers below MARK_FDS (the kernel's default nr_open) in a
 * bitmap, 128 KiB of zero pages touched only where a TCP socket's number
 * falls; numbers above it (fs.nr_open raised, up to 2^31) in a small array
 * under mu, looked at only while it holds one. */
#define MARK_FDS (1u << 20)
#define WORD_BITS 64u
static _Atomic uint64_t marks[MARK_FDS / WORD_BITS];
static int *high;
static size_t nhigh, high_cap;
static _Atomic size_t nhigh_any; /* nhigh, read without the lock */

/* Index of fd in high, or nhigh. mu held. */
static size_t high_find(int fd)
{
    size_t i = 0;
    while (i < nhigh && high[i] != fd)
        i++;
    return i;
}

static void high_set(int fd)
{
    shim_mutex_lock(&mu);
    if (high_find(fd) == nhigh) {
        if (nhigh == high_cap) {
            size_t ncap = high_cap ? high_cap * 2 : 16;
            int *n = shim_realloc(high, ncap * sizeof *n);
            if (!n) {
                shim_mutex_unlock(&mu);
                return; /* unmarked: its registrations are not carried over */
            }
            high = n;
            high_cap = ncap;
        }
        high[nhigh++] = fd;
        atomic_store(&nhigh_any, nhigh);
    }
    shim_mutex_unlock(&mu);
}

/* Drops the high marks in [first, last]. */
static void high_clear(unsigned first, unsigned last)
{
    if (atomic_load(&nhigh_any) == 0)
        return;
    shim_mutex_lock(&mu);
    for (size_t i = 0; i < nhigh;) {
        if ((unsigned)high[i] >= first && (unsigned)high[i] <= last)
            high[i] = high[--nhigh];
        else
            i++;
    }
    atomic_store(&nhigh_any, nhigh);
    shim_mutex_unlock(&mu);
}

void shim_epollreg_mark(int fd)
{
    if (fd < 0)
        return;
    shim_epollreg_forget(fd); /* notes of a file closed behind our back */
    shim_epollreg_remark(fd);
}

void shim_epollreg_remark(int fd)
{
    if (fd < 0 || shim_procenv_table() != 0) /* the marks are the owner's fds */
        return;
    if ((unsigned)fd >= MARK_FDS)
        high_set(fd);
    else
        atomic_fetch_or(&marks[(unsigned)fd / WORD_BITS], 1ull << ((unsigned)fd % WORD_BITS));
}

void shim_epollreg_unmark(int fd)
{
    /* Every close() passes here: the table is asked only of a marked fd
     * (the marks are the owner's fds). */
    if (fd < 0 || !shim_epollreg_marked(fd) || shim_procenv_table() != 0)
        return;
    if ((unsigned)fd >= MARK_FDS) {
        high_clear((unsigned)fd, (unsigned)fd);
        return;
    }
    uint64_t bit = 1ull << ((unsigned)fd % WORD_BITS);
    atomic_fetch_and(&marks[(unsigned)fd / WORD_BITS], ~bit);
}

int shim_epollreg_marked(int fd)
{
    /* Not asked whose table this is (a system call on every epoll_ctl): a
     * child's note is tagged with its table, and its swap finds it there. */
    if (fd < 0)
        return 0;
    if ((unsigned)fd < MARK_FDS)
        return (atomic_load(&marks[(unsigned)fd / WORD_BITS]) >> ((unsigned)fd % WORD_BITS)) & 1;
    if (atomic_load(&nhigh_any) == 0)
        return 0;
    shim_mutex_lock(&mu);
    int on = high_find(fd) < nhigh;
    shim_mutex_unlock(&mu);
    return on;
}

static fdkey fd_key(pid_t t, int fd)
{
    fdkey k;
    memset(&k, 0, sizeof k); /* uthash hashes the key's bytes */
    k.table = t;
    k.fd = fd;
    return k;
}

/* The registration of fd in epfd for table t, or NULL. mu held. */
static reg *find(pid_t t, int epfd, int fd)
{
    regkey k;
    memset(&k, 0, sizeof k);
    k.table = t;
    k.epfd = epfd;
    k.fd = fd;
    reg *r = NULL;
    HASH_FIND(hh, regs, &k, sizeof k, r);
    return r;
}

static fdent *find_fd(pid_t t, int fd)
{
    fdkey k = fd_key(t, fd);
    fdent *e = NULL;
    HASH_FIND(hh, by_fd, &k, sizeof k, e);
    return e;
}

static epent *find_ep(pid_t t, int epfd)
{
    fdkey k = fd_key(t, epfd);
    epent *e = NULL;
    HASH_FIND(hh, by_ep, &k, sizeof k, e);
    return e;
}

/* A new registration, in all three tables; NULL when out of memory (then
 * in none). mu held. */
static reg *add(pid_t t, int epfd, int fd)
{
    reg *r = shim_calloc(1, sizeof *r);
    fdent *f = find_fd(t, fd);
    epent *p = find_ep(t, epfd);
    int new_f = !f, new_p = !p;
    if (new_f)
        f = shim_calloc(1, sizeof *f);
    if (new_p)
        p = shim_calloc(1, sizeof *p);
    if (!r || !f || !p)
        goto fail;
    r->key.table = t;
    r->key.epfd = epfd;
    r->key.fd = fd;
    HASH_ADD(hh, regs, key, sizeof r->key, r);
    if (!r->hh.tbl)
        goto fail;
    if (new_f) {
        f->key = fd_key(t, fd);
        HASH_ADD(hh, by_fd, key, sizeof f->key, f);
        if (!f->hh.tbl) {
            HASH_DEL(regs, r);
            goto fail;
        }
    }
    if (new_p) {
        p->key = fd_key(t, epfd);
        HASH_ADD(hh, by_ep, key, sizeof p->key, p);
        if (!p->hh.tbl) {
            HASH_DEL(regs, r);
            if (new_f)
                HASH_DEL(by_fd, f);
            goto fail;
        }
    }
    r->next = f->head;
    f->head = r;
    p->n++;
    atomic_fetch_add(&count, 1);
    return r;
fail:
    shim_free(r);
    if (new_f)
        shim_free(f);
    if (new_p)
        shim_free(p);
    return NULL;
}

/* Takes r out of all three tables and frees it. mu held. */
static void drop(reg *r)
{
    fdent *f = find_fd(r->key.table, r->key.fd);
    if (f) {
        reg **at = &f->head;
        while (*at && *at != r)
            at = &(*at)->next;
        if (*at)
            *at = r->next;
        if (!f->head) {
            HASH_DEL(by_fd, f);
            shim_free(f);
        }
    }
    epent *p = find_ep(r->key.table, r->key.epfd);
    if (p && --p->n == 0) {
        HASH_DEL(by_ep, p);
        shim_free(p);
    }
    HASH_DEL(regs, r);
    shim_free(r);
    atomic_fetch_sub(&count, 1);
}

/* Drops every registration for which pick(r, a, b) holds: a walk of them
 * all, for the rare calls that need it (close_range, the close of an epoll
 * fd holding notes, a fork's child). mu held. */
static void drop_all(int (*pick)(const reg *, pid_t, unsigned, unsigned), pid_t t, unsigned a,
                     unsigned b)
{
    reg *r, *tmp;
    HASH_ITER(hh, regs, r, tmp)
    {
        if (pick(r, t, a, b))
            drop(r);
    }
}

void shim_epollreg_note(int epfd, int op, int fd, const struct epoll_event *ev)
{
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    reg *r = find(t, epfd, fd);
    if (op == EPOLL_CTL_DEL) {
        if (r)
            drop(r);
    } else if (ev && (op == EPOLL_CTL_ADD || op == EPOLL_CTL_MOD)) {
        if (!r)
            r = add(t, epfd, fd); /* NULL: unnoted, the swap leaves this set blind */
        if (r) {
            r->live = 0;
            r->ev = *ev;
        }
    }
    shim_mutex_unlock(&mu);
}

static int in_epfd(const reg *r, pid_t t, unsigned epfd, unsigned unused)
{
    (void)unused;
    return r->key.table == t && (unsigned)r->key.epfd == epfd;
}

void shim_epollreg_forget(int fd)
{
    if (atomic_load(&count) == 0)
        return; /* every close() of a program passes here */
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    fdent *f = find_fd(t, fd);
    while (f) { /* drop() frees f with its last registration */
        reg *r = f->head;
        int last = r->next == NULL;
        drop(r);
        if (last)
            break;
    }
    if (find_ep(t, fd)) /* an epoll fd that holds notes */
        drop_all(in_epfd, t, (unsigned)fd, 0);
    shim_mutex_unlock(&mu);
}

static int in_range(const reg *r, pid_t t, unsigned first, unsigned last)
{
    return r->key.table == t &&
           (((unsigned)r->key.fd >= first && (unsigned)r->key.fd <= last) ||
            ((unsigned)r->key.epfd >= first && (unsigned)r->key.epfd <= last));
}

void shim_epollreg_forget_range(unsigned first, unsigned last)
{
    pid_t t = shim_procenv_table();
    if (t == 0) { /* the marks are the owner's fds */
        for (unsigned w = first / WORD_BITS; w < MARK_FDS / WORD_BITS && w <= last / WORD_BITS; w++)
            if (atomic_load(&marks[w]))
                for (unsigned b = 0; b < WORD_BITS; b++)
                    if (w * WORD_BITS + b >= first && w * WORD_BITS + b <= last)
                        shim_epollreg_unmark((int)(w * WORD_BITS + b));
        high_clear(first, last);
    }
    if (atomic_load(&count) == 0)
        return;
    shim_mutex_lock(&mu);
    drop_all(in_range, t, first, last);
    shim_mutex_unlock(&mu);
}

/* Calls line(text, ctx) for each line of /proc/self/fdinfo/EPFD, which
 * lists each registration as "tfd: N events: X data: D pos:P ino:I
 * sdev:S" (ep_show_fdinfo()), until it returns nonzero. -1 when /proc is
 * not there to ask (a chroot). */
static int fdinfo_lines(int epfd, int (*line)(const char *, void *), void *ctx)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", epfd);
    int pf = open(path, O_RDONLY | O_CLOEXEC);
    if (pf < 0)
        return -1;
    int done = 0;
    size_t have = 0;
    while (!done) {
        ssize_t n = real_read(pf, buf + have, sizeof buf - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *at = buf, *nl;
        while (!done && (nl = strchr(at, '\n'))) {
            *nl = '\0';
            done = line(at, ctx);
            at = nl + 1;
        }
        have -= (size_t)(at - buf);
        memmove(buf, at, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than any fdinfo line: skip it */
    }
    real_close(pf); /* close() is ours: it takes mu */
    return 0;
}

struct fired_ctx {
    int fd, fired;
};

static int fired_line(const char *text, void *ctx)
{
    struct fired_ctx *f = ctx;
    const unsigned private = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
    int tfd;
    unsigned events;
    if (sscanf(text, "tfd: %d events: %x", &tfd, &events) != 2 || tfd != f->fd)
        return 0;
    f->fired = (events & ~private) == 0;
    return 1;
}

/* A one-shot registration of fd in epfd that has fired: its events, as the
 * kernel shows them, hold nothing beyond the private bits. 0 when /proc is
 * not there to ask (a chroot): the note's events are then taken as they
 * are. */
static int oneshot_fired(int epfd, int fd)
{
    struct fired_ctx f = {.fd = fd, .fired = 0};
    fdinfo_lines(epfd, fired_line, &f);
    return f.fired;
}

struct found_ctx {
    int epfd, fd;
    unsigned long ino;
};

static int found_line(const char *text, void *ctx)
{
    struct found_ctx *f = ctx;
    int tfd;
    unsigned events;
    unsigned long long data;
    long long pos;
    unsigned long ino;
    if (sscanf(text, "tfd: %d events: %x data: %llx pos:%lld ino:%lx", &tfd, &events, &data,
               &pos, &ino) != 5 ||
        tfd != f->fd || ino != f->ino)
        return 0;
    struct epoll_event ev = {.events = events, .data.u64 = data};
    shim_epollreg_note(f->epfd, EPOLL_CTL_ADD, f->fd, &ev);
    return 1;
}

void shim_epollreg_discover(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return; /* a chroot: nothing to read, nothing carried */
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end, path[64], link[32];
        long ep = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || ep == self || ep == fd)
            continue;
        snprintf(path, sizeof path, "/proc/self/fd/%ld", ep);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (strcmp(link, "anon_inode:[eventpoll]") != 0)
            continue;
        struct found_ctx f = {.epfd = (int)ep, .fd = fd, .ino = (unsigned long)st.st_ino};
        fdinfo_lines((int)ep, found_line, &f);
    }
    closedir(d);
}

void shim_epollreg_detach(int fd)
{
    if (atomic_load(&count) == 0)
        return; /* nothing registered before the swap: no cost */
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    fdent *f = find_fd(t, fd);
    for (reg *r = f ? f->head : NULL; r; r = r->next) {
        if ((r->ev.events & EPOLLONESHOT) && oneshot_fired(r->key.epfd, fd))
            r->ev.events &= EPOLLONESHOT | EPOLLET | EPOLLWAKEUP | EPOLLEXCLUSIVE;
        r->live = real_epoll_ctl(r->key.epfd, EPOLL_CTL_DEL, fd, NULL) == 0;
    }
    shim_mutex_unlock(&mu);
}

void shim_epollreg_attach(int fd, int keep)
{
    if (atomic_load(&count) == 0)
        return;
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    fdent *f = find_fd(t, fd);
    reg *r = f ? f->head : NULL;
    while (r) {
        reg *next = r->next; /* drop() may free r, and f with its last one */
        if (r->live) {
            struct epoll_event ev = r->ev;
            if (real_epoll_ctl(r->key.epfd, EPOLL_CTL_ADD, fd, &ev) < 0 && errno == EEXIST)
                real_epoll_ctl(r->key.epfd, EPOLL_CTL_MOD, fd, &ev);
        }
        if (keep && r->live)
            r->live = 0;
        else
            drop(r);
        r = next;
    }
    shim_mutex_unlock(&mu);
}

int shim_epollreg_has(int fd)
{
    if (atomic_load(&count) == 0)
        return 0;
    pid_t t = shim_procenv_table();
    shim_mutex_lock(&mu);
    fdent *f = find_fd(t, fd);
    int any = f && f->head;
    shim_mutex_unlock(&mu);
    return any;
}

static int not_owner(const reg *r, pid_t t, unsigned a, unsigned b)
{
    (void)t, (void)a, (void)b;
    return r->key.table != 0;
}

void shim_epollreg_atfork_prepare(void)
{
    shim_mutex_lock(&mu);
}

void shim_epollreg_atfork_parent(void)
{
    shim_mutex_unlock(&mu);
}

void shim_epollreg_atfork_child(void)
{
    /* The fds and the epoll sets are the child's too; the notes of
     * children that shared the parent's memory are not. */
    drop_all(not_owner, 0, 0, 0);
    shim_mutex_unlock(&mu);
}

/* ---- epoll sets' numbers (state.h: SHIM_EP_KEY) ---- */

static _Atomic uint32_t ep_gens[SHIM_EP_FDS];

uint32_t shim_ep_gen(int epfd)
{
    return (unsigned)epfd < SHIM_EP_FDS ? atomic_load_explicit(&ep_gens[epfd], memory_order_acquire)
                                         : 0;
}

void shim_ep_gen_bump(int epfd)
{
    if ((unsigned)epfd < SHIM_EP_FDS)
        atomic_fetch_add_explicit(&ep_gens[epfd], 1, memory_order_acq_rel);
}
