#!/usr/bin/env python3
"""Helpers for integration/bench/run.sh (no third-party modules).

  report.py iperf JSON            print "goodput_mbps seconds bytes retransmits":
                                  receiver-side goodput from iperf3 -J output
  report.py rudpstats [--run] FILE
                                  print "stream_bytes_sent retx_bytes retx_pkts pto"
                                  summed over FILE's RUDP_STATS=1 blocks, one per
                                  program: its keeper's where it had one (with what
                                  the keeper did after the program's end), else its
                                  own; --run: the programs' own only (0s if none)
  report.py rudprepair FILE       print "repair_bytes repair_pkts losses_repaired": the
                                  RUDP_STATS=1 repair line's copies in FILE (0s if none)
  report.py rr FILE               print "p50 p99 max mean" (ms) from rr's output line
  report.py perf FILE             print "syscalls context_switches cpu_ms" from
                                  run.sh's PSTAT file (rusage) and FILE.sc (its
                                  PSTAT_SC: perf stat -x,) (NA where absent)
  report.py bulkcost LOG          print "sc_snd sc_rcv cs_snd cs_rcv": system calls
                                  (the cost pass under perf: LOG.sc.send.perf,
                                  LOG.sc.recv.perf, over its own bytes) and context
                                  switches (bulk's own vcsw + ivcsw) per GB, the sender
                                  per GB sent, the receiver per GB received
  report.py reqcost FILE N [N_SC] print "cpu_us sc cs" per request: FILE's CPU and
                                  context switches over N requests, FILE.sc's
                                  system calls (perf stat) over N_SC (NA if absent)
  report.py kv FILE KEY...        print the values of KEY... from the last line of FILE
                                  that has all of them as KEY=VALUE words (NA if none)
  report.py rudpcounters FILE     print the RUDP_STATS=1 line's counters in FILE as
                                  key=value words (dgrams_in, malformed, unknown_conn,
                                  hs_dropped, ...; nothing if no line)
  report.py snmp OLD NEW KEY...   print NEW - OLD of each KEY ("Udp.RcvbufErrors",
                                  "TcpExt.SyncookiesSent", ...) from two copies of
                                  /proc/net/snmp + /proc/net/netstat (NA if absent)
  report.py sample PID OUT SECS   every 0.2 s until PID exits (at most SECS s),
                                  append to OUT one line: t= (s since the first
                                  sample) vmhwm_kb= vmrss_kb= main_cpu_s= (thread PID)
                                  other_cpu_s= (its other threads) threads=, and since
                                  the first sample main_cpu_pct= other_cpu_pct= (% of
                                  one CPU) cpu_busy_pct= (the machine's, all CPUs)
  report.py ends SCRIPT SND_PID RCV_PID A2B_TID B2A_TID HZ BYTES
                                  print each end's CPU per GB from a system-wide perf
                                  sample of a transfer (B23; report_ends.py)
  report.py table DIR             read DIR/results.tsv and DIR/meta.tsv (and
                                  DIR/cryptocost.txt, if there), print the table
                                  (also to DIR/table.txt), write the gnuplot data
                                  files and DIR/bench.gp

results.tsv: one measurement a line, tab-separated:
  scenario transport run metric value      (value "NA" when the run failed)
  (transport rudp-CC+key: rudp-CC in keyed mode, RUDP_KEY_FILE at both ends)
meta.tsv: key<TAB>value (machine, scenario descriptions, link rate, ...).
"""
import json
import os
import re
import sys
import time

import report_ends
from report_table import cmd_table


def cmd_iperf(path):
    try:
        with open(path) as f:
            d = json.load(f)
        end = d["end"]
        r = end["sum_received"]
        s = end.get("sum_sent", {})
        if d.get("error") or r.get("bytes", 0) == 0:
            raise ValueError(d.get("error", "no bytes"))
        print("%.3f %.3f %d %d" % (r["bits_per_second"] / 1e6, r["seconds"], r["bytes"],
                                   s.get("retransmits", 0)))
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("NA NA NA NA")
        print("report.py: %s: %s" % (path, e), file=sys.stderr)


