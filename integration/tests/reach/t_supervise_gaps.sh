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
#                  the supervisor: its remote front end);
#   sendnb         after a non-blocking connect and POLLOUT, one send() of
#                  5000 bytes takes them all (the send buffer given back at
#                  the handshake, with no option call to prompt it; on
#                  loopback the handshake mostly ends before the
#                  supervisor closes its copy, which the engine then
#                  reaches itself: a check, not a proof of the hook);
#   orphan         the program's child connects after the program exited:
#                  the supervisor stays and serves it (1 MB echoed);
#   churn          33,000 connections made and closed while a listener and
#                  a first connection live: both still answer as TCP's
#                  (the records of 65,536 bridges once overwrote theirs,
#                  review 2);
#   preopt         options set before connect (TCP_CONGESTION reno among
#                  them, once lost: review 13) read back after;
#   dropcaps       a program that dropped its capabilities gets EPERM for
#                  SO_MARK and EACCES for a bind to port 80 (the
#                  supervisor's own privileges once answered, review 3);
#   filter         SO_ATTACH_FILTER with the filter in the program's memory
#                  and SO_ATTACH_BPF of a non-BPF fd answer as TCP's
#                  (once EFAULT, the pointer read in the supervisor: 12);
#   emfile         accept() with no fd free says EMFILE and the connection
#                  waits for the next accept (once lost, review 10);
#   lowlimit       sockets at fds past a lowered RLIMIT_NOFILE listen and
#                  connect as over TCP (kernel TCP then: no bridge can go
#                  there), where the supervisor once hung (review 4);
#   netns          a program in a network namespace of its own (unshare -n,
#                  lo down) reaches nothing, as over TCP: the supervisor's
#                  engine, in the supervisor's namespace, once reached the
#                  server outside (review 1);
#   sigs           signals sent to the supervisor by pid (SIGPIPE, SIGXCPU,
#                  an RT signal, SIGALRM) neither end it nor orphan the
#                  program: ALRM and the RT one reach the program, which
#                  then connects and echoes (review 7). Supervised only:
#                  plain, the program's parent is not the supervisor.
. "$(dirname "$0")/../../lib/reachlib.sh"

need_static PROG prog_reachgap
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
# 33,000 supervised connects take 26 s here, 71 s with both cores busy
# (two `yes` loops): the bound is for a hang, not a speed
GAP_LIMIT=240 gap churn 0 churn "$PORT" 33000
gap emfile 0 emfile "$PORT"
gap preopt 0 preopt "$PORT"
gap dropcaps 0 dropcaps "$PORT"
gap filter 0 filter "$PORT"

# The program exits at once; its child, once it has, runs the static echo
# client: the supervisor serves it still, and ends after it with the
# program's status (0).
reach_case orphan 1000000 "^echoed 1000000$" "$SUP" "$PROG" orphan "$BIN/prog_reach_static" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "orphan: $TCP TCP segments: the connection was not rudp"
# Its own listener and client: the connect past the limit is kernel TCP by
# design, so only the answers are compared, not the segments.
for _how in plain supervised; do
    port_quiet
    _sup=
    [ "$_how" = supervised ] && _sup=$SUP
    timeout 60 $_sup "$PROG" lowlimit "$PORT" >"$T/lowlimit.$_how" 2>"$T/lowlimit.$_how.err" ||
        { show "$T/lowlimit.$_how" "$T/lowlimit.$_how.err"; fail "lowlimit ($_how): the program failed"; }
done
cmp -s "$T/lowlimit.plain" "$T/lowlimit.supervised" ||
    { echo "plain:"; cat "$T/lowlimit.plain"; echo "supervised:"; cat "$T/lowlimit.supervised"
      fail "lowlimit: the supervised program tells a difference"; }
echo "lowlimit: $(tail -1 "$T/lowlimit.supervised") (plain and supervised alike)"

# A server outside, the client in an empty namespace: ENETUNREACH both
# ways (the server is never reached; it serves the check after).
if unshare -n true 2>/dev/null; then
    port_quiet # lowlimit's supervisor may still hold it (CI: nothing bound in 10 s, once)
    start_bg netns.server under_shim "$BIN/prog_reach" server "$PORT" 1
    _srv=$LAST_PID
    wait_udp "$PORT"
    for _how in plain supervised; do
        _sup=
        [ "$_how" = supervised ] && _sup=$SUP
        if timeout 60 $_sup unshare -n "$BIN/prog_reach_static" client 127.0.0.1 "$PORT" 1000 \
            >"$T/netns.$_how" 2>&1; then
            show "$T/netns.$_how"; fail "netns ($_how): the client reached a server outside its namespace"
        fi
        grep -q "connect: Network is unreachable" "$T/netns.$_how" ||
            { show "$T/netns.$_how"; fail "netns ($_how): not ENETUNREACH"; }
    done
    timeout 60 "$BIN/prog_reach_static" client 127.0.0.1 "$PORT" 1000 >/dev/null 2>&1 ||
        fail "netns: the server outside does not serve"
    wait_exit "$_srv" 30 || fail "netns: server failed"
    echo "netns: ENETUNREACH in an empty namespace, plain and supervised alike"
else
    echo "netns: skip: unshare -n not permitted here"
fi

# The program ignores SIGPIPE, SIGXCPU and RT signal 35, sends them and
# SIGALRM to its parent, the supervisor, and waits until its ALRM trap
# ran (forwarded; had the supervisor died of PIPE or XCPU, delivered
# before or with it, the program would wait in vain or be killed by
# PDEATHSIG), then echoes over rudp.
# shellcheck disable=SC2016 # the program's own shell expands them
reach_case sigs 100000 "^echoed 100000$" "$SUP" sh -c '
    trap "" PIPE XCPU 35; trap "echo alrm >>\"$1\"" ALRM
    kill -s PIPE $PPID; kill -s XCPU $PPID; kill -35 $PPID; kill -s ALRM $PPID
    while ! [ -s "$1" ]; do sleep 0.05; done
    exec "$2" client 127.0.0.1 "$3" 100000' sh "$T/sigs.alrm" "$BIN/prog_reach_static" "$PORT"
[ "$TCP" = 0 ] || fail "sigs: $TCP TCP segments: the connection was not rudp"
echo "ok"
