#!/bin/sh
# tests/prog_writeclosed.c over kernel TCP, then both ends under the shim
# (issue 43, finding 7): in one process and one epoll loop, as libuv's
# tcp_try_write_error, accept() returns a connection only once the client's
# connect() is complete, and a client writing to a peer that closed gets
# EPIPE (ECONNRESET or EPIPE after a reset), with SIGPIPE unless
# MSG_NOSIGNAL, POLLHUP and EOF, never EAGAIN for good. Under the shim with
# one engine, then with two (RUDP_ENGINES=2: the client's connection and the
# listener's on different threads, where accept() came before the client's
# connect() was complete, 1 round in 20 before).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_writeclosed
run_both writeclosed "$BIN/prog_writeclosed"
RUDP_ENGINES=2
export RUDP_ENGINES
run_shim writeclosed.2 "two engines" "$BIN/prog_writeclosed"