STATS_RE = re.compile(r"stream bytes sent (\d+), sent again (\d+) bytes in \d+ packets .*; "
                      r"packets declared lost (\d+), probe timeouts (\d+)")
BLOCK_RE = re.compile(r"(rudp(?:-keeper)?)\[(\d+)\] stats: the rudp engines' counters")
KEEPER_RE = re.compile(r"rudp-keeper\[\d+\] stats: keeper of pid (\d+):")


def stats_blocks(path, run_only=False):
    """The RUDP_STATS blocks of FILE (lists of their indented lines), one per
    program: a keeper prints the program's counters with its own added after
    the program's end, so its block replaces the program's (counting both
    counted the program's twice). run_only: the programs' own blocks, as they
    stood when each program ended (what happened while it ran)."""
    blocks, order, cur, kept = {}, [], None, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                m = KEEPER_RE.search(line)
                if m:
                    kept = m.group(1)
                    continue
                m = BLOCK_RE.search(line)
                if m:
                    keeper = m.group(1) == "rudp-keeper"
                    key = kept if keeper and kept else m.group(2)
                    kept = None
                    if keeper and run_only:
                        cur = None
                        continue
                    cur = []
                    if key not in blocks:
                        order.append(key)
                    blocks[key] = cur
                elif cur is not None and line.startswith("  "):
                    cur.append(line)
                else:
                    cur = None
    except OSError:
        pass
    return [blocks[k] for k in order]


def cmd_rudpstats(path, run_only=False):
    # first-sent stream bytes, bytes sent again, packets declared lost, probe timeouts
    sent = retx = pkts = pto = 0
    for block in stats_blocks(path, run_only):
        for line in block:
            m = STATS_RE.search(line)
            if m:
                sent += int(m.group(1))
                retx += int(m.group(2))
                pkts += int(m.group(3))
                pto += int(m.group(4))
    print(sent, retx, pkts, pto)


REPAIR_RE = re.compile(r"last packet (\d+) \((\d+) stream bytes\), losses they repaired (\d+)")


def cmd_rudprepair(path):
    v = [0, 0, 0]
    for block in stats_blocks(path):
        for line in block:
            m = REPAIR_RE.search(line)
            if m:
                v = [v[0] + int(m.group(2)), v[1] + int(m.group(1)), v[2] + int(m.group(3))]
    print(*v)


# The RUDP_STATS block's counters (shim/engine/engines.c, shim_engine_print_figures).
COUNTERS = (
    ("dgrams_out", r"datagrams out (\d+)"), ("dgrams_in", r"datagrams out \d+ in (\d+)"),
    ("malformed", r"malformed (\d+)"), ("unknown_conn", r"unknown connection (\d+)"),
    ("resets_sent", r"resets sent (\d+)"), ("hs_dropped", r"handshakes dropped (\d+)"),
    ("source_limited", r"\(source limit (\d+)\)"), ("memory_refused", r"refused for memory (\d+)"),
    ("data_dropped", r"data dropped (\d+)"), ("memory_held", r"memory held (\d+)"),
    ("accepted", r"connections: opened \d+ accepted (\d+)"),
    ("peers_moved", r"peers moved (\d+)"), ("conns_moved", r"connections moved to a new socket (\d+)"),
)


def cmd_rudpcounters(path):
    # RUDP_STATS is a block: a "stats: the rudp engines' counters" line, then
    # its lines indented by two spaces; the last block counts.
    found, block = None, None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if " stats: the rudp engines' counters (RUDP_STATS):" in line:
                    block = []
                elif block is not None and line.startswith("  "):
                    block.append(line.strip())
                    if "handshakes dropped" in line:
                        found = block
                else:
                    block = None
    except OSError:
        pass
    if found is None:
        return
    found = " ".join(found)
    out = []
    for key, rx in COUNTERS:
        m = re.search(rx, found)
        if m:
            out.append("%s=%s" % (key, m.group(1)))
    print(" ".join(out))


