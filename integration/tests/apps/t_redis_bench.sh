#!/bin/sh
# redis-server <-> redis-benchmark and redis-cli, both ends under the shim
# (kernel TCP with RUDP_NO_SHIM=1): `redis-benchmark -n 10000 -c 50` with
# its default test list (20 tests: PING_INLINE ... LRANGE_600, MSET), every
# test completing its 10,000 requests (a CSV line each, exit 0, no error);
# then a 1 MiB random binary value SET with `redis-cli -x` and read back
# with GET, sha256 equal; redis-server ends on SIGTERM with status 0.  In
# ASan runs (make asan) -n is 5000: the ASan engine does about 7,000
# requests/s here, so the 20 tests would last over 200 s.  -n was 50000:
# that took 37 s on an idle 2-core VM but 105-181 s with both cores busy,
# against the 240 s bound; 10,000 requests per test (200,000 in all, 50
# clients) still exercise the same event loop and take a fifth of that.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
compat_deps

REQS=10000
if [ "$ASAN_RUN" = 1 ]; then
    REQS=5000
    echo "note: ASan run: -n $REQS"
fi
P=$(free_port)
bg_app redis redis-server --port "$P" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --dir "$T" --protected-mode no --unixsocket '' --logfile ''
REDIS=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

t0=$(ms_now)
rc=0
run_app_t 240 redis-benchmark -h 127.0.0.1 -p "$P" -n "$REQS" -c 50 --csv \
    >"$T/bench.csv" 2>"$T/bench.err" || rc=$?
cat "$T/bench.csv"
[ "$rc" = 0 ] || { show "$T/bench.err" "$T/redis.log"; fail "redis-benchmark exited $rc"; }
! grep -qi 'error' "$T/bench.csv" "$T/bench.err" || { show "$T/bench.err"; fail "redis-benchmark reported an error"; }
n=$(grep -c '^"[A-Z]' "$T/bench.csv" || true)
[ "$n" = 20 ] || fail "redis-benchmark: $n result lines, want 20"
echo "ok: redis-benchmark -n $REQS -c 50: $n tests, $(secs_since "$t0") s"

head -c 1048576 /dev/urandom >"$T/value"
rc=0
out=$(run_app redis-cli -h 127.0.0.1 -p "$P" -x SET big <"$T/value" 2>&1) || rc=$?
[ "$rc" = 0 ] && [ "$out" = OK ] || fail "redis-cli -x SET: exit $rc, said: $out"
len=$(run_app redis-cli -h 127.0.0.1 -p "$P" STRLEN big)
[ "$len" = 1048576 ] || fail "STRLEN big = $len, want 1048576"
# --raw prints the value and a newline.
run_app redis-cli -h 127.0.0.1 -p "$P" --raw GET big >"$T/got.nl" || fail "redis-cli GET exited $?"
[ "$(stat -c %s "$T/got.nl")" = 1048577 ] || fail "GET returned $(stat -c %s "$T/got.nl") bytes, want 1048576 + newline"
head -c 1048576 "$T/got.nl" >"$T/got"
[ "$(sha "$T/got")" = "$(sha "$T/value")" ] || fail "GET big: sha256 differs from what SET stored"
echo "ok: 1 MiB binary value through redis-cli SET/GET, sha256 equal"

rc=0
stop_app "$REDIS" 20 || rc=$?
[ "$rc" = 0 ] || { show "$T/redis.log"; fail "redis-server exited $rc on SIGTERM"; }
echo "ok: redis-server ends on SIGTERM"
