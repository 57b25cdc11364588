/* lib_sim.c: the simulated network; see lib_sim.h. */
#include "lib_sim.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct sim_dgram {
    rudp_time at;
    uint64_t seq;
    int from, to;
    uint32_t sock; /* the receiver's socket (sim_move_port) */
    const rudp_addr *dst; /* sent to a second address of the receiver's (sim_alt_path) */
    rudp_addr src;
    size_t len;
    uint8_t data[];
};

uint64_t sim_rand(sim *s)
{
    uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sim_rand01(sim *s)
{
    return (double)(sim_rand(s) >> 11) / (double)(1ull << 53);
}

/* ---- event heap ordered by (time, sequence) ---- */

static int before(const sim_dgram *a, const sim_dgram *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(sim *s, sim_dgram *d)
{
    if (s->heap_n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 256;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
    }
    size_t i = s->heap_n++;
    while (i && before(d, s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = d;
}

static sim_dgram *heap_pop(sim *s)
{
    sim_dgram *top = s->heap[0], *last = s->heap[--s->heap_n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && before(s->heap[c + 1], s->heap[c]))
            c++;
        if (!before(s->heap[c], last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->heap_n)
        s->heap[i] = last;
    return top;
}

/* ---- links ---- */

static int find_ep(const sim *s, const rudp_addr *a)
{
    for (int i = 0; i < s->nep; i++)
        if (memcmp(&s->ep[i].addr, a, sizeof *a) == 0)
            return i;
    return -1;
}

static void schedule(sim *s, int from, int to, const rudp_addr *src, const uint8_t *buf,
                     size_t len, rudp_time at)
{
    sim_dgram *d = malloc(sizeof *d + len);
    d->at = at;
    d->seq = s->seq++;
    d->from = from;
    d->to = to;
    d->src = *src;
    d->sock = s->dst_sock ? s->dst_sock : 1;
    d->dst = s->alt_dst;
    d->len = len;
    memcpy(d->data, buf, len);
    heap_push(s, d);
}

static void link_deliver(sim *s, int from, int to, const uint8_t *buf, size_t len);

/* The link a datagram from `from` to `to` takes: the alternate path's
 * while one is being sent on it (ep_send), else the endpoints' own. */
static sim_link *link_of(sim *s, int from, int to)
{
    return s->alt_link ? s->alt_link : &s->link[from][to];
}

static void link_send(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    sim_link *l = link_of(s, from, to);
    l->sent++;
    if (s->tap)
        s->tap(s, from, to, buf, len);
    uint8_t *copy = NULL;
    if (s->mutate) {
        copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        s->mutate(s, from, to, copy, len);
        buf = copy;
    }
    if (s->drop && s->drop(s, from, to, buf, len))
        l->dropped++;
    else
        link_deliver(s, from, to, buf, len);
    free(copy);
}

static void link_deliver(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    sim_link *l = link_of(s, from, to);
    if (s->port_old_gone && from == s->port_ep && s->src_sock == 1) {
        s->gone_dgrams++; /* from the port given up: nobody hears it */
        return;
    }
    if (getenv("SIM_PRINT_PKT") && len > 3 && (buf[3] & 15) != 4)
        fprintf(stderr, "%.3f %d->%d type %d len %zu\n", (double)s->now / 1e9, from, to, buf[3] & 15, len);
    if (l->cut_at && s->now >= l->cut_at && (!l->cut_until || s->now < l->cut_until)) {
        l->dropped++;
        return;
    }
    if (l->mtu && len > l->mtu) {
        l->dropped++;
        l->too_big++;
        return;
    }
    /* Gilbert-Elliott state moves once per datagram. */
    if (l->ge_p > 0) {
        if (!l->ge_bad && sim_rand01(s) < l->ge_p)
            l->ge_bad = 1;
        else if (l->ge_bad && sim_rand01(s) < l->ge_r)
            l->ge_bad = 0;
    }
    if (l->ge_bad || (l->loss > 0 && sim_rand01(s) < l->loss)) {
        l->dropped++;
        return;
    }
    rudp_time depart = s->now;
    if (l->rate_bps) {
        rudp_time start = l->busy_until > s->now ? l->busy_until : s->now;
        uint64_t queued = (uint64_t)((start - s->now) * (double)l->rate_bps / 8e9);
        if (l->queue_bytes && queued + len > l->queue_bytes) {
            l->dropped++;
            return;
        }
        rudp_time tx = (rudp_time)((double)len * 8e9 / (double)l->rate_bps);
        l->busy_until = start + tx;
        depart = l->busy_until;
    }
    rudp_time at = depart + l->delay;
    if (l->jitter)
        at += sim_rand(s) % l->jitter;
    if (l->reorder > 0 && sim_rand01(s) < l->reorder) {
        at += l->reorder_extra ? l->reorder_extra : l->delay + 1;
        l->reordered++;
    } else {
        if (at < l->last_arrival)
            at = l->last_arrival; /* jitter alone keeps order */
        l->last_arrival = at;
    }
    rudp_addr src = s->ep[from].addr;
    if (s->port_sock && from == s->port_ep && s->src_sock == s->port_sock)
        src.port = s->port_new;
    if (s->alt_src)
        src = *s->alt_src;
    schedule(s, from, to, &src, buf, len, at);
    if (l->dup > 0 && sim_rand01(s) < l->dup) {
        l->duplicated++;
        schedule(s, from, to, &src, buf, len, at + 1 + sim_rand(s) % RUDP_MS(5));
    }
}

static int same_ip(const rudp_addr *a, const rudp_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, sizeof a->ip) == 0;
}

/* Where endpoints of odd index have their contexts build DATA packets
 * (rudp_ctx_ops' tx_room), as the shim has them built in its batch: so
 * every test of two endpoints runs both ways of building one. One room
 * serves them all: a packet is sent before another is built (delivery is
 * scheduled, never nested). */
static uint8_t sim_room[65536];

static uint8_t *ep_room(void *user, size_t len)
{
    (void)user;
    if (len > sizeof sim_room)
        return NULL;
    memset(sim_room, 0xa5, len); /* no stale bytes to rely on */
    return sim_room;
}

static void ep_send_from(void *user, uint32_t sock, const rudp_addr *peer, const rudp_addr *local,
                         uint64_t tag, const uint8_t *buf, size_t len)
{
    sim_ep *e = user;
    sim *s = e->owner;
    (void)tag;
    if (buf == sim_room)
        e->sent_in_room++;
    int to = find_ep(s, peer);
    uint32_t dst = 1;
    /* Which path: a server's second address first (from it, else to it),
     * then a client's second socket (from it, else to it). */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->nalt; i++) {
            struct sim_alt *a = &s->alt[i];
            if (a->by_local != !pass)
                continue;
            if (a->ep == e->idx &&
                (a->by_local ? local && same_ip(local, &a->addr) : sock == a->sock)) {
                if (!s->alt_link)
                    s->alt_link = &a->out;
                s->alt_src = &a->addr; /* sent from it, whichever path it takes */
            } else if (memcmp(peer, &a->addr, sizeof *peer) == 0 && !s->alt_link) {
                s->alt_link = &a->in;
            }
        }
    }
    for (int i = 0; i < s->nalt && to < 0; i++) {
        struct sim_alt *a = &s->alt[i];
        if (memcmp(peer, &a->addr, sizeof *peer) == 0) {
            to = a->ep;
            dst = a->sock;
            s->alt_dst = &a->addr;
        }
    }
    if (to < 0 && s->port_sock) {
        rudp_addr a = *peer;
        a.port = s->ep[s->port_ep].addr.port;
        if (peer->port == s->port_new && find_ep(s, &a) == s->port_ep) {
            to = s->port_ep;
            dst = s->port_sock;
        }
    }
    if (to < 0) {
        s->void_dgrams++; /* a spoofed source's reply goes nowhere */
        s->void_bytes += len;
        s->alt_link = NULL;
        s->alt_src = NULL;
        return;
    }
    s->src_sock = sock;
    s->dst_sock = dst;
    link_send(s, e->idx, to, buf, len);
    s->src_sock = s->dst_sock = 0;
    s->alt_link = NULL;
    s->alt_src = s->alt_dst = NULL;
}

static void ep_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    ep_send_from(user, sock, peer, NULL, 0, buf, len);
}

static void ep_freed(void *user, uint32_t sock)
{
    sim_ep *e = user;
    (void)sock;
    e->conns_freed++;
}

static void ep_log(void *user, int level, const char *msg)
{
    sim_ep *e = user;
    (void)level;
    if (getenv("SIM_PRINT"))
        fprintf(stderr, "ep%d %.3f: %s\n", e->idx, (double)e->owner->now / 1e9, msg);
    /* "conn <id> A -> B (why)": keep "A -> B" */
    const char *p = strchr(msg, ' ');
    if (strncmp(msg, "conn ", 5) != 0) {
        if (e->nlines < SIM_MAX_LINES)
            snprintf(e->lines[e->nlines++], sizeof e->lines[0], "%s", msg);
        return;
    }
    if (!p || !(p = strchr(p + 1, ' ')))
        return;
    if (e->nlog < SIM_MAX_LOG) {
        snprintf(e->log[e->nlog], sizeof e->log[0], "%s", p + 1);
        char *paren = strstr(e->log[e->nlog], " (");
        if (paren)
            *paren = 0;
        e->nlog++;
    }
}

/* Endpoint i's callbacks: odd ones offer the room (ep_room). */
static const rudp_ctx_ops *ep_ops(int i)
{
    static const rudp_ctx_ops ops = {
        .send = ep_send, .send_from = ep_send_from, .log = ep_log, .conn_freed = ep_freed};
    static const rudp_ctx_ops room_ops = {.send = ep_send,
                                          .send_from = ep_send_from,
                                          .log = ep_log,
                                          .conn_freed = ep_freed,
                                          .tx_room = ep_room};
    return i % 2 ? &room_ops : &ops;
}

void sim_init(sim *s, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 0x2545f4914f6cdd1dull + 1;
    s->now = RUDP_SEC(1000); /* not zero: catches code that treats 0 as "unset" */
}

void sim_free(sim *s)
{
    for (int i = 0; i < s->nep; i++) {
        rudp_ctx_free(s->ep[i].ctx);
        free(s->ep[i].cap);
    }
    while (s->heap_n)
        free(heap_pop(s));
    free(s->heap);
}

int sim_add_ep(sim *s, const rudp_config *cfg)
{
    return sim_add_ep_mem(s, cfg, NULL);
}

int sim_add_ep_mem(sim *s, const rudp_config *cfg, const rudp_mem *mem)
{
    int i = s->nep++;
    sim_ep *e = &s->ep[i];
    e->owner = s;
    e->mem = mem;
    e->idx = i;
    e->addr.family = 2; /* AF_INET */
    e->addr.port = (uint16_t)(1000 + i);
    e->addr.ip[0] = 10;
    e->addr.ip[3] = (uint8_t)(i + 1);
    e->deadline = RUDP_TIME_NEVER;
    uint8_t seed[32];
    for (int k = 0; k < 32; k++)
        seed[k] = (uint8_t)sim_rand(s);
    int err = rudp_ctx_new(ep_ops(i), e, seed, cfg, mem, &e->ctx);
    (void)err;
    return i;
}

size_t sim_data_hdr(uint8_t *buf, uint64_t dcid, uint32_t pn)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_DATA;
    h.dcid = dcid;
    h.pn = pn;
    int n = rudp__wire_hdr_encode(buf, RUDP_WIRE_SHORT_HDR, &h);
    assert(n == RUDP_WIRE_SHORT_HDR);
    return (size_t)n;
}

