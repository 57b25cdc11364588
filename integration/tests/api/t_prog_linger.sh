#!/bin/sh
# tests/prog_linger.c, both ends under the shim (over kernel TCP with
# RUDP_NO_SHIM=1): SO_LINGER {1,0} close while the peer is blocked in read() (or
# poll()): the read ends within 5 s with ECONNRESET, or with EOF and then
# getsockopt(SO_ERROR) == ECONNRESET (the AF_UNIX bridge's documented limit);
# never a plain EOF. Both directions, IPv4 and IPv6, with data before the reset.
# The program checks everything itself and prints an "ok:" line per check;
# here we also require that its connections were not kernel TCP sockets
# under the shim (its "transport:" lines).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_linger
rc=0
run_app "$BIN/prog_linger" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[ "$rc" = 0 ] || fail "prog_linger exited $rc"
assert_transport "$T/out"
