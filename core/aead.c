/*
 * aead.c: packet protection through OpenSSL's EVP or libsodium (aead.h).
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
 * by name in 3.0). So AES-256-GCM is split: datagrams from
 * RUDP_AEAD_EVP_MIN bytes (full ones) go to OpenSSL, smaller ones (ACKs,
 * small requests) to libsodium, each direction holding both expanded keys.
 * ChaCha20-Poly1305, the cipher of CPUs without AES-NI, stays libsodium's:
 * OpenSSL is 10-20% faster only on full datagrams here, 2x slower on small
 * ones, and a machine without AES-NI (where it matters) is not one we can
 * measure. libsodium keeps the rest (X25519, BLAKE2b, the one-shot
 * ChaCha20-Poly1305 of tokens and 0-RTT data), and every cipher where
 * OpenSSL is missing.
 *
 * OpenSSL's calls, per datagram, on a context keyed once: EVP_*Init_ex
 * with only the nonce, the associated data and the message through
 * EVP_*Update, the tag got (sealing) or set (opening), EVP_*Final_ex.
 * Every return is checked. Opening a forged datagram fails in Final and
 * puts nothing on OpenSSL's error queue (providers' GCM and
 * ChaCha20-Poly1305 finals fail silently on a bad tag), so a flood of
 * forgeries costs the tag check only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>

#include "aead.h"
#include "alloc.h"
#include "crypto.h"

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

/* OpenSSL's calls, bound from libcrypto.so.3 by dlopen() at the first
 * keyed context, not linked: loading libcrypto (4.7 MB, its relocations
 * bound at once) cost every program started under the shim ~0.8 ms, keyed
 * or not. Without libcrypto.so.3 keyed mode is libsodium's, as before. */
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

