#!/bin/sh
# Issue item 4: a client that stops reading does not delay the others.  Four
# clients send 2000 messages of 1000 bytes each (8 MB in all, far more than
# any transport buffers for one reader) while a fifth, with a small receive
# buffer, reads nothing.  The others must get every message within 2 s of its
# sending, the slow one is dropped "too slow" and the others are told, the
# slow one (once it reads again) finds the reason and EOF, and every sender
# gets all its receipts within 4 s.
# Two rounds, one per drop rule: the bound on unacknowledged output (-q 1 MiB), and the
# no-progress timeout (-s 1.5 with an effectively unbounded queue).
# The queue bound must leave a normal reader room for its transport's acks
# to lag: each receives ~3 MB/s here, and under the shim it is the reader's
# own engine thread that acknowledges, so a loaded host that leaves it off
# the CPU for 100 ms puts it ~300 KB behind. At 64 KiB (20 ms of traffic)
# normal readers were dropped as too slow on a busy machine. The slow one,
# whose rudp window stays at its initial 256 KiB, passes 1 MiB all the same.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

C=2000
BOUND_MS=2000
RECEIPT_MS=4000

round() {
    tag=$1; shift
    chatd_start "$@"
    chat_start "slow-$tag" "$BIN/chatload" -p "$CHAT_PORT" -n slow -S -r 4096 -t 30 \
        -o "$T/slow-$tag.out"
    slow_pid=$LAST_PID
    wait_log "$T/slow-$tag.out" '^# stalled' 10 || { chat_dump "$T/slow-$tag.out"; fail "slow did not stall"; }
    pids=""
    logs=""
    for n in n1 n2 n3 n4; do
        chat_start "$n-$tag" "$BIN/chatload" -p "$CHAT_PORT" -n "$n" -c "$C" -i 1 -s 1000 \
            -w 5 -e $((3 * C)) -t 30 -o "$T/$n-$tag.out"
        pids="$pids $LAST_PID"
        logs="$logs $T/$n-$tag.out"
    done
    wait_log "$T/n1-$tag.out" '^< [0-9]+ \* dropped slow: too slow' 15 ||
        { chat_dump $logs; fail "round $tag: slow client never dropped"; }
    # Let the slow one read again: it must find everything it was owed up to
    # the drop, the reason, then EOF.
    kill -USR1 "$slow_pid"
    # shellcheck disable=SC2086
    wait_gone 30 $pids "$slow_pid" || { chat_dump $logs "$T/slow-$tag.out"; fail "round $tag: clients still running"; }
    alive "$CHATD_PID" || fail "chatd died: $(tail -5 "$T/chatd.log")"
    grep '^chatd: dropped' "$T/chatd.log" || true
    # shellcheck disable=SC2086
    chat_check slow --count "$C" --slow slow --bound "$BOUND_MS" --receipt-bound "$RECEIPT_MS" \
        $logs "$T/slow-$tag.out" || { chat_dump $logs "$T/slow-$tag.out"; fail "round $tag: slow check"; }
    kill -TERM "$CHATD_PID"
    wait_gone 10 "$CHATD_PID" || fail "chatd did not exit"
    mv "$T/chatd.log" "$T/chatd-$tag.log"
}

round queue -q 1024 -s 60
grep -q 'too slow (more than 1024 KiB behind)' "$T/chatd-queue.log" || fail "round queue: dropped for another reason"
round stall -q 1000000 -s 1.5
grep -q 'too slow (no progress for 1.5 s)' "$T/chatd-stall.log" || fail "round stall: dropped for another reason"
echo "ok: a stalled reader was dropped by either rule without delaying the others"
