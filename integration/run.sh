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
# of their own (reach, roaming, paths, ...) in a second lane beside the
# others, their lines after (RUDP_IT_LANES=1: one lane). A test is named by
# its file name alone (t_qlog.sh; names are unique across the subjects) or
# by its path, from integration/ (tests/tools/t_qlog.sh) or from the
# current directory (integration/tests/tools/t_qlog.sh).
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
# lane end too, nothing left running behind.
stop_all() {
    for _k in $test_pid $lane_pid; do kill "$_k" 2>/dev/null; done
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
# t_engines' reruns: 45% of the time, mostly waiting on links and timers)
# run in a second lane beside the others, which keeps make test within its
# 20 minutes (1,378 s in CI on 9ee6791 one at a time; at d34500f on the
# 2-vCPU AMD VM the lanes took 1,165 and 752 s before the emulator's
# tests and the unshare -n ones moved, 121 s of them). RUDP_IT_LANES=1:
# one lane. Lane b's lines come after lane a's, each lane in its order.
lanes=${RUDP_IT_LANES:-2}
beside='^tests/(reach|roaming|paths)/|^tests/network/t_(emu_validate|engines|loss_10pct|loss_30pct|repair_echo|rx_moderation|connect_ports)\.sh$'
beside="$beside"'|^tests/tools/t_qlog\.sh$|^tests/lifetime/t_prog_outage\.sh$|^tests/lifetime/t_(listen_ephemeral|bind0_reuse)\.sh$|^tests/coexist/t_connect_timeout\.sh$'
if [ $# -eq 0 ] && [ "$lanes" != 1 ] && [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    lane_b=$(printf '%s\n' "$all" | grep -E "$beside")
    lane_a=$(printf '%s\n' "$all" | grep -vE "$beside")
    # shellcheck disable=SC2086 # test paths: no spaces (find above)
    ( trap 'kill "$test_pid" 2>/dev/null; exit 143' TERM
      run_tests $lane_b; echo "$pass $failed $skipped $parts$names" >"$logs/lane_b.counts" ) \
        >"$logs/lane_b.out" 2>&1 &
    lane_pid=$!
    # shellcheck disable=SC2086
    run_tests $lane_a
    wait "$lane_pid" || true
    lane_pid=
    echo "--- beside them (in namespaces of their own):"
    cat "$logs/lane_b.out"
    if read -r _p _f _s _parts _names <"$logs/lane_b.counts"; then
        pass=$((pass + _p)) failed=$((failed + _f)) skipped=$((skipped + _s)) parts=$((parts + _parts))
        names="$names${_names:+ $_names}"
    else
        failed=$((failed + 1)); names="$names (lane b: no counts)"
        echo "FAIL lane b (beside) ended without its counts"
    fi
else
    # shellcheck disable=SC2086
    run_tests ${*:-$all}
fi
rm -rf "$logs"
[ "$parts" -eq 0 ] || echo "$parts part(s) of passing tests skipped (their \"skip:\" lines above)"
echo "$pass passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
