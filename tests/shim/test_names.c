/*
 * names: shim/state/names.c, the TCP addresses a bridge's unix sockets
 * carry in their abstract names (getsockname, getpeername and accept read
 * them back with no table). Round trips through real unix sockets, the
 * nonce that makes each name unguessable, a listener's committed secret,
 * and every name that is not exactly ours refused.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shimtest.h"

TestSuite(names, .init = shimtest_setup);

static int unix_socket(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    return fd;
}

static void set_in(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)port);
    cr_assert(inet_pton(AF_INET, ip, &in->sin_addr) == 1);
}

static void set_in6(struct sockaddr_storage *ss, const char *ip, unsigned port, uint32_t scope)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons((uint16_t)port);
    in6->sin6_scope_id = scope;
    cr_assert(inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1);
}

static shim_name v4_name(char kind)
{
    shim_name n;
    memset(&n, 0, sizeof n);
    n.kind = kind;
    n.family = AF_INET;
    set_in(&n.local, "10.0.0.1", 1234);
    set_in(&n.peer, "192.0.2.80", 80);
    n.slot = 77;
    n.id = 0x1122334455667788ull;
    n.pid = 4321;
    return n;
}

/* The raw abstract name fd is bound to, and its length. */
static socklen_t raw_name(int fd, struct sockaddr_un *un)
{
    socklen_t len = sizeof *un;
    cr_assert(getsockname(fd, (struct sockaddr *)un, &len) == 0);
    return len;
}

/* A socket bound to exactly the name un (len bytes). */
static int bound_to(const struct sockaddr_un *un, socklen_t len)
{
    int fd = unix_socket();
    cr_assert(bind(fd, (const struct sockaddr *)un, len) == 0, "bind: %s", strerror(errno));
    return fd;
}

Test(names, an_ipv4_name_round_trips)
{
    shim_name n = v4_name(SHIM_NAME_TCP), out;
    n.flags = SHIM_NAME_F_PROOF;
    int fd = unix_socket();
    cr_assert(eq(int, shim_name_bind(fd, &n), 0));
    memset(&out, 0xa5, sizeof out);
    cr_assert(eq(int, shim_name_get(fd, 0, &out), 1));
    cr_assert(eq(chr, out.kind, SHIM_NAME_TCP));
    cr_assert(eq(u8, out.flags, SHIM_NAME_F_PROOF));
    cr_assert(eq(int, out.family, AF_INET));
    cr_assert(eq(u32, out.slot, 77));
    cr_assert(eq(u64, out.id, 0x1122334455667788ull));
    cr_assert(eq(i32, out.pid, 4321));
    /* whole sockaddrs, zero past the address: what accept() copies out */
    cr_assert(eq(int, memcmp(&out.local, &n.local, sizeof n.local), 0));
    cr_assert(eq(int, memcmp(&out.peer, &n.peer, sizeof n.peer), 0));
}

Test(names, an_ipv6_name_keeps_its_scope)
{
    shim_name n = v4_name(SHIM_NAME_ENGINE), out;
    n.family = AF_INET6;
    set_in6(&n.local, "fe80::1", 443, 3);
    set_in6(&n.peer, "2001:db8::dead:beef", 65535, 0);
    int fd = unix_socket();
    cr_assert(eq(int, shim_name_bind(fd, &n), 0));
    cr_assert(eq(int, shim_name_get(fd, 0, &out), 1));
    cr_assert(eq(int, out.family, AF_INET6));
    cr_assert(eq(int, memcmp(&out.local, &n.local, sizeof(struct sockaddr_in6)), 0));
    cr_assert(eq(int, memcmp(&out.peer, &n.peer, sizeof(struct sockaddr_in6)), 0));
    cr_assert(eq(u32, ((struct sockaddr_in6 *)&out.local)->sin6_scope_id, 3));
}

Test(names, the_same_addresses_twice_make_two_unguessable_names)
{
    shim_name n = v4_name(SHIM_NAME_TCP), a, b;
    int fa = unix_socket(), fb = unix_socket();
    cr_assert(eq(int, shim_name_bind(fa, &n), 0));
    cr_assert(eq(int, shim_name_bind(fb, &n), 0), "no EADDRINUSE: the nonces differ");
    cr_assert(eq(int, shim_name_get(fa, 0, &a), 1));
    cr_assert(eq(int, shim_name_get(fb, 0, &b), 1));
    cr_assert(ne(int, memcmp(a.nonce, b.nonce, sizeof a.nonce), 0));
}

/* The nonce of a name bound in a forked child, after the shim's fork
 * handler (forget, as sock.c's and renew.c's call it) or without it. */
