#!/bin/sh
# Issue item 2: chatd -m 10 and 30 clients.  All 30 are accepted (none
# refused), the 20 beyond the cap are told they wait and are admitted in
# arrival order as slots free, never more than 10 are online, and each one,
# once admitted, sends its messages and gets their receipts.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

N=30
MAX=10
C=5

chatd_start -m "$MAX"
pids=""
logs=""
i=1
while [ "$i" -le "$N" ]; do
    nick=$(printf 'c%02d' "$i")
    # Nobody sends before $T/go exists, so the first 10 hold their slots until
    # all 30 are connected and the other 20 really wait.
    chat_start "$nick" "$BIN/chatload" -p "$CHAT_PORT" -n "$nick" -c "$C" -i 50 \
        -G "$T/go" -t 40 -o "$T/$nick.out"
    pids="$pids $LAST_PID"
    logs="$logs $T/$nick.out"
    # Arrival order is launch order: the next client starts only once the
    # server has answered this one (welcome or waiting).
    wait_log "$T/$nick.out" '^< [0-9]+ \* (welcome|waiting)' 10 ||
        { chat_dump "$T/$nick.out"; fail "$nick got neither welcome nor waiting"; }
    i=$((i + 1))
done
touch "$T/go"

# shellcheck disable=SC2086
wait_gone 40 $pids || { chat_dump $logs; fail "clients still running after 40 s"; }
alive "$CHATD_PID" || fail "chatd died: $(tail -5 "$T/chatd.log")"
# shellcheck disable=SC2086
chat_check cap --count "$C" --max "$MAX" $logs || { chat_dump $logs; fail "cap check"; }
echo "ok: $N clients through a cap of $MAX, admitted in arrival order, none refused"
