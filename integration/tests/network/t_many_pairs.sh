#!/bin/sh
# Many connection pairs in one busy process (issue 30, finding 2): both
# ends of N connections in one process (tests/prog_many.c "pairs": opened
# 64 at a time, so each starts with a quiet engine's round trip and a small
# probe timeout), all held idle 5 s, then one byte each way on every pair at
# once, then the program exits with all of them open (a keeper finishes
# them). The engine serving both ends answers the burst late, by hundreds
# of ms; that is a busy peer, not a lost path.
#
# Asserts, by the shim's log lines and RUDP_STATS counters (not by time):
# no connection "moved to a new socket" (a1af020 moved ~2,000 of 3,500:
# after an idle period the silence that makes a client move was counted
# from the last packet heard, seconds before its first probe); while the
# program ran nothing was reset and no ICMP error acted on (its counters:
# "resets sent 0 received 0", "acted on 0"); and the keeper finished every
# one of the 2N connections: each its line "closed (drained)", "(left in
# TIME_WAIT at exit)", "(FIN acked)" or "(reset in TIME_WAIT)". The last
# is TCP's too: a connection whose FIN exchange is done, its last ACK late,
# whose peer has drained and gone, hears a reset or an ICMP error for its
# next packet. The keeper's engine, 7,000 connections closing at once in
# turns of up to 590 ms under load, makes a few (0-200) of those; its
# reset and ICMP counters count them, so they are not what is asserted.
# The other side of it (seen once in a loaded make test: 297 of 7,000) is
# LAST_ACK's: a connection whose FIN's acknowledgement it had not read
# when its other end, having taken the FIN, drained; its FIN resent meets
# the closed port, "closed (an ICMP error)", as Linux's LAST_ACK meets a
# reset. That counts as finished only where the same pair's other end
# ended from TIME_WAIT.
#
# N is 3,500 (the issue's figure) when the fd limit allows (each pair holds
# 5 fds here: two app sockets, two bridge ends, a UDP socket), fewer
# otherwise, "skip:" below 1,000. The run takes ~10 s, plus the keeper's
# stay: at a1af020 a keeper stays 60 s after its last connection closed
# (issue 30 finding 6, fixed apart); its counters come at its end.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_many
[ "$SHIM_MODE" = shim ] || { echo "skip: about the shim's engine (RUDP_NO_SHIM=1)"; exit 77; }
hard=$(ulimit -Hn)
N=3500
if [ "$hard" != unlimited ] && [ $(((hard - 500) / 5)) -lt "$N" ]; then N=$(((hard - 500) / 5)); fi
[ "$N" -ge 1000 ] || { echo "skip: the fd limit ($hard) allows only $N pairs"; exit 77; }

bg_app_io pairs /dev/null "$T/pairs.out" env RUDP_STATS=1 RUDP_LOG=info \
    "$BIN/prog_many" pairs "$N" 5
PID=$LAST_PID
wait_exit "$PID" 120 || fail "prog_many pairs did not finish: $(tail -n 3 "$T/pairs.out" "$T/pairs.log")"
grep "^pairs: $N round trips" "$T/pairs.out" || fail "prog_many: $(cat "$T/pairs.out"; tail -3 "$T/pairs.log")"
# The keeper (the same log) says "keeper P done" once it has finished them.
wait_line "$T/pairs.log" 'info: keeper [0-9]+ done' 90 ||
    fail "no keeper finished the pairs: $(grep -v 'handshake\|closed' "$T/pairs.log" | tail -5)"

moved=$(grep -c 'moved to a new socket (' "$T/pairs.log" || true)
echo "$N pairs: $moved connections moved to a new socket"
stats_lines "$T/pairs.log" | grep '^\(connections\|dropped\|path\):'
[ "$moved" = 0 ] || fail "$moved connections moved to a new socket: $(grep -m 3 'moved to a new socket (' "$T/pairs.log")"
# both blocks: the program's at its exit, the keeper's at its end
stats_lines "$T/pairs.log" >"$T/pairs.stats"
[ "$(grep -c '^path: .*connections moved to a new socket 0,' "$T/pairs.stats")" = 2 ] ||
    fail "the path counters are not both 0: $(grep '^path:' "$T/pairs.stats")"
# the program's block (the first): nothing reset, no ICMP error acted on
grep -m 1 '^connections:' "$T/pairs.stats" | grep -q '; resets sent 0 received 0$' ||
    fail "resets while the program ran: $(grep -m 1 '^connections:' "$T/pairs.stats")"
grep -m 1 '^dropped:' "$T/pairs.stats" | grep -q 'icmp ignored [0-9]* acted on 0,' ||
    fail "ICMP errors acted on while the program ran: $(grep -m 1 '^dropped:' "$T/pairs.stats")"
# the keeper: every connection finished
grep -a 'rudp-keeper\[' "$T/pairs.log" | grep -ao ': closed ([^)]*)' |
    sort | uniq -c >"$T/pairs.closed"
cat "$T/pairs.closed"
ended=$(awk '{n += $1} END {print n + 0}' "$T/pairs.closed")
[ "$ended" = $((2 * N)) ] || fail "the keeper closed $ended connections of $((2 * N))"
# A connection closed by an ICMP error (its FIN resent to a port no longer
# there, twice) finished too when its own other end, the same pair's
# "PEER > LOCAL" line, ended from TIME_WAIT: that end took every byte and
# the FIN, acknowledged them, and drained before the busy keeper's engine
# resent the FIN whose acknowledgement it had not read (Linux: LAST_ACK
# meeting a reset). Any other ICMP close, or one whose other end did not
# finish so, is counted unfinished.
grep -a 'rudp-keeper\[' "$T/pairs.log" | awk '
    match($0, /[0-9.]+:[0-9]+ > [0-9.]+:[0-9]+ id/) && match($0, /: closed \([^)]*\)/) {
        for (i = 1; i < NF; i++) if ($(i + 1) == ">") { key = $i " " $(i + 2); break }
        c = $0; sub(/.*: closed \(/, "", c); sub(/\).*/, "", c)
        cause[key] = c
    }
    END {
        for (key in cause) {
            if (cause[key] != "an ICMP error") continue
            split(key, p, " "); r = cause[p[2] " " p[1]]
            if (r == "drained" || r == "left in TIME_WAIT at exit" || r == "reset in TIME_WAIT")
                ok++
            else
                printf "unfinished %s: an ICMP error, its other end: %s\n", key, (r == "" ? "none" : r)
        }
        printf "finished %d\n", ok
    }' >"$T/pairs.icmp"
grep -q '^unfinished' "$T/pairs.icmp" &&
    fail "ICMP closes whose other end did not finish: $(grep -m 3 '^unfinished' "$T/pairs.icmp")"
icmp_ok=$(sed -n 's/^finished //p' "$T/pairs.icmp")
[ "${icmp_ok:-0}" = 0 ] || echo "    $icmp_ok closed by an ICMP error after their other end finished from TIME_WAIT"
unfinished=$(grep -v ': closed (\(drained\|left in TIME_WAIT at exit\|FIN acked\|reset in TIME_WAIT\|an ICMP error\))$' \
    "$T/pairs.closed" || true)
[ -z "$unfinished" ] || fail "connections the keeper did not finish: $unfinished"
echo "ok: no moves; no resets or ICMP errors while the program ran; the keeper finished all $ended"
