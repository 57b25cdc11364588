#!/bin/sh
# iperf3 -s (one test, then exit) <-> iperf3 -c for 10 s, both ends under
# the shim (kernel TCP with RUDP_NO_SHIM=1): a control connection and a data
# connection; both exit 0, the client's JSON report has no error, the test
# ran 10 s, and the receiver's byte count trails the sender's only by what
# was in flight when the test ended (at most 16 MiB or 1 %: iperf3 counts
# what was written on one side and what was read on the other); the rate
# is printed (sender and receiver, Mbit/s), not asserted.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

P=$(free_port)
bg_app iperf3-srv iperf3 -s -1 -B 127.0.0.1 -p "$P"
SRV=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

t0=$(ms_now)
rc=0
run_app_t 60 iperf3 -c 127.0.0.1 -p "$P" -t 10 -J --connect-timeout 20000 >"$T/client.json" 2>"$T/client.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/client.err" "$T/client.json" "$T/iperf3-srv.log"; fail "iperf3 -c exited $rc"; }
rc=0
wait_exit "$SRV" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/iperf3-srv.log"; fail "iperf3 -s exited $rc"; }

python3 - "$T/client.json" "$SHIM_MODE" <<'PY' || { show "$T/client.json"; fail "iperf3's report fails the checks above"; }
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("iperf3 error: %s" % r["error"])
s, v = r["end"]["sum_sent"], r["end"]["sum_received"]
print("iperf3 (%s): %.1f s, sent %d bytes at %.0f Mbit/s, received %d bytes at %.0f Mbit/s, retransmits %s"
      % (sys.argv[2], s["seconds"], s["bytes"], s["bits_per_second"] / 1e6, v["bytes"],
         v["bits_per_second"] / 1e6, s.get("retransmits", "?")))
if s["seconds"] < 9.5:
    sys.exit("the test ran %.1f s, not 10" % s["seconds"])
if v["bytes"] <= 0 or v["bytes"] > s["bytes"] or \
        s["bytes"] - v["bytes"] > max(16 << 20, s["bytes"] // 100):
    sys.exit("received %d bytes of %d sent" % (v["bytes"], s["bytes"]))
PY
echo "ok: iperf3 10 s, bytes received match bytes sent, $(secs_since "$t0") s in all"
