/*
 * prog_forge: a local attacker against the shim's unix bridges, and the
 * server it attacks (issue "harden", findings 1 and 2).
 *
 *   prog_forge serve PORT UNIXNAME SECS
 *       (run under the shim) listens on TCP 127.0.0.1:PORT and on a plain
 *       abstract unix socket @UNIXNAME; for SECS seconds accepts on both and
 *       prints, per connection, "accepted tcp accept=ADDR getpeername=ADDR"
 *       or "accepted unix family=F getpeername=ADDR", then each line it
 *       reads as "line(tcp): TEXT" or "line(unix): TEXT". Ends at a line
 *       "QUIT" or after SECS.
 *   prog_forge forge PORT FAKEADDR FAKEPORT
 *       finds every shim listener name with local port PORT (sock_diag, as
 *       ss -xl does), binds a name claiming to be an engine end whose peer
 *       is FAKEADDR:FAKEPORT (IPv4), connects, writes "FORGED", and reports
 *       "forge: closed" if the other side closes it within 5 s, "forge:
 *       open" if not.
 *   prog_forge plain UNIXNAME FAKEADDR FAKEPORT
 *       the same forged engine name, connecting to the application's own
 *       (non-rudp) unix listener @UNIXNAME.
 *   prog_forge client PORT TEXT
 *       (under the shim) connects to 127.0.0.1:PORT and writes TEXT + "\n".
 *   prog_forge rebind PORT READYFILE SECS
 *       finds the shim listener name for PORT, then binds and listens on
 *       that name the moment its owner is gone (the name is free when the
 *       last holder closes it), creates READYFILE, and for SECS seconds
 *       accepts and prints what each connection brings: "rebind: got N
 *       bytes: TEXT" or "rebind: got nothing". "rebind: accepted K" ends it.
 *   prog_forge squat PID PORT
 *       binds every listener name for 127.0.0.1:PORT and 0.0.0.0:PORT that
 *       a process PID could choose if names were built from public facts
 *       only (address, pid, small counters: ids 1..16 x counters 0..16, in
 *       the 77-byte layout of 8d193eb and, with the random part guessed as
 *       such a counter, in today's 85-byte layout), prints "squat: N names
 *       held", and holds them until its stdin closes (at most 60 s).
 *
 * The name layout is the one documented in shim/state/names.c: "\0rUdP", kind,
 * family, 2 pad bytes, local (port 2, addr 16, scope 4), peer (likewise),
 * slot 4, id 8, pid 4, then the nonce (8 bytes at 8d193eb, 16 now).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "progutil.h"

const char *prog_name = "prog_forge";

#define HDR 8                 /* "rUdP" kind family pad pad */
#define ADDR_LEN 22
#define OFF_LOCAL HDR
#define OFF_PEER (HDR + ADDR_LEN)
#define OFF_SLOT (HDR + 2 * ADDR_LEN)
#define OFF_ID (OFF_SLOT + 4)
#define OFF_PID (OFF_ID + 8)
#define OFF_NONCE (OFF_PID + 4)
#define LEN_OLD (OFF_NONCE + 8)  /* bytes after the leading NUL, 8d193eb */
#define LEN_NEW (OFF_NONCE + 16) /* today */

static socklen_t abstract(struct sockaddr_un *un, const uint8_t *name, size_t len)
{
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    un->sun_path[0] = 0;
    memcpy(un->sun_path + 1, name, len);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

static void addr_str(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char a[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)ss;
        inet_ntop(AF_INET, &in->sin_addr, a, sizeof a);
        snprintf(out, n, "%s:%u", a, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, a, sizeof a);
        snprintf(out, n, "[%s]:%u", a, ntohs(in6->sin6_port));
    } else if (ss->ss_family == AF_UNIX) {
        snprintf(out, n, "unix");
    } else {
        snprintf(out, n, "family-%d", ss->ss_family);
    }
}

/* ---- serve ---- */

