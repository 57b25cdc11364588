/*
 * linkemu: a userspace link emulator for tests and benchmarks.
 *
 * This kernel has no netem, so two network namespaces are joined by a TUN
 * device in each (IFF_TUN | IFF_NO_PI) and this program forwards IP packets
 * between them, applying per direction: one-way delay, jitter, random loss,
 * Gilbert-Elliott burst loss, reordering, duplication and a rate limit with
 * a bounded drop-tail queue. Every random decision comes from a seeded
 * xoshiro256** stream, so a run is reproducible for a given packet sequence.
 *
 * Model of one direction (a packet read from the sending TUN at time t):
 *
 *   loss (random, then Gilbert-Elliott) -> duplication -> bottleneck queue
 *   (drop-tail, serialization (len+overhead)*8/rate) -> propagation delay
 *   + jitter (FIFO kept) or, if picked for reordering, no propagation delay
 *   -> written to the receiving TUN at its due time.
 *
 * One thread per direction reads its input TUN, keeps its packets in a
 * min-heap keyed by due time, and sleeps in ppoll() with a nanosecond
 * timeout until the next due time or the next arrival (timer slack is set
 * to 1 ns so the kernel does not round the sleep). Nothing busy-waits.
 * Departure times are computed in virtual time (each packet's serialization
 * starts when the previous one ends), so a late wake-up delays a packet by
 * the wake-up latency but never lowers the long-run rate.
 *
 * The main thread only waits for signals: SIGUSR1 prints the counters,
 * SIGUSR2 applies the command in the --ctl file (a blackout: the link
 * carries nothing, either way or one way, for a while or until told),
 * SIGINT/SIGTERM prints them and exits. Counters are written by one worker
 * each and read by the main thread, hence relaxed atomics; the blackout's
 * end is written by the main thread and read by the workers.
 *
 * Besides the emulator ("run", the default mode) the program has two small
 * helper modes used by the tests: "echo" (a UDP echo server) and "probe"
 * (sends a fixed numbered sequence of UDP datagrams to an echo server and
 * reports loss, RTT, duplicates, reordering and a hash of the loss pattern).
 */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "linkemu.h"

/* Default --slack: packets due this close to now are sent now, since a
 * sleep and wake-up costs more than this. */
#define SLACK_NS_DEFAULT 5000ULL

/* ---- emulator main ------------------------------------------------------ */

