#!/bin/sh
# Runs every integration/tests/SUBJECT/t_*.sh (or those named as arguments),
# each under a timeout, and ends with the plain line "N passed, N failed".
#
# All run in a stable order: by subject, then by name (byte order). A test
# is named by its file name alone (t_qlog.sh; names are unique across the
# subjects) or by its path, from integration/ (tests/tools/t_qlog.sh) or
# from the current directory (integration/tests/tools/t_qlog.sh).
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

pass=0 failed=0 names=""
logs=$(mktemp -d /tmp/rudp-run.XXXXXX)
limit=${RUDP_IT_TIMEOUT:-300}
list=${*:-$all}
for arg in $list; do
    t=${arg##*/} t=${t%.sh}.sh
    p=$(resolve "$arg")
    start=$(date +%s)
    if [ -z "$p" ]; then
        failed=$((failed + 1)); names="$names $t"
        echo "FAIL $t (no such test: $arg)"
        continue
    fi
    if timeout -k 5 "$limit" sh "$p" >"$logs/$t.log" 2>&1; then
        pass=$((pass + 1)); echo "PASS $t ($(( $(date +%s) - start ))s)"
    else
        failed=$((failed + 1)); names="$names $t"
        echo "FAIL $t ($(( $(date +%s) - start ))s)"; sed 's/^/    /' "$logs/$t.log" | tail -40
    fi
done
rm -rf "$logs"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
