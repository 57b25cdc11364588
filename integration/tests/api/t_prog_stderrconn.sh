#!/bin/sh
# tests/prog_stderrconn.c over kernel TCP, then both ends under the shim
# with RUDP_LOG=info (a log line at each listen and connect): a connection
# dup2()'d onto stderr (an inetd-style server's: vsftpd's session) carries
# the program's bytes alone, none of the shim's log. At 10be818 the client
# read the shim's lines first.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_stderrconn
RUDP_LOG=info
export RUDP_LOG
run_both stderrconn "$BIN/prog_stderrconn"