static int serve(unsigned port, const char *uname, int secs)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    /* Non-blocking listeners, as a poll() server should have: a blocking
     * accept() after poll() waits, as Linux's does, when what poll() saw is
     * gone (here: the forged connection the shim refuses). */
    int t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    SYS(t);
    SYS(setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    SYS(bind(t, (struct sockaddr *)&ss, sl));
    if (listen(t, 16) < 0) {
        printf("serve: listen failed: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_un un;
    int u = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    SYS(u);
    SYS(bind(u, (struct sockaddr *)&un, abstract(&un, (const uint8_t *)uname, strlen(uname))));
    SYS(listen(u, 16));
    printf("serve: listening\n");
    struct pollfd p[34];
    const char *kind[34] = {"tcp", "unix"};
    int n = 2;
    p[0] = (struct pollfd){.fd = t, .events = POLLIN};
    p[1] = (struct pollfd){.fd = u, .events = POLLIN};
    double end = now_s() + secs;
    char buf[4096];
    while (now_s() < end) {
        int r = poll(p, (nfds_t)n, 200);
        if (r < 0 && errno == EINTR)
            continue;
        SYS(r);
        for (int i = 0; i < n && r > 0; i++) {
            if (!p[i].revents)
                continue;
            if (i < 2) {
                struct sockaddr_storage a, g;
                socklen_t al = sizeof a, gl = sizeof g;
                memset(&a, 0, sizeof a);
                memset(&g, 0, sizeof g);
                int c = accept(p[i].fd, (struct sockaddr *)&a, &al);
                if (c < 0)
                    continue; /* EAGAIN after a refused connection: fine */
                char as[128], gs[128];
                addr_str(&a, as, sizeof as);
                if (getpeername(c, (struct sockaddr *)&g, &gl) < 0)
                    snprintf(gs, sizeof gs, "error-%s", strerror(errno));
                else
                    addr_str(&g, gs, sizeof gs);
                if (i == 0)
                    printf("accepted tcp accept=%s getpeername=%s\n", as, gs);
                else
                    printf("accepted unix family=%s getpeername=%s\n",
                           g.ss_family == AF_UNIX ? "AF_UNIX" : fam_name(g.ss_family), gs);
                if (n < 34) {
                    kind[n] = kind[i];
                    p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
                } else
                    close(c);
                continue;
            }
            ssize_t m = read(p[i].fd, buf, sizeof buf - 1);
            if (m <= 0) {
                close(p[i].fd);
                kind[i] = kind[n - 1];
                p[i] = p[--n];
                i--;
                continue;
            }
            buf[m] = 0;
            for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
                printf("line(%s): %s\n", kind[i], line);
                if (strcmp(line, "QUIT") == 0)
                    return 0;
            }
        }
    }
    printf("serve: time is up\n");
    return 0;
}

/* ---- finding listener names (sock_diag, as ss -xl does) ---- */

typedef struct found {
    uint8_t name[128];
    size_t len;
} found;

/* Every listening abstract unix name that looks like the shim's, with local
 * port `port` (0: any). Returns how many (at most max). */
static int find_listeners(unsigned port, found *out, int max)
{
    int nl = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
    SYS(nl);
    struct {
        struct nlmsghdr h;
        struct unix_diag_req r;
    } req;
    memset(&req, 0, sizeof req);
    req.h.nlmsg_len = sizeof req;
    req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.r.sdiag_family = AF_UNIX;
    req.r.udiag_states = 1u << 10; /* TCP_LISTEN */
    req.r.udiag_show = UDIAG_SHOW_NAME;
    SYS(send(nl, &req, sizeof req, 0));
    int n = 0;
    static uint8_t buf[1 << 16];
    for (;;) {
        ssize_t len = recv(nl, buf, sizeof buf, 0);
        SYS(len);
        for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
                close(nl);
                return n;
            }
            struct unix_diag_msg *m = NLMSG_DATA(h);
            struct rtattr *a = (struct rtattr *)(m + 1);
            int alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
            for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                if (a->rta_type != UNIX_DIAG_NAME)
                    continue;
                const uint8_t *p = RTA_DATA(a);
                size_t pl = RTA_PAYLOAD(a);
                /* abstract: leading NUL, then "rUdP" and kind 'L' */
                if (pl < 1 + OFF_NONCE || p[0] != 0 || memcmp(p + 1, "rUdP", 4) != 0 ||
                    p[5] != 'L' || pl - 1 > sizeof out[0].name)
                    continue;
                uint16_t lp;
                memcpy(&lp, p + 1 + OFF_LOCAL, 2);
                if (port && ntohs(lp) != port)
                    continue;
                if (n < max) {
                    memcpy(out[n].name, p + 1, pl - 1);
                    out[n].len = pl - 1;
                    n++;
                }
            }
        }
    }
}

