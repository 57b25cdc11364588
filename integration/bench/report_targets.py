"""Issue 33's parts of the benchmark table (report_table.py): whether a
row's kernel reference reached the line rate, what each end paid per GB and
per request, and the issue's targets marked met or not met. No third-party
modules."""
import re

# A kernel bbr reference under this share of the line rate on a lossless
# link says the emulator (or the host), not the transports, set the pace:
# ratios to it are not counted.
REF_SHARE = 85.0


def fmt(v, spec="%.1f"):
    return "-" if v is None else spec % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def spec_loss(meta, sc):
    """The configured random loss of scenario sc's link in % (0 when none
    is set), None when run.sh recorded no spec."""
    spec = meta.get("spec_" + sc)
    if spec is None:
        return None
    m = re.search(r"(?:^|,)loss=([0-9.]+)", spec)
    return float(m.group(1)) if m else 0.0


def reference(sc, med, meta, link):
    """(line, short) for bulk scenario sc: the kernel references' goodput
    against the configured rate, the emulator's CPU, and whether the
    reference is short (lossless, kernel bbr under REF_SHARE % of it)."""
    if link is None:
        return None, False
    parts = []
    for tr in ("tcp-bbr", "tcp-cubic"):
        g = med(sc, tr, "goodput")
        if g is not None:
            parts.append("%s %.0f Mbit/s = %.1f%%" % (tr, g, 100 * g / link))
    if not parts:
        return None, False
    emu = [fmt(med(sc, tr, "emu_cpu_pct"), "%.0f%%") for tr in ("tcp-bbr", "tcp-cubic")]
    line = "  reference: %s of the %.0f Mbit/s line rate; emulator a->b thread CPU %s" % (
        ", ".join(parts), link, " / ".join(emu))
    bbr = med(sc, "tcp-bbr", "goodput")
    loss = spec_loss(meta, sc)
    short = False
    if bbr is None:
        line += " (no tcp-bbr reference)"
    elif loss == 0 and 100 * bbr / link < REF_SHARE:
        short = True
        line += ("; reference short: tcp-bbr under %.0f%% of line rate on a lossless link, "
                 "ratios to it not counted" % REF_SHARE)
    elif loss:
        line += "; with %g%% loss each way the reference reached %.0f%%" % (loss, 100 * bbr / link)
    else:
        line += "; reference ok (>= %.0f%%)" % REF_SHARE
    return line, short


def bulk_costs(T, sc, trs, res, med):
    """What each end paid per GB, and the kernel's own stall shares."""
    head = ["transport", "CPU s/GB snd", "rcv", "machine", "emu", "syscalls/GB snd", "rcv",
            "ctx sw/GB snd", "rcv", "sndbuf-lim%", "rwnd-lim%"]
    rows = []
    for tr in trs:
        if (sc, tr, "goodput") not in res:
            continue
        rows.append([tr] + [fmt(med(sc, tr, m), f) for m, f in (
            ("cpu_snd_s_gb", "%.2f"), ("cpu_rcv_s_gb", "%.2f"), ("cpu_sys_s_gb", "%.2f"),
            ("cpu_emu_s_gb", "%.2f"),
            ("sc_snd_gb", "%.0f"), ("sc_rcv_gb", "%.0f"), ("cs_snd_gb", "%.0f"),
            ("cs_rcv_gb", "%.0f"), ("sndbuf_time_pct", "%.0f"), ("rwnd_time_pct", "%.0f"))])
    T.grid(head, rows)


BULK_COST_NOTE = (
    "  per GB: CPU s/GB snd/rcv: the whole process (engine included) per GB sent/received; "
    "machine: all CPUs' busy time over the run (/proc/stat, sampled at ticks) per GB received, "
    "the emulator and whatever else the shared machine ran included: kernel TCP's softirq work "
    "is in it wherever it ran (rough, noisy); emu: linkemu's threads (exact), which run much of "
    "each receiving stack in their writes to the TUN device; syscalls: perf stat "
    "raw_syscalls:sys_enter, all threads, in a pass of their own (run 1 again, BENCH_SC_TIME s): "
    "no other figure comes from a program run under perf; "
    "ctx sw: voluntary + involuntary (getrusage, all threads); sndbuf-lim%, rwnd-lim%: kernel "
    "TCP's own share of its busy time stalled by its send buffer / the peer's window "
    "(TCP_INFO chrono; '-' under the shim).")


