#!/bin/sh
# Listeners under epoll (level and edge), poll, select, and EPOLLEXCLUSIVE
# with two accepting processes (tests/prog_accepters.c); kernel TCP with
# RUDP_NO_SHIM=1.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
run_app "$BIN/prog_accepters"
