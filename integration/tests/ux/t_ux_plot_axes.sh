#!/bin/sh
# Issue 34 item 8: rudp-plot's axes. A loopback transfer with no loss
# (its trace has no recovery:packet_lost), its sender's trace drawn as SVG
# (rudp-plot -o FILE.svg, the same layout as the PNG, with positions one can
# read):
#  - no panel has a negative tic label: the loss panel of a loss-free trace
#    spans 0..1, not -1..1 (nothing plotted can be negative);
#  - a phase label of the first panel stays clear of the y axis: a phase
#    that starts at time 0 (the controller's first phase is moved to 0 in a
#    copy of the trace) is drawn right of the axis line, the whole height
#    of its glyphs (its font size) included.
. "$(dirname "$0")/../../lib/lib.sh"
command -v gnuplot >/dev/null || skip "gnuplot not installed (integration/deps.sh test)"
LDP=$(shim_preload)

port=$(free_port)
mkdir "$T/q"
head -c 2000000 /dev/urandom >"$T/data"
RUDP_QLOG_DIR="$T/q" start_bg srv env LD_PRELOAD="$LDP" timeout 30 nc -l 127.0.0.1 "$port"
srv=$LAST_PID
wait_udp "$port"
RUDP_QLOG_DIR="$T/q" env LD_PRELOAD="$LDP" timeout 30 nc -N 127.0.0.1 "$port" <"$T/data" ||
    fail "the client failed"
ended 3000 "$srv" || fail "the server did not end"
i=0
while ! ls "$T/q" | grep -q 'client\.sqlog$'; do
    i=$((i + 1)); [ "$i" -lt 300 ] || fail "no client trace: $(ls "$T/q")"; sleep 0.05
done
trace=$(ls "$T"/q/*client.sqlog | head -1)
! grep -q 'recovery:packet_lost' "$trace" || skip "the loopback transfer lost packets: no loss-free trace"
grep -q 'congestion_state_updated' "$trace" || fail "the trace has no phase to label"

# the first phase at time 0
"$PY" - "$trace" "$T/t0.sqlog" <<'PYEOF'
import sys
data = open(sys.argv[1], "rb").read().split(b"\x1e")
for i, r in enumerate(data):
    if b"congestion_state_updated" in r:
        head, _, rest = r.partition(b'"time":')
        data[i] = head + b'"time":0' + rest[rest.index(b","):]
        break
open(sys.argv[2], "wb").write(b"\x1e".join(data))
PYEOF

"$TOOLS/rudp-plot" "$T/t0.sqlog" -o "$T/p.svg" >"$T/plot.out" 2>&1 || fail "rudp-plot: $(cat "$T/plot.out")"
grep -q "0 lost" "$T/plot.out" || fail "rudp-plot counted losses: $(cat "$T/plot.out")"
grep -q '<svg' "$T/p.svg" && grep -q '<text>0</text>' "$T/p.svg" ||
    fail "-o p.svg did not write an SVG with tic labels: $(head -c 8 "$T/p.svg" | od -c | head -1)"
neg=$(grep -o '<text>-[0-9.]*</text>' "$T/p.svg" | sort -u | tr '\n' ' ')
[ -z "$neg" ] || fail "negative tic labels: $neg (the loss panel of a loss-free trace spans below 0)"
echo "ok: no negative tic label (loss panel of a loss-free trace from 0)"

"$PY" - "$T/p.svg" <<'PYEOF' || fail "a phase label overlaps the y axis"
import re, sys
svg = open(sys.argv[1]).read()
# the first panel's border: the first closed rectangle path
m = re.search(r"d='M([0-9.]+),([0-9.]+) L\1,([0-9.]+) L([0-9.]+),\3", svg)
axis = float(m.group(1))
labels = re.findall(r'translate\(([0-9.]+),([0-9.]+)\) rotate\(-90\)[^>]*font-size="([0-9.]+)"[^>]*>\s*<text>([^<]*)<', svg)
if not labels:
    print("no rotated phase label found"); sys.exit(1)
for x, y, size, text in labels:
    left = float(x) - float(size)  # a rotated glyph reaches its size left of the baseline
    print("label %r at x %.1f (glyphs from %.1f), y axis at %.1f" % (text, float(x), left, axis))
    if left <= axis:
        sys.exit(1)
PYEOF
echo "ok: a phase label at time 0 is right of the y axis"