def req_costs(T, sc, trs, res, med, what):
    """Per request at each end: CPU us, system calls, context switches."""
    rows = []
    for tr in trs:
        if (sc, tr, "cpu_us_req_cli") not in res:
            continue
        rows.append([tr] + [fmt(med(sc, tr, "%s_req_%s" % (m, e)), "%.2f" if m != "cpu_us" else "%.1f")
                            for e in ("cli", "srv") for m in ("cpu_us", "sc", "cs")])
    if not rows:
        return
    T.out("  per %s, all threads: CPU and ctx sw from each end's rusage (wait4) in the "
          "measured runs, syscalls from perf stat in a pass of their own (run 1 again):" % what)
    T.grid(["transport", "client CPU us", "syscalls", "ctx sw", "server CPU us", "syscalls",
            "ctx sw"], rows)


def judged(trs):
    """The rudp transports a target judges: rudp-bbr (the controller issue
    33 sets against kernel bbr) if measured, else every unkeyed rudp row."""
    rudp = [t for t in trs if t.startswith("rudp-") and not t.endswith("+key")]
    return ["rudp-bbr"] if "rudp-bbr" in rudp else rudp


def verdict(x, limit, at_most=False, short=False):
    if short:
        return "not counted (reference short)"
    if x is None:
        return "-"
    ok = x <= limit if at_most else x >= limit
    return "met" if ok else "not met"


def targets(T, res, trs, med, meta, shorts):
    """Issue 33's targets, each beside the row it judges."""
    rows = []
    jt = judged(trs)

    def add(name, sc, tr, mine, ref, x, limit, at_most=False, short=False, f="%.1f"):
        if mine is None and ref is None:
            return
        rows.append([name, sc, tr, fmt(mine, f), fmt(ref, f), fmt(x, "%.2f"),
                     verdict(x, limit, at_most, short)])

    for sc, limit, name in (("B10", 1.0, "1G 20ms 1%: >= 1.0x tcp-bbr"),
                            ("B9", 0.95, "1G 1ms: >= 0.95x tcp-bbr"),
                            ("B11", 0.8, "veth: >= 0.8x tcp-bbr")):
        for tr in jt:
            g, b = med(sc, tr, "goodput"), med(sc, "tcp-bbr", "goodput")
            add(name, sc, tr, g, b, ratio(g, b), limit, short=sc in shorts)
    for sc in ("B1", "B2", "B3", "B4"):
        for tr in jt:
            for end in ("snd", "rcv"):
                m = "cpu_%s_s_gb" % end
                v, b = med(sc, tr, m), med(sc, "tcp-bbr", m)
                add("100M: CPU/GB %s <= 2x tcp-bbr" % end, sc, tr, v, b, ratio(v, b), 2.0,
                    at_most=True, f="%.2f")
    for sc, m, name in (("B13", "set_rps", "redis SET: >= 0.8x kernel"),
                        ("B13", "get_rps", "redis GET: >= 0.8x kernel"),
                        ("B14", "rps", "nginx: >= 0.8x kernel")):
        for tr in jt:
            v, k = med(sc, tr, m), med(sc, "tcp-cubic", m)
            add(name, sc, tr, v, k, ratio(v, k), 0.8, f="%.0f")
    for tr in jt:
        v, k = med("B6", tr, "rtt1_p50_us"), med("B6", "tcp-cubic", "rtt1_p50_us")
        add("1-byte RR p50: <= 1.5x kernel", "B6", tr, v, k, ratio(v, k), 1.5, at_most=True)
        v, k = med("B6", tr, "rtt1cpu_p50_us"), med("B6", "tcp-cubic", "rtt1cpu_p50_us")
        add("1-byte RR p50, one CPU: <= 4x kernel (46)", "B6", tr, v, k, ratio(v, k), 4.0,
            at_most=True)
        add("1-byte RR p50, one CPU: <= 2x kernel (46)", "B6", tr, v, k, ratio(v, k), 2.0,
            at_most=True)
        v, k = med("B12", tr, "fanin_ms"), med("B12", "tcp-cubic", "fanin_ms")
        add("fan-in: time <= 2x kernel", "B12", tr, v, k, ratio(v, k), 2.0, at_most=True,
            f="%.0f")
        v = med("B12", tr, "mem_per_conn")
        if v is not None:
            rows.append(["fan-in: <= 16 KiB/conn", "B12", tr, fmt(v, "%.0f"), "16384",
                         fmt(v / 16384, "%.2f"), verdict(v, 16384, at_most=True)])
    for sc in ("B6", "B11"):
        for tr in [t for t in trs if t.endswith("+key")]:
            base = tr[:-len("+key")]
            v, u = med(sc, tr, "goodput"), med(sc, base, "goodput")
            add("keyed: >= 0.8x unkeyed", sc, tr, v, u, ratio(v, u), 0.8, f="%.0f")
    if not rows:
        return
    T.out("Targets (issue 33; kernel TCP in the same run; figures are medians of this run)")
    T.grid(["target", "row", "transport", "rudp", "reference", "ratio", "verdict"], rows)
    T.out("  reference: tcp-bbr's figure for the link rows and CPU, tcp-cubic's for the "
          "applications and round trips (the kernel's default controller), the unkeyed row "
          "for keyed; B12's memory: the server's RSS growth per connection against 16 KiB. "
          "Not judged here: moves, resets and probe storms in B12 (see its table), and "
          "goodput unchanged on B1-B5 (against an earlier run).")
    T.out()


