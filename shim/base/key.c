/*
 * key.c: the shared key of keyed mode, read from RUDP_KEY_FILE.
 *
 * The file is treated as ssh treats a private key: opened without following
 * a symbolic link, it must be a regular file that neither the group nor
 * others may read or write (a key others can read is a key others hold; one
 * they can write is a key they chose). Its contents are the 32 bytes of the
 * key as 64 hex digits or as 44 characters of standard base64 (what
 * `rudp-run --genkey` prints), with whitespace around them allowed and
 * nothing else. Decoding is libsodium's; every buffer that held key
 * material is wiped.
 *
 * The key stays in this file's memory for the life of the process: an
 * engine started later (another engine thread, a forked child's own
 * engine) needs it too. Nothing here prints: a mistake is described to the
 * caller (config.c), which reports it as it reports every bad setting.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

/* Longer than any accepted form with generous whitespace around it. */
#define KEY_FILE_MAX 256

static uint8_t key[RUDP_KEY_LEN];
static int have_key;

const uint8_t *shim_key(void)
{
    return have_key ? key : NULL;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The key in text (hex or base64) into out; 0, or -1 when it is neither. */
static int decode(const char *text, size_t len, uint8_t out[RUDP_KEY_LEN])
{
    size_t got = 0;
    const char *end = NULL;
    if (len == 2 * RUDP_KEY_LEN) {
        if (sodium_hex2bin(out, RUDP_KEY_LEN, text, len, NULL, &got, &end) == 0 &&
            got == RUDP_KEY_LEN && end == text + len)
            return 0;
    } else if (len == sodium_base64_ENCODED_LEN(RUDP_KEY_LEN, sodium_base64_VARIANT_ORIGINAL) - 1) {
        if (sodium_base642bin(out, RUDP_KEY_LEN, text, len, NULL, &got, &end,
                              sodium_base64_VARIANT_ORIGINAL) == 0 &&
            got == RUDP_KEY_LEN && end == text + len)
            return 0;
    }
    sodium_memzero(out, RUDP_KEY_LEN);
    return -1;
}

int shim_key_load(const char *path, char *why, size_t why_len)
{
    char buf[KEY_FILE_MAX + 1];
    uint8_t k[RUDP_KEY_LEN];
    size_t n = 0;
    int ret = -1;
    /* O_NONBLOCK: opening a FIFO does not wait for a writer (and the type
     * check refuses it); a regular file reads the same either way. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP)
            snprintf(why, why_len, "is a symbolic link; name the key file itself");
        else
            snprintf(why, why_len, "cannot be opened: %s", shim_strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(why, why_len, "cannot be examined: %s", shim_strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "is not a regular file");
        goto fail;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(why, why_len,
                 "has mode %04o: a key file must be private to its owner, as ssh requires of a "
                 "private key; chmod 600 %s",
                 (unsigned)(st.st_mode & 07777), path);
        goto fail;
    }
    for (;;) {
        ssize_t r = real_read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, why_len, "cannot be read: %s", shim_strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof buf) {
            snprintf(why, why_len, "is too long for a key (%d bytes at most)", KEY_FILE_MAX);
            goto fail;
        }
    }
    size_t start = 0;
    while (start < n && is_space(buf[start]))
        start++;
    while (n > start && is_space(buf[n - 1]))
        n--;
    if (decode(buf + start, n - start, k) < 0) {
        snprintf(why, why_len,
                 "does not hold a key: expected 32 bytes as 64 hex digits or as 44 characters "
                 "of base64 (rudp-run --genkey makes one)");
        goto fail;
    }
    memcpy(key, k, sizeof key);
    have_key = 1;
    ret = 0;
fail:
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(k, sizeof k);
    real_close(fd);
    return ret;
}
