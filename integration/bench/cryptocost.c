/*
 * cryptocost: what keyed mode's cryptography costs on this machine, for the
 * benchmarks (make bench prints it once, beside the keyed rows).
 *
 *   cryptocost
 *
 * DATA datagrams: sealed and opened by the core's own code (core/aead.c,
 * linked from the core's library) with the shim's OpenSSL backend
 * (shim/base/aead_openssl.c, linked in) as the engines install it, once
 * per library that can run the cipher, libsodium and OpenSSL's libcrypto
 * side by side, so the table shows why the backend takes what it takes:
 *   - DATA datagrams of 1400 bytes (a full one) and 64 bytes (about an
 *     ACK's size), counted on the wire: a 16-byte header, the ciphertext,
 *     a 16-byte tag. Seal: encrypt the frames in place, detached tag after
 *     them, the header as associated data, nonce = 0(4) | packet number(8,
 *     big endian), a new packet number each time. Open: authenticate and
 *     decrypt into a scratch buffer (core keeps the received datagram and
 *     writes the plaintext apart), the same datagram each time.
 *   - ChaCha20-Poly1305 (IETF) always; AES-256-GCM where
 *     crypto_aead_aes256gcm_is_available() says the CPU has it (the core
 *     offers it only then), "not available" otherwise. OpenSSL's columns
 *     say "-" where its libcrypto did not load the cipher.
 *   - Before timing, each library's datagram is opened by the other: both
 *     compute the same cipher, so two ends that picked differently talk.
 * The handshake, both ends' work, its libsodium calls mirrored here from
 * core/crypto.c (a change there needs the same change here): two ephemeral
 * keys drawn from the forward-secure generator (BLAKE2b) and their
 * crypto_scalarmult_base, the SYN's MAC made and checked (BLAKE2b-128 over
 * 1184 bytes), the SYNACK's MAC made and checked, two crypto_scalarmult
 * (the DH at each end), two traffic-key derivations (BLAKE2b-512), and at
 * each end both directions' AEAD keyed through core/aead.c (as a keyed
 * context does: a spare context keyed again) and given back.
 *
 * Every figure is the fastest of 11 timed batches of a fixed number of
 * operations (after one untimed round), the batches of all the figures taken
 * in turn: a busy moment of the machine slows one batch of each, not every
 * batch of one, and the fastest is the cost itself with the least of other
 * processes' interference. A run takes a few seconds whatever the machine.
 * Prints a small table to stdout: ns per seal and per open for each
 * library, and what the core's pick costs per GB of such datagrams at each
 * end (comparable with the bench's CPU s/GB columns); the handshake in
 * microseconds; and which cipher and library the engine picks here.
 *
 * Exit: 0, 1 if libsodium fails to start or a datagram sealed by one
 * library does not open with either.
 */
#include <openssl/opensslv.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../shim/base/base.h"
#include "aead.h"
#include "crypto.h"
#include "wire.h"

#define CC_ROUNDS 11
#define CC_DGRAM_MAX 1400

enum { SODIUM, OPENSSL, NLIBS };

/* The datagrams timed: a full one, an ACK-sized one; operations a batch. */
static const struct {
    size_t len;
    long n;
} sizes[] = {{1400, 10000}, {64, 40000}};
#define CC_HANDSHAKES 100

/* by crypto.h's RUDP_AEAD_* */
static const char *const cipher_name[] = {"", "chacha20-poly1305", "aes256-gcm"};
static const char *const lib_name[] = {"libsodium", "openssl"};
static const uint8_t lib_mask[] = {RUDP_AEAD_LIB_SODIUM, RUDP_AEAD_LIB_BACKEND};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void nonce_of(uint8_t n[12], uint64_t pn)
{
    memset(n, 0, 4);
    put_be64(n + 4, pn);
}

/* Seals buf (len bytes on the wire, tag included) in place as packet pn,
 * as core/crypto.c's rudp__keyed_seal does; 0 or -1. */
static int seal(rudp_aead *a, uint64_t pn, uint8_t *buf, size_t len)
{
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    size_t mlen = len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
    uint8_t *m = buf + RUDP_WIRE_SHORT_HDR;
    return rudp__aead_seal(a, nonce, buf, RUDP_WIRE_SHORT_HDR, m, mlen, m + mlen) == 0 ? 0 : -1;
}

/* Opens the datagram buf (len bytes) of packet pn into plain; 0 or -1. */
static int open_(rudp_aead *a, uint64_t pn, const uint8_t *buf, size_t len, uint8_t *plain)
{
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    size_t clen = len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
    const uint8_t *ct = buf + RUDP_WIRE_SHORT_HDR;
    return rudp__aead_open(a, nonce, buf, RUDP_WIRE_SHORT_HDR, ct, clen, ct + clen, plain) == 0
               ? 0
               : -1;
}

