#!/bin/sh
# Threads made with small stacks (tests/prog_smallstack.c: PTHREAD_STACK_MIN
# + 16 KiB) listen, accept, connect and echo 64 KiB, over kernel TCP and
# then under the shim: the shim's static TLS, which glibc takes from every
# thread's stack, must leave them room (MariaDB's 64 KiB timer thread failed
# to start when the shim carried 96 KiB of it). t_shim_tls.sh bounds that
# TLS at build time; this is what a program sees.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_smallstack
run_both smallstack "$BIN/prog_smallstack"
