#!/bin/sh
# tests/prog_sockopts.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): socket options carried across connect(), listen() and
# accept() (SO_RCVTIMEO working, SO_LINGER, keepalive, TCP_NODELAY), connect()
# to 0.0.0.0 and :: reaching loopback and to multicast/broadcast failing with
# ENETUNREACH, getpeername() after a refusal, setsockopt()/getsockopt() edge
# values, SIOCOUTQ on a listener and on a connecting socket.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sockopts
rc=0
run_app "$BIN/prog_sockopts" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_sockopts exited $rc"
assert_transport "$T/out"
