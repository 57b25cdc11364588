/*
 * aead_openssl.c: the core's packet protection through OpenSSL 3's
 * libcrypto (EVP), a rudp_aead_backend (rudp.h) the engines install in
 * every context (shim_aead_openssl, base.h). The core runs every cipher
 * with libsodium by itself; this backend takes the ones OpenSSL runs
 * faster here.
 *
 * Why two libraries: keyed mode's goodput, where the CPU is the limit, is
 * bounded by what sealing and opening cost at each end, and the libraries
 * differ (ns per seal / open, fastest of 7 batches, one 2-vCPU Xeon with
 * AES-NI, VAES and AVX-512; libsodium 1.0.18, OpenSSL 3.0.19; make bench
 * prints its own machine's, integration/bench/cryptocost.c):
 *
 *   ciphertext bytes        16     64    256    512   1024   1400
 *   AES-GCM libsodium    91/70 109/101 132/135 228/248 419/478 636/735
 *   AES-GCM OpenSSL    171/162 177/169 206/196 246/238 320/311 393/375
 *   ChaCha20 libsodium (64) 265/269                  (1400) 1138/1130
 *   ChaCha20 OpenSSL   (64) 643/547                  (1400) 1005/906
 *
 * OpenSSL's AES-256-GCM (its stitched AES-NI/VAES code) moves the bytes in
 * half of libsodium's time, but its EVP layer costs ~80 ns more a call
 * (EVP_CipherInit_ex's IV length and the tag's ctrl are parameter lookups
 * by name in 3.0). So AES-256-GCM is this backend's and split: datagrams
 * from EVP_MIN bytes (full ones) come here, smaller ones (ACKs, small
 * requests) stay libsodium's, each direction holding both expanded keys.
 * ChaCha20-Poly1305, the cipher of CPUs without AES-NI, stays libsodium's
 * (not in `prefer`): OpenSSL is 10-20% faster only on full datagrams here,
 * 2x slower on small ones, and a machine without AES-NI (where it matters)
 * is not one we can measure. This is the choice the core made itself when
 * it carried this code; only where the code lives has changed.
 *
 * OpenSSL's calls, per datagram, on a context keyed once: EVP_*Init_ex
 * with only the nonce, the associated data and the message through
 * EVP_*Update, the tag got (sealing) or set (opening), EVP_*Final_ex.
 * Every return is checked. Opening a forged datagram fails in Final and
 * puts nothing on OpenSSL's error queue (providers' GCM and
 * ChaCha20-Poly1305 finals fail silently on a bad tag), so a flood of
 * forgeries costs the tag check only.
 *
 * Neither sealing nor opening allocates, nor does a connection's start or
 * end: a context's state makes its OpenSSL contexts when a cipher is
 * prepared (the pool, POOL, on the thread that sets the key: an
 * application's); a direction takes one when it gets its key, keys it
 * once, and gives it each datagram's nonce only; when the connection ends
 * the context is keyed again with a fixed key (its expanded key and GHASH
 * key are overwritten) and goes back to the pool. The engine threads never
 * call libc's malloc() (a child made by a raw clone() would inherit its
 * lock taken: alloc.c), and OpenSSL's contexts come from libc's; so a
 * direction that finds the pool empty is libsodium's, the same cipher
 * (~1.7x its cost on a full AES-256-GCM datagram here), until a connection
 * ends and gives its context back.
 *
 * OpenSSL's libcrypto is loaded by dlopen() at the first keyed context, not
 * linked: loading libcrypto (4.7 MB, its relocations bound at once) cost
 * every program started under the shim ~0.8 ms, keyed or not. Without
 * libcrypto.so.3 the backend does not start and keyed mode is libsodium's.
 * It runs in a library context of its own (OSSL_LIB_CTX_new), one for the
 * process, made then and kept: the providers and properties the program's
 * OpenSSL configuration sets for its default context do not reach ours.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "base.h"

/* A core context's allocator (rudp_mem), for the state this backend keeps
 * per context: written before poison.h, as the table's members are named
 * after libc's functions. */
