/*
 * tokens.c: the client's store of address tokens (core/token.h), across
 * processes: curl is a new process per fetch, and its next connection to a
 * server must find the token the last one was given.
 *
 * One file per server address (and mode: keyed or not, a token being
 * worthless to the other) in a directory of the user's own:
 * $XDG_RUNTIME_DIR/rudp-tokens when that is set (absolute), else
 * /tmp/rudp-tokens-UID. The directory is made with mode 0700 and, as key
 * files are (base/key.c), checked before use: not a symbolic link, a
 * directory, owned by us, with no access for group or others; else no
 * token is stored or used (nothing fails: the connection is an ordinary
 * one). Files are opened without following links, relative to the
 * checked directory.
 *
 * Tokens are single use: taking one renames it to a name of this process's
 * own first (so two processes cannot both take it), then reads and removes
 * it. A new one arrives with each connection and replaces the file
 * (written under a temporary name, then renamed over it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
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

/* The file name for a server: mode, family, address and port in hex (an
 * IPv4-mapped address names a file of its own: at worst one 0-RTT less). */
static void file_name(const rudp_addr *peer, int keyed, char out[64])
{
    const uint8_t *ip = peer->ip;
    size_t n = peer->family == 2 ? 4 : 16;
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = keyed ? 'k' : 'u';
    out[o++] = n == 4 ? '4' : '6';
    out[o++] = '-';
    for (size_t i = 0; i < n; i++) {
        out[o++] = hex[ip[i] >> 4];
        out[o++] = hex[ip[i] & 15];
    }
    snprintf(out + o, 64 - o, "-%u", (unsigned)peer->port);
}

size_t shim_tokens_take(const rudp_addr *peer, int keyed, uint8_t *out, size_t cap)
{
    static atomic_uint counter;
    int dir = open_dir();
    if (dir < 0)
        return 0;
    char name[64], mine[96];
    file_name(peer, keyed, name);
    snprintf(mine, sizeof mine, ".%s.take.%d.%u", name, (int)getpid(),
             atomic_fetch_add(&counter, 1));
    size_t got = 0;
    if (renameat(dir, name, dir, mine) == 0) {
        int fd = openat(dir, mine, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
            uint8_t buf[TOKEN_FILE_MAX];
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0 && (size_t)r <= cap) {
                memcpy(out, buf, (size_t)r);
                got = (size_t)r;
            }
        }
        if (fd >= 0)
            real_close(fd);
        unlinkat(dir, mine, 0);
    }
    real_close(dir);
    return got;
}

void shim_tokens_put(const rudp_addr *peer, int keyed, const uint8_t *tok, size_t len)
{
    static atomic_uint counter;
    if (len == 0 || len > TOKEN_FILE_MAX)
        return;
    int dir = open_dir();
    if (dir < 0)
        return;
    char name[64], tmp[96];
    file_name(peer, keyed, name);
    snprintf(tmp, sizeof tmp, ".%s.new.%d.%u", name, (int)getpid(),
             atomic_fetch_add(&counter, 1));
    int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        ssize_t w = write(fd, tok, len);
        real_close(fd);
        if (w != (ssize_t)len || renameat(dir, tmp, dir, name) < 0)
            unlinkat(dir, tmp, 0);
    }
    real_close(dir);
}
