#!/bin/sh
# make demo: real, unmodified programs talking over rudp, with proof that
# what crossed the wire was UDP: the sockets ss sees, and the engines'
# counters (RUDP_STATS=1) printed when each program exits.
. "$(dirname "$0")/lib/lib.sh"
say() { printf '\n== %s\n' "$*"; }

[ -f "$SHIM" ] || fail "build the shim first (make)"
mkdir -p "$T/www"
head -c 20000000 /dev/urandom > "$T/www/file.bin"
port=$(free_port)

say "1. python3 -m http.server under the shim, port $port"
cd "$T/www"
start_bg http under_shim env RUDP_STATS=1 python3 -m http.server --bind 127.0.0.1 "$port"
http_pid=$LAST_PID
cd "$ROOT"
wait_udp "$port"
echo "ss -uan (UDP) on port $port:"
ss -H -uanp "sport = :$port" | sed 's/^/    /'
echo "ss -tan (TCP) on port $port: $(ss -H -tan "sport = :$port" | grep -vc '^LISTEN') connections" \
    "(a TCP listener there takes plain clients, RUDP_ACCEPT_TCP)"

say "2. curl fetches 20 MB over rudp"
start=$(date +%s%N)
RUDP_STATS=1 under_shim curl -s -o "$T/got.bin" "http://127.0.0.1:$port/file.bin" 2>"$T/curl.stats"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$(sha "$T/www/file.bin")" = "$(sha "$T/got.bin")" ] || fail "sha256 differs"
echo "    20 MB in ${ms} ms, sha256 equal: $(sha "$T/got.bin" | cut -c1-16)..."
echo "    curl's engine at exit:"
sed 's/^/    /' "$T/curl.stats"
kill "$http_pid" 2>/dev/null || true
sleep 0.3

say "3. the chat server (integration/chat) with scripted clients, all under the shim"
RUDP_CHAT_SHIM=1 sh "$ROOT/integration/chat/demo.sh"

say "done: every byte above travelled as UDP datagrams of the rudp protocol"
