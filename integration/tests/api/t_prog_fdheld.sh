#!/bin/sh
# Issue 43, item 4b: a program holding 1,000 connections under
# `ulimit -n 1100` still opens other files as over TCP (tests/prog_fdheld.c:
# a server child accepts the program's 1,000 connections, then each side
# opens files until EMFILE, then every connection carries its bytes).
# Over kernel TCP each connection is one fd. Under the shim the engine
# keeps its own fds (its bridge ends, the client sockets) in a table of
# its own where the hard limit is that low (RUDP_FD_TABLE=auto), so each
# side opens as many files as over TCP, less the shim's one eventfd and
# its memfd of connection state. The client's engine table holds two fds
# per connection (the server's one): the connections it has no room for go
# over kernel TCP, said at warn once; with a key (500 connections: a key
# forbids kernel TCP) all are rudp. With the engine's fds in the program's table (RUDP_FD_TABLE=shared,
# the shim before this) the program runs out: that run must fail.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_fdheld
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] || [ "$hard" -ge 1100 ] ||
    skip "hard RLIMIT_NOFILE $hard is below the 1100 the test sets"

# run OUT [VAR=VALUE...] N: prog_fdheld N under `ulimit -n 1100` (soft and
# hard), under the shim unless RUDP_NO_SHIM=1 is among the variables.
run() {
    _out=$1; shift
    _rc=0
    (ulimit -n 1100 && if echo "$*" | grep -q 'RUDP_NO_SHIM=1'; then
        exec timeout -k 5 120 env "$@"
    else
        exec timeout -k 5 120 env "LD_PRELOAD=$APP_LDP" "ASAN_OPTIONS=$APP_ASO" RUDP_STATS=1 "$@"
    fi) >"$_out" 2>&1 || _rc=$?
    return $_rc
}
files() { sed -n "s/^files: $2 \([0-9]*\)$/\1/p" "$1"; }
carried() { sed -n "s/^transport: $2 rudp \([0-9]*\) tcp \([0-9]*\)$/\\$3/p" "$1"; }

run "$T/tcp" RUDP_NO_SHIM=1 "$BIN/prog_fdheld" 1000 ||
    { show "$T/tcp"; fail "over kernel TCP, prog_fdheld 1000 failed"; }
tc=$(files "$T/tcp" client) ts=$(files "$T/tcp" server)
[ "$tc" -ge 50 ] && [ "$ts" -ge 50 ] || { show "$T/tcp"; fail "over kernel TCP only $tc / $ts files"; }
echo "ok: over kernel TCP, holding 1000 connections: the client opens $tc more files, the server $ts"

run "$T/shim" "$BIN/prog_fdheld" 1000 || { show "$T/shim"; fail "under the shim, prog_fdheld 1000 failed"; }
sc=$(files "$T/shim" client) ss=$(files "$T/shim" server)
[ "$sc" -ge $((tc - 2)) ] && [ "$ss" -ge $((ts - 2)) ] ||
    { show "$T/shim"; fail "under the shim the client opens $sc files (TCP $tc), the server $ss (TCP $ts)"; }
cr=$(carried "$T/shim" client 1) ck=$(carried "$T/shim" client 2)
[ $((cr + ck)) = 1000 ] && [ "$cr" -ge 400 ] || { show "$T/shim"; fail "the client's: $cr rudp, $ck kernel TCP"; }
[ "$(carried "$T/shim" server 1)" = "$cr" ] ||
    { show "$T/shim"; fail "the server has $(carried "$T/shim" server 1) rudp connections, the client $cr"; }
if [ "$ck" -gt 0 ]; then
    n=$(grep -c "warn: connect to 127.0.0.1:[0-9]*: over kernel TCP, not rudp: no file descriptor left in the engine's own fd table" "$T/shim") || true
    [ "$n" = 1 ] || { show "$T/shim"; fail "$ck connects over kernel TCP, said $n times (once per destination)"; }
fi
echo "ok: under the shim, holding 1000 connections: the client opens $sc more files (TCP $tc), the server $ss (TCP $ts); $cr of them over rudp, $ck over kernel TCP where the client's engine table was full, said"

make_key "$T/key"
run "$T/tcp500" RUDP_NO_SHIM=1 "$BIN/prog_fdheld" 500 || { show "$T/tcp500"; fail "over kernel TCP, prog_fdheld 500 failed"; }
run "$T/keyed" RUDP_KEY_FILE="$T/key" "$BIN/prog_fdheld" 500 ||
    { show "$T/keyed"; fail "keyed, prog_fdheld 500 failed"; }
tc=$(files "$T/tcp500" client) kc=$(files "$T/keyed" client)
ts=$(files "$T/tcp500" server) ks=$(files "$T/keyed" server)
[ "$kc" -ge $((tc - 2)) ] && [ "$ks" -ge $((ts - 2)) ] ||
    { show "$T/keyed"; fail "keyed, the client opens $kc files (TCP $tc), the server $ks (TCP $ts)"; }
[ "$(carried "$T/keyed" client 1)" = 500 ] && [ "$(carried "$T/keyed" server 1)" = 500 ] ||
    { show "$T/keyed"; fail "keyed, not every connection is rudp"; }
echo "ok: keyed, holding 500 connections, all rudp: the client opens $kc more files (TCP $tc), the server $ks (TCP $ts)"

# The control: the engine's fds in the program's table, as before.
rc=0
run "$T/shared" RUDP_FD_TABLE=shared "$BIN/prog_fdheld" 1000 || rc=$?
sc=$(files "$T/shared" client)
if [ "$rc" = 0 ] && [ "${sc:-0}" -ge 50 ]; then
    show "$T/shared"
    fail "with RUDP_FD_TABLE=shared the client still opened $sc files: the test does not tell"
fi
echo "ok: with the engine's fds in the program's table (RUDP_FD_TABLE=shared) it runs out (exit $rc, client files ${sc:-none})"