/* A name claiming to be an engine end, modelled on a listener's: same
 * layout and family, peer = FAKEADDR:FAKEPORT, fresh random tail. */
static void forge_name(found *f, const char *fake, unsigned fport)
{
    f->name[4] = 'E';
    f->name[5] = AF_INET;
    uint8_t *peer = f->name + OFF_PEER;
    memset(peer, 0, ADDR_LEN);
    uint16_t np = htons((uint16_t)fport);
    memcpy(peer, &np, 2);
    CHECK(inet_pton(AF_INET, fake, peer + 2) == 1, "bad address %s", fake);
    /* the local address: the listener's, as a real engine end has it */
    if (f->len > OFF_NONCE)
        CHECK(getrandom(f->name + OFF_NONCE, f->len - OFF_NONCE, 0) > 0, "getrandom");
}

/* Connects fd to the abstract name, writes FORGED, and waits 5 s for the
 * other side to close. */
static void forge_connect(found *target, const found *as)
{
    struct sockaddr_un me, to;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SYS(s);
    if (bind(s, (struct sockaddr *)&me, abstract(&me, as->name, as->len)) < 0) {
        printf("forge: bind failed: %s\n", strerror(errno));
        close(s);
        return;
    }
    if (connect(s, (struct sockaddr *)&to, abstract(&to, target->name, target->len)) < 0) {
        printf("forge: connect failed: %s\n", strerror(errno));
        close(s);
        return;
    }
    printf("forge: connected\n");
    ssize_t w = write(s, "FORGED\n", 7);
    (void)w;
    struct pollfd p = {.fd = s, .events = POLLIN};
    int r = poll(&p, 1, 5000);
    char c;
    if (r == 1 && read(s, &c, 1) <= 0)
        printf("forge: closed\n");
    else
        printf("forge: open\n");
    close(s);
}

static int forge(unsigned port, const char *fake, unsigned fport)
{
    found f[16];
    int n = find_listeners(port, f, 16);
    printf("forge: %d listener name(s) for port %u\n", n, port);
    if (!n)
        return 1;
    for (int i = 0; i < n; i++) {
        found as = f[i];
        forge_name(&as, fake, fport);
        forge_connect(&f[i], &as);
    }
    return 0;
}

static int plain(const char *uname, const char *fake, unsigned fport)
{
    /* Any engine-looking name will do: take a listener's if there is one,
     * else build one from scratch. */
    found as;
    memset(&as, 0, sizeof as);
    if (find_listeners(0, &as, 1) == 0) {
        memcpy(as.name, "rUdPE", 5);
        as.len = LEN_NEW;
    }
    forge_name(&as, fake, fport);
    found target;
    memset(&target, 0, sizeof target);
    target.len = strlen(uname);
    memcpy(target.name, uname, target.len);
    forge_connect(&target, &as);
    return 0;
}

static int client(unsigned port, const char *text)
{
    struct sockaddr_storage ss;
    socklen_t sl = loopback(AF_INET, port, &ss);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    SYS(s);
    SYS(connect(s, (struct sockaddr *)&ss, sl));
    char line[512];
    int n = snprintf(line, sizeof line, "%s\n", text);
    CHECK(write(s, line, (size_t)n) == n, "write: %s", strerror(errno));
    /* a clean close after the line: the server reads it, then EOF */
    SYS(shutdown(s, SHUT_WR));
    char c;
    while (read(s, &c, 1) > 0)
        ;
    close(s);
    printf("client: sent %s\n", text);
    return 0;
}

/* ---- rebind ---- */

