/*
 * qlog.c: RUDP_QLOG_DIR: one qlog trace per connection, from the core's
 * trace events (rudp.h, tracing).
 *
 * Format: qlog 0.3 (draft-ietf-quic-qlog-main-schema-02, the version qvis
 * reads) in its sequential serialization, JSON-SEQ (RFC 7464): every record
 * starts with 0x1E and ends with a newline; the first is the header
 * (qlog_version, qlog_format, the trace's vantage point and common fields
 * with reference_time in ms since the epoch and time_format "relative"),
 * then events with "time" in ms from it. Event names and fields are the
 * QUIC events draft's (transport:packet_sent, recovery:metrics_updated,
 * ...): our DATA packets are "1RTT" packets, SYN/SYNACK "initial", the
 * stream is stream 0. Values are qlog's units: ms for RTTs, bytes for
 * windows, bits/s for rates.
 *
 * Files are `<dir>/<pid>-<connection ID, hex>-<client|server>.sqlog`: the
 * ID is rudp_conn_id, the client's, the one log lines print ("id 1a2b...")
 * at both ends, so the two traces of one connection carry one ID (in their
 * names, group_id and ODCID, as QUIC's qlog groups both ends by the
 * client's original destination ID); the description names this end's own
 * routing ID. Created 0600,
 * O_EXCL|O_NOFOLLOW, in the directory opened once at start-up (config.c;
 * a directory others may write to must be sticky, as /tmp is), so a chdir()
 * of the application changes nothing. Each trace is buffered in memory
 * (4 KiB, growing to 64 KiB) and appended once its header is built, when
 * the buffer fills and when the connection is freed, by opening the file
 * again (O_APPEND|O_NOFOLLOW, checked to be the very file created, ours,
 * with no other link): no fd is held between writes, so programs that close
 * every fd, fork or exec never meet one, and a keeper finishes the traces of
 * the connections it carries. A trace that would pass RUDP_QLOG_MAX ends
 * with one generic:warning record saying so, within the cap.
 *
 * Remote peers choose how many connections there are, so a process traces
 * at most QLOG_LIVE_MAX connections at once and starts none once it has
 * written QLOG_TOTAL_TRACES times RUDP_QLOG_MAX; later connections are not
 * traced. Each such limit, and each kind of failure (a file that cannot be
 * created, one gone or replaced, a write that fails), is logged once per
 * process. Never stdio: the application owns it.
 *
 * A process that exits, execs or _exits with connections not yet freed
 * (TIME_WAIT, or nothing left to send) writes their traces then, with its
 * engines parked; when a keeper carries them on, the keeper writes them
 * instead (at their end or its own), never both. A forked child drops its
 * parent's traces unwritten (they are the parent's to write) and starts
 * its own limits; a keeper, forked to carry them, keeps them.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base.h"

#include "poison.h"

#define QLOG_BUF_MIN 4096        /* a trace's buffer at first... */
#define QLOG_BUF (64 * 1024)     /* ...growing to this; written when full */
#define QLOG_REC 4096            /* the largest record we build (a packet: ~1.3 KB) */
#define QLOG_CUT_REC 256         /* the largest cut record, kept room for */
#define QLOG_LIVE_MAX 64         /* connections traced at once, per process */
#define QLOG_TOTAL_TRACES 16     /* a process starts no trace past this many RUDP_QLOG_MAX */

typedef struct qlog {
    char name[64];           /* file name in the directory */
    dev_t dev;
    ino_t ino;
    char *buf;               /* NULL once the trace stopped */
    size_t len, cap;
    uint64_t written;        /* bytes in the file */
    int cut;                 /* RUDP_QLOG_MAX reached: nothing more is kept */
    int failed;              /* the file could not be written: nothing more */
    rudp_time t0;            /* core time of reference_time */
    int have_metrics;
    rudp_trace_metrics last; /* what metrics_updated last reported */
    struct qlog *next, *prev; /* every open trace (mu) */
} qlog;

