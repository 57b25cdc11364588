#!/bin/sh
# tests/prog_nocallin.c over kernel TCP, then under the shim (run_both): a
# receiver whose only thread blocks in read() on a pipe right after
# connect() -- never a socket call -- still has its connection served: the
# peer's 40000 bytes acknowledged (the peer's SIOCOUTQ 0, tcpi_unacked 0,
# tcpi_bytes_acked +40000; the receiver's engine's "recv" in rudp-stat, or
# its kernel socket's rx_queue), keepalives answered through a silence
# longer than the idle timeout (the receiver's engine's datagrams out and
# in, from rudp-stat --verbose; TCPKeepAlive over kernel TCP), the
# connection ESTABLISHED after it, and every byte there, intact, once it
# reads; its answer goes back. The guard for running the protocol in the
# application's thread when it calls in: the engine thread must still
# serve a program that does not.
#
# The shim's keepalive and idle timeout short, for a silence of the idle
# timeout and 0.5 s (the program checks they are set); kernel TCP's are the
# program's own (TCP_KEEPIDLE 1, TCP_KEEPINTVL 1, TCP_KEEPCNT 1: 2.5 s).
# The idle timeout is 4 s, not 1: on a loaded 2-core machine whole
# processes go unscheduled for 3-4 s at times (a 1 ms nanosleep loop saw
# it), both engines at once, and the first timer each runs on waking is
# the idle timeout -- a stall, not a receiver left unserved.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_nocallin
need_tool rudp-stat
export RUDP_KEEPALIVE=500ms RUDP_IDLE_TIMEOUT=4s
run_both prog_nocallin "$BIN/prog_nocallin" "$TOOLS/rudp-stat"
