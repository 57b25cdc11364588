/*
 * tokens.c: the client's store of address tokens (core/token.h), across
 * processes: curl is a new process per fetch, and its next connection to a
 * server must find the token the last one was given.
 *
 * One file per bucket of server addresses (and mode: keyed or not, a token
 * being worthless to the other; at most TOKEN_BUCKETS per mode and family,
 * below) in a directory of the user's own:
 * $XDG_RUNTIME_DIR/rudp-tokens when that is set (absolute), else
 * /tmp/rudp-tokens-UID. The directory is made with mode 0700 and, as key
 * files are (base/key.c), checked before use: not a symbolic link, a
 * directory, owned by us, with no access for group or others; else no
 * token is stored or used (nothing fails: the connection is an ordinary
 * one). Files are opened without following links, relative to the
 * checked directory.
 *
 * Tokens are single use: taking one renames it to a temporary name first
 * (so two processes cannot both take it), then reads and removes it. A
 * new one arrives with each connection and replaces the file (written
 * under a temporary name, then renamed over it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"

#include "base/poison.h"

#define TOKEN_FILE_MAX 64

/* The directory, checked; -1 if it cannot be used. */
static int open_dir(void)
{
    char path[256];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && xdg[0] == '/' ? snprintf(path, sizeof path, "%s/rudp-tokens", xdg)
                                 : snprintf(path, sizeof path, "/tmp/rudp-tokens-%u",
                                            (unsigned)geteuid());
    if (n <= 0 || (size_t)n >= sizeof path)
        return -1;
    if (mkdir(path, 0700) < 0 && errno != EEXIST)
        return -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & (S_IRWXG | S_IRWXO))) {
        SHIM_LOG(RUDP_LOG_WARN, "token directory %s is not private to this user (mode %04o, "
                                "owner %u): no 0-RTT tokens stored or used",
                 path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        real_close(fd);
        return -1;
    }
    return fd;
}

/* At most TOKEN_BUCKETS files per mode and family: a program that visits
 * 100,000 servers must not leave 100,000 files (each a page of tmpfs, and
 * never removed: tokens expire after a day, their files did not). A
 * server's token goes in the file of its address's bucket, behind the
 * address and port it is for; another server of the same bucket replaces
 * it (that server's next connection pays one round trip, nothing else).
 * The temporary names are one per bucket too, so a process killed between
 * two steps leaves nothing that grows. */
#define TOKEN_BUCKETS 256
#define TOKEN_ADDR 19 /* family(1) | ip(16) | port(2) */

/* The file name for a server: mode, family, bucket (FNV-1a of the address
 * and port). */
static void file_name(const rudp_addr *peer, int keyed, char out[16])
{
    uint32_t h = 2166136261u;
    const uint8_t *ip = peer->ip;
    size_t n = peer->family == 2 ? 4 : 16;
    for (size_t i = 0; i < n; i++)
        h = (h ^ ip[i]) * 16777619u;
    h = (h ^ (uint8_t)(peer->port >> 8)) * 16777619u;
    h = (h ^ (uint8_t)peer->port) * 16777619u;
    snprintf(out, 16, "%c%c-%02x", keyed ? 'k' : 'u', n == 4 ? '4' : '6',
             (unsigned)(h % TOKEN_BUCKETS));
}

/* What a file begins with: the server it is for (an IPv4-mapped address
 * is another server than the IPv4 one: at worst one 0-RTT less). */
static void addr_head(const rudp_addr *peer, uint8_t out[TOKEN_ADDR])
{
    memset(out, 0, TOKEN_ADDR);
    out[0] = peer->family == 2 ? 4 : 6;
    memcpy(out + 1, peer->ip, peer->family == 2 ? 4 : 16);
    out[17] = (uint8_t)(peer->port >> 8);
    out[18] = (uint8_t)peer->port;
}

/* Reads file `name` in dir (a regular file of ours, not a link): the
 * token in it for peer, into out; its length, 0 if none or another's. */
static size_t read_token(int dir, const char *name, const rudp_addr *peer, uint8_t *out,
                         size_t cap)
{
    int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return 0;
    struct stat st;
    uint8_t buf[TOKEN_ADDR + TOKEN_FILE_MAX + 1], want[TOKEN_ADDR];
    ssize_t r = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
        r = real_read(fd, buf, sizeof buf);
    real_close(fd);
    addr_head(peer, want);
    if (r <= TOKEN_ADDR || (size_t)r > TOKEN_ADDR + TOKEN_FILE_MAX ||
        memcmp(buf, want, TOKEN_ADDR) != 0 || (size_t)r - TOKEN_ADDR > cap)
        return 0;
    memcpy(out, buf + TOKEN_ADDR, (size_t)r - TOKEN_ADDR);
    return (size_t)r - TOKEN_ADDR;
}

size_t shim_tokens_take(const rudp_addr *peer, int keyed, uint8_t *out, size_t cap)
{
    int dir = open_dir();
    if (dir < 0)
        return 0;
    char name[16], mine[32];
    file_name(peer, keyed, name);
    snprintf(mine, sizeof mine, ".%s.take", name);
    size_t got = 0;
    /* Another server's token in the bucket is left where it is. Ours is
     * renamed away first, so that two processes cannot both take it (the
     * rename is atomic); read again there, it is ours if it still names
     * this server (one put since would have replaced it). */
    if (read_token(dir, name, peer, out, cap) && renameat(dir, name, dir, mine) == 0) {
        got = read_token(dir, mine, peer, out, cap);
        unlinkat(dir, mine, 0);
    }
    real_close(dir);
    return got;
}

void shim_tokens_put(const rudp_addr *peer, int keyed, const uint8_t *tok, size_t len)
{
    if (len == 0 || len > TOKEN_FILE_MAX)
        return;
    int dir = open_dir();
    if (dir < 0)
        return;
    char name[16], tmp[32];
    uint8_t buf[TOKEN_ADDR + TOKEN_FILE_MAX];
    file_name(peer, keyed, name);
    snprintf(tmp, sizeof tmp, ".%s.new", name);
    addr_head(peer, buf);
    memcpy(buf + TOKEN_ADDR, tok, len);
    /* one write: two writers of the bucket at once leave one's record or
     * the other's, whole (a torn one would only be refused) */
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        struct stat st;
        ssize_t w = -1;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid())
            w = real_write(fd, buf, TOKEN_ADDR + len);
        real_close(fd);
        if (w != (ssize_t)(TOKEN_ADDR + len) || renameat(dir, tmp, dir, name) < 0)
            unlinkat(dir, tmp, 0);
    }
    real_close(dir);
}