def targets46(T, res, trs, med, shorts, limit):
    """Issue 46's targets (the data path at kernel TCP's cost), each beside
    the row it judges, with the app thread's receive on (the judged rudp
    transport) and off (its +norecv row, where measured), and what limits
    the row: the per-request system calls against the kernel's, a bulk
    flow's own limit (limit(sc, tr, goodput)), B12's probe timeouts."""
    rows = []
    jt = judged(trs)

    def add(name, sc, tr, mine, off, ref, x, limit_, why, at_most=False, short=False,
            f="%.1f"):
        if mine is None and ref is None:
            return
        rows.append([name, sc, tr, fmt(mine, f), fmt(off, f), fmt(ref, f), fmt(x, "%.2f"),
                     verdict(x, limit_, at_most, short), why])

    def calls(sc, tr, ref):
        """System calls per request at each end against the reference's."""
        v = [med(sc, t, "sc_req_%s" % e) for t in (tr, ref) for e in ("cli", "srv")]
        if v[0] is None or v[2] is None:
            return "-"
        return "syscalls/req %s/%s vs %s/%s" % tuple(fmt(x, "%.1f") for x in v)

    for tr in jt:
        off = tr + "+norecv"
        for m, name in (("rtt1cpu_p50_us", "1-byte RR p50, one CPU, read"),
                        ("rtt1cpu_poll_p50_us", "1-byte RR p50, one CPU, poll"),
                        ("rtt1cpu_ctr_p50_us", "1-byte RR p50, one CPU, read, in a container")):
            v, k = med("B6", tr, m), med("B6", "tcp-cubic", m)
            for lim in (4.0, 2.0):
                add("%s: <= %gx kernel" % (name, lim), "B6", tr, v, med("B6", off, m), k,
                    ratio(v, k), lim, calls("B6", tr, "tcp-cubic"), at_most=True)
        # B24: the same shape in one program under the shim and with the
        # protocol in its own thread, each against kernel TCP
        b24 = [ratio(med("B24", t, "rps"), med("B24", "kernel-tcp", "rps"))
               for t in ("preload", "core-thread")]
        shape = "" if None in b24 else "; B24: the shim %.2fx, the protocol in the program's " \
            "thread %.2fx" % tuple(b24)
        for sc, m, name in (("B13", "set_rps", "redis SET"), ("B13", "get_rps", "redis GET"),
                            ("B14", "rps", "nginx+wrk")):
            v, k = med(sc, tr, m), med(sc, "tcp-cubic", m)
            add("%s: >= 0.8x kernel" % name, sc, tr, v, med(sc, off, m), k, ratio(v, k), 0.8,
                calls(sc, tr, "tcp-cubic") + shape, f="%.0f")
        for sc, lim, name in (("B11", 0.6, "veth bulk: >= 0.6x tcp-bbr"),
                              ("B9", 0.95, "1G 1ms: >= 0.95x tcp-bbr"),
                              ("B10", 0.95, "1G 20ms 1%: >= 0.95x tcp-bbr")):
            g, b = med(sc, tr, "goodput"), med(sc, "tcp-bbr", "goodput")
            add(name, sc, tr, g, None, b, ratio(g, b), lim,
                limit(sc, tr, g) if g is not None else "-", short=sc in shorts)
        for end, what in (("snd", "sender"), ("rcv", "receiver")):
            m = "cpu_%s_s_gb" % end
            v, b = med("B1", tr, m), med("B1", "tcp-bbr", m)
            sc_v, sc_b = med("B1", tr, "sc_%s_gb" % end), med("B1", "tcp-bbr", "sc_%s_gb" % end)
            why = "-" if sc_v is None or sc_b is None else "syscalls/GB %.0f vs %.0f" % (sc_v, sc_b)
            add("100M CPU/GB, %s, process: <= 2x tcp-bbr" % what, "B1", tr, v, None, b,
                ratio(v, b), 2.0, why, at_most=True, f="%.2f")
            # B23: the end's whole CPU, the kernel's softirq work for it in
            # it; the process alone leaves most of kernel TCP's out
            v, b = med("B23", tr, "%s_s_gb" % end), med("B23", "tcp-bbr", "%s_s_gb" % end)
            pv, pb = med("B23", tr, "%s_proc_s_gb" % end), med("B23", "tcp-bbr", "%s_proc_s_gb" % end)
            add("100M CPU/GB, %s, kernel's work in: <= 2x tcp-bbr" % what, "B23", tr, v, None, b,
                ratio(v, b), 2.0, "-" if pv is None or pb is None else
                "of it the process %.2f vs %.2f" % (pv, pb), at_most=True, f="%.2f")
        v, k = med("B12", tr, "fanin_ms"), med("B12", "tcp-cubic", "fanin_ms")
        p = med("B12", tr, "pto")
        c, ck = med("B12", tr, "connect_ms"), med("B12", "tcp-cubic", "connect_ms")
        cpu = [med("B12", t, "cpu_us_conn_" + e) for t in (tr, "tcp-cubic") for e in ("cli", "srv")]
        add("3,500 pairs: time <= 2x kernel", "B12", tr, v, None, k, ratio(v, k), 2.0,
            "probe timeouts %s; the connect() calls %s ms of it (kernel %s); CPU per "
            "connection, client / server: %s / %s us (kernel %s / %s)"
            % ((fmt(p, "%.0f"), fmt(c, "%.0f"), fmt(ck, "%.0f")) +
               tuple(fmt(x, "%.0f") for x in cpu)), at_most=True, f="%.0f")
        if p is not None:
            rows.append(["3,500 pairs: <= 350 probe timeouts", "B12", tr, fmt(p, "%.0f"), "-",
                         "350", fmt(p / 350, "%.2f"), verdict(p, 350, at_most=True),
                         "the fan-in's own (keepers' closing apart)"])
        for m, name in (("moves", "3,500 pairs: 0 moves"), ("rcvbuf_drops", "3,500 pairs: 0 UDP drops")):
            v = med("B12", tr, m)
            if v is not None:
                rows.append([name, "B12", tr, fmt(v, "%.0f"), "-", "0", "-",
                             "met" if v == 0 else "not met", "-"])
    if not rows:
        return
    T.out("Targets of issue 46 (the data path at kernel TCP's cost; kernel TCP in the same run)")
    T.grid(["target", "row", "transport", "rudp", "path off", "reference", "ratio", "verdict",
            "what limits it"], rows)
    T.out("  path off: the same transport with the app thread's receive and the writes in "
          "memory off (RUDP_APP_RECV=0 RUDP_SEND_RING=0, its +norecv row); reference: "
          "tcp-cubic for round trips and applications, tcp-bbr "
          "for bulk and CPU; syscalls per request: client/server (perf stat, all threads, "
          "warm-up included, counted in a pass of their own: no rate, latency or CPU figure "
          "comes from a program run under perf), rudp vs the reference. CPU/GB, process: the end's process "
          "alone (B1), which leaves out kernel TCP's softirq work (ACKs, pacing, sending: "
          "run largely in the emulator's writes); kernel's work in: the process and the "
          "kernel's work for it wherever it ran, from perf samples of every CPU (B23).")
    T.out()