static int rebind(unsigned port, const char *ready, int secs)
{
    found f;
    CHECK(find_listeners(port, &f, 1) == 1, "no listener name for port %u", port);
    printf("rebind: waiting for the name to be free\n");
    struct sockaddr_un un;
    socklen_t ul = abstract(&un, f.name, f.len);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    SYS(s);
    double end = now_s() + secs;
    while (bind(s, (struct sockaddr *)&un, ul) < 0) {
        CHECK(errno == EADDRINUSE, "bind: %s", strerror(errno));
        CHECK(now_s() < end, "the name never became free");
        usleep(200);
    }
    SYS(listen(s, 16));
    int fd = open(ready, O_CREAT | O_WRONLY, 0644);
    SYS(fd);
    close(fd);
    printf("rebind: bound the listener's name\n");
    int accepted = 0;
    while (now_s() < end) {
        struct pollfd p = {.fd = s, .events = POLLIN};
        if (poll(&p, 1, 100) != 1)
            continue;
        int c = accept(s, NULL, NULL);
        if (c < 0)
            continue;
        accepted++;
        char buf[256];
        size_t got = 0;
        struct pollfd q = {.fd = c, .events = POLLIN};
        while (got < sizeof buf - 1 && poll(&q, 1, 2000) == 1) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        buf[got] = 0;
        if (got)
            printf("rebind: got %zu bytes: %s\n", got, buf);
        else
            printf("rebind: got nothing\n");
        close(c);
    }
    printf("rebind: accepted %d\n", accepted);
    return 0;
}

/* ---- squat ---- */

static int squat(int pid, unsigned port)
{
    static int fds[4096];
    int n = 0;
    const char *addrs[] = {"127.0.0.1", "0.0.0.0"};
    for (int a = 0; a < 2; a++)
        for (uint64_t id = 1; id <= 16; id++)
            for (uint64_t ctr = 0; ctr <= 16; ctr++)
                for (int layout = 0; layout < 2; layout++) {
                    uint8_t name[128];
                    memset(name, 0, sizeof name);
                    memcpy(name, "rUdP", 4);
                    name[4] = 'L';
                    name[5] = AF_INET;
                    uint16_t np = htons((uint16_t)port);
                    memcpy(name + OFF_LOCAL, &np, 2);
                    inet_pton(AF_INET, addrs[a], name + OFF_LOCAL + 2);
                    uint32_t slot = UINT32_MAX;
                    memcpy(name + OFF_SLOT, &slot, 4);
                    memcpy(name + OFF_ID, &id, 8);
                    int32_t p32 = pid;
                    memcpy(name + OFF_PID, &p32, 4);
                    memcpy(name + OFF_NONCE, &ctr, 8); /* the rest: zero */
                    struct sockaddr_un un;
                    int s = socket(AF_UNIX, SOCK_STREAM, 0);
                    SYS(s);
                    if (bind(s, (struct sockaddr *)&un,
                             abstract(&un, name, layout ? LEN_NEW : LEN_OLD)) == 0 &&
                        listen(s, 1) == 0 && n < 4096)
                        fds[n++] = s;
                    else
                        close(s);
                }
    printf("squat: %d names held\n", n);
    struct pollfd p = {.fd = 0, .events = POLLIN};
    poll(&p, 1, 60000);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    watchdog(90);
    if (argc == 5 && strcmp(argv[1], "serve") == 0)
        return serve((unsigned)atoi(argv[2]), argv[3], atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "forge") == 0)
        return forge((unsigned)atoi(argv[2]), argv[3], (unsigned)atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "plain") == 0)
        return plain(argv[2], argv[3], (unsigned)atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "client") == 0)
        return client((unsigned)atoi(argv[2]), argv[3]);
    if (argc == 5 && strcmp(argv[1], "rebind") == 0)
        return rebind((unsigned)atoi(argv[2]), argv[3], atoi(argv[4]));
    if (argc == 4 && strcmp(argv[1], "squat") == 0)
        return squat(atoi(argv[2]), (unsigned)atoi(argv[3]));
    fprintf(stderr, "usage: prog_forge serve PORT UNIXNAME SECS | forge PORT FAKEADDR FAKEPORT |\n"
                    "       plain UNIXNAME FAKEADDR FAKEPORT | client PORT TEXT | squat PID PORT |\n"
                    "       rebind PORT READYFILE SECS\n");
    return 2;
}