void usage(FILE *f)
{
    fputs(
        "usage: linkemu [run] --ns-a NS --ns-b NS [options]\n"
        "       linkemu echo --port PORT [--bind ADDR] [--rt PRIO]\n"
        "       linkemu probe --to ADDR --port PORT [--count N] [--interval MS]\n"
        "                     [--size BYTES] [--wait MS] [--rt PRIO]\n"
        "\n"
        "run: create TUN device DEV-A in namespace A and DEV-B in namespace B\n"
        "(IFF_TUN|IFF_NO_PI, MTU set by --mtu; namespaces are names under\n"
        "/var/run/netns as made by 'ip netns add', or paths) and forward IP\n"
        "packets between them with impairments. The devices vanish when linkemu\n"
        "exits; addresses and 'link up' are the caller's job (see netns.sh).\n"
        "  --ns-a NS, --ns-b NS     namespaces (default: the current one)\n"
        "  --dev-a NAME, --dev-b NAME  TUN names (default emua, emub)\n"
        "  --both SPEC              impairments for both directions\n"
        "  --a2b SPEC, --b2a SPEC   per direction, applied on top of --both\n"
        "  --seed N                 PRNG seed (default 1)\n"
        "  --mtu N                  TUN MTU (default 1500)\n"
        "  --limit N                max packets held per direction (default 65536);\n"
        "                           beyond it packets count as drop_limit\n"
        "  --stats FILE             also write counters as key=value lines to FILE\n"
        "  --rt PRIO                run the forwarding threads SCHED_FIFO at PRIO\n"
        "                           (default 10; 0 = normal scheduling), so a loaded\n"
        "                           machine does not add delay the link was not asked\n"
        "                           for. Kernel RT throttling still leaves others 5%\n"
        "  --slack US               send packets up to US microseconds before they are\n"
        "                           due when that saves a wake-up (default 5). Each\n"
        "                           wake-up costs ~15-20 us of CPU on a VM, i.e. ~25%\n"
        "                           of a core at 100 Mbit/s paced with --rt; --slack\n"
        "                           250 sends in bursts of ~2 packets there for half.\n"
        "                           Long-run rates stay exact either way\n"
        "  --ctl FILE               on SIGUSR2, apply the command in FILE (one line):\n"
        "                           'down [MS] [a2b|b2a]': a blackout, the link carries\n"
        "                           nothing for MS ms from now (without MS: until 'up');\n"
        "                           every packet read, and every packet falling due, while\n"
        "                           it is down is dropped silently (drop_down), so the\n"
        "                           endpoints' sends still succeed;\n"
        "                           'up [a2b|b2a]': ends a blackout now. No direction\n"
        "                           means both. 'nat a|b BLOCK [BASE]': a NAT in front of\n"
        "                           that side, ports BASE (10000) + (BLOCK %% 10) * 1000 and\n"
        "                           the 999 above, every mapping forgotten (drop_nat counts what\n"
        "                           has none); 'nat off'. The stats file is rewritten as the\n"
        "                           answer (ctl_applied or ctl_rejected moves)\n"
        "\n"
        "SPEC is comma-separated key=value (all optional, default off/0):\n"
        "  delay=MS      one-way propagation delay, fractional allowed\n"
        "  jitter=MS     added to the delay: uniform in [-MS,+MS] (dist=uniform, the\n"
        "                default) or normal with sigma MS (dist=normal); the total\n"
        "                is clamped at 0 and packets stay FIFO (a packet never\n"
        "                leaves before the previous one), like netem with a rate\n"
        "  dist=uniform|normal\n"
        "  loss=PCT      independent random loss\n"
        "  ge_p=PCT      Gilbert-Elliott burst loss: P(Good->Bad) per packet\n"
        "  ge_r=PCT      P(Bad->Good) per packet (mean burst length 100/ge_r)\n"
        "  ge_h=PCT      loss in Bad state (default 100)\n"
        "  ge_k=PCT      loss in Good state (default 0)\n"
        "                per packet: state transition first, then loss with the new\n"
        "                state's probability; mean loss = (p*h + r*k)/(p+r).\n"
        "                Random and burst loss both see every packet; one lost\n"
        "                to both counts as drop_loss\n"
        "  dup=PCT       duplicate the packet (the copy also uses the bottleneck)\n"
        "  reorder=PCT   send the packet without the propagation delay and jitter,\n"
        "                so it overtakes every packet in flight (needs delay>0)\n"
        "  rate=MBIT     bottleneck rate in Mbit/s (10^6 bit/s); 0 = unlimited.\n"
        "                Serialization time = (IP length + overhead) * 8 / rate\n"
        "  queue=LIMIT   bottleneck queue, drop-tail: bytes (500000, 500k, 1.5m;\n"
        "                k=10^3, m=10^6) or packets (300p); default 1000p.\n"
        "                The packet being serialized counts; an empty queue\n"
        "                always accepts one packet\n"
        "  overhead=B    bytes added per packet for serialization only\n"
        "  trace=FILE    instead of rate: mahimahi's trace format, one integer a\n"
        "                line, the ms from the trace's start of one 1500-byte\n"
        "                delivery opportunity (repeated for several in one ms);\n"
        "                the trace repeats after its last time and starts when\n"
        "                linkemu does. Packets take the opportunities' bytes in\n"
        "                order (IP length + overhead); one that finds the queue\n"
        "                empty is wasted. queue= bounds the queue as with rate\n"
        "Order per packet: loss, burst loss, duplication, queue/rate, delay.\n"
        "Each impairment of each direction draws from its own xoshiro256**\n"
        "stream seeded from --seed, so a given packet sequence always meets the\n"
        "same decisions, and enabling one impairment does not shift another's.\n"
        "\n"
        "linkemu exits (as on SIGTERM) when its parent process dies.\n"
        "Prints 'linkemu: ready' on stderr once both TUNs are open. SIGUSR1\n"
        "prints the counters (and rewrites --stats FILE); SIGINT/SIGTERM print\n"
        "them and exit. Per direction (a2b = read from DEV-A, written to DEV-B):\n"
        "in_pkts in_bytes out_pkts out_bytes drop_loss drop_burst drop_queue\n"
        "drop_limit drop_down tx_err dup reorder queue_peak_bytes wakeups, and the\n"
        "NAT's nat_mapped (mappings made for packets leaving this way) and\n"
        "drop_nat. When idle: in_pkts + dup = out_pkts + drop_loss + drop_burst +\n"
        "drop_queue + drop_limit + drop_down + drop_nat + tx_err.\n"
        "down_until_ns: the CLOCK_MONOTONIC time (as time_ns) a blackout of that\n"
        "direction ends (0: never down; 18446744073709551615: until 'up'); the\n"
        "file's realtime_ns is CLOCK_REALTIME at the same moment as time_ns.\n"
        "reorder_ahead: reordered packets that did leave ahead of one that came\n"
        "in before them. What the link applied, for telling its doing from a\n"
        "loaded host's:\n"
        "delay_n delay_min_ns delay_max_ns (propagation delay given to packets\n"
        "not reordered, jitter and FIFO floor included), jitter_n jitter_min_ns\n"
        "jitter_max_ns (jitter as drawn, signed) jitter_hist_0..9 (draws in ten\n"
        "equal bins over [-jitter, +jitter]), late_max_ns late_1ms (how late\n"
        "packets were written: the largest, and how many by more than 1 ms).\n"
        "\n"
        "echo: UDP echo server on PORT (IPv4 and IPv6), until killed.\n"
        "  --rt PRIO (echo and probe): run SCHED_FIFO at PRIO\n"
        "probe: send COUNT numbered datagrams (default 100, SIZE bytes, default\n"
        "64) every MS ms (default 10) to an echo server, wait up to --wait MS\n"
        "(default 1000) after the last one (or the last echo, if later), print\n"
        "one line of key=value:\n"
        "sent recv lost loss_pct dup overtakers (packets that arrived before a\n"
        "lower-numbered one) loss_runs (stretches of consecutive lost numbers)\n"
        "send_err rtt_min_ms rtt_avg_ms rtt_max_ms rtt_mdev_ms rtt_p1_ms rtt_p50_ms\n"
        "rtt_p95_ms rtt_p99_ms (percentiles, nearest rank: a few packets the host delayed\n"
        "do not move them)\n"
        "pattern (64-bit hash of which sequence numbers came back). RTTs use the\n"
        "kernel's receive timestamps (SO_TIMESTAMPNS), not the probe's wake-up.\n",
        f);
}

