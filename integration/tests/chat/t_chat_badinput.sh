#!/bin/sh
# Bad input: over-long lines, binary junk (NUL, ESC, DEL, bytes >= 0x80),
# CRLF, empty lines, invalid and reserved nicks, unknown commands, and
# clients that vanish mid-line (by FIN, by reset, or without a word).  chatd
# must survive, reject or sanitize exactly as documented, and the two
# watching clients must see exactly the expected lines and nothing of the
# partial ones.  The byte streams and expectations live in chatcheck.py.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

chat_check gen-bad "$T"
chatd_start

for w in w1 w2; do
    # 5 lines from bad, 1 from vanish, 1 from ok.
    chat_start "$w" "$BIN/chatload" -p "$CHAT_PORT" -n "$w" -e 7 -t 30 -o "$T/$w.out"
    eval "${w}_pid=\$LAST_PID"
    wait_log "$T/$w.out" '^< [0-9]+ \* you are now' 10 || fail "$w not admitted"
done

# One at a time, each after the watchers were told the previous one left,
# so the watchers' transcripts have a fixed order.
bad_client() {
    name=$1; shift
    chat_start "$name" "$BIN/chatload" -p "$CHAT_PORT" -n "$name" -R "$T/$name.bin" "$@" \
        -t 20 -o "$T/$name.out"
    wait_gone 20 "$LAST_PID" || fail "$name still running"
    wait_log "$T/w1.out" "^< [0-9]+ \\* $name left" 10 ||
        { chat_dump "$T/w1.out" "$T/$name.out"; fail "watcher not told that $name left"; }
}
bad_client bad                  # ends with /quit, reads to EOF
bad_client vanish -V            # a line, then half a line, then FIN
bad_client rst -V -X            # half a line, then RST
bad_client empty -V             # nothing at all

alive "$CHATD_PID" || fail "chatd died: $(tail -5 "$T/chatd.log")"
# Still serving: a well-behaved client gets its message through.
chat_start ok "$BIN/chatload" -p "$CHAT_PORT" -n ok -c 1 -t 20 -o "$T/ok.out"
# shellcheck disable=SC2154
wait_gone 20 "$LAST_PID" "$w1_pid" "$w2_pid" ||
    { chat_dump "$T/w1.out" "$T/ok.out"; fail "clients still running"; }
alive "$CHATD_PID" || fail "chatd died: $(tail -5 "$T/chatd.log")"
chat_check badinput "$T/w1.out" "$T/w2.out" "$T/bad.out" "$T/vanish.out" "$T/rst.out" \
    "$T/empty.out" "$T/ok.out" || { chat_dump "$T/w1.out" "$T/bad.out"; fail "badinput check"; }
echo "ok: chatd survived bad input; the others saw exactly the expected lines"
