#!/bin/sh
# tests/prog_oob.c over kernel TCP, then under the shim: sendto()/sendmsg()
# with an address on a connected socket, recvfrom()/recvmsg() reporting no
# address, SO_PEERCRED as TCP answers it, and urgent data (MSG_OOB) both
# ways: SIGURG to the F_SETOWN owner, POLLPRI, SIOCATMARK, recv(MSG_OOB),
# SO_OOBINLINE.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_oob
run_both oob "$BIN/prog_oob"
