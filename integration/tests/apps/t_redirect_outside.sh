#!/bin/sh
# RUDP_REDIRECT=127.0.0.1/32 for curl and a server under the shim
# (kernel TCP for everything with RUDP_NO_SHIM=1):
#   inside:  curl -> a python3 http.server on 127.0.0.1:P under the shim:
#            rudp (under the shim ss shows UDP and no TCP on P);
#   outside: curl -> a python3 http.server on 127.0.0.2:Q started WITHOUT
#            the shim: the destination is outside RUDP_REDIRECT, so curl
#            must use kernel TCP (a rudp client could not reach a TCP-only
#            server at all); ss shows curl's TCP connection to 127.0.0.2:Q;
#   excluded: the same with RUDP_REDIRECT='!127.0.0.2,all';
#   control:  with RUDP_REDIRECT=all, curl under the shim must NOT reach the
#            TCP-only server (it goes over rudp, where nothing listens): so
#            the two fetches above succeeded because of RUDP_REDIRECT.
# Each fetch: a 10 MiB random file, sha256 equal. The server
# (compat/gated_http.py) holds each response open, the last 64 KiB unsent,
# until the test has looked at the connection and opens the gate: the check
# never races the end of the transfer. RUDP_FALLBACK=none throughout: with
# the fallback a redirected curl would reach the TCP-only server anyway
# (after a refused rudp attempt), and neither "outside" nor "control" would
# show what RUDP_REDIRECT did (t_fallback_refused.sh tests the fallback).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

mkdir "$T/www"
head -c 10485760 /dev/urandom >"$T/www/big.bin"
want=$(sha "$T/www/big.bin")
export RUDP_FALLBACK=none
export RUDP_REDIRECT=127.0.0.1/32

GATED=$ROOT/integration/compat/gated_http.py
GATE=$T/gate
P=$(free_port)
bg_app inside "$PY" "$GATED" 127.0.0.1 "$P" "$T/www" "$GATE"
wait_listen "$P" 20
assert_listener "$P"
Q=$(free_port)
# Never under the shim: a plain kernel TCP server.
start_bg outside "$PY" "$GATED" 127.0.0.2 "$Q" "$T/www" "$GATE"
wait_tcp "$Q" 20

# held_fetch NAME URL CHECK...: curl (as run_app/bg_app_io run it) with the
# gate closed; once 1 MB arrived runs CHECK while the server holds the
# response open, then opens the gate, waits for the end, checks the sha.
held_fetch() {
    c_name=$1 c_url=$2; shift 2
    rm -f "$T/$c_name.got" "$GATE"
    bg_app_io "curl-$c_name" /dev/null "$T/$c_name.out" curl -sS --fail --max-time 100 \
        -o "$T/$c_name.got" "$c_url"
    c_pid=$LAST_PID
    i=0
    while [ "$(stat -c %s "$T/$c_name.got" 2>/dev/null || echo 0)" -lt 1000000 ]; do
        [ "$i" -lt 600 ] || { show "$T/curl-$c_name.log"; fail "$c_name: the transfer did not start within 30 s"; }
        sleep 0.05
        i=$((i + 1))
    done
    "$@"
    : >"$GATE"
    rc=0
    wait_exit "$c_pid" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl-$c_name.log" "$T/inside.log" "$T/outside.log"; fail "$c_name: curl $c_url exited $rc"; }
    [ "$(sha "$T/$c_name.got")" = "$want" ] || fail "$c_name: sha256 differs ($(stat -c %s "$T/$c_name.got") bytes)"
    echo "ok: $c_name: curl $c_url: 10 MiB, sha256 equal"
}

# curl's own kernel TCP connection to 127.0.0.2:Q, seen by ss with its PID
# (the server holds it open, mid-response, until the gate opens).
assert_curl_tcp() {
    i=0
    while :; do
        c_ss=$(ss -H -tanp "( dport = :$Q )" 2>/dev/null || true)
        echo "$c_ss" | grep -q "127.0.0.2:$Q .*pid=$c_pid," && break
        kill -0 "$c_pid" 2>/dev/null || { show "$T/curl-$c_name.log"; fail "curl (pid $c_pid) ended with its response held open"; }
        [ "$i" -lt 40 ] || fail "no kernel TCP connection from curl (pid $c_pid) to 127.0.0.2:$Q in 2 s: $c_ss
all TCP: $(ss -H -tanp 2>/dev/null | grep -e ":$Q " -e "pid=$c_pid,")"
        sleep 0.05
        i=$((i + 1))
    done
    echo "ok: curl (pid $c_pid) -> 127.0.0.2:$Q is a kernel TCP connection"
}

held_fetch inside "http://127.0.0.1:$P/big.bin" assert_on_port "$P"
held_fetch outside "http://127.0.0.2:$Q/big.bin" assert_curl_tcp
export RUDP_REDIRECT='!127.0.0.2,all'
held_fetch excluded "http://127.0.0.2:$Q/big.bin" assert_curl_tcp

export RUDP_REDIRECT=all
if [ "$SHIM_MODE" = shim ]; then
    # The gate stays open: a curl that did reach the server would get the
    # whole file (exit 0), never a timeout that could pass for a failure.
    : >"$GATE"
    rc=0
    run_app_t 30 curl -sS --max-time 10 -o /dev/null "http://127.0.0.2:$Q/big.bin" 2>"$T/control.err" || rc=$?
    [ "$rc" != 0 ] || fail "control: with RUDP_REDIRECT=all, curl under the shim reached a kernel TCP server"
    # 7: couldn't connect (refused over rudp: nothing listens on UDP there).
    [ "$rc" = 7 ] || fail "control: curl exited $rc, want 7 (couldn't connect): $(head -1 "$T/control.err")"
    echo "ok: control: with RUDP_REDIRECT=all curl cannot reach the TCP-only server (exit $rc: $(head -1 "$T/control.err"))"
else
    echo "skip: control (RUDP_REDIRECT=all must fail) applies under the shim only"
fi
