/*
 * cryptocost: what keyed mode's cryptography costs on this machine, for the
 * benchmarks (make bench prints it once, beside the keyed rows).
 *
 *   cryptocost
 *
 * Times libsodium's calls the way core/crypto.c makes them, with no code of
 * the core's own (a change there that these calls no longer mirror needs
 * the same change here):
 *   - DATA datagrams of 1400 bytes (a full one) and 64 bytes (about an
 *     ACK's size), counted on the wire: a 16-byte header, the ciphertext,
 *     a 16-byte tag. Seal: encrypt the frames in place, detached tag after
 *     them, the header as associated data, nonce = 0(4) | packet number(8,
 *     big endian), a new packet number each time. Open: authenticate and
 *     decrypt into a scratch buffer (core keeps the received datagram and
 *     writes the plaintext apart), the same datagram each time.
 *   - ChaCha20-Poly1305 (IETF, crypto_aead_chacha20poly1305_ietf_*) always;
 *     AES-256-GCM (crypto_aead_aes256gcm_beforenm once, then *_afternm)
 *     where crypto_aead_aes256gcm_is_available() says the CPU has it, "not
 *     available" otherwise.
 *   - One handshake, both ends' work: two ephemeral keys drawn from the
 *     forward-secure generator (BLAKE2b) and their crypto_scalarmult_base,
 *     the SYN's MAC made and checked (BLAKE2b-128 over 1184 bytes), the
 *     SYNACK's MAC made and checked, two crypto_scalarmult (the DH at each
 *     end), two traffic-key derivations (BLAKE2b-512), and, where AES-256-GCM
 *     is the cipher, its two key expansions at each end.
 *
 * Every figure is the median of 5 timed batches (after one untimed batch)
 * of a fixed number of operations, so a run takes a few seconds whatever the
 * machine. Prints a small table to stdout: ns per seal and per open, and
 * what that costs per GB of such datagrams at each end (comparable with the
 * bench's CPU s/GB columns); the handshake in microseconds; and which cipher
 * the engine picks here (AES-256-GCM when both ends have it in hardware, as
 * two processes on this machine do; else ChaCha20-Poly1305).
 *
 * Exit: 0, 1 if libsodium fails to start or a datagram it sealed does not
 * open.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "wire.h"

#define CC_BATCHES 5
#define CC_DGRAM_MAX 1400

enum { CHACHA, AESGCM };

static const char *const cipher_name[] = {"chacha20-poly1305", "aes256-gcm"};

struct keys {
    uint8_t key[32];
    crypto_aead_aes256gcm_state aes;
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
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

/* Seals buf (len bytes on the wire, tag included) in place as packet pn. */
static void seal(int cipher, const struct keys *k, uint64_t pn, uint8_t *buf, size_t len)
{
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    uint8_t *m = buf + RUDP_WIRE_SHORT_HDR;
    unsigned long long mlen = len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
    if (cipher == AESGCM)
        crypto_aead_aes256gcm_encrypt_detached_afternm(m, m + mlen, NULL, m, mlen, buf,
                                                       RUDP_WIRE_SHORT_HDR, NULL, nonce, &k->aes);
    else
        crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, m + mlen, NULL, m, mlen, buf,
                                                           RUDP_WIRE_SHORT_HDR, NULL, nonce, k->key);
}

/* Opens the datagram buf (len bytes) of packet pn into plain; 0 or -1. */
static int open_(int cipher, const struct keys *k, uint64_t pn, const uint8_t *buf, size_t len,
                 uint8_t *plain)
{
    uint8_t nonce[12];
    nonce_of(nonce, pn);
    size_t clen = len - RUDP_WIRE_SHORT_HDR - RUDP_CRYPTO_TAG;
    const uint8_t *ct = buf + RUDP_WIRE_SHORT_HDR, *tag = ct + clen;
    if (cipher == AESGCM)
        return crypto_aead_aes256gcm_decrypt_detached_afternm(plain, NULL, ct, clen, tag, buf,
                                                              RUDP_WIRE_SHORT_HDR, nonce, &k->aes);
    return crypto_aead_chacha20poly1305_ietf_decrypt_detached(plain, NULL, ct, clen, tag, buf,
                                                              RUDP_WIRE_SHORT_HDR, nonce, k->key);
}

/* Median ns per seal and per open of len-byte datagrams, n per batch.
 * -1 if a sealed datagram fails to open. */
static int time_aead(int cipher, size_t len, long n, double *seal_ns, double *open_ns)
{
    static uint8_t buf[CC_DGRAM_MAX], plain[CC_DGRAM_MAX];
    struct keys k;
    randombytes_buf(k.key, sizeof k.key);
    if (cipher == AESGCM)
        crypto_aead_aes256gcm_beforenm(&k.aes, k.key);
    randombytes_buf(buf, len);
    double s[CC_BATCHES], o[CC_BATCHES];
    uint64_t pn = 1;
    for (int b = -1; b < CC_BATCHES; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            seal(cipher, &k, pn++, buf, len);
        double t1 = now_ns();
        for (long i = 0; i < n; i++)
            if (open_(cipher, &k, pn - 1, buf, len, plain) != 0)
                return -1;
        double t2 = now_ns();
        if (b >= 0) {
            s[b] = (t1 - t0) / (double)n;
            o[b] = (t2 - t1) / (double)n;
        }
    }
    qsort(s, CC_BATCHES, sizeof *s, cmp_double);
    qsort(o, CC_BATCHES, sizeof *o, cmp_double);
    *seal_ns = s[CC_BATCHES / 2];
    *open_ns = o[CC_BATCHES / 2];
    return 0;
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

/* One end's traffic keys, as crypto.c's derive() makes them. */
static int derive(const uint8_t kdf_key[32], const uint8_t sk[32], const uint8_t peer[32],
                  const uint8_t client_pub[32], const uint8_t server_pub[32], int aes)
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
    if (aes) {
        crypto_aead_aes256gcm_state tx, rx;
        crypto_aead_aes256gcm_beforenm(&tx, out);
        crypto_aead_aes256gcm_beforenm(&rx, out + 32);
    }
    return 0;
}

