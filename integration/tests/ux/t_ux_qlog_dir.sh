#!/bin/sh
# Issue 34 item 8: a relative RUDP_QLOG_DIR (RUDP_QLOG_DIR=q) is resolved
# against the working directory of the program that reads it and made if
# missing (parents too, mode 0700), as tracing tools do with theirs; the
# programs it starts inherit it resolved, so a client started from another
# directory (sh -c 'cd / && exec nc ...') writes into the same q/. One
# loopback connection: both ends' traces land in $T/q/sub.
. "$(dirname "$0")/../../lib/lib.sh"
LDP=$(shim_preload)

port=$(free_port)
cd "$T"
RUDP_QLOG_DIR=q/sub start_bg srv env LD_PRELOAD="$LDP" timeout 30 nc -l 127.0.0.1 "$port"
srv=$LAST_PID
wait_udp "$port"
[ -d "$T/q/sub" ] || fail "RUDP_QLOG_DIR=q/sub: no directory $T/q/sub made"
[ "$(stat -c %a "$T/q/sub")" = 700 ] || fail "q/sub has mode $(stat -c %a "$T/q/sub"), want 700"
echo "ok: RUDP_QLOG_DIR=q/sub made $T/q/sub, mode 700"

echo hello | RUDP_QLOG_DIR=q/sub env LD_PRELOAD="$LDP" timeout 30 \
    sh -c "echo \"\$RUDP_QLOG_DIR\" >'$T/seen'; cd / && exec nc -N 127.0.0.1 $port" 2>"$T/cli.err" ||
    fail "the client failed: $(cat "$T/cli.err")"
ended 3000 "$srv" || fail "the server did not end"
[ "$(cat "$T/seen")" = "$T/q/sub" ] || fail "a child sees RUDP_QLOG_DIR=$(cat "$T/seen"), want $T/q/sub"
grep -qx hello "$T/srv.log" || fail "the server did not get the line: $(cat "$T/srv.log")"
# the traces are complete once the processes (and any keeper) are gone
i=0
while [ "$(ls "$T/q/sub" | grep -c 'client\.sqlog$')" -lt 1 ] ||
      [ "$(ls "$T/q/sub" | grep -c 'server\.sqlog$')" -lt 1 ]; do
    i=$((i + 1)); [ "$i" -lt 300 ] || fail "traces in q/sub: $(ls "$T/q/sub")"; sleep 0.05
done
[ ! -e /q ] || fail "a trace directory /q was made by the client started in /"
echo "ok: the server's and the client's (started in /) traces are both in $T/q/sub: $(ls "$T/q/sub" | tr '\n' ' ')"
