#!/bin/sh
# iperf3 -s serving two tests in a row (after each test it closes its
# listener and listens again on the same port with SO_REUSEADDR, at once:
# under the shim that listen() said EADDRINUSE, "unable to start listener
# for connections", so the second test could not run) <-> iperf3 -c for
# 10 s, then again for 3 s, both ends under the shim (kernel TCP with
# RUDP_NO_SHIM=1): a control connection and a data connection per test;
# each client exits 0, its JSON report has no error, the test ran its time,
# and the receiver's byte count trails the sender's only by what was in
# flight when the test ended (at most 16 MiB or 1 %: iperf3 counts what
# was written on one side and what was read on the other); the server is
# still running after both. The rate is printed (sender and receiver,
# Mbit/s), not asserted.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

P=$(free_port)
bg_app iperf3-srv iperf3 -s -B 127.0.0.1 -p "$P"
SRV=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

t0=$(ms_now)
# iperf_test SECS NAME: one test of SECS seconds, its report checked
iperf_test() {
    rc=0
    run_app_t 60 iperf3 -c 127.0.0.1 -p "$P" -t "$1" -J --connect-timeout 20000 \
        >"$T/$2.json" 2>"$T/$2.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/$2.err" "$T/$2.json" "$T/iperf3-srv.log"; fail "iperf3 -c ($2) exited $rc"; }
    python3 - "$T/$2.json" "$SHIM_MODE" "$1" "$2" <<'PY' || { show "$T/$2.json"; fail "iperf3's report ($2) fails the checks above"; }
import json, sys
r = json.load(open(sys.argv[1]))
secs = float(sys.argv[3])
if "error" in r:
    sys.exit("iperf3 error: %s" % r["error"])
s, v = r["end"]["sum_sent"], r["end"]["sum_received"]
print("iperf3 (%s, %s): %.1f s, sent %d bytes at %.0f Mbit/s, received %d bytes at %.0f Mbit/s, retransmits %s"
      % (sys.argv[2], sys.argv[4], s["seconds"], s["bytes"], s["bits_per_second"] / 1e6, v["bytes"],
         v["bits_per_second"] / 1e6, s.get("retransmits", "?")))
if s["seconds"] < secs - 0.5:
    sys.exit("the test ran %.1f s, not %g" % (s["seconds"], secs))
# In flight when the sender's last write returned: under the shim the app
# end's send buffer (TCP's default, 4 MiB), the rudp send buffer (8 MiB)
# and the receiver's window (8 MiB); over TCP its send and receive buffers.
if v["bytes"] <= 0 or v["bytes"] > s["bytes"] or \
        s["bytes"] - v["bytes"] > max(24 << 20, s["bytes"] // 100):
    sys.exit("received %d bytes of %d sent" % (v["bytes"], s["bytes"]))
PY
}
iperf_test 10 first
iperf_test 3 second
running "$SRV" || { show "$T/iperf3-srv.log"; fail "iperf3 -s is gone after two tests"; }
kill "$SRV"
echo "ok: one iperf3 server, two tests (10 s, then 3 s), bytes received match bytes sent, $(secs_since "$t0") s in all"