size_t sim_make_syn(uint8_t *buf, uint64_t scid, const uint8_t *tok, size_t toklen)
{
    rudp_hdr h;
    memset(&h, 0, sizeof h);
    h.type = RUDP_PKT_SYN;
    h.scid = scid;
    h.token_len = (uint8_t)toklen;
    if (toklen)
        memcpy(h.token, tok, toklen);
    h.max_data = 1 << 20;
    h.max_datagram = 1400;
    int n = rudp__wire_hdr_encode(buf, RUDP_MIN_SYN_SIZE, &h);
    assert(n > 0);
    memset(buf + n, 0, RUDP_MIN_SYN_SIZE - (size_t)n);
    return RUDP_MIN_SYN_SIZE;
}

int sim_count_type(const sim_ep *e, int type, size_t *bytes)
{
    int n = 0;
    if (bytes)
        *bytes = 0;
    for (int i = 0; i < e->ncap; i++) {
        rudp_hdr h;
        if (rudp__wire_hdr_decode(e->cap[i].data, e->cap[i].len, &h) > 0 && h.type == type) {
            n++;
            if (bytes)
                *bytes += e->cap[i].len;
        }
    }
    return n;
}

int sim_last_of_type(const sim_ep *e, int type, rudp_hdr *out)
{
    for (int i = e->ncap; i-- > 0;)
        if (rudp__wire_hdr_decode(e->cap[i].data, e->cap[i].len, out) > 0 && out->type == type)
            return 1;
    return 0;
}

