#!/bin/sh
# Configuration messages of the shim (shim/base/config.c), given when a bad
# setting refuses the first TCP socket (EACCES): levels in any case,
# sizes with K/M/G (RUDP_BUFFER=1G), counts without, an unknown RUDP_* name
# warned with the closest known one (and the program runs on), conflicts
# named with their values, and RUDP_BUFFER=64K (its minimum) carrying a
# loopback transfer.
. "$(dirname "$0")/../../lib/lib.sh"

# Makes a TCP socket under the shim with the given settings; $rc, $T/err.
# A bad setting refuses it with EACCES (exit 13) and one line
# (docs/configuration.md, "A bad setting").
try() { rc=0; under_shim env "$@" "$BIN/prog_tcpsocket" 2>"$T/err" || rc=$?; }
accepts() {
    try "$@"
    [ "$rc" = 0 ] && [ ! -s "$T/err" ] || fail "$* refused: exit $rc, $(cat "$T/err")"
}
refuses() {
    try "$@"
    [ "$rc" = 13 ] || fail "$* accepted: exit $rc, $(cat "$T/err")"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "$*: not one line: $(cat "$T/err")"
}

for l in INFO Debug warn OFF Error; do accepts RUDP_LOG=$l; done
refuses RUDP_LOG=loud
echo "ok: RUDP_LOG in any case"

for d in 0 1ms 250ms 1.5s 2m; do accepts RUDP_LINGER=$d; done
for d in 1us 0.5ms 0x10 1e3 " 5" +5 inf 5h; do refuses RUDP_LINGER="$d"; done
refuses RUDP_CONNECT_TIMEOUT=0
echo "ok: durations: 0 or at least 1ms, digits and a unit only"

: >"$T/file"
refuses RUDP_QLOG_DIR="$T/file"
grep -q "a directory this process may create or write to" "$T/err" ||
    fail "RUDP_QLOG_DIR naming a file: $(cat "$T/err")"
echo "ok: RUDP_QLOG_DIR naming a file is refused (a relative one: ux/t_ux_qlog_dir.sh)"

for b in 1G 1g 1024M 64K 65536; do accepts RUDP_BUFFER=$b; done
refuses RUDP_BUFFER=2G
grep -q "64K to 1G" "$T/err" || fail "RUDP_BUFFER's range: $(cat "$T/err")"
refuses RUDP_BUFFER=-1
refuses RUDP_MEMORY=99999999999999G # the suffix would overflow 64 bits
accepts RUDP_MEMORY=1G
accepts RUDP_DATAGRAM=16K
echo "ok: sizes take K, M, G (RUDP_BUFFER=1G), overflow refused"

accepts RUDP_ENGINES=2
accepts RUDP_SOURCE_LIMIT=100
refuses RUDP_ENGINES=0K
refuses RUDP_SOURCE_LIMIT=2K
echo "ok: counts are plain numbers"

try RUDP_CONECT_TIMEOUT=5s
[ "$rc" = 0 ] || fail "an unknown variable is fatal: exit $rc"
[ "$(wc -l <"$T/err")" = 1 ] &&
  grep -q ' rudp\[[0-9]*\] warn: unknown variable RUDP_CONECT_TIMEOUT; did you mean RUDP_CONNECT_TIMEOUT?$' "$T/err" ||
    fail "a misspelt variable: $(cat "$T/err")"
try RUDP_SOURCE_LIMTI=3 # two letters swapped
grep -q "did you mean RUDP_SOURCE_LIMIT?" "$T/err" || fail "a swap: $(cat "$T/err")"
try RUDP_log=info
grep -q "did you mean RUDP_LOG?" "$T/err" || fail "a name in lower case: $(cat "$T/err")"
try RUDP_FOO_BAR=1
[ "$rc" = 0 ] && grep -q "unknown variable RUDP_FOO_BAR" "$T/err" && ! grep -q "did you mean" "$T/err" ||
    fail "a name close to none: exit $rc, $(cat "$T/err")"
try RUDP_A1=1 RUDP_A2=1 RUDP_A3=1 RUDP_A4=1 RUDP_A5=1 RUDP_A6=1 RUDP_A7=1
[ "$rc" = 0 ] && [ "$(wc -l <"$T/err")" = 6 ] && grep -q "and 2 more unknown RUDP_ variables" "$T/err" ||
    fail "seven unknown names: not five lines and a count: $(cat "$T/err")"
echo "ok: unknown names warned (at most five, then a count), the program runs: $(head -1 "$T/err")"

accepts RUDP_SHIM_BUILD=x RUDP_IT_TIMEOUT=1 RUDP_NO_SHIM=1 RUDP_QLOG_DIR="$T" RUDP_QLOG_MAX=1M
accepts RUDP_LOG=off RUDP_CONECT_TIMEOUT=5s
try RUDP_LOG_FILE="$T/log" RUDP_CONECT_TIMEOUT=5s
[ ! -s "$T/err" ] && grep -q "did you mean RUDP_CONNECT_TIMEOUT" "$T/log" ||
    fail "the warning does not follow RUDP_LOG_FILE: $(cat "$T/err")"
echo "ok: the scripts' variables are known; the warning follows RUDP_LOG and RUDP_LOG_FILE"

refuses RUDP_KEEPALIVE=90s RUDP_IDLE_TIMEOUT=60s
want="librudp_shim: RUDP_KEEPALIVE=90s must be shorter than RUDP_IDLE_TIMEOUT=60s: a keepalive probe is sent before the idle timeout gives up (0 turns either off); until it is fixed (or unset), this process's TCP sockets fail with EACCES"
[ "$(cat "$T/err")" = "$want" ] || fail "keepalive/idle: $(cat "$T/err")"
refuses RUDP_IDLE_TIMEOUT=10s
grep -q "RUDP_KEEPALIVE=15s (default) must be shorter than RUDP_IDLE_TIMEOUT=10s" "$T/err" ||
    fail "keepalive/idle with the default: $(cat "$T/err")"
accepts RUDP_KEEPALIVE=0 RUDP_IDLE_TIMEOUT=10s
refuses RUDP_BUFFER=64K RUDP_DATAGRAM=65000
grep -q "RUDP_BUFFER=64K must hold two datagrams of RUDP_DATAGRAM=65000" "$T/err" ||
    fail "buffer/datagram: $(cat "$T/err")"
refuses RUDP_CONNECT_TIMEOUT=500us
grep -q 'RUDP_CONNECT_TIMEOUT="500us" is not valid' "$T/err" ||
    fail "a timeout below 1 ms: $(cat "$T/err")"
echo "ok: conflicts named with their values: $want"

port=$(free_port)
head -c 300000 /dev/urandom >"$T/data"
RUDP_BUFFER=64K start_bg srv under_shim timeout 30 sh -c "exec nc -l 127.0.0.1 $port >'$T/got' </dev/null"
srv=$LAST_PID
wait_udp "$port"
RUDP_BUFFER=64K under_shim timeout 30 nc -N 127.0.0.1 "$port" <"$T/data" ||
    fail "RUDP_BUFFER=64K to loopback: $(cat "$T/srv.log")"
wait "$srv" || fail "the server failed: $(cat "$T/srv.log")"
[ "$(sha "$T/data")" = "$(sha "$T/got")" ] || fail "RUDP_BUFFER=64K: data differs"
echo "ok: RUDP_BUFFER=64K carries a loopback transfer (the loopback datagram fits two to the window)"
