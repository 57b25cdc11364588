/* linkemu: clocks, real-time scheduling, the forwarding loop of one
 * direction (read from its TUN, deliver what is due) and the TUN devices. */

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_tun.h>

#include "linkemu.h"

/* Packets read per wake-up before due packets are delivered again. */
#define READ_BATCH 64

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

/* SCHED_FIFO at PRIO for thread TH (0: leave it alone). A link is hardware:
 * it should not wait for the CPU behind the endpoints it carries, and the
 * kernel's RT throttling (95% by default) keeps a runaway from freezing the
 * machine. Failure only warns. */
void set_rt(pthread_t th, int prio, const char *who)
{
    if (prio <= 0)
        return;
    struct sched_param sp = {.sched_priority = prio};
    int e = pthread_setschedparam(th, SCHED_FIFO, &sp);
    if (e)
        fprintf(stderr, "linkemu: %s: SCHED_FIFO %d: %s (running without)\n", who, prio,
                strerror(e));
}

/* Reads up to READ_BATCH packets. Returns 1 if the batch was full (more may
 * be waiting), 0 if the TUN is drained, -errno on a hard error. */
static int read_batch(struct dir *d)
{
    static __thread unsigned char scratch[65536];
    for (int i = 0; i < READ_BATCH; i++) {
        struct pkt *p = pkt_get(d);
        unsigned char *buf = p ? p->data : scratch;
        size_t cap = p ? d->bufsz : sizeof(scratch);
        ssize_t n = read(d->in_fd, buf, cap);
        if (n <= 0) {
            if (p)
                pkt_put(d, p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return 0;
            return n < 0 ? -errno : -EIO;
        }
        if (!p) {
            ctr_add(&d->c.in_pkts, 1);
            ctr_add(&d->c.in_bytes, (uint64_t)n);
            ctr_add(&d->c.drop_limit, 1);
            continue;
        }
        p->len = (uint32_t)n;
        if (!nat_packet(d->name[0] == 'b', 0, p->data, p->len, &d->c)) {
            ctr_add(&d->c.in_pkts, 1);
            ctr_add(&d->c.in_bytes, (uint64_t)n);
            pkt_put(d, p);
            continue;
        }
        on_packet(d, p, now_ns());
    }
    return 1;
}

static void deliver_due(struct dir *d, uint64_t now)
{
    while (d->nheap && d->heap[0]->due <= now + d->slack_ns) {
        struct pkt *p = heap_pop(d);
        if (d->last_held && p->seq == d->last_seq)
            d->last_held = 0;
        uint64_t at = now_ns();
        /* ... and lets nothing out: what was in flight when it went down
         * and falls due before it comes back is lost too, so the receiver
         * sees nothing at all for the whole blackout. */
        if (link_down(d, at)) {
            ctr_add(&d->c.drop_down, 1);
            pkt_put(d, p);
            continue;
        }
        if (!nat_packet(d->name[0] == 'b', 1, p->data, p->len, &d->c)) {
            pkt_put(d, p);
            continue;
        }
        if (at > p->due && at - p->due > ctr_get(&d->c.late_max_ns))
            ctr_set(&d->c.late_max_ns, at - p->due);
        if (at > p->due + 1000000)
            ctr_add(&d->c.late_1ms, 1);
        ssize_t n;
        do
            n = write(d->out_fd, p->data, p->len);
        while (n < 0 && errno == EINTR);
        if (n == (ssize_t)p->len) {
            ctr_add(&d->c.out_pkts, 1);
            ctr_add(&d->c.out_bytes, p->len);
        } else {
            /* Typically EIO: the receiving TUN is not up yet. Say it once. */
            if (!ctr_get(&d->c.tx_err))
                fprintf(stderr, "linkemu: %s: write: %s (counted in tx_err)\n", d->name,
                        n < 0 ? strerror(errno) : "short write");
            ctr_add(&d->c.tx_err, 1);
        }
        pkt_put(d, p);
    }
}

void *dir_run(void *arg)
{
    struct dir *d = arg;
    struct pollfd pfd[2] = {{.fd = d->in_fd, .events = POLLIN}, {.fd = d->stop_fd, .events = POLLIN}};
    int readable = 1;

    for (;;) {
        int more = 0;
        if (readable) {
            more = read_batch(d);
            if (more < 0) {
                fprintf(stderr, "linkemu: %s: read: %s\n", d->name, strerror(-more));
                more = 0;
            }
        }
        deliver_due(d, now_ns());

        struct timespec ts, *tsp = NULL;
        if (more) {
            ts = (struct timespec){0, 0};
            tsp = &ts;
        } else if (d->nheap) {
            uint64_t now = now_ns(), due = d->heap[0]->due;
            /* Sleep until the first packet is due, then send with it every
             * packet due within the slack (deliver_due). */
            uint64_t wait = due > now ? due - now : 0;
            ts = (struct timespec){(time_t)(wait / NS_PER_S), (long)(wait % NS_PER_S)};
            tsp = &ts;
        }
        int n = ppoll(pfd, 2, tsp, NULL);
        ctr_add(&d->c.wakeups, 1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "linkemu: %s: ppoll: %s\n", d->name, strerror(errno));
            break;
        }
        if (n > 0 && pfd[1].revents)
            break;
        readable = more || (n > 0 && (pfd[0].revents & POLLIN));
        if (n > 0 && (pfd[0].revents & (POLLERR | POLLHUP))) {
            fprintf(stderr, "linkemu: %s: TUN device went away\n", d->name);
            break;
        }
    }
    return NULL;
}

/* ---- TUN devices in namespaces ------------------------------------------ */

/* Creates TUN device NAME with MTU in network namespace NS (a name under
 * /var/run/netns, a path, or NULL for the current one). The fd stays bound
 * to that namespace after we return to ours. Returns the fd or -errno. */
int tun_open_in(const char *ns, const char *name, int mtu)
{
    int self = -1, target = -1, fd = -1, sock = -1, rc;
    char path[512];

    if (ns) {
        if (strchr(ns, '/'))
            snprintf(path, sizeof(path), "%s", ns);
        else
            snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
        self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        target = open(path, O_RDONLY | O_CLOEXEC);
        if (self < 0 || target < 0) {
            rc = -errno;
            fprintf(stderr, "linkemu: open %s: %s\n", self < 0 ? "/proc/self/ns/net" : path,
                    strerror(errno));
            goto fail;
        }
        if (setns(target, CLONE_NEWNET) < 0) {
            rc = -errno;
            fprintf(stderr, "linkemu: setns %s: %s\n", path, strerror(errno));
            goto fail;
        }
    }

    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: open /dev/net/tun: %s\n", strerror(errno));
        goto fail;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: TUNSETIFF %s: %s\n", name, strerror(errno));
        goto fail;
    }
    sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifr.ifr_mtu = mtu;
    if (sock < 0 || ioctl(sock, SIOCSIFMTU, &ifr) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: set MTU %d on %s: %s\n", mtu, name, strerror(errno));
        goto fail;
    }
    close(sock);
    sock = -1;
    if (ns && setns(self, CLONE_NEWNET) < 0) {
        rc = -errno;
        fprintf(stderr, "linkemu: setns back: %s\n", strerror(errno));
        goto fail;
    }
    if (self >= 0)
        close(self);
    if (target >= 0)
        close(target);
    return fd;

fail:
    if (sock >= 0)
        close(sock);
    if (fd >= 0)
        close(fd);
    if (self >= 0) {
        if (setns(self, CLONE_NEWNET) < 0)
            rc = -errno;
        close(self);
    }
    if (target >= 0)
        close(target);
    return rc;
}
