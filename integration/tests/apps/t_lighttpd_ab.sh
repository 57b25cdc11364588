#!/bin/sh
# lighttpd (one process, epoll, sendfile) <-> ApacheBench with keep-alive
# (`ab -k`) and curl, over kernel TCP and then with both ends under the shim
# (lib/battery.sh): ab -k -n 5000 -c 20 of a 16 KiB file completes every
# request, none failed, every one of them on a kept-alive connection;
# ab -n 500 -c 10 without keep-alive (a connection a request) the same;
# curl fetches a 10 MiB file, sha256 equal; lighttpd ends on SIGTERM.
# nftables counts the kernel TCP segments on the port: > 0 over kernel TCP,
# 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

mkdir -p "$BAT_TOP/www"
head -c 16384 /dev/urandom >"$BAT_TOP/www/16k"
head -c 10485760 /dev/urandom >"$BAT_TOP/www/10m"

run() {
    P=$(bat_port)
    cat >"$T/lighttpd.conf" <<CONF
server.document-root = "$BAT_TOP/www"
server.bind = "127.0.0.1"
server.port = $P
server.errorlog = "$T/error.log"
server.pid-file = "$T/lighttpd.pid"
server.max-keep-alive-requests = 10000
server.max-connections = 1024
server.modules = ()
mimetype.assign = ("" => "application/octet-stream")
CONF
    bg_app lighttpd lighttpd -D -f "$T/lighttpd.conf"
    LH=$LAST_PID
    bat_listen "$LH" "$P" 20
    assert_listener "$P"

    run_app_t 120 ab -q -k -n 5000 -c 20 "http://127.0.0.1:$P/16k" >"$T/ab-k.out" 2>&1 ||
        { rc=$?; show "$T/ab-k.out" "$T/error.log"; fail "ab -k exited $rc"; }
    ab_check "$T/ab-k.out" 5000 1
    run_app_t 120 ab -q -n 500 -c 10 "http://127.0.0.1:$P/16k" >"$T/ab.out" 2>&1 ||
        { rc=$?; show "$T/ab.out" "$T/error.log"; fail "ab exited $rc"; }
    ab_check "$T/ab.out" 500 0

    run_app curl -sS --max-time 60 -o "$T/got" "http://127.0.0.1:$P/10m" || fail "curl exited $?"
    [ "$(sha "$T/got")" = "$(sha "$BAT_TOP/www/10m")" ] || fail "10 MiB through curl: sha256 differs"
    echo "ok: curl: 10 MiB file, sha256 equal"

    rc=0
    stop_app "$LH" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/lighttpd.log" "$T/error.log"; fail "lighttpd exited $rc on SIGTERM"; }
    echo "ok: lighttpd ends on SIGTERM"
}
battery run
