#!/bin/sh
# tests/prog_names.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): getsockname/getpeername on both ends for IPv4 and IPv6, ports as bind
# and connect chose them, ENOTCONN before connect and on a listener, truncated
# address buffers, a v4 client on a dual-stack listener (::ffff:127.0.0.1),
# IPV6_V6ONLY honoured (ECONNREFUSED, EADDRINUSE), a v6 client to a v4-mapped
# address, SO_TYPE/SO_DOMAIN/SO_PROTOCOL/SO_ACCEPTCONN.
# The program checks everything itself and prints an "ok:" line per check;
# here we also require that its connections were not kernel TCP sockets
# under the shim (its "transport:" lines).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_names
rc=0
run_app "$BIN/prog_names" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_names exited $rc"
assert_transport "$T/out"