/* Applies the command in ctl->file (read whole, at most one line):
 *   down [MS] [a2b|b2a]   the link carries nothing for MS milliseconds from
 *                         now (fractions allowed), or until "up" without MS
 *   up [a2b|b2a]          ends a blackout now
 *   nat a|b BLOCK [BASE]  a NAT in front of that side, ports of BLOCK, no
 *                         mapping kept (linkemu_nat.c); nat off: none
 * Without a direction both are meant. Returns 0 or -EINVAL (bad command,
 * no --ctl file or unreadable: nothing changed). */
static int ctl_apply(struct dir *dirs, const struct ctl *ctl)
{
    char line[256], *save = NULL;
    if (!ctl->file) {
        fprintf(stderr, "linkemu: SIGUSR2 without --ctl FILE: ignored\n");
        return -EINVAL;
    }
    FILE *f = fopen(ctl->file, "r");
    if (!f) {
        fprintf(stderr, "linkemu: %s: %s\n", ctl->file, strerror(errno));
        return -EINVAL;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);

    const char *verb = strtok_r(line, " \t\n", &save);
    const char *arg = strtok_r(NULL, " \t\n", &save);
    if (verb && !strcmp(verb, "nat")) {
        const char *block = arg ? strtok_r(NULL, " \t\n", &save) : NULL;
        const char *base = block ? strtok_r(NULL, " \t\n", &save) : NULL;
        if (!arg || strtok_r(NULL, " \t\n", &save) || nat_command(arg, block, base) < 0) {
            fprintf(stderr, "linkemu: %s: not 'nat a|b BLOCK [BASE]' or 'nat off'\n", ctl->file);
            return -EINVAL;
        }
        return 0;
    }
    double ms = -1;
    if (verb && !strcmp(verb, "down") && arg && !parse_double(arg, 0, 1e9, &ms))
        arg = strtok_r(NULL, " \t\n", &save);
    int which = -1; /* both */
    if (arg && !strcmp(arg, "a2b"))
        which = 0;
    else if (arg && !strcmp(arg, "b2a"))
        which = 1;
    else if (arg)
        verb = NULL;
    if (!verb || (strcmp(verb, "down") && strcmp(verb, "up")) || strtok_r(NULL, " \t\n", &save)) {
        fprintf(stderr, "linkemu: %s: not 'down [MS] [a2b|b2a]' or 'up [a2b|b2a]'\n", ctl->file);
        return -EINVAL;
    }
    uint64_t now = now_ns(), until = 0;
    if (!strcmp(verb, "down"))
        until = ms < 0 ? UINT64_MAX : now + (uint64_t)llround(ms * NS_PER_MS);
    for (int k = 0; k < 2; k++)
        if (which < 0 || which == k)
            atomic_store_explicit(&dirs[k].down_until, until, memory_order_relaxed);
    const char *name = which < 0 ? "a2b+b2a" : dirs[which].name;
    if (until == 0)
        fprintf(stderr, "linkemu: %s up\n", name);
    else if (until == UINT64_MAX)
        fprintf(stderr, "linkemu: %s down until told 'up'\n", name);
    else
        fprintf(stderr, "linkemu: %s down for %g ms (until time_ns=%" PRIu64 ")\n", name, ms,
                until);
    return 0;
}

