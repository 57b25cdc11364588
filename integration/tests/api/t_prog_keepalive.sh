#!/bin/sh
# tests/prog_keepalive.c over kernel TCP, then under the shim, each case in
# a network namespace of its own whose path an nftables rule cuts:
# SO_KEEPALIVE with TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 2 ends a
# connection to a peer gone dark with ETIMEDOUT (TCP: about 3 s), set
# before connect(), on the connected socket, or on the listener (the
# accepted connection inherits them). Before 2026-11-29 the shim kept them
# for getsockopt only: the read waited for rudp's idle timeout (120 s).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_netns "prog_keepalive cuts its path with nftables in a namespace of its own"
command -v nft >/dev/null 2>&1 || skip "nft not installed (nftables)"
need_bin prog_keepalive

DROP='nft add table inet ka \; add chain inet ka in "{ type filter hook input priority 0; policy drop; }"'

# $1 case, $2 how (tcp, shim)
measure() {
    _out=$T/$1.$2
    case $2 in
    tcp) unshare -n sh -c "ip link set lo up && exec timeout -k 5 60 $BIN/prog_keepalive $1 '$DROP'" \
             >"$_out" 2>&1 ;;
    shim) unshare -n sh -c "ip link set lo up && exec env LD_PRELOAD=$APP_LDP ASAN_OPTIONS=$APP_ASO \
             RUDP_EXPECT_ABORT=1 timeout -k 5 60 $BIN/prog_keepalive $1 '$DROP'" >"$_out" 2>&1 ;;
    esac || { show "$_out"; fail "$1 ($2) failed"; }
    grep "^ending $1: " "$_out" | sed "s/^/$2: /"
    if [ "$2" = shim ] && grep '^transport: ' "$_out" | grep -qw tcp; then
        fail "$1 ($2): the connection was kernel TCP, not rudp"
    fi
}

# All at once: each waits ~3 s for its timers, in a namespace of its own.
runs=""
for c in before after listener; do
    for how in tcp shim; do
        measure "$c" "$how" >"$T/$c.$how.said" 2>&1 &
        runs="$runs $!:$c.$how"
    done
done
bad=""
for j in $runs; do
    wait "${j%%:*}" || bad="$bad ${j#*:}"
    cat "$T/${j#*:}.said"
done
[ -z "$bad" ] || fail "a dark path did not end the connection with ETIMEDOUT:$bad"
echo "ok: the keepalive the program asked for ended each connection, as TCP's"
