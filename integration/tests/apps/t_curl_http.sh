#!/bin/sh
# curl -> python3 -m http.server, both under the shim (kernel TCP with
# RUDP_NO_SHIM=1): a 10 MiB random file fetched over http://127.0.0.1:P,
# http://[::1]:P and http://localhost:P (the server binds :: dual-stack), each
# with sha256 equal to the original; then a rate-limited fetch that lasts
# about 3 s, during which ss must show a UDP socket on P and no TCP connection
# with P at either end (the server's TCP listener is the dual listener's, for
# plain clients; without the shim: the TCP connection, proving the probe sees
# a live transfer).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

mkdir "$T/www"
head -c 10485760 /dev/urandom >"$T/www/big.bin"
want=$(sha "$T/www/big.bin")

P=$(free_port)
bg_app http "$PY" -m http.server --bind :: --directory "$T/www" "$P"
HTTP_PID=$LAST_PID
wait_listen "$P" 20

for url in "http://127.0.0.1:$P/big.bin" "http://[::1]:$P/big.bin" "http://localhost:$P/big.bin"; do
    case "$url" in *::1*) have_ipv6_lo || { skip_ipv6 "$url"; continue; } ;; esac
    rm -f "$T/got"
    t0=$(ms_now)
    rc=0
    run_app curl -g -sS --fail --max-time 50 -o "$T/got" "$url" 2>"$T/curl.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl.err" "$T/http.log"; fail "curl $url exited $rc"; }
    got=$(sha "$T/got")
    [ "$got" = "$want" ] || fail "$url: sha256 $got, want $want ($(stat -c %s "$T/got") bytes)"
    echo "ok: $url: 10 MiB, sha256 equal, $(( $(ms_now) - t0 )) ms"
done

# A transfer that lasts: 10 MiB at 3.5 MB/s.
bg_app_io slow /dev/null "$T/slow.out" curl -sS --fail --max-time 50 --limit-rate 3500K \
    -o "$T/slow" "http://127.0.0.1:$P/big.bin"
SLOW_PID=$LAST_PID
i=0
while [ "$(stat -c %s "$T/slow" 2>/dev/null || echo 0)" -lt 1000000 ]; do
    [ "$i" -lt 200 ] || { show "$T/slow.log"; fail "the slow transfer did not start within 10 s"; }
    sleep 0.05
    i=$((i + 1))
done
assert_on_port "$P"
rc=0
wait_exit "$SLOW_PID" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/slow.log" "$T/http.log"; fail "the rate-limited curl exited $rc"; }
[ "$(sha "$T/slow")" = "$want" ] || fail "the rate-limited fetch: sha256 differs"
echo "ok: rate-limited fetch: sha256 equal"
kill "$HTTP_PID"
