#!/bin/sh
# rudpraw.py (integration/tools), the raw client written from docs/wire.md's wire
# format, speaks the protocol: its codec passes its self-test; against a
# python3 listener under the shim it completes the handshake (the server
# acknowledges the first DATA), sends a text in order with FIN that the
# application reads exactly, then gets the server's FIN; out-of-order STREAM
# frames and DATA_BLOCKED are acknowledged and answered; several connections
# share one UDP source port; and after a burst of junk datagrams the
# listener still completes a handshake. Always under the shim: the raw
# client speaks rudp, not TCP (RUDP_NO_SHIM does not apply).
set -eu
. "$(dirname "$0")/../../lib/lib.sh"

RAW="$ROOT/integration/tools/rudpraw.py"

# The listener: accepts every connection; each is read to EOF in a thread,
# its bytes saved as $DIR/<client port>.data, then "eof PORT LEN" printed.
cat >"$T/srv.py" <<'PY'
import socket, sys, threading
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen(16)
print("listening", flush=True)

def serve(c, peer_port):
    got = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        got += d
    with open("%s/%d.data" % (out, peer_port), "wb") as f:
        f.write(got)
    print("eof %d %d" % (peer_port, len(got)), flush=True)
    c.close()

while True:
    c, a = s.accept()
    print("accepted %s:%d" % a[:2], flush=True)
    threading.Thread(target=serve, args=(c, a[1]), daemon=True).start()
PY

# wait_line FILE ERE SECS: bounded wait for a matching line (shimlib.sh has
# the same, but its RUDP_NO_SHIM mode means nothing here).
wait_line() {
    _i=0
    while [ "$_i" -lt $(($3 * 20)) ]; do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
        _i=$((_i + 1))
    done
    return 1
}
show() { for _f in "$@"; do echo "--- $_f" >&2; tail -30 "$_f" >&2 2>/dev/null || true; done; }

# field KEY LINE: the value of KEY=... in a summary line.
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

# raw NAME ARGS...: runs a subcommand (bounded), keeps its summary in $OUT.
raw() {
    _n=$1; shift
    rc=0
    OUT=$(timeout -k 5 60 "$PY" "$RAW" "$@" 2>"$T/$_n.err") || rc=$?
    echo "$_n: $OUT"
    [ "$rc" = 0 ] || { show "$T/$_n.err" "$T/srv.log"; fail "rudpraw.py $1 exited $rc"; }
}

raw selftest selftest
[ "$(field selftest "$OUT")" = ok ] || fail "the codec self-test failed"
echo "ok: codec self-test"

mkdir "$T/data"
P=$(free_port)
start_bg srv under_shim "$PY" "$T/srv.py" 127.0.0.1 "$P" "$T/data"
SRV=$LAST_PID
wait_udp "$P"

raw handshake handshake 127.0.0.1 "$P"
[ "$(field handshake "$OUT")" = ok ] || fail "no handshake"
[ "$(field ping_acked "$OUT")" = 1 ] || fail "the server did not acknowledge the first DATA"
[ "$(field window "$OUT")" -gt 0 ] || fail "no initial window in the SYNACK"
[ "$(field retries "$OUT")" = 0 ] || fail "a RETRY answered the first SYN of an idle server"
echo "ok: handshake in one round trip (SYN, SYNACK, first DATA acknowledged)"

TEXT='hello from a raw rudp client: 0123456789 ~!@#$%^&*()'
raw send send 127.0.0.1 "$P" --data "$TEXT" --wait-fin --timeout 10
[ "$(field acked "$OUT")" = 1 ] || fail "the text was not acknowledged"
port=$(field src_port "$OUT")
wait_line "$T/srv.log" "^eof $port " 10 || { show "$T/srv.log"; fail "the application never read EOF"; }
printf '%s' "$TEXT" >"$T/want"
cmp -s "$T/want" "$T/data/$port.data" ||
    fail "the application read '$(cat "$T/data/$port.data")', want '$TEXT'"
[ "$(field peer_fin "$OUT")" = 1 ] || fail "no FIN from the server after its application closed"
echo "ok: in-order STREAM with FIN: the application read exactly the text; the server's FIN came back"

raw scatter scatter 127.0.0.1 "$P" --step 4096 --bytes-per 1
[ "$(field frames_sent "$OUT")" -gt 0 ] || fail "scatter sent nothing"
[ "$(field acked "$OUT")" -gt 0 ] || fail "no out-of-order frame was acknowledged"
echo "ok: out-of-order STREAM frames up to the advertised limit, acknowledged"

raw blocked blocked 127.0.0.1 "$P" --count 2 --interval-ms 5
[ "$(field max_data_updates "$OUT")" -gt 0 ] || fail "DATA_BLOCKED drew no MAX_DATA"
[ "$(field max_data_seen "$OUT")" -ge "$(field window "$OUT")" ] || fail "MAX_DATA below the initial window"
echo "ok: DATA_BLOCKED answered with MAX_DATA"

raw many many 127.0.0.1 "$P" --conns 4
[ "$(field completed "$OUT")" = 4 ] || fail "not every connection from one source port completed"
echo "ok: 4 connections from one UDP source port, demultiplexed by connection ID"

raw junk junk 127.0.0.1 "$P" --rate 2000 --seconds 0.5
[ "$(field sent_dgrams "$OUT")" -gt 0 ] || fail "junk sent nothing"
kill -0 "$SRV" 2>/dev/null || { show "$T/srv.log"; fail "the listener died of junk"; }
raw handshake2 handshake 127.0.0.1 "$P"
[ "$(field handshake "$OUT")" = ok ] || fail "no handshake after the junk"
echo "ok: after junk datagrams the listener still completes a handshake"