static void child_nonce(const shim_name *n, int forget, uint8_t *out)
{
    int p[2];
    cr_assert(eq(int, pipe(p), 0));
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        if (forget)
            shim_names_atfork_child();
        /* the child's own socket: a copy left in the parent would hold
         * the name bound after the child's exit */
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        shim_name m;
        int ok = fd >= 0 && shim_name_bind(fd, n) == 0 && shim_name_get(fd, 0, &m) == 1 &&
                 write(p[1], m.nonce, sizeof m.nonce) == (ssize_t)sizeof m.nonce;
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    cr_assert(eq(int, waitpid(pid, &st, 0), pid));
    int child_ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    cr_assert(child_ok, "the child bound a name");
    cr_assert(eq(sz, (size_t)read(p[0], out, 16), 16));
    close(p[0]);
    close(p[1]);
}

/* Nonces come from a key each process draws for itself (names.c): a
 * child that forgot its parent's key (the fork handler) binds a name
 * whose nonce is neither its parent's last nor its next. Without the
 * handler the child's next is its parent's next: the key and count
 * decide the bytes, which is why every way to a child forgets them. */
Test(names, a_forked_child_draws_nonces_of_its_own)
{
    shim_name n = v4_name(SHIM_NAME_TCP), a, b;
    int fa = unix_socket(), fb = unix_socket();
    cr_assert(eq(int, shim_name_bind(fa, &n), 0));
    uint8_t forgot[16], kept[16];
    child_nonce(&n, 1, forgot);
    child_nonce(&n, 0, kept);
    cr_assert(eq(int, shim_name_bind(fb, &n), 0));
    cr_assert(eq(int, shim_name_get(fa, 0, &a), 1));
    cr_assert(eq(int, shim_name_get(fb, 0, &b), 1));
    cr_assert(ne(int, memcmp(forgot, b.nonce, 16), 0), "the parent's next");
    cr_assert(ne(int, memcmp(forgot, a.nonce, 16), 0), "the parent's last");
    cr_assert(ne(int, memcmp(a.nonce, b.nonce, 16), 0));
    cr_assert(eq(int, memcmp(kept, b.nonce, 16), 0),
              "without the handler a child repeats its parent's next nonce");
}

Test(names, the_peer_name_is_read_from_the_connected_end)
{
    shim_name eng = v4_name(SHIM_NAME_ENGINE), app = v4_name(SHIM_NAME_TCP), out;
    int l = unix_socket();
    cr_assert(eq(int, shim_name_bind(l, &eng), 0));
    cr_assert(listen(l, 1) == 0);
    struct sockaddr_un un;
    socklen_t len = raw_name(l, &un);
    int c = unix_socket();
    cr_assert(connect(c, (struct sockaddr *)&un, len) == 0);
    cr_assert(eq(int, shim_name_get(c, 1, &out), 1));
    cr_assert(eq(chr, out.kind, SHIM_NAME_ENGINE));
    cr_assert(eq(int, shim_name_peer(c, &out, 0), 1));
    cr_assert(eq(int, shim_name_peer(c, &out, 1), 1), "our own engine's end passes verify");
    cr_assert(eq(int, shim_name_of(c, &out, 1), 1));
    /* a peer whose name is not an engine end's is no bridge of ours */
    int l2 = unix_socket();
    cr_assert(eq(int, shim_name_bind(l2, &app), 0));
    cr_assert(listen(l2, 1) == 0);
    len = raw_name(l2, &un);
    int c2 = unix_socket();
    cr_assert(connect(c2, (struct sockaddr *)&un, len) == 0);
    cr_assert(eq(int, shim_name_get(c2, 1, &out), 1));
    cr_assert(eq(int, shim_name_peer(c2, &out, 0), 0));
    cr_assert(eq(int, shim_name_of(c2, &out, 0), 0));
}

Test(names, a_listener_is_known_by_its_own_name)
{
    shim_name n = v4_name(SHIM_NAME_LISTENER), out;
    int l = unix_socket();
    cr_assert(eq(int, shim_name_bind(l, &n), 0));
    cr_assert(listen(l, 1) == 0);
    cr_assert(eq(int, shim_name_of(l, &out, 1), 1));
    cr_assert(eq(chr, out.kind, SHIM_NAME_LISTENER));
    cr_assert(eq(int, shim_name_of(unix_socket(), &out, 1), 0), "an unbound socket");
    /* an unconnected socket known by its own name is a listener alone */
    shim_name t = v4_name(SHIM_NAME_TCP);
    int u = unix_socket();
    cr_assert(eq(int, shim_name_bind(u, &t), 0));
    cr_assert(eq(int, shim_name_of(u, &out, 0), 0), "a name of another kind");
}

