#!/bin/sh
# tests/prog_bindopts.c over kernel TCP, then under the shim, each in a
# network namespace of its own (lo up, a veth pair left down): a client
# bound by SO_BINDTODEVICE to a down interface says ENETUNREACH, an
# IP_FREEBIND listener listens before its address comes, connect() to a
# broadcast address says ENETUNREACH, a listener on ::ffff:0.0.0.0 names
# its connections by the address reached. Before 2026-11-29 the shim
# connected over lo, failed listen() with EADDRNOTAVAIL, said EACCES and
# named the connection ::ffff:0.0.0.0 (a helper's hunt).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_netns "prog_bindopts needs a namespace with an interface of its own"
need_bin prog_bindopts

SETUP='ip link set lo up && ip link add bo0 type veth peer name bo1'
ADD='ip addr add 10.199.0.50/32 dev lo'
unshare -n sh -c "$SETUP && exec timeout -k 5 60 $BIN/prog_bindopts bo0 '$ADD'" >"$T/tcp" 2>&1 ||
    { show "$T/tcp"; fail "over kernel TCP"; }
sed 's/^/tcp:  /' "$T/tcp"
unshare -n sh -c "$SETUP && exec env LD_PRELOAD=$APP_LDP ASAN_OPTIONS=$APP_ASO RUDP_EXPECT_ABORT=1 \
    RUDP_FALLBACK=none timeout -k 5 60 $BIN/prog_bindopts bo0 '$ADD'" >"$T/shim" 2>&1 ||
    { show "$T/shim"; fail "under the shim"; }
sed 's/^/shim: /' "$T/shim"
assert_transport "$T/shim"
