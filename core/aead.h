/*
 * aead.h: packet protection, the AEAD of a keyed connection's DATA
 * datagrams in one direction (aead.c), for crypto.c.
 *
 * One cipher, two libraries: AES-256-GCM and ChaCha20-Poly1305 (IETF) are
 * each computed by libsodium, or by the backend the caller installed
 * (rudp_aead_backend in rudp.h; the shim's is OpenSSL's libcrypto,
 * shim/base/aead_openssl.c), whichever a context's table (rudp_aead_libs)
 * names for it. Both compute the same function of key, nonce, associated
 * data and message, so a datagram one end sealed with either opens at the
 * other end with either: each end picks its library alone, and the wire
 * does not say which. Which library for which cipher, and why, is
 * docs/security.md's ("Which library").
 *
 * Neither sealing nor opening allocates, nor does a connection's start or
 * end, but for libsodium's expanded AES key (the context's allocator): a
 * backend keys its directions without allocating (rudp.h), and libsodium's
 * ChaCha20-Poly1305 keeps its key in the direction itself.
 */
#ifndef RUDP_AEAD_H
#define RUDP_AEAD_H

#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#include "rudp.h"

/* The libraries, a bit each (rudp__aead_libs_limit takes a mask). */
enum {
    RUDP_AEAD_LIB_SODIUM = 1,
    RUDP_AEAD_LIB_BACKEND = 2,
};

/* A context's libraries: its backend (NULL: none) and the backend's state
 * for it, which library each cipher uses, and where the backend's cipher is
 * split by size. Indexed by cipher: RUDP_AEAD_CHACHA (1) and
 * RUDP_AEAD_AESGCM (2). */
typedef struct rudp_aead_libs {
    const rudp_aead_backend *be;
    void *st;                  /* be->start's; NULL: the backend does not run here */
    uint8_t runs;              /* RUDP_AEAD_* the backend runs here */
    uint8_t ready;             /* ... and has prepared */
    uint8_t lib[3];            /* RUDP_AEAD_LIB_* that seals and opens it */
    uint8_t split[3];          /* the backend's: datagrams under be->split_below go to
                                  libsodium (it has the cipher too) */
    uint64_t backend_full;     /* directions the backend had no room for: libsodium's */
    const rudp_mem *mem;       /* the context's (alloc.h) */
} rudp_aead_libs;

/* One direction's packet protection: the cipher and its expanded key, in
 * one library or (split) both. */
typedef struct rudp_aead {
    uint8_t cipher;                   /* RUDP_AEAD_*; 0: no key yet */
    uint8_t lib;                      /* RUDP_AEAD_LIB_* (of the larger datagrams) */
    uint32_t split_below;             /* backend's from this many bytes, libsodium's
                                         below (0: the backend's at every size) */
    const rudp_aead_backend *be;      /* with dir: the backend that keyed it */
    void *dir;                        /* the backend's keyed direction, or NULL */
    crypto_aead_aes256gcm_state *aes; /* libsodium AES-256-GCM: expanded key (heap,
                                         16-byte aligned within aes_mem) */
    void *aes_mem;
    uint8_t key[RUDP_AEAD_KEY];       /* libsodium ChaCha20-Poly1305 */
} rudp_aead;

/* Sets up a context's table, its memory from mem (NULL: libc's), with
 * backend be (NULL: none): the backend's state for it (be->start, on the
 * calling thread) and for each cipher the library that runs it: the
 * backend's preferred ciphers where it runs them, split with libsodium
 * by be->split_below where libsodium has the cipher (AES-256-GCM needs
 * AES-NI), libsodium's the rest. Never fails: a backend that does not run
 * leaves every cipher libsodium's (sodium_init() must have succeeded). */
void rudp__aead_libs_init(rudp_aead_libs *L, const rudp_mem *mem, const rudp_aead_backend *be);

/* Frees what the table holds (the backend's state); directions keyed from
 * it must have been freed first. */
void rudp__aead_libs_free(rudp_aead_libs *L);

/* Tests and benchmarks: each cipher uses a library in mask only, if it
 * can (a cipher keeps its library when none in mask runs it); a split
 * cipher is split only while mask has both. */
void rudp__aead_libs_limit(rudp_aead_libs *L, uint8_t mask);

/* Keys direction a (zeroed, or freed) for cipher with key, through the
 * library L names for it (libsodium's if that is the backend's and it has
 * no room). Returns 0, or -ENOMEM (nothing is kept), or -ENOSYS
 * (AES-256-GCM by libsodium on a CPU without AES-NI). */
int rudp__aead_init(rudp_aead *a, rudp_aead_libs *L, uint8_t cipher,
                    const uint8_t key[RUDP_AEAD_KEY]);

/* Wipes a's key and gives the backend's direction back; a is zeroed. Safe
 * on a zeroed a. */
void rudp__aead_free(rudp_aead *a, rudp_aead_libs *L);

/* Encrypts m (mlen bytes) in place and writes the tag, with ad (adlen
 * bytes) as associated data. Returns 0, or -EIO if the backend failed (m
 * is then garbage: the datagram must not be sent). */
int rudp__aead_seal(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, uint8_t *m, size_t mlen, uint8_t tag[RUDP_AEAD_TAG]);

/* Authenticates ciphertext c (clen bytes), tag and ad, decrypting into out
 * (clen bytes, apart from c). Returns 0, or -EBADMSG (forged, altered, not
 * this key's, or a library failure: drop it; out is then garbage). */
int rudp__aead_open(rudp_aead *a, const uint8_t nonce[RUDP_AEAD_NONCE], const uint8_t *ad,
                    size_t adlen, const uint8_t *c, size_t clen, const uint8_t tag[RUDP_AEAD_TAG],
                    uint8_t *out);

/* The backend's name or "libsodium": a's library ("" before its key), the
 * one of its larger datagrams. */
const char *rudp__aead_lib_name(const rudp_aead *a);

/* The library (RUDP_AEAD_LIB_*) that seals and opens a's datagrams of n
 * ciphertext bytes. */
uint8_t rudp__aead_lib_for(const rudp_aead *a, size_t n);

/* Bytes a holds beyond the struct itself (the backend's direction, as its
 * dir_bytes says; libsodium's expanded AES key), for the context's memory
 * budget. */
size_t rudp__aead_mem(const rudp_aead *a);

#endif
