#!/bin/sh
# A short chat among alice, bob and carol, with delivery receipts, printed as
# one transcript.  chatd and the three scripted clients (chatload) run over
# kernel TCP, or all under the shim when RUDP_CHAT_SHIM=1.  Once everything
# is said and acknowledged, chatd gets SIGTERM and says goodbye.  Exits 0
# when every line reached both others, every sender got "delivered 2/2" for
# each of its lines, every client saw the goodbye, and chatd exited 0.
. "$(dirname "$0")/../lib/lib.sh"
. "$ROOT/integration/chat/chatlib.sh"

printf '%s\n' "hi all, alice here" \
    "this server is plain TCP code; it has no idea what carries its bytes" >"$T/alice.txt"
printf '%s\n' "hey alice!" \
    "each line we send comes back to us as a receipt once the others' transport has it" >"$T/bob.txt"
printf '%s\n' "hello both" "bye for now" >"$T/carol.txt"

chatd_start -v
pids=""
delay=0
for who in alice bob carol; do
    # Each speaks every 600 ms, 200 ms after the previous one, then stays
    # until the server says goodbye (-k).
    chat_start "$who" "$BIN/chatload" -p "$CHAT_PORT" -n "$who" -f "$T/$who.txt" -i 600 \
        -d "$delay" -w 3 -k -t 20 -o "$T/$who.out"
    pids="$pids $LAST_PID"
    delay=$((delay + 200))
done
for who in alice bob carol; do
    wait_log "$T/$who.out" '^# started' 10 || fail "$who was not admitted"
done
# While they talk: which sockets does chatd hold?  Over kernel TCP three
# connections; under the shim no TCP connection at all (either way a TCP
# listener: under the shim it takes plain clients, RUDP_ACCEPT_TCP).
tcp=$(ss -H -tanp 2>/dev/null | grep -v '^LISTEN' | grep -c "pid=$CHATD_PID," || true)
udp=$(ss -H -uanp 2>/dev/null | grep -c "pid=$CHATD_PID," || true)

for who in alice bob carol; do
    wait_lines "$T/$who.out" '^< [0-9]+ [a-z]+: ' 4 15 || fail "$who did not hear both others"
    wait_lines "$T/$who.out" '^< [0-9]+ \* delivered ' 2 15 || fail "$who lacks receipts"
done
kill -TERM "$CHATD_PID"
wait_gone 10 "$CHATD_PID" || fail "chatd still running after SIGTERM"
# shellcheck disable=SC2086
wait_gone 10 $pids || fail "clients still running after the goodbye"
rc=0
wait "$CHATD_PID" || rc=$?

echo
echo "=== chat demo $CHAT_MODE: chatd on port $CHAT_PORT; its sockets: $tcp TCP connections, $udp UDP"
echo "    (> a line sent; < a line received: 'NICK: text' from others, '* ...' from the server)"
# One transcript in time order, from the first message on, without the
# joining chatter (welcome, joined, renames).
for who in alice bob carol; do
    sed -n -e 's/^\([<>]\) \([0-9]*\) \(.*\)$/\2 '"$who"' \1 \3/p' \
        -e 's/^# eof \([0-9]*\)$/\1 '"$who"' < (EOF: the server closed the connection)/p' "$T/$who.out"
done | grep -v -e ' < \* welcome ' -e ' < \* [^ ]* joined ' -e ' < \* [^ ]* is now ' \
    -e ' < \* you are now ' | sort -n -k1,1 -s | awk '
    $3 == ">" && t0 == "" { t0 = $1 }
    t0 != "" {
        text = $0; sub(/^[0-9]+ [a-z]+ [<>] /, "", text)
        printf "  %6.3fs  %-6s %s %s\n", ($1 - t0) / 1e6, $2, $3, text
    }'
echo "=== chatd said:"
sed 's/^/    /' "$T/chatd.log"

ok=1
for who in alice bob carol; do
    grep -q '^# exit 0' "$T/$who.out" || { echo "demo: $who missed the goodbye or EOF" >&2; ok=0; }
    n=$(grep -c '^< [0-9]* \* delivered 2/2 #' "$T/$who.out" || true)
    [ "$n" = 2 ] || { echo "demo: $who got $n of 2 full receipts" >&2; ok=0; }
done
[ "$rc" = 0 ] || { echo "demo: chatd exited $rc" >&2; ok=0; }
[ "$ok" = 1 ] || fail "chat demo"
echo "=== chat demo ok: 6 lines, each delivered to both others, 6 receipts 2/2, goodbye to all"