static shim_mutex mu = SHIM_MUTEX_INITIALIZER;
static qlog *live;   /* (mu) */
static int nlive;    /* (mu) */
static _Atomic uint64_t total; /* bytes this process wrote to traces */

/* What was said once per process. */
static atomic_int cut_told, create_told, gone_told, write_told, live_told, total_told;

#define TELL_ONCE(told, ...)                                                                     \
    do {                                                                                         \
        if (atomic_exchange(told, 1) == 0)                                                       \
            SHIM_LOG(RUDP_LOG_WARN, __VA_ARGS__);                                                \
    } while (0)

int shim_qlog_open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0 || faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        real_close(fd);
        return -1;
    }
    /* Others who may write here could rename or unlink our traces and put
     * theirs in place, unless the sticky bit keeps them to their own. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        real_close(fd);
        return -2;
    }
    fd = shim_fd_move_high(fd);
    shim_ownfds_add(fd); /* a program closing every fd spares it */
    return fd;
}

/* The trace takes nothing more: its buffer goes. */
static void stop(qlog *q)
{
    shim_free(q->buf);
    q->buf = NULL;
    q->len = q->cap = 0;
}

/* Appends the buffer to the file, opened again for that. */
static void flush(qlog *q)
{
    if (!q->len || q->failed)
        return;
    int fd = openat(shim_cfg.qlog_dirfd, q->name,
                    O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != q->dev ||
        st.st_ino != q->ino || st.st_uid != geteuid() || st.st_nlink != 1) {
        /* removed, replaced, or linked elsewhere: stop, do not follow it */
        TELL_ONCE(&gone_told, "qlog: %s is gone or replaced; its trace stops (said once)",
                  q->name);
        q->failed = 1;
    }
    for (size_t off = 0; !q->failed && off < q->len;) {
        ssize_t w = real_write(fd, q->buf + off, q->len - off);
        if (w <= 0) {
            TELL_ONCE(&write_told, "qlog: writing %s failed; its trace stops (said once)",
                      q->name);
            q->failed = 1;
            break;
        }
        off += (size_t)w;
        q->written += (uint64_t)w;
        atomic_fetch_add(&total, (uint64_t)w);
    }
    if (fd >= 0)
        real_close(fd);
    q->len = 0;
    if (q->failed)
        stop(q);
}

/* Room for `need` more bytes in the buffer: grown while under QLOG_BUF,
 * else written out. Returns whether there is. */
static int make_room(qlog *q, size_t need)
{
    if (q->len + need <= q->cap)
        return 1;
    if (q->cap < QLOG_BUF) {
        size_t c = q->cap;
        while (c < QLOG_BUF && c < q->len + need)
            c *= 2;
        char *b = shim_realloc(q->buf, c);
        if (b) {
            q->buf = b;
            q->cap = c;
        }
        if (q->len + need <= q->cap)
            return 1;
    }
    flush(q);
    return q->buf && need <= q->cap;
}

static double ms(rudp_time t)
{
    return (double)t / 1e6;
}

/* Adds one record (without its framing) to the trace, within the cap:
 * every record leaves room for the cut record, which ends the trace. */
