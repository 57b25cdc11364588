#!/bin/sh
# Many connections in one server process (tests/prog_many.c), under the shim
# (over kernel TCP with RUDP_NO_SHIM=1): two client processes open 2,000
# connections each at once, one byte each way on all 4,000; the server holds
# them idle 3 s and reports what they cost; then every client closes and the
# server sees every EOF. Asserts the counts (answered, all open at once, all
# closed) and a memory bound of 64 KiB per connection (RSS growth of the
# server process, engine included; the README gives the measured figure).
# fds: the server holds 2 per connection under the shim (its socket and the
# engine's bridge end), each client 3 (and its UDP socket), so 4,000 fit the
# usual 20,000-fd limit with room. CPU while idle is printed, not asserted.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_many
PER=${MANY_PER_CLIENT:-2000}
N=$((PER * 2))

bg_app_io server /dev/null "$T/srv.out" env RUDP_STATS=1 "$BIN/prog_many" server "$N" 3
SRV=$LAST_PID
wait_line "$T/srv.out" '^port ' 10 || fail "server did not say its port: $(cat "$T/server.log")"
P=$(sed -n 's/^port //p' "$T/srv.out")
mkfifo "$T/hold"
# client 1 on one engine, with its counters: its connects never wait for
# a handshake answer of its own engine (engines.c: wait_answers)
bg_app_io client1 "$T/hold" "$T/cli1.out" env RUDP_ENGINES=1 RUDP_STATS=1 \
    "$BIN/prog_many" client "$P" "$PER"
CLI1=$LAST_PID
bg_app_io client2 "$T/hold" "$T/cli2.out" "$BIN/prog_many" client "$P" "$PER"
CLI2=$LAST_PID
exec 7>"$T/hold" # the clients hold their connections until this closes
wait_line "$T/srv.out" '^idle:' 120 ||
    { cat "$T/srv.out" "$T/server.log" "$T/client1.log" "$T/client2.log"; fail "the server did not answer $N connections"; }
for c in 1 2; do
    grep -q "^client: $PER round trips" "$T/cli$c.out" || fail "client $c: $(cat "$T/cli$c.out" "$T/client$c.log")"
done
grep "^answered $N connections" "$T/srv.out" || fail "server: $(cat "$T/srv.out")"
line=$(grep '^idle:' "$T/srv.out")
echo "$line"
exec 7>&-
wait_exit "$SRV" 120 || fail "the server did not see every peer close: $(tail -n 3 "$T/srv.out" "$T/server.log")"
grep "^all $N peers closed" "$T/srv.out" || fail "server: $(tail -3 "$T/srv.out")"
per=$(echo "$line" | sed -n 's/.*memory per connection \([0-9-]*\) bytes.*/\1/p')
[ -n "$per" ] && [ "$per" -le 65536 ] || fail "memory per connection $per bytes (bound 64 KiB)"
if [ "$SHIM_MODE" = shim ]; then
    # The fan-in burst, by the server engine's counters (RUDP_STATS at its
    # exit): nothing dropped by its UDP receive buffers. The listener's
    # buffer holds the whole burst (see grow_buffers in shim/interpose/sock.c), so
    # this does not depend on how fast the engine reads. Retransmissions
    # and probe timeouts are printed (they depend on the machine's load).
    # the server's own block: a keeper that finishes its closes prints a second
    stats_lines "$T/server.log" >"$T/server.stats"
    st=$(grep '^engine:' "$T/server.stats" | head -1) && [ -n "$st" ] || fail "no engine stats from the server: $(tail -3 "$T/server.log")"
    drops=$(sed -n 's/^udp: .* \([0-9][0-9]*\) dropped by a full receive buffer.*/\1/p' "$T/server.stats" | head -1)
    echo "server (engine threads $(echo "$st" | sed -n 's/.*engine: threads \([^,;]*\)[,;].*/\1/p')):" \
        "$drops datagrams dropped by a full receive buffer;" \
        "$(sed -n 's/.*\(packets declared lost [0-9]*\).*\(probe timeouts [0-9]*\).*/\1, \2/p' "$T/server.stats" | head -1)"
    [ "$drops" = 0 ] || fail "the fan-in burst overflowed the server's receive buffer: $(grep '^udp:' "$T/server.stats" | head -1)"
    wait_exit "$CLI1" 60 || fail "client 1 did not exit: $(tail -n 3 "$T/client1.log")"
    waits=$(stats_lines "$T/client1.log" |
        sed -n "s/^engine: .*connects that waited for another engine's handshake answer \([0-9]*\).*/\1/p" | head -1)
    [ "$waits" = 0 ] || fail "client 1, one engine: ${waits:-no count of} connects waited for a handshake answer: $(stats_lines "$T/client1.log" | grep '^engine:')"
    echo "ok: client 1's $PER connects on one engine never waited for a handshake answer"
    if [ "${RUDP_ENGINES:-1}" -gt 1 ]; then
        # t_engines.sh: the listener's connections spread over every engine
        each=$(echo "$st" | sed -n 's/.*engine: threads [0-9]* (connections each \([0-9/]*\)).*/\1/p')
        [ "$(echo "$each" | tr / '\n' | grep -c '^[1-9]')" = "$RUDP_ENGINES" ] ||
            fail "connections per engine $each: not spread over $RUDP_ENGINES engines"
        echo "ok: connections spread over $RUDP_ENGINES engines: $each"
    fi
fi
echo "ok: $N connections from 2 processes answered, held, closed; $per bytes per connection"
