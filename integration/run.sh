#!/bin/sh
# Runs every integration/tests/SUBJECT/t_*.sh (or those named as arguments),
# each under a timeout, and ends with the plain line
# "N passed, N failed, N skipped" (CI reads "N passed, N failed" from it).
#
# A test passes when it exits 0, is skipped when it exits 77 (automake's
# code) after printing "skip: WHY" (lib.sh's skip: it cannot run here, as
# in a container or a chroot without root, a network namespace or
# binfmt_misc), and fails otherwise. A skipped test is never counted as
# passed. A passing test may skip a part and say so in "skip: WHY" lines:
# those are named under its PASS line and counted as parts skipped.
#
# All run in a stable order: by subject, then by name (byte order); with no
# name given, on 2 cores or more, the tests that live in network namespaces
# of their own (reach, roaming, paths, apart_netns ...) in two more lanes
# beside the others, their lines after (RUDP_IT_LANES=1: one lane; below).
# A test is named by its file name alone (t_qlog.sh; names are unique
# across the subjects) or by its path, from integration/
# (tests/tools/t_qlog.sh) or from the current directory
# (integration/tests/tools/t_qlog.sh).
set -u
here=$(pwd)
cd "$(dirname "$0")"
all=$(find tests -mindepth 2 -maxdepth 2 -name 't_*.sh' -type f | LC_ALL=C sort)

# Two tests of one name would make the short form ambiguous: refuse them.
dup=$(printf '%s\n' "$all" | sed 's|.*/||' | LC_ALL=C sort | uniq -d)
if [ -n "$dup" ]; then
    echo "run.sh: test names must be unique across integration/tests/*/:" $dup >&2
    exit 2
fi

# The path of the test named $1 (from integration/, or absolute), or nothing.
resolve() {
    case "$1" in
    */*)
        if [ -f "$1" ]; then echo "${1#./}"
        elif [ -f "$here/$1" ]; then
            d=$(cd "$(dirname "$here/$1")" && pwd) it=$(pwd)
            echo "${d#"$it/"}/${1##*/}"
        fi ;;
    *) printf '%s\n' "$all" | awk -F/ -v n="${1%.sh}.sh" '$NF == n' | head -1 ;;
    esac
}

pass=0 failed=0 skipped=0 parts=0 names=""
logs=$(mktemp -d /tmp/rudp-run.XXXXXX)
limit=${RUDP_IT_TIMEOUT:-300}
test_pid= lane_pid=
# the tests' standard input: run.sh's own (a background job's is
# /dev/null), or /dev/null if it has none
if true <&0 2>/dev/null; then exec 3<&0; else exec 3</dev/null; fi
stdin=/dev/fd/3
# Interrupted or stopped (INT, TERM, HUP): the test running and the other
# lanes end too (each ends its test and waits for it), nothing left
# running behind; the logs go once they all have.
stop_all() {
    for _k in $test_pid $lane_pid; do kill "$_k" 2>/dev/null; done
    for _k in $test_pid $lane_pid; do wait "$_k" 2>/dev/null; done
    rm -rf "$logs"
    exit 130
}
trap stop_all INT TERM HUP

