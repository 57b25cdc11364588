#!/bin/sh
# tests/prog_fdreuse.c over kernel TCP, then under the shim: a
# connection's number closed or replaced without close() (fdopen() and
# fclose(), dup2(), syscall(SYS_dup3), syscall(SYS_close), close_range())
# and given to a unix socket names that socket: its write and read are
# the socket's, the connection's peer gets nothing; so does a dup2() over
# the number while another thread loops setsockopt() on it. The shim
# trusts a record proved once until a call it sees may have changed the
# number, and an option call writes back only the record of the file it
# read (state/fdtab.c).
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_fdreuse
run_both fdreuse "$BIN/prog_fdreuse"
