#!/bin/sh
# check_progs.sh [--write]: each test program and the scripts that run it,
# in one table (tests/progs.table), as `make layers` checks it.
#
# A shim test has two halves: its program, tests/prog_NAME.c, and the
# script that drives it, integration/tests/SUBJECT/t_*.sh. The table lists
# them side by side, so a reader finds one from the other without a
# search, and this check keeps it true. Fails, naming each, when:
#   1. a program is run by no script (dead, or its script lost it);
#   2. the table is not what the scripts say (a script added, moved or
#      renamed, a program added or gone): run with --write to make it
#      again, and commit it with the change.
# A script runs a program when a line of it that is not a comment names
# prog_NAME as a word, or its static build prog_NAME_static (build/progs/,
# build/progs/static/). Scripts are every *.sh under integration/, its
# helpers (lib/) and runners (tsan.sh, bench/) among them.
set -eu

cd "$(dirname "$0")/.."
TABLE=tests/progs.table

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# A program of several files (the Makefile's MULTI_PROGS) is its main
# file, tests/prog_NAME.c: its parts beside it, tests/prog_NAME_*.c with
# their header tests/prog_NAME.h, are not programs of their own.
ls tests/prog_*.c | while read -r f; do
    for h in tests/prog_*.h; do
        [ -e "$h" ] || continue
        case "$f" in "${h%.h}"_*.c) continue 2 ;; esac
    done
    echo "$f"
done | sed 's|^tests/||; s|\.c$||' | sort >"$tmp/progs"

# "prog script" for every program a script names, comments left out.
find integration -name '*.sh' | LC_ALL=C sort | while read -r f; do
    grep -v '^[[:space:]]*#' "$f" |
        grep -oE '(^|[^A-Za-z0-9_])prog_[a-z0-9_]+' |
        sed -E 's/^[^p]//; s/_static$//' | sort -u | sed "s|\$| $f|"
done | LC_ALL=C sort -u >"$tmp/uses"

{
    cat <<'HEAD'
# tests/progs.table: each test program (tests/prog_NAME.c) and the scripts
# that run it (a line of theirs, not a comment, names prog_NAME or its
# static build), a line for each pair: `grep prog_NAME tests/progs.table`
# gives a program's scripts, `grep t_NAME.sh` a script's programs. Made by
# `tests/check_progs.sh --write`, never by hand; `make layers` fails when a
# program is run by no script or this table is not what the scripts say.
#
# program            script
HEAD
    while read -r p; do
        s=$(awk -v p="$p" '$1 == p { print $2 }' "$tmp/uses")
        [ -n "$s" ] || { echo "$p"; continue; }
        for f in $s; do printf '%-20s %s\n' "$p" "$f"; done
    done <"$tmp/progs"
} >"$tmp/table"

if [ "${1:-}" = --write ]; then
    cp "$tmp/table" "$TABLE"
    echo "check_progs: wrote $TABLE"
fi

fail=0
awk 'NF == 1 && $1 !~ /^#/ { print $1 }' "$tmp/table" >"$tmp/unrun"
if [ -s "$tmp/unrun" ]; then
    echo "PROGRAMS RUN BY NO SCRIPT (tests/prog_NAME.c with no integration/**/*.sh naming it):"
    sed 's/^/  /' "$tmp/unrun"
    fail=1
fi
if ! cmp -s "$tmp/table" "$TABLE" 2>/dev/null; then
    echo "STALE: $TABLE is not what the scripts say (tests/check_progs.sh --write makes it;"
    echo "  - a line of the table only, + a line the scripts give):"
    diff -u "$TABLE" "$tmp/table" 2>/dev/null | sed -n '3,$p' | grep '^[-+]' | sed 's/^/  /' || true
    [ -e "$TABLE" ] || echo "  ($TABLE is missing)"
    fail=1
fi
if [ $fail -ne 0 ]; then
    echo "check_progs: FAILED"
    exit 1
fi
echo "check_progs: OK ($(wc -l <"$tmp/progs") programs, each run by a script listed in $TABLE)"
