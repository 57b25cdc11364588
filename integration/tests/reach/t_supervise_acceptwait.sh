#!/bin/sh
# Blocking accepts that wait cost the supervisor no thread each (issue 35;
# docs/reach.md "What the program can tell apart"): prog_reachgap_static
# acceptwait, 50 threads blocked in accept() on one listener (checked by
# the program in /proc/self/task/TID/syscall), plain first, then under
# rudp-supervise, where the serving process then runs fewer than 25
# threads (one waiter polls every parked call; it once had a worker per
# call: 52); then the program connects 50 times and every thread accepts
# one, as over kernel TCP, 0 TCP segments on the port.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_static PROG prog_reachgap
K=50

for _how in plain supervised; do
    _sup=
    [ "$_how" = supervised ] && _sup=$SUP
    rm -f "$T/go"
    mkfifo "$T/go"
    _t0=$(tcp_now)
    # <>: the fifo opened read-write, so that neither end waits for the other
    $_sup "$PROG" acceptwait "$PORT" "$K" <>"$T/go" >"$T/aw.$_how" 2>&1 &
    _pid=$!
    PIDS="$PIDS $_pid"
    wait_line "$T/aw.$_how" "^acceptwait: $K waiting$" 60 ||
        { show "$T/aw.$_how"; fail "acceptwait ($_how): the threads did not all wait in accept"; }
    if [ "$_how" = supervised ]; then
        _sp=
        for _c in $(pgrep -P "$_pid"); do
            tr '\0' ' ' <"/proc/$_c/cmdline" | grep -q -- "--serve " && _sp=$_c
        done
        [ -n "$_sp" ] || fail "acceptwait: no serving process under $_pid"
        _n=$(ls "/proc/$_sp/task" | wc -l)
        [ "$_n" -lt $((K / 2)) ] ||
            fail "acceptwait: the serving process runs $_n threads for $K waiting accepts"
        echo "acceptwait (supervised): $K accepts waiting, the serving process runs $_n threads"
    fi
    echo go >"$T/go"
    wait_exit "$_pid" 60 || { show "$T/aw.$_how"; fail "acceptwait ($_how): the program failed"; }
    grep -qx "acceptwait: $K accepted" "$T/aw.$_how" ||
        { show "$T/aw.$_how"; fail "acceptwait ($_how): not every thread accepted"; }
    tcp_since acceptwait "$_how" "$_t0"
    echo "acceptwait ($_how): $K threads each accepted one; TCP segments: $TCP"
done
echo "ok"
