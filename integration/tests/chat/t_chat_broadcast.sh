#!/bin/sh
# Issue item 1: chatd and 100 clients, each sending 20 messages.  Every client
# receives every other client's messages exactly once, in each sender's order,
# and none of its own; every sender gets a receipt "delivered 99/99" for each
# of its 20 messages.  Same script under the shim with RUDP_CHAT_SHIM=1.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

N=${CHAT_CLIENTS:-100}
C=20

chatd_start
pids=""
logs=""
i=1
while [ "$i" -le "$N" ]; do
    nick=$(printf 'c%03d' "$i")
    # Everyone waits until all N are online, so each message has N-1 recipients.
    chat_start "$nick" "$BIN/chatload" -p "$CHAT_PORT" -n "$nick" -c "$C" -i 5 \
        -w "$N" -e $(( (N - 1) * C )) -t 45 -o "$T/$nick.out"
    pids="$pids $LAST_PID"
    logs="$logs $T/$nick.out"
    i=$((i + 1))
done

# shellcheck disable=SC2086
wait_gone 50 $pids || { chat_dump $logs; fail "clients still running after 50 s"; }
alive "$CHATD_PID" || fail "chatd died: $(tail -5 "$T/chatd.log")"
# shellcheck disable=SC2086
chat_check broadcast --count "$C" $logs || { chat_dump $logs; fail "broadcast check"; }
echo "ok: $N clients x $C messages, all delivered exactly once, in order, with receipts"
