#!/bin/sh
# rudp-run returns the program's exit status when the program itself exits,
# as without the supervisor, while what it left is still served (issue 35,
# review 8; docs/reach.md "What the program can tell apart"). Each case
# runs plain first (no supervisor, kernel TCP), then under
# rudp-run --supervise:
#   exitfast  sh -c 'sleep 30 & exit 3': rudp-run returns 3 while the
#             sleep it left still runs (its pid checked alive after the
#             return: no timing); the serving process is then still there
#             for the sleep, and ends once the sleep is killed;
#   daemon    a forking static daemon (prog_reachgap_static orphan: the
#             parent exits at once, its child then runs the static echo
#             server): rudp-run returns 0 before any client came; a
#             preloaded client then has its 100000 bytes echoed by the
#             daemon's child, over rudp (0 TCP segments on the port);
#             rudp-stat on the pid that holds the port's UDP socket (ss
#             -p: the serving process; the daemon's child, reparented, has
#             no tie to it rudp-stat can follow) shows the listener.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_static PROG prog_reachgap
need_bin prog_reach_static

# The serving process of the program whose pid is $1 ("rudp-supervise
# --serve FD PID MODE"), or nothing.
serving() {
    for _c in /proc/[0-9]*/cmdline; do
        tr '\0' ' ' <"$_c" 2>/dev/null | grep -q "rudp-supervise --serve [0-9]* $1 " &&
            { _p=${_c#/proc/}; echo "${_p%/cmdline}"; return 0; }
    done
    return 0
}

# Waits (30 s at most) for process $1 to be gone or a zombie.
gone() {
    _i=0
    while kill -0 "$1" 2>/dev/null; do
        case "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" in
            Z) return 0 ;;
        esac
        [ "$_i" -lt 600 ] || return 1
        sleep 0.05
        _i=$((_i + 1))
    done
}

# ---- exitfast ----
for _how in plain supervised; do
    _run=
    [ "$_how" = supervised ] && _run="$RUNSUP --supervise"
    rc=0
    # shellcheck disable=SC2086 # a command and its words
    timeout 60 $_run sh -c 'sleep 30 & echo "$$ $!" >"$1"; exit 3' sh "$T/exitfast.$_how.pids" \
        >"$T/exitfast.$_how" 2>&1 </dev/null || rc=$?
    read -r _sh _sleep <"$T/exitfast.$_how.pids" || fail "exitfast ($_how): no pids written"
    kill -0 "$_sleep" 2>/dev/null ||
        { show "$T/exitfast.$_how"; fail "exitfast ($_how): returned ($rc) only once the sleep had ended"; }
    [ "$rc" = 3 ] || { show "$T/exitfast.$_how"; fail "exitfast ($_how): status $rc, want 3"; }
    if [ "$_how" = supervised ]; then
        _sp=$(serving "$_sh")
        [ -n "$_sp" ] || fail "exitfast: no serving process left for the sleep"
        kill "$_sleep"
        gone "$_sp" || fail "exitfast: the serving process $_sp stays after the sleep was killed"
        echo "exitfast ($_how): status 3 while the sleep ran; the serving process $_sp ended after it"
    else
        kill "$_sleep"
        echo "exitfast ($_how): status 3 while the sleep ran"
    fi
done

# ---- daemon ----
for _how in plain supervised; do
    _run=
    [ "$_how" = supervised ] && _run="$RUNSUP --supervise"
    _t0=$(tcp_now)
    rc=0
    # shellcheck disable=SC2086 # a command and its words
    timeout 60 $_run "$PROG" orphan "$BIN/prog_reach_static" server "$PORT" 1 \
        >"$T/daemon.$_how" 2>&1 </dev/null || rc=$?
    [ "$rc" = 0 ] || { show "$T/daemon.$_how"; fail "daemon ($_how): status $rc, want 0"; }
    grep -q "^served" "$T/daemon.$_how" &&
        { show "$T/daemon.$_how"; fail "daemon ($_how): the starter returned only after the daemon served"; }
    if [ "$_how" = plain ]; then
        wait_tcp "$PORT" 30 || { show "$T/daemon.$_how"; fail "daemon (plain): no listener"; }
        timeout 60 "$BIN/prog_reach_static" client 127.0.0.1 "$PORT" 100000 >"$T/daemon.$_how.client" 2>&1 ||
            { show "$T/daemon.$_how.client" "$T/daemon.$_how"; fail "daemon (plain): the client failed"; }
    else
        wait_udp "$PORT" 30 || { show "$T/daemon.$_how"; fail "daemon (supervised): no rudp listener"; }
        _d=$(ss -Hlunp "sport = :$PORT" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
        [ -n "$_d" ] || fail "daemon: ss -p names no process for the UDP port"
        grep -q "^rudp-supervise" "/proc/$_d/comm" || fail "daemon: the UDP port is not the serving process's"
        "$TOOLS/rudp-stat" "$_d" >"$T/daemon.stat" 2>&1 ||
            { show "$T/daemon.stat"; fail "daemon: rudp-stat $_d (the serving process) failed"; }
        grep -q "^LISTEN 127.0.0.1:$PORT " "$T/daemon.stat" ||
            { show "$T/daemon.stat"; fail "daemon: rudp-stat shows no listener"; }
        ( export RUDP_FALLBACK=none
          under_shim timeout 60 "$BIN/prog_reach" client 127.0.0.1 "$PORT" 100000 ) \
            >"$T/daemon.$_how.client" 2>&1 ||
            { show "$T/daemon.$_how.client" "$T/daemon.$_how"; fail "daemon (supervised): the client failed"; }
    fi
    grep -qx "echoed 100000" "$T/daemon.$_how.client" ||
        { show "$T/daemon.$_how.client"; fail "daemon ($_how): no echo"; }
    wait_line "$T/daemon.$_how" "^served 100000$" 30 ||
        { show "$T/daemon.$_how"; fail "daemon ($_how): the daemon did not serve 100000 bytes"; }
    tcp_since daemon "$_how" "$_t0"
    echo "daemon ($_how): the starter returned 0 first; the daemon's child then echoed 100000 bytes; TCP segments: $TCP"
done
echo "ok"