void sim_set_key(sim *s, int ep, const uint8_t key[RUDP_KEY_LEN])
{
    sim_ep *e = &s->ep[ep];
    uint8_t seed[32];
    for (int k = 0; k < 32; k++)
        seed[k] = (uint8_t)sim_rand(s);
    memmove(e->key, key, RUDP_KEY_LEN);
    e->keyed = 1;
    int err = rudp_ctx_set_key(e->ctx, e->key, seed);
    (void)err;
    assert(err == 0);
}

void sim_set_aead(sim *s, int ep, const rudp_aead_backend *b)
{
    s->ep[ep].aead = b;
    rudp_ctx_set_aead(s->ep[ep].ctx, b);
}

void sim_set_reset_id(sim *s, int ep, const char *id)
{
    sim_ep *e = &s->ep[ep];
    if (id != e->reset_id) /* sim_restart passes its own copy */
        snprintf(e->reset_id, sizeof e->reset_id, "%s", id);
    if (*id) {
        int err = rudp_ctx_set_reset_id(e->ctx, id, strlen(id));
        (void)err;
        assert(err == 0);
    }
}

int sim_add_raw_ep(sim *s)
{
    int i = s->nep++;
    sim_ep *e = &s->ep[i];
    e->owner = s;
    e->idx = i;
    e->raw = 1;
    e->addr.family = 2;
    e->addr.port = (uint16_t)(1000 + i);
    e->addr.ip[0] = 10;
    e->addr.ip[3] = (uint8_t)(i + 1);
    e->deadline = RUDP_TIME_NEVER;
    e->cap = calloc(SIM_MAX_CAPTURE, sizeof *e->cap);
    return i;
}

