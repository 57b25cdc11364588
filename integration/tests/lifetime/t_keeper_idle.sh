#!/bin/sh
# A killed idle server leaves nothing running (issue 30, finding 6).
# python3 -m http.server under the shim serves one request (it closes
# first: its port owes a TIME_WAIT), then gets SIGTERM while idle. Kernel
# TCP leaves no process behind: the kernel holds the TIME_WAIT. Under the
# shim:
#   - a server restarted on the port at once, as soon as the old process is
#     gone, listens and answers (the old listener did not outlive it);
#   - the old process and any keeper it forked are gone within 10 s, well
#     before the 60 s of TIME_WAIT and of the user timeout (a keeper with
#     nothing to deliver leaves at once: before, it held the port's
#     TIME_WAIT itself for 60 s, showing in ps as "python3 -m http.server");
#   - the port is in a kernel TIME_WAIT, as TCP's server would leave it (ss
#     lists it; t_prog_keeper checks the binds it allows);
#   - no keeper was forked (the listener stopped with the process, and the
#     TIME_WAIT went to the kernel: nothing left to carry).
# Keepers are found by their command line ("http.server PORT" in it, the
# program's or a keeper's title).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

[ "$SHIM_MODE" = shim ] || { echo "skip: keepers are the shim's"; exit 77; }

P=$(free_port)
mkdir "$T/www"
echo "hello from $P" >"$T/www/index.html"

# serve: an http.server on $P under the shim, logging to $T/$1.log
serve() {
    start_bg "$1" under_shim env RUDP_STATS=1 RUDP_LOG=info \
        "$PY" -m http.server "$P" --bind 127.0.0.1 --directory "$T/www"
}

# fetch: GET / over the shim; the client reads to EOF before it closes, so
# the server closes first, as HTTP/1.0 has it
fetch() {
    under_shim timeout 20 "$PY" -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
c.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
got = b""
while True:
    b = c.recv(65536)
    if not b:
        break
    got += b
c.close()
sys.stdout.write(got.decode(errors="replace").split("\r\n\r\n", 1)[-1])' "$P"
}

# copies [EXCEPT]: live processes whose command line names http.server on
# $P (the program's arguments, or a keeper's title), but EXCEPT
copies() { procs_matching "http\\.server[\\x00 ]$P[\\x00 ]" "${1:-}"; }

serve srv
SRV=$LAST_PID
wait_udp "$P"
[ "$(fetch)" = "hello from $P" ] || fail "the first server did not answer: $(tail -3 "$T/srv.log")"
echo "ok: served one request (the server closed first)"

kill -TERM "$SRV"
ended 1000 "$SRV" || fail "the server $SRV still runs 10 s after SIGTERM"

# At once: its listener must not outlive it.
serve srv2
SRV2=$LAST_PID
# its own line (a UDP socket on the port may still be the old keeper's)
wait_line "$T/srv2.log" "info: fd [0-9]*: listening over rudp on UDP port $P(,|$)" 10 ||
    fail "the restarted server does not listen: $(tail -3 "$T/srv2.log")"
[ "$(fetch)" = "hello from $P" ] || fail "the restarted server did not answer: $(tail -3 "$T/srv2.log")"
! grep -q 'Address already in use' "$T/srv2.log" || fail "restart: $(grep 'in use' "$T/srv2.log")"
echo "ok: a server restarted on port $P as soon as the old one was gone listens and answers"

end=$(($(date +%s) + 10))
while [ -n "$(copies "$SRV2")" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
left=$(copies "$SRV2")
if [ -n "$left" ]; then
    for p in $left; do
        echo "still running: $p $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
        PIDS="$PIDS $p"
    done
    fail "a copy of the killed server still runs 10 s after SIGTERM, with nothing to deliver (it must leave at once, well before the 60 s of TIME_WAIT)"
fi
echo "ok: no process of the killed server is left (no copy, no keeper)"

# Nothing was left to carry: the listener stopped with the process (its
# own copy closed at the exit, nobody else holding it: keeper.c), the
# TIME_WAIT went to the kernel, so no keeper was forked at all (a keeper's
# lines and counters are t_messages' to check).
! grep -q ' info: keeper [0-9]* took over ' "$T/srv.log" ||
    fail "a keeper took over an idle server's engine: $(grep 'took over' "$T/srv.log")"
echo "ok: no keeper was forked for an idle server (its listener stopped with it)"

ss -Htan state time-wait "sport = :$P" | grep -q . ||
    fail "no kernel TIME_WAIT on port $P after the server that closed first is gone"
echo "ok: port $P is in a kernel TIME_WAIT, as TCP's server leaves it"
