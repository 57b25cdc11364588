#!/bin/sh
# The shim's features for a supervised program as for a preloaded one
# (issue 35: one engine, two front ends; docs/reach.md):
#   fallback   RUDP_FALLBACK=tcp: a static client under rudp-supervise
#              reaches a plain kernel-TCP server (no shim) and echoes, as
#              the preloaded client does and as with no shim at all (the
#              same output, blocking and non-blocking connect); the
#              supervisor's log says kernel TCP carried it. RUDP_FALLBACK=
#              none: refused, the same line as the preloaded client's.
#   fallback epoll
#              the same with a UDP socket silent on the server's port (the
#              rudp handshake unanswered: TCP starts after the probe
#              delay), the client's socket registered with epoll before a
#              non-blocking connect (prog_reachgap epoll): EPOLLOUT alone,
#              as over kernel TCP. The supervisor once left the program's
#              registrations on its own unconnected socket, which the shim
#              keeps for the fallback: EPOLLOUT|EPOLLHUP at once.
#   keyed      RUDP_KEY_FILE: a supervised server with a key serves a
#              preloaded and a supervised client with that key (0 TCP
#              segments); a client without one is refused, as by a
#              preloaded keyed server.
#   rudp-stat  on the supervisor's pid: its engine's listener.
#   RUDP_STATS the supervisor prints the engines' counters at its end: 2
#              connections accepted.
#   qlog       RUDP_QLOG_DIR: one file for each of the 2 connections.
. "$(dirname "$0")/../../lib/reachlib.sh"

need_static PROG prog_reach
need_static GAP prog_reachgap
need_tool rudp-stat
need_supervise

# ---- fallback: a plain kernel-TCP server, each client three ways ----

# as HOW CMD...: CMD with no shim (plain), preloaded, or under the supervisor
as() {
    _how=$1; shift
    case $_how in
    plain) "$@" ;;
    preload) under_shim "$@" ;;
    supervised) "$SUP" "$@" ;;
    esac
}

# fb HOW NB: one client (HOW: plain, preload, supervised) of a plain
# prog_reach server; its stdout into $T/fb.HOW$NB, the log into .err
fb() {
    start_bg "fb.$1$2.server" "$BIN/prog_reach" server "$PORT"
    _srv=$LAST_PID
    wait_tcp "$PORT"
    [ "$1" = preload ] && _prog=$BIN/prog_reach || _prog=$PROG
    # shellcheck disable=SC2086 # NB: a word or none
    ( export RUDP_FALLBACK=tcp RUDP_LOG=info
      as "$1" timeout 60 "$_prog" client 127.0.0.1 "$PORT" 100000 $2 ) \
        >"$T/fb.$1$2" 2>"$T/fb.$1$2.err" ||
        { show "$T/fb.$1$2" "$T/fb.$1$2.err" "$T/fb.$1$2.server.log"; fail "fallback ($1 $2): the client failed"; }
    wait_exit "$_srv" 30 || { show "$T/fb.$1$2.server.log"; fail "fallback ($1 $2): the server failed"; }
    grep -qx "served 100000" "$T/fb.$1$2.server.log" || fail "fallback ($1 $2): the server did not echo"
}
for nb in "" nb; do
    for how in plain preload supervised; do
        fb "$how" "$nb"
    done
    for how in preload supervised; do
        cmp -s "$T/fb.plain$nb" "$T/fb.$how$nb" ||
            { echo "plain:"; cat "$T/fb.plain$nb"; echo "$how:"; cat "$T/fb.$how$nb"
              fail "fallback ($how $nb): not the output of kernel TCP"; }
        grep -q "connected over kernel TCP" "$T/fb.$how$nb.err" ||
            { show "$T/fb.$how$nb.err"; fail "fallback ($how $nb): the log does not say kernel TCP carried it"; }
    done
    echo "fallback ${nb:-blocking}: $(tail -1 "$T/fb.supervised$nb") (kernel TCP, preloaded and supervised alike)"
done

# RUDP_FALLBACK=none: refused, as under the preload
for nb in "" nb; do
    start_bg "none$nb.server" "$BIN/prog_reach" server "$PORT"
    _srv=$LAST_PID
    wait_tcp "$PORT"
    for how in preload supervised; do
        [ "$how" = preload ] && _prog=$BIN/prog_reach || _prog=$PROG
        rc=0
        # shellcheck disable=SC2086
        ( export RUDP_FALLBACK=none; as "$how" timeout 60 "$_prog" client 127.0.0.1 "$PORT" 100 $nb ) \
            >/dev/null 2>"$T/none.$how$nb" || rc=$?
        [ "$rc" = 1 ] || { show "$T/none.$how$nb"; fail "RUDP_FALLBACK=none ($how $nb): exit $rc, want 1 (refused)"; }
        grep '^prog_reach:' "$T/none.$how$nb" >"$T/none.$how$nb.line"
    done
    cmp -s "$T/none.preload$nb.line" "$T/none.supervised$nb.line" ||
        { show "$T/none.preload$nb" "$T/none.supervised$nb"; fail "RUDP_FALLBACK=none ($nb): not the preload's refusal"; }
    echo "fallback none ${nb:-blocking}: $(cat "$T/none.supervised$nb.line") (as preloaded)"
    kill "$_srv" 2>/dev/null || true
    wait "$_srv" 2>/dev/null || true