static void record(qlog *q, rudp_time now, const char *rec, size_t n)
{
    char w[QLOG_CUT_REC];
    if (q->cut || q->failed)
        return;
    if (q->written + q->len + n + 2 + sizeof w + 2 > shim_cfg.qlog_max) {
        int m = snprintf(w, sizeof w,
                         "{\"time\":%.3f,\"name\":\"generic:warning\",\"data\":{\"message\":"
                         "\"trace cut: RUDP_QLOG_MAX (%llu bytes) reached, later events "
                         "dropped\",\"code\":\"rudp_trace_cut\"}}",
                         ms(now - q->t0), (unsigned long long)shim_cfg.qlog_max);
        q->cut = 1;
        if (atomic_exchange(&cut_told, 1) == 0)
            SHIM_LOG(RUDP_LOG_WARN,
                     "qlog: %s cut at RUDP_QLOG_MAX (%llu bytes); other traces cut later are "
                     "not reported here",
                     q->name, (unsigned long long)shim_cfg.qlog_max);
        if (m > 0 && (size_t)m < sizeof w && make_room(q, (size_t)m + 2)) {
            q->buf[q->len++] = 0x1e;
            memcpy(q->buf + q->len, w, (size_t)m);
            q->len += (size_t)m;
            q->buf[q->len++] = '\n';
        }
        flush(q);
        stop(q);
        return;
    }
    if (!make_room(q, n + 2))
        return;
    q->buf[q->len++] = 0x1e;
    memcpy(q->buf + q->len, rec, n);
    q->len += n;
    q->buf[q->len++] = '\n';
}

/* A record under construction. */
typedef struct rb {
    char s[QLOG_REC];
    size_t n;
    int over; /* it did not fit: dropped */
} rb;

__attribute__((format(printf, 2, 3))) static void put(rb *b, const char *fmt, ...)
{
    if (b->over)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= sizeof b->s - b->n)
        b->over = 1;
    else
        b->n += (size_t)m;
}

static void begin(rb *b, const qlog *q, rudp_time now, const char *name)
{
    b->n = 0;
    b->over = 0;
    put(b, "{\"time\":%.3f,\"name\":\"%s\",\"data\":{", ms(now - q->t0), name);
}

static void end(rb *b, qlog *q, rudp_time now)
{
    put(b, "}}");
    if (!b->over)
        record(q, now, b->s, b->n);
}

/* Our packet types in the QUIC events draft's terms (the exact one
 * follows as rudp_type, rudp_packet_type_name's). */
static const char *packet_type(uint8_t t)
{
    switch (t) {
    case 1:
    case 3:
        return "initial";
    case 2:
        return "retry";
    case 4:
        return "1RTT";
    case 5:
        return "stateless_reset";
    default:
        return "unknown";
    }
}

static void put_header(rb *b, const rudp_trace_packet *p)
{
    const char *n = rudp_packet_type_name(p->type, 0);
    put(b, "\"header\":{\"packet_type\":\"%s\",\"packet_number\":%llu,\"rudp_type\":\"%s\"}",
        packet_type(p->type), (unsigned long long)p->pn, n ? n : "?");
}

static void put_frame(rb *b, const rudp_trace_packet *p, const rudp_trace_frame *f, int first_ack)
{
    switch (f->type) {
    case 0:
        put(b, "{\"frame_type\":\"padding\",\"length\":%llu}", (unsigned long long)f->a);
        return;
    case 1:
        put(b, "{\"frame_type\":\"ping\"}");
        return;
    case 2:
        put(b, "{\"frame_type\":\"ack\",\"ack_delay\":%.3f", (double)f->a / 1e3);
        if (first_ack) {
            put(b, ",\"acked_ranges\":[");
            for (uint32_t i = 0; i < p->nranges; i++)
                put(b, "%s[%llu,%llu]", i ? "," : "", (unsigned long long)p->ranges[i].lo,
                    (unsigned long long)p->ranges[i].hi);
            put(b, "]");
            if (p->ranges_omitted)
                put(b, ",\"rudp_ranges_omitted\":%u", p->ranges_omitted);
        }
        put(b, "}");
        return;
    case 3:
        put(b, "{\"frame_type\":\"max_data\",\"maximum\":%llu}", (unsigned long long)f->a);
        return;
    case 4:
        put(b, "{\"frame_type\":\"data_blocked\",\"limit\":%llu}", (unsigned long long)f->a);
        return;
    case 5:
        put(b, "{\"frame_type\":\"reset_stream\",\"stream_id\":0,\"error_code\":%llu,"
               "\"final_size\":%llu}",
            (unsigned long long)f->a, (unsigned long long)f->b);
        return;
    case 6:
    case 7:
        put(b, "{\"frame_type\":\"%s\",\"data\":\"%016llx\"}",
            f->type == 6 ? "path_challenge" : "path_response", (unsigned long long)f->a);
        return;
    case 12:
        /* not a QUIC frame: named as qlog names unknown ones, with ours */
        put(b, "{\"frame_type\":\"unknown\",\"raw_frame_type\":12,\"rudp_urgent_offset\":%llu}",
            (unsigned long long)f->a);
        return;
    case 13:
        put(b, "{\"frame_type\":\"unknown\",\"raw_frame_type\":13,\"rudp_new_port\":%llu}",
            (unsigned long long)f->a);
        return;
    case 14:
        /* QUIC's own NEW_TOKEN: its length only (a token links visits) */
        put(b, "{\"frame_type\":\"new_token\",\"token\":{\"length\":%llu}}",
            (unsigned long long)f->a);
        return;
    default:
        put(b, "{\"frame_type\":\"stream\",\"stream_id\":0,\"offset\":%llu,\"length\":%llu%s}",
            (unsigned long long)f->a, (unsigned long long)f->b, f->fin ? ",\"fin\":true" : "");
        return;
    }
}

