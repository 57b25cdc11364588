#!/bin/sh
# tests/prog_outage.c over kernel TCP, then both ends under the shim
# (unkeyed, then keyed), in a network namespace of the test's own whose
# loopback an nftables table cuts for a few seconds: a reader with a
# TCP_USER_TIMEOUT of 1 s, and a writer with SO_KEEPALIVE of 1 + 1 x 1 s and
# data in flight, both live through a 3-4 s outage and get every byte, as
# TCP's do. Before 8000680 the shim ended both with ETIMEDOUT in the dark:
# its keepalive probes ran the user timeout, and its idle timeout ran with
# data unacknowledged. The shim's side runs with RUDP_KEEPALIVE=1s, so its
# reader sends probes into the dark.
. "$(dirname "$0")/../../lib/lib.sh"
own_netns "the outage is an nftables table in a namespace of the test's own"
. "$ROOT/integration/lib/shimlib.sh"
command -v nft >/dev/null || fail "nft missing (nftables: make test installs it)"
need_bin prog_outage
ip link set lo up
export RUDP_KEEPALIVE=1s # the shim's own keepalive; kernel TCP ignores it

DROP='nft add table inet outage \; add chain inet outage in "{ type filter hook input priority 0; policy drop; }"'
UNDROP='nft delete table inet outage'
for c in reader writer; do
    run_both "$c" "$BIN/prog_outage" "$c" "$DROP" "$UNDROP"
    grep -q "^ok: $c" "$T/$c.tcp" || fail "$c: no ok line over kernel TCP"
done
if [ "$SHIM_MODE" = shim ]; then
    make_key "$T/key"
    for c in reader writer; do
        RUDP_KEY_FILE="$T/key" run_shim "$c.keyed" keyed \
            "$BIN/prog_outage" "$c" "$DROP" "$UNDROP"
    done
fi
