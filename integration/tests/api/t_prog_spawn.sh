#!/bin/sh
# Images started by posix_spawn()/posix_spawnp() and images that do not run
# the shim (tests/prog_execstate.c spawn, spawnp, bare): a spawned image
# finds an inherited connection's TCP_INFO, SO_ERROR and SIOCOUTQ as an
# exec'd one does (file actions moving it to another fd); an image exec'd
# or spawned without LD_PRELOAD holds exactly the fds passed to it and no
# RUDP_EXEC_SLABS. Over kernel TCP, then under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_execstate
run_both spawn "$BIN/prog_execstate" spawn
run_both spawnp "$BIN/prog_execstate" spawnp
run_both spawn_bare "$BIN/prog_execstate" bare
