#!/usr/bin/env python3
"""The benchmark's table (integration/bench/run.sh, through report.py
table DIR): reads DIR/results.tsv and DIR/meta.tsv (and DIR/cryptocost.txt,
if there), prints the table (also to DIR/table.txt), writes the gnuplot data
files and DIR/bench.gp. No third-party modules."""
import math
import os
import sys

import report_targets
from report_targets import fmt, ratio

def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2



# ---------------------------------------------------------------- table

def load(d):
    res = {}   # (scenario, transport, metric) -> [values]
    order = []  # transports in first-seen order
    with open(os.path.join(d, "results.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            sc, tr, run, metric, val = line.rstrip("\n").split("\t")
            lst = res.setdefault((sc, tr, metric), [])
            if val != "NA":
                lst.append(float(val))
            if tr not in order:
                order.append(tr)
    meta = {}
    if os.path.exists(os.path.join(d, "meta.tsv")):
        with open(os.path.join(d, "meta.tsv")) as f:
            for line in f:
                if "\t" in line:
                    k, v = line.rstrip("\n").split("\t", 1)
                    meta[k] = v
    return res, order, meta


def sort_transports(trs):
    """Kernel TCP, then rudp by controller; a keyed row right after its
    controller's unkeyed one."""
    def key(t):
        if t.startswith("tcp-"):
            return (0, ["cubic", "bbr"].index(t[4:]) if t[4:] in ("cubic", "bbr") else 9, t)
        order = ["newreno", "cubic", "bbr"]
        base = unkeyed(t)[5:]
        return (1, order.index(base) if base in order else 9, base, t != unkeyed(t))
    return sorted(trs, key=key)


KEYED = "+key"


def unkeyed(tr):
    """The unkeyed transport of keyed tr (rudp-bbr+key: rudp-bbr); tr itself
    otherwise."""
    return tr[:-len(KEYED)] if tr.endswith(KEYED) else tr


# Issue 13's cost of keyed mode, keyed goodput / unkeyed: at 100 Mbit/s
# within 2 %, on loopback (B6; B11's veth pair, no emulator) at least 0.8x.
# B9 is measured too, with no target.
KEYED_TARGET = {"B1": 0.98, "B2": 0.98, "B3": 0.98, "B4": 0.98, "B6": 0.8, "B11": 0.8}


class Table:
    def __init__(self):
        self.lines = []

    def out(self, s=""):
        self.lines.append(s)

    def grid(self, head, rows):
        w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
        line = lambda r: "  ".join((str(c).ljust(w[i]) if i == 0 else str(c).rjust(w[i]))
                                   for i, c in enumerate(r))
        self.out("  " + line(head))
        for r in rows:
            self.out("  " + line(r))


def cmd_table(d):
    res, order, meta = load(d)
    trs = sort_transports(order)
    rudp = [t for t in trs if t.startswith("rudp-")]
    link = float(meta.get("link_mbit", "100"))
    nruns = meta.get("runs", "?")

    def med(sc, tr, metric):
        return median(res.get((sc, tr, metric), []))

    def n_ok(sc, tr, metric):
        return len(res.get((sc, tr, metric), []))

    T = Table()
    T.out("librudp_shim benchmark: median of %s runs per figure; rudp rows have both ends "
          "under the shim, tcp rows are kernel TCP without it, over the same emulated link "
          "in the same run." % nruns)
    for k in ("machine", "kernel", "commit", "date", "load"):
        if k in meta:
            T.out("%-8s %s" % (k + ":", meta[k]))
    T.out()
    dat = {}

    scenarios = sorted({k[0] for k in res})
    def limit(sc, tr, g):
        """What limited a bulk flow: kernel TCP's own account of its stalls
        (TCP_INFO chrono) when it says the send buffer or the peer's window
        held it half the time, else the sender's TCP_INFO samples."""
        for m, name in (("sndbuf_time_pct", "sndbuf"), ("rwnd_time_pct", "window")):
            v = med(sc, tr, m)
            if v is not None and v >= 50:
                return "%s %.0f%% of time" % (name, v)
        shares = [(med(sc, tr, m), name) for m, name in
                  (("cwnd_lim_pct", "cwnd"), ("rwnd_lim_pct", "window"), ("app_lim_pct", "app"))]
        shares = [(v, n) for v, n in shares if v is not None]
        if not shares:
            return "-"
        v, n = max(shares)
        if v >= 50:
            return "%s %.0f%%" % (n, v)
        pace = med(sc, tr, "pacing_mbps")
        if pace and g and pace < 1.3 * g:
            return "pacing"
        return "none (%s %.0f%%)" % (n, v)

    shorts = set()  # scenarios whose kernel reference fell short of the line rate
    for sc in ("B1", "B2", "B3", "B4", "B9", "B10", "B11") + B21_BULK:
        if sc not in scenarios:
            continue
        T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
        sc_link = meta.get("link_" + sc, str(link))
        sc_link = None if sc_link == "NA" else float(sc_link)
        refline, short = report_targets.reference(sc, med, meta, sc_link)
        if short:
            shorts.add(sc)
        nc = " (nc)" if short else ""
        head = ["transport", "Mbit/s", "%link", "retx%", "repair%", "loss%", "x tcp-bbr",
                "x tcp-cubic", "limited by", "emu CPU%", "runs"]
        rows = []
        bbr = med(sc, "tcp-bbr", "goodput")
        cub = med(sc, "tcp-cubic", "goodput")
        for tr in trs:
            g = med(sc, tr, "goodput")
            if (sc, tr, "goodput") not in res:
                continue
            is_rudp = tr.startswith("rudp-")
            rows.append([tr, fmt(g),
                         fmt(None if g is None or sc_link is None else 100 * g / sc_link, "%.1f%%"),
                         fmt(med(sc, tr, "retx_pct"), "%.2f"),
                         fmt(med(sc, tr, "repair_pct"), "%.2f") if is_rudp else "",
                         fmt(med(sc, tr, "loss_pct"), "%.2f"),
                         fmt(ratio(g, bbr), "%.2f") + nc if is_rudp else "",
                         fmt(ratio(g, cub), "%.2f") if is_rudp else "",
                         limit(sc, tr, g),
                         fmt(med(sc, tr, "emu_cpu_pct"), "%.0f"),
                         "%d/%s" % (n_ok(sc, tr, "goodput"), nruns)])
            key = "bulk" if sc in ("B1", "B2", "B3", "B4") else "mtu" if sc in B21_BULK else "fast"
            dat.setdefault(key, {})[(sc, tr)] = g
        T.grid(head, rows)
        if refline:
            T.out(refline)
        if sc in B21_BULK:
            mtu_sizes(T, sc, trs, res, med)
        report_targets.bulk_costs(T, sc, trs, res, med)
        T.out()
    if "B21-hole" in scenarios:
        hole_table(T, res, trs, nruns, med, n_ok, meta)
    if any(sc in scenarios for sc in ("B1", "B2", "B3", "B4", "B9", "B10", "B11") + B21_BULK):
        T.out("  limited by: the sender's TCP_INFO, averaged over its writes: cwnd (in flight "
              "within 2 MSS of cwnd), window (the peer's), app (nothing to send) when one holds "
              "in half the samples or more; else pacing when the mean pacing rate is under "
              "1.3x the goodput; else none, with the largest share; kernel TCP's own account "
              "(sndbuf, window: its TCP_INFO chrono) first when it names one for half its busy "
              "time. emu CPU%: "
              "the emulator's a->b thread; near 100 it set the pace. (nc): not counted, the "
              "kernel reference fell short of the line rate.")
        T.out(report_targets.BULK_COST_NOTE)
        if "tuning" in meta:
            T.out("  tuning: " + meta["tuning"])
        T.out()

    if "B12" in scenarios:
        T.out("B12  %s" % meta.get("desc_B12", ""))
        head = ["transport", "all answered ms", "of it connect() ms",
                "CPU us/conn cli/srv", "switches/conn cli/srv", "rcvbuf drops",
                "retransmitted pkts",
                "probe timeouts", "after", "moves", "server bytes/conn", "runs"]
        rows = []
        for tr in trs:
            if ("B12", tr, "fanin_ms") not in res:
                continue
            rows.append([tr, fmt(med("B12", tr, "fanin_ms"), "%.0f"),
                         fmt(med("B12", tr, "connect_ms"), "%.0f"),
                         "%s / %s" % (fmt(med("B12", tr, "cpu_us_conn_cli"), "%.0f"),
                                      fmt(med("B12", tr, "cpu_us_conn_srv"), "%.0f")),
                         "%s / %s" % tuple(fmt(None if v is None else v / 100.0, "%.2f")
                                           for v in (med("B12", tr, "cs_100conn_cli"),
                                                     med("B12", tr, "cs_100conn_srv"))),
                         fmt(med("B12", tr, "rcvbuf_drops"), "%.0f"),
                         fmt(med("B12", tr, "retx_pkts"), "%.0f"),
                         fmt(med("B12", tr, "pto"), "%.0f") if tr.startswith("rudp-") else "",
                         fmt(med("B12", tr, "pto_all"), "%.0f") if tr.startswith("rudp-") else "",
                         fmt(med("B12", tr, "moves"), "%.0f") if tr.startswith("rudp-") else "",
                         fmt(med("B12", tr, "mem_per_conn"), "%.0f"),
                         "%d/%s" % (n_ok("B12", tr, "fanin_ms"), nruns)])
        T.grid(head, rows)
        T.out("  of it connect() ms: the client's 3,500 connect() calls, one after another "
              "(from the first to the last's return). CPU us/conn, switches/conn: each "
              "program's CPU and context switches, every thread's (getrusage: the shim's engines and the kernel's work in them "
              "included), per connection: the client's from its first connect to the last "
              "answer, the server's from listen to its last answer. "
              "retransmitted pkts: kernel TCP's Tcp RetransSegs in the namespace; rudp: "
              "packets declared lost and resent, both ends (RUDP_STATS), probes counted apart. "
              "probe timeouts: both programs' own until each ended (the fan-in); after: with "
              "what their keepers did after them (closing), one count per program. moves: "
              "peers moved and connections moved to a new socket, both ends. "
              "server bytes/conn: the server's RSS growth per connection (rudp: engine "
              "included; kernel TCP's socket memory is the kernel's, not in RSS).")
        T.out()

    for sc, metrics, names in (("B13", ("set_rps", "get_rps"), ("SET/s", "GET/s")),
                               ("B14", ("rps",), ("requests/s",)),
                               ("B25", ("rps",), ("requests/s",))):
        if sc not in scenarios:
            continue
        T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
        head = ["transport"]
        for n in names:
            head += [n, "x tcp-cubic"]
        head.append("runs")
        rows = []
        for tr in trs:
            if (sc, tr, metrics[0]) not in res:
                continue
            row = [tr]
            for m in metrics:
                v = med(sc, tr, m)
                row += [fmt(v, "%.0f"),
                        fmt(ratio(v, med(sc, "tcp-cubic", m)), "%.2f") if tr.startswith("rudp-") else ""]
            row.append("%d/%s" % (n_ok(sc, tr, metrics[0]), nruns))
            rows.append(row)
        T.grid(head, rows)
        report_targets.req_costs(T, sc, trs, res, med, "request (SET and GET)")
        T.out()

    for sc, extra in (("B15", (("changes survived", "survived", "%.0f"),)),
                      ("B16", (("resume s", "resume_s", "%.2f"), ("MB read in blackout", "down_mb", "%.1f")))):
        if sc not in scenarios:
            continue
        T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
        head = ["transport", "complete", "total s", "Mbit/s"] + [e[0] for e in extra] + ["runs"]
        rows = []
        for tr in trs:
            if (sc, tr, "complete") not in res:
                continue
            row = [tr, "%d/%d" % (sum(res[(sc, tr, "complete")]), n_ok(sc, tr, "complete")),
                   fmt(med(sc, tr, "total_s"), "%.1f"), fmt(med(sc, tr, "goodput"), "%.2f")]
            row += [fmt(med(sc, tr, m), f) for _, m, f in extra]
            rows.append(row + ["%d/%s" % (n_ok(sc, tr, "complete"), nruns)])
        T.grid(head, rows)
        # Each run in words: how a transfer that did not complete failed.
        for k in sorted(meta):
            if k.startswith("outcome_%s_" % sc) and not meta[k].startswith("complete"):
                tr, run = k[len("outcome_%s_" % sc):].rsplit("_", 1)
                T.out("  %s run %s: %s" % (tr, run, meta[k]))
        T.out("  total s: connect to the last byte read (complete runs); Mbit/s: the bytes over "
              "that time." + (" resume s: the link's return to the next byte read at the "
                              "receiver." if sc == "B16" else " changes survived: address "
                              "changes after which bytes still arrived."))
        T.out()

    if "B5" in scenarios:
        T.out("B5  %s" % meta.get("desc_B5", ""))
        head = ["transport", "p50 ms", "p99 ms", "max ms", "mean ms", "p50-RTT", "p99 x tcp-cubic", "runs"]
        rows = []
        rtt = float(meta.get("rtt_B5", "40"))
        c99 = med("B5", "tcp-cubic", "p99_ms")
        for tr in trs:
            if ("B5", tr, "p50_ms") not in res:
                continue
            p50, p99 = med("B5", tr, "p50_ms"), med("B5", tr, "p99_ms")
            rows.append([tr, fmt(p50, "%.2f"), fmt(p99, "%.1f"), fmt(med("B5", tr, "max_ms"), "%.1f"),
                         fmt(med("B5", tr, "mean_ms"), "%.2f"),
                         fmt(None if p50 is None else p50 - rtt, "%+.2f"),
                         fmt(ratio(p99, c99), "%.2f") if tr.startswith("rudp-") else "",
                         "%d/%s" % (n_ok("B5", tr, "p50_ms"), nruns)])
            dat.setdefault("rr", {})[tr] = (p50, p99, med("B5", tr, "max_ms"))
        T.grid(head, rows)
        report_targets.req_costs(T, "B5", trs, res, med, "echo")
        T.out()

    for sc in ("B18", "B19"):
        if sc in scenarios:
            trace_table(T, sc, res, trs, nruns, med, n_ok, meta)
    if "B17" in scenarios:
        fetch_table(T, res, trs, nruns, med, n_ok, meta)
    if any(k[0] == "B17T" for k in res):
        fetch_table(T, res, trs, nruns, med, n_ok, meta, "B17T")

    if "B6" in scenarios:
        T.out("B6  %s" % meta.get("desc_B6", ""))
        head = ["transport", "Mbit/s", "x tcp-cubic", "1B rtt p50 us", "p99 us", "mean us",
                "rtt x tcp-cubic", "1 CPU p50 us", "x tcp-cubic", "1 CPU poll p50 us",
                "x tcp-cubic", "1 CPU container p50 us", "x tcp-cubic", "runs"]
        rows = []
        cub = med("B6", "tcp-cubic", "goodput")
        crtt = med("B6", "tcp-cubic", "rtt1_p50_us")
        c1 = med("B6", "tcp-cubic", "rtt1cpu_p50_us")
        c1p = med("B6", "tcp-cubic", "rtt1cpu_poll_p50_us")
        c1c = med("B6", "tcp-cubic", "rtt1cpu_ctr_p50_us")
        for tr in trs:
            if ("B6", tr, "goodput") not in res and ("B6", tr, "rtt1_p50_us") not in res:
                continue
            g = med("B6", tr, "goodput")
            r50 = med("B6", tr, "rtt1_p50_us")
            isr = tr.startswith("rudp-")
            rows.append([tr, fmt(g, "%.0f"), fmt(ratio(g, cub), "%.2f") if isr else "",
                         fmt(r50, "%.1f"), fmt(med("B6", tr, "rtt1_p99_us"), "%.1f"),
                         fmt(med("B6", tr, "rtt1_mean_us"), "%.1f"),
                         fmt(ratio(r50, crtt), "%.2f") if isr else "",
                         fmt(med("B6", tr, "rtt1cpu_p50_us"), "%.1f"),
                         fmt(ratio(med("B6", tr, "rtt1cpu_p50_us"), c1), "%.2f") if isr else "",
                         fmt(med("B6", tr, "rtt1cpu_poll_p50_us"), "%.1f"),
                         fmt(ratio(med("B6", tr, "rtt1cpu_poll_p50_us"), c1p), "%.2f")
                         if isr else "",
                         fmt(med("B6", tr, "rtt1cpu_ctr_p50_us"), "%.1f"),
                         fmt(ratio(med("B6", tr, "rtt1cpu_ctr_p50_us"), c1c), "%.2f")
                         if isr else "",
                         "%d/%s" % (n_ok("B6", tr, "goodput"), nruns)])
            dat.setdefault("lo", {})[tr] = g
            dat.setdefault("lortt", {})[tr] = (r50, med("B6", tr, "rtt1_mean_us"))
        T.grid(head, rows)
        report_targets.req_costs(T, "B6", trs, res, med, "1-byte round trip (warm-up included)")
        T.out()

    if "B20" in scenarios:
        reach_table(T, res, nruns, med, n_ok, meta)

    if "B22-stall" in scenarios or "B22-cost" in scenarios:
        hand_tables(T, res, trs, nruns, med, n_ok, meta)

    if "B23" in scenarios:
        ends_table(T, res, trs, nruns, med, n_ok, meta)

    if "B24" in scenarios:
        ceiling_table(T, res, nruns, med, n_ok, meta)

    if "B7" in scenarios:
        T.out("B7  %s" % meta.get("desc_B7", ""))
        head = ["pair", "rudp Mbit/s", "cubic Mbit/s", "rudp %link", "cubic %link",
                "rudp share", "runs"]
        rows = []
        for tr in sort_transports({k[1] for k in res if k[0] == "B7"}):
            r = med("B7", tr, "rudp_goodput")
            c = med("B7", tr, "cubic_goodput")
            sh = med("B7", tr, "rudp_share_pct")
            rows.append([tr + " + tcp-cubic", fmt(r), fmt(c),
                         fmt(None if r is None else 100 * r / link, "%.1f%%"),
                         fmt(None if c is None else 100 * c / link, "%.1f%%"),
                         fmt(sh, "%.1f%%"), "%d/%s" % (n_ok("B7", tr, "rudp_share_pct"), nruns)])
            dat.setdefault("fair", {})[tr] = (r, c)
        T.grid(head, rows)
        T.out()

    if "B8" in scenarios:
        T.out("B8  %s" % meta.get("desc_B8", ""))
        b8trs = [t for t in trs if ("B8", t, "flood_ratio") in res]
        ctl = any(("B8", t, "control_ratio") in res for t in b8trs)
        head = ["transport", "no flood", "flood", "ratio", "worst", "SYN pps", "junk pps",
                "peak RSS MB", "runs"]
        if ctl:
            head[5:5] = ["flood elsewhere", "ratio"]
        rows = []
        for tr in b8trs:
            base, fl = med("B8", tr, "goodput_base"), med("B8", tr, "goodput_flood")
            rss = "-"
            if tr.startswith("rudp-"):
                rss = "%s / %s" % (fmt(med("B8", tr, "peak_rss_mb_base")),
                                   fmt(med("B8", tr, "peak_rss_mb_flood")))
            fls = res.get(("B8", tr, "goodput_flood"), [])
            row = [tr, fmt(base), fmt(fl), fmt(med("B8", tr, "flood_ratio"), "%.2f"),
                   fmt(min(fls) if fls else None),
                   fmt(med("B8", tr, "syn_pps"), "%.0f"), fmt(med("B8", tr, "junk_pps"), "%.0f"),
                   rss, "%d/%s" % (n_ok("B8", tr, "flood_ratio"), nruns)]
            if ctl:
                row[5:5] = [fmt(med("B8", tr, "goodput_control")),
                            fmt(med("B8", tr, "control_ratio"), "%.2f")]
            rows.append(row)
            dat.setdefault("flood", {})[tr] = (base, fl)
        T.grid(head, rows)
        T.out("  what the floods cost (no flood / flood, in the receiver's window):")
        head = ["transport", "spoof replies/s", "b->a kbit/s", "a->b q drops", "retx%",
                "sender srtt ms", "rcvbuf drops", "SYN cookies", "recv CPU% app", "engine",
                "machine busy%"]
        rows = []
        two = lambda tr, m, f="%.0f": "%s / %s" % (fmt(med("B8", tr, m + "_base"), f),
                                                  fmt(med("B8", tr, m + "_flood"), f))
        for tr in b8trs:
            isr = tr.startswith("rudp-")
            rows.append([tr, fmt(med("B8", tr, "spoof_replies_ps_flood"), "%.0f"), two(tr, "b2a_kbps"),
                         two(tr, "a2b_qdrops"), two(tr, "retx_pct", "%.2f"),
                         two(tr, "srtt_ms", "%.1f"), two(tr, "rcvbuf_errs"), "" if isr else two(tr, "syncookies"),
                         two(tr, "app_cpu_pct"), two(tr, "engine_cpu_pct") if isr else "",
                         two(tr, "busy_pct")])
        T.grid(head, rows)
        rtrs = [t for t in b8trs if t.startswith("rudp-")]
        if rtrs:
            T.out("  rudp: the receiver's RUDP_STATS, the sender's retransmitted packets "
                  "(no flood / flood):")
            head = ["transport", "datagrams in", "malformed", "unknown conn", "resets sent",
                    "hs dropped", "data dropped", "datagrams out", "sender retx"]
            rows = [[tr, two(tr, "dgrams_in"), two(tr, "malformed"), two(tr, "unknown_conn"),
                     two(tr, "resets_sent"), two(tr, "hs_dropped"), two(tr, "data_dropped"),
                     two(tr, "dgrams_out"), two(tr, "retx_pkts")] for tr in rtrs]
            T.grid(head, rows)
        T.out()

    keyed_table(T, res, trs, nruns, med, n_ok, d)
    report_targets.targets(T, res, trs, med, meta, shorts)
    report_targets.targets46(T, res, trs, med, shorts, limit)

    for k in sorted(meta):
        if k.startswith("note"):
            T.out(meta[k])
    text = "\n".join(T.lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(d, "table.txt"), "w") as f:
        f.write(text)
    write_plot(d, dat, trs, meta)


# Issue 32's targets on the recorded LTE links, against kernel bbr in the
# same run: the delay-aware mode (rudp-copa) at least 0.9x its goodput with
# at most 0.5x its ping p95; the default (rudp-bbr) no worse on either.
TRACE_DELAY_AWARE = {"rudp-copa": (0.9, 0.5)}
TRACE_DEFAULT = {"rudp-bbr": (1.0, 1.0)}


def trace_table(T, sc, res, trs, nruns, med, n_ok, meta):
    """B18/B19: goodput and the delay a ping met in the same queue, each
    beside kernel bbr's; kernel bbr against the trace's capacity as the
    check that the link is what it claims."""
    T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
    head = ["transport", "Mbit/s", "x tcp-bbr", "ping p50 ms", "p95 ms", "p99 ms", "p95 x tcp-bbr",
            "ping loss%", "retx%", "q drops", "target", "runs"]
    rows = []
    bg, bp = med(sc, "tcp-bbr", "goodput"), med(sc, "tcp-bbr", "ping_p95_ms")
    for tr in trs:
        if (sc, tr, "goodput") not in res:
            continue
        g, p95 = med(sc, tr, "goodput"), med(sc, tr, "ping_p95_ms")
        rg, rp = ratio(g, bg), ratio(p95, bp)
        tgt = ""
        want = TRACE_DELAY_AWARE.get(tr) or TRACE_DEFAULT.get(tr)
        if want and rg is not None and rp is not None:
            ok = rg >= want[0] - (0.02 if tr in TRACE_DEFAULT else 0) and \
                rp <= want[1] + (0.05 if tr in TRACE_DEFAULT else 0)
            tgt = "%s (>=%.1fx, <=%.1fx)" % ("met" if ok else "MISSED", want[0], want[1])
        rows.append([tr, fmt(g, "%.2f"), fmt(rg, "%.2f") if tr != "tcp-bbr" else "",
                     fmt(med(sc, tr, "ping_p50_ms"), "%.0f"), fmt(p95, "%.0f"),
                     fmt(med(sc, tr, "ping_p99_ms"), "%.0f"),
                     fmt(rp, "%.2f") if tr != "tcp-bbr" else "",
                     fmt(med(sc, tr, "ping_loss_pct"), "%.1f"), fmt(med(sc, tr, "retx_pct"), "%.2f"),
                     fmt(med(sc, tr, "qdrops"), "%.0f"), tgt,
                     "%d/%s" % (n_ok(sc, tr, "goodput"), nruns)])
    T.grid(head, rows)
    cap, link = med(sc, "tcp-bbr", "cap_mbps"), med(sc, "tcp-bbr", "link_mbps")
    T.out("  check: tcp-bbr %s Mbit/s of goodput; the trace offered %s Mbit/s over its run's window "
          "(its link carried %s, IP bytes): goodput is %s of the capacity." %
          (fmt(bg, "%.2f"), fmt(cap, "%.2f"), fmt(link, "%.2f"),
           fmt(None if ratio(bg, cap) is None else 100 * ratio(bg, cap), "%.0f%%")))
    T.out("  ping: 64-byte UDP through the a -> b queue behind the bulk data, round trip "
          "(base 40 ms); nearest-rank percentiles of the echoes that came back. target: issue "
          "32's, against tcp-bbr in the same run (default rudp-bbr: no worse, 2 %/5 % noise "
          "allowed).")


# B21 (b21_mtu.sh, issue 44): bulk rows at MTU 1280 (fragments dropped),
# 1500, 9000 and through WireGuard, printed as B1's are, with the sizes
# below; then the black hole's table.
B21_BULK = ("B21-1280", "B21-1500", "B21-9000", "B21-wg")


def mtu_sizes(T, sc, trs, res, med):
    """B21: the IP fragments the receivers dropped, and rudp's datagrams."""
    parts = []
    for tr in trs:
        if (sc, tr, "frags") not in res:
            continue
        p = "%s %s" % (tr, fmt(med(sc, tr, "frags"), "%.0f"))
        if tr.startswith("rudp-"):
            p += " (datagrams of %s bytes on average, sizes raised %s)" % (
                fmt(med(sc, tr, "dgram_avg"), "%.0f"), fmt(med(sc, tr, "pmtu_raised"), "%.0f"))
        parts.append(p)
    if parts:
        T.out("  IP fragments dropped: " + ", ".join(parts))


def recovery_rows(sc, trs, res, nruns, med, n_ok, metric, ref, ratio_fmt, extras):
    """Rows of a recovery table (B21-hole, B22-stall): the transport, its
    complete runs, the median of metric in s, its ratio to ref, then for
    rudp the medians of extras ((metric, format) pairs), and the runs."""
    rows = []
    for tr in trs:
        if (sc, tr, "complete") not in res:
            continue
        isr = tr.startswith("rudp-")
        v = med(sc, tr, metric)
        rows.append([tr, "%d/%d" % (sum(res[(sc, tr, "complete")]), n_ok(sc, tr, "complete")),
                     fmt(v, "%.3f"), fmt(ratio(v, ref), ratio_fmt) if isr else ""] +
                    [fmt(med(sc, tr, m), f) if isr else "" for m, f in extras] +
                    ["%d/%s" % (n_ok(sc, tr, metric), nruns)])
    return rows


def hole_table(T, res, trs, nruns, med, n_ok, meta):
    """B21-hole: from a black hole's start to the bytes flowing again."""
    sc = "B21-hole"
    T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
    head = ["transport", "complete", "resumed after s", "x tcp-cubic", "black holes suspected",
            "found", "runs"]
    rows = recovery_rows(sc, trs, res, nruns, med, n_ok, "resume_s",
                         med(sc, "tcp-cubic", "resume_s"), "%.2f",
                         [("bh_suspected", "%.0f"), ("bh_found", "%.0f")])
    T.grid(head, rows)
    T.out("  resumed after: the black hole's start to the end of the longest silence at the "
          "receiver after it (its first byte read after the fallback), complete runs only. "
          "rudp falls back to 1200-byte datagrams after two probe timeouts with full-size "
          "packets out; kernel TCP (tcp_mtu_probing=1) lowers its MSS after retransmission "
          "timeouts.")
    T.out()


def hand_tables(T, res, trs, nruns, med, n_ok, meta):
    """B22 (b22_hand.sh, issue 48): the stall of a download whose primary
    path goes silent, and what the standby path costs while idle."""
    sc = "B22-stall"
    if any(k[0] == sc for k in res):
        T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
        head = ["transport", "complete", "longest gap s", "x kernel's", "to standby s",
                "back s", "runs"]
        ref = None
        for tr in trs:
            if tr.startswith("tcp-") and (sc, tr, "stall_s") in res:
                v = med(sc, tr, "stall_s")
                ref = v if ref is None or (v is not None and v < ref) else ref
        rows = recovery_rows(sc, trs, res, nruns, med, n_ok, "stall_s", ref, "%.3f",
                             [("move_s", "%.3f"), ("back_s", "%.3f")])
        T.grid(head, rows)
        T.out("  longest gap: between two reads at the receiver across the 10 s cut (kernel "
              "TCP's: its backed-off retransmission after the primary's return); x kernel's: "
              "against the shortest kernel TCP gap of the run. to standby: the cut to the "
              "client's move (its log), back: the primary's return to the move back.")
        T.out()
    sc = "B22-cost"
    if any(k[0] == sc for k in res):
        T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
        head = ["transport", "datagrams", "bytes", "datagrams/hour", "kB/hour", "runs"]
        rows = []
        for tr in trs:
            if (sc, tr, "dgrams") not in res:
                continue
            rows.append([tr, fmt(med(sc, tr, "dgrams"), "%.0f"), fmt(med(sc, tr, "bytes"), "%.0f"),
                         fmt(med(sc, tr, "dgrams_h"), "%.0f"), fmt(med(sc, tr, "kbytes_h"), "%.1f"),
                         "%d/%s" % (n_ok(sc, tr, "dgrams"), nruns)])
        T.grid(head, rows)
        T.out("  client and server together, UDP payload (add 28 bytes of IPv4 and UDP headers "
              "per datagram); per hour: the count over the idle time, the connection's first "
              "validation included.")
        T.out()


def ends_table(T, res, trs, nruns, med, n_ok, meta):
    """B23 (b23_ends.sh, issue 46): each end's CPU per GB, the kernel's
    work for it included wherever it ran (report_ends.py)."""
    sc = "B23"
    T.out("%s  %s" % (sc, meta.get("desc_" + sc, "")))
    head = ["transport", "Mbit/s", "sender s/GB", "x tcp-bbr", "its process",
            "receiver s/GB", "x tcp-bbr", "its process", "the link", "unattributed", "runs"]
    rs, rr = med(sc, "tcp-bbr", "snd_s_gb"), med(sc, "tcp-bbr", "rcv_s_gb")
    rows = []
    for tr in trs:
        if (sc, tr, "goodput") not in res:
            continue
        s, r = med(sc, tr, "snd_s_gb"), med(sc, tr, "rcv_s_gb")
        rows.append([tr, fmt(med(sc, tr, "goodput"), "%.1f"), fmt(s, "%.2f"),
                     fmt(ratio(s, rs), "%.2f"), fmt(med(sc, tr, "snd_proc_s_gb"), "%.2f"),
                     fmt(r, "%.2f"), fmt(ratio(r, rr), "%.2f"),
                     fmt(med(sc, tr, "rcv_proc_s_gb"), "%.2f"),
                     fmt(med(sc, tr, "link_s_gb"), "%.2f"),
                     fmt(med(sc, tr, "unattr_s_gb"), "%.2f"),
                     "%d/%s" % (n_ok(sc, tr, "goodput"), nruns)])
    T.grid(head, rows)
    T.out("  CPU seconds per GB received, from perf sampling every CPU during the transfer "
          "(perf record -a -g): an end is its process (all threads) plus the kernel's work "
          "for it elsewhere: the samples of the emulator thread delivering into it that are "
          "inside the kernel's receive path (what each packet set off, the protocol's answer "
          "included), and TCP's timers (pacing, small queues and retransmission at the "
          "sender, delayed ACKs at the receiver) where they fired in the idle task or "
          "ksoftirqd. the link: the emulator's own work (reads, queues, timers, writes); "
          "unattributed: network-stack samples in other contexts, no end's for either "
          "transport. The sampling itself costs both transports alike.")
    T.out()


B20_ROWS = ("kernel-tcp", "tcp+filter", "preload", "supervised", "supervised-server")


def reach_table(T, res, nruns, med, n_ok, meta):
    """B20: connects and 1-byte round trips per second under the supervisor
    (issue 35), beside the preload and kernel TCP of the same run."""
    T.out("B20  %s" % meta.get("desc_B20", ""))
    head = ["programs", "connects/s", "connect() us", "- preload's", "x kernel-tcp",
            "round trips/s", "x kernel-tcp", "runs"]
    rows = []
    pre = med("B20", "preload", "connect_us")
    kc, kr = med("B20", "kernel-tcp", "connects_s"), med("B20", "kernel-tcp", "rr_s")
    for tr in B20_ROWS:
        if ("B20", tr, "connect_us") not in res:
            continue
        c, cs, rr = med("B20", tr, "connect_us"), med("B20", tr, "connects_s"), med("B20", tr, "rr_s")
        rows.append([tr, fmt(cs, "%.0f"), fmt(c, "%.1f"),
                     fmt(None if c is None or pre is None or tr == "preload" else c - pre, "%+.1f"),
                     fmt(ratio(cs, kc), "%.2f"), fmt(rr, "%.0f"), fmt(ratio(rr, kr), "%.2f"),
                     "%d/%s" % (n_ok("B20", tr, "connect_us"), nruns)])
    T.grid(head, rows)
    T.out("  connects/s: whole cycles (socket, connect, 1-byte echo, close) per second, one after "
          "the other; connect() us: its mean time, and its difference from the preload's. "
          "kernel-tcp: a static client, a plain server; tcp+filter: the same under rudp-supervise "
          "--pass (kernel TCP, each reported call a round trip to the supervisor); preload: both "
          "under the shim; supervised: the static client under rudp-supervise, the server under "
          "the shim; supervised-server: the static server under rudp-supervise (bind, listen, "
          "accept), the client under the shim. Loopback: the programs' own costs, no link.")
    T.out()


B24_ROWS = ("kernel-tcp", "preload", "core-thread", "core-thread-1sock", "core-engine")


def ceiling_table(T, res, nruns, med, n_ok, meta):
    """B24: one program of redis GET's shape over kernel TCP, under the
    shim, and driving the core in its own thread: what issue 46's design
    change could reach at most."""
    T.out("B24  %s" % meta.get("desc_B24", ""))
    head = ["programs", "requests/s", "x kernel-tcp", "client CPU us", "server CPU us",
            "client ctx sw", "server ctx sw", "runs"]
    rows = []
    k = med("B24", "kernel-tcp", "rps")
    for tr in B24_ROWS:
        if ("B24", tr, "rps") not in res:
            continue
        v = med("B24", tr, "rps")
        rows.append([tr, fmt(v, "%.0f"), fmt(ratio(v, k), "%.2f"),
                     fmt(med("B24", tr, "cli_us"), "%.2f"), fmt(med("B24", tr, "srv_us"), "%.2f"),
                     fmt(med("B24", tr, "cli_cs"), "%.3f"), fmt(med("B24", tr, "srv_cs"), "%.3f"),
                     "%d/%s" % (n_ok("B24", tr, "rps"), nruns)])
    T.grid(head, rows)
    T.out("  per request, each process's every thread (getrusage). preload: both ends under the "
          "shim; core-thread: the program runs libcore.a itself in its one thread on UDP sockets "
          "(one per client connection, the shim's shape), readiness from memory, no engine thread, "
          "bridge or interposer: the most the protocol in the program's thread can give, not a "
          "transport a user runs; core-thread-1sock: the client's connections on one UDP socket; "
          "core-engine: the core on an engine thread that receives, the program's thread woken "
          "from memory (an eventfd when it sleeps) to read and write under the context's lock "
          "and send its own writes: no bridge, the hand-off between threads kept.")
    T.out()


def fetch_table(T, res, trs, nruns, med, n_ok, meta, sc="B17"):
    """B17: connect() and short fetches on new connections, in ms and in
    round trips, each against kernel TCP cubic's; B17T the same with TCP
    Fast Open (10 KB only)."""
    T.out("%s  %s" % (sc.ljust(3), meta.get("desc_" + sc, "")))
    rtt = float(meta.get("rtt_" + sc, "50"))
    cols = (("connect()", "connect_all_ms"), ("10 KB", "f10k_ms"), ("100 KB", "f100k_ms"),
            ("1 MB", "f1m_ms"))
    if sc == "B17T":
        cols = cols[:2]
    head = ["transport"] + [c[0] for c in cols] + ["failed", "runs"]
    rows = []
    for tr in trs:
        if (sc, tr, "f10k_ms") not in res:
            continue
        row = [tr]
        for _, m in cols:
            v = med(sc, tr, m)
            cell = "-" if v is None else "%.1f ms %.2f RTT" % (v, v / rtt)
            x = ratio(v, med(sc, "tcp-cubic", m))
            if tr.startswith("rudp-") and x is not None:
                cell += " %.2fx" % x
            row.append(cell)
        row.append("%.0f" % sum(res.get((sc, tr, "failed"), [])))
        row.append("%d/%s" % (n_ok(sc, tr, "f10k_ms"), nruns))
        rows.append(row)
    T.grid(head, rows)
    if sc == "B17T":
        T.out("  as B17, every fetch with the token (kernel TCP: the cookie) the fetch before it "
              "was given. Target (issue 32): 10 KB in <= 1.1 RTT with a token and the program's "
              "opt-in.")
    else:
        T.out("  curl's time_connect (connect() returned) and time_total, median of the fetches; "
              "RTT: the link's %.0f ms; Nx: against tcp-cubic's. Targets (issue 32): connect() in "
              "1 RTT, 10 KB in <= 2.0 RTT." % rtt)
    T.out()


def keyed_table(T, res, trs, nruns, med, n_ok, d):
    """Each keyed row against its controller's unkeyed row, in the scenarios
    both ran: goodput and CPU s/GB, keyed / unkeyed, against the targets; then
    cryptocost's table as it printed it at the start of the run."""
    keyed = [t for t in trs if t != unkeyed(t)]
    rows = []
    for sc in ("B1", "B2", "B3", "B4", "B6", "B9", "B10", "B11"):
        for tr in keyed:
            if (sc, tr, "goodput") not in res or (sc, unkeyed(tr), "goodput") not in res:
                continue
            base = unkeyed(tr)
            g, g0 = med(sc, tr, "goodput"), med(sc, base, "goodput")
            x = ratio(g, g0)
            gf = "%.0f" if sc in ("B6", "B11") else "%.1f"
            target = KEYED_TARGET.get(sc)
            if target is None:
                verdict = "none"
            elif x is None:
                verdict = ">= %.2gx: -" % target
            else:
                verdict = ">= %.2gx: %s" % (target, "met" if x >= target else "not met")
            cpu = []
            for m in ("cpu_snd_s_gb", "cpu_rcv_s_gb"):
                v = med(sc, tr, m)
                cpu += [fmt(v, "%.2f"), fmt(ratio(v, med(sc, base, m)), "%.2f")]
            rows.append([sc, tr, fmt(g0, gf), fmt(g, gf), fmt(x, "%.2f")] + cpu +
                        [verdict, "%d+%d/%s" % (n_ok(sc, base, "goodput"), n_ok(sc, tr, "goodput"),
                                                nruns)])
    crypto = os.path.join(d, "cryptocost.txt")
    if not rows and not os.path.exists(crypto):
        return
    T.out("Keyed mode: rudp-CC+key is rudp-CC with RUDP_KEY_FILE at both ends (the handshake "
          "authenticated, every later datagram AEAD-sealed), in the same runs and rotation as "
          "the unkeyed rows")
    if rows:
        T.grid(["row", "transport", "unkeyed Mbit/s", "keyed", "x unkeyed", "CPU s/GB snd",
                "x unkeyed", "rcv", "x unkeyed", "target (x unkeyed)", "runs"], rows)
        T.out("  x unkeyed: the keyed median / the unkeyed median of the same controller. "
              "Targets (issue 13): at 100 Mbit/s (B1-B4) within 2%; loopback (B6, and B11's "
              "veth pair) at least 0.8x. CPU s/GB: as in the bulk rows (B6: both ends in one "
              "namespace, each its own process). runs: unkeyed+keyed runs that counted.")
    else:
        T.out("  no keyed row measured (BENCH_ONLY without B1-B4, B6, B9, B11?)")
    if os.path.exists(crypto):
        with open(crypto, errors="replace") as f:
            text = f.read().rstrip("\n")
        T.out("  cryptocost (integration/bench/cryptocost.c), once, before the first scenario:")
        for line in (text.split("\n") if text else ["(no output: see logs/keyed.log)"]):
            T.out("  " + line)
    T.out()


def write_plot(d, dat, trs, meta):
    """Data files plus a gnuplot script for one PNG with up to four panels."""
    panels = []
    nz = lambda v: "NaN" if v is None else "%.4f" % v
    def by_scenario(key, order, title, setting):
        """A panel of one row per scenario (those of order present, in that
        order; all, sorted, when order is None), one bar per transport."""
        if key not in dat:
            return
        scs = sorted({k[0] for k in dat[key]}) if order is None else \
            [s for s in order if any(k[0] == s for k in dat[key])]
        cols = [t for t in trs if any((s, t) in dat[key] for s in scs)]
        with open(os.path.join(d, key + ".dat"), "w") as f:
            f.write("scenario " + " ".join(cols) + "\n")
            for s in scs:
                f.write(s + " " + " ".join(nz(dat[key].get((s, t))) for t in cols) + "\n")
        panels.append((key + ".dat", len(cols), title, "Mbit/s", setting))

    by_scenario("bulk", None, "B1-B4 bulk goodput (Mbit/s, link 100)", "set yrange [0:125]")
    by_scenario("mtu", B21_BULK, "B21 bulk: MTU 1280 (no fragments), 1500, 9000, WireGuard "
                "(Mbit/s, link 100)", "set yrange [0:125]")
    by_scenario("fast", ("B9", "B10", "B11"), "B9 1 Gbit/s 1 ms, B10 1 Gbit/s 20 ms 1%, "
                "B11 veth (Mbit/s, log scale)", "set logscale y")

    def by_transport(key, header, ncol, title, ylabel, setting):
        """A panel of one row per transport: dat[key][t], a figure or a list."""
        if key not in dat:
            return
        with open(os.path.join(d, key + ".dat"), "w") as f:
            f.write("transport " + header + "\n")
            for t in trs:
                if t in dat[key]:
                    v = dat[key][t]
                    vals = v if isinstance(v, (list, tuple)) else [v]
                    f.write(t + " " + " ".join(nz(x) for x in vals) + "\n")
        panels.append((key + ".dat", ncol, title, ylabel, setting))

    by_transport("rr", "p50 p99 max", 3, "B5 request/response, 40 ms RTT, 1% loss (ms)", "ms",
                 "set yrange [0:*]")
    by_transport("lo", "Mbit/s", 1, "B6 loopback bulk throughput (Mbit/s, log scale)", "Mbit/s",
                 "set logscale y; set yrange [100:*]")
    by_transport("lortt", "p50 mean", 2, "B6 loopback 1-byte round trip (us)", "us",
                 "set yrange [0:*]; set key top left")
    if "fair" in dat:
        with open(os.path.join(d, "fair.dat"), "w") as f:
            f.write("pair rudp tcp-cubic\n")
            for t in sort_transports(dat["fair"]):
                r, c = dat["fair"][t]
                f.write("%s+cubic %s %s\n" % (t, nz(r), nz(c)))
        panels.append(("fair.dat", 2, "B7 fairness on B1's link (Mbit/s each)", "Mbit/s",
                       "set yrange [0:125]"))
    by_transport("flood", "no-flood flood", 2,
                 "B8 goodput without and with SYN + junk floods (Mbit/s)", "Mbit/s",
                 "set yrange [0:125]")
    if not panels:
        panels.append(("", 0, "no scenario with a chart", "", ""))
    ncol = 2 if len(panels) > 1 else 1
    nrow = int(math.ceil(len(panels) / ncol))
    gp = [
        'set terminal pngcairo size %d,%d font "sans,10"' % (700 * ncol, 430 * nrow),
        'set output "%s"' % os.path.join(d, "bench.png"),
        "set termoption noenhanced",
        'set multiplot layout %d,%d title "librudp_shim vs kernel TCP, %s"'
        % (nrow, ncol, meta.get("title", "").replace('"', "'")),
        "set style data histogram",
        "set style histogram clustered gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set key top right autotitle columnhead noenhanced",
        "set grid ytics",
        "set xtics noenhanced",
        "set datafile missing 'NaN'",
    ]
    for path, n, title, ylab, extra in panels:
        gp.append('set title "%s" noenhanced' % title)
        gp.append('set ylabel "%s"' % ylab)
        gp.append("set key top right")
        gp.append("unset logscale y")
        gp.append(extra)
        if not path:
            gp.append("set yrange [0:1]; unset border; unset tics")
            gp.append("plot [0:1] -1 notitle")
            gp.append("set border; set tics")
            continue
        full = os.path.join(d, path)
        plots = ", ".join(
            ('"%s" using %d:xtic(1)' % (full, i + 2)) + (" title columnhead" if n > 0 else "")
            for i in range(n))
        gp.append("plot " + plots)
    gp.append("unset multiplot")
    with open(os.path.join(d, "bench.gp"), "w") as f:
        f.write("\n".join(gp) + "\n")