void sim_raw_send(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    link_send(s, from, to, buf, len);
}

void sim_restart(sim *s, int ep, const rudp_config *cfg)
{
    sim_ep *e = &s->ep[ep];
    rudp_ctx_free(e->ctx);
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep && !s->apps[i].released) {
            s->apps[i].released = 1; /* died with the process */
            s->apps[i].conn = NULL;
        }
    uint8_t seed[32];
    for (int k = 0; k < 32; k++)
        seed[k] = (uint8_t)sim_rand(s);
    rudp_ctx_new(ep_ops(e->idx), e, seed, cfg, e->mem, &e->ctx);
    e->deadline = RUDP_TIME_NEVER;
    if (e->aead)
        rudp_ctx_set_aead(e->ctx, e->aead);
    if (e->keyed)
        sim_set_key(s, ep, e->key);
    if (e->keyed && e->reset_id[0])
        sim_set_reset_id(s, ep, e->reset_id);
    if (e->is_server) {
        rudp_listener *l;
        rudp_listen(e->ctx, 1, NULL, 16, &l);
        e->listener = l;
    }
}

void sim_log_transitions(sim *s, int ep)
{
    rudp_ctx_set_log_level(s->ep[ep].ctx, RUDP_LOG_DEBUG);
}

static sim_app *new_app(sim *s, int ep, const sim_app *tpl)
{
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        if (!s->apps[i].used) {
            s->apps[i] = *tpl;
            s->apps[i].used = 1;
            s->apps[i].ep = ep;
            return &s->apps[i];
        }
    }
    return NULL;
}

