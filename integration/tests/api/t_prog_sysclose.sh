#!/bin/sh
# tests/prog_sysclose.c over kernel TCP, then under the shim: a listener
# closed with syscall(SYS_close) (as libuv and node.js close fds),
# syscall(SYS_close_range) or close_range() refuses a connect made right
# after (ECONNREFUSED); socket/connect/sendto/close made through syscall()
# reach the shim, other numbers pass through, errors are -1 with errno.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sysclose
run_both sysclose "$BIN/prog_sysclose"