def read_snmp(path):
    """/proc/net/snmp and /proc/net/netstat: a header line and a value line
    per group ("Udp: InDatagrams NoPorts ..." / "Udp: 12 0 ...")."""
    vals, heads = {}, {}
    try:
        with open(path) as f:
            for line in f:
                group, _, rest = line.partition(":")
                words = rest.split()
                if group not in heads:
                    heads[group] = words
                else:
                    for k, v in zip(heads.pop(group), words):
                        vals[group + "." + k] = int(v) if v.lstrip("-").isdigit() else None
    except OSError:
        pass
    return vals


def cmd_snmp(old, new, keys):
    a, b = read_snmp(old), read_snmp(new)
    print(" ".join(str(b[k] - a[k]) if a.get(k) is not None and b.get(k) is not None else "NA"
                   for k in keys))


def cmd_sample(pid, out, secs):
    """A bounded sampler of one process: peak RSS (VmHWM is the kernel's
    own peak, so the last sample before exit is the run's peak, give or
    take its last 0.2 s), CPU of its main thread and of its other threads
    (under the shim: the engine thread), and the machine's busy share."""
    tck = os.sysconf("SC_CLK_TCK")

    def machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    def thread_cpu(tid):
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            v = f.read().rsplit(")", 1)[1].split()
        return (int(v[11]) + int(v[12])) / tck  # utime + stime

    t0 = time.monotonic()
    m0 = machine()
    c0 = None
    while time.monotonic() - t0 < secs:
        try:
            st = {}
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    st[k] = v.split()[0] if v.split() else ""
            if st.get("State", "Z") in ("Z", "X"):
                break
            main_cpu = other = 0.0
            tids = [int(t) for t in os.listdir("/proc/%d/task" % pid)]
            for tid in tids:
                try:
                    c = thread_cpu(tid)
                except (OSError, IndexError, ValueError):
                    continue
                if tid == pid:
                    main_cpu = c
                else:
                    other += c
        except (OSError, ValueError):
            break
        m1 = machine()
        t = time.monotonic() - t0
        if c0 is None:
            c0 = (main_cpu, other)
        busy = 1 - (m1[1] - m0[1]) / (m1[0] - m0[0]) if m1[0] > m0[0] else 0.0
        pct = lambda c, c_0: 100 * (c - c_0) / t if t > 0 else 0.0
        with open(out, "a") as f:
            f.write("t=%.2f vmhwm_kb=%s vmrss_kb=%s main_cpu_s=%.2f other_cpu_s=%.2f threads=%d "
                    "main_cpu_pct=%.1f other_cpu_pct=%.1f cpu_busy_pct=%.1f\n"
                    % (t, st.get("VmHWM", "NA"), st.get("VmRSS", "NA"), main_cpu, other, len(tids),
                       pct(main_cpu, c0[0]), pct(other, c0[1]), 100 * busy))
        time.sleep(0.2)


def cmd_rr(path):
    kv = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("count="):
                    kv = dict(w.split("=", 1) for w in line.split())
    except OSError:
        pass
    print(" ".join(kv.get(k, "NA") for k in ("p50_ms", "p99_ms", "max_ms", "mean_ms")))


def kv_line(path, keys):
    """The last line of path holding every key as KEY=VALUE, as a dict of
    strings; None when no line has them all."""
    found = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                kv = dict(w.split("=", 1) for w in line.split() if "=" in w)
                if all(k in kv for k in keys):
                    found = kv
    except OSError:
        pass
    return found


def cmd_kv(path, keys):
    found = kv_line(path, keys)
    print(" ".join(found[k] if found else "NA" for k in keys))


def read_perf(path):
    """perf stat -x, output: {event: value} (None for "<not counted>")."""
    out = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                w = line.strip().split(",")
                if len(w) < 3 or line.startswith("#"):
                    continue
                try:
                    out[w[2]] = float(w[0])
                except ValueError:
                    out[w[2]] = None
    except OSError:
        pass
    return out