static void *mem_calloc(const rudp_mem *m, size_t count, size_t size)
{
    return m->calloc(count, size, m->user);
}

static void mem_free(const rudp_mem *m, void *p)
{
    m->free(p, m->user);
}

#include "poison.h"

/* OpenSSL contexts a context's state makes for a cipher when prepared, for
 * as many directions (two a connection). 32: 16 connections at OpenSSL's
 * speed, ~40 KB. */
#define POOL SHIM_AEAD_OPENSSL_POOL

/* Ciphertext bytes from which a datagram is OpenSSL's: below, libsodium's.
 * OpenSSL 3.0's EVP spends ~80 ns more a call (its parameter lookups),
 * libsodium 1.0.18's AES-256-GCM ~0.3 ns more a byte; here they cross near
 * 512 bytes (ACKs and small requests below, full datagrams far above). */
#define EVP_MIN 512

/* What an OpenSSL context took here for AES-256-GCM (1144 bytes asked of
 * malloc, in three blocks), as the core counts it in the context's memory
 * budget; tests/test_aead.c checks the bound. */
#define EVP_BYTES 1280

static const char *const evp_name[3] = {NULL, "ChaCha20-Poly1305", "AES-256-GCM"};

/* The key a spare OpenSSL context holds: not a secret, only not the last
 * connection's. */
static const uint8_t blank_key[RUDP_AEAD_KEY];

/* OpenSSL's library context and ciphers, one set per process, made once
 * (pthread_once: engines start keyed contexts on several threads) and
 * kept: a library context with its default provider takes ~0.5 ms and
 * ~170 KB here, which every engine, and each of the unit tests' thousands
 * of keyed contexts, would pay again; it holds no secret (the keys live in
 * the connections' cipher contexts), and nothing of it changes once
 * loaded. A context of our own, not the default one: the program's
 * default context (its providers, a FIPS configuration) does not reach
 * ours. One thing we cannot keep from it: the first cipher context that
 * OpenSSL 3.0 sets up asks its ENGINE table, which first loads the
 * process's OpenSSL configuration (openssl.cnf, into the default context)
 * if nothing did yet, as any program using OpenSSL does at its start. That
 * is done here, with a throwaway context, so that it happens when the
 * first keyed engine starts (the thread of the program's connect() or
 * listen(), where libsodium starts too), not on an engine thread at some
 * connection's handshake. */
static struct {
    OSSL_LIB_CTX *ctx;
    EVP_CIPHER *evp[3];
} ossl;
static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

#define OSSL_CALLS(X) \
    X(OSSL_LIB_CTX_new) \
    X(EVP_CIPHER_fetch) \
    X(EVP_CIPHER_free) \
    X(EVP_CIPHER_CTX_new) \
    X(EVP_CIPHER_CTX_free) \
    X(EVP_EncryptInit_ex2) \
    X(EVP_EncryptInit_ex) \
    X(EVP_DecryptInit_ex) \
    X(EVP_EncryptUpdate) \
    X(EVP_DecryptUpdate) \
    X(EVP_EncryptFinal_ex) \
    X(EVP_DecryptFinal_ex) \
    X(EVP_CIPHER_CTX_ctrl) \
    X(EVP_CIPHER_CTX_get_key_length) \
    X(EVP_CIPHER_CTX_get_iv_length) \
    X(ERR_set_mark) \
    X(ERR_pop_to_mark)
#define X(f) __typeof__(&f) f;
static struct {
    OSSL_CALLS(X)
} O;
#undef X

/* 1 if every call is bound (once: ossl_load's); else 0 and why. */
static int ossl_bind(const char **why)
{
    void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        *why = "libcrypto.so.3 not loaded";
        return 0;
    }
