#!/bin/sh
# Issue item 3: SIGTERM while 20 clients are sending.  chatd stops accepting
# and reading, delivers every message it had read to every recipient with its
# receipt, then sends the goodbye, closes, and exits 0.  Every client sees the
# goodbye as its last line, then EOF; for every sender, every receiver got the
# same prefix 1..L of its messages, and the sender has receipts #1..#L, each
# delivered to all.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

N=20

chatd_start
pids=""
logs=""
i=1
while [ "$i" -le "$N" ]; do
    nick=$(printf 'c%02d' "$i")
    # -k: keep sending until the server's goodbye, then read to EOF.
    chat_start "$nick" "$BIN/chatload" -p "$CHAT_PORT" -n "$nick" -c 100000 -i 10 \
        -w "$N" -k -t 40 -o "$T/$nick.out"
    pids="$pids $LAST_PID"
    logs="$logs $T/$nick.out"
    i=$((i + 1))
done

# The load is running once every client has sent 30 messages.
for f in $logs; do
    wait_lines "$f" '^> ' 30 20 || { chat_dump "$f"; fail "load did not start: $f"; }
done
kill -TERM "$CHATD_PID"

wait_gone 15 "$CHATD_PID" || fail "chatd still running 15 s after SIGTERM"
rc=0
wait "$CHATD_PID" || rc=$?
[ "$rc" = 0 ] || fail "chatd exited $rc after SIGTERM: $(tail -5 "$T/chatd.log")"
grep -q '^chatd: shutdown complete' "$T/chatd.log" || fail "no shutdown summary"
# shellcheck disable=SC2086
wait_gone 15 $pids || { chat_dump $logs; fail "clients still running after the shutdown"; }
# shellcheck disable=SC2086
chat_check shutdown $logs || { chat_dump $logs; fail "shutdown check"; }
grep '^chatd: ' "$T/chatd.log" | tail -2
echo "ok: SIGTERM under load, goodbye and EOF everywhere, nothing accepted was lost"
