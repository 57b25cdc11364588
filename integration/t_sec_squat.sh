#!/bin/sh
# A local user squatting the names a service's listener will use (issue
# "harden", finding 2). On 8d193eb a listener's abstract name was built from
# public facts (its address, the pid, small counters), so uid nobody could
# bind it first and the service's listen() failed with EADDRINUSE.
# tests/prog_forge.c squat binds every name such facts give (both name
# layouts; the random part guessed as a small counter) for a server whose
# pid it knows before the server listens; the server's listen() must
# succeed anyway and a client must get through.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || fail "needs root (to run the attacker as nobody)"
command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
[ -x "$BIN/prog_forge" ] || fail "$BIN/prog_forge not built (make progs)"
chmod 755 "$T"
cp "$BIN/prog_forge" "$T/prog_forge" && chmod 755 "$T/prog_forge"
wait_for() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 400 ] || return 1; sleep 0.05; done; }

P=$(free_port)
mkfifo "$T/go"
# The server's pid is known before it listens: it waits for the FIFO, then
# execs (same pid) the server under the shim.
start_bg serve under_shim sh -c 'read x <"$1"; exec "$2" serve "$3" "rudp-squat-test-$$" 30' \
    sh "$T/go" "$BIN/prog_forge" "$P"
SPID=$LAST_PID
mkfifo "$T/hold"
start_bg squat setpriv --reuid=65534 --regid=65534 --clear-groups \
    sh -c 'exec "$1" squat "$2" "$3" <"$4"' sh "$T/prog_forge" "$SPID" "$P" "$T/hold"
QPID=$LAST_PID
exec 7>"$T/hold" # the squatter holds its names until this closes
wait_for "$T/squat.log" '^squat: [0-9]* names held' || fail "squatter did not start: $(cat "$T/squat.log")"
cat "$T/squat.log"
grep -q '^squat: 0 names' "$T/squat.log" && fail "the squatter could bind nothing: the test proves nothing"
echo go >"$T/go"
wait_for "$T/serve.log" '^serve: \(listening\|listen failed\)' || fail "server did not start: $(cat "$T/serve.log")"
cat "$T/serve.log"
grep -q '^serve: listening' "$T/serve.log" || fail "a squatter stopped the service's listen()"
wait_udp "$P"
under_shim timeout 30 "$BIN/prog_forge" client "$P" REAL || fail "the client failed"
under_shim timeout 30 "$BIN/prog_forge" client "$P" QUIT || fail "the QUIT client failed"
exec 7>&-
wait_for "$T/serve.log" '^line(tcp): REAL' || fail "the client's line never arrived"
echo "ok: listen() succeeded and served a client while every predictable name was squatted"
