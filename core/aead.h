/*
 * aead.h: packet protection, the AEAD of a keyed connection's DATA
 * datagrams in one direction (aead.c), for crypto.c.
 *
 * One cipher, two libraries: AES-256-GCM and ChaCha20-Poly1305 (IETF) are
 * each computed by OpenSSL 3's libcrypto (EVP) or by libsodium, whichever
 * a context's table (rudp_aead_libs) names for it. Both compute the same
 * function of key, nonce, associated data and message, so a datagram one
 * end sealed with either opens at the other end with either: each end
 * picks its library alone, and the wire does not say which. Which library
 * for which cipher, and why, is docs/security.md's ("Which library").
 *
 * Neither sealing nor opening allocates, nor does a connection's start or
 * end: the table makes its OpenSSL contexts when it starts (the pool,
 * RUDP_AEAD_POOL); a direction takes one when it gets its key, keys it
 * once, and gives it each datagram's nonce only; when the connection ends
 * the context is keyed again with a fixed key (its expanded key and GHASH
 * key are overwritten) and goes back to the pool.
 *
 * OpenSSL's libcrypto is loaded by dlopen() at the first table, not linked
 * (aead.c says why), and runs in a library context of its own
 * (OSSL_LIB_CTX_new), one for the process, made then and kept: the providers and
 * properties the program's OpenSSL configuration sets for its default
 * context do not reach ours (aead.c says what still does).
 */
#ifndef RUDP_AEAD_H
#define RUDP_AEAD_H

#include <openssl/types.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

#define RUDP_AEAD_KEY 32   /* key bytes, both ciphers */
#define RUDP_AEAD_NONCE 12 /* nonce bytes, both ciphers */
#define RUDP_AEAD_TAG 16   /* tag bytes, both ciphers */

/* The libraries, a bit each (rudp__aead_libs_limit takes a mask). */
enum {
    RUDP_AEAD_LIB_SODIUM = 1,
    RUDP_AEAD_LIB_OPENSSL = 2,
};

/* A context's libraries: OpenSSL's ciphers (the process's, NULL where
 * OpenSSL is missing or lacks the cipher), which library each cipher uses,
 * and spare OpenSSL contexts by cipher. Indexed by cipher: crypto.h's
 * RUDP_AEAD_CHACHA (1) and RUDP_AEAD_AESGCM (2). */
typedef struct rudp_aead_libs {
    EVP_CIPHER *evp[3];
    uint8_t lib[3];            /* RUDP_AEAD_LIB_* that seals and opens it */
    uint8_t split[3];          /* OpenSSL's: datagrams under RUDP_AEAD_EVP_MIN go to
                                  libsodium (it has the cipher too) */
    EVP_CIPHER_CTX **spare[3]; /* the pool: keyed with a fixed key, ready to be keyed
                                  again (RUDP_AEAD_POOL places) */
    uint32_t nspare[3];
    uint64_t pool_empty;       /* directions that found the pool empty: libsodium's */
    const rudp_mem *mem;       /* the context's (alloc.h) */
} rudp_aead_libs;

/* OpenSSL contexts a table makes when it starts (on the thread that sets
 * the key: an application's, under the shim), for as many directions (two
 * a connection). The engine threads never call libc's malloc() (a child
 * made by a raw clone() would inherit its lock taken: shim/base/alloc.c),
 * and OpenSSL's contexts come from libc's; so a direction that finds the
 * pool empty is libsodium's, the same cipher (~1.7x its cost on a full
 * AES-256-GCM datagram here), until a connection ends and gives its
 * contexts back. 32: 16 connections at OpenSSL's speed, ~40 KB. */
#define RUDP_AEAD_POOL 32

/* Ciphertext bytes from which a split cipher's datagram is OpenSSL's: below,
 * libsodium's. OpenSSL 3.0's EVP spends ~80 ns more a call (its parameter
 * lookups), libsodium 1.0.18's AES-256-GCM ~0.3 ns more a byte; here they
 * cross near 512 bytes (ACKs and small requests below, full datagrams far
 * above: aead.c has the figures). */
#define RUDP_AEAD_EVP_MIN 512

