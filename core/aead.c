/*
 * aead.c: packet protection through libsodium or the caller's backend
 * (aead.h, rudp_aead_backend in rudp.h).
 *
 * libsodium is the core's own: it is linked for keyed mode anyway (X25519,
 * BLAKE2b, the one-shot ChaCha20-Poly1305 of tokens and 0-RTT data), so a
 * keyed context runs with no other library. A faster library is the
 * caller's to install: the shim's is OpenSSL's libcrypto, loaded by
 * dlopen() only when a keyed context starts (shim/base/aead_openssl.c has
 * its figures and why it takes AES-256-GCM from 512 bytes only), so that
 * libcore.a links with neither -ldl nor -lcrypto and holds no state of
 * the process.
 *
 * The per-datagram cost of the split is one comparison; of the backend,
 * one indirect call through the table.
 */
#include <errno.h>
#include <string.h>

#include "aead.h"
#include "alloc.h"

/* Makes cipher c the backend's, if it runs it and can get ready; 1 if so. */
static int to_backend(rudp_aead_libs *L, uint8_t c)
{
    /* a cipher's number is its bit (rudp.h) */
    if (!L->st || !(L->runs & c))
        return 0;
    if (!(L->ready & c)) {
        if (!L->be->prepare(L->st, c))
            return 0;
        L->ready |= c;
    }
    L->lib[c] = RUDP_AEAD_LIB_BACKEND;
    return 1;
}

void rudp__aead_libs_init(rudp_aead_libs *L, const rudp_mem *mem, const rudp_aead_backend *be)
{
    memset(L, 0, sizeof *L);
    L->mem = rudp__mem_or_libc(mem);
    L->lib[RUDP_AEAD_CHACHA] = L->lib[RUDP_AEAD_AESGCM] = RUDP_AEAD_LIB_SODIUM;
    L->be = be;
    if (!be || !(L->st = be->start(L->mem, &L->runs)))
        return;
    for (uint8_t c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        if (!(be->prefer & c) || !to_backend(L, c))
            continue;
        /* libsodium's AES-256-GCM needs AES-NI; its ChaCha20-Poly1305 runs anywhere */
        int sodium_has = c == RUDP_AEAD_CHACHA || crypto_aead_aes256gcm_is_available();
        L->split[c] = (uint8_t)(be->split_below && sodium_has);
    }
}

void rudp__aead_libs_free(rudp_aead_libs *L)
{
    if (L->st)
        L->be->stop(L->st);
    memset(L, 0, sizeof *L);
}

void rudp__aead_libs_limit(rudp_aead_libs *L, uint8_t mask)
{
    for (uint8_t c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        if (!(mask & RUDP_AEAD_LIB_SODIUM))
            L->split[c] = 0;
        if (mask & L->lib[c])
            continue; /* its library is one of mask's: kept */
        if (!((mask & RUDP_AEAD_LIB_BACKEND) && to_backend(L, c)) &&
            (mask & RUDP_AEAD_LIB_SODIUM))
            L->lib[c] = RUDP_AEAD_LIB_SODIUM;
    }
}

int rudp__aead_init(rudp_aead *a, rudp_aead_libs *L, uint8_t cipher,
                    const uint8_t key[RUDP_AEAD_KEY])
{
    memset(a, 0, sizeof *a);
    if (cipher != RUDP_AEAD_CHACHA && cipher != RUDP_AEAD_AESGCM)
        return -EINVAL;
    uint8_t lib = L->lib[cipher];
    if (lib == RUDP_AEAD_LIB_BACKEND) {
        if ((a->dir = L->be->key(L->st, cipher, key))) {
            a->be = L->be;
        } else {
            lib = RUDP_AEAD_LIB_SODIUM; /* no room: libsodium's, the same cipher */
            L->backend_full++;
        }
    }
    int sodium = lib == RUDP_AEAD_LIB_SODIUM || L->split[cipher];
    a->cipher = cipher;
    a->lib = lib;
    if (a->dir && sodium)
        a->split_below = L->be->split_below;
    if (cipher == RUDP_AEAD_AESGCM && sodium) {
        /* libsodium's needs AES-NI (crypto.c offers the cipher only then);
         * it wants its state 16-byte aligned, and the context's allocator
         * promises malloc's alignment only */
        int err = !crypto_aead_aes256gcm_is_available()                      ? -ENOSYS
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
    if (a->dir)
        a->be->unkey(L->st, a->cipher, a->dir);
    if (a->aes_mem) {
        sodium_memzero(a->aes, sizeof *a->aes);
        rudp__free(L->mem, a->aes_mem);
    }
    sodium_memzero(a, sizeof *a);
}

/* The backend's for n bytes: a is the backend's only, or n is large enough. */
static int use_backend(const rudp_aead *a, size_t n)
{
    return a->dir && n >= a->split_below;
}

uint8_t rudp__aead_lib_for(const rudp_aead *a, size_t n)
{
    return use_backend(a, n) ? RUDP_AEAD_LIB_BACKEND : RUDP_AEAD_LIB_SODIUM;
}

int rudp__aead_seal(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG])
{
    if (use_backend(a, mlen))
        return a->be->seal(a->dir, nonce, ad, adlen, m, mlen, tag);
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
    if (use_backend(a, clen))
        return a->be->open(a->dir, nonce, ad, adlen, c, clen, tag, out);
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
    return a->lib == RUDP_AEAD_LIB_BACKEND  ? a->be->name
           : a->lib == RUDP_AEAD_LIB_SODIUM ? "libsodium"
                                            : "";
}

size_t rudp__aead_mem(const rudp_aead *a)
{
    return (a->dir ? a->be->dir_bytes : 0) + (a->aes_mem ? sizeof *a->aes + 15 : 0);
}