void sim_listen(sim *s, int ep, const sim_app *tpl, unsigned backlog)
{
    rudp_listener *l;
    s->ep[ep].is_server = 1;
    s->ep[ep].server_tpl = *tpl;
    rudp_listen(s->ep[ep].ctx, 1, NULL, backlog, &l);
    s->ep[ep].listener = l;
}

void sim_listen_zero_rtt(sim *s, int ep, int on)
{
    rudp_listener_set_zero_rtt(s->ep[ep].listener, on);
}

static void app_write(sim *s, sim_app *a);

int sim_connect_token(sim *s, int from, int to, const sim_app *tpl, const uint8_t *token,
                      size_t token_len)
{
    sim_app *a = new_app(s, from, tpl);
    int err = rudp_connect_token(s->ep[from].ctx, s->now, 1, &s->ep[to].addr, NULL, token,
                                 token_len, RUDP_MS(10), &a->conn);
    if (err) {
        a->error = err;
        a->used = 0;
        return -1;
    }
    rudp_conn_set_user(a->conn, a);
    app_write(s, a);
    return (int)(a - s->apps);
}

int sim_connect(sim *s, int from, int to, const sim_app *tpl, const rudp_config *cfg)
{
    sim_app *a = new_app(s, from, tpl);
    int err = rudp_connect(s->ep[from].ctx, s->now, 1, &s->ep[to].addr, cfg, &a->conn);
    if (err) {
        a->error = err;
        a->used = 0;
        return -1;
    }
    rudp_conn_set_user(a->conn, a);
    return (int)(a - s->apps);
}

void sim_move_port(sim *s, int ep, uint32_t sock, uint16_t port)
{
    s->port_ep = ep;
    s->port_sock = sock;
    s->port_new = port;
}

void sim_inject(sim *s, const rudp_addr *from, int to, const uint8_t *buf, size_t len)
{
    schedule(s, -1, to, from, buf, len, s->now);
}

sim_flip_state sim_flip;

static uint64_t flip_rand(void)
{
    sim_flip.rng ^= sim_flip.rng << 13;
    sim_flip.rng ^= sim_flip.rng >> 7;
    sim_flip.rng ^= sim_flip.rng << 17;
    return sim_flip.rng;
}

void sim_flip_tap(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    sim_flip_state *f = &sim_flip;
    if (from != f->src || to != f->dst || s->now < f->from || s->now >= f->until || len <= 12)
        return;
    uint8_t c[1500];
    memcpy(c, buf, len);
    int k = 1 + (int)(flip_rand() % 4);
    for (int i = 0; i < k; i++) {
        size_t at = 12 + (size_t)(flip_rand() % (len - 12));
        c[at] ^= (uint8_t)(1u << (flip_rand() % 8));
    }
    if (flip_rand() % 2) /* half of them: a bit of the packet number's low byte */
        c[15] ^= (uint8_t)(1u << (flip_rand() % 8));
    f->n++;
    f->bytes += len;
    sim_inject_at(s, &f->addr, to, c, len, s->now + f->lag);
}

int sim_alt_path(sim *s, int ep, uint32_t sock, const rudp_addr *addr)
{
    if (s->nalt == 2)
        return -1;
    struct sim_alt *a = &s->alt[s->nalt];
    memset(a, 0, sizeof *a);
    a->on = 1;
    a->ep = ep;
    a->sock = sock;
    a->by_local = sock == 1;
    a->addr = *addr;
    return s->nalt++;
}