/* A cipher's key in one library and a datagram to seal and open. */
struct aead_job {
    int ok; /* the library runs the cipher */
    size_t len;
    long n;
    uint64_t pn;
    rudp_aead a;
    uint8_t buf[CC_DGRAM_MAX], plain[CC_DGRAM_MAX];
};

/* Keys j for cipher in library lib (through the table L, limited to lib);
 * j->ok = 0 where the library does not run it. */
static void aead_job_init(struct aead_job *j, rudp_aead_libs *L, int lib, uint8_t cipher,
                          const uint8_t key[32], size_t len, long n)
{
    j->len = len;
    j->n = n;
    j->pn = 1;
    j->ok = L->lib[cipher] == lib_mask[lib] && rudp__aead_init(&j->a, L, cipher, key) == 0;
    randombytes_buf(j->buf, len);
}

/* One batch: ns per seal and per open of j's datagrams. -1 if a sealed
 * datagram fails to open. */
static int aead_batch(struct aead_job *j, double *seal_ns, double *open_ns)
{
    double t0 = now_ns();
    for (long i = 0; i < j->n; i++)
        if (seal(&j->a, j->pn++, j->buf, j->len) != 0)
            return -1;
    double t1 = now_ns();
    for (long i = 0; i < j->n; i++)
        if (open_(&j->a, j->pn - 1, j->buf, j->len, j->plain) != 0)
            return -1;
    double t2 = now_ns();
    *seal_ns = (t1 - t0) / (double)j->n;
    *open_ns = (t2 - t1) / (double)j->n;
    return 0;
}

/* A datagram sealed by j opens with k (the same cipher and key, another
 * library), and a copy with one bit flipped does not. */
static int crosses(struct aead_job *j, struct aead_job *k)
{
    uint8_t d[CC_DGRAM_MAX], plain[CC_DGRAM_MAX];
    memcpy(d, j->buf, j->len);
    if (seal(&j->a, 7, d, j->len) != 0 || open_(&k->a, 7, d, j->len, plain) != 0)
        return 0;
    d[j->len / 2] ^= 1;
    return open_(&k->a, 7, d, j->len, plain) != 0;
}

/* One end's ephemeral key pair, as rudp__conn_keyed_new draws it. */
static void draw(uint8_t gen[32], uint8_t sk[32], uint8_t pub[32])
{
    uint8_t next[32];
    crypto_generichash(sk, 32, (const uint8_t *)"secret", 6, gen, 32);
    crypto_generichash(next, sizeof next, (const uint8_t *)"next", 4, gen, 32);
    memcpy(gen, next, sizeof next);
    crypto_scalarmult_base(pub, sk);
}

static void mac(const uint8_t key[32], const uint8_t *client_pub, const uint8_t *buf, size_t n,
                uint8_t out[RUDP_CRYPTO_TAG])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, 32, RUDP_CRYPTO_TAG);
    if (client_pub)
        crypto_generichash_update(&st, client_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, buf, n);
    crypto_generichash_final(&st, out, RUDP_CRYPTO_TAG);
}

static int mac_ok(const uint8_t key[32], const uint8_t *client_pub, const uint8_t *buf, size_t n)
{
    uint8_t want[RUDP_CRYPTO_TAG];
    mac(key, client_pub, buf, n, want);
    return crypto_verify_16(want, buf + n) == 0;
}

/* One end's traffic keys, as crypto.c's derive() makes them, and its two
 * directions keyed for cipher through the core's table L (aead.c), then
 * given back as the connection's end does. */
static int derive(const uint8_t kdf_key[32], const uint8_t sk[32], const uint8_t peer[32],
                  const uint8_t client_pub[32], const uint8_t server_pub[32],
                  rudp_aead_libs *L, uint8_t cipher)
{
    uint8_t dh[32], out[64], ids[17] = {0};
    if (crypto_scalarmult(dh, sk, peer) != 0)
        return -1;
    crypto_generichash_state st;
    crypto_generichash_init(&st, kdf_key, 32, sizeof out);
    crypto_generichash_update(&st, dh, sizeof dh);
    crypto_generichash_update(&st, client_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, server_pub, RUDP_CRYPTO_PUB);
    crypto_generichash_update(&st, ids, sizeof ids);
    crypto_generichash_final(&st, out, sizeof out);
    rudp_aead tx, rx;
    if (rudp__aead_init(&tx, L, cipher, out) != 0)
        return -1;
    if (rudp__aead_init(&rx, L, cipher, out + 32) != 0) {
        rudp__aead_free(&tx, L);
        return -1;
    }
    rudp__aead_free(&tx, L);
    rudp__aead_free(&rx, L);
    return 0;
}

