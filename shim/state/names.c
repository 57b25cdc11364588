/*
 * names.c: the TCP-level addresses of a bridged connection live in the
 * abstract names of its unix sockets, so getsockname/getpeername/accept need
 * no table and keep working in forked children and after exec.
 *
 * Layout after the leading NUL (fixed size, integers little-endian):
 *   "rUdP" kind(1) family(1) pad(2)
 *   local: port(2, network order) addr(16) scope(4)
 *   peer:  port(2, network order) addr(16) scope(4)
 *   slot(4) id(8) pid(4) nonce(16)
 * The nonce is 128 random bits (nonce(), below): it keeps names distinct
 * when two connections share both addresses, and makes every name
 * unguessable, so no local user can bind a name before we do (a listener's
 * listen() would then fail) or foresee one. The names are public (ss -xl lists them) and
 * anyone may bind a free one: who made a connection is checked with the
 * kernel's credentials (ident.c), never read from a name.
 *
 * A listener's nonce is not drawn but committed: the first 16 bytes of a
 * hash of a 32-byte secret its engine keeps (shim_name.secret, in no name
 * and no slab). An engine end whose pad byte says SHIM_NAME_F_PROOF writes
 * that secret as its first 32 bytes, before any of the connection's: the
 * proof a keeper shows to a process that has no other way to know it for
 * ours (ident.c). The nonce stays unguessable, the secret is never public:
 * it goes only to a socket the engine has checked is our listener
 * (shim_ident_listener), that is to the processes holding it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sodium.h>
#include <sys/random.h>
#include <sys/un.h>
#include <unistd.h>

#include "state.h"

#include "base/poison.h"

#define NAME_LEN (1 + 4 + 4 + 22 + 22 + 4 + 8 + 4 + 16)

static void put_addr(uint8_t *p, int family, const struct sockaddr_storage *ss)
{
    memset(p, 0, 22);
    if (family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        memcpy(p, &in->sin_port, 2);
        memcpy(p + 2, &in->sin_addr, 4);
    } else {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        memcpy(p, &in6->sin6_port, 2);
        memcpy(p + 2, &in6->sin6_addr, 16);
        memcpy(p + 18, &in6->sin6_scope_id, 4);
    }
}

static void get_addr(const uint8_t *p, int family, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_port, p, 2);
        memcpy(&in->sin_addr, p + 2, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_port, p, 2);
        memcpy(&in6->sin6_addr, p + 2, 16);
        memcpy(&in6->sin6_scope_id, p + 18, 4);
    }
}

/* The listener's nonce for secret: the first 16 bytes of its BLAKE2b. */
static void commit(const uint8_t *secret, uint8_t *nonce)
{
    crypto_generichash(nonce, 16, secret, SHIM_NAME_SECRET, NULL, 0);
}

/*
 * A name's nonce: 16 bytes of ChaCha20's keystream (libsodium) under a key
 * drawn from getrandom once per process, at a nonce counted up: as
 * unguessable as getrandom's own bytes while the key stays in the process,
 * without its system call per name (one per bridge at each end, two per
 * connection: B12's 3,500 at once). The key is published whole behind an
 * atomic pointer; a child with a copy of our memory forgets it
 * (shim_names_atfork_child: fork's handler, renew.c for a raw clone, a
 * keeper), so that no process goes on with another's key and count: not
 * told by the pid, which a later process may have again (a server forking
 * a child per connection, a pid namespace). Processes sharing our memory
 * (vfork, CLONE_VM) share the key and its count. A key a thread lost the
 * race to publish is freed; a forgotten one is left to the parent.
 */
typedef struct nonce_key {
    _Atomic uint64_t count;
    uint8_t key[crypto_stream_chacha20_ietf_KEYBYTES];
} nonce_key;

static _Atomic(nonce_key *) nkey;

void shim_names_atfork_child(void)
{
    atomic_store_explicit(&nkey, NULL, memory_order_relaxed);
}

