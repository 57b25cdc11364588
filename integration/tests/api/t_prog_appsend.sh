#!/bin/sh
# tests/prog_appsend.c over kernel TCP, then under the shim: small writes
# that the writing thread sends itself while its engine sleeps
# (shim/engine/appsend.c), under concurrency: 4 ping-pong connections
# through write, send, writev, sendto and sendmsg; 6 threads writing
# 32-byte records at once to one connection (each arrives whole, each
# thread's in order); a byte stream of small and large writes in turn (in
# order: a small write never passes a large one before it), and the edges
# (EFAULT, sends from a signal handler, EPIPE after SHUT_WR). The server is
# a thread of the same process (one engine for both ends), then a forked
# child, then with two engines forced, then keyed. Under the shim the
# app-thread path must have carried some of the writes (RUDP_STATS: "writes
# sent by the writing thread N", N > 0), and none with RUDP_APP_SEND=0,
# where the same writes go to the engine in memory (shim/engine/txring.c:
# "writes in memory: handed to the engine N", N > 0, the server a thread
# and a forked child), and none with RUDP_SEND_RING=0 as well (every write
# through the bridge). Then an fd inherited over exec (prog_execsend). `make tsan` runs
# prog_appsend with the ThreadSanitizer shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests the app threads' own send, which an engine with a table of its own
# does not take (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared

need_bin prog_appsend
sent() { sed -n 's/.*writes sent by the writing thread \([0-9]*\).*/\1/p' "$1" | awk '$1 > m {m = $1} END {print m + 0}'; }

for mode in thread fork; do
    flag=""
    [ "$mode" = fork ] && flag=-f
    # shellcheck disable=SC2086
    RUDP_STATS=1 run_both "appsend-$mode" "$BIN/prog_appsend" $flag
    n=$(sent "$T/appsend-$mode.shim")
    [ "$n" -gt 0 ] || fail "server in a $mode: no write was sent by the writing thread (RUDP_STATS)"
    echo "ok: server in a $mode: $n writes sent by the writing thread"
done

RUDP_STATS=1 RUDP_ENGINES=2 run_shim appsend-e2 "two engines" "$BIN/prog_appsend"
n=$(sent "$T/appsend-e2")
[ "$n" -gt 0 ] || fail "two engines: no write was sent by the writing thread"
echo "ok: two engines: $n writes sent by the writing thread"

# keyed: the writing thread seals its datagrams (the engine's AEAD pool,
# under the turn lock)
make_key "$T/key"
RUDP_STATS=1 RUDP_KEY_FILE="$T/key" run_shim appsend-keyed "keyed" "$BIN/prog_appsend"
n=$(sent "$T/appsend-keyed")
[ "$n" -gt 0 ] || fail "keyed: no write was sent by the writing thread"
stats_lines "$T/appsend-keyed" | grep -q 'datagrams failing authentication 0,' ||
    fail "keyed: datagrams failed authentication: $(stats_lines "$T/appsend-keyed" | grep keyed:)"
echo "ok: keyed: $n writes sent by the writing thread, every datagram authenticated"

# With the app thread's send off, the writes it would have sent go to the
# engine in memory (engine/txring.c): the same checks of content, order,
# records never interleaved, EFAULT, a signal handler's sends and EPIPE
# after shutdown, for that path, the server a thread and a forked child
# (whose engines are its own).
ring() { sed -n 's/.*writes in memory: handed to the engine \([0-9]*\).*/\1/p' "$1" | awk '$1 > m {m = $1} END {print m + 0}'; }
for mode in thread fork; do
    flag=""
    [ "$mode" = fork ] && flag=-f
    # shellcheck disable=SC2086
    RUDP_STATS=1 RUDP_APP_SEND=0 run_shim "appsend-off-$mode" "RUDP_APP_SEND=0, server in a $mode" \
        "$BIN/prog_appsend" $flag
    n=$(sent "$T/appsend-off-$mode")
    [ "$n" = 0 ] || fail "RUDP_APP_SEND=0: $n writes sent by the writing thread"
    r=$(ring "$T/appsend-off-$mode")
    [ "$r" -gt 0 ] || fail "RUDP_APP_SEND=0, server in a $mode: no write handed to the engine in memory"
    echo "ok: RUDP_APP_SEND=0, server in a $mode: none sent by the writing thread, $r in memory"
done

RUDP_STATS=1 RUDP_APP_SEND=0 RUDP_SEND_RING=0 run_shim appsend-bridge "RUDP_APP_SEND=0 RUDP_SEND_RING=0" \
    "$BIN/prog_appsend"
n=$(sent "$T/appsend-bridge")
r=$(ring "$T/appsend-bridge")
[ "$n" = 0 ] && [ "$r" = 0 ] || fail "both paths off: $n writes sent by the writing thread, $r in memory"
echo "ok: RUDP_APP_SEND=0 RUDP_SEND_RING=0: every write through the bridge"

# A connection inherited over exec: the new image numbers its own
# connections' slots and IDs afresh, so an inherited fd may carry the same
# pair as one of them; its bytes must still reach its own peer.
need_bin prog_execsend
for side in a b; do
    port=$(free_port)
    eval "port_$side=$port"
    bg_app_io "nc-$side" /dev/null "$T/$side.out" nc -l 127.0.0.1 "$port"
    eval "pid_$side=$LAST_PID"
    wait_listen "$port"
done
run_app_t 60 "$BIN/prog_execsend" "$port_a" "$port_b" >"$T/execsend" 2>&1 || { cat "$T/execsend"; fail "prog_execsend exited $?"; }
assert_transport "$T/execsend"
for side in a b; do # each nc ends at its peer's close, its output whole
    eval "pid=\$pid_$side"
    wait_exit "$pid" 30 || fail "nc on side $side did not end after its peer closed"
done
[ "$(cat "$T/a.out")" = "A1:meant-for-A" ] || fail "after exec: the inherited connection's peer read '$(cat "$T/a.out")', the new one's '$(cat "$T/b.out")'"
[ "$(cat "$T/b.out")" = "B1:" ] || fail "after exec: the new connection's peer read '$(cat "$T/b.out")'"
echo "ok: after exec, an inherited connection's bytes reached its own peer"
