#!/bin/sh
# Dual listener off (issue 14): with RUDP_ACCEPT_TCP=0, and keyed
# (RUDP_KEY_FILE) without RUDP_ACCEPT_TCP, a listener under the shim takes
# rudp only: a plain curl (no shim) is refused ("Connection refused", curl
# exit 7: the port is held but not listening, so the kernel answers RST)
# while a curl under the shim with the same settings is served, and the
# listen line does not offer plain TCP. Keyed with RUDP_ACCEPT_TCP=1 the
# plain curl is served again (a key holder may ask for a plaintext path).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "the dual listener is the shim's"

mkdir "$T/www"
echo "served over rudp only" >"$T/www/f.txt"
make_key "$T/key"

# case_run NAME WANT ENV...: http.server under the shim with ENV; WANT is
# refused or served for the plain curl.
# (start_bg sets $name: this one is cname)
case_run() {
    cname=$1 want=$2; shift 2
    P=$(free_port)
    cd "$T/www"
    bg_app "http-$cname" env RUDP_LOG=info "$@" "$PY" -m http.server --bind 127.0.0.1 "$P"
    SRV=$LAST_PID
    cd "$ROOT"
    wait_udp "$P"
    wait_line "$T/http-$cname.log" 'listening over rudp on UDP port' 10 ||
        { show "$T/http-$cname.log"; fail "$cname: no listen line"; }
    rc=0
    timeout 30 curl -sS -v -o "$T/got" "http://127.0.0.1:$P/f.txt" 2>"$T/curl-$cname.err" || rc=$?
    if [ "$want" = refused ]; then
        [ "$rc" = 7 ] && grep -q 'Connection refused' "$T/curl-$cname.err" ||
            { show "$T/curl-$cname.err" "$T/http-$cname.log"; fail "$cname: plain curl exited $rc, want 7 (refused)"; }
        ! ss -H -tln "sport = :$P" | grep -q . || fail "$cname: a TCP listener on port $P"
        ! grep -q 'plain TCP' "$T/http-$cname.log" || { show "$T/http-$cname.log"; fail "$cname: the log offers plain TCP"; }
    else
        [ "$rc" = 0 ] && cmp -s "$T/got" "$T/www/f.txt" ||
            { show "$T/curl-$cname.err" "$T/http-$cname.log"; fail "$cname: plain curl exited $rc, want the file"; }
        grep -q 'plain TCP connection from 127\.0\.0\.1:' "$T/http-$cname.log" ||
            { show "$T/http-$cname.log"; fail "$cname: no plain TCP line"; }
    fi
    rc=0
    run_app env "$@" curl -sS -o "$T/got2" "http://127.0.0.1:$P/f.txt" 2>"$T/curl2-$cname.err" || rc=$?
    [ "$rc" = 0 ] && cmp -s "$T/got2" "$T/www/f.txt" ||
        { show "$T/curl2-$cname.err" "$T/http-$cname.log"; fail "$cname: curl under the shim exited $rc"; }
    kill "$SRV"
    wait_exit "$SRV" 20 || true
    echo "ok: $cname: plain curl $want, curl under the shim served"
}

case_run accept_tcp_0 refused RUDP_ACCEPT_TCP=0
case_run keyed refused RUDP_KEY_FILE="$T/key"
case_run keyed_accept_tcp_1 served RUDP_KEY_FILE="$T/key" RUDP_ACCEPT_TCP=1
