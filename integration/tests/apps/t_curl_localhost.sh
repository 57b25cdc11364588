#!/bin/sh
# curl http://localhost:P/ with curl's happy eyeballs over 127.0.0.1 and ::1
# (curl resolves "localhost" to both itself), both ends under the shim
# (kernel TCP with RUDP_NO_SHIM=1), against python3 -m http.server bound to
# each of:
#   ::         (dual stack)   the first address curl tries answers;
#   127.0.0.1  (IPv4 only)    curl must end on 127.0.0.1;
#   ::1        (IPv6 only)    127.0.0.1 is refused, curl must end on ::1.
# Each fetch: a 1 MiB random file with sha256 equal, curl exit 0, and every
# attempt of curl's that failed was refused (curl -v names the errno): the
# fallback to the other address came from a refusal, not a connect timeout.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps
have_ipv6_lo || skip "no IPv6 loopback here (no ::1 on lo): curl's happy eyeballs over 127.0.0.1 and ::1"

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
    run_app curl -v -sS --fail --max-time 20 -o "$T/got" -w '%{remote_ip} %{time_total}\n' \
        "http://localhost:$P/f.bin" >"$T/curl.out" 2>"$T/curl.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl.err" "$T/http-$1.log"; fail "server on $1: curl http://localhost:$P exited $rc"; }
    read -r c_ip c_secs <"$T/curl.out"
    [ "$(sha "$T/got")" = "$want" ] || fail "server on $1: sha256 differs ($(stat -c %s "$T/got") bytes)"
    case "$2" in any) ;; *) [ "$c_ip" = "$2" ] || fail "server on $1: curl ended on $c_ip, want $2" ;; esac
    c_ms=$(echo "$c_secs" | awk '{ printf "%d", $1 * 1000 }')
    c_failed=$(grep -E '^\* (connect to .* failed|Immediate connect fail)' "$T/curl.err" || true)
    if echo "$c_failed" | grep -v '^$' | grep -qv 'Connection refused$'; then
        show "$T/curl.err"; fail "server on $1: an attempt failed other than refused: $c_failed"
    fi
    # Every address curl tried but did not end on was refused (not left
    # hanging while the other one won).
    for c_try in $(sed -n 's/^\*   Trying \[\{0,1\}\([0-9a-f.:]*[0-9a-f]\)\]\{0,1\}:[0-9]*\.\.\.$/\1/p' "$T/curl.err"); do
        [ "$c_try" != "$c_ip" ] || continue
        grep -q "^\* connect to $c_try port $P failed: Connection refused\$" "$T/curl.err" ||
            { show "$T/curl.err"; fail "server on $1: curl tried $c_try, which was not refused"; }
    done
    c_refused=$(echo "$c_failed" | grep -c 'Connection refused$' || true)
    echo "ok: server on $1: curl http://localhost reached $c_ip, 1 MiB, sha256 equal," \
        "$c_refused attempt(s) refused, none timed out ($c_ms ms)"
    rc=0
    stop_app "$c_srv" 10 || rc=$?
    # python exits -15 (143) on SIGTERM.
    [ "$rc" = 143 ] || [ "$rc" = 0 ] || { show "$T/http-$1.log"; fail "server on $1 exited $rc on SIGTERM"; }
}

fetch :: any
fetch 127.0.0.1 127.0.0.1
fetch ::1 ::1
