#!/bin/sh
# tests/prog_shutlisten.c over kernel TCP, then both ends under the shim:
# shutdown(SHUT_RD/SHUT_RDWR) and connect(AF_UNSPEC) stop a listener as
# TCP's stops (accept()s woken with EINVAL, queued connections reset, new
# clients refused, POLLOUT|POLLHUP, SO_ACCEPTCONN 0, also in a forked
# child), and SHUT_WR leaves it listening. Before 2026-11-29 the shim's
# unix listener said POLLIN with accept() EAGAIN for ever after the stop (a
# poll loop spun at 100 % CPU), handed the queued connections to accept(),
# and reset new clients after their handshake.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_shutlisten
run_both shutlisten "$BIN/prog_shutlisten"