/* Both ends' long-lived material, and the packets' bytes. */
struct hs_job {
    rudp_aead_libs *libs;
    uint8_t cipher;
    uint8_t mac_key[32], kdf_key[32], cgen[32], sgen[32];
    uint8_t syn[RUDP_MIN_SYN_SIZE], synack[64 + RUDP_CRYPTO_PUB + 1 + RUDP_CRYPTO_TAG];
};

static void hs_job_init(struct hs_job *j, rudp_aead_libs *L, uint8_t cipher)
{
    j->libs = L;
    j->cipher = cipher;
    randombytes_buf(j->mac_key, sizeof j->mac_key);
    randombytes_buf(j->kdf_key, sizeof j->kdf_key);
    randombytes_buf(j->cgen, sizeof j->cgen);
    randombytes_buf(j->sgen, sizeof j->sgen);
    randombytes_buf(j->syn, sizeof j->syn);
    randombytes_buf(j->synack, sizeof j->synack);
}

/* One batch: microseconds per handshake, both ends; -1 if a MAC fails to
 * check or a DH fails. */
static int hs_batch(struct hs_job *j, double *us)
{
    uint8_t csk[32], cpub[32], ssk[32], spub[32];
    size_t syn_n = sizeof j->syn - RUDP_CRYPTO_TAG, synack_n = sizeof j->synack - RUDP_CRYPTO_TAG;
    double t0 = now_ns();
    for (long i = 0; i < CC_HANDSHAKES; i++) {
        /* client: key pair, SYN */
        draw(j->cgen, csk, cpub);
        memcpy(j->syn + 20, cpub, sizeof cpub);
        mac(j->mac_key, NULL, j->syn, syn_n, j->syn + syn_n);
        /* server: SYN checked, key pair, keys, SYNACK */
        if (!mac_ok(j->mac_key, NULL, j->syn, syn_n))
            return -1;
        draw(j->sgen, ssk, spub);
        if (derive(j->kdf_key, ssk, cpub, cpub, spub, j->libs, j->cipher) != 0)
            return -1;
        memcpy(j->synack + synack_n - RUDP_CRYPTO_PUB, spub, sizeof spub);
        mac(j->mac_key, cpub, j->synack, synack_n, j->synack + synack_n);
        /* client: SYNACK checked, keys */
        if (!mac_ok(j->mac_key, cpub, j->synack, synack_n))
            return -1;
        if (derive(j->kdf_key, csk, spub, cpub, spub, j->libs, j->cipher) != 0)
            return -1;
    }
    *us = (now_ns() - t0) / CC_HANDSHAKES / 1e3;
    return 0;
}

static double min_of(double a, double b)
{
    return b < a ? b : a;
}

