/* chatd: input: reading lines, nicknames, commands, broadcast, and the
 * writes that flush a client's queue. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chatd.h"

/* ---- input --------------------------------------------------------------- */

static bool nick_valid(const char *s, size_t n)
{
    if (n == 0 || n > CHAT_NICK_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

/* "guest<digits>" is how unnamed clients are called; nobody may take one. */
static bool nick_reserved(const char *s, size_t n)
{
    if (n <= 5 || strncasecmp(s, "guest", 5) != 0)
        return false;
    for (size_t i = 5; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool nick_taken(const struct client *self, const char *s)
{
    for (const struct client *c = S.head; c; c = c->next)
        if (c != self && !c->dead && c->state != CS_LEAVING && strcasecmp(c->nick, s) == 0)
            return true;
    return false;
}

static void cmd_nick(struct client *c, const char *arg, size_t n)
{
    char name[CHAT_NICK_MAX + 1];
    if (!nick_valid(arg, n)) {
        notice(c, false, "error: nick must be 1-%d of A-Z a-z 0-9 _ - .", CHAT_NICK_MAX);
        return;
    }
    memcpy(name, arg, n);
    name[n] = '\0';
    if (strcmp(name, c->nick) == 0) {
        notice(c, false, "you are now %s", name);
        return;
    }
    if (nick_reserved(name, n)) {
        notice(c, false, "error: nick %s is reserved", name);
        return;
    }
    if (nick_taken(c, name)) {
        notice(c, false, "error: nick %s is taken", name);
        return;
    }
    if (c->state == CS_ACTIVE)
        announce(c, "%s is now %s", c->nick, name);
    if (S.verbose)
        say("#%llu %s is now %s", (unsigned long long)c->id, c->nick, name);
    memcpy(c->nick, name, n + 1);
    notice(c, false, "you are now %s", name);
}

static void cmd_who(struct client *c)
{
    char buf[CHAT_TEXT_MAX];
    size_t len = (size_t)snprintf(buf, sizeof buf, "online (%u):", S.nactive);
    for (const struct client *o = S.head; o; o = o->next) {
        if (o->state != CS_ACTIVE || o->dead)
            continue;
        size_t n = strlen(o->nick);
        if (len + n + 8 >= sizeof buf) {
            memcpy(buf + len, " ...", 4);
            len += 4;
            break;
        }
        buf[len++] = ' ';
        memcpy(buf + len, o->nick, n);
        len += n;
    }
    buf[len] = '\0';
    if (S.nwaiting > 0)
        notice(c, false, "%s; %u waiting", buf, S.nwaiting);
    else
        notice(c, false, "%s", buf);
}

void broadcast(struct client *from, const char *text, size_t n)
{
    char line[CHAT_NICK_MAX + 2 + CHAT_TEXT_MAX + 1];
    size_t nl = strlen(from->nick);
    memcpy(line, from->nick, nl);
    line[nl] = ':';
    line[nl + 1] = ' ';
    memcpy(line + nl + 2, text, n);
    size_t len = nl + 2 + n;
    line[len++] = '\n';

    struct msg *m = calloc(1, sizeof *m);
    if (m == NULL)
        die("calloc");
    m->sender_id = from->id;
    m->sender_fd = from->fd;
    m->num = ++from->msgs;
    m->pending = 1;         /* held by this function until the loop is done */
    for (struct client *r = S.head; r; r = r->next) {
        if (r == from || r->state != CS_ACTIVE || r->dead || r->drop != DROP_NONE)
            continue;
        /* M counts every recipient it was meant for; one whose queue is full
         * is being dropped and counts as not delivered. */
        m->sent_to++;
        if (queue_bytes(r, line, len, false) == 0)
            track_push(r, m);
    }
    S.n_msgs++;
    if (--m->pending == 0)
        msg_done(m);
}

/* One complete line from c (newline removed). */
static void handle_line(struct client *c, char *s, size_t n)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    /* Control bytes (NUL, ESC, ...) become '?': receivers' terminals and
     * line parsers never see them; other bytes pass through untouched. */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            s[i] = '?';
    }
    if (n == 0)
        return;
    if (s[0] == '/' && !(n > 1 && s[1] == '/')) {
        size_t w = 1;
        while (w < n && s[w] != ' ')
            w++;
        size_t a = w;
        while (a < n && s[a] == ' ')
            a++;
        size_t an = n - a;
        while (an > 0 && s[a + an - 1] == ' ')
            an--;
        if (w == 5 && memcmp(s, "/nick", 5) == 0) {
            cmd_nick(c, s + a, an);
        } else if (w == 4 && memcmp(s, "/who", 4) == 0) {
            cmd_who(c);
        } else if (w == 5 && memcmp(s, "/quit", 5) == 0) {
            bool was_active = c->state == CS_ACTIVE;
            leave_chat(c, true);
            notice(c, true, "bye");
            if (was_active)
                announce(c, "%s left (%u online)", c->nick, S.nactive);
        } else if (w == 5 && memcmp(s, "/help", 5) == 0) {
            notice(c, false, "commands: /nick NAME, /who, /quit, /help; "
                             "a line starting // sends it with one / removed");
        } else {
            int wl = w > 32 ? 32 : (int)w;
            notice(c, false, "error: unknown command %.*s (try /help)", wl, s);
        }
        return;
    }
    if (s[0] == '/') {
        s++;
        n--;
    }
    if (c->state == CS_WAITING) {
        notice(c, false, "not sent: you are waiting (%ld ahead of you)", waiting_ahead(c));
        return;
    }
    broadcast(c, s, n);
}

/* Splits freshly read bytes into lines.  A line longer than CHAT_TEXT_MAX is
 * rejected whole with a notice; the partial line left at EOF is discarded by
 * leave_chat(). */
static void consume(struct client *c, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && c->state != CS_LEAVING && !c->dead) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (c->in_discard) {
            if (nl == NULL)
                return;
            c->in_discard = false;
            p = nl + 1;
            continue;
        }
        size_t take = (size_t)((nl ? nl : end) - p);
        if (c->in_len + take > CHAT_TEXT_MAX) {
            notice(c, false, "error: line too long (max %d bytes), discarded", CHAT_TEXT_MAX);
            c->in_len = 0;
            if (nl == NULL) {
                c->in_discard = true;
                return;
            }
            p = nl + 1;
            continue;
        }
        memcpy(c->in + c->in_len, p, take);
        c->in_len += take;
        if (nl == NULL)
            return;
        p = nl + 1;
        size_t len = c->in_len;
        c->in_len = 0;
        handle_line(c, c->in, len);
    }
}

