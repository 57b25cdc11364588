#!/bin/sh
# Issue 34, item 4: one connection has one ID at both ends. OpenBSD nc -l
# and nc, both under the shim with RUDP_LOG=info and their own
# RUDP_QLOG_DIR, one connection between them, held open:
#   - the client's "connected" line and the server's "accepted" line name
#     it with the same "id ID", and both print the same server's wire ID
#     after it ("the server's connection ID is ...");
#   - rudp-stat of each process shows its ESTAB connection with that ID;
#   - each side's qlog trace is named <pid>-ID-<client|server>.sqlog;
#   - each side's close line names it with that ID too.
# On the old code each end printed its own routing ID: the two differed.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "connection IDs are the shim's"
need_tool rudp-stat
command -v nc >/dev/null || fail "nc (netcat-openbsd) missing: integration/deps.sh test"
STAT=$TOOLS/rudp-stat

P=$(free_port)
mkdir "$T/qs" "$T/qc"
mkfifo "$T/in"
bg_app_io srv /dev/null "$T/srv.out" env RUDP_LOG=info RUDP_QLOG_DIR="$T/qs" nc -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P"
bg_app_io cli "$T/in" "$T/cli.out" env RUDP_LOG=info RUDP_QLOG_DIR="$T/qc" nc -N 127.0.0.1 "$P"
CLI=$LAST_PID
# the client's input, open until the end (opened after the client started,
# which waits for it, so that no program inherits this writer)
exec 3>"$T/in"
wait_line "$T/cli.log" ': connected, handshake ' 20 || { show "$T/cli.log"; fail "the client never connected"; }
wait_line "$T/srv.log" ': accepted, handshake ' 20 || { show "$T/srv.log"; fail "the server never accepted"; }

HEX='[0-9a-f]\{16\}'
cid=$(sed -n "s/.* > 127\.0\.0\.1:$P id \($HEX\): connected, .*/\1/p" "$T/cli.log")
sid=$(sed -n "s/.* id \($HEX\): accepted, .*/\1/p" "$T/srv.log")
[ -n "$cid" ] && [ -n "$sid" ] || { show "$T/cli.log" "$T/srv.log"; fail "no 'id ID' in the open lines"; }
[ "$cid" = "$sid" ] || { show "$T/cli.log" "$T/srv.log"; fail "the client names the connection $cid, the server $sid"; }
echo "ok: both ends' open lines name the connection id $cid"
cw=$(sed -n "s/.*: connected, .*the server's connection ID is \($HEX\).*/\1/p" "$T/cli.log")
sw=$(sed -n "s/.*: accepted, .*the server's connection ID is \($HEX\).*/\1/p" "$T/srv.log")
[ -n "$cw" ] && [ "$cw" = "$sw" ] || { show "$T/cli.log" "$T/srv.log"; fail "the server's wire ID: client '$cw', server '$sw'"; }
echo "ok: both ends print the server's wire ID $sw"

for side in cli:$CLI srv:$SRV; do
    pid=${side#*:} side=${side%:*}
    "$STAT" "$pid" >"$T/$side.stat" 2>&1 || { show "$T/$side.stat"; fail "rudp-stat $pid ($side) failed"; }
    grep -q "^ESTAB .* id $cid age " "$T/$side.stat" || { show "$T/$side.stat"; fail "rudp-stat of the $side does not show id $cid"; }
done
echo "ok: rudp-stat of both processes shows id $cid"

[ -f "$T/qc/$CLI-$cid-client.sqlog" ] || { ls -l "$T/qc" >&2; fail "no client trace named $CLI-$cid-client.sqlog"; }
[ -f "$T/qs/$SRV-$cid-server.sqlog" ] || { ls -l "$T/qs" >&2; fail "no server trace named $SRV-$cid-server.sqlog"; }
echo "ok: both qlog traces carry $cid: $CLI-$cid-client.sqlog, $SRV-$cid-server.sqlog"

echo hello >&3
exec 3>&-
rc=0
wait_exit "$CLI" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/cli.log"; fail "the client nc exited $rc"; }
rc=0
wait_exit "$SRV" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/srv.log"; fail "the server nc exited $rc"; }
[ "$(cat "$T/srv.out")" = hello ] || fail "the server got '$(cat "$T/srv.out")', not hello"
wait_line "$T/cli.log" ": closed \(" 20 || { show "$T/cli.log"; fail "no close line from the client"; }
# the server's too: once nc exits its keeper may be the one to say it
wait_line "$T/srv.log" ": closed \(" 20 || { show "$T/srv.log"; fail "no close line from the server"; }
grep -q " id $cid: closed (" "$T/cli.log" && grep -q " id $cid: closed (" "$T/srv.log" ||
    { show "$T/cli.log" "$T/srv.log"; fail "the close lines do not both name id $cid"; }
echo "ok: both close lines name id $cid"