#define X(f) \
    if (!(O.f = (__typeof__(&f))dlsym(h, #f))) { \
        *why = "libcrypto.so.3 lacks " #f; \
        dlclose(h); \
        return 0; \
    }
    OSSL_CALLS(X)
#undef X
    return 1; /* h stays: libcrypto is never unloaded (it is linked -z nodelete) */
}

/* Why OpenSSL's AES-256-GCM is not there, once ossl_load ran (NULL: it
 * is). */
static const char *load_why;

static void ossl_load_bound(const char **why);

static void ossl_load(void)
{
    const char *why = NULL;
    ossl_load_bound(&why);
    if (!ossl.ctx || !ossl.evp[RUDP_AEAD_AESGCM])
        load_why = why ? why : "AES-256-GCM not fetched";
}

const char *shim_aead_openssl_unavailable(void)
{
    if (pthread_once(&ossl_once, ossl_load) != 0)
        return "pthread_once failed";
    return load_why;
}

static void ossl_load_bound(const char **why)
{
    if (!ossl_bind(why))
        return;
    O.ERR_set_mark();
    ossl.ctx = O.OSSL_LIB_CTX_new();
    for (int c = RUDP_AEAD_CHACHA; ossl.ctx && c <= RUDP_AEAD_AESGCM; c++) {
        ossl.evp[c] = O.EVP_CIPHER_fetch(ossl.ctx, evp_name[c], NULL);
        EVP_CIPHER_CTX *x = ossl.evp[c] ? O.EVP_CIPHER_CTX_new() : NULL;
        if (x && O.EVP_EncryptInit_ex2(x, ossl.evp[c], blank_key, NULL, NULL) != 1) {
            O.EVP_CIPHER_free(ossl.evp[c]); /* unusable: libsodium's then */
            ossl.evp[c] = NULL;
        }
        O.EVP_CIPHER_CTX_free(x);
    }
    O.ERR_pop_to_mark();
}

/* One core context's state: spare OpenSSL contexts by cipher, keyed with
 * the blank key, ready to be keyed again. */
struct shim_aead_openssl {
    const rudp_mem *mem;
    EVP_CIPHER_CTX **spare[3]; /* POOL places each, once prepared */
    uint32_t nspare[3];
};

static void *be_start(const rudp_mem *mem, uint8_t *ciphers)
{
    *ciphers = 0;
    if (pthread_once(&ossl_once, ossl_load) != 0 || !ossl.ctx)
        return NULL;
    for (uint8_t c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++)
        if (ossl.evp[c])
            *ciphers |= c; /* a cipher's number is its bit (rudp.h) */
    struct shim_aead_openssl *st = *ciphers ? mem_calloc(mem, 1, sizeof *st) : NULL;
    if (st)
        st->mem = mem;
    return st;
}

/* Fills the pool of cipher c with POOL OpenSSL contexts keyed with the
 * blank key, once; 1 if it holds any. */
static int be_prepare(void *p, uint8_t c)
{
    struct shim_aead_openssl *st = p;
    if (st->spare[c])
        return st->nspare[c] > 0;
    if (!(st->spare[c] = mem_calloc(st->mem, POOL, sizeof *st->spare[c])))
        return 0;
    O.ERR_set_mark();
    while (st->nspare[c] < POOL) {
        EVP_CIPHER_CTX *x = O.EVP_CIPHER_CTX_new();
        if (!x || O.EVP_EncryptInit_ex2(x, ossl.evp[c], blank_key, NULL, NULL) != 1 ||
            O.EVP_CIPHER_CTX_get_key_length(x) != RUDP_AEAD_KEY ||
            O.EVP_CIPHER_CTX_get_iv_length(x) != RUDP_AEAD_NONCE) {
            O.EVP_CIPHER_CTX_free(x);
            break;
        }
        st->spare[c][st->nspare[c]++] = x;
    }
    O.ERR_pop_to_mark();
    return st->nspare[c] > 0;
}

static void be_stop(void *p)
{
    struct shim_aead_openssl *st = p;
    for (int c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        for (uint32_t i = 0; i < st->nspare[c]; i++)
            O.EVP_CIPHER_CTX_free(st->spare[c][i]);
        mem_free(st->mem, st->spare[c]);
    }
    mem_free(st->mem, st);
}

/* An OpenSSL context of cipher c from the pool, keyed with key; NULL if
 * the pool is empty (or OpenSSL refused the key: cannot be). Allocates
 * nothing: a connection's handshake runs on an engine thread. */
static void *be_key(void *p, uint8_t c, const uint8_t key[RUDP_AEAD_KEY])
{
    struct shim_aead_openssl *st = p;
    if (!st->nspare[c])
        return NULL;
    EVP_CIPHER_CTX *x = st->spare[c][--st->nspare[c]];
    /* No ERR_set_mark() here or below on an engine thread: it would make
     * the thread's error queue, an allocation; and keying a context that
     * holds its cipher fails (and queues an error) only on a bug. */
    if (O.EVP_EncryptInit_ex(x, NULL, NULL, key, NULL) != 1) {
        st->spare[c][st->nspare[c]++] = x;
        return NULL;
    }
    return x;
}

static int be_seal(void *dir, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                   size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG])
{
    EVP_CIPHER_CTX *x = dir;
    int n, fin;
    if (adlen > INT_MAX || mlen > INT_MAX)
        return -EIO;
    if (O.EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
        O.EVP_EncryptUpdate(x, NULL, &n, ad, (int)adlen) != 1 ||
        O.EVP_EncryptUpdate(x, m, &n, m, (int)mlen) != 1 || n != (int)mlen ||
        O.EVP_EncryptFinal_ex(x, m + mlen, &fin) != 1 || fin != 0 ||
        O.EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, RUDP_AEAD_TAG, tag) != 1)
        return -EIO;
    return 0;
}

