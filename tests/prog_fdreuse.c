/*
 * prog_fdreuse: a connection's fd number closed or replaced by a call that
 * does not go through the shim's close() or dup2() as such, then given to
 * another file, names that file, as the kernel says.
 *
 * For each way, a connection c (to an accepted end a in this process)
 * first carries a few bytes each way, then a dup() of it is kept (so the
 * connection lives on), then c's number is closed or replaced:
 *   fclose        fdopen(c) then fclose(): stdio closes it inside libc
 *   fdopen_first  the same with the stream made before connect() (the
 *                 record the number holds then is connect()'s, a new one)
 *   dup2          dup2() of a unix socket over c
 *   __dup2        the same through glibc's other name, __dup2()
 *   dup3          syscall(SYS_dup3) of a unix socket over c
 *   __close       glibc's other name for close(), __close()
 *   mq_close      glibc's mq_close(), a close() of any number
 *   unshare       a thread unshare(CLONE_FILES)s and looks c up in its own
 *                 table (still the connection), then this one dup2()s a
 *                 unix socket over c in its table
 *   sysclose      syscall(SYS_close, c), and
 *   range         close_range(c, c, 0): the shim's close(), as before
 *   uring         an io_uring's IORING_OP_CLOSE that completes after its
 *                 io_uring_enter() returned ("skip:" without io_uring)
 *   optrace       dup2() of a unix socket over c while another thread
 *                 loops setsockopt(c, TCP_NODELAY), 20 times (an option
 *                 call writes back the record it read: only to the file
 *                 it read it from, state/fdtab.c shim_fd_update; before,
 *                 about 3 in 4 rounds left the connection at the number)
 * and, where it was closed, the lowest free number, c, is taken by a unix
 * socket pair's end (socketpair(), which the shim does not see). Then
 * TCP_NODELAY on c must say EOPNOTSUPP (a unix socket), write(c, "X")
 * must reach the pair's other end, a read of c must find the pair empty
 * (EAGAIN), and the connection's peer a must get nothing.
 *
 * Under the shim, a record proved once is trusted until a call the shim
 * sees says the number may have changed (state/fdtab.c's epochs): without
 * the fclose, fdopen_first, dup2, __dup2, __close, mq_close, unshare and
 * uring cases' proofs (two helpers' reviews found the last six), "X"
 * went into the connection. Each way runs in a forked child
 * of its own.
 *
 * prog_fdreuse [WAY]: every way, or WAY alone. Prints "ok:" lines and
 * "transport: KIND"; exit 1 with a "FAIL:" line, 3 if the watchdog (60 s)
 * fired.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/io_uring.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_fdreuse";

int __close(int fd);
int __dup2(int oldfd, int newfd);

#define IO_MS 10000

/* c carries a byte each way, a few times, so that its record is in use */
static void warm(int c, int a)
{
    for (int i = 0; i < 4; i++) {
        char b;
        write_exact(c, "w", 1);
        read_exact(a, &b, 1, IO_MS);
        write_exact(a, "r", 1);
        read_exact(c, &b, 1, IO_MS);
    }
}

/* The unix pair's end at number c (socketpair() gives the lowest free
 * numbers, c first; else moved there with F_DUPFD), its other end in
 * *other. */
static int pair_at(int c, int *other)
{
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    if (sp[0] != c) {
        int m = fcntl(sp[0], F_DUPFD, c);
        SYS(m);
        CHECK(m == c, "the lowest free number from %d is %d", c, m);
        close(sp[0]);
    }
    *other = sp[1];
    return c;
}

/* A connection made with a stdio stream on its socket first: *c the
 * client, *a the accepted end, *f the stream. */
static void pair_fdopen_first(int *c, int *a, FILE **f)
{
    int l = listener_lo(0, 4);
    *c = socket(AF_INET, SOCK_STREAM, 0);
    SYS(*c);
    *f = fdopen(*c, "r+");
    CHECK(*f != NULL, "fdopen: %s", strerror(errno));
    struct sockaddr_storage ss;
    socklen_t len = loopback(AF_INET, port_of_fd(l), &ss);
    SYS(connect(*c, (struct sockaddr *)&ss, len));
    *a = accept_ready(l, IO_MS);
    close(l);
}

/* unshare: the thread's own table, where c is still the connection */
static int t_c;
static pthread_barrier_t bar;

static void *unshared(void *arg)
{
    (void)arg;
    SYS(unshare(CLONE_FILES));
    pthread_barrier_wait(&bar); /* then the main thread dup2()s over its c */
    pthread_barrier_wait(&bar);
    int v = 0;
    socklen_t vl = sizeof v;
    SYS(getsockopt(t_c, IPPROTO_TCP, TCP_NODELAY, &v, &vl)); /* its record, looked up here */
    write_exact(t_c, "t", 1); /* its c: the connection; its table goes at its end */
    return NULL;
}

