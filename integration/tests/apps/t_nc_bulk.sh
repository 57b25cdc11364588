#!/bin/sh
# OpenBSD nc -l <-> nc, both under the shim (kernel TCP with RUDP_NO_SHIM=1):
# 50 MiB of random bytes each direction, sha256 equal, both sides exit 0 by
# themselves.  Client to server: `nc -l` (stdin /dev/null) receives, `nc -N`
# sends and half-closes at EOF, so the listener sees EOF and exits.  Server to
# client: `nc -N -l` sends and half-closes, `nc` (stdin /dev/null) receives to
# EOF and exits, then the listener sees its EOF and exits.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

SIZE=52428800
head -c "$SIZE" /dev/urandom >"$T/up"
head -c "$SIZE" /dev/urandom >"$T/down"

# Client -> server.
P=$(free_port)
bg_app_io ncl-up /dev/null "$T/got-up" nc -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P"
t0=$(ms_now)
rc=0
run_app_t 120 nc -N 127.0.0.1 "$P" <"$T/up" >"$T/client-up.out" 2>"$T/client-up.log" || rc=$?
[ "$rc" = 0 ] || { show "$T/client-up.log" "$T/ncl-up.log"; fail "up: sending nc exited $rc"; }
rc=0
wait_exit "$SRV" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/ncl-up.log"; fail "up: listening nc exited $rc"; }
ms=$(( $(ms_now) - t0 ))
[ "$(sha "$T/got-up")" = "$(sha "$T/up")" ] ||
    fail "up: sha256 differs ($(stat -c %s "$T/got-up") of $SIZE bytes)"
[ ! -s "$T/client-up.out" ] || fail "up: the sender received data"
echo "ok: client -> server: 50 MiB, sha256 equal, $ms ms"

# Server -> client.
P=$(free_port)
bg_app_io ncl-down "$T/down" "$T/srv-down.out" nc -N -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P"
t0=$(ms_now)
rc=0
run_app_t 120 nc 127.0.0.1 "$P" </dev/null >"$T/got-down" 2>"$T/client-down.log" || rc=$?
[ "$rc" = 0 ] || { show "$T/client-down.log" "$T/ncl-down.log"; fail "down: receiving nc exited $rc"; }
rc=0
wait_exit "$SRV" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/ncl-down.log"; fail "down: listening nc exited $rc"; }
ms=$(( $(ms_now) - t0 ))
[ "$(sha "$T/got-down")" = "$(sha "$T/down")" ] ||
    fail "down: sha256 differs ($(stat -c %s "$T/got-down") of $SIZE bytes)"
[ ! -s "$T/srv-down.out" ] || fail "down: the sender received data"
echo "ok: server -> client: 50 MiB, sha256 equal, $ms ms"