/* 1 if every call is bound (once: ossl_load's). */
static int ossl_bind(void)
{
    void *h = dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 0;
#define X(f) \
    if (!(O.f = (__typeof__(&f))dlsym(h, #f))) \
        return 0;
    OSSL_CALLS(X)
#undef X
    return 1; /* h stays: libcrypto is never unloaded (it is linked -z nodelete) */
}

static void ossl_load(void)
{
    if (!ossl_bind())
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

/* Fills the pool of cipher c with RUDP_AEAD_POOL OpenSSL contexts keyed
 * with the blank key, once; 1 if it holds any. */
static int pool_fill(rudp_aead_libs *L, uint8_t c)
{
    if (L->spare[c])
        return L->nspare[c] > 0;
    if (!(L->spare[c] = rudp__calloc(L->mem, RUDP_AEAD_POOL, sizeof *L->spare[c])))
        return 0;
    O.ERR_set_mark();
    while (L->nspare[c] < RUDP_AEAD_POOL) {
        EVP_CIPHER_CTX *x = O.EVP_CIPHER_CTX_new();
        if (!x || O.EVP_EncryptInit_ex2(x, L->evp[c], blank_key, NULL, NULL) != 1 ||
            O.EVP_CIPHER_CTX_get_key_length(x) != RUDP_AEAD_KEY ||
            O.EVP_CIPHER_CTX_get_iv_length(x) != RUDP_AEAD_NONCE) {
            O.EVP_CIPHER_CTX_free(x);
            break;
        }
        L->spare[c][L->nspare[c]++] = x;
    }
    O.ERR_pop_to_mark();
    return L->nspare[c] > 0;
}

void rudp__aead_libs_init(rudp_aead_libs *L, const rudp_mem *mem)
{
    memset(L, 0, sizeof *L);
    L->mem = rudp__mem_or_libc(mem);
    L->lib[RUDP_AEAD_CHACHA] = L->lib[RUDP_AEAD_AESGCM] = RUDP_AEAD_LIB_SODIUM;
    if (pthread_once(&ossl_once, ossl_load) == 0)
        for (int c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++)
            L->evp[c] = ossl.evp[c];
    if (L->evp[RUDP_AEAD_AESGCM] && pool_fill(L, RUDP_AEAD_AESGCM)) {
        L->lib[RUDP_AEAD_AESGCM] = RUDP_AEAD_LIB_OPENSSL;
        L->split[RUDP_AEAD_AESGCM] = (uint8_t)(crypto_aead_aes256gcm_is_available() != 0);
    }
}

void rudp__aead_libs_free(rudp_aead_libs *L)
{
    for (int c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        for (uint32_t i = 0; i < L->nspare[c]; i++)
            O.EVP_CIPHER_CTX_free(L->spare[c][i]);
        rudp__free(L->mem, L->spare[c]);
    }
    memset(L, 0, sizeof *L);
}

void rudp__aead_libs_limit(rudp_aead_libs *L, uint8_t mask)
{
    for (int c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        if (!(mask & RUDP_AEAD_LIB_SODIUM))
            L->split[c] = 0;
        if (mask & L->lib[c])
            continue; /* its library is one of mask's: kept */
        if ((mask & RUDP_AEAD_LIB_OPENSSL) && L->evp[c] && pool_fill(L, (uint8_t)c))
            L->lib[c] = RUDP_AEAD_LIB_OPENSSL;
        else if (mask & RUDP_AEAD_LIB_SODIUM)
            L->lib[c] = RUDP_AEAD_LIB_SODIUM;
    }
}

/* An OpenSSL context of cipher c from the pool, keyed with key; NULL if
 * the pool is empty (or OpenSSL refused the key: cannot be). Allocates
 * nothing: a connection's handshake runs on an engine thread. */
static EVP_CIPHER_CTX *evp_keyed(rudp_aead_libs *L, uint8_t c, const uint8_t *key)
{
    if (!L->nspare[c])
        return NULL;
    EVP_CIPHER_CTX *x = L->spare[c][--L->nspare[c]];
    /* No ERR_set_mark() here or below on an engine thread: it would make
     * the thread's error queue, an allocation; and keying a context that
     * holds its cipher fails (and queues an error) only on a bug. */
    if (O.EVP_EncryptInit_ex(x, NULL, NULL, key, NULL) != 1) {
        L->spare[c][L->nspare[c]++] = x;
        return NULL;
    }
    return x;
}

static int evp_seal(EVP_CIPHER_CTX *x, const uint8_t *nonce, const uint8_t *ad, size_t adlen,
                    uint8_t *m, size_t mlen, uint8_t *tag)
{
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

static int evp_open(EVP_CIPHER_CTX *x, const uint8_t *nonce, const uint8_t *ad, size_t adlen,
                    const uint8_t *c, size_t clen, const uint8_t *tag, uint8_t *out)
{
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

int rudp__aead_init(rudp_aead *a, rudp_aead_libs *L, uint8_t cipher,
                    const uint8_t key[RUDP_AEAD_KEY])
{
    memset(a, 0, sizeof *a);
    if (cipher != RUDP_AEAD_CHACHA && cipher != RUDP_AEAD_AESGCM)
        return -EINVAL;
    uint8_t lib = L->lib[cipher];
    if (lib == RUDP_AEAD_LIB_OPENSSL && !(a->evp = evp_keyed(L, cipher, key))) {
        lib = RUDP_AEAD_LIB_SODIUM; /* the pool is empty: libsodium's, the same cipher */
        L->pool_empty++;
    }
    int sodium = lib == RUDP_AEAD_LIB_SODIUM || L->split[cipher];
    a->cipher = cipher;
    a->lib = lib;
    a->split = (uint8_t)(a->evp && sodium);
    if (cipher == RUDP_AEAD_AESGCM && sodium) {
        /* libsodium's needs AES-NI (crypto.c offers the cipher only then);
         * it wants its state 16-byte aligned, and the allocator the
         * embedder set promises malloc's alignment only */
        int err = !crypto_aead_aes256gcm_is_available()              ? -ENOSYS
                  : !(a->aes_mem = rudp__malloc(L->mem, sizeof *a->aes + 15)) ? -ENOMEM
                                                                      : 0;
        if (err < 0) {
            rudp__aead_free(a, L);
            return err;
        }
        a->aes = (crypto_aead_aes256gcm_state *)(((uintptr_t)a->aes_mem + 15) & ~(uintptr_t)15);
        crypto_aead_aes256gcm_beforenm(a->aes, key);
    } else if (sodium) {
        memcpy(a->key, key, sizeof a->key);
    }
    return 0;
}

void rudp__aead_free(rudp_aead *a, rudp_aead_libs *L)
{
    if (a->evp) {
        /* Keyed with the blank key and one empty datagram sealed: the last
         * connection's expanded key, GHASH or Poly1305 key and tag state
         * are overwritten before the context waits for the next one. */
        static const uint8_t zero_nonce[RUDP_AEAD_NONCE];
        uint8_t tag[RUDP_AEAD_TAG], none[1];
        int wiped = O.EVP_EncryptInit_ex(a->evp, NULL, NULL, blank_key, NULL) == 1 &&
                    evp_seal(a->evp, zero_nonce, none, 0, none, 0, tag) == 0;
        /* back to the pool (which it came from: there is room); one that
         * could not be wiped is freed (the providers clear what they free) */
        if (wiped && L->nspare[a->cipher] < RUDP_AEAD_POOL)
            L->spare[a->cipher][L->nspare[a->cipher]++] = a->evp;
        else
            O.EVP_CIPHER_CTX_free(a->evp);
    }
    if (a->aes_mem) {
        sodium_memzero(a->aes, sizeof *a->aes);
        rudp__free(L->mem, a->aes_mem);
    }
    sodium_memzero(a, sizeof *a);
}

/* OpenSSL for n bytes: a is OpenSSL's only, or n is large enough. */
static int use_evp(const rudp_aead *a, size_t n)
{
    return a->evp && (!a->split || n >= RUDP_AEAD_EVP_MIN);
}

uint8_t rudp__aead_lib_for(const rudp_aead *a, size_t n)
{
    return use_evp(a, n) ? RUDP_AEAD_LIB_OPENSSL : RUDP_AEAD_LIB_SODIUM;
}

int rudp__aead_seal(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG])
{
    if (use_evp(a, mlen))
        return evp_seal(a->evp, nonce, ad, adlen, m, mlen, tag);
    if (a->cipher == RUDP_AEAD_AESGCM)
        crypto_aead_aes256gcm_encrypt_detached_afternm(m, tag, NULL, m, mlen, ad, adlen, NULL,
                                                       nonce, a->aes);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, tag, NULL, m, mlen, ad, adlen, NULL,
                                                           nonce, a->key);
    return 0;
}

int rudp__aead_open(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, const uint8_t *c, size_t clen, const uint8_t tag[RUDP_AEAD_TAG],
                    uint8_t *out)
{
    int rc;
    if (use_evp(a, clen))
        return evp_open(a->evp, nonce, ad, adlen, c, clen, tag, out);
    if (a->cipher == RUDP_AEAD_AESGCM)
        rc = crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, c, clen, tag, ad, adlen,
                                                            nonce, a->aes);
    else
        rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, c, clen, tag, ad,
                                                                adlen, nonce, a->key);
    return rc == 0 ? 0 : -EBADMSG;
}

const char *rudp__aead_lib_name(const rudp_aead *a)
{
    return a->lib == RUDP_AEAD_LIB_OPENSSL  ? "openssl"
           : a->lib == RUDP_AEAD_LIB_SODIUM ? "libsodium"
                                            : "";
}

size_t rudp__aead_mem(const rudp_aead *a)
{
    return (a->evp ? RUDP_AEAD_EVP_BYTES : 0) + (a->aes_mem ? sizeof *a->aes + 15 : 0);
}