static int be_open(void *dir, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                   size_t adlen, const uint8_t *c, size_t clen, const uint8_t tag[RUDP_AEAD_TAG],
                   uint8_t *out)
{
    EVP_CIPHER_CTX *x = dir;
    int n, fin;
    uint8_t t[RUDP_AEAD_TAG]; /* the ctrl takes a non-const pointer */
    if (adlen > INT_MAX || clen > INT_MAX)
        return -EBADMSG;
    memcpy(t, tag, sizeof t);
    if (O.EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) != 1 ||
        O.EVP_DecryptUpdate(x, NULL, &n, ad, (int)adlen) != 1 ||
        O.EVP_DecryptUpdate(x, out, &n, c, (int)clen) != 1 || n != (int)clen ||
        O.EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, RUDP_AEAD_TAG, t) != 1 ||
        O.EVP_DecryptFinal_ex(x, out + clen, &fin) != 1 || fin != 0)
        return -EBADMSG;
    return 0;
}

static void be_unkey(void *p, uint8_t c, void *dir)
{
    struct shim_aead_openssl *st = p;
    EVP_CIPHER_CTX *x = dir;
    /* Keyed with the blank key and one empty datagram sealed: the last
     * connection's expanded key, GHASH or Poly1305 key and tag state are
     * overwritten before the context waits for the next one. */
    static const uint8_t zero_nonce[RUDP_AEAD_NONCE];
    uint8_t tag[RUDP_AEAD_TAG], none[1];
    int wiped = O.EVP_EncryptInit_ex(x, NULL, NULL, blank_key, NULL) == 1 &&
                be_seal(x, zero_nonce, none, 0, none, 0, tag) == 0;
    /* back to the pool (which it came from: there is room); one that could
     * not be wiped is freed (the providers clear what they free) */
    if (wiped && st->nspare[c] < POOL)
        st->spare[c][st->nspare[c]++] = x;
    else
        O.EVP_CIPHER_CTX_free(x);
}

const rudp_aead_backend *shim_aead_openssl(void)
{
    static const rudp_aead_backend be = {
        .name = "openssl",
        .prefer = RUDP_AEAD_AESGCM,
        .split_below = EVP_MIN,
        .dir_bytes = EVP_BYTES,
        .start = be_start,
        .prepare = be_prepare,
        .stop = be_stop,
        .key = be_key,
        .unkey = be_unkey,
        .seal = be_seal,
        .open = be_open,
    };
    return &be;
}

uint32_t shim_aead_openssl_spare(const void *st, uint8_t cipher)
{
    return ((const struct shim_aead_openssl *)st)->nspare[cipher];
}
