#!/bin/sh
# tests/prog_recvflags.c over kernel TCP, then both ends under the shim:
# recv(MSG_TRUNC) discards without copying (no write past a small buffer,
# NULL accepted, the bytes gone), recvmsg(MSG_ERRQUEUE) says EAGAIN at
# once and leaves the stream's bytes, SO_PASSCRED is answered as a TCP
# socket of this kernel answers it and brings no credentials. Before
# 2026-11-29 the shim's bridge copied MSG_TRUNC's bytes past the buffer,
# read the stream's bytes for MSG_ERRQUEUE, and sent SCM_CREDENTIALS.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_recvflags
run_both recvflags "$BIN/prog_recvflags"
RUDP_APP_RECV=0 run_shim recvflags-norecv "RUDP_APP_RECV=0" "$BIN/prog_recvflags"
