#!/bin/sh
# What a supervised program could once tell apart from TCP (issue 35,
# docs/reach.md "What the program can tell apart"): each case of
# tests/prog_reachgap runs as a static program over kernel TCP first
# ("plain": the preloaded echo server takes plain TCP clients too), then
# under rudp-supervise, where it must print the same line and make no TCP
# segment on the port (nftables counts, reachlib.sh):
#   opts, opts_nb  options set after connect read back (TCP_NODELAY,
#                  keep-alive, TCP_USER_TIMEOUT, TCP_CORK) and the send
#                  buffer after a (non-blocking) connect is TCP's default;
#   epoll          a socket registered with epoll before a non-blocking
#                  connect (nginx's upstream) hears EPOLLOUT, MOD/DEL work;
#   acceptsig      an accept() interrupted by a signal (SA_RESTART) takes
#                  the connection when it is restarted;
#   fork, threads  4 children, 4 threads each connect and echo;
#   reset, reset_accepted
#                  a peer's reset (SO_LINGER {1, 0}) reads as ECONNRESET,
#                  not EOF, at the connecting end and the accepted one (the
#                  engine reaches the program's end of the bridge through
#                  the supervisor: rudp_supervise_reach);
#   sendnb         after a non-blocking connect and POLLOUT, one send() of
#                  5000 bytes takes them all (the send buffer given back at
#                  the handshake, with no option call to prompt it; on
#                  loopback the handshake mostly ends before the
#                  supervisor closes its copy, which the engine then
#                  reaches itself: a check, not a proof of the hook);
#   orphan         the program's child connects after the program exited:
#                  the supervisor stays and serves it (1 MB echoed).
. "$(dirname "$0")/../../lib/reachlib.sh"

PROG=$BIN/prog_reachgap_static
[ -x "$PROG" ] || skip "no static libc here: $PROG not built"
readelf -l "$PROG" | grep -q INTERP && fail "$PROG is not statically linked"
need_bin prog_reach
need_supervise

gap opts 1 opts 127.0.0.1 "$PORT"
gap opts_nb 1 opts 127.0.0.1 "$PORT" nb
gap epoll 1 epoll 127.0.0.1 "$PORT"
gap acceptsig 0 acceptsig "$PORT"
gap fork 4 fork 127.0.0.1 "$PORT" 4
gap threads 4 threads 127.0.0.1 "$PORT" 4
gap reset 0 reset "$PORT"
gap reset_accepted 0 reset "$PORT" accepted
gap sendnb 1 sendnb 127.0.0.1 "$PORT"

# The program exits at once; its child, once it has, runs the static echo
# client: the supervisor serves it still, and ends after it with the
# program's status (0).
reach_case orphan 1000000 "^echoed 1000000$" "$SUP" "$PROG" orphan "$BIN/prog_reach_static" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "orphan: $TCP TCP segments: the connection was not rudp"
echo "ok"
