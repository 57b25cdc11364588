#!/bin/sh
# The calls rudp-supervise's filter reports beyond the set-up calls, and
# those it leaves to the kernel as the preload does (issue 35,
# docs/reach.md): each case of tests/prog_reachcalls runs as a static
# program over kernel TCP first ("plain": the preloaded echo server takes
# plain TCP clients too), then under rudp-supervise, where it must print
# the same line and make no TCP segment on the port (nftables, reachlib.sh):
#   ioctls       SIOCOUTQ, SIOCOUTQNSD (reported: the shim's answers),
#                SIOCINQ/FIONREAD and SIOCATMARK (the bridge's own);
#   oob          send(MSG_OOB), POLLPRI, SIOCATMARK, recv(MSG_OOB) between
#                two supervised ends (the bridge's own, as preloaded);
#   tfo, tfomsg  sendto()/sendmsg() with MSG_FASTOPEN (reported: a connect
#                over rudp, not a kernel TCP one);
#   tfo_kernel   the same to an address RUDP_REDIRECT leaves to kernel TCP:
#                sent and echoed over kernel TCP, under the supervisor;
#   tfolow       tfo from a socket at a number past RLIMIT_NOFILE, where no
#                bridge can go: as over TCP, kernel TCP then (the call once
#                waited for ever for an answer).
. "$(dirname "$0")/../../lib/reachlib.sh"

need_static PROG prog_reachcalls
need_bin prog_reach
need_supervise

gap ioctls 1 ioctls 127.0.0.1 "$PORT"
gap oob 0 oob "$PORT"
gap tfo 1 tfo 127.0.0.1 "$PORT"
gap tfomsg 1 tfomsg 127.0.0.1 "$PORT"
# An address the settings leave to kernel TCP (RUDP_REDIRECT): the
# supervisor's own call makes the kernel's connect on the program's socket
# and sends the data on it, as the kernel's sendto would (not EISCONN).
reach_case tfo_kernel 1000 "sent 1000, echoed; connect after: .*already connected" \
    env RUDP_REDIRECT='!127.0.0.1' $SUP "$PROG" tfo 127.0.0.1 "$PORT"
[ "$TCP" -gt 0 ] || fail "tfo_kernel: no TCP segment: not left to the kernel"
for how in plain supervised; do
    _sup=
    [ "$how" = supervised ] && _sup=$SUP
    reach_case "tfolow.$how" 1000 "sent 1000, echoed" $_sup "$PROG" tfolow 127.0.0.1 "$PORT"
    [ "$TCP" -gt 0 ] || fail "tfolow ($how): no TCP segment: not kernel TCP"
done
# the program's line alike (the supervisor says why kernel TCP, once)
grep -v '^rudp-supervise: ' "$T/tfolow.supervised.client" | cmp -s "$T/tfolow.plain.client" - ||
    { show "$T/tfolow.plain.client" "$T/tfolow.supervised.client"
      fail "tfolow: the supervised program tells a difference"; }
echo "tfolow: $(tail -1 "$T/tfolow.supervised.client") (plain and supervised alike, kernel TCP)"
echo "ok"
