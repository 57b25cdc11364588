#!/bin/sh
# A statically linked program (gcc -static: no preload reaches it) carries
# its TCP connections over rudp under rudp-supervise (issue 35): its
# connect() is reported by a seccomp user-notification filter and answered
# by the shim's code in the supervisor. Played in a network namespace of
# its own, where nftables counts every TCP segment and UDP datagram on the
# server's port (loopback, output hook: each packet once). The server is
# tests/prog_reach under the preloaded shim, the client prog_reach_static.
#   1. the static client alone: kernel TCP (the preloaded server takes
#      plain TCP clients too), so the counters see TCP segments: the probe
#      works and the preload does not reach the program;
#   2. under rudp-supervise, blocking connect: 1 MB echoed, 0 TCP
#      segments, UDP datagrams on the port;
#   3. the same with a non-blocking connect (EINPROGRESS, POLLOUT, SO_ERROR);
#   4. rudp-supervise --pass (every call continues): the program runs
#      unchanged, over kernel TCP, and its exit status comes back.
. "$(dirname "$0")/../../lib/reachlib.sh"

CLI=$BIN/prog_reach_static
[ -x "$CLI" ] || skip "no static libc here: $CLI not built"
readelf -l "$CLI" | grep -q INTERP && fail "$CLI is not statically linked"
need_supervise

reach_case plain 1000000 "^echoed 1000000$" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "plain: the static client without the supervisor counted no TCP segment (probe broken?)"

reach_case supervised 1000000 "^echoed 1000000$" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "supervised: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"

reach_case supervised_nb 1000000 "^echoed 1000000$" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000 nb
[ "$TCP" = 0 ] || fail "supervised_nb: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised_nb: no UDP datagram on the port"

reach_case pass 1000000 "^echoed 1000000$" "$SUP" --pass "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "pass: no TCP segment: --pass must leave connect() to the kernel"
_rc=0
"$SUP" "$CLI" bogus >/dev/null 2>&1 || _rc=$?
[ "$_rc" = 2 ] || fail "the program's exit status 2 came back as $_rc"
echo "pass: exit status comes back (2)"
echo "ok"