void sim_inject_at(sim *s, const rudp_addr *from, int to, const uint8_t *buf, size_t len,
                   rudp_time at)
{
    schedule(s, -1, to, from, buf, len, at < s->now ? s->now : at);
}

/* ---- scripted applications ---- */

static void app_write(sim *s, sim_app *a)
{
    uint8_t buf[16384];
    while (!a->released && a->sent < a->to_send && !a->shut && !a->error) {
        size_t n = sizeof buf;
        if (a->to_send - a->sent < n)
            n = (size_t)(a->to_send - a->sent);
        if (a->bulk)
            memset(buf, 0, n);
        else
            for (size_t i = 0; i < n; i++)
                buf[i] = sim_pattern(a->send_seed, a->sent + i);
        ssize_t w = rudp_conn_write(a->conn, s->now, buf, n);
        if (w <= 0)
            break;
        a->sent += (uint64_t)w;
        if (a->abort_after && a->sent >= (uint64_t)a->abort_after) {
            rudp_conn_abort(a->conn, s->now);
            return;
        }
    }
    if (!a->released && a->sent == a->to_send && !a->shut && !a->error && !a->no_shutdown) {
        a->shut = 1;
        rudp_conn_shutdown(a->conn, s->now);
    }
}

static void app_read(sim *s, sim_app *a)
{
    uint8_t buf[16384];
    if (a->paused)
        return;
    for (;;) {
        ssize_t r = rudp_conn_read(a->conn, s->now, buf, sizeof buf);
        if (r > 0) {
            for (ssize_t i = 0; !a->bulk && i < r; i++)
                if (buf[i] != sim_pattern(a->recv_seed, a->received + (uint64_t)i))
                    a->corrupt = 1;
            a->received += (uint64_t)r;
            continue;
        }
        if (r == 0 && !a->eof) {
            a->eof = 1;
            a->eof_time = s->now;
        } else if (r < 0 && r != -EAGAIN && !a->error) {
            a->error = (int)r;
            a->error_time = s->now;
            a->cause = (int)rudp_conn_cause(a->conn);
        }
        return;
    }
}

static void app_maybe_release(sim *s, sim_app *a)
{
    if (a->released || a->no_release)
        return;
    int done_writing = a->shut || a->error;
    int done_reading = a->eof || a->error;
    if (done_writing && done_reading) {
        rudp_conn_release(a->conn, s->now);
        a->released = 1;
        a->conn = NULL;
    }
}

static void handle_events(sim *s, int ep)
{
    rudp_conn *c;
    unsigned ev;
    while (rudp_ctx_next_event(s->ep[ep].ctx, &c, &ev)) {
        sim_app *a = rudp_conn_user(c);
        if (ev & RUDP_EV_ACCEPT) {
            a = new_app(s, ep, &s->ep[ep].server_tpl);
            if (!a) {
                rudp_conn_abort(c, s->now);
                rudp_conn_release(c, s->now);
                continue;
            }
            a->conn = c;
            rudp_conn_set_user(c, a);
            if (!s->ep[ep].accepted_by_hand)
                rudp_conn_accepted(c, s->now); /* in the app's queue at once */
        }
        if (!a)
            continue;
        a->events |= ev;
        if (ev & (RUDP_EV_ESTABLISHED | RUDP_EV_ACCEPT))
            a->established = 1;
        if (ev & RUDP_EV_ERROR) {
            if (!a->error) {
                a->error = rudp_conn_error(c);
                a->error_time = s->now;
                a->cause = (int)rudp_conn_cause(c);
            }
        }
        if (ev & RUDP_EV_CLOSED)
            a->closed = 1;
        app_read(s, a);
        app_write(s, a);
        app_maybe_release(s, a);
    }
}

void sim_poke_apps(sim *s)
{
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        sim_app *a = &s->apps[i];
        if (!a->used || a->released || !a->conn)
            continue;
        app_read(s, a);
        app_write(s, a);
        app_maybe_release(s, a);
    }
}

