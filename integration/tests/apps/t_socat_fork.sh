#!/bin/sh
# socat TCP-LISTEN,fork PIPE (an echo server that forks a child per
# connection) <-> socat TCP clients, both ends under the shim (kernel TCP with
# RUDP_NO_SHIM=1): 4 clients at once, each echoing 10 MiB of its own random
# bytes, sha256 equal; a 5th client after those children have exited (the
# listener lives on in the parent); while an idle client holds a connection,
# ss shows UDP and no TCP on the port; the server ends on SIGTERM.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

SIZE=10485760
N=4
P=$(free_port)
# -b 4096: PIPE is one pipe that socat both writes and reads; a blocking
# write larger than the one page select() promises would wait for socat
# itself (its default block is 8192).  -t 30: after one side's EOF, wait up
# to 30 s for the other direction (socat's default, 0.5 s, is too short for
# the echo's tail).
bg_app socat-srv socat -d -b 4096 -t 30 "TCP-LISTEN:$P,bind=127.0.0.1,fork,reuseaddr" PIPE
SRV=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

echo_one() { # echo_one IDX: one client, its payload in $T/in.IDX, echo in $T/out.IDX
    head -c "$SIZE" /dev/urandom >"$T/in.$1"
    bg_app_io "cli.$1" "$T/in.$1" "$T/out.$1" socat -t 60 -T 60 - "TCP:127.0.0.1:$P"
    eval "CLI_$1=\$LAST_PID"
}
check_one() { # check_one IDX
    eval "c_pid=\$CLI_$1"
    rc=0
    wait_exit "$c_pid" 90 || rc=$?
    [ "$rc" = 0 ] || { show "$T/cli.$1.log" "$T/socat-srv.log"; fail "client $1 exited $rc"; }
    [ "$(sha "$T/out.$1")" = "$(sha "$T/in.$1")" ] ||
        { show "$T/socat-srv.log"; fail "client $1: sha256 differs ($(stat -c %s "$T/out.$1") of $SIZE bytes echoed)"; }
}

t0=$(ms_now)
i=1
while [ "$i" -le "$N" ]; do echo_one "$i"; i=$((i + 1)); done
i=1
while [ "$i" -le "$N" ]; do check_one "$i"; i=$((i + 1)); done
echo "ok: $N concurrent clients, 10 MiB each echoed by forked children, sha256 equal, $(( $(ms_now) - t0 )) ms"

t0=$(ms_now)
echo_one 5
check_one 5
echo "ok: a 5th client after the others' children exited: sha256 equal, $(( $(ms_now) - t0 )) ms"

# A connection held open (the client's stdin is a fifo we keep open): the
# transport seen by ss; then a line echoed and EOF.
mkfifo "$T/hold"
bg_app_io hold "$T/hold" "$T/hold.out" socat -t 30 -T 30 - "TCP:127.0.0.1:$P"
HOLD=$LAST_PID
exec 3>"$T/hold"
printf 'held\n' >&3
wait_line "$T/hold.out" '^held$' 20 || { show "$T/hold.log" "$T/socat-srv.log"; fail "the held connection echoed nothing"; }
assert_on_port "$P"
exec 3>&-
rc=0
wait_exit "$HOLD" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/hold.log"; fail "the held client exited $rc"; }
echo "ok: held connection echoed a line and ended at EOF"

kill -0 "$SRV" 2>/dev/null || { show "$T/socat-srv.log"; fail "the listening socat exited"; }
rc=0
stop_app "$SRV" 10 || rc=$?
# socat exits 128+15 on SIGTERM.
[ "$rc" = 143 ] || [ "$rc" = 0 ] || { show "$T/socat-srv.log"; fail "the listening socat exited $rc on SIGTERM"; }
echo "ok: the listening socat ends on SIGTERM"