int main(void)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "cryptocost: sodium_init failed\n");
        return 1;
    }
    int have_aes = crypto_aead_aes256gcm_is_available();
    uint8_t last = have_aes ? RUDP_AEAD_AESGCM : RUDP_AEAD_CHACHA;
    /* the core's table as a keyed context has it, and one per library */
    static rudp_aead_libs core, libs[NLIBS];
    rudp__aead_libs_init(&core, NULL, shim_aead_openssl());
    static struct aead_job jobs[NLIBS][3][2]; /* [lib][cipher][size] */
    static double best[NLIBS][3][2][2];       /* [lib][cipher][size][seal, open], ns */
    uint8_t key[3][32];
    for (int l = 0; l < NLIBS; l++) {
        rudp__aead_libs_init(&libs[l], NULL, shim_aead_openssl());
        rudp__aead_libs_limit(&libs[l], lib_mask[l]);
    }
    for (uint8_t c = RUDP_AEAD_CHACHA; c <= last; c++) {
        randombytes_buf(key[c], sizeof key[c]);
        for (int l = 0; l < NLIBS; l++)
            for (int s = 0; s < 2; s++) {
                aead_job_init(&jobs[l][c][s], &libs[l], l, c, key[c], sizes[s].len, sizes[s].n);
                best[l][c][s][0] = best[l][c][s][1] = 1e30;
            }
        for (int s = 0; s < 2; s++) {
            struct aead_job *a = &jobs[SODIUM][c][s], *b = &jobs[OPENSSL][c][s];
            if (a->ok && b->ok && (!crosses(a, b) || !crosses(b, a))) {
                fprintf(stderr, "cryptocost: %s datagrams of one library do not open with the "
                                "other\n",
                        cipher_name[c]);
                return 1;
            }
        }
    }
    double hs_us = 1e30;
    struct hs_job hs;
    hs_job_init(&hs, &core, last);
    /* round 0 warms up, untimed */
    for (int round = 0; round <= CC_ROUNDS; round++) {
        for (int l = 0; l < NLIBS; l++)
            for (uint8_t c = RUDP_AEAD_CHACHA; c <= last; c++)
                for (int s = 0; s < 2; s++) {
                    struct aead_job *j = &jobs[l][c][s];
                    double sn, on;
                    if (!j->ok)
                        continue;
                    if (aead_batch(j, &sn, &on) != 0) {
                        fprintf(stderr, "cryptocost: a %s datagram of %s did not open\n",
                                cipher_name[c], lib_name[l]);
                        return 1;
                    }
                    if (round > 0) {
                        best[l][c][s][0] = min_of(best[l][c][s][0], sn);
                        best[l][c][s][1] = min_of(best[l][c][s][1], on);
                    }
                }
        double us;
        if (hs_batch(&hs, &us) != 0) {
            fprintf(stderr, "cryptocost: the handshake did not check\n");
            return 1;
        }
        if (round > 0)
            hs_us = min_of(hs_us, us);
    }
    printf("keyed mode's cryptography per DATA datagram, as core/aead.c does it (libsodium %s, "
           "%s); fastest of %d batches\n",
           sodium_version_string(), OPENSSL_VERSION_TEXT, CC_ROUNDS);
    printf("  %-18s  %8s  %-19s  %-19s  %-9s  %9s  %9s\n", "cipher", "datagram",
           "libsodium seal/open", "openssl seal/open", "core uses", "seal s/GB", "open s/GB");
    for (uint8_t c = RUDP_AEAD_CHACHA; c <= RUDP_AEAD_AESGCM; c++) {
        if (c > last) {
            printf("  %-18s  not available (crypto_aead_aes256gcm_is_available() = 0)\n",
                   cipher_name[c]);
            continue;
        }
        /* the core's direction picks by size (the backend's split_below) */
        rudp_aead probe;
        if (rudp__aead_init(&probe, &core, c, key[c]) != 0) {
            fprintf(stderr, "cryptocost: the core's %s did not start\n", cipher_name[c]);
            return 1;
        }
        for (int s = 0; s < 2; s++) {
            size_t clen = sizes[s].len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
            int pick = rudp__aead_lib_for(&probe, clen) == RUDP_AEAD_LIB_BACKEND ? OPENSSL : SODIUM;
            char col[NLIBS][32];
            for (int l = 0; l < NLIBS; l++) {
                if (jobs[l][c][s].ok)
                    snprintf(col[l], sizeof col[l], "%5.0f / %5.0f ns", best[l][c][s][0],
                             best[l][c][s][1]);
                else
                    snprintf(col[l], sizeof col[l], "-");
            }
            const double *v = best[pick][c][s];
            /* ns per datagram / bytes per datagram = s per GB of datagrams */
            printf("  %-18s  %8zu  %-19s  %-19s  %-9s  %9.2f  %9.2f\n", cipher_name[c],
                   sizes[s].len, col[SODIUM], col[OPENSSL], lib_name[pick],
                   v[0] / (double)sizes[s].len, v[1] / (double)sizes[s].len);
        }
        rudp__aead_free(&probe, &core);
    }
    printf("  handshake, both ends (2 X25519 key pairs, 2 DH, BLAKE2b MACs and key derivation): "
           "%.0f us\n",
           hs_us);
    int pick = core.lib[last] == RUDP_AEAD_LIB_BACKEND ? OPENSSL : SODIUM;
    printf("  the engine's cipher here: %s by %s", cipher_name[last], lib_name[pick]);
    if (core.split[last])
        printf(" from %u bytes of ciphertext, by libsodium below", core.be->split_below);
    if (have_aes) {
        double a = best[pick][RUDP_AEAD_AESGCM][0][0] + best[pick][RUDP_AEAD_AESGCM][0][1];
        double ch = 1e30;
        for (int l = 0; l < NLIBS; l++)
            if (jobs[l][RUDP_AEAD_CHACHA][0].ok)
                ch = min_of(ch, best[l][RUDP_AEAD_CHACHA][0][0] + best[l][RUDP_AEAD_CHACHA][0][1]);
        printf(" (AES-256-GCM in hardware at both ends; seal + open of 1400 bytes %.2fx the "
               "fastest chacha20-poly1305's time)\n",
               a / ch);
    } else {
        printf(" (no AES-256-GCM in hardware)\n");
    }
    printf("  s/GB: CPU seconds per GB of such datagrams at the sender (seal) and at the receiver "
           "(open), with the library the core uses\n");
    for (int l = 0; l < NLIBS; l++) {
        for (uint8_t c = RUDP_AEAD_CHACHA; c <= last; c++)
            for (int s = 0; s < 2; s++)
                if (jobs[l][c][s].ok)
                    rudp__aead_free(&jobs[l][c][s].a, &libs[l]);
        rudp__aead_libs_free(&libs[l]);
    }
    rudp__aead_libs_free(&core);
    return 0;
}
