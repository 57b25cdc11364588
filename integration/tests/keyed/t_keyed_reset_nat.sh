#!/bin/sh
# Keyed stateless reset through a NAT that rewrites the server's address
# and port (docs/security.md "Keyed mode", "Stateless reset"): in a network namespace
# of its own, the client connects to 10.77.0.1:7001, which nftables dnat
# turns into the server's 10.77.0.2:7000 (and its replies back), as a
# container's published port or a cloud's 1:1 NAT does. The server runs
# with RUDP_RESET_ID, is killed (SIGKILL) and restarted, and the client's
# next write gets ECONNRESET (keyreset_case.sh), not its timeout: the token
# came inside the SYNACK and binds no address.
# Control, main's behaviour (a819b17: the token was always bound to the
# address the server sees): the same without RUDP_RESET_ID; the restarted
# server's reset reaches the client, which refuses it (a token for
# 10.77.0.2:7000, not 10.77.0.1:7001) and stays connected.
# Keyed mode is the shim's alone, so this runs under the shim only.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
need_netns "the NAT runs in a network namespace of its own"
command -v nft >/dev/null 2>&1 || fail "nft not installed (integration/deps.sh test)"
D=$(cd "$(dirname "$0")" && pwd)
cat >"$T/nat.sh" <<EOF2
set -eu
ip link set lo up
ip addr add 10.77.0.1/32 dev lo
ip addr add 10.77.0.2/32 dev lo
nft -f - <<NFT
table ip krnat {
    chain out {
        type nat hook output priority -100; policy accept;
        ip daddr 10.77.0.1 udp dport 7001 dnat to 10.77.0.2:7000
    }
}
NFT
exec sh "$D/keyreset_case.sh"
EOF2
export KR_SRV=10.77.0.2 KR_PORT=7000 KR_DST=10.77.0.1 KR_DST_PORT=7001 KR_STRANGER=0
echo "== RUDP_RESET_ID set"
KR_RESET_ID=t-keyed-reset-nat unshare -n sh "$T/nat.sh" || fail "behind the NAT, with RUDP_RESET_ID"
echo "== control: no RUDP_RESET_ID"
KR_EXPECT=refused unshare -n sh "$T/nat.sh" || fail "control"