def perf_counts(path):
    """(syscalls, context switches, CPU ms) from the measured pass's file
    (rusage: CPU and context switches) and its cost pass's, PATH.sc (perf
    stat: system calls; CPU and context switches too where PATH lacks
    them), None each when absent."""
    p = read_perf(path + ".sc")
    p.update({k: v for k, v in read_perf(path).items() if v is not None})
    return (p.get("raw_syscalls:sys_enter"), p.get("context-switches"), p.get("task-clock"))


def na(v, spec="%.1f"):
    return "NA" if v is None else spec % v


def cmd_perf(path):
    print(" ".join(na(v, "%.0f" if i < 2 else "%.1f") for i, v in enumerate(perf_counts(path))))


def kv_last(path, keys):
    """kv_line's values as numbers (None where one is not); None when no
    line has them all."""
    found = kv_line(path, keys)
    if found is None:
        return None
    out = {}
    for k in keys:
        try:
            out[k] = float(found[k])
        except ValueError:
            out[k] = None
    return out


def cmd_bulkcost(log):
    snd = kv_last(log + ".send", ("sent",)) or {}
    rcv = kv_last(log + ".recv", ("bytes",)) or {}
    gb = {"snd": (snd.get("sent") or 0) / 1e9, "rcv": (rcv.get("bytes") or 0) / 1e9}
    # the system calls: the cost pass's (LOG.sc.*, perf stat) over its bytes
    snd = kv_last(log + ".sc.send", ("sent",)) or {}
    rcv = kv_last(log + ".sc.recv", ("bytes",)) or {}
    gb_sc = {"snd": (snd.get("sent") or 0) / 1e9, "rcv": (rcv.get("bytes") or 0) / 1e9}
    sc, cs = [], []
    for end, f in (("snd", ".send"), ("rcv", ".recv")):
        n = perf_counts(log + ".sc" + f + ".perf")[0]
        sc.append(n / gb_sc[end] if n is not None and gb_sc[end] > 0 else None)
        c = kv_last(log + f, ("vcsw", "ivcsw"))
        v = c["vcsw"] + c["ivcsw"] if c and None not in c.values() else None
        if v is None:
            v = perf_counts(log + f + ".perf")[1]
        cs.append(v / gb[end] if v is not None and gb[end] > 0 else None)
    print(" ".join(na(v, "%.0f") for v in sc + cs))


def cmd_reqcost(path, n, n_sc):
    """CPU us, system calls and context switches per request: the measured
    pass's N requests (PATH), the cost pass's N_SC (PATH.sc) for the
    system calls."""
    sc, cs, ms = perf_counts(path)
    n, n_sc = float(n), float(n_sc)
    if not read_perf(path) and n != n_sc:
        cs = ms = None  # the cost pass's own, over other requests than N
    print(" ".join(na(None if v is None or d <= 0 else v * k / d, "%.2f")
                   for v, k, d in ((ms, 1000.0, n), (sc, 1.0, n_sc), (cs, 1.0, n))))


def main(argv):
    if len(argv) >= 4 and argv[1] == "kv":
        cmd_kv(argv[2], argv[3:])
        return 0
    if len(argv) >= 5 and argv[1] == "snmp":
        cmd_snmp(argv[2], argv[3], argv[4:])
        return 0
    if len(argv) == 9 and argv[1] == "ends":
        report_ends.cmd_ends(*argv[2:])
        return 0
    if len(argv) in (4, 5) and argv[1] == "reqcost":
        cmd_reqcost(argv[2], argv[3], argv[4] if len(argv) == 5 else argv[3])
        return 0
    if len(argv) == 5 and argv[1] == "sample":
        cmd_sample(int(argv[2]), argv[3], float(argv[4]))
        return 0
    if len(argv) == 4 and argv[1] == "rudpstats" and argv[2] == "--run":
        cmd_rudpstats(argv[3], run_only=True)
        return 0
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, arg = argv[1], argv[2]
    {"iperf": cmd_iperf, "rudpstats": cmd_rudpstats, "rudprepair": cmd_rudprepair, "rudpcounters": cmd_rudpcounters, "rr": cmd_rr,
     "perf": cmd_perf, "bulkcost": cmd_bulkcost, "table": cmd_table}[cmd](arg)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
