#!/bin/sh
# iperf3 -s (a server that, after each test, closes its listener and
# listens again on the same port with SO_REUSEADDR) <-> three iperf3 -c
# tests one after the other against the same server, the second in reverse
# (-R): the second and the third need the listener made again.  Over kernel
# TCP and then with both ends under the shim (lib/battery.sh): each test
# (256 MiB, -n) exits 0 with no error in its JSON report, the sender sent
# the 256 MiB and the receiver's count trails it only by what was in flight
# when the test ended (as t_iperf3.sh checks); the server listens again
# after the third and ends on SIGTERM without an error logged.  nftables
# counts the kernel TCP segments on the port: > 0 over kernel TCP, 0 under
# the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

check_report() { # check_report JSON LABEL
    "$PY" - "$1" "$SHIM_MODE, $2" <<'PY' || { show "$1"; fail "iperf3's report ($2) fails the checks above"; }
import json, sys
r = json.load(open(sys.argv[1]))
if "error" in r:
    sys.exit("iperf3 error: %s" % r["error"])
s, v = r["end"]["sum_sent"], r["end"]["sum_received"]
print("iperf3 (%s): %.2f s, sent %d bytes, received %d bytes, %.0f Mbit/s"
      % (sys.argv[2], s["seconds"], s["bytes"], v["bytes"], v["bits_per_second"] / 1e6))
if s["bytes"] < 256 << 20:
    sys.exit("sent %d bytes, not 256 MiB" % s["bytes"])
# In flight when the sender's last write returned: under the shim the app
# end's send buffer (TCP's default, 4 MiB), the rudp send buffer (8 MiB)
# and the receiver's window (8 MiB); over TCP its send and receive buffers.
if v["bytes"] <= 0 or v["bytes"] > s["bytes"] or \
        s["bytes"] - v["bytes"] > max(24 << 20, s["bytes"] // 100):
    sys.exit("received %d bytes of %d sent" % (v["bytes"], s["bytes"]))
PY
}

# listener_ino PORT: the inode of the TCP socket listening on PORT (under the
# shim too: the application's own TCP socket listens, docs/design.md: sharing a port)
listener_ino() { ss -Htlne "sport = :$1" 2>/dev/null | sed -n 's/.* ino:\([0-9]*\) .*/\1/p' | head -1; }

# relistened PORT INO: wait (10 s at most) until a listener other than INO
# listens on PORT: iperf3 -s made its listener again after a test (a client
# started before that would be refused, over kernel TCP too).
relistened() {
    _j=0
    while :; do
        _ino=$(listener_ino "$1")
        [ -z "$_ino" ] || [ "$_ino" = "$2" ] || return 0
        running "$SRV" || { show "$T/iperf3-srv.log"; fail "iperf3 -s ended after a test"; }
        [ "$_j" -lt 200 ] || { show "$T/iperf3-srv.log"; fail "iperf3 -s did not listen again within 10 s"; }
        sleep 0.05
        _j=$((_j + 1))
    done
}

run() {
    P=$(bat_port)
    bg_app iperf3-srv iperf3 -s -B 127.0.0.1 -p "$P"
    SRV=$LAST_PID
    bat_listen "$SRV" "$P" 20
    assert_listener "$P"
    n=0
    for dir in "" -R ""; do
        n=$((n + 1))
        [ "$n" = 1 ] || relistened "$P" "$ino"
        ino=$(listener_ino "$P")
        rc=0
        # shellcheck disable=SC2086
        run_app_t 60 iperf3 -c 127.0.0.1 -p "$P" -n 256M $dir -J --connect-timeout 20000 \
            >"$T/client.$n.json" 2>"$T/client.$n.err" || rc=$?
        [ "$rc" = 0 ] || { show "$T/client.$n.err" "$T/client.$n.json" "$T/iperf3-srv.log"; fail "iperf3 -c test $n exited $rc"; }
        check_report "$T/client.$n.json" "test $n${dir:+ $dir}"
    done
    echo "ok: three tests in a row against one iperf3 -s (it listened again between them)"
    relistened "$P" "$ino"
    rc=0
    stop_app "$SRV" 20 || rc=$?
    # iperf3 -s exits 1 on SIGTERM ("interrupt - the server has terminated")
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || { show "$T/iperf3-srv.log"; fail "iperf3 -s exited $rc on SIGTERM"; }
    ! grep -qi 'unable\|error' "$T/iperf3-srv.log" || { show "$T/iperf3-srv.log"; fail "iperf3 -s logged an error"; }
    echo "ok: iperf3 -s ends on SIGTERM, no error logged"
}
battery run
