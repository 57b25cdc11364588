#!/bin/sh
# A local user squatting the names a service's listener uses (issue
# "harden", finding 2), as uid nobody, with tests/prog_forge.c:
#   1. before the service listens: on 8d193eb a listener's abstract name was
#      built from public facts (its address, the pid, small counters), so a
#      squatter could bind it first and the service's listen() failed with
#      EADDRINUSE. prog_forge squat binds every name such facts give (both
#      name layouts; the random part guessed as a small counter) for a
#      server whose pid it knows before it listens: listen() must succeed
#      and a client get through.
#   2. the moment the listener closes: a server listens, a forked child
#      holds the listener while the parent closes its copy, and a client
#      (integration/tools/rudpraw.py) stops after the SYNACK. The child dies;
#      the squatter binds the freed name at once; the client completes its
#      handshake with "SECRET". The engine, which learns of the listener's
#      end only by its periodic check, hands the connection to the name: on
#      8d193eb to the squatter, SECRET included. Now the engine checks who
#      listens there (SO_PEERCRED) and hands nothing over.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
attacker_prog prog_forge
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

# --- 2. re-binding the name as the listener closes --------------------------
mkdir -m 777 "$T/pub2"
cat >"$T/holder.py" <<'PY'
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
pid = os.fork()
if pid == 0:
    time.sleep(60)  # the child holds the listener, accepts nothing
    os._exit(0)
s.close()           # the parent keeps its engine, not the listener
print("child", pid, flush=True)
time.sleep(60)
PY
P2=$(free_port)
[ "$P2" != "$P" ] || P2=$((P + 1))
start_bg holder under_shim env RUDP_LOG=info python3 "$T/holder.py" "$P2"
wait_udp "$P2"
wait_for "$T/holder.log" '^child [0-9]' || fail "holder did not fork: $(cat "$T/holder.log")"
CHILD=$(sed -n 's/^child \([0-9]*\)/\1/p' "$T/holder.log")
start_bg raw python3 "$ROOT/integration/tools/rudpraw.py" send 127.0.0.1 "$P2" --data SECRET \
    --after "$T/pub2/go" --timeout 3
wait_for "$T/raw.log" '^held after SYNACK' || fail "the client did not get a SYNACK: $(cat "$T/raw.log")"
start_bg rebind setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$T/prog_forge" rebind "$P2" "$T/pub2/go" 8
RPID=$LAST_PID
wait_for "$T/rebind.log" '^rebind: waiting' || fail "squatter did not start: $(cat "$T/rebind.log")"
kill -9 "$CHILD"
wait_for "$T/rebind.log" '^rebind: accepted' || { cat "$T/rebind.log"; fail "the squatter never finished"; }
cat "$T/rebind.log"
tail -1 "$T/raw.log"
grep -q '^rebind: bound' "$T/rebind.log" || fail "the squatter never got the name: the test proves nothing"
! grep -q 'SECRET' "$T/rebind.log" || fail "a connection meant for the service reached the squatter with its data"
! grep -q '^rebind: got [0-9]' "$T/rebind.log" || fail "the squatter received bytes"
echo "ok: a squatter holding a closed listener's name received nothing"
