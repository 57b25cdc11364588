#!/bin/sh
# tests/prog_tfo.c: TCP Fast Open as a program asks for it, over kernel TCP
# (RUDP_NO_SHIM=1: the requests and answers only) and under the shim, where
# the opt-in must be honoured as the kernel honours it and nowhere else:
#   1. a listener with TCP_FASTOPEN: the first TCP_FASTOPEN_CONNECT client
#      has no token (no 0-RTT), the second rides with its SYN, so does a
#      sendto(MSG_FASTOPEN) after it; a plain client (no opt-in) does not,
#      even with a token stored; RUDP_0RTT=1 makes a plain one use it.
#      The server counts 3 accepted.
#   2. a listener without TCP_FASTOPEN: no token given, no 0-RTT.
#   2b. a token directory others may enter (mode 0755): not used, a warning.
#   2c. keyed: the same with a key at both ends (its own token files).
#   3. a replay: the last 0-RTT SYN, captured, sent again from another
#      port of the same address: the strike register refuses it (the
#      server counts a replay), the request is served once.
#   4. the token store stays bounded: file names of the bounded set only.
#   5. a token for a server that now runs kernel TCP only: the refusal of
#      the 0-RTT request reads as an error, not as an empty answer.
# Tokens are kept in a directory of this test's own (XDG_RUNTIME_DIR).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_tfo
XDG_RUNTIME_DIR="$T/xdg"
export XDG_RUNTIME_DIR
mkdir -m 700 "$XDG_RUNTIME_DIR"
shim=1
[ "${RUDP_NO_SHIM:-0}" = 1 ] && shim=0

# client LABEL MODE MSG: one request; its output in $T/LABEL.out, its
# statistics (under the shim) in $T/LABEL.err
client() {
    _rc=0
    RUDP_STATS=1 run_app "$BIN/prog_tfo" client "$P" "$2" "$3" >"$T/$1.out" 2>"$T/$1.err" || _rc=$?
    sed "s/^/$1: /" "$T/$1.out"
    [ "$_rc" = 0 ] || { show "$T/$1.err"; fail "$1: prog_tfo client exited $_rc"; }
    assert_transport "$T/$1.out"
}
# zrtt LABEL: how many of the client's SYNs carried data (its statistics;
# a keeper that took its connection over at exit prints them again, the
# process's counts included: the largest)
zrtt() { sed -n 's/.*0-rtt: .*client: sent \([0-9]*\),.*/\1/p' "$T/$1.err" | awk '$1 > m {m = $1} END {print m + 0}'; }
expect_zrtt() {
    [ "$shim" = 1 ] || return 0
    got=$(zrtt "$1")
    [ "$got" = "$2" ] || { show "$T/$1.err"; fail "$1: $got SYNs with data, want $2"; }
    echo "ok: $1: $got SYN with data"
}
# server NAME N QLEN: prog_tfo serving N requests, with RUDP_STATS
server() {
    P=$(free_port)
    RUDP_STATS=1 bg_app "$1" "$BIN/prog_tfo" server "$P" "$2" "$3"
    SRV_PID=$LAST_PID
    wait_line "$T/$1.log" '^ready' 20 || { show "$T/$1.log"; fail "$1 did not start"; }
    wait_listen "$P" 20
}
server_done() {
    wait_exit "$SRV_PID" 30 || { show "$T/$1.log"; fail "$1 did not serve all its requests"; }
}
# stat NAME FIELD: a server's 0-rtt counter at exit
stat() { sed -n "s/.*0-rtt: .*$2 \([0-9]*\).*/\1/p" "$T/$1.log" | awk '$1 > m {m = $1} END {print m + 0}'; }

# 1. TCP_FASTOPEN on the listener
server fo 5 8
client first connect "GET /first"
expect_zrtt first 0
client second connect "GET /second"
expect_zrtt second 1
client third sendto "GET /third"
expect_zrtt third 1
client plain plain "GET /plain"
expect_zrtt plain 0
if [ "$shim" = 1 ]; then
    ls "$XDG_RUNTIME_DIR/rudp-tokens/" | grep -q . || fail "the plain client took the stored token"
fi
RUDP_0RTT=1 client forced plain "GET /forced"
# RUDP_0RTT holds a plain client's SYN 10 ms for its first write (it may
# never write first: a server that speaks first); a client preempted
# longer between its connect() and its write (a loaded make test: once)
# sends the SYN without it. Then the check cannot run: said, not failed.
gap=$(sed -n 's/^gap: \([0-9.]*\) ms.*/\1/p' "$T/forced.out")
want_fo=3
if [ "$shim" = 1 ] && [ "$(zrtt forced)" = 0 ] && awk -v g="${gap:-0}" 'BEGIN { exit !(g >= 10) }'; then
    echo "note: forced: connect() and the write took $gap ms, past the 10 ms the SYN waits for it: its SYN went without data, not checked (a busy machine)"
    want_fo=2
else
    expect_zrtt forced 1
fi
server_done fo
grep -c '^served' "$T/fo.log" | grep -qx 5 || { show "$T/fo.log"; fail "fo: not 5 requests served"; }
if [ "$shim" = 1 ]; then
    [ "$(stat fo accepted)" = "$want_fo" ] || { show "$T/fo.log"; fail "fo: 0-RTT accepted $(stat fo accepted), want $want_fo"; }
    echo "ok: the server took $want_fo requests with their SYNs"
fi

# 2. no TCP_FASTOPEN on the listener
server nofo 2 0
client nofo1 connect "GET /a"
client nofo2 connect "GET /b"
expect_zrtt nofo1 0
expect_zrtt nofo2 0
server_done nofo
if [ "$shim" = 1 ]; then
    grep -q '0-rtt:' "$T/nofo.log" && { show "$T/nofo.log"; fail "nofo: tokens moved without TCP_FASTOPEN"; }
    echo "ok: no TCP_FASTOPEN, no token given"