done

# ---- fallback epoll: the rudp handshake unanswered, TCP after the probe ----

# a UDP socket on the port that never answers, held until killed
start_bg silent python3 -c 'import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", int(sys.argv[1])))
print("bound", flush=True)
time.sleep(120)' "$PORT"
_silent=$LAST_PID
wait_line "$T/silent.log" bound 30 || { show "$T/silent.log"; fail "fallback epoll: no silent UDP socket"; }
for how in plain supervised; do
    start_bg "fbep.$how.server" "$BIN/prog_reach" server "$PORT"
    _srv=$LAST_PID
    wait_tcp "$PORT"
    ( export RUDP_FALLBACK=tcp; as "$how" timeout 60 "$GAP" epoll 127.0.0.1 "$PORT" ) \
        >"$T/fbep.$how" 2>"$T/fbep.$how.err" ||
        { show "$T/fbep.$how" "$T/fbep.$how.err" "$T/fbep.$how.server.log"
          fail "fallback epoll ($how): the client failed"; }
    wait_exit "$_srv" 30 || { show "$T/fbep.$how.server.log"; fail "fallback epoll ($how): the server failed"; }
done
kill "$_silent" 2>/dev/null || true
wait "$_silent" 2>/dev/null || true
cmp -s "$T/fbep.plain" "$T/fbep.supervised" ||
    { echo "plain:"; cat "$T/fbep.plain"; echo "supervised:"; cat "$T/fbep.supervised"
      fail "fallback epoll: the supervised program tells a difference"; }
echo "fallback epoll: $(tail -1 "$T/fbep.supervised") (kernel TCP after an unanswered rudp handshake, as plain)"

# ---- keyed, rudp-stat, RUDP_STATS, qlog: a supervised keyed server ----

umask 077
"$TOOLS/rudp-run" --genkey >"$T/key" 2>/dev/null || fail "rudp-run --genkey"
chmod 600 "$T/key"
mkdir "$T/qlog"
start_bg keyed.server env RUDP_KEY_FILE="$T/key" RUDP_STATS=1 RUDP_QLOG_DIR="$T/qlog" \
    "$SUP" "$PROG" server "$PORT" 2
_srv=$LAST_PID
wait_udp "$PORT"
stat_until "$T/stat" "^LISTEN 127.0.0.1:$PORT " "$_srv"
echo "rudp-stat $_srv: $(grep '^LISTEN' "$T/stat")"
_t0=$(tcp_now)
rc=0
( export RUDP_FALLBACK=none RUDP_LOG=warn
  under_shim timeout 60 "$BIN/prog_reach" client 127.0.0.1 "$PORT" 100 ) >/dev/null 2>"$T/nokey" || rc=$?
[ "$rc" = 1 ] && grep -q "requires a key, and this end has none" "$T/nokey" ||
    { show "$T/nokey"; fail "keyed: a client without the key was not refused for it (exit $rc)"; }
( export RUDP_KEY_FILE="$T/key"; under_shim timeout 60 "$BIN/prog_reach" client 127.0.0.1 "$PORT" 100000 ) \
    >"$T/keyed.preload" 2>&1 || { show "$T/keyed.preload"; fail "keyed: the preloaded client failed"; }
timeout 60 env RUDP_KEY_FILE="$T/key" "$SUP" "$PROG" client 127.0.0.1 "$PORT" 100000 \
    >"$T/keyed.supervised" 2>&1 || { show "$T/keyed.supervised"; fail "keyed: the supervised client failed"; }
wait_exit "$_srv" 30 || { show "$T/keyed.server.log"; fail "keyed: the supervised server failed"; }
for f in keyed.preload keyed.supervised; do
    grep -qx "echoed 100000" "$T/$f" || { show "$T/$f"; fail "$f: no echo"; }
done
grep -q "^served 200000" "$T/keyed.server.log" ||
    { show "$T/keyed.server.log"; fail "keyed: the server did not serve both"; }
tcp=$(( $(tcp_now) - _t0 ))
[ "$tcp" = 0 ] || fail "keyed: $tcp TCP segments: not rudp"
echo "keyed: a preloaded and a supervised client with the key echoed 100000 bytes each, one without refused; 0 TCP segments"
# The supervisor returned the program's status when the program ended; its
# serving process prints the counters when it ends, after the program (and
# after the connections delivered): waited for, the line is all it says.
wait_line "$T/keyed.server.log" "connections: opened 0 accepted 2 " 30 ||
    { show "$T/keyed.server.log"; fail "RUDP_STATS: the supervisor's counters do not say 2 accepted"; }
echo "RUDP_STATS: $(grep -m1 'connections: opened' "$T/keyed.server.log" | sed 's/^ *//')"
n=$(find "$T/qlog" -name '*-server.sqlog' | wc -l)
[ "$n" = 2 ] || { ls -l "$T/qlog"; fail "qlog: $n server files, want 2"; }
echo "qlog: $n files for the supervised server's 2 connections"
echo "ok"
