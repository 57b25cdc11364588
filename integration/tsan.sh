#!/bin/sh
# make tsan: the multi-threaded client test with the ThreadSanitizer shim
# (and a TSan-built test program), with the server in a thread and in a
# forked process. Any ThreadSanitizer report fails it.
set -eu
B=${1:-build/tsan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
pre="$(gcc -print-file-name=libtsan.so):$B/librudp_shim.so"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
for mode in "" "-f"; do
    echo "== prog_threads $mode under the TSan shim"
    if ! LD_PRELOAD="$pre" TSAN_OPTIONS="halt_on_error=0 exitcode=66" \
        timeout 300 "$B/bin/prog_threads" $mode >"$out" 2>&1; then
        rc=1
    fi
    tail -3 "$out"
    if grep -q "ThreadSanitizer" "$out"; then
        grep -A30 "WARNING: ThreadSanitizer" "$out" | head -60
        rc=1
    fi
done
[ "$rc" = 0 ] && echo "tsan: clean" || echo "tsan: FAILED"
exit "$rc"
