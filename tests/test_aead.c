/*
 * Packet protection (aead.c) with the shim's OpenSSL backend
 * (shim/base/aead_openssl.c, linked in): one cipher, two libraries. What a
 * keyed context picks, that OpenSSL's and libsodium's datagrams are the
 * same bytes and open with each other (two ends that picked differently
 * talk), that forgeries fail in both, and that sealing and opening
 * allocate nothing once a direction has its key.
 */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <openssl/err.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../shim/base/base.h"
#include "aead.h"
#include "crypto.h"

/* The backend's split (aead_openssl.c): checked against its table below. */
#define EVP_MIN 512
#define POOL SHIM_AEAD_OPENSSL_POOL

#define BIG 65000

/* The ciphers this machine's keyed contexts may use: AES-256-GCM only
 * with it in hardware (crypto.c offers it only then). */
static int ncipher(uint8_t c[2])
{
    cr_assert(ge(int, sodium_init(), 0));
    c[0] = RUDP_AEAD_CHACHA;
    c[1] = RUDP_AEAD_AESGCM;
    return crypto_aead_aes256gcm_is_available() ? 2 : 1;
}

/* Tables of one library each. */
static void tables(rudp_aead_libs *so, rudp_aead_libs *os)
{
    rudp__aead_libs_init(so, NULL, NULL);
    rudp__aead_libs_limit(so, RUDP_AEAD_LIB_SODIUM);
    rudp__aead_libs_init(os, NULL, shim_aead_openssl());
    rudp__aead_libs_limit(os, RUDP_AEAD_LIB_BACKEND);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* AES-256-GCM: OpenSSL's from EVP_MIN bytes, libsodium's below
 * (where the CPU has AES-NI, which libsodium's needs); ChaCha20-Poly1305:
 * libsodium's at every size. */
Test(aead, a_keyed_table_splits_aesgcm_by_size_and_runs_chacha_with_libsodium)
{
    cr_assert(ge(int, sodium_init(), 0));
    int hw = crypto_aead_aes256gcm_is_available();
    rudp_aead_libs L;
    rudp__aead_libs_init(&L, NULL, shim_aead_openssl());
    cr_assert(eq(int, L.runs & RUDP_AEAD_AESGCM, RUDP_AEAD_AESGCM),
              "OpenSSL's AES-256-GCM did not load");
    cr_assert(eq(u32, L.be->split_below, EVP_MIN));
    cr_assert(eq(u8, L.lib[RUDP_AEAD_AESGCM], RUDP_AEAD_LIB_BACKEND));
    cr_assert(eq(u8, L.lib[RUDP_AEAD_CHACHA], RUDP_AEAD_LIB_SODIUM));
    uint8_t key[32] = {1};
    rudp_aead a;
    cr_assert(eq(int, rudp__aead_init(&a, &L, RUDP_AEAD_AESGCM, key), 0));
    cr_assert(eq(str, (char *)rudp__aead_lib_name(&a), "openssl"));
    uint8_t small = hw ? RUDP_AEAD_LIB_SODIUM : RUDP_AEAD_LIB_BACKEND;
    cr_assert(eq(u8, rudp__aead_lib_for(&a, 0), small));
    cr_assert(eq(u8, rudp__aead_lib_for(&a, EVP_MIN - 1), small));
    cr_assert(eq(u8, rudp__aead_lib_for(&a, EVP_MIN), RUDP_AEAD_LIB_BACKEND));
    cr_assert(eq(u8, rudp__aead_lib_for(&a, 1400), RUDP_AEAD_LIB_BACKEND));
    rudp__aead_free(&a, &L);
    cr_assert(eq(int, rudp__aead_init(&a, &L, RUDP_AEAD_CHACHA, key), 0));
    cr_assert(eq(str, (char *)rudp__aead_lib_name(&a), "libsodium"));
    cr_assert(eq(u8, rudp__aead_lib_for(&a, 1400), RUDP_AEAD_LIB_SODIUM));
    rudp__aead_free(&a, &L);
    /* limited to OpenSSL: every size OpenSSL's */
    rudp_aead_libs O;
    rudp__aead_libs_init(&O, NULL, shim_aead_openssl());
    rudp__aead_libs_limit(&O, RUDP_AEAD_LIB_BACKEND);
    cr_assert(eq(int, rudp__aead_init(&a, &O, RUDP_AEAD_AESGCM, key), 0));
    cr_assert(eq(u8, rudp__aead_lib_for(&a, 1), RUDP_AEAD_LIB_BACKEND));
    rudp__aead_free(&a, &O);
    rudp__aead_libs_free(&O);
    /* a limit to a library that lacks nothing keeps the pick; to the other
     * moves it */
    rudp__aead_libs_limit(&L, RUDP_AEAD_LIB_SODIUM | RUDP_AEAD_LIB_BACKEND);
    cr_assert(eq(u8, L.lib[RUDP_AEAD_AESGCM], RUDP_AEAD_LIB_BACKEND));
    rudp__aead_libs_limit(&L, RUDP_AEAD_LIB_SODIUM);
    cr_assert(eq(u8, L.lib[RUDP_AEAD_AESGCM], RUDP_AEAD_LIB_SODIUM));
    rudp__aead_libs_limit(&L, RUDP_AEAD_LIB_BACKEND);
    cr_assert(eq(u8, L.lib[RUDP_AEAD_CHACHA], RUDP_AEAD_LIB_BACKEND));
    rudp__aead_libs_free(&L);
}

/* For each cipher and length: both libraries (and the default table's
 * split) seal the same datagram into the same bytes and tag, each opens
 * the others', and a bit flipped in the associated data, the nonce, the
 * ciphertext or the tag fails in all. */
Test(aead, both_libraries_make_the_same_bytes_and_open_each_others, .timeout = 30)
{
    uint8_t cs[2];
    int nc = ncipher(cs);
    rudp_aead_libs so, os, dflt;
    tables(&so, &os);
    rudp__aead_libs_init(&dflt, NULL, shim_aead_openssl());
    static const size_t lens[] = {0,   1,   15,  16,   17,   64,
                                  EVP_MIN - 1, EVP_MIN, 1400, BIG};
    static uint8_t m[BIG], x[BIG], y[BIG], out[BIG];
    for (int ci = 0; ci < nc; ci++) {
        uint8_t key[32], nonce[12] = {0}, ad[16], tx[16], ty[16];
        fill(key, sizeof key, (uint8_t)(ci + 3));
        rudp_aead a, b, d;
        cr_assert(eq(int, rudp__aead_init(&a, &so, cs[ci], key), 0));
        cr_assert(eq(int, rudp__aead_init(&b, &os, cs[ci], key), 0));
        cr_assert(eq(int, rudp__aead_init(&d, &dflt, cs[ci], key), 0));
        cr_assert(eq(str, (char *)rudp__aead_lib_name(&a), "libsodium"));
        cr_assert(eq(str, (char *)rudp__aead_lib_name(&b), "openssl"));
        for (size_t li = 0; li < sizeof lens / sizeof *lens; li++) {
            size_t n = lens[li];
            nonce[11] = (uint8_t)li;
            fill(ad, sizeof ad, (uint8_t)li);
            fill(m, n, (uint8_t)(li * 5));
            memcpy(x, m, n);
            memcpy(y, m, n);
            cr_assert(eq(int, rudp__aead_seal(&a, nonce, ad, sizeof ad, x, n, tx), 0));
            cr_assert(eq(int, rudp__aead_seal(&b, nonce, ad, sizeof ad, y, n, ty), 0));
            cr_assert(memcmp(x, y, n) == 0, "cipher %d, %zu bytes: ciphertexts differ", cs[ci], n);
            cr_assert(memcmp(tx, ty, sizeof tx) == 0, "cipher %d, %zu bytes: tags differ", cs[ci],
                      n);
            if (n >= 16)
                cr_assert(memcmp(x, m, n) != 0, "nothing encrypted");
            rudp_aead *all[3] = {&a, &b, &d};
            for (int o = 0; o < 3; o++) {
                rudp_aead *op = all[o];
                memset(out, 0xee, n);
                cr_assert(eq(int, rudp__aead_open(op, nonce, ad, sizeof ad, x, n, tx, out), 0),
                          "cipher %d, %zu bytes: %s did not open the other's", cs[ci], n,
                          rudp__aead_lib_name(op));
                cr_assert(memcmp(out, m, n) == 0);
                ad[3] ^= 4;
                cr_assert(eq(int, rudp__aead_open(op, nonce, ad, sizeof ad, x, n, tx, out),
                             -EBADMSG));
                ad[3] ^= 4;
                tx[15] ^= 0x80;
                cr_assert(eq(int, rudp__aead_open(op, nonce, ad, sizeof ad, x, n, tx, out),
                             -EBADMSG));
                tx[15] ^= 0x80;
                nonce[0] ^= 1;
                cr_assert(eq(int, rudp__aead_open(op, nonce, ad, sizeof ad, x, n, tx, out),
                             -EBADMSG));
                nonce[0] ^= 1;
                if (n) {
                    x[n - 1] ^= 1;
                    cr_assert(eq(int, rudp__aead_open(op, nonce, ad, sizeof ad, x, n, tx, out),
                                 -EBADMSG));
                    x[n - 1] ^= 1;
                }
            }
        }
        rudp__aead_free(&a, &so);
        rudp__aead_free(&b, &os);
        rudp__aead_free(&d, &dflt);
    }
    rudp__aead_libs_free(&so);
    rudp__aead_libs_free(&os);
    rudp__aead_libs_free(&dflt);
}

/* A connection's context, given back and keyed again for the next one
 * (the table's spare), seals as a new one does: nothing of the last key. */
Test(aead, a_spare_context_keyed_again_seals_with_the_new_key_only)
{
    uint8_t cs[2];
    int nc = ncipher(cs);
    rudp_aead_libs so, os;
    tables(&so, &os);
    for (int ci = 0; ci < nc; ci++) {
        uint8_t k1[32], k2[32], nonce[12] = {9}, m[100], x[100], y[100], tx[16], ty[16];
        fill(k1, 32, 1);
        fill(k2, 32, 2);
        fill(m, sizeof m, 3);
        rudp_aead a, b;
        cr_assert(eq(int, rudp__aead_init(&b, &os, cs[ci], k1), 0));
        void *first = b.dir;
        memcpy(x, m, sizeof m);
        cr_assert(eq(int, rudp__aead_seal(&b, nonce, NULL, 0, x, sizeof x, tx), 0));
        rudp__aead_free(&b, &os);
        cr_assert(eq(u32, shim_aead_openssl_spare(os.st, cs[ci]), POOL)); /* back; taken first */
        cr_assert(eq(int, rudp__aead_init(&b, &os, cs[ci], k2), 0));
        cr_assert(eq(ptr, b.dir, first), "the spare was not taken");
        cr_assert(eq(int, rudp__aead_init(&a, &so, cs[ci], k2), 0));
        memcpy(x, m, sizeof m);
        memcpy(y, m, sizeof m);
        cr_assert(eq(int, rudp__aead_seal(&b, nonce, NULL, 0, x, sizeof x, tx), 0));
        cr_assert(eq(int, rudp__aead_seal(&a, nonce, NULL, 0, y, sizeof y, ty), 0));
        cr_assert(memcmp(x, y, sizeof x) == 0 && memcmp(tx, ty, 16) == 0);
        rudp__aead_free(&a, &so);
        rudp__aead_free(&b, &os);
    }
    rudp__aead_libs_free(&so);
    rudp__aead_libs_free(&os);
}

Test(aead, a_forgery_leaves_nothing_on_openssls_error_queue)
{
    uint8_t cs[2];
    int nc = ncipher(cs);
    rudp_aead_libs os;
    rudp__aead_libs_init(&os, NULL, shim_aead_openssl());
    rudp__aead_libs_limit(&os, RUDP_AEAD_LIB_BACKEND);
    ERR_clear_error();
    for (int ci = 0; ci < nc; ci++) {
        uint8_t key[32] = {7}, nonce[12] = {0}, m[64] = {1}, out[64], tag[16] = {2};
        rudp_aead a;
        cr_assert(eq(int, rudp__aead_init(&a, &os, cs[ci], key), 0));
        for (int i = 0; i < 100; i++)
            cr_assert(eq(int, rudp__aead_open(&a, nonce, m, 16, m, sizeof m, tag, out), -EBADMSG));
        rudp__aead_free(&a, &os);
    }
    cr_assert(eq(ulong, ERR_peek_error(), 0ul));
    rudp__aead_libs_free(&os);
}

/* ---- allocations, counted ---- */

/* OpenSSL's allocator cannot be replaced here (Criterion's libgit2 starts
 * OpenSSL before any test), so what anyone allocates while `counting` is
 * counted: in a plain build by the unit binary's own malloc family, whose
 * work glibc's __libc_* functions do; under a sanitizer, whose allocator
 * that would hide, by its malloc hook (sanitizer_common's, in libasan and
 * libtsan alike; GCC 12 ships no header for it). */
static int counting;
static long n_allocs;
static size_t alloc_bytes;

static void counted(size_t n)
{
    if (counting) {
        n_allocs++;
        alloc_bytes += n;
    }
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

static void san_malloc(const volatile void *p, size_t n)
{
    (void)p;
    counted(n);
}

static void san_free(const volatile void *p)
{
    (void)p;
}

static void count_start(void)
{
    static int installed;
    if (!installed)
        installed = __sanitizer_install_malloc_and_free_hooks(san_malloc, san_free) != 0;
    cr_assert(installed, "the sanitizer's malloc hook could not be installed");
    counting = 1;
}
#else
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

void *malloc(size_t n)
{
    counted(n);
    return __libc_malloc(n);
}

void *calloc(size_t c, size_t n)
{
    counted(c * n);
    return __libc_calloc(c, n);
}

void *realloc(void *p, size_t n)
{
    counted(n);
    return __libc_realloc(p, n);
}

void free(void *p)
{
    __libc_free(p);
}

static void count_start(void)
{
    counting = 1;
}
#endif

/* Allocations a table's start and every direction's life make, with the
 * pool's size, its bound, and what a direction does when it is empty. */
Test(aead, only_a_tables_start_allocates_through_openssl, .timeout = 30)
{
    uint8_t cs[2];
    int nc = ncipher(cs);
    rudp_aead_libs warm;
    /* OpenSSL's library context, once a process */
    rudp__aead_libs_init(&warm, NULL, shim_aead_openssl());
    rudp__aead_libs_free(&warm);
    count_start();
    for (int t = 0; t < 2; t++) {
        /* t 0: the default table (AES-256-GCM split by size); t 1: OpenSSL
         * for both ciphers at every size */
        rudp_aead_libs L;
        size_t b0 = alloc_bytes;
        rudp__aead_libs_init(&L, NULL, shim_aead_openssl());
        size_t fill[3] = {0};
        fill[RUDP_AEAD_AESGCM] = alloc_bytes - b0;
        if (t == 1) {
            b0 = alloc_bytes;
            rudp__aead_libs_limit(&L, RUDP_AEAD_LIB_BACKEND);
            fill[RUDP_AEAD_CHACHA] = alloc_bytes - b0;
        }
        for (int ci = 0; ci < nc; ci++) {
            uint8_t c = cs[ci];
            if (L.lib[c] != RUDP_AEAD_LIB_BACKEND)
                continue;
            cr_assert(eq(u32, shim_aead_openssl_spare(L.st, c), POOL));
            /* the counting sees the pool's contexts being made */
            cr_assert(gt(sz, fill[c], 0), "table %d cipher %d: no allocation counted", t, c);
            /* each context, and its place in the pool */
            size_t one = fill[c] / POOL;
            size_t counted_as = shim_aead_openssl()->dir_bytes;
            cr_assert(le(sz, one, counted_as),
                      "cipher %d: OpenSSL took %zu bytes a context, counted as %zu", c, one,
                      counted_as);
            /* every direction of the pool's and two more; only libsodium's
             * expanded AES keys are allocated (the core's allocator) */
            static rudp_aead d[POOL + 2];
            uint8_t key[32] = {5}, nonce[12] = {0}, ad[16] = {0}, tag[16];
            static uint8_t m[1400], out[1400];
            long n0 = n_allocs, sodium = 0;
            L.backend_full = 0;
            for (int i = 0; i < POOL + 2; i++) {
                key[1] = (uint8_t)i;
                cr_assert(eq(int, rudp__aead_init(&d[i], &L, c, key), 0));
                sodium += d[i].aes_mem != NULL;
                cr_assert(eq(str, (char *)rudp__aead_lib_name(&d[i]),
                             i < POOL ? "openssl" : "libsodium"));
            }
            cr_assert(eq(long, n_allocs - n0, sodium), "table %d cipher %d: %ld allocations", t,
                      c, n_allocs - n0 - sodium);
            cr_assert(eq(u64, L.backend_full, 2));
            /* sealing and opening, at sizes on both sides of the split */
            rudp_aead *a = &d[0], *b = &d[POOL + 1];
            /* b: libsodium's (the pool is empty), keyed as a */
            rudp__aead_free(b, &L);
            key[1] = 0;
            cr_assert(eq(int, rudp__aead_init(b, &L, c, key), 0));
            n0 = n_allocs;
            static const size_t lens[] = {1, 64, EVP_MIN, 1400};
            for (uint64_t pn = 1; pn <= 1000; pn++) {
                size_t n = lens[pn % 4];
                nonce[11] = (uint8_t)pn;
                nonce[10] = (uint8_t)(pn >> 8);
                cr_assert(eq(int, rudp__aead_seal(a, nonce, ad, sizeof ad, m, n, tag), 0));
                cr_assert(eq(int, rudp__aead_open(b, nonce, ad, sizeof ad, m, n, tag, out), 0));
                tag[0] ^= 1;
                cr_assert(eq(int, rudp__aead_open(a, nonce, ad, sizeof ad, m, n, tag, out),
                             -EBADMSG));
            }
            cr_assert(eq(long, n_allocs, n0), "table %d cipher %d: %ld allocations in 1000 "
                      "datagrams", t, c, n_allocs - n0);
            /* the connections end: the contexts go back, the pool is full */
            n0 = n_allocs;
            for (int i = 0; i < POOL + 2; i++)
                rudp__aead_free(&d[i], &L);
            cr_assert(eq(u32, shim_aead_openssl_spare(L.st, c), POOL));
            cr_assert(eq(long, n_allocs, n0));
        }
        rudp__aead_libs_free(&L);
    }
    counting = 0;
}
