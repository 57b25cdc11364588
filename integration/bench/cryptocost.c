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
 * Every figure is the fastest of 11 timed batches of a fixed number of
 * operations (after one untimed round), the batches of all the figures taken
 * in turn: a busy moment of the machine slows one batch of each, not every
 * batch of one, and the fastest is the cost itself with the least of other
 * processes' interference. A run takes a second or two whatever the
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
#include <string.h>
#include <time.h>

#include "crypto.h"
#include "wire.h"

#define CC_ROUNDS 11
#define CC_DGRAM_MAX 1400

enum { CHACHA, AESGCM };

/* The datagrams timed: a full one, an ACK-sized one; operations a batch. */
static const struct {
    size_t len;
    long n;
} sizes[] = {{1400, 10000}, {64, 40000}};
#define CC_HANDSHAKES 100

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

/* A cipher's keys and a datagram to seal and open. */
struct aead_job {
    int cipher;
    size_t len;
    long n;
    uint64_t pn;
    struct keys k;
    uint8_t buf[CC_DGRAM_MAX], plain[CC_DGRAM_MAX];
};

static void aead_job_init(struct aead_job *j, int cipher, size_t len, long n)
{
    j->cipher = cipher;
    j->len = len;
    j->n = n;
    j->pn = 1;
    randombytes_buf(j->k.key, sizeof j->k.key);
    if (cipher == AESGCM)
        crypto_aead_aes256gcm_beforenm(&j->k.aes, j->k.key);
    randombytes_buf(j->buf, len);
}

/* One batch: ns per seal and per open of j's datagrams. -1 if a sealed
 * datagram fails to open. */
static int aead_batch(struct aead_job *j, double *seal_ns, double *open_ns)
{
    double t0 = now_ns();
    for (long i = 0; i < j->n; i++)
        seal(j->cipher, &j->k, j->pn++, j->buf, j->len);
    double t1 = now_ns();
    for (long i = 0; i < j->n; i++)
        if (open_(j->cipher, &j->k, j->pn - 1, j->buf, j->len, j->plain) != 0)
            return -1;
    double t2 = now_ns();
    *seal_ns = (t1 - t0) / (double)j->n;
    *open_ns = (t2 - t1) / (double)j->n;
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

/* Both ends' long-lived material, and the packets' bytes. */
struct hs_job {
    int aes;
    uint8_t mac_key[32], kdf_key[32], cgen[32], sgen[32];
    uint8_t syn[RUDP_MIN_SYN_SIZE], synack[64 + RUDP_CRYPTO_PUB + 1 + RUDP_CRYPTO_TAG];
};

static void hs_job_init(struct hs_job *j, int aes)
{
    j->aes = aes;
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
        if (derive(j->kdf_key, ssk, cpub, cpub, spub, j->aes) != 0)
            return -1;
        memcpy(j->synack + synack_n - RUDP_CRYPTO_PUB, spub, sizeof spub);
        mac(j->mac_key, cpub, j->synack, synack_n, j->synack + synack_n);
        /* client: SYNACK checked, keys */
        if (!mac_ok(j->mac_key, cpub, j->synack, synack_n))
            return -1;
        if (derive(j->kdf_key, csk, spub, cpub, spub, j->aes) != 0)
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
    int pick = have_aes ? AESGCM : CHACHA;
    static struct aead_job jobs[2][2]; /* [cipher][size] */
    double best[2][2][2];              /* [cipher][size][seal, open], ns */
    double hs_us = 1e30;
    struct hs_job hs;
    int ncipher = have_aes ? 2 : 1;
    for (int c = 0; c < ncipher; c++)
        for (int s = 0; s < 2; s++) {
            aead_job_init(&jobs[c][s], c, sizes[s].len, sizes[s].n);
            best[c][s][0] = best[c][s][1] = 1e30;
        }
    hs_job_init(&hs, pick == AESGCM);
    /* round 0 warms up, untimed */
    for (int round = 0; round <= CC_ROUNDS; round++) {
        for (int c = 0; c < ncipher; c++)
            for (int s = 0; s < 2; s++) {
                double sn, on;
                if (aead_batch(&jobs[c][s], &sn, &on) != 0) {
                    fprintf(stderr, "cryptocost: a %s datagram did not open\n", cipher_name[c]);
                    return 1;
                }
                if (round > 0) {
                    best[c][s][0] = min_of(best[c][s][0], sn);
                    best[c][s][1] = min_of(best[c][s][1], on);
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
    printf("keyed mode's cryptography (libsodium %s), per DATA datagram as core/crypto.c does "
           "it; fastest of %d batches\n",
           sodium_version_string(), CC_ROUNDS);
    printf("  %-18s  %8s  %7s  %7s  %9s  %9s\n", "cipher", "datagram", "seal ns", "open ns",
           "seal s/GB", "open s/GB");
    for (int c = CHACHA; c <= AESGCM; c++) {
        if (c >= ncipher) {
            printf("  %-18s  not available (crypto_aead_aes256gcm_is_available() = 0)\n",
                   cipher_name[c]);
            continue;
        }
        for (int s = 0; s < 2; s++) {
            const double *v = best[c][s];
            /* ns per datagram / bytes per datagram = s per GB of datagrams */
            printf("  %-18s  %8zu  %7.0f  %7.0f  %9.2f  %9.2f\n", cipher_name[c], sizes[s].len,
                   v[0], v[1], v[0] / (double)sizes[s].len, v[1] / (double)sizes[s].len);
        }
    }
    printf("  handshake, both ends (2 X25519 key pairs, 2 DH, BLAKE2b MACs and key derivation): "
           "%.0f us\n",
           hs_us);
    printf("  the engine's cipher here: %s", cipher_name[pick]);
    if (have_aes) {
        double a = best[AESGCM][0][0] + best[AESGCM][0][1];
        double ch = best[CHACHA][0][0] + best[CHACHA][0][1];
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