static void put_frames(rb *b, const rudp_trace_packet *p)
{
    put(b, ",\"frames\":[");
    int acks = 0;
    for (uint32_t i = 0; i < p->nframes; i++) {
        if (i)
            put(b, ",");
        put_frame(b, p, &p->frames[i], p->frames[i].type == 2 && acks++ == 0);
    }
    put(b, "]");
    if (p->frames_omitted)
        put(b, ",\"rudp_frames_omitted\":%u", p->frames_omitted);
}

static void packet(qlog *q, const rudp_trace_event *ev)
{
    const rudp_trace_packet *p = ev->packet;
    rb b;
    begin(&b, q, ev->now,
          ev->kind == RUDP_TRACE_PACKET_SENT       ? "transport:packet_sent"
          : ev->kind == RUDP_TRACE_PACKET_RECEIVED ? "transport:packet_received"
                                                   : "recovery:packet_lost");
    put_header(&b, p);
    put(&b, ",\"raw\":{\"length\":%u}", p->length);
    if (p->flags & 1)
        put(&b, ",\"rudp_ack_now\":true");
    put_frames(&b, p);
    end(&b, q, ev->now);
}

/* The controllers' phases (their phase ops', as rudp-stat shows them) in
 * qlog's spelling: the QUIC events draft's where it has one. */
static const char *qlog_phase(const char *phase)
{
    static const struct {
        const char *phase, *qlog;
    } names[] = {
        {"Startup", "startup"},
        {"Drain", "drain"},
        {"ProbeBW", "probe_bw"},
        {"ProbeRTT", "probe_rtt"},
        {"slow start", "slow_start"},
        {"conservative slow start", "conservative_slow_start"},
        {"avoidance", "congestion_avoidance"},
        {"recovery", "recovery"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].phase, phase) == 0)
            return names[i].qlog;
    return "unknown";
}

/* A rate in bytes/s as qlog's bits/s, saturated. */
static unsigned long long bits(uint64_t bytes_per_s)
{
    return bytes_per_s > UINT64_MAX / 8 ? (unsigned long long)UINT64_MAX
                                        : (unsigned long long)(bytes_per_s * 8);
}

/* recovery:metrics_updated with the values that changed, then
 * recovery:congestion_state_updated if the controller's phase did. */
