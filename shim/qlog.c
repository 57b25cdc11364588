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
 * Files are `<dir>/<pid>-<local connection ID, hex>-<client|server>.sqlog`:
 * the ID is the one log lines print ("conn 1a2b..."). Created 0600,
 * O_EXCL|O_NOFOLLOW, in the directory opened once at start-up (config.c),
 * so a chdir() of the application changes nothing. Each trace is buffered
 * in memory and appended when the buffer fills and when the connection is
 * freed, by opening the file again (O_APPEND|O_NOFOLLOW, checked to be the
 * very file created): no fd is held between writes, so programs that close
 * every fd, fork or exec never meet one, and a keeper finishes the traces of
 * the connections it carries. A trace that reaches RUDP_QLOG_MAX ends with
 * one generic:warning record saying so, and a log line tells it once per
 * process. Never stdio: the application owns it.
 *
 * A process that exits with connections not yet freed (TIME_WAIT, or
 * nothing left to send) writes their traces at exit, with its engines
 * parked; when a keeper carries them on, the keeper writes them instead
 * (at their end or its own), never both. A forked child leaves its
 * parent's traces alone: each belongs to the process that runs it.
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

#include "shim.h"

#include "poison.h"

#define QLOG_BUF (64 * 1024) /* per traced connection, written when full */
#define QLOG_REC 4096        /* the largest record we build (a packet: ~1.3 KB) */

typedef struct qlog {
    char name[64];           /* file name in the directory */
    dev_t dev;
    ino_t ino;
    char *buf;
    size_t len;
    uint64_t written;        /* bytes in the file */
    int cut;                 /* RUDP_QLOG_MAX reached: nothing more is kept */
    int failed;              /* the file could not be written: nothing more */
    rudp_time t0;            /* core time of reference_time */
    int have_metrics;
    rudp_trace_metrics last; /* what metrics_updated last reported */
    pid_t owner;             /* the process whose engine runs it */
    struct qlog *next, *prev; /* every open trace (mu) */
} qlog;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static qlog *live;

static atomic_int cut_told;

int shim_qlog_open_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        real_close(fd);
        return -1;
    }
    fd = shim_fd_move_high(fd);
    shim_engine_own_fd(fd); /* a program closing every fd spares it */
    return fd;
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
        st.st_ino != q->ino) {
        /* removed, or replaced by something else: stop, do not follow it */
        SHIM_LOG(RUDP_LOG_WARN, "qlog: %s is gone or replaced; its trace stops", q->name);
        q->failed = 1;
    }
    for (size_t off = 0; !q->failed && off < q->len;) {
        ssize_t w = write(fd, q->buf + off, q->len - off);
        if (w <= 0) {
            SHIM_LOG(RUDP_LOG_WARN, "qlog: writing %s failed; its trace stops", q->name);
            q->failed = 1;
            break;
        }
        off += (size_t)w;
        q->written += (uint64_t)w;
    }
    if (fd >= 0)
        real_close(fd);
    q->len = 0;
}

static double ms(rudp_time t)
{
    return (double)t / 1e6;
}

/* Adds one record (without its framing) to the trace, within the cap. */
static void record(qlog *q, rudp_time now, const char *rec, size_t n)
{
    char w[256];
    if (q->cut || q->failed)
        return;
    if (q->written + q->len + n + 2 > shim_cfg.qlog_max) {
        /* The cap: one last record says so, and the trace ends here. */
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
        if (m <= 0 || (size_t)m >= sizeof w)
            return;
        rec = w;
        n = (size_t)m;
    }
    if (q->len + n + 2 > QLOG_BUF)
        flush(q);
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
    }
}

static void *on_open(void *user, rudp_conn *c, int is_server, rudp_time now)
{
    (void)user;
    rudp_conn_info info;
    rudp_conn_get_info(c, &info);
    qlog *q = calloc(1, sizeof *q);
    if (q)
        q->buf = malloc(QLOG_BUF);
    if (!q || !q->buf) {
        if (q)
            free(q);
        return NULL;
    }
    const char *side = is_server ? "server" : "client";
    snprintf(q->name, sizeof q->name, "%d-%016llx-%s.sqlog", (int)getpid(),
             (unsigned long long)info.local_cid, side);
    int fd = openat(shim_cfg.qlog_dirfd, q->name,
                    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK,
                    0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        SHIM_LOG(RUDP_LOG_WARN, "qlog: cannot create %s in RUDP_QLOG_DIR; conn %016llx untraced",
                 q->name, (unsigned long long)info.local_cid);
        if (fd >= 0)
            real_close(fd);
        free(q->buf);
        free(q);
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
        "\"description\":\"%s side of a rudp connection with %s, pid %d\","
        "\"trace\":{\"vantage_point\":{\"name\":\"librudp_shim pid %d\",\"type\":\"%s\"},"
        "\"common_fields\":{\"protocol_type\":[\"RUDP\"],\"group_id\":\"%016llx\","
        "\"ODCID\":\"%016llx\",\"time_format\":\"relative\",\"reference_time\":%.3f},"
        "\"configuration\":{\"time_offset\":0}}}",
        (unsigned long long)info.local_cid, side, peer, (int)getpid(), (int)getpid(), side,
        (unsigned long long)info.local_cid, (unsigned long long)info.local_cid, ref);
    record(q, now, b.s, b.n);
    q->owner = getpid();
    pthread_mutex_lock(&mu);
    q->next = live;
    if (live)
        live->prev = q;
    live = q;
    pthread_mutex_unlock(&mu);
    return q;
}

static void on_close(void *h, rudp_time now)
{
    qlog *q = h;
    (void)now;
    pthread_mutex_lock(&mu);
    if (q->prev)
        q->prev->next = q->next;
    else
        live = q->next;
    if (q->next)
        q->next->prev = q->prev;
    pthread_mutex_unlock(&mu);
    flush(q);
    free(q->buf);
    free(q);
}

static const rudp_trace_ops qlog_ops = {.open = on_open, .event = on_event, .close = on_close};

void shim_qlog_attach(rudp_ctx *ctx)
{
    if (shim_cfg.qlog_dirfd >= 0)
        rudp_ctx_set_trace(ctx, &qlog_ops, NULL);
}

void shim_qlog_flush_all(void)
{
    pid_t me = getpid();
    pthread_mutex_lock(&mu);
    for (qlog *q = live; q; q = q->next)
        if (q->owner == me)
            flush(q);
    pthread_mutex_unlock(&mu);
}

void shim_qlog_adopt(void)
{
    pid_t me = getpid();
    pthread_mutex_lock(&mu);
    for (qlog *q = live; q; q = q->next)
        q->owner = me;
    pthread_mutex_unlock(&mu);
}