static int nonce(uint8_t *out, size_t n)
{
    nonce_key *k = atomic_load_explicit(&nkey, memory_order_acquire);
    while (!k) {
        nonce_key *fresh = shim_malloc(sizeof *fresh);
        if (!fresh)
            return -ENOMEM;
        atomic_init(&fresh->count, 0);
        if (getrandom(fresh->key, sizeof fresh->key, 0) != (ssize_t)sizeof fresh->key) {
            int err = errno ? -errno : -EIO;
            shim_free(fresh);
            return err;
        }
        if (atomic_compare_exchange_strong_explicit(&nkey, &k, fresh, memory_order_acq_rel,
                                                    memory_order_acquire))
            k = fresh;
        else
            shim_free(fresh); /* another thread's is in: k holds it now */
    }
    uint8_t iv[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
    uint64_t c = atomic_fetch_add_explicit(&k->count, 1, memory_order_relaxed);
    memcpy(iv, &c, sizeof c);
    crypto_stream_chacha20_ietf(out, n, iv, k->key);
    return 0;
}

int shim_name_listener_secret(shim_name *n)
{
    return getrandom(n->secret, sizeof n->secret, 0) == (ssize_t)sizeof n->secret
               ? 0
               : (errno ? -errno : -EIO);
}

int shim_name_proof_ok(const shim_name *listener, const uint8_t *proof)
{
    uint8_t h[16];
    commit(proof, h);
    return listener->kind == SHIM_NAME_LISTENER && sodium_memcmp(h, listener->nonce, 16) == 0;
}

int shim_name_bind(int fd, const shim_name *n)
{
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    uint8_t *p = (uint8_t *)un.sun_path + 1; /* abstract: sun_path[0] = 0 */
    memcpy(p, "rUdP", 4);
    p[4] = (uint8_t)n->kind;
    p[5] = (uint8_t)n->family;
    p[6] = n->flags;
    p += 8;
    put_addr(p, n->family, &n->local);
    put_addr(p + 22, n->family, &n->peer);
    p += 44;
    memcpy(p, &n->slot, 4);
    memcpy(p + 4, &n->id, 8);
    memcpy(p + 12, &n->pid, 4);
    static const uint8_t none[SHIM_NAME_SECRET];
    int err = 0;
    if (n->kind == SHIM_NAME_LISTENER && memcmp(n->secret, none, sizeof none) != 0)
        commit(n->secret, p + 16);
    else
        err = nonce(p + 16, 16);
    if (err < 0)
        return err;
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + NAME_LEN);
    return real_bind(fd, (struct sockaddr *)&un, len) < 0 ? -errno : 0;
}

int shim_name_get(int fd, int peer, shim_name *n)
{
    struct sockaddr_un un;
    socklen_t len = sizeof un;
    int r = peer ? real_getpeername(fd, (struct sockaddr *)&un, &len)
                 : real_getsockname(fd, (struct sockaddr *)&un, &len);
    if (r < 0)
        return -errno;
    return shim_name_decode(&un, len, n);
}

int shim_name_decode(const struct sockaddr_un *un, socklen_t len, shim_name *n)
{
    if (len > sizeof *un || un->sun_family != AF_UNIX ||
        len != offsetof(struct sockaddr_un, sun_path) + NAME_LEN || un->sun_path[0] != 0 ||
        memcmp(un->sun_path + 1, "rUdP", 4) != 0)
        return 0;
    const uint8_t *p = (const uint8_t *)un->sun_path + 1;
    n->kind = (char)p[4];
    n->family = p[5];
    n->flags = p[6];
    if (n->family != AF_INET && n->family != AF_INET6)
        return 0;
    p += 8;
    get_addr(p, n->family, &n->local);
    get_addr(p + 22, n->family, &n->peer);
    p += 44;
    memcpy(&n->slot, p, 4);
    memcpy(&n->id, p + 4, 8);
    memcpy(&n->pid, p + 12, 4);
    memcpy(n->nonce, p + 16, 16);
    return 1;
}

int shim_name_is_engine(const struct sockaddr *sa, socklen_t len, socklen_t cap)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    /* the kernel returns the full length and copies what fits in cap */
    return sa && len == offsetof(struct sockaddr_un, sun_path) + NAME_LEN &&
           cap >= offsetof(struct sockaddr_un, sun_path) + 6 && un->sun_family == AF_UNIX &&
           un->sun_path[0] == 0 && memcmp(un->sun_path + 1, "rUdP", 4) == 0 &&
           un->sun_path[5] == SHIM_NAME_ENGINE;
}

int shim_name_peer(int fd, shim_name *n, int verify)
{
    if (shim_name_get(fd, 1, n) != 1 || n->kind != SHIM_NAME_ENGINE)
        return 0;
    return !verify || shim_ident_inherited(fd);
}

int shim_name_of(int fd, shim_name *n, int verify)
{
    int r = shim_name_get(fd, 1, n);
    if (r == 1 && n->kind == SHIM_NAME_ENGINE)
        return !verify || shim_ident_inherited(fd);
    if (r >= 0)
        return 0; /* connected, but not to an engine end of ours */
    /* No peer: a listener, or an unconnected socket. An accepted socket's
     * own name is its listener's, so it is never taken for one here. */
    r = shim_name_get(fd, 0, n);
    if (r == 1 && n->kind == SHIM_NAME_LISTENER)
        return 1;
    return r < 0 ? r : 0;
}
