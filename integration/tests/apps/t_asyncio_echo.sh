#!/bin/sh
# python3 asyncio: a stream echo server (asyncio.start_server) and 200
# concurrent clients (asyncio.open_connection, all opened at once) in one
# process, each echoing 100 KiB of its own random bytes; both processes
# under the shim (kernel TCP with RUDP_NO_SHIM=1).  Every client finishes,
# what came back has the sha256 of what was sent (client by client, in
# order), and the server exits 0 on SIGTERM.  Helper:
# integration/compat/asyncio_echo.py.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

HELPER=$ROOT/integration/compat/asyncio_echo.py
N=200
SIZE=102400

P=$(free_port)
bg_app echo-srv "$PY" "$HELPER" server 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

rc=0
run_app_t 90 "$PY" "$HELPER" client 127.0.0.1 "$P" "$N" "$SIZE" "$T/sent" "$T/received" \
    >"$T/client.out" 2>"$T/client.err" || rc=$?
cat "$T/client.out"
[ "$rc" = 0 ] || { show "$T/client.err" "$T/echo-srv.log"; fail "asyncio clients exited $rc"; }
[ "$(stat -c %s "$T/sent")" = $((N * SIZE)) ] || fail "the clients sent $(stat -c %s "$T/sent") bytes, want $((N * SIZE))"
[ "$(sha "$T/received")" = "$(sha "$T/sent")" ] ||
    { show "$T/client.err"; fail "sha256 of the echoes differs ($(stat -c %s "$T/received") of $((N * SIZE)) bytes)"; }
echo "ok: $N concurrent asyncio clients, 100 KiB each echoed, sha256 equal"

kill -0 "$SRV" 2>/dev/null || { show "$T/echo-srv.log"; fail "the asyncio server exited"; }
rc=0
stop_app "$SRV" 20 || rc=$?
[ "$rc" = 0 ] || { show "$T/echo-srv.log"; fail "the asyncio server exited $rc on SIGTERM"; }
! grep -q 'connection error' "$T/echo-srv.log" || { show "$T/echo-srv.log"; fail "the server saw connection errors"; }
echo "ok: the asyncio server ends on SIGTERM"
