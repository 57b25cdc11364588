#!/bin/sh
# A statically linked program (gcc -static: no preload reaches it) carries
# its TCP connections over rudp under rudp-supervise (issue 35): its
# connect() is reported by a seccomp user-notification filter and answered
# by the shim's code in the supervisor. Played in a network namespace of
# its own, where nftables counts every TCP segment and UDP datagram on the
# server's port (loopback, output hook: each packet once). The server is
# tests/prog_reach under the preloaded shim, the client prog_reach_static.
#   1. the static client alone: kernel TCP (the preloaded server takes
#      plain TCP clients too), so the counters see TCP segments: the probe
#      works and the preload does not reach the program;
#   2. under rudp-supervise, blocking connect: 1 MB echoed, 0 TCP
#      segments, UDP datagrams on the port;
#   3. the same with a non-blocking connect (EINPROGRESS, POLLOUT, SO_ERROR);
#   4. rudp-supervise --pass (every call continues): the program runs
#      unchanged, over kernel TCP, and its exit status comes back.
if [ "${REACH_NETNS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "skip: needs root (a network namespace and nftables)"; exit 77; }
    command -v nft >/dev/null 2>&1 || { echo "skip: nft not installed"; exit 77; }
    unshare -n true 2>/dev/null || { echo "skip: cannot make a network namespace here"; exit 77; }
    REACH_NETNS=1 exec unshare -n sh "$0" "$@"
fi
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh" >/dev/null
ip link set lo up

SUP=$TOOLS/rudp-supervise
CLI=$BIN/prog_reach_static
[ -x "$SUP" ] || fail "rudp-supervise not built ($SUP)"
need_bin prog_reach
[ -x "$CLI" ] || skip "no static libc here: $CLI not built"
readelf -l "$CLI" | grep -q INTERP && fail "$CLI is not statically linked"
_e=$(timeout 10 "$SUP" --pass true 2>&1) ||
    skip "seccomp user notification unavailable here ($_e)"

PORT=5000
nft -f - <<NFT
table inet reach {
    chain out {
        type filter hook output priority 0;
        meta l4proto tcp th dport $PORT counter
        meta l4proto tcp th sport $PORT counter
        meta l4proto udp th dport $PORT counter
    }
}
NFT
trap 'nft delete table inet reach 2>/dev/null; cleanup' EXIT INT TERM
# counter PROTO DIR: packets counted so far by that rule
counter() {
    nft list chain inet reach out |
        awk -v p="$1" -v d="$2" '$1 == p && $2 == d { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}
tcp_now() { echo $(( $(counter tcp dport) + $(counter tcp sport) )); }
udp_now() { counter udp dport; }

# run_case NAME CLIENT...: one server under the shim, one client; both must
# end well, the server having echoed what the client sent.
run_case() {
    _name=$1; shift
    start_bg "$_name.server" under_shim "$BIN/prog_reach" server "$PORT"
    _srv=$LAST_PID
    wait_udp "$PORT"
    _t0=$(tcp_now) _u0=$(udp_now)
    timeout 60 "$@" >"$T/$_name.client" 2>&1 || { show "$T/$_name.client" "$T/$_name.server.log"; fail "$_name: client failed"; }
    wait_exit "$_srv" 30 || { show "$T/$_name.server.log"; fail "$_name: server failed"; }
    grep -qx "echoed 1000000" "$T/$_name.client" || { show "$T/$_name.client"; fail "$_name: no echo"; }
    grep -qx "served 1000000" "$T/$_name.server.log" || { show "$T/$_name.server.log"; fail "$_name: server"; }
    TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
    echo "$_name: echoed 1000000 bytes; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
}


run_case plain "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "plain: the static client without the supervisor counted no TCP segment (probe broken?)"

run_case supervised "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "supervised: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"

run_case supervised_nb "$SUP" "$CLI" client 127.0.0.1 "$PORT" 1000000 nb
[ "$TCP" = 0 ] || fail "supervised_nb: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised_nb: no UDP datagram on the port"

run_case pass "$SUP" --pass "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "pass: no TCP segment: --pass must leave connect() to the kernel"
_rc=0
"$SUP" "$CLI" bogus >/dev/null 2>&1 || _rc=$?
[ "$_rc" = 2 ] || fail "the program's exit status 2 came back as $_rc"
echo "pass: exit status comes back (2)"
echo "ok"