static void metrics(qlog *q, const rudp_trace_event *ev)
{
    const rudp_trace_metrics *m = ev->metrics, *o = q->have_metrics ? &q->last : NULL;
    rb b;
    if (!o || strcmp(o->cc_state, m->cc_state) != 0) {
        begin(&b, q, ev->now, "recovery:congestion_state_updated");
        if (o)
            put(&b, "\"old\":\"%s\",", qlog_phase(o->cc_state));
        put(&b, "\"new\":\"%s\",\"rudp_cc\":\"%s\"", qlog_phase(m->cc_state), m->cc);
        end(&b, q, ev->now);
    }
    begin(&b, q, ev->now, "recovery:metrics_updated");
    size_t empty = b.n;
#define CHANGED(f) (!o || o->f != m->f)
#define SEP (b.n > empty ? "," : "")
    if (m->smoothed_rtt) { /* RTTs once there is a sample */
        if (CHANGED(min_rtt))
            put(&b, "%s\"min_rtt\":%.3f", SEP, ms(m->min_rtt));
        if (CHANGED(smoothed_rtt))
            put(&b, "%s\"smoothed_rtt\":%.3f", SEP, ms(m->smoothed_rtt));
        if (CHANGED(latest_rtt))
            put(&b, "%s\"latest_rtt\":%.3f", SEP, ms(m->latest_rtt));
        if (CHANGED(rtt_variance))
            put(&b, "%s\"rtt_variance\":%.3f", SEP, ms(m->rtt_variance));
    }
    if (CHANGED(pto_count))
        put(&b, "%s\"pto_count\":%u", SEP, m->pto_count);
    if (CHANGED(cwnd))
        put(&b, "%s\"congestion_window\":%llu", SEP, (unsigned long long)m->cwnd);
    if (CHANGED(bytes_in_flight))
        put(&b, "%s\"bytes_in_flight\":%llu", SEP, (unsigned long long)m->bytes_in_flight);
    if (CHANGED(ssthresh) && m->ssthresh != UINT64_MAX)
        put(&b, "%s\"ssthresh\":%llu", SEP, (unsigned long long)m->ssthresh);
    if (CHANGED(pacing_rate))
        put(&b, "%s\"pacing_rate\":%llu", SEP, bits(m->pacing_rate));
    if (CHANGED(delivery_rate))
        put(&b, "%s\"rudp_delivery_rate\":%llu", SEP, bits(m->delivery_rate));
#undef CHANGED
#undef SEP
    if (b.n > empty)
        end(&b, q, ev->now);
    q->last = *m;
    q->have_metrics = 1;
}

/* Our TCP-named states in the QUIC events draft's terms (the exact one
 * follows as rudp_state). */
static const char *quic_state(rudp_state s)
{
    switch (s) {
    case RUDP_CLOSED:
        return "closed";
    case RUDP_SYN_SENT:
        return "attempted";
    case RUDP_SYN_RCVD:
        return "handshake_started";
    case RUDP_ESTABLISHED:
        return "handshake_complete";
    case RUDP_FIN_WAIT_1:
    case RUDP_FIN_WAIT_2:
    case RUDP_CLOSING:
    case RUDP_CLOSE_WAIT:
    case RUDP_LAST_ACK:
        return "closing";
    case RUDP_TIME_WAIT:
        return "draining";
    case RUDP_STATE_COUNT:
        break;
    }
    return "unknown";
}

static void conn_state(qlog *q, const rudp_trace_event *ev)
{
    rb b;
    begin(&b, q, ev->now, "connectivity:connection_state_updated");
    put(&b, "\"old\":\"%s\",\"new\":\"%s\",\"rudp_old\":\"%s\",\"rudp_new\":\"%s\",\"trigger\":\"%s\"",
        quic_state(ev->old_state), quic_state(ev->new_state), rudp_state_name(ev->old_state),
        rudp_state_name(ev->new_state), ev->why ? ev->why : "");
    end(&b, q, ev->now);
}

/* The QUIC events draft's connectivity:mtu_updated: the largest
 * datagram's UDP payload, as rudp counts it (QUIC counts the same). */
