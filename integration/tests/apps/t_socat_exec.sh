#!/bin/sh
# socat EXEC:/bin/cat as an echo server, both ends under the shim (kernel TCP
# with RUDP_NO_SHIM=1), 10 MiB of random bytes per client, sha256 equal:
#   1. TCP-LISTEN,fork EXEC:/bin/cat: the forked socat child keeps the
#      connection and talks to cat (a fork+exec'd program) over a socketpair;
#   2. TCP-LISTEN,fork EXEC:/bin/cat,nofork: the forked child execs cat with
#      the accepted connection as its stdin/stdout (the exec handoff, as inetd
#      does): the connection must survive exec;
#   3. TCP-LISTEN EXEC:/bin/cat,nofork (no fork): socat itself, the process
#      that listened and accepted, execs cat with the connection as its
#      stdin/stdout: the connection must survive the exec of the process
#      that made it.
# Two clients at once in cases 1 and 2 (the server ends on SIGTERM), one in
# case 3 (cat, which socat became, exits at EOF).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

SIZE=10485760

run_case() { # run_case NAME FORK-OPTION CLIENTS EXEC-ADDRESS
    c_name=$1 c_fork=$2 c_n=$3 c_exec=$4
    P=$(free_port)
    bg_app "srv-$c_name" socat -d -t 30 "TCP-LISTEN:$P,bind=127.0.0.1,reuseaddr$c_fork" "$c_exec"
    SRV=$LAST_PID
    wait_listen "$P" 20
    assert_listener "$P"
    t0=$(ms_now)
    i=1
    while [ "$i" -le "$c_n" ]; do
        head -c "$SIZE" /dev/urandom >"$T/in.$c_name.$i"
        bg_app_io "cli-$c_name.$i" "$T/in.$c_name.$i" "$T/out.$c_name.$i" \
            socat -t 60 -T 60 - "TCP:127.0.0.1:$P"
        eval "CLI_$i=\$LAST_PID"
        i=$((i + 1))
    done
    i=1
    while [ "$i" -le "$c_n" ]; do
        eval "c_pid=\$CLI_$i"
        rc=0
        wait_exit "$c_pid" 90 || rc=$?
        c_got=$(stat -c %s "$T/out.$c_name.$i")
        [ "$rc" = 0 ] || { show "$T/cli-$c_name.$i.log" "$T/srv-$c_name.log"
            fail "$c_name: client $i exited $rc ($c_got of $SIZE bytes echoed)"; }
        [ "$(sha "$T/out.$c_name.$i")" = "$(sha "$T/in.$c_name.$i")" ] || { show "$T/srv-$c_name.log"
            fail "$c_name: client $i: sha256 differs ($c_got of $SIZE bytes echoed)"; }
        i=$((i + 1))
    done
    echo "ok: $c_name (TCP-LISTEN$c_fork $c_exec): $c_n client(s), 10 MiB each echoed, sha256 equal, $(( $(ms_now) - t0 )) ms"
    if [ -n "$c_fork" ]; then
        kill -0 "$SRV" 2>/dev/null || { show "$T/srv-$c_name.log"; fail "$c_name: the listening socat exited"; }
        rc=0
        stop_app "$SRV" 10 || rc=$?
        # socat exits 128+15 on SIGTERM.
        [ "$rc" = 143 ] || [ "$rc" = 0 ] || { show "$T/srv-$c_name.log"; fail "$c_name: the listening socat exited $rc on SIGTERM"; }
    else
        rc=0
        wait_exit "$SRV" 10 || rc=$?
        [ "$rc" = 0 ] || { show "$T/srv-$c_name.log"; fail "$c_name: cat (exec'd by socat) exited $rc"; }
    fi
}

run_case socketpair ,fork 2 EXEC:/bin/cat
run_case fork-exec ,fork 2 EXEC:/bin/cat,nofork
run_case exec-in-place "" 1 EXEC:/bin/cat,nofork
