#!/bin/sh
# tests/prog_sendaddr.c over kernel TCP, then under the shim: sendto() with
# an address on a connected socket sends to the peer, as TCP ignores the
# address: 8 MiB in one blocking call, under signals (SA_RESTART or not:
# every byte once, in order), non-blocking (what fits, then EAGAIN),
# MSG_OOB (only the last byte urgent), EPIPE with SIGPIPE or MSG_NOSIGNAL.
# The same program runs under rudp-supervise in t_supervise_battery.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sendaddr
run_both sendaddr "$BIN/prog_sendaddr"