static void mtu_updated(qlog *q, const rudp_trace_event *ev)
{
    rb b;
    begin(&b, q, ev->now, "connectivity:mtu_updated");
    put(&b, "\"old\":%u,\"new\":%u,\"done\":%s", ev->mtu_old, ev->mtu_new,
        ev->mtu_done ? "true" : "false");
    end(&b, q, ev->now);
}

/* The connection moved to another path: qlog's path event, with where
 * it sends now and why. */
static void path_updated(qlog *q, const rudp_trace_event *ev)
{
    rb b;
    char a[64] = "";
    if (ev->path_peer)
        rudp_addr_format(ev->path_peer, a, sizeof a);
    begin(&b, q, ev->now, "connectivity:path_updated");
    put(&b, "\"peer\":\"%s\",\"trigger\":\"%s\",\"initial_rtt\":%.3f", a,
        ev->why ? ev->why : "", (double)ev->path_rtt / 1e6);
    end(&b, q, ev->now);
}

static void on_event(void *h, const rudp_trace_event *ev)
{
    qlog *q = h;
    switch (ev->kind) {
    case RUDP_TRACE_PACKET_SENT:
    case RUDP_TRACE_PACKET_RECEIVED:
    case RUDP_TRACE_PACKET_LOST:
        packet(q, ev);
        return;
    case RUDP_TRACE_METRICS:
        metrics(q, ev);
        return;
    case RUDP_TRACE_CONN_STATE:
        conn_state(q, ev);
        return;
    case RUDP_TRACE_MTU:
        mtu_updated(q, ev);
        return;
    case RUDP_TRACE_PATH:
        path_updated(q, ev);
        return;
    }
}

/* Whether a new trace may start: within QLOG_LIVE_MAX at once and
 * QLOG_TOTAL_TRACES x RUDP_QLOG_MAX in all; if so, counts it live. */
static int admit(void)
{
    uint64_t all = QLOG_TOTAL_TRACES * shim_cfg.qlog_max;
    if (atomic_load(&total) >= all) {
        TELL_ONCE(&total_told,
                  "qlog: %llu bytes of traces written (%d x RUDP_QLOG_MAX): later "
                  "connections are not traced",
                  (unsigned long long)all, QLOG_TOTAL_TRACES);
        return 0;
    }
    shim_mutex_lock(&mu);
    int ok = nlive < QLOG_LIVE_MAX;
    if (ok)
        nlive++;
    shim_mutex_unlock(&mu);
    if (!ok)
        TELL_ONCE(&live_told,
                  "qlog: %d connections traced at once: later ones are not traced while "
                  "they are (said once)",
                  QLOG_LIVE_MAX);
    return ok;
}

static void unadmit(void)
{
    shim_mutex_lock(&mu);
    nlive--;
    shim_mutex_unlock(&mu);
}

