#!/bin/sh
# RUDP_FALLBACK on loopback, against a plain web server (python3 -m
# http.server, kernel TCP, no shim): nothing listens for UDP on its port, so
# the rudp handshake draws an ICMP port unreachable at once.
#   1. curl under the shim (default settings: RUDP_FALLBACK=tcp) fetches a
#      1 MiB file, sha256 equal; time to first byte printed; the shim's log
#      says why it went over kernel TCP and that it connected so, and its
#      stats count one fallback connect (rudp refused).
#   2. python under the shim: a blocking connect, then a non-blocking one
#      (asyncio, epoll) in the same process: both fetch the file; the second
#      goes straight to kernel TCP (remembered, counted).
#   3. RUDP_FALLBACK=none: curl fails with "Connection refused" (exit 7),
#      the log has no kernel TCP attempt, and its warn line names the plain
#      TCP server listening there; the time is printed beside the
#      fallback's.
#   4. keyed (RUDP_KEY_FILE, no RUDP_FALLBACK): no fallback, refused as with
#      none; keyed with RUDP_FALLBACK=tcp asked: the fetch works over TCP.
# Under RUDP_NO_SHIM=1 there is nothing to fall back from: skipped as a
# whole (exit 77, "skip:"), the plain runs prove nothing here.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "RUDP_FALLBACK needs the shim; nothing to run over kernel TCP"

mkdir "$T/www"
head -c 1048576 /dev/urandom >"$T/www/f.bin"
want=$(sha "$T/www/f.bin")
P=$(free_port)
start_bg http "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$P"
wait_tcp "$P" 20
url="http://127.0.0.1:$P/f.bin"

# 1. curl, default settings
rc=0
ttfb=$(run_app env RUDP_LOG=info RUDP_STATS=1 curl -sS --fail --max-time 50 -o "$T/got" \
    -w '%{time_starttransfer}' "$url" 2>"$T/curl.err") || rc=$?
[ "$rc" = 0 ] || { show "$T/curl.err" "$T/http.log"; fail "curl exited $rc"; }
[ "$(sha "$T/got")" = "$want" ] || fail "curl: sha256 differs"
grep -q "connect to 127.0.0.1:$P: no rudp listener (ICMP port unreachable); trying kernel TCP" \
    "$T/curl.err" || { show "$T/curl.err"; fail "curl: no log line saying why TCP was tried"; }
grep -q "connect to 127.0.0.1:$P: connected over kernel TCP" "$T/curl.err" ||
    { show "$T/curl.err"; fail "curl: no log line saying it connected over kernel TCP"; }
grep -q "fallback to kernel TCP: connects 1 (rudp refused 1, unanswered 0)" "$T/curl.err" ||
    { show "$T/curl.err"; fail "curl: the stats do not count one refused-then-TCP connect"; }
echo "ok: curl under the shim -> plain http.server: 1 MiB, sha256 equal, time to first byte ${ttfb}s (fallback: ICMP refusal)"

# 2. python: blocking, then asyncio (remembered)
rc=0
run_app env RUDP_LOG=info RUDP_STATS=1 "$PY" "$(dirname "$0")/fbclient.py" 127.0.0.1 "$P" /f.bin \
    blocking,asyncio >"$T/py.out" 2>"$T/py.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/py.out" "$T/py.err"; fail "python client exited $rc"; }
grep -q "^blocking [0-9]* 1048576$" "$T/py.out" || { show "$T/py.out"; fail "blocking fetch"; }
grep -q "^asyncio [0-9]* 1048576$" "$T/py.out" || { show "$T/py.out"; fail "asyncio fetch"; }
grep -q "fallback to kernel TCP: connects 1 (rudp refused 1, unanswered 0), remembered 1;" \
    "$T/py.err" || { show "$T/py.err"; fail "python: want 1 fallback connect, then 1 remembered"; }
