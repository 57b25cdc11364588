#!/bin/sh
# More than one engine thread (RUDP_ENGINES=2; the default is one, see
# README, configuration): tests that exercise what several engines change,
# run again with two.
#   t_many_conns: 1,000 connections from two processes to one listener,
#     spread over both of the server's engines (each carries some: its own
#     socket in the listener's SO_REUSEPORT group), all answered, held and
#     closed, no datagram dropped;
#   t_lifetime_exit, _exec, _daemon, _closeall, t_socat_fork, _exec: a keeper
#     takes over both engines at exit and exec (a daemon's listener), and
#     serves their connections to the end;
#   t_prog_prefork: forked children accept on a listener whose engines stay
#     in the parent;
#   t_listen_ephemeral: a listener on port 0 with a group of sockets;
#   t_prog_reuseport: among its checks, 20 connections carrying on when a
#     second listener joins their listener's group: the group's datagrams
#     move between the members, and so between the engines, which hand
#     each datagram to the engine whose index is in its connection ID
#     (shim/forward.c; on main the join check failed with two engines).
# Roaming with two engines is t_roam_engines (roaming/, root).
# t_prog_reuseport, the longest and mostly waiting, runs beside the others
# in a network namespace of its own (unshare -n, as root): its ports and
# the shim's abstract unix names cannot meet theirs. Without root, in turn.
. "$(dirname "$0")/../../lib/lib.sh"
export RUDP_ENGINES=2
LAST=api/t_prog_reuseport
REUSEPORT=""
if [ "$(id -u)" = 0 ]; then
    start_aside t_prog_reuseport unshare -n sh -c 'ip link set lo up && exec sh "$1"' sh \
        "$ROOT/integration/tests/$LAST.sh"
    REUSEPORT=$LAST_PID LAST=""
fi
# Each as SUBJECT/NAME under integration/tests.
for st in network/t_many_conns lifetime/t_lifetime_exit lifetime/t_lifetime_exec \
    lifetime/t_lifetime_daemon lifetime/t_lifetime_closeall apps/t_socat_fork apps/t_socat_exec \
    api/t_prog_prefork lifetime/t_listen_ephemeral $LAST; do
    t=${st#*/}
    if [ "$t" = t_many_conns ]; then
        MANY_PER_CLIENT=500 sh "$ROOT/integration/tests/$st.sh" >"$T/$t.out" 2>&1
    else
        sh "$ROOT/integration/tests/$st.sh" >"$T/$t.out" 2>&1
    fi || { tail -15 "$T/$t.out" >&2; fail "$t with RUDP_ENGINES=2"; }
    grep '^ok' "$T/$t.out" | sed "s/^/$t: /"
done
if [ -n "$REUSEPORT" ]; then
    aside_wait "$REUSEPORT" ||
        { tail -15 "$T/t_prog_reuseport.log" >&2; fail "t_prog_reuseport with RUDP_ENGINES=2"; }
    grep '^ok' "$T/t_prog_reuseport.log" | sed "s/^/t_prog_reuseport: /"
fi
echo "ok: two engines: spread, keepers, prefork, ephemeral listeners and a SO_REUSEPORT group that grows as with one"
