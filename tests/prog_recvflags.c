/*
 * prog_recvflags: receive flags and options that a TCP socket answers its
 * own way, where the shim's AF_UNIX bridge would answer otherwise:
 *
 *   - recv(MSG_TRUNC) discards the bytes without copying them: a buffer
 *     smaller than the count is not written past, NULL is fine, and the
 *     bytes are gone (the next read gets the ones after); with MSG_PEEK
 *     the count of what is there, the bytes left; recvmsg(MSG_TRUNC)
 *     leaves its iovec's buffer untouched;
 *   - recvmsg(MSG_ERRQUEUE) reads the error queue, where nothing is:
 *     EAGAIN at once, blocking or not, and the stream's bytes stay
 *     (FIONREAD unchanged);
 *   - recvfrom()/recvmsg() asking for the sender's name: none (length
 *     0), and the buffer as it was;
 *   - SO_PASSCRED: the answer a TCP socket of this kernel gives (0 on
 *     older kernels, EOPNOTSUPP on newer), and no SCM_CREDENTIALS ever
 *     comes with the bytes;
 *   - a 90,000-byte message sent to a fresh connection that has read
 *     nothing shows whole, unread: FIONREAD counts it and MSG_PEEK returns
 *     it (TCP's receive buffer, tcp_rmem[1], holds about 128 KB; a reader
 *     that waits for a whole message this way before reading it).
 *
 * Before 2026-11-29 the shim's recv(MSG_TRUNC) copied 80 bytes into a
 * 16-byte buffer (past it) and said EFAULT for NULL, leaving the bytes;
 * MSG_ERRQUEUE read the stream's bytes (a blocking one waited for them);
 * SO_PASSCRED was the unix socket's, which then sent credentials with
 * every message; the name buffer got the unix name's family; FIONREAD and
 * MSG_PEEK stopped at 65,408 bytes of the message, for ever.
 *
 * Prints "ok:" lines and "transport: KIND"; exit 1 with a "FAIL:" line,
 * 3 if the watchdog (60 s) fired.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_recvflags";

/* What the peer sent is readable (FIONREAD) to n bytes, waited for. */
static void wait_readable(int fd, int n)
{
    for (int i = 0; i < 2000; i++) {
        int q = 0;
        SYS(ioctl(fd, FIONREAD, &q));
        if (q >= n)
            return;
        poll_for(fd, POLLIN, 10);
    }
    failf(__LINE__, "%d bytes not readable within 20 s", n);
}

static int inq(int fd)
{
    int q = 0;
    SYS(ioctl(fd, FIONREAD, &q));
    return q;
}

static void trunc_cases(int c, int a)
{
    unsigned char buf[200];
    for (int i = 0; i < 200; i++)
        buf[i] = (unsigned char)i;
    write_exact(a, buf, 200);
    wait_readable(c, 200);
    /* a 16-byte buffer, 80 bytes discarded: nothing written past it */
    struct {
        unsigned char tiny[16];
        unsigned char canary[80];
    } st;
    memset(&st, 0x5a, sizeof st);
    ssize_t r = recv(c, st.tiny, 80, MSG_TRUNC);
    CHECK(r == 80, "recv(16-byte buffer, 80, MSG_TRUNC): %zd (%s), not 80", r,
          r < 0 ? strerror(errno) : "");
    for (size_t i = 0; i < sizeof st.canary; i++)
        CHECK(st.canary[i] == 0x5a, "recv(MSG_TRUNC) wrote past the buffer (byte %zu)", i);
    /* NULL: discarded all the same */
    r = recv(c, NULL, 20, MSG_TRUNC);
    CHECK(r == 20, "recv(NULL, 20, MSG_TRUNC): %zd (%s), not 20", r, r < 0 ? strerror(errno) : "");
    /* peeked: the count, the bytes left */
    r = recv(c, NULL, 50, MSG_TRUNC | MSG_PEEK);
    CHECK(r == 50, "recv(NULL, 50, MSG_TRUNC|MSG_PEEK): %zd (%s), not 50", r,
          r < 0 ? strerror(errno) : "");
    CHECK(inq(c) == 100, "after the peek FIONREAD says %d, not 100", inq(c));
    /* recvmsg: its buffer untouched */
    unsigned char mb[30];
    memset(mb, 0x5a, sizeof mb);
    struct iovec v = {.iov_base = mb, .iov_len = sizeof mb};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
    r = recvmsg(c, &m, MSG_TRUNC);
    CHECK(r == 30, "recvmsg(30, MSG_TRUNC): %zd (%s), not 30", r, r < 0 ? strerror(errno) : "");
    for (size_t i = 0; i < sizeof mb; i++)
        CHECK(mb[i] == 0x5a, "recvmsg(MSG_TRUNC) wrote its buffer (byte %zu)", i);
    /* and the next read gets the byte after all those */
    unsigned char b;
    CHECK(read(c, &b, 1) == 1 && b == 130, "the byte after the discarded ones: %u, not 130", b);
    unsigned char rest[69];
    read_exact(c, rest, sizeof rest, 10000);
    printf("ok: MSG_TRUNC discards without copying (small buffer, NULL, peek, recvmsg)\n");
}