# run_tests ARG...: runs each, prints its line, adds to the counts above.
run_tests() {
    for arg in "$@"; do
        t=${arg##*/} t=${t%.sh}.sh
        p=$(resolve "$arg")
        start=$(date +%s)
        if [ -z "$p" ]; then
            failed=$((failed + 1)); names="$names $t"
            echo "FAIL $t (no such test: $arg)"
            continue
        fi
        rc=0
        # In the background and waited for, so a signal's trap can end it;
        # with SIGINT and SIGQUIT as a test expects them (an asynchronous
        # list starts with both ignored, and so would everything it runs)
        env --default-signal=INT,QUIT timeout -k 5 "$limit" sh "$p" \
            <"$stdin" >"$logs/$t.log" 2>&1 &
        test_pid=$!
        wait "$test_pid" || rc=$?
        test_pid=
        # its "skip: WHY" lines, also those a helper printed after a prefix
        # ("shim, LABEL: skip: ...")
        grep -E '(^|: )skip: ' "$logs/$t.log" |
            awk '{ i = index($0, "skip: "); print substr($0, i + 6) }' >"$logs/$t.skip" || true
        secs=$(( $(date +%s) - start ))
        if [ "$rc" = 0 ]; then
            pass=$((pass + 1)); n=$(wc -l <"$logs/$t.skip")
            if [ "$n" -gt 0 ]; then
                parts=$((parts + n))
                echo "PASS $t (${secs}s, $n part(s) skipped)"; sed 's/^/    skip: /' "$logs/$t.skip"
            else
                echo "PASS $t (${secs}s)"
            fi
        elif [ "$rc" = 77 ]; then
            skipped=$((skipped + 1))
            why=$(head -1 "$logs/$t.skip")
            echo "SKIP $t: ${why:-(it gave no reason)}"
        else
            failed=$((failed + 1)); names="$names $t"
            echo "FAIL $t (${secs}s)"; sed 's/^/    /' "$logs/$t.log" | tail -40
        fi
    done
}

# Every test (no names given) on a machine of 2 cores or more: those that
# live in network namespaces of their own (the reach, roaming and paths
# subjects, the emulator's tests, those whose body runs under unshare -n,
# t_engines' reruns, and every script with a line "apart_netns" where a
# namespace can be made: lib.sh) run beside the others, in lanes that take
# them in turn from one queue; the others, which share the host's
# loopback, one at a time in lane a. Mostly waiting on links, timers and
# each other, make test's tests kept 1.35 of the 2 cores busy in two lanes
# (19 min 22 s, 2026-12-02: lane a 936 s, the namespaced one 853 s); in
# three, with 21 of lane a's tests apart, 1.64 (17 min 8 s: lane a 825 s,
# the others 792 and 781; each test slower, sharing the cores: their
# sum 2,398 s against 1,789). More lanes gain little: the whole run's
# CPU, 1,690 s of the two cores', is 14 min of them.
# RUDP_IT_LANES: how many lanes (3 by default: lane a and two beside it;
# 1: everything one at a time). Lane a's lines come first, then each other
# lane's, each in the order its tests ended.
lanes=${RUDP_IT_LANES:-3}
beside='^tests/(reach|roaming|paths)/|^tests/network/t_(emu_validate|engines|loss_10pct|loss_30pct|repair_echo|rx_moderation|connect_ports)\.sh$'
beside="$beside"'|^tests/tools/t_qlog\.sh$|^tests/lifetime/t_prog_outage\.sh$|^tests/lifetime/t_(listen_ephemeral|bind0_reuse)\.sh$|^tests/coexist/t_connect_timeout\.sh$'
# The longest of them first (their seconds in that run), so that the
# lanes end together rather than one with a long test started last.
first='t_supervise_dialstorm t_supervise_gaps t_supervise_battery t_fd_table_own t_roam_readdr'
first="$first"' t_emu_validate t_pmtu_blackhole t_roam_handover t_sec_memory t_pmtu_interop'
if [ $# -eq 0 ] && [ "$lanes" -gt 1 ] 2>/dev/null && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    apart=$(printf '%s\n' "$all" | xargs grep -l '^ *apart_netns *$' 2>/dev/null || true)
    # where no namespace can be made (lib.sh's can_netns and ip), those run
    # on the host's loopback: in lane a
    if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null 2>&1 || ! unshare -n true 2>/dev/null; then
        apart=""
    fi
    queue=$({ printf '%s\n' "$all" | grep -E "$beside"; printf '%s\n' "$apart"; } | grep . | LC_ALL=C sort -u)
    lane_a=$(printf '%s\n' "$all" | grep -vxF "${queue:-/}")
    for n in $first; do
        for p in $queue; do [ "${p##*/}" != "$n.sh" ] || echo "$p"; done
    done >"$logs/queue"
    for p in $queue; do
        n=${p##*/}
        case " $first " in *" ${n%.sh} "*) ;; *) echo "$p" ;; esac
    done >>"$logs/queue"
    echo 1 >"$logs/queue.next"
    # next_beside: the queue's next test (nothing when it is empty, or the
    # logs are gone: run.sh stopped), taken under a lock (mkdir) that the
    # lanes share
    next_beside() {
        until mkdir "$logs/queue.lock" 2>/dev/null; do
            [ -d "$logs" ] || return 1
            sleep 0.05
        done
        _n=$(cat "$logs/queue.next")
        echo $((_n + 1)) >"$logs/queue.next"
        rmdir "$logs/queue.lock"
        sed -n "${_n}p" "$logs/queue"
    }
    # A lane ends its test and waits for it on TERM (stop_all's) or HUP
    # (a hang-up reaches every process of the group; a subshell does not
    # keep the parent's trap); SIGINT is ignored in it, as in any
    # asynchronous list: stop_all ends it.
    i=1
    while [ "$i" -lt "$lanes" ]; do
        ( trap 'kill "$test_pid" 2>/dev/null; wait "$test_pid" 2>/dev/null; exit 143' TERM HUP
          while p=$(next_beside) && [ -n "$p" ]; do run_tests "$p"; done
          echo "$pass $failed $skipped $parts$names" >"$logs/lane_$i.counts" ) \
            >"$logs/lane_$i.out" 2>&1 &
        lane_pid="$lane_pid $!"
        i=$((i + 1))
    done
    # shellcheck disable=SC2086 # test paths: no spaces (find above)
    run_tests $lane_a
    for _k in $lane_pid; do wait "$_k" || true; done
    lane_pid=
    i=1
    while [ "$i" -lt "$lanes" ]; do
        echo "--- beside them, lane $i (in namespaces of their own):"
        cat "$logs/lane_$i.out"
        if read -r _p _f _s _parts _names <"$logs/lane_$i.counts"; then
            pass=$((pass + _p)) failed=$((failed + _f)) skipped=$((skipped + _s)) parts=$((parts + _parts))
            names="$names${_names:+ $_names}"
        else
            failed=$((failed + 1)); names="$names (lane $i: no counts)"
            echo "FAIL lane $i (beside) ended without its counts"
        fi
        i=$((i + 1))
    done
else
    # shellcheck disable=SC2086
    run_tests ${*:-$all}
fi
rm -rf "$logs"
[ "$parts" -eq 0 ] || echo "$parts part(s) of passing tests skipped (their \"skip:\" lines above)"
echo "$pass passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
