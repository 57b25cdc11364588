#!/bin/sh
# A local firewall rule that drops our output (issue 43, finding 9): in a
# network namespace of this test's own, a client and an echo server on
# 127.0.0.1 (eperm.py) exchange a line; then an nftables rule on the output
# hook drops what the client sends to the server's port, so its sends fail
# with EPERM, and the client writes 100 bytes and reads.
#
# That is no path failure: a new socket meets the same rule. Kernel TCP
# (beside it, at the same time in a namespace of its own, with the same
# rule on its port; one after the other the two took twice $UT s) keeps
# its connection, retransmits with back-off and gives up at its user
# timeout (TCP_USER_TIMEOUT, $UT s): the read fails with ETIMEDOUT.
# Under the shim (RUDP_USER_TIMEOUT) the connection must likewise stay on
# its socket: not one "moved to a new socket" line (before, it moved
# every 250 ms, each a new UDP flow through every NAT; nor after a silence
# while its sends were refused: $UT s lets RUDP_EV_SILENT come), and it
# ends by the user timeout: SO_ERROR ETIMEDOUT (the read itself says
# ETIMEDOUT, or ends as docs/limits.md says an abnormal end reaches a
# reader). The rule's counter shows it dropped the client's sends.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_netns "an nftables rule in a network namespace of the test's own"
command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here"
[ "$SHIM_MODE" = shim ] || skip "the point is the shim's reaction; kernel TCP runs inside"

EPY="$(dirname "$0")/eperm.py"
cat >"$T/inner.sh" <<'EOF2'
# In a fresh network namespace: MODE (tcp|shim), PORT, PY, EPY, DIR, LDP, ASO, UT.
set -eu
ip link set lo up
nft add table inet t43
nft 'add chain inet t43 out { type filter hook output priority 0; }'
if [ "$MODE" = shim ]; then
    PROTO=udp
    set -- env "LD_PRELOAD=$LDP" "ASAN_OPTIONS=$ASO" RUDP_LOG=info RUDP_FALLBACK=none \
        RUDP_USER_TIMEOUT=${UT}s RUDP_STATS=1
else
    PROTO=tcp
    set -- env
fi
"$@" timeout -k 5 60 "$PY" "$EPY" serve "$PORT" >"$DIR/srv.$MODE" 2>&1 &
srv=$!
i=0
until grep -q listening "$DIR/srv.$MODE"; do
    i=$((i + 1)); [ $i -lt 1000 ] || { echo "no server"; exit 1; }; sleep 0.01
done
"$@" timeout -k 5 60 "$PY" "$EPY" client "$PORT" "$DIR/go.$MODE" >"$DIR/cli.$MODE" \
    2>"$DIR/clierr.$MODE" &
cli=$!
i=0
until grep -q ready "$DIR/cli.$MODE"; do
    i=$((i + 1)); [ $i -lt 1000 ] || { echo "client not ready"; exit 1; }; sleep 0.01
done
nft add rule inet t43 out meta l4proto "$PROTO" th dport "$PORT" counter drop
touch "$DIR/go.$MODE"
rc=0
wait "$cli" || rc=$?
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true
nft list chain inet t43 out | sed -n 's/.*counter packets \([0-9]*\) .*/dropped \1/p' >>"$DIR/cli.$MODE"
exit "$rc"
EOF2

PORT=$(free_port)
UT=8 # the user timeout, seconds
export UT
# both at once: each in a namespace, files and processes of its own, idle
# but for the back-off of its retransmissions until its user timeout
for MODE in tcp shim; do
    MODE=$MODE PORT=$PORT PY=$PY EPY=$EPY DIR=$T LDP=$APP_LDP ASO=$APP_ASO \
        unshare -n sh "$T/inner.sh" >"$T/inner.$MODE" 2>&1 &
    eval "INNER_$MODE=\$!"
done
for MODE in tcp shim; do
    rc=0
    eval "wait \$INNER_$MODE" || rc=$?
    sed "s/^/$MODE: /" "$T/cli.$MODE"
    [ "$rc" = 0 ] || { show "$T/inner.$MODE" "$T/clierr.$MODE" "$T/srv.$MODE"; fail "$MODE: exited $rc"; }
    grep -q "^end: " "$T/cli.$MODE" || { show "$T/clierr.$MODE"; fail "$MODE: the client never ended"; }
    dropped=$(sed -n 's/^dropped //p' "$T/cli.$MODE")
    [ "${dropped:-0}" -gt 0 ] || fail "$MODE: the rule dropped nothing: it proves nothing"
done
grep -q "^end: ETIMEDOUT " "$T/cli.tcp" || fail "kernel TCP did not time out as expected: $(cat "$T/cli.tcp")"
# the moves: roam.c's info line for each, and the stats' count at exit
moves=$(grep -c ": moved to a new socket (" "$T/clierr.shim" || true)
grep ": moved to a new socket (" "$T/clierr.shim" | head -3 | sed 's/^/shim: /'
counted=$(sed -n 's/.*connections moved to a new socket \([0-9]*\).*/\1/p' "$T/clierr.shim" | head -1)
[ -n "$counted" ] || { show "$T/clierr.shim"; fail "under the shim: no stats line counting the moves"; }
[ "$moves" = 0 ] && [ "$counted" = 0 ] ||
    fail "under the shim: the connection moved to a new socket $moves times ($counted counted) for a local EPERM"
grep -q "^end: .* so_error: ETIMEDOUT \|^end: ETIMEDOUT " "$T/cli.shim" ||
    { show "$T/clierr.shim"; fail "under the shim: not ended by the user timeout: $(head -1 "$T/cli.shim")"; }
echo "ok: sends refused with EPERM for good: kernel TCP and the shim both stay on their connection and end at the user timeout (ETIMEDOUT); the shim moved 0 times"
