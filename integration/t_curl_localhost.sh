#!/bin/sh
# curl http://localhost:P/ with curl's happy eyeballs over 127.0.0.1 and ::1
# (curl resolves "localhost" to both itself), both ends under the shim
# (kernel TCP with RUDP_NO_SHIM=1), against python3 -m http.server bound to
# each of:
#   ::         (dual stack)   the first address curl tries answers;
#   127.0.0.1  (IPv4 only)    curl must end on 127.0.0.1;
#   ::1        (IPv6 only)    127.0.0.1 is refused, curl must end on ::1.
# Each fetch: a 1 MiB random file with sha256 equal, curl exit 0, under 5 s.
. "$(dirname "$0")/lib.sh"
. "$ROOT/integration/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
mkdir "$T/www"
head -c 1048576 /dev/urandom >"$T/www/f.bin"
want=$(sha "$T/www/f.bin")

fetch() { # fetch BIND EXPECTED-REMOTE-IP (any: either)
    P=$(free_port)
    bg_app "http-$1" "$PY" -m http.server --bind "$1" --directory "$T/www" "$P"
    c_srv=$LAST_PID
    wait_listen "$P" 20
    rm -f "$T/got"
    rc=0
    run_app curl -sS --fail --max-time 20 -o "$T/got" -w '%{remote_ip} %{time_total}\n' \
        "http://localhost:$P/f.bin" >"$T/curl.out" 2>"$T/curl.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl.err" "$T/http-$1.log"; fail "server on $1: curl http://localhost:$P exited $rc"; }
    read -r c_ip c_secs <"$T/curl.out"
    [ "$(sha "$T/got")" = "$want" ] || fail "server on $1: sha256 differs ($(stat -c %s "$T/got") bytes)"
    case "$2" in any) ;; *) [ "$c_ip" = "$2" ] || fail "server on $1: curl ended on $c_ip, want $2" ;; esac
    c_ms=$(echo "$c_secs" | awk '{ printf "%d", $1 * 1000 }')
    [ "$c_ms" -lt 5000 ] || fail "server on $1: the fetch took $c_ms ms"
    echo "ok: server on $1: curl http://localhost reached $c_ip, 1 MiB, sha256 equal, $c_ms ms"
    rc=0
    stop_app "$c_srv" 10 || rc=$?
    # python exits -15 (143) on SIGTERM.
    [ "$rc" = 143 ] || [ "$rc" = 0 ] || { show "$T/http-$1.log"; fail "server on $1 exited $rc on SIGTERM"; }
}

fetch :: any
fetch 127.0.0.1 127.0.0.1
fetch ::1 ::1