/* Median microseconds per handshake (both ends), n per batch; -1 if a MAC
 * fails to check or a DH fails. */
static int time_handshake(int aes, long n, double *us)
{
    uint8_t mac_key[32], kdf_key[32], cgen[32], sgen[32];
    uint8_t csk[32], cpub[32], ssk[32], spub[32];
    uint8_t syn[RUDP_MIN_SYN_SIZE], synack[64 + RUDP_CRYPTO_PUB + 1 + RUDP_CRYPTO_TAG];
    size_t syn_n = sizeof syn - RUDP_CRYPTO_TAG, synack_n = sizeof synack - RUDP_CRYPTO_TAG;
    randombytes_buf(mac_key, sizeof mac_key);
    randombytes_buf(kdf_key, sizeof kdf_key);
    randombytes_buf(cgen, sizeof cgen);
    randombytes_buf(sgen, sizeof sgen);
    randombytes_buf(syn, sizeof syn);
    randombytes_buf(synack, sizeof synack);
    double t[CC_BATCHES];
    for (int b = -1; b < CC_BATCHES; b++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            /* client: key pair, SYN */
            draw(cgen, csk, cpub);
            memcpy(syn + 20, cpub, sizeof cpub);
            mac(mac_key, NULL, syn, syn_n, syn + syn_n);
            /* server: SYN checked, key pair, keys, SYNACK */
            if (!mac_ok(mac_key, NULL, syn, syn_n))
                return -1;
            draw(sgen, ssk, spub);
            if (derive(kdf_key, ssk, cpub, cpub, spub, aes) != 0)
                return -1;
            memcpy(synack + synack_n - RUDP_CRYPTO_PUB, spub, sizeof spub);
            mac(mac_key, cpub, synack, synack_n, synack + synack_n);
            /* client: SYNACK checked, keys */
            if (!mac_ok(mac_key, cpub, synack, synack_n))
                return -1;
            if (derive(kdf_key, csk, spub, cpub, spub, aes) != 0)
                return -1;
        }
        if (b >= 0)
            t[b] = (now_ns() - t0) / (double)n / 1e3;
    }
    qsort(t, CC_BATCHES, sizeof *t, cmp_double);
    *us = t[CC_BATCHES / 2];
    return 0;
}

int main(void)
{
    static const struct {
        size_t len;
        long n;
    } sizes[] = {{1400, 20000}, {64, 100000}};
    if (sodium_init() < 0) {
        fprintf(stderr, "cryptocost: sodium_init failed\n");
        return 1;
    }
    int have_aes = crypto_aead_aes256gcm_is_available();
    double ns[2][2][2] = {{{0}}}; /* [cipher][size][seal, open] */
    printf("keyed mode's cryptography (libsodium %s), per DATA datagram as core/crypto.c does "
           "it; median of %d batches\n",
           sodium_version_string(), CC_BATCHES);
    printf("  %-18s  %8s  %7s  %7s  %9s  %9s\n", "cipher", "datagram", "seal ns", "open ns",
           "seal s/GB", "open s/GB");
    for (int c = CHACHA; c <= AESGCM; c++) {
        for (int s = 0; s < 2; s++) {
            if (c == AESGCM && !have_aes) {
                if (s == 0)
                    printf("  %-18s  not available (crypto_aead_aes256gcm_is_available() = 0)\n",
                           cipher_name[c]);
                continue;
            }
            double *v = ns[c][s];
            if (time_aead(c, sizes[s].len, sizes[s].n, &v[0], &v[1]) != 0) {
                fprintf(stderr, "cryptocost: a %s datagram did not open\n", cipher_name[c]);
                return 1;
            }
            /* ns per datagram / bytes per datagram = s per GB of datagrams */
            printf("  %-18s  %8zu  %7.0f  %7.0f  %9.2f  %9.2f\n", cipher_name[c], sizes[s].len,
                   v[0], v[1], v[0] / (double)sizes[s].len, v[1] / (double)sizes[s].len);
        }
    }
    int pick = have_aes ? AESGCM : CHACHA;
    double hs_us;
    if (time_handshake(pick == AESGCM, 200, &hs_us) != 0) {
        fprintf(stderr, "cryptocost: the handshake did not check\n");
        return 1;
    }
    printf("  handshake, both ends (2 X25519 key pairs, 2 DH, BLAKE2b MACs and key derivation): "
           "%.0f us\n",
           hs_us);
    printf("  the engine's cipher here: %s", cipher_name[pick]);
    if (have_aes) {
        double a = ns[AESGCM][0][0] + ns[AESGCM][0][1], ch = ns[CHACHA][0][0] + ns[CHACHA][0][1];
        printf(" (AES-256-GCM in hardware at both ends; seal + open of 1400 bytes %.2fx "
               "chacha20-poly1305's time: %s)\n",
               a / ch, a <= ch ? "the faster" : "the slower here");
    } else {
        printf(" (no AES-256-GCM in hardware)\n");
    }
    printf("  s/GB: CPU seconds per GB of such datagrams at the sender (seal) and at the receiver "
           "(open)\n");
    return 0;
}
