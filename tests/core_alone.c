/*
 * core_alone: the core library by itself. This program includes rudp.h
 * only and links libcore.a with libsodium and libm, nothing else (the
 * Makefile's $(CORE_ALONE) rule: no -ldl, no -lcrypto), so a core that
 * reached for another library (a dlopen, an OpenSSL call) fails to link
 * here. It then runs, in memory and virtual time as tests/lib_sim.c does
 * with far less, an unkeyed and a keyed connection: a client sends a
 * pattern and shuts down, the server reads it to EOF, checks it and shuts
 * down, the client reads EOF. make unit-test runs it; exit 0 and one line
 * when both pairs delivered every byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "rudp.h"

#define BYTES 200000
#define QMAX 4096
#define DGRAM_MAX 2048

/* One end: its context, address, and the connection it has. */
struct end {
    rudp_ctx *ctx;
    rudp_addr addr;
    rudp_conn *conn;
    uint64_t sent, got;
    int eof, shut;
};

/* Datagrams in flight, delivered at the next step (1 ms later). */
static struct {
    struct end *to;
    rudp_addr from;
    size_t len;
    uint8_t buf[DGRAM_MAX];
} q[QMAX];
static int nq;
static struct end ends[2];

static int fail(const char *what, const char *run)
{
    fprintf(stderr, "core_alone: %s run: %s\n", run, what);
    return 1;
}

static void on_send(void *user, uint32_t sock, const rudp_addr *peer, const uint8_t *buf,
                    size_t len)
{
    struct end *from = user;
    (void)sock, (void)peer;
    if (nq == QMAX || len > DGRAM_MAX)
        return; /* a full link drops, as any does */
    q[nq].to = from == &ends[0] ? &ends[1] : &ends[0];
    q[nq].from = from->addr;
    q[nq].len = len;
    memcpy(q[nq].buf, buf, len);
    nq++;
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 31 + (i >> 8));
}

/* The client writes what the send buffer takes; shuts down after the last. */
static void client_write(struct end *c, rudp_time now)
{
    uint8_t chunk[4096];
    while (c->conn && c->sent < BYTES) {
        size_t n = BYTES - c->sent < sizeof chunk ? (size_t)(BYTES - c->sent) : sizeof chunk;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(c->sent + i);
        ssize_t w = rudp_conn_write(c->conn, now, chunk, n);
        if (w <= 0)
            return;
        c->sent += (uint64_t)w;
    }
    if (c->conn && c->sent == BYTES && !c->shut) {
        rudp_conn_shutdown(c->conn, now);
        c->shut = 1;
    }
}

/* Reads what has arrived; returns -1 on a byte off the pattern. */
static int drain(struct end *e, rudp_time now)
{
    uint8_t buf[8192];
    ssize_t n = -1;
    while (e->conn && (n = rudp_conn_read(e->conn, now, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pattern(e->got + (uint64_t)i))
                return -1;
        e->got += (uint64_t)n;
    }
    if (e->conn && n == 0 && !e->eof)
        e->eof = 1;
    return 0;
}

static int run(const char *name, const uint8_t *key)
{
    static const rudp_ctx_ops ops = {.send = on_send};
    memset(ends, 0, sizeof ends);
    nq = 0;
    for (int i = 0; i < 2; i++) {
        uint8_t seed[32];
        memset(seed, 7 + i, sizeof seed);
        ends[i].addr.family = AF_INET;
        ends[i].addr.port = (uint16_t)(4000 + i);
        ends[i].addr.ip[0] = 10;
        ends[i].addr.ip[3] = (uint8_t)(i + 1);
        if (rudp_ctx_new(&ops, &ends[i], seed, NULL, NULL, &ends[i].ctx) < 0)
            return fail("rudp_ctx_new", name);
        if (key && rudp_ctx_set_key(ends[i].ctx, key, seed) < 0)
            return fail("rudp_ctx_set_key", name);
    }
    struct end *c = &ends[0], *s = &ends[1];
    rudp_listener *l;
    rudp_time now = RUDP_SEC(1);
    if (rudp_listen(s->ctx, 1, NULL, 8, &l) < 0 ||
        rudp_connect(c->ctx, now, 1, &s->addr, NULL, &c->conn) < 0)
        return fail("rudp_listen or rudp_connect", name);
    for (int step = 0; step < 200000 && !(c->eof && s->eof); step++) {
        for (int i = 0; i < 2; i++) {
            struct end *e = &ends[i];
            rudp_ctx_process(e->ctx, now);
            rudp_conn *conn;
            unsigned ev;
            while (rudp_ctx_next_event(e->ctx, &conn, &ev)) {
                if (ev & RUDP_EV_ACCEPT)
                    e->conn = conn;
                if (ev & RUDP_EV_ERROR)
                    return fail("a connection failed", name);
            }
            client_write(c, now);
            if (drain(e, now) < 0)
                return fail("a byte differed from the pattern", name);
            if (e == s && s->eof && !s->shut) {
                rudp_conn_shutdown(s->conn, now);
                s->shut = 1;
            }
            rudp_ctx_process(e->ctx, now);
        }
        now += RUDP_MS(1);
        int n = nq;
        nq = 0;
        for (int i = 0; i < n; i++)
            rudp_ctx_input(q[i].to->ctx, now, 1, NULL, &q[i].from, q[i].buf, q[i].len);
    }
    if (s->got != BYTES || !s->eof || !c->eof)
        return fail("the transfer did not finish", name);
    const char *cipher = rudp_conn_cipher(c->conn);
    if (!key != !cipher)
        return fail(key ? "no cipher on a keyed connection" : "a cipher unkeyed", name);
    printf("core_alone: %s pair: %d bytes and both EOFs in %.0f virtual ms%s%s\n", name, BYTES,
           (double)(now - RUDP_SEC(1)) / 1e6, cipher ? ", sealed with " : "",
           cipher ? cipher : "");
    rudp_conn_release(c->conn, now);
    rudp_conn_release(s->conn, now);
    rudp_listener_close(l);
    rudp_ctx_free(c->ctx);
    rudp_ctx_free(s->ctx);
    return 0;
}

int main(void)
{
    static const uint8_t key[RUDP_KEY_LEN] = "the core alone, with its own key";
    if (run("unkeyed", NULL) || run("keyed", key))
        return 1;
    return 0;
}