fi

[ "$shim" = 1 ] || { echo "ok: kernel TCP: every request answered"; exit 0; }

# 2b. a token directory others may enter is not used (as a key file others
# may read is refused): no 0-RTT, the token left alone, a warning
server perm 3 8
client perm1 connect "GET /p1"
chmod 755 "$XDG_RUNTIME_DIR/rudp-tokens"
client perm2 connect "GET /p2"
expect_zrtt perm2 0
grep -q 'token directory .* is not private' "$T/perm2.err" ||
    { show "$T/perm2.err"; fail "perm2: no warning about the token directory"; }
chmod 700 "$XDG_RUNTIME_DIR/rudp-tokens"
client perm3 connect "GET /p3"
expect_zrtt perm3 1
server_done perm
echo "ok: a token directory open to others is not used"

# 2c. keyed (RUDP_KEY_FILE at both ends): tokens of their own (a file per
# mode), the second connection's first bytes sealed in its SYN
make_key "$T/key"
RUDP_KEY_FILE="$T/key" server keyed 2 8
RUDP_KEY_FILE="$T/key" client k1 connect "GET /k1"
expect_zrtt k1 0
RUDP_KEY_FILE="$T/key" client k2 connect "GET /k2"
expect_zrtt k2 1
server_done keyed
ls "$XDG_RUNTIME_DIR/rudp-tokens/" | grep -q '^k4-' || fail "keyed: no token file of keyed mode"
[ "$(stat keyed accepted)" = 1 ] || { show "$T/keyed.log"; fail "keyed: 0-RTT accepted $(stat keyed accepted), want 1"; }
echo "ok: keyed: the second connection's request rode with its SYN"

# 3. a replayed SYN
server replay 3 8 # a third never comes: it listens through the replay
client r1 connect "GET /r1"
capture_start syn "$P"
CAP=$CAPTURE_PID
client r2 connect "GET /r2"
expect_zrtt r2 1
capture_stop "$T/syn.pcapng" "$P" "$CAP"
tshark -r "$T/syn.pcapng" -Y "udp.dstport == $P && udp.length == 1208" -T fields -e udp.payload \
    >"$T/syn.hex" 2>"$T/syn.tshark.err" || true
[ -s "$T/syn.hex" ] || { show "$T/syn.tshark.err"; fail "no SYN captured"; }
"$PY" - "$P" "$T/syn.hex" <<'PY'
import socket, sys
port, path = int(sys.argv[1]), sys.argv[2]
syn = bytes.fromhex(open(path).readline().strip().replace(":", ""))
assert syn[:2] == b"ru" and syn[3] & 15 == 1, "not a SYN"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
for _ in range(3):
    s.sendto(syn, ("127.0.0.1", port))
print("replayed the SYN 3 times from port", s.getsockname()[1])
PY
sleep 0.5 # the replays are datagrams: no answer to wait for
kill -TERM "$SRV_PID" 2>/dev/null || true
wait_exit "$SRV_PID" 10 || true
served=$(grep -c '^served' "$T/replay.log" || true)
[ "$served" = 2 ] || { show "$T/replay.log"; fail "replay: $served requests served, want 2"; }
[ "$(stat replay replayed)" -ge 1 ] || { show "$T/replay.log"; fail "replay: no replay counted"; }
[ "$(stat replay accepted)" = 1 ] || { show "$T/replay.log"; fail "replay: 0-RTT accepted $(stat replay accepted), want 1"; }
echo "ok: a replayed SYN was refused ($(stat replay replayed) counted), its request served once"

# 4. the store stays bounded (state/tokens.c): a file per bucket of servers
# (mode, family, one of 256 buckets), no temporary left behind
if [ "$shim" = 1 ]; then
    bad=$(ls -A "$XDG_RUNTIME_DIR/rudp-tokens/" | grep -Ev '^[uk][46]-[0-9a-f]{2}$' || true)
    [ -z "$bad" ] || fail "token store: files outside the bounded set of names: $bad"
    ls "$XDG_RUNTIME_DIR/rudp-tokens/" | grep -q . || fail "token store: empty"
    echo "ok: token files: $(ls "$XDG_RUNTIME_DIR/rudp-tokens/" | tr '\n' ' ')"
fi

# 5. the server stopped running rudp since it gave the token (kernel TCP
# only now): the 0-RTT connect already said 0 and the request rode in the
# SYN, so its refusal must reach the program as an error, not as the
# server's clean close (an empty answer). Linux's TFO would retry without
# the cookie; ours goes without the fallback (docs/limits.md).
if [ "$shim" = 1 ]; then
    server gone 1 8
    client g1 connect "GET /g1"
    server_done gone
    start_bg plaintcp "$BIN/prog_tfo" server "$P" 1 8
    PLAIN_PID=$LAST_PID
    wait_line "$T/plaintcp.log" '^ready' 20 || { show "$T/plaintcp.log"; fail "plain server did not start"; }
    _rc=0
    run_app "$BIN/prog_tfo" client "$P" connect "GET /g2" >"$T/g2.out" 2>"$T/g2.err" || _rc=$?
    kill "$PLAIN_PID" 2>/dev/null || true
    wait_exit "$PLAIN_PID" 10 || true
    if [ "$_rc" = 0 ]; then
        echo "ok: g2: served over kernel TCP"
    else
        grep -q 'read: ' "$T/g2.err" ||
            { show "$T/g2.out"; show "$T/g2.err"; fail "g2: a refused 0-RTT request read as a clean close (no error)"; }
        echo "ok: g2: the refusal read as an error: $(grep -o 'read: .*' "$T/g2.err" | head -1)"
    fi
fi
