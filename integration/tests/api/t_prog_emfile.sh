#!/bin/sh
# tests/prog_emfile.c over kernel TCP, then both ends under the shim: a
# server out of fds (soft RLIMIT_NOFILE 64, table full) sees accept()
# EMFILE, frees 16 fds and serves all 20 clients that connected meanwhile.
# Before 2026-11-29 the engine, sharing the program's fd table, made a
# bridge in every fd the server freed, and accept() said EMFILE for good
# (0-3 of 20 served).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_emfile
# rudp only: while the server cannot accept, its listener answers no new
# handshake, and a client would go over kernel TCP after 250 ms (the
# fallback, which the server's listener takes as well)
export RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0
run_both emfile "$BIN/prog_emfile"