Test(names, a_listener_nonce_commits_to_its_secret)
{
    shim_name n = v4_name(SHIM_NAME_LISTENER), out;
    cr_assert(eq(int, shim_name_listener_secret(&n), 0));
    int l = unix_socket();
    cr_assert(eq(int, shim_name_bind(l, &n), 0));
    cr_assert(eq(int, shim_name_get(l, 0, &out), 1));
    cr_assert(eq(int, shim_name_proof_ok(&out, n.secret), 1));
    for (int bit = 0; bit < 8 * SHIM_NAME_SECRET; bit += 37) {
        uint8_t wrong[SHIM_NAME_SECRET];
        memcpy(wrong, n.secret, sizeof wrong);
        wrong[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert(eq(int, shim_name_proof_ok(&out, wrong), 0), "bit %d flipped", bit);
    }
    /* the same secret in a name of another kind proves nothing */
    out.kind = SHIM_NAME_TCP;
    cr_assert(eq(int, shim_name_proof_ok(&out, n.secret), 0));
    /* a listener without a secret draws its nonce: no proof matches it */
    shim_name plain = v4_name(SHIM_NAME_LISTENER);
    int l2 = unix_socket();
    cr_assert(eq(int, shim_name_bind(l2, &plain), 0));
    cr_assert(eq(int, shim_name_get(l2, 0, &out), 1));
    cr_assert(eq(int, shim_name_proof_ok(&out, plain.secret), 0));
}

Test(names, names_not_exactly_ours_are_refused)
{
    shim_name n = v4_name(SHIM_NAME_TCP), out;
    int good = unix_socket();
    cr_assert(eq(int, shim_name_bind(good, &n), 0));
    struct sockaddr_un un, bad;
    socklen_t len = raw_name(good, &un);

    bad = un; /* another family than AF_INET/AF_INET6 in the family byte */
    bad.sun_path[6] = AF_UNIX;
    cr_assert(eq(int, shim_name_get(bound_to(&bad, len), 0, &out), 0), "family");
    bad = un; /* not our magic */
    bad.sun_path[1] = 'R';
    cr_assert(eq(int, shim_name_get(bound_to(&bad, len), 0, &out), 0), "magic");
    bad = un; /* one byte short */
    cr_assert(eq(int, shim_name_get(bound_to(&bad, len - 1), 0, &out), 0), "short");
    bad = un; /* one byte long */
    bad.sun_path[len - offsetof(struct sockaddr_un, sun_path)] = 'x';
    cr_assert(eq(int, shim_name_get(bound_to(&bad, len + 1), 0, &out), 0), "long");
    cr_assert(eq(int, shim_name_get(unix_socket(), 0, &out), 0), "unbound");
    int p[2];
    cr_assert(pipe(p) == 0);
    cr_assert(eq(int, shim_name_get(p[0], 0, &out), -ENOTSOCK));
    cr_assert(eq(int, shim_name_get(good, 1, &out), -ENOTCONN));
}

Test(names, is_engine_by_the_form_alone)
{
    shim_name n = v4_name(SHIM_NAME_ENGINE);
    int fd = unix_socket();
    cr_assert(eq(int, shim_name_bind(fd, &n), 0));
    struct sockaddr_un un, other;
    socklen_t len = raw_name(fd, &un);
    const struct sockaddr *sa = (const struct sockaddr *)&un;
    cr_assert(eq(int, shim_name_is_engine(sa, len, sizeof un), 1));
    /* recvfrom with a buffer cut short: the kernel copies what fits */
    cr_assert(eq(int, shim_name_is_engine(sa, len, offsetof(struct sockaddr_un, sun_path) + 6), 1));
    cr_assert(eq(int, shim_name_is_engine(sa, len, offsetof(struct sockaddr_un, sun_path) + 5), 0));
    cr_assert(eq(int, shim_name_is_engine(sa, len - 1, sizeof un), 0));
    cr_assert(eq(int, shim_name_is_engine(NULL, len, sizeof un), 0));
    other = un;
    other.sun_path[5] = SHIM_NAME_TCP;
    cr_assert(eq(int, shim_name_is_engine((const struct sockaddr *)&other, len, sizeof un), 0));
    other = un;
    other.sun_family = AF_INET;
    cr_assert(eq(int, shim_name_is_engine((const struct sockaddr *)&other, len, sizeof un), 0));
}