static int all_done(const sim *s)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && !s->apps[i].released && !s->apps[i].no_release)
            return 0;
    for (int i = 0; i < s->nep; i++)
        if (!s->ep[i].raw && rudp_ctx_conn_count(s->ep[i].ctx) != 0)
            return 0;
    return 1;
}

static void run_moves(sim *s);

static void step(sim *s)
{
    s->steps++;
    run_moves(s);
    while (s->heap_n && s->heap[0]->at <= s->now) {
        sim_dgram *d = heap_pop(s);
        sim_ep *e = &s->ep[d->to];
        if (e->raw) {
            if (e->ncap < SIM_MAX_CAPTURE && d->len <= sizeof e->cap[0].data) {
                sim_capture *c = &e->cap[e->ncap++];
                c->at = s->now;
                c->from = d->src;
                c->len = d->len;
                memcpy(c->data, d->data, d->len);
            }
        } else if (s->port_sock && d->to == s->port_ep && d->sock == 1) {
            s->gone_dgrams++; /* the old port is the application's now */
        } else if (!e->down) {
            const rudp_addr *local = d->dst ? d->dst : &e->addr;
            rudp_ctx_input(e->ctx, s->now, d->sock, local, &d->src, d->data, d->len);
        }
        free(d);
    }
    for (int i = 0; i < s->nep; i++) {
        if (s->ep[i].down || s->ep[i].raw)
            continue;
        /* Apps may write after events; process until quiet. */
        for (int round = 0; round < 4; round++) {
            s->ep[i].deadline = rudp_ctx_process(s->ep[i].ctx, s->now);
            handle_events(s, i);
        }
        s->ep[i].deadline = rudp_ctx_process(s->ep[i].ctx, s->now);
    }
}

void sim_move(sim *s, int ep, int kind)
{
    sim_ep *e = &s->ep[ep];
    e->moves++;
    if (kind == SIM_MOVE_SERVER_IP) {
        e->addr.ip[2] = (uint8_t)(100 + e->moves);
        for (int i = 0; i < SIM_MAX_APPS; i++) {
            sim_app *a = &s->apps[i];
            if (a->used && a->ep == ep && a->conn && !a->released)
                rudp_conn_move_local(a->conn, s->now, &e->addr);
        }
        return;
    }
    e->addr.port = (uint16_t)(20000 + 97 * e->moves + ep);
    if (kind != SIM_MOVE_REBIND)
        return;
    e->addr.ip[2] = (uint8_t)e->moves;
    for (int i = 0; i < SIM_MAX_APPS; i++) {
        sim_app *a = &s->apps[i];
        if (a->used && a->ep == ep && a->conn && !a->released && !e->is_server)
            rudp_conn_rebind(a->conn, s->now, 1u + (uint32_t)e->moves, 1);
    }
}

void sim_schedule_move(sim *s, rudp_time at, int ep, int kind)
{
    if (s->nmoves < (int)(sizeof s->moves / sizeof s->moves[0]))
        s->moves[s->nmoves++] = (struct sim_move){.at = at, .ep = ep, .kind = kind};
}

/* Moves whose time came. */
static void run_moves(sim *s)
{
    for (int i = 0; i < s->nmoves;) {
        if (s->moves[i].at > s->now) {
            i++;
            continue;
        }
        struct sim_move m = s->moves[i];
        s->moves[i] = s->moves[--s->nmoves];
        sim_move(s, m.ep, m.kind);
    }
}

static rudp_time next_time(const sim *s)
{
    rudp_time t = s->heap_n ? s->heap[0]->at : RUDP_TIME_NEVER;
    for (int i = 0; i < s->nmoves; i++)
        if (s->moves[i].at < t)
            t = s->moves[i].at;
    for (int i = 0; i < s->nep; i++)
        if (!s->ep[i].down && !s->ep[i].raw && s->ep[i].deadline < t)
            t = s->ep[i].deadline;
    return t;
}

int sim_run(sim *s, rudp_time limit)
{
    step(s);
    while (!all_done(s)) {
        rudp_time t = next_time(s);
        if (t == RUDP_TIME_NEVER || t > limit)
            return 0;
        if (t > s->now)
            s->now = t;
        step(s);
    }
    return 1;
}

