#!/bin/sh
# tests/prog_forkrelay.c over kernel TCP, then under the shim: a forked
# worker with a pool of upstream connections relays clients its parent's
# listener took; every answer goes on its own connection (12 rounds). Before
# 2026-11-29 a forked worker's connection ids repeated its parent's while
# its slots started at 0 again, and its writes in memory to a client went
# to an upstream connection with the same slot and id: 6 of 72 clients in
# every run (nginx proxy_pass with upstream keepalive: 1 round in 8).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_forkrelay
run_both forkrelay "$BIN/prog_forkrelay"