echo "ok: python under the shim: $(tr '\n' ';' <"$T/py.out") (ms, bytes); the second connect remembered"

# 3. RUDP_FALLBACK=none
t0=$(ms_now)
rc=0
run_app env RUDP_LOG=info RUDP_FALLBACK=none curl -sS --max-time 50 -o /dev/null "$url" \
    2>"$T/none.err" || rc=$?
ms=$(( $(ms_now) - t0 ))
[ "$rc" = 7 ] || { show "$T/none.err"; fail "RUDP_FALLBACK=none: curl exited $rc, want 7"; }
grep -q "Connection refused\|Couldn't connect" "$T/none.err" || { show "$T/none.err"; fail "none: not refused"; }
! grep -q "trying kernel TCP\|over kernel TCP, not rudp" "$T/none.err" || { show "$T/none.err"; fail "none: a kernel TCP attempt was made"; }
grep -q "warn: .*connect failed: Connection refused: a plain TCP server listens at 127.0.0.1:$P, not rudp" \
    "$T/none.err" || { show "$T/none.err"; fail "none: no warn line naming the plain server"; }
echo "ok: RUDP_FALLBACK=none: curl refused (exit 7) in $ms ms, no kernel TCP attempt; a warn line says why"

# 4. keyed
make_key "$T/key"
rc=0
run_app env RUDP_LOG=info RUDP_KEY_FILE="$T/key" curl -sS --max-time 50 -o /dev/null "$url" \
    2>"$T/keyed.err" || rc=$?
[ "$rc" = 7 ] || { show "$T/keyed.err"; fail "keyed: curl exited $rc, want 7 (no fallback unless asked)"; }
! grep -q "trying kernel TCP\|over kernel TCP, not rudp" "$T/keyed.err" || { show "$T/keyed.err"; fail "keyed: a kernel TCP attempt was made"; }
echo "ok: keyed, RUDP_FALLBACK unset: refused, no kernel TCP attempt"
rc=0
run_app env RUDP_LOG=info RUDP_KEY_FILE="$T/key" RUDP_FALLBACK=tcp curl -sS --fail --max-time 50 \
    -o "$T/got2" "$url" 2>"$T/keyed2.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/keyed2.err"; fail "keyed with RUDP_FALLBACK=tcp: curl exited $rc"; }
[ "$(sha "$T/got2")" = "$want" ] || fail "keyed with RUDP_FALLBACK=tcp: sha256 differs"
grep -q "connected over kernel TCP" "$T/keyed2.err" || { show "$T/keyed2.err"; fail "keyed+tcp: no fallback logged"; }
echo "ok: keyed with RUDP_FALLBACK=tcp asked: fetched over kernel TCP, sha256 equal"

# 5. a fd limit below the shim's fd base (700): the TCP socket kept for the
# fallback, and a relay's copy of the bridge (the engines' own table), were
# copies at or above 700 that the kernel refused (EINVAL). Before
# 2026-11-29 curl timed out with the engines' fds in the program's table
# (no fallback at all) and read EOF with a table of their own (the relay
# not started: the connection dropped).
for tab in shared own; do
    rc=0
    ( ulimit -n 128 && run_app env RUDP_LOG=info RUDP_FD_TABLE=$tab curl -sS --fail --max-time 20 \
        -o "$T/low.$tab" "$url" ) 2>"$T/low.$tab.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/low.$tab.err"; fail "ulimit -n 128, RUDP_FD_TABLE=$tab: curl exited $rc"; }
    [ "$(sha "$T/low.$tab")" = "$want" ] || fail "ulimit -n 128, RUDP_FD_TABLE=$tab: sha256 differs"
    grep -q "connected over kernel TCP" "$T/low.$tab.err" ||
        { show "$T/low.$tab.err"; fail "ulimit -n 128, $tab: no fallback logged"; }
done
echo "ok: at ulimit -n 128, the engines' fds in the program's table and in their own: fetched over kernel TCP, sha256 equal"