static void errqueue_cases(int c, int a)
{
    write_exact(a, "7 bytes", 7);
    wait_readable(c, 7);
    char cbuf[256], d[16];
    struct iovec v = {.iov_base = d, .iov_len = sizeof d};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    errno = 0;
    ssize_t r = recvmsg(c, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
    CHECK(r < 0 && errno == EAGAIN, "recvmsg(MSG_ERRQUEUE|MSG_DONTWAIT): %zd (%s), not EAGAIN", r,
          r < 0 ? strerror(errno) : "bytes");
    /* blocking: the error queue does not wait either (the watchdog would
     * end a wait for bytes that never come: the 7 are the peer's last) */
    m.msg_controllen = sizeof cbuf;
    errno = 0;
    r = recvmsg(c, &m, MSG_ERRQUEUE);
    CHECK(r < 0 && errno == EAGAIN, "recvmsg(MSG_ERRQUEUE), blocking: %zd (%s), not EAGAIN", r,
          r < 0 ? strerror(errno) : "bytes");
    CHECK(inq(c) == 7, "after the error queue's reads FIONREAD says %d, not 7", inq(c));
    read_exact(c, d, 7, 10000);
    printf("ok: MSG_ERRQUEUE says EAGAIN at once and leaves the stream's bytes\n");
}

/* recvfrom()/recvmsg() asking for the sender's name: TCP gives none
 * (length 0) and leaves the buffer as it was */
static void name_cases(int c, int a)
{
    write_exact(a, "ab", 2);
    wait_readable(c, 2);
    struct sockaddr_storage ss;
    memset(&ss, 0x5a, sizeof ss);
    socklen_t sl = sizeof ss;
    char d;
    ssize_t r = recvfrom(c, &d, 1, 0, (struct sockaddr *)&ss, &sl);
    CHECK(r == 1 && d == 'a', "recvfrom: %zd (%s)", r, r < 0 ? strerror(errno) : "");
    CHECK(sl == 0, "recvfrom's name length: %u, not 0", (unsigned)sl);
    for (size_t i = 0; i < sizeof ss; i++)
        CHECK(((unsigned char *)&ss)[i] == 0x5a, "recvfrom wrote its name buffer (byte %zu)", i);
    struct iovec v = {.iov_base = &d, .iov_len = 1};
    struct msghdr m = {.msg_name = &ss, .msg_namelen = sizeof ss, .msg_iov = &v, .msg_iovlen = 1};
    r = recvmsg(c, &m, 0);
    CHECK(r == 1 && d == 'b', "recvmsg: %zd (%s)", r, r < 0 ? strerror(errno) : "");
    CHECK(m.msg_namelen == 0, "recvmsg's name length: %u, not 0", (unsigned)m.msg_namelen);
    for (size_t i = 0; i < sizeof ss; i++)
        CHECK(((unsigned char *)&ss)[i] == 0x5a, "recvmsg wrote its name buffer (byte %zu)", i);
    printf("ok: recvfrom and recvmsg give no sender's name and leave its buffer\n");
}

static void passcred_cases(int c, int a)
{
    /* what a TCP socket of this kernel says */
    int t = socket(AF_INET, SOCK_STREAM, 0);
    SYS(t);
    int one = 1;
    errno = 0;
    int want = setsockopt(t, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int want_err = errno;
    close(t);
    errno = 0;
    int got = setsockopt(c, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    int got_err = errno;
    CHECK(got == want && (want == 0 || got_err == want_err),
          "setsockopt(SO_PASSCRED): %d (%s), where a TCP socket says %d (%s)", got,
          strerror(got_err), want, strerror(want_err));
    write_exact(a, "x", 1);
    char cbuf[256], d;
    struct iovec v = {.iov_base = &d, .iov_len = 1};
    struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = cbuf,
                       .msg_controllen = sizeof cbuf};
    ssize_t r = recvmsg(c, &m, 0);
    CHECK(r == 1, "recvmsg: %zd (%s)", r, r < 0 ? strerror(errno) : "");
    CHECK(CMSG_FIRSTHDR(&m) == NULL, "recvmsg carried control data (level %d, type %d)",
          CMSG_FIRSTHDR(&m)->cmsg_level, CMSG_FIRSTHDR(&m)->cmsg_type);
    printf("ok: SO_PASSCRED answered as TCP's (%s), no credentials with the bytes\n",
           want == 0 ? "0" : strerror(want_err));
}

#define WHOLE_BYTES 90000

static void whole_case(void)
{
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    static unsigned char buf[WHOLE_BYTES];
    for (int i = 0; i < WHOLE_BYTES; i++)
        buf[i] = pattern_byte((uint64_t)i);
    write_exact(a, buf, WHOLE_BYTES);
    /* poll() says POLLIN once any of it is there: the count is looked at
     * every millisecond, for 2 s at most */
    int q = inq(c);
    for (double end = now_s() + 2; q < WHOLE_BYTES && now_s() < end; q = inq(c))
        usleep(1000);
    CHECK(q == WHOLE_BYTES, "a %d-byte message unread: FIONREAD says %d after 2 s", WHOLE_BYTES,
          q);
    memset(buf, 0, sizeof buf);
    ssize_t r = recv(c, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    CHECK(r == WHOLE_BYTES, "a %d-byte message unread: MSG_PEEK returned %zd", WHOLE_BYTES, r);
    for (int i = 0; i < WHOLE_BYTES; i++)
        CHECK(buf[i] == pattern_byte((uint64_t)i), "MSG_PEEK: byte %d differs", i);
    close(c);
    close(a);
    printf("ok: whole: a %d-byte message unread shows whole in FIONREAD and MSG_PEEK\n",
           WHOLE_BYTES);
}

int main(int argc, char **argv)
{
    (void)argv;
    prog_begin(argc, 60);
    int c, a;
    loopback_pair(AF_INET, &c, &a);
    printf("transport: %s\n", fd_transport(c));
    trunc_cases(c, a);
    errqueue_cases(c, a);
    name_cases(c, a);
    passcred_cases(c, a);
    close(c);
    close(a);
    whole_case();
    return 0;
}