void on_readable(struct client *c)
{
    char buf[CHAT_READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n > 0) {
        /* Leaving clients and everyone after the signal: read only to see
         * EOF (and so close without a reset); the bytes are not accepted. */
        if (c->state != CS_LEAVING && S.phase == PH_RUNNING)
            consume(c, buf, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        client_fail(c);
        return;
    }
    /* EOF: the client has left; flush what it is owed (it may only have
     * half-closed), then close. */
    c->read_eof = true;
    if (c->state == CS_ACTIVE) {
        leave_chat(c, true);
        announce(c, "%s left (%u online)", c->nick, S.nactive);
    } else if (c->state == CS_WAITING) {
        leave_chat(c, true);
    }
    if (S.verbose)
        say("#%llu %s: EOF", (unsigned long long)c->id, c->nick);
}

void flush_client(struct client *c)
{
    while (out_pending(c) && !c->dead) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->written += (uint64_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        client_fail(c);
        return;
    }
    c->out_off = c->out_len = 0;
}

/* A leaving client: SHUT_WR once its queue is out, close at the peer's EOF
 * or at its deadline. */
void service_leaving(struct client *c)
{
    if (c->dead || c->state != CS_LEAVING)
        return;
    if (!out_pending(c) && !c->shut_wr) {
        shutdown(c->fd, SHUT_WR);
        c->shut_wr = true;
    }
    if ((c->shut_wr && c->read_eof) || S.now >= c->leave_deadline)
        close_client(c, true);
}
