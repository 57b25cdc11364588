#!/bin/sh
# Issue 43, item 4b: a program holding 1,000 connections under
# `ulimit -n 1100` still opens other files as over TCP (tests/prog_fdheld.c:
# a server child accepts the program's 1,000 connections, then each side
# opens files until EMFILE, then every connection carries its bytes).
# Over kernel TCP each connection is one fd. Under the shim the engines
# keep their own fds (their bridge ends, the client sockets) in tables of
# their own where the hard limit is that low (RUDP_FD_TABLE=auto), so each
# side opens as many files as over TCP, less the shim's eventfd per engine
# and its memfd of connection state; every connection is rudp: a client
# engine's table holds two fds per connection, so the client's process
# runs a second engine, with a table of its own, when the first is full.
# The same keyed; and a client that exits right after writing, whose
# engines' keepers (one per table) deliver it all. With the engines' fds in the program's table
# (RUDP_FD_TABLE=shared, the shim before this) the program runs out: that
# run must fail.
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

# check OUT LABEL: under the shim as over kernel TCP ($tc, $ts), less the
# shim's own fds in the program's table (an eventfd per engine, a memfd);
# every connection over rudp, both sides.
check() {
    sc=$(files "$1" client) ss=$(files "$1" server)
    eng=$(sed -n 's/.*engine: threads \([0-9]*\).*/\1/p' "$1" | sort -n | tail -1)
    [ -n "$eng" ] || { show "$1"; fail "$2: no engine counters (RUDP_STATS)"; }
    [ "$sc" -ge $((tc - 1 - eng)) ] && [ "$ss" -ge $((ts - 1 - eng)) ] ||
        { show "$1"; fail "$2: the client opens $sc files (TCP $tc), the server $ss (TCP $ts), $eng engines"; }
    [ "$(carried "$1" client 1)" = 1000 ] && [ "$(carried "$1" server 1)" = 1000 ] ||
        { show "$1"; fail "$2: not every connection is rudp: client $(carried "$1" client 1), server $(carried "$1" server 1)"; }
    echo "ok: $2, holding 1000 connections, all rudp: the client opens $sc more files (TCP $tc), the server $ss (TCP $ts); engine threads (tables) at most $eng"
}
# Engines keep tables of their own only where the kernel lets them take
# the program's fds (pidfd_getfd; Docker's default seccomp profile refuses
# it without CAP_SYS_PTRACE): elsewhere they stay in the program's table
# (docs/limits.md), and 1,000 connections leave it no room, as with
# RUDP_FD_TABLE=shared below.
apart=$("$BIN/prog_fdheld" probe)
if [ "$apart" = "apart: yes" ]; then
run "$T/shim" "$BIN/prog_fdheld" 1000 || { show "$T/shim"; fail "under the shim, prog_fdheld 1000 failed"; }
check "$T/shim" "under the shim"
make_key "$T/key"
run "$T/keyed" RUDP_KEY_FILE="$T/key" "$BIN/prog_fdheld" 1000 ||
    { show "$T/keyed"; fail "keyed, prog_fdheld 1000 failed"; }
check "$T/keyed" keyed

# The client exits right after writing on each connection: a keeper for
# each of its engines' tables delivers what it wrote, then the FIN.
# The client's part on a thread once main has called pthread_exit: the
# process's first thread has ended, and a pidfd of the process reaches no
# fd table (pidfd_getfd: ESRCH); the engines take from a live thread.
run "$T/leader" "$BIN/prog_fdheld" 1000 leader || { show "$T/leader"; fail "prog_fdheld 1000 leader failed"; }
check "$T/leader" "main ended (pthread_exit)"

run "$T/exit" "$BIN/prog_fdheld" 1000 exit || { show "$T/exit"; fail "prog_fdheld 1000 exit failed"; }
i=0
until grep -q '^delivered: 1000$' "$T/exit" || [ "$i" -ge 600 ]; do
    sleep 0.1
    i=$((i + 1))
done
grep -q '^delivered: 1000$' "$T/exit" ||
    { show "$T/exit"; fail "the server did not get every byte and FIN after the client's exit"; }
echo "ok: the client exited at once after writing: every connection's bytes and FIN reached the server"
else
    echo "skip: 1,000 connections under the fd limit, keyed, after main ended, at exit: engines cannot keep tables of their own here ($apart)"
fi

# Where a seccomp profile refuses what the engines' own tables take, as a
# container's may (prog_refuse: EPERM): without unshare, close_range's
# CLOSE_RANGE_UNSHARE takes its place; without both, or without
# pidfd_getfd (to copy a connect's fds over), the engines stay in the
# program's table, said at info; every connection is rudp either way.
need_bin prog_refuse
run "$T/tcp300" RUDP_NO_SHIM=1 "$BIN/prog_fdheld" 300 || { show "$T/tcp300"; fail "over kernel TCP, prog_fdheld 300 failed"; }
t3=$(files "$T/tcp300" client)
refused() {
    run "$T/refuse.$1" RUDP_LOG=info "$BIN/prog_refuse" "$1" "$BIN/prog_fdheld" 300 ||
        { show "$T/refuse.$1"; fail "with $1 refused, prog_fdheld 300 failed"; }
    grep -q "^skip: " "$T/refuse.$1" && skip "$(grep -m1 '^skip: ' "$T/refuse.$1" | cut -c7-)"
    [ "$(carried "$T/refuse.$1" client 1)" = 300 ] ||
        { show "$T/refuse.$1"; fail "with $1 refused, not every connection is rudp"; }
    grep -q "$2" "$T/refuse.$1" || { show "$T/refuse.$1"; fail "with $1 refused, no line \"$2\""; }
}
if [ "$apart" = "apart: yes" ]; then
    refused unshare "engine 0 keeps its fds in a table of its own"
    [ "$(files "$T/refuse.unshare" client)" -ge $((t3 - 2)) ] ||
        { show "$T/refuse.unshare"; fail "with unshare refused, the client opens $(files "$T/refuse.unshare" client) files (TCP $t3)"; }
    refused unshare,close_range "engine 0 does not keep its fds apart"
else
    echo "skip: unshare refused, close_range's unshare instead: pidfd_getfd is refused here already"
fi
refused pidfd_getfd "engine 0 stays in the program's fd table: pidfd_getfd"
echo "ok: $([ "$apart" = "apart: yes" ] && echo "unshare refused: close_range's unshare instead; with close_range too, or ")pidfd_getfd refused: the engine stays in the program's table; all rudp"

# The control: the engine's fds in the program's table, as before.
rc=0
run "$T/shared" RUDP_FD_TABLE=shared "$BIN/prog_fdheld" 1000 || rc=$?
sc=$(files "$T/shared" client)
if [ "$rc" = 0 ] && [ "${sc:-0}" -ge 50 ]; then
    show "$T/shared"
    fail "with RUDP_FD_TABLE=shared the client still opened $sc files: the test does not tell"
fi
echo "ok: with the engine's fds in the program's table (RUDP_FD_TABLE=shared) it runs out (exit $rc, client files ${sc:-none})"
