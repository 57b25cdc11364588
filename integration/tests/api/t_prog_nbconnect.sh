#!/bin/sh
# tests/prog_nbconnect.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): non-blocking connect() with epoll to a live listener (EINPROGRESS, EALREADY,
# EPOLLOUT, SO_ERROR 0, EISCONN, data), to a dead port and to a bound but not
# listening port (ECONNREFUSED through SO_ERROR), and to a listener with a full
# accept queue (pending handshake: EALREADY, write() EAGAIN, EPOLLET), IPv4 and IPv6;
# a refused connect watched by a poll() that never sleeps (POLLOUT in the first
# events, as TCP's), and a program's own unix socket that keeps the kernel's
# POLLHUP without POLLOUT.
# The program checks everything itself and prints an "ok:" line per check;
# here we also require that its connections were not kernel TCP sockets
# under the shim (its "transport:" lines).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_nbconnect
rc=0
run_app "$BIN/prog_nbconnect" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_nbconnect exited $rc"
assert_transport "$T/out"
