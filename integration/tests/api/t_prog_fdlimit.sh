#!/bin/sh
# tests/prog_fdlimit.c over kernel TCP, then under the shim: with every fd
# number its soft RLIMIT_NOFILE (128) allows in use, a program's connect()
# succeeds (blocking, non-blocking; its first and a later one), carries
# bytes, and getrlimit() still says 128; TCP needs no new fd for it.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -le 192 ]; then
    echo "skip: hard RLIMIT_NOFILE $hard leaves no room above the 128 the test sets"
    exit 0
fi
need_bin prog_fdlimit
run_both fdlimit "$BIN/prog_fdlimit"
