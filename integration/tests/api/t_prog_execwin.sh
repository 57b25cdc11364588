#!/bin/sh
# Our exec passes the slabs (and a racing connect's socket) through the
# keeper, never as fds left open across the execve (tests/prog_execwin.c):
# a forked child with a live connection exec's itself while a thread of it
# fork()+exec()s images without the shim in a loop; none of those may hold a
# memfd "rudp-slots" or an fd at 700 and above, and the connection carries
# data after each exec. Over kernel TCP, then under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_execwin
run_both execwin_race "$BIN/prog_execwin" race
# As root (else "skip:"): a caller of real uid nobody and effective root
# spawns with POSIX_SPAWN_RESETIDS: the image runs as nobody, runs the shim
# and gets the slabs; without the flag it is in secure execution and gets
# nothing.
run_both execwin_resetids "$BIN/prog_execwin" resetids
