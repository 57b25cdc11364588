#!/bin/sh
# More than one engine thread (RUDP_ENGINES=2; the default is one, see
# docs/configuration.md): tests that exercise what several engines change,
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
#     (shim/ports/forward.c; on main the join check failed with two engines).
# Roaming with two engines is t_roam_engines (roaming/, root).
# t_prog_reuseport and t_many_conns, mostly waiting (queries and TIME_WAIT;
# connections held idle 3 s), run beside the others, each in a network
# namespace of its own (unshare -n, as root): their ports and the shim's
# abstract unix names cannot meet the others'. Where no network namespace
# can be made (no root, most containers), in turn. One that cannot run here
# (exit 77) says "skip:".
. "$(dirname "$0")/../../lib/lib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests several engines, which a process whose engine keeps a table of its own
# does not run (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared
export RUDP_ENGINES=2
# Each as SUBJECT/NAME under integration/tests.
BESIDE="api/t_prog_reuseport network/t_many_conns"
INTURN="lifetime/t_lifetime_exit lifetime/t_lifetime_exec lifetime/t_lifetime_daemon
    lifetime/t_lifetime_closeall apps/t_socat_fork apps/t_socat_exec api/t_prog_prefork
    lifetime/t_listen_ephemeral"
can_netns || { INTURN="$BESIDE $INTURN" BESIDE=""; }
export MANY_PER_CLIENT=500 # t_many_conns: 1,000 connections
for st in $BESIDE; do
    start_aside "${st#*/}" unshare -n sh -c 'ip link set lo up && exec sh "$1"' sh \
        "$ROOT/integration/tests/$st.sh"
    eval "ASIDE_${st#*/}=\$LAST_PID"
done
# ran NAME RC: NAME's ok lines (exit 0), its reason (77: it cannot run
# here), or the end of its log and a failure
ran() {
    case $2 in
    0) grep '^ok' "$T/$1.log" | sed "s/^/$1: /" ;;
    77) echo "skip: $1: $(grep -m1 'skip: ' "$T/$1.log" | sed 's/^.*skip: //')" ;;
    *) tail -15 "$T/$1.log" >&2; fail "$1 with RUDP_ENGINES=2" ;;
    esac
}
for st in $INTURN; do
    t=${st#*/} rc=0
    sh "$ROOT/integration/tests/$st.sh" >"$T/$t.log" 2>&1 || rc=$?
    ran "$t" "$rc"
done
for st in $BESIDE; do
    t=${st#*/} rc=0
    eval "aside_wait \"\$ASIDE_$t\"" || rc=$?
    ran "$t" "$rc"
done
echo "ok: two engines: spread, keepers, prefork, ephemeral listeners and a SO_REUSEPORT group that grows as with one"