static void *on_open(void *user, rudp_conn *c, int is_server, rudp_time now)
{
    (void)user;
    if (!admit())
        return NULL;
    rudp_conn_info info;
    rudp_conn_get_info(c, &info);
    qlog *q = shim_calloc(1, sizeof *q);
    if (q && (q->buf = shim_malloc(QLOG_BUF_MIN)))
        q->cap = QLOG_BUF_MIN;
    if (!q || !q->buf) {
        shim_free(q);
        unadmit();
        return NULL;
    }
    const char *side = is_server ? "server" : "client";
    snprintf(q->name, sizeof q->name, "%d-%016llx-%s.sqlog", (int)getpid(),
             (unsigned long long)info.conn_id, side);
    int fd = openat(shim_cfg.qlog_dirfd, q->name,
                    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
                    0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        TELL_ONCE(&create_told,
                  "qlog: cannot create %s in RUDP_QLOG_DIR; conn %016llx untraced (said once)",
                  q->name, (unsigned long long)info.conn_id);
        if (fd >= 0)
            real_close(fd);
        shim_free(q->buf);
        shim_free(q);
        unadmit();
        return NULL;
    }
    q->dev = st.st_dev;
    q->ino = st.st_ino;
    real_close(fd);
    q->t0 = now;

    /* reference_time: the wall clock at core time `now` */
    struct timespec rt, mt;
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mt);
    double wall_ms = (double)rt.tv_sec * 1e3 + (double)rt.tv_nsec / 1e6;
    double mono_ms = (double)mt.tv_sec * 1e3 + (double)mt.tv_nsec / 1e6;
    double ref = wall_ms - (mono_ms - ms(now));
    char peer[96];
    rudp_addr_format(rudp_conn_peer(c), peer, sizeof peer);
    rb b;
    b.n = 0;
    b.over = 0;
    put(&b,
        "{\"qlog_version\":\"0.3\",\"qlog_format\":\"JSON-SEQ\","
        "\"title\":\"librudp_shim conn %016llx\","
        "\"description\":\"%s side of a rudp connection with %s, pid %d, this side's "
        "connection ID %016llx\","
        "\"trace\":{\"vantage_point\":{\"name\":\"librudp_shim pid %d\",\"type\":\"%s\"},"
        "\"common_fields\":{\"protocol_type\":[\"RUDP\"],\"group_id\":\"%016llx\","
        "\"ODCID\":\"%016llx\",\"time_format\":\"relative\",\"reference_time\":%.3f},"
        "\"configuration\":{\"time_offset\":0}}}",
        (unsigned long long)info.conn_id, side, peer, (int)getpid(),
        (unsigned long long)info.local_cid, (int)getpid(), side, (unsigned long long)info.conn_id,
        (unsigned long long)info.conn_id, ref);
    record(q, now, b.s, b.n);
    flush(q); /* a trace whose process dies unannounced still has its header */
    shim_mutex_lock(&mu);
    q->next = live;
    if (live)
        live->prev = q;
    live = q;
    shim_mutex_unlock(&mu);
    return q;
}

static void on_close(void *h, rudp_time now)
{
    qlog *q = h;
    (void)now;
    shim_mutex_lock(&mu);
    if (q->prev)
        q->prev->next = q->next;
    else
        live = q->next;
    if (q->next)
        q->next->prev = q->prev;
    nlive--;
    shim_mutex_unlock(&mu);
    flush(q);
    shim_free(q->buf);
    shim_free(q);
}

static const rudp_trace_ops qlog_ops = {.open = on_open, .event = on_event, .close = on_close};

void shim_qlog_attach(rudp_ctx *ctx)
{
    if (shim_cfg.qlog_dirfd >= 0)
        rudp_ctx_set_trace(ctx, &qlog_ops, NULL);
}

void shim_qlog_flush_all(void)
{
    shim_mutex_lock(&mu);
    for (qlog *q = live; q; q = q->next)
        flush(q);
    shim_mutex_unlock(&mu);
}

void shim_qlog_lock_renew(void)
{
    shim_mutex_init(&mu);
    shim_mutex_lock(&mu);
}

void shim_qlog_atfork_prepare(void)
{
    shim_mutex_lock(&mu);
}

void shim_qlog_atfork_parent(void)
{
    shim_mutex_unlock(&mu);
}

void shim_qlog_atfork_child(int keeper)
{
    if (!keeper) {
        /* The parent's traces: its engines carry them, it writes them. */
        for (qlog *q = live, *n; q; q = n) {
            n = q->next;
            shim_free(q->buf);
            shim_free(q);
        }
        live = NULL;
        nlive = 0;
        atomic_store(&total, 0);
        atomic_store(&cut_told, 0);
        atomic_store(&create_told, 0);
        atomic_store(&gone_told, 0);
        atomic_store(&write_told, 0);
        atomic_store(&live_told, 0);
        atomic_store(&total_told, 0);
    }
    shim_mutex_unlock(&mu);
}