/* uring: an io_uring made through libc's syscall() (which the shim sees;
 * liburing's are its own), whose IORING_OP_CLOSE of c is linked behind a
 * 200 ms timeout: io_uring_enter returns at once and the close completes
 * later, told by the completion queue in memory. Before it completes c is
 * still the connection, and a write of it is the connection's. 1, or 0
 * with a "skip:" line where the kernel has no io_uring for us. */
static int uring_close(int c, int a)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
    if (ring < 0) {
        printf("skip: uring: io_uring_setup says %s\n", strerror(errno));
        return 0;
    }
    CHECK(p.features & IORING_FEAT_SINGLE_MMAP, "io_uring without IORING_FEAT_SINGLE_MMAP");
    size_t sqsz = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    size_t cqsz = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    char *q = mmap(NULL, sqsz > cqsz ? sqsz : cqsz, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    CHECK(q != MAP_FAILED && sqes != MAP_FAILED, "io_uring mmap: %s", strerror(errno));
    warm(c, a); /* the record proved after the setup */
    _Atomic unsigned *sq_tail = (_Atomic unsigned *)(q + p.sq_off.tail);
    unsigned *sq_array = (unsigned *)(q + p.sq_off.array);
    _Atomic unsigned *cq_head = (_Atomic unsigned *)(q + p.cq_off.head);
    _Atomic unsigned *cq_tail = (_Atomic unsigned *)(q + p.cq_off.tail);
    struct io_uring_cqe *cqes = (struct io_uring_cqe *)(q + p.cq_off.cqes);
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
    unsigned tail = atomic_load(sq_tail), mask = p.sq_entries - 1;
    struct io_uring_sqe *t = &sqes[tail & mask], *cl = &sqes[(tail + 1) & mask];
    memset(t, 0, sizeof *t);
    t->opcode = IORING_OP_TIMEOUT;
    t->addr = (unsigned long)&ts;
    t->len = 1;
    t->flags = IOSQE_IO_HARDLINK;
    t->user_data = 1;
    memset(cl, 0, sizeof *cl);
    cl->opcode = IORING_OP_CLOSE;
    cl->fd = c;
    cl->user_data = 42;
    sq_array[tail & mask] = tail & mask;
    sq_array[(tail + 1) & mask] = (tail + 1) & mask;
    atomic_store(sq_tail, tail + 2);
    long r = syscall(SYS_io_uring_enter, ring, 2, 0, 0, NULL, 0);
    CHECK(r == 2, "io_uring_enter: %ld (%s)", r, strerror(errno));
    char pb;
    write_exact(c, "p", 1); /* still the connection */
    read_exact(a, &pb, 1, IO_MS);
    double t0 = now_s();
    for (;;) {
        while (atomic_load(cq_tail) == atomic_load(cq_head))
            CHECK(now_s() - t0 < 10, "uring: no completion of the close");
        struct io_uring_cqe *e = &cqes[atomic_load(cq_head) & (p.cq_entries - 1)];
        atomic_store(cq_head, atomic_load(cq_head) + 1);
        if (e->user_data == 42) {
            CHECK(e->res == 0, "uring: IORING_OP_CLOSE: %s", strerror(-e->res));
            return 1;
        }
    }
}

/* A unix socket over c by how; its other end. */
static int replace(const char *how, int c)
{
    int sp[2];
    SYS(socketpair(AF_UNIX, SOCK_STREAM, 0, sp));
    if (strcmp(how, "dup2") == 0 || strcmp(how, "unshare") == 0)
        SYS(dup2(sp[0], c));
    else if (strcmp(how, "__dup2") == 0)
        SYS(__dup2(sp[0], c));
    else
        SYS(syscall(SYS_dup3, sp[0], c, 0));
    close(sp[0]);
    return sp[1];
}

static void check_new_file(const char *how, int c, int other, int a);
static void optrace(void);

static void one(const char *how)
{
    if (strcmp(how, "optrace") == 0) {
        optrace();
        return;
    }
    int c, a;
    FILE *f = NULL;
    if (strcmp(how, "fdopen_first") == 0)
        pair_fdopen_first(&c, &a, &f);
    else
        loopback_pair(AF_INET, &c, &a);
    if (strcmp(how, "fclose") == 0)
        printf("transport: %s\n", fd_transport(c));
    warm(c, a);
    write_exact(a, "Y", 1); /* for c's read to find, if it read the connection */
    usleep(20000);
    int keep = dup(c);
    SYS(keep);
    int other = -1;
    pthread_t th;
    if (strcmp(how, "fclose") == 0 || strcmp(how, "fdopen_first") == 0) {
        if (!f)
            f = fdopen(c, "w");
        CHECK(f != NULL, "fdopen: %s", strerror(errno));
        CHECK(fclose(f) == 0, "fclose: %s", strerror(errno));
        pair_at(c, &other);
    } else if (strcmp(how, "unshare") == 0) {
        t_c = c;
        pthread_barrier_init(&bar, NULL, 2);
        SYS(pthread_create(&th, NULL, unshared, NULL) == 0 ? 0 : -1);
        pthread_barrier_wait(&bar);
        other = replace(how, c); /* this thread's table only */
        pthread_barrier_wait(&bar);
        pthread_join(th, NULL);
        char t;
        read_exact(a, &t, 1, IO_MS);
        CHECK(t == 't', "unshare: the peer read '%c', not the other table's t", t);
    } else if (strcmp(how, "sysclose") == 0) {
        SYS(syscall(SYS_close, c));
        pair_at(c, &other);
    } else if (strcmp(how, "__close") == 0) {
        SYS(__close(c));
        pair_at(c, &other);
    } else if (strcmp(how, "mq_close") == 0) {
        SYS(mq_close(c));
        pair_at(c, &other);
    } else if (strcmp(how, "uring") == 0) {
        if (!uring_close(c, a))
            return;
        pair_at(c, &other);
    } else if (strcmp(how, "range") == 0) {
        SYS(syscall(SYS_close_range, c, c, 0));
        pair_at(c, &other);
    } else {
        other = replace(how, c);
    }
    check_new_file(how, c, other, a);
    close(c);
    close(other);
    close(keep);
    close(a);
    printf("ok: %s: the number names the new file: its write and read are that file's\n", how);
}

