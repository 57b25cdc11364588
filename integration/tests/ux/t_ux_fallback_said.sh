#!/bin/sh
# Issue 34, item 1: a client under the shim whose server does not run it
# gets its connection over kernel TCP (RUDP_FALLBACK=tcp, the default
# without a key), and a user who asked for rudp must learn that without
# asking: curl under the shim at the default log level fetches three files
# from a plain python3 http.server (no shim; HTTP/1.0, one connection per
# file, so three connects in one process):
#  - every file arrives (cmp);
#  - curl's stderr holds exactly one warn line, naming the destination
#    (127.0.0.1:PORT), that it went over kernel TCP, not rudp, and why (no
#    rudp listener: a plain TCP server?);
#  - RUDP_STATS counts the three (connects + remembered = 3).
# The old code said nothing at the default level (it logged at info).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "the fallback to kernel TCP is the shim's"

mkdir "$T/www"
for f in a b c; do head -c 20000 /dev/urandom >"$T/www/$f.bin"; done
P=$(free_port)
start_bg plain "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$P"
wait_tcp "$P" 20

U=http://127.0.0.1:$P
rc=0
RUDP_STATS=1 run_app_t 60 curl -sS -o "$T/a" "$U/a.bin" -o "$T/b" "$U/b.bin" -o "$T/c" "$U/c.bin" \
    2>"$T/curl.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/curl.err"; fail "curl exited $rc"; }
for f in a b c; do cmp -s "$T/$f" "$T/www/$f.bin" || fail "$f.bin differs"; done
echo "ok: three files over kernel TCP from a plain server"

grep ' warn: ' "$T/curl.err" >"$T/warn" || true
sed 's/^/    /' "$T/warn"
n=$(wc -l <"$T/warn")
[ "$n" = 1 ] || { show "$T/curl.err"; fail "$n warn lines, want exactly 1 (once per destination)"; }
grep -q "connect to 127\.0\.0\.1:$P: .*over kernel TCP, not rudp" "$T/warn" ||
    fail "the warn line does not name 127.0.0.1:$P and kernel TCP"
grep -q "no rudp listener" "$T/warn" || fail "the warn line does not say why (no rudp listener)"
grep -q "plain TCP server" "$T/warn" || fail "the warn line does not name the likely cause"
echo "ok: one warn line at the default level, naming the destination and why"

conn=$(grep -o 'fallback to kernel TCP: connects [0-9]*' "$T/curl.err" | grep -o '[0-9]*$' || true)
rem=$(grep -o 'fallback to kernel TCP: .*remembered [0-9]*' "$T/curl.err" | grep -o '[0-9]*$' || true)
[ -n "$conn" ] && [ -n "$rem" ] || { show "$T/curl.err"; fail "no fallback counters in RUDP_STATS"; }
[ $((conn + rem)) = 3 ] || { show "$T/curl.err"; fail "counted $conn + $rem connects over kernel TCP, want 3"; }
echo "ok: counted: $conn by the race, $rem remembered"
