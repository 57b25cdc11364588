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
#   3. the same with a non-blocking connect (EINPROGRESS, POLLOUT, SO_ERROR),
#      SO_DOMAIN saying AF_INET; a refused one says ECONNREFUSED (SO_ERROR);
#   4. rudp-supervise --pass (every call continues): the program runs
#      unchanged, over kernel TCP, and its exit status comes back;
#   5. the static program as the server (bind, listen, accept under the
#      supervisor), with a preloaded client, then a supervised one: 0 TCP;
#   6. a program that writes and exits at once: everything arrives;
#   7. SIGTERM sent to the supervisor goes on to the program.
. "$(dirname "$0")/../../lib/reachlib.sh"

need_static CLI prog_reach
need_supervise

reach_case plain 1000000 "^echoed 1000000$" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "plain: the static client without the supervisor counted no TCP segment (probe broken?)"

reach_case supervised 1000000 "^echoed 1000000$" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "supervised: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"

reach_case supervised_nb 1000000 "^echoed 1000000$" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000 nb
[ "$TCP" = 0 ] || fail "supervised_nb: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised_nb: no UDP datagram on the port"
# getsockopt on the bridge is the shim's: SO_DOMAIN says AF_INET, as TCP,
# and TCP_NODELAY set after connect reads back 1 (t_supervise_gaps has more).
grep -q "^connected: nodelay 1, domain AF_INET$" "$T/supervised_nb.client" ||
    { show "$T/supervised_nb.client"; fail "supervised_nb: not TCP's nodelay 1, AF_INET"; }
echo "supervised_nb: $(grep '^connected' "$T/supervised_nb.client")"

# Nothing listens now: a non-blocking connect's SO_ERROR is TCP's
# ECONNREFUSED (the shim's answer), as without the supervisor.
for _how in plain supervised; do
    _cmd=""
    [ "$_how" = supervised ] && _cmd=$SUP
    timeout 30 $_cmd "$CLI" client 127.0.0.1 "$PORT" 10 nb >"$T/refused.$_how" 2>&1 &&
        fail "refused ($_how): the connect succeeded"
    grep -q "SO_ERROR): Connection refused" "$T/refused.$_how" ||
        { show "$T/refused.$_how"; fail "refused ($_how): not ECONNREFUSED"; }
    echo "refused ($_how): $(cat "$T/refused.$_how")"
done

# The static program serving: listen and accept under the supervisor;
# a preloaded client, then a supervised static one (both ends supervised).
SERVE_WITH="$SUP $CLI"
reach_case server 1000000 "^echoed 1000000$" env "LD_PRELOAD=$APP_LDP" "$BIN/prog_reach" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "server: $TCP TCP segments: the connection was not rudp"
reach_case both_ends 1000000 "^echoed 1000000$" "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000 nb
[ "$TCP" = 0 ] || fail "both_ends: $TCP TCP segments: the connection was not rudp"
SERVE_WITH=

reach_case pass 1000000 "^echoed 1000000$" "$SUP" --pass "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "pass: no TCP segment: --pass must leave connect() to the kernel"
_rc=0
"$SUP" "$CLI" bogus >/dev/null 2>&1 || _rc=$?
[ "$_rc" = 2 ] || fail "the program's exit status 2 came back as $_rc"
echo "pass: exit status comes back (2)"

# The program writes 4 MB and exits at once: the supervisor exits after it
# (exit(), the shim's exit path), and what was in flight still arrives all.
start_bg sink under_shim "$BIN/prog_reach" sink "$PORT"
_sink=$LAST_PID
wait_udp "$PORT"
_t0=$(tcp_now)
timeout 60 "$SUP" "$CLI" send 127.0.0.1 "$PORT" 4000000 >"$T/send.out" 2>&1 ||
    { show "$T/send.out"; fail "send: the program failed"; }
wait_exit "$_sink" 30 || { show "$T/sink.log"; fail "send: the sink failed"; }
grep -qx "received 4000000" "$T/sink.log" || { show "$T/sink.log"; fail "send: not all arrived"; }
[ "$(( $(tcp_now) - _t0 ))" = 0 ] || fail "send: TCP segments: not rudp"
echo "send: the program exited right after writing 4000000 bytes; all arrived, over rudp"

# SIGTERM to the supervisor goes on to the program (which ends by it),
# even sent as soon as rudp-supervise runs: stage 1 blocks it until stage 2
# forwards it. (Not before: the shell's child, until its exec, takes a
# TERM for the shell's own trap.)
start_bg term "$SUP" "$CLI" server "$PORT"
_i=0
until tr '\0' ' ' <"/proc/$LAST_PID/cmdline" 2>/dev/null | grep -q rudp-supervise; do
    [ "$_i" -lt 200 ] || fail "rudp-supervise did not start"
    sleep 0.05
    _i=$((_i + 1))
done
kill -TERM "$LAST_PID"
_rc=0
wait_exit "$LAST_PID" 30 || _rc=$?
[ "$_rc" = 143 ] || { show "$T/term.log"; fail "SIGTERM to the supervisor: status $_rc, not 143 (the program's death by SIGTERM)"; }
echo "signals: SIGTERM to the supervisor ends the program by SIGTERM (143)"
echo "ok"