void sim_run_until(sim *s, rudp_time until)
{
    step(s);
    for (;;) {
        rudp_time t = next_time(s);
        if (t > until) {
            s->now = until;
            step(s);
            return;
        }
        if (t > s->now)
            s->now = t;
        step(s);
    }
}

/* ---- throughput runs ---- */

void sim_bulk_listen(sim *s, int ep)
{
    sim_app srv = {.expect = UINT64_MAX, .bulk = 1, .no_shutdown = 1};
    sim_listen(s, ep, &srv, 16);
}

int sim_bulk_connect(sim *s, int from, int to, const rudp_config *cfg)
{
    sim_app cli = {.to_send = UINT64_MAX, .expect = 0, .bulk = 1, .no_shutdown = 1};
    return sim_connect(s, from, to, &cli, cfg);
}

uint64_t sim_bulk_acked(const sim *s, int app)
{
    const sim_app *a = &s->apps[app];
    if (!a->conn)
        return 0;
    rudp_conn_info info;
    rudp_conn_get_info(a->conn, &info);
    return info.bytes_acked;
}

void sim_burst_tap(sim *s, int from, int to, const uint8_t *buf, size_t len)
{
    (void)buf;
    sim_burst *b = s->tap_user;
    if (from != 0 || to != 1 || len < 1000)
        return;
    b->run = b->pkts && s->now == b->last ? b->run + 1 : 1;
    if (b->run > b->max_run)
        b->max_run = b->run;
    b->last = s->now;
    b->pkts++;
}

void sim_bulk_single(uint64_t seed, const rudp_cc_ops *cc, rudp_time owd, uint64_t rate_bps,
                     size_t queue, double loss, rudp_time duration, sim_bulk_result *out)
{
    sim *s = malloc(sizeof *s);
    sim_init(s, seed);
    int a = sim_add_ep(s, NULL), b = sim_add_ep(s, NULL);
    for (int d = 0; d < 2; d++) {
        sim_link *l = d ? &s->link[b][a] : &s->link[a][b];
        l->delay = owd;
        l->rate_bps = rate_bps;
        l->queue_bytes = queue;
        l->loss = loss;
    }
    sim_bulk_listen(s, b);
    rudp_config cfg;
    rudp_config_default(&cfg);
    cfg.cc = cc;
    int f = sim_bulk_connect(s, a, b, &cfg);
    sim_run_until(s, s->now + duration);
    memset(out, 0, sizeof *out);
    out->acked = f >= 0 ? sim_bulk_acked(s, f) : 0;
    out->error = f >= 0 ? s->apps[f].error : -1;
    out->rx_dropped = rudp_ctx_stats(s->ep[b].ctx)->rx_dropped;
    out->mbps = (double)out->acked * 8 / ((double)duration / 1e9) / 1e6;
    const rudp_stats *st = rudp_ctx_stats(s->ep[a].ctx);
    uint64_t all = st->stream_bytes_sent + st->bytes_retransmitted;
    out->retx_pct = all ? 100.0 * (double)st->bytes_retransmitted / (double)all : 0;
    out->repair_pct = all ? 100.0 * (double)st->repair_bytes / (double)all : 0;
    out->pkts_sent = st->pkts_sent;
    out->pacer_wakeups = st->pacer_wakeups;
    sim_free(s);
    free(s);
}

sim_app *sim_app_on(sim *s, int ep)
{
    for (int i = 0; i < SIM_MAX_APPS; i++)
        if (s->apps[i].used && s->apps[i].ep == ep)
            return &s->apps[i];
    return NULL;
}

const char *sim_app_fault(const sim_app *a)
{
    if (!a)
        return "no such application";
    if (a->received != a->expect)
        return "not every byte came";
    if (a->corrupt)
        return "a byte differed from the pattern";
    if (!a->eof)
        return "no EOF";
    if (a->error)
        return "an error";
    return NULL;
}