/* One direction's packet protection: the cipher and its expanded key, in
 * one library or (split) both. */
typedef struct rudp_aead {
    uint8_t cipher;                   /* RUDP_AEAD_*; 0: no key yet */
    uint8_t lib;                      /* RUDP_AEAD_LIB_* (of the larger datagrams) */
    uint8_t split;                    /* OpenSSL's and libsodium's (by size) */
    EVP_CIPHER_CTX *evp;              /* OpenSSL: keyed, a nonce per datagram */
    crypto_aead_aes256gcm_state *aes; /* libsodium AES-256-GCM: expanded key (heap,
                                         16-byte aligned within aes_mem) */
    void *aes_mem;
    uint8_t key[RUDP_AEAD_KEY];       /* libsodium ChaCha20-Poly1305 */
} rudp_aead;

/* Sets up a context's table: OpenSSL's ciphers, where they load (the
 * first call in the process loads them; any thread), and for each cipher
 * the library that runs it: AES-256-GCM OpenSSL's, split with libsodium
 * where the CPU has AES-NI (libsodium's needs it), ChaCha20-Poly1305
 * libsodium's (aead.c says why). Never fails: without OpenSSL every cipher is
 * libsodium's (sodium_init() must have succeeded). OpenSSL's errors on the
 * way, if any, leave the calling thread's error queue as it was. */
void rudp__aead_libs_init(rudp_aead_libs *L, const rudp_mem *mem);

/* Frees what the table holds (its spare contexts); directions keyed from
 * it must have been freed first. */
void rudp__aead_libs_free(rudp_aead_libs *L);

/* Tests and benchmarks: each cipher uses a library in mask only, if it
 * can (a cipher keeps its library when none in mask runs it); a split
 * cipher is split only while mask has both. */
void rudp__aead_libs_limit(rudp_aead_libs *L, uint8_t mask);

/* Keys direction a (zeroed, or freed) for cipher with key, through the
 * library L names for it (libsodium's if that is OpenSSL and its pool is
 * empty). Returns 0, or -ENOMEM (nothing is kept), or -ENOSYS
 * (AES-256-GCM by libsodium on a CPU without AES-NI). */
int rudp__aead_init(rudp_aead *a, rudp_aead_libs *L, uint8_t cipher,
                    const uint8_t key[RUDP_AEAD_KEY]);

/* Wipes a's key and gives its OpenSSL context back to L's pool (keyed
 * again with a fixed key first); a is zeroed. Safe on a zeroed a. */
void rudp__aead_free(rudp_aead *a, rudp_aead_libs *L);

/* Encrypts m (mlen bytes) in place and writes the tag, with ad (adlen
 * bytes) as associated data. Returns 0, or -EIO if OpenSSL failed (m is
 * then garbage: the datagram must not be sent). */
int rudp__aead_seal(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG]);

/* Authenticates ciphertext c (clen bytes), tag and ad, decrypting into out
 * (clen bytes, apart from c). Returns 0, or -EBADMSG (forged, altered, not
 * this key's, or a library failure: drop it; out is then garbage). */
int rudp__aead_open(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, const uint8_t *c, size_t clen, const uint8_t tag[RUDP_AEAD_TAG],
                    uint8_t *out);

/* "openssl" or "libsodium": a's library ("" before its key), the one of
 * its larger datagrams. */
const char *rudp__aead_lib_name(const rudp_aead *a);

/* The library (RUDP_AEAD_LIB_*) that seals and opens a's datagrams of n
 * ciphertext bytes. */
uint8_t rudp__aead_lib_for(const rudp_aead *a, size_t n);

/* Bytes a holds beyond the struct itself (OpenSSL's context, libsodium's
 * expanded AES key), for the context's memory budget. An OpenSSL context
 * counts as RUDP_AEAD_EVP_BYTES, what it took here (1144 bytes asked of
 * malloc for AES-256-GCM, in three blocks; tests/test_aead.c
 * checks the bound). */
#define RUDP_AEAD_EVP_BYTES 1280
size_t rudp__aead_mem(const rudp_aead *a);

#endif
