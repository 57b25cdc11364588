#!/bin/sh
# The supervisor on a kernel before 6.9 (issue 47, "done when" 1): no
# pidfd for a thread that does not lead its group (PIDFD_THREAD is 6.9's),
# as on Debian 12's 6.1, Ubuntu 22.04's 5.15 and RHEL 9's 5.14. Played here
# under tests/prog_oldkernel's seccomp filter, which answers
# pidfd_open(PIDFD_THREAD) with EINVAL as those kernels do; a plain pidfd
# for a thread that leads no group this kernel refuses with ENOENT where
# they say EINVAL, which the supervisor must not rely on. It reaches a
# thread's fds through its group's pidfd (Tgid, the same fd table: kcmp),
# as tools/supervise/program.c's pidfd_for says.
#   1. the filter does what it says (prog_oldkernel --check), and under it
#      `rudp-supervise --probe` says the supervisor can work;
#   2. a static C client under the supervisor, then a static server with a
#      supervised static client (both ends): 1 MB echoed each, 0 TCP
#      segments, UDP datagrams on the port;
#   3. Go's net/http, server and client both under rudp-run (Go dials and
#      accepts on threads that do not lead the group): four requests on one
#      kept-alive connection, the answers kernel TCP gives, 0 TCP segments.
. "$(dirname "$0")/../../lib/reachlib.sh"

need_bin prog_oldkernel
need_static CLI prog_reach
need_supervise
OLD=$BIN/prog_oldkernel

if ! "$OLD" --check >"$T/check" 2>&1; then
    grep -q '^Seccomp:' /proc/self/status || skip "no seccomp filters on this kernel"
    show "$T/check"
    fail "prog_oldkernel --check: the filter does not do what it says"
fi
cat "$T/check"
_e=$(timeout 10 "$OLD" "$SUP" --probe 2>&1) ||
    fail "without PIDFD_THREAD the supervisor says it cannot work: $_e"
echo "probe: $_e"

reach_case old_static 1000000 "^echoed 1000000$" "$OLD" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "old_static: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "old_static: no UDP datagram on the port"

SERVE_WITH="$OLD $SUP $CLI"
reach_case old_both_ends 1000000 "^echoed 1000000$" "$OLD" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000 nb
[ "$TCP" = 0 ] || fail "old_both_ends: $TCP TCP segments: the connection was not rudp"
SERVE_WITH=

go_program gohttp "$T/gohttp"
cp "$ROOT/integration/tests/reach/gohttp/keepalive.want" "$T/keepalive.want" # as kernel TCP
port_quiet
# shellcheck disable=SC2086 # $RUNSUP: a command and its options
start_bg go.server "$OLD" $RUNSUP "$T/gohttp" server "$PORT"
_srv=$LAST_PID
wait_udp "$PORT"
_t0=$(tcp_now) _u0=$(udp_now)
# shellcheck disable=SC2086
timeout 60 "$OLD" $RUNSUP "$T/gohttp" client "$PORT" >"$T/go.client" 2>&1 ||
    { show "$T/go.client" "$T/go.server.log"; fail "go: the client failed"; }
wait_exit "$_srv" 30 || { show "$T/go.server.log"; fail "go: the server did not end by its Shutdown"; }
TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
diff "$T/keepalive.want" "$T/go.client" >"$T/diff" ||
    { cat "$T/diff" >&2; show "$T/go.server.log"; fail "go: not what kernel TCP says"; }
[ "$TCP" = 0 ] || { show "$T/go.server.log"; fail "go: $TCP TCP segments: not rudp"; }
[ "$UDP" -gt 0 ] || fail "go: no UDP datagram on the port"
echo "go: 4 requests on 1 connection; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
echo "ok"