static int run_main(int argc, char **argv)
{
    enum {
        O_NSA = 1, O_NSB, O_DEVA, O_DEVB, O_BOTH, O_A2B, O_B2A, O_SEED, O_MTU, O_LIMIT, O_STATS,
        O_SLACK, O_RT, O_CTL
    };
    static const struct option opts[] = {
        {"ns-a", required_argument, NULL, O_NSA},   {"ns-b", required_argument, NULL, O_NSB},
        {"dev-a", required_argument, NULL, O_DEVA}, {"dev-b", required_argument, NULL, O_DEVB},
        {"both", required_argument, NULL, O_BOTH},  {"a2b", required_argument, NULL, O_A2B},
        {"b2a", required_argument, NULL, O_B2A},    {"seed", required_argument, NULL, O_SEED},
        {"mtu", required_argument, NULL, O_MTU},    {"limit", required_argument, NULL, O_LIMIT},
        {"stats", required_argument, NULL, O_STATS}, {"slack", required_argument, NULL, O_SLACK},
        {"rt", required_argument, NULL, O_RT},      {"ctl", required_argument, NULL, O_CTL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *ns[2] = {NULL, NULL}, *dev[2] = {"emua", "emub"};
    const char *both = NULL, *spec[2] = {NULL, NULL}, *stats_file = NULL;
    struct ctl ctl = {NULL, 0, 0};
    uint64_t seed = 1, mtu = 1500, limit = 65536, slack_ns = SLACK_NS_DEFAULT, rt = 10;
    double slack_us;
    static struct dir dirs[2];
    int fds[2] = {-1, -1}, stop_fd = -1, started = 0, rc = 1, c;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_NSA: ns[0] = optarg; break;
        case O_NSB: ns[1] = optarg; break;
        case O_DEVA: dev[0] = optarg; break;
        case O_DEVB: dev[1] = optarg; break;
        case O_BOTH: both = optarg; break;
        case O_A2B: spec[0] = optarg; break;
        case O_B2A: spec[1] = optarg; break;
        case O_SEED: bad = parse_u64(optarg, 0, UINT64_MAX, &seed); break;
        case O_MTU: bad = parse_u64(optarg, 68, 65535, &mtu); break;
        case O_LIMIT: bad = parse_u64(optarg, 16, 1u << 24, &limit); break;
        case O_STATS: stats_file = optarg; break;
        case O_CTL: ctl.file = optarg; break;
        case O_RT: bad = parse_u64(optarg, 0, 99, &rt); break;
        case O_SLACK:
            bad = parse_double(optarg, 0, 1e6, &slack_us);
            slack_ns = (uint64_t)(slack_us * 1000);
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "linkemu: bad value '%s'\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    for (int k = 0; k < 2; k++) {
        struct dir *d = &dirs[k];
        d->name = k == 0 ? "a2b" : "b2a";
        impair_default(&d->im);
        if ((both && parse_spec(both, &d->im)) || (spec[k] && parse_spec(spec[k], &d->im)))
            return 2;
        d->delay_ns = (uint64_t)llround(d->im.delay_ms * NS_PER_MS);
        d->slack_ns = slack_ns;
        d->rate_bps = (uint64_t)llround(d->im.rate_mbit * 1e6);
        if (d->im.trace) {
            if (d->rate_bps) {
                fprintf(stderr, "linkemu: %s: rate and trace exclude each other\n", d->name);
                return 2;
            }
            if (trace_load(d, d->im.trace))
                return 2;
        }
        for (unsigned s = 0; s < ST_COUNT; s++)
            rng_seed(&d->r[s], seed, (unsigned)k * ST_COUNT + s);
        if (pool_init(d, (size_t)mtu, (size_t)limit)) {
            fprintf(stderr, "linkemu: out of memory\n");
            goto out;
        }
    }

    /* If the script that started us is killed outright (SIGKILL, no trap),
     * do not live on holding its namespaces' devices. */
    prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0);

    for (int k = 0; k < 2; k++) {
        fds[k] = tun_open_in(ns[k], dev[k], (int)mtu);
        if (fds[k] < 0)
            goto out;
    }
    stop_fd = eventfd(0, EFD_CLOEXEC);
    if (stop_fd < 0) {
        perror("linkemu: eventfd");
        goto out;
    }
    dirs[0].in_fd = fds[0], dirs[0].out_fd = fds[1];
    dirs[1].in_fd = fds[1], dirs[1].out_fd = fds[0];

    /* Workers inherit the blocked mask: only sigwaitinfo() below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* The default 50 us timer slack would blur pacing (120 us per packet at
     * 100 Mbit/s); the slack is per thread and inherited. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    uint64_t t0 = now_ns();
    for (int k = 0; k < 2; k++) /* both traces start now */
        dirs[k].tr_t0 = t0;
    for (int k = 0; k < 2; k++) {
        char desc[768];
        dirs[k].stop_fd = stop_fd;
        impair_describe(&dirs[k].im, desc, sizeof(desc));
        fprintf(stderr, "linkemu: %s %s\n", dirs[k].name, desc);
        int e = pthread_create(&dirs[k].th, NULL, dir_run, &dirs[k]);
        if (e) {
            fprintf(stderr, "linkemu: pthread_create: %s\n", strerror(e));
            goto stop;
        }
        pthread_setname_np(dirs[k].th, k == 0 ? "linkemu-a2b" : "linkemu-b2a");
        set_rt(dirs[k].th, (int)rt, dirs[k].name);
        started++;
    }
    fprintf(stderr,
            "linkemu: ready a=%s/%s b=%s/%s seed=%" PRIu64 " mtu=%" PRIu64 " rt=%" PRIu64
            " slack=%" PRIu64 "ns\n",
            ns[0] ? ns[0] : "-", dev[0], ns[1] ? ns[1] : "-", dev[1], seed, mtu, rt, slack_ns);
    if (stats_file)
        stats_dump(dirs, 2, t0, stats_file, 0, &ctl);

    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            perror("linkemu: sigwaitinfo");
            break;
        }
        if (sig == SIGUSR1) {
            stats_dump(dirs, 2, t0, stats_file, 0, &ctl);
            continue;
        }
        if (sig == SIGUSR2) {
            /* The rewritten stats file is the answer: ctl_applied or
             * ctl_rejected has moved, and *_down_until_ns says until when. */
            if (ctl_apply(dirs, &ctl) == 0)
                ctl.applied++;
            else
                ctl.rejected++;
            stats_dump(dirs, 2, t0, stats_file, 0, &ctl);
            continue;
        }
        break;
    }
    rc = 0;
stop:
    if (eventfd_write(stop_fd, 1) < 0)
        perror("linkemu: eventfd_write");
    for (int k = 0; k < started; k++)
        pthread_join(dirs[k].th, NULL);
    stats_dump(dirs, 2, t0, stats_file, 1, &ctl);
out:
    for (int k = 0; k < 2; k++) {
        if (fds[k] >= 0)
            close(fds[k]);
        pool_fini(&dirs[k]);
    }
    if (stop_fd >= 0)
        close(stop_fd);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "echo"))
        return echo_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "probe"))
        return probe_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "run"))
        return run_main(argc - 1, argv + 1);
    return run_main(argc, argv);
}
