#!/bin/sh
# tests/prog_accept4.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): SOCK_NONBLOCK/SOCK_CLOEXEC from socket() and accept4()
# (F_GETFL/F_GETFD), none from accept4(0)/accept() or inherited from the
# listener, EAGAIN on an idle non-blocking listener, EINVAL on a bad flag, the
# peer address accept4() reports, IPv4 and IPv6.
# The program checks everything itself and prints an "ok:" line per check;
# here we also require that its connections were not kernel TCP sockets
# under the shim (its "transport:" lines).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_accept4
rc=0
run_app "$BIN/prog_accept4" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_accept4 exited $rc"
assert_transport "$T/out"