/* c, now the unix socket whose other end is other, is that socket's: a
 * TCP option says EOPNOTSUPP, a write reaches other, a read finds it
 * empty, and the connection's peer a gets nothing. */
static void check_new_file(const char *how, int c, int other, int a)
{
    /* a TCP option on the unix socket: the kernel's EOPNOTSUPP, not the
     * old connection's record */
    int one = 1;
    int so = setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    CHECK(so < 0 && errno == EOPNOTSUPP, "%s: TCP_NODELAY on the new file at %d: %d (%s)", how, c,
          so, so < 0 ? strerror(errno) : "set");
    ssize_t w = write(c, "X", 1);
    CHECK(w == 1, "%s: write to the new file at %d: %zd (%s)", how, c, w,
          w < 0 ? strerror(errno) : "short");
    char b = 0;
    CHECK(poll_for(other, POLLIN, IO_MS) & POLLIN, "%s: the pair's other end got nothing", how);
    CHECK(read(other, &b, 1) == 1 && b == 'X', "%s: the pair's other end read '%c', not X", how,
          b);
    SYS(fcntl(c, F_SETFL, O_NONBLOCK));
    ssize_t r = read(c, &b, 1);
    CHECK(r < 0 && errno == EAGAIN, "%s: a read of the new file at %d gave %zd ('%c'), not EAGAIN",
          how, c, r, r == 1 ? b : ' ');
    short ev = poll_for(a, POLLIN, 200);
    if (ev & POLLIN) {
        r = read(a, &b, 1);
        CHECK(r != 1, "%s: the connection's peer read '%c', written to the new file", how, b);
    }
}

static atomic_int opt_stop;

static void *opt_spin(void *arg)
{
    int c = *(int *)arg, v = 1;
    while (!atomic_load(&opt_stop))
        (void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
    return NULL;
}

/* optrace: a thread's setsockopt() loop on c racing this one's dup2() of a
 * unix socket over c, OPT_ROUNDS times (the option call reads c's record,
 * the dup2 lands, the call writes the record back) */
#define OPT_ROUNDS 20
static void optrace(void)
{
    for (int i = 0; i < OPT_ROUNDS; i++) {
        int c, a;
        loopback_pair(AF_INET, &c, &a);
        warm(c, a);
        int keep = dup(c);
        SYS(keep);
        atomic_store(&opt_stop, 0);
        pthread_t th;
        SYS(pthread_create(&th, NULL, opt_spin, &c) == 0 ? 0 : -1);
        usleep(200 + (unsigned)(i % 7) * 37);
        int other = replace("dup2", c);
        atomic_store(&opt_stop, 1);
        pthread_join(th, NULL);
        check_new_file("optrace", c, other, a);
        close(c);
        close(other);
        close(keep);
        close(a);
    }
    printf("ok: optrace: %d setsockopt() loops raced a dup2() over their number: each time the "
           "number names the new file\n", OPT_ROUNDS);
}

int main(int argc, char **argv)
{
    static const char *const ways[] = {"fclose",   "fdopen_first", "dup2",  "__dup2",
                                       "dup3",     "__close",      "mq_close", "sysclose",
                                       "range",    "unshare",      "uring",    "optrace"};
    prog_begin(1, 120); /* an argument (WAY) is ours to read */
    /* each way in a child of its own: unshare and io_uring make every
     * lookup after them ask the kernel, which would hide the next way's
     * fault */
    for (size_t i = 0; i < sizeof ways / sizeof ways[0]; i++) {
        if (argc >= 2 && strcmp(argv[1], ways[i]) != 0)
            continue;
        pid_t k = fork();
        SYS(k);
        if (k == 0) {
            one(ways[i]);
            exit(0);
        }
        int st = reap_within(k, 30000, ways[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: the child ended with status %d", ways[i],
              st);
    }
    return 0;
}
