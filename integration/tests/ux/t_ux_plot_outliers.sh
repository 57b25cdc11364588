#!/bin/sh
# Issue 47 item 7: rudp-plot's axes follow what the transfer did, not its
# outliers. A crafted sender's trace of a 1 s transfer at ~48 Mbit/s (40 ms
# RTT), as shim/base/qlog.c writes it, with a startup pacing rate of
# 16,000 Mbit/s (the first three metrics updates), one delivery sample of
# 1,600 Mbit/s, one latest RTT of 4 s and one bytes in flight of 1 GB:
#  - the rate axis (the yrange of the script kept with --keep) ends within a
#    few times 48 Mbit/s (above the 60 Mbit/s pacing rate, below 250), and
#    the RTT and bytes axes likewise end at the transfer's values;
#  - the values above each axis are marked (a points series at the top
#    edge, one point each) and counted, with the largest, in the legend and
#    in rudp-plot's output ("4 above the axis, up to 16000 Mbit/s");
#  - no tic label of the SVG reaches the thousands (the panel that drew the
#    transfer as a flat line at 0);
#  - the same trace without the outliers keeps gnuplot's autoscale.
. "$(dirname "$0")/../../lib/lib.sh"
command -v gnuplot >/dev/null || skip "gnuplot not installed (integration/deps.sh test)"

"$PY" - "$T/out.sqlog" "$T/clean.sqlog" <<'PYEOF'
import json, sys

def trace(outliers):
    recs = [{"qlog_version": "0.3", "qlog_format": "JSON-SEQ", "title": "librudp_shim conn 1",
             "trace": {"vantage_point": {"name": "librudp_shim pid 1", "type": "client"},
                       "common_fields": {"time_format": "relative", "reference_time": 0}}},
            {"time": 0, "name": "recovery:congestion_state_updated",
             "data": {"new": "startup", "rudp_cc": "bbr"}}]
    for ms in range(1000):  # 6000 bytes a ms: 48 Mbit/s
        recs.append({"time": ms, "name": "transport:packet_sent",
                     "data": {"raw": {"length": 6000}}})
        if ms % 10:
            continue
        i = ms // 10
        d = {"congestion_window": 480000 + 1000 * (i % 7),
             "bytes_in_flight": 240000 + 3000 * (i % 5),
             "smoothed_rtt": 40 + i % 3, "min_rtt": 40, "latest_rtt": 39 + i % 6,
             "pacing_rate": 60000000 + 100000 * (i % 4),
             "rudp_delivery_rate": 47000000 + 500000 * (i % 5)}
        if outliers:
            if i < 3:
                d["pacing_rate"] = 16000000000
            if i == 50:
                d["rudp_delivery_rate"] = 1600000000
                d["latest_rtt"] = 4000
                d["bytes_in_flight"] = 1000000000
        recs.append({"time": ms, "name": "recovery:metrics_updated", "data": d})
    return b"".join(b"\x1e" + json.dumps(r).encode() + b"\n" for r in recs)

open(sys.argv[1], "wb").write(trace(True))
open(sys.argv[2], "wb").write(trace(False))
PYEOF

"$TOOLS/rudp-plot" "$T/out.sqlog" -o "$T/out.svg" --keep "$T/k" >"$T/plot.out" 2>&1 ||
    fail "rudp-plot: $(cat "$T/plot.out")"
cat "$T/plot.out"
[ -f "$T/k/plot.gp" ] || fail "--keep $T/k kept no plot.gp: $(ls "$T/k")"

# The y ranges of the kept script, in panel order: bytes, RTT, rate, lost.
"$PY" - "$T/k/plot.gp" "$T/plot.out" <<'PYEOF' || fail "rudp-plot's axes do not follow the transfer"
import re, sys
gp, out = open(sys.argv[1]).read(), open(sys.argv[2]).read()
panels = gp.split("\nplot ")[1:]
prev = gp.split("\nplot ")[:-1]
tops = [re.findall(r"set yrange \[\*:([0-9.e+]+)\]", p.rsplit("set ylabel", 1)[-1]) for p in prev]
want = [("bytes", 480000, 2000000, "1 above the axis, up to 1.0G bytes"),
        ("RTT", 45, 200, "1 above the axis, up to 4000 ms"),
        ("rate", 60.3, 250, "4 above the axis, up to 16000 Mbit/s")]
bad = 0
for (name, lo, hi, note), top, body in zip(want, tops, panels):
    if len(top) != 1 or not lo <= float(top[0]) <= hi:
        print("%s axis top %s, want one in %g..%g" % (name, top, lo, hi)); bad = 1; continue
    print("ok: %s axis top %.4g (in %g..%g)" % (name, float(top[0]), lo, hi))
    if note not in body or 'pt 9' not in body:
        print("%s panel: no marked outliers %r in %r" % (name, note, body)); bad = 1
    if note not in out:
        print("rudp-plot's output does not say %r" % note); bad = 1
    marks = re.search(r"'([^']*above_[^']*)'", body)
    rows = open(marks.group(1)).read().split() if marks else []
    n = int(note.split()[0])
    if len(rows) != 2 * n or any(abs(float(y) - float(top[0])) > 1e-9 for y in rows[1::2]):
        print("%s panel: not %d marks at the top edge: %r" % (name, n, rows)); bad = 1
sys.exit(bad)
PYEOF
echo "ok: each axis ends at the transfer, its outliers marked at the top edge and counted"

big=$(grep -o '<text>[0-9.]*</text>' "$T/out.svg" | tr -dc '0-9.\n' | sort -n | tail -1)
[ -n "$big" ] || fail "no numeric tic label in the SVG"
awk -v b="$big" 'BEGIN { exit !(b < 1000) }' || fail "a tic label reaches $big (the thousands)"
echo "ok: the largest plain tic label is $big"

"$TOOLS/rudp-plot" "$T/clean.sqlog" -o "$T/clean.svg" --keep "$T/k2" >"$T/clean.out" 2>&1 ||
    fail "rudp-plot on the trace without outliers: $(cat "$T/clean.out")"
! grep -q 'above the axis' "$T/clean.out" "$T/k2/plot.gp" ||
    fail "the trace without outliers had values cut off: $(cat "$T/clean.out")"
[ "$(grep -c 'set yrange \[\*:' "$T/k2/plot.gp")" = 0 ] ||
    fail "the trace without outliers had an axis cut"
echo "ok: without outliers no axis is cut (autoscale)"
