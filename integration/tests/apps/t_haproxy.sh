#!/bin/sh
# haproxy (2 threads, epoll; an HTTP frontend with keep-alive to clients and
# a TCP frontend with option splice-auto) in front of python3's http.server
# (ThreadingHTTPServer, a connection per request), over kernel TCP and then
# with all of them under the shim (lib/battery.sh): ab -k -n 2000 -c 10
# through the HTTP frontend, every request complete and kept alive on the
# client side, a new backend connection each; curl fetches a 10 MiB file
# through each frontend, sha256 equal; haproxy's stats say the backend
# answered every request with 2xx; "disable frontend" refuses clients and
# "enable frontend" serves them again on the same port; haproxy ends on
# SIGUSR1 (soft stop),
# status 0.  nftables counts the kernel TCP segments on the three ports: >
# 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

mkdir -p "$BAT_TOP/www"
head -c 8192 /dev/urandom >"$BAT_TOP/www/8k"
head -c 10485760 /dev/urandom >"$BAT_TOP/www/10m"

run() {
    B=$(bat_port) H=$(bat_port) S=$(bat_port) A=$(bat_port)
    bg_app backend "$PY" -m http.server --bind 127.0.0.1 --directory "$BAT_TOP/www" "$B"
    bat_listen "$LAST_PID" "$B" 20
    cat >"$T/haproxy.cfg" <<CONF
global
    nbthread 2
    maxconn 1000
    stats socket $T/stats.sock mode 600 level admin
defaults
    timeout connect 20s
    timeout client 60s
    timeout server 60s
frontend web
    mode http
    bind 127.0.0.1:$H
    default_backend py
frontend raw
    mode tcp
    option splice-auto
    bind 127.0.0.1:$S
    default_backend pyraw
listen admin
    mode http
    bind 127.0.0.1:$A
    stats enable
    stats uri /stats
backend py
    mode http
    server s1 127.0.0.1:$B
backend pyraw
    mode tcp
    option splice-auto
    server s1 127.0.0.1:$B
CONF
    haproxy -c -q -f "$T/haproxy.cfg" || fail "haproxy -c: the configuration is refused"
    bg_app haproxy haproxy -db -f "$T/haproxy.cfg"
    HA=$LAST_PID
    bat_listen "$HA" "$H" 20
    bat_listen "$HA" "$S" 20
    assert_listener "$H"

    run_app_t 120 ab -q -k -n 2000 -c 10 "http://127.0.0.1:$H/8k" >"$T/ab.out" 2>&1 ||
        { rc=$?; show "$T/ab.out" "$T/haproxy.log" "$T/backend.log"; fail "ab -k exited $rc"; }
    ab_check "$T/ab.out" 2000 1

    run_app curl -sS --max-time 60 -o "$T/got.http" "http://127.0.0.1:$H/10m" || fail "curl (http frontend) exited $?"
    [ "$(sha "$T/got.http")" = "$(sha "$BAT_TOP/www/10m")" ] || fail "10 MiB through the http frontend: sha256 differs"
    run_app curl -sS --max-time 60 -o "$T/got.raw" "http://127.0.0.1:$S/10m" || fail "curl (tcp frontend) exited $?"
    [ "$(sha "$T/got.raw")" = "$(sha "$BAT_TOP/www/10m")" ] || fail "10 MiB through the tcp frontend: sha256 differs"
    echo "ok: curl: 10 MiB through the http and the tcp frontends, sha256 equal"

    run_app curl -sS --max-time 20 -o "$T/stats.csv" "http://127.0.0.1:$A/stats;csv" || fail "curl (stats) exited $?"
    # backend py, server s1: hrsp_2xx counts 2,001 (ab + curl)
    ok2xx=$(awk -F, 'NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) c[$i] = i; next }
        $1 == "py" && $2 == "s1" { print $c["hrsp_2xx"] }' "$T/stats.csv")
    [ "$ok2xx" = 2001 ] || { show "$T/stats.csv"; fail "haproxy stats: backend 2xx $ok2xx, want 2001"; }
    echo "ok: haproxy's stats: the backend answered 2,001 requests with 2xx"

    # "disable frontend" stops its listener (connect(AF_UNSPEC)), "enable
    # frontend" listens again (listen()) on the port it was bound to: under
    # the shim before 2026-11-29 that took a new port, and the frontend's
    # own stayed refused
    ha_cmd() {
        "$PY" -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
sys.stdout.write(s.recv(4096).decode())' "$T/stats.sock" "$1"
    }
    ha_cmd "disable frontend web" >"$T/cli.out" || fail "haproxy's CLI: disable frontend"
    rc=0
    # (no fallback: its kernel TCP try would count as segments)
    RUDP_FALLBACK=none run_app curl -sS --max-time 10 -o /dev/null "http://127.0.0.1:$H/8k" \
        2>"$T/dis.err" || rc=$?
    [ "$rc" = 7 ] || { show "$T/dis.err" "$T/cli.out"; fail "curl to a disabled frontend exited $rc, not 7 (refused)"; }
    ha_cmd "enable frontend web" >>"$T/cli.out" || fail "haproxy's CLI: enable frontend"
    run_app curl -sS --max-time 20 -o "$T/got.en" "http://127.0.0.1:$H/8k" ||
        { rc=$?; show "$T/cli.out" "$T/haproxy.log"; fail "curl after enable frontend exited $rc"; }
    [ "$(sha "$T/got.en")" = "$(sha "$BAT_TOP/www/8k")" ] || fail "8k after enable frontend: sha256 differs"
    echo "ok: haproxy's disable frontend refuses clients, enable frontend serves them on its port again"

    rc=0
    stop_app "$HA" 30 USR1 || rc=$?
    [ "$rc" = 0 ] || { show "$T/haproxy.log"; fail "haproxy exited $rc on SIGUSR1 (soft stop)"; }
    echo "ok: haproxy soft stop, status 0"
}
battery run
