#!/bin/sh
# tests/prog_connsig.c over kernel TCP, then both ends under the shim: a
# blocking connect() restarts under an SA_RESTART handler (300 connects,
# SIGALRM every 200 us: none says EINTR) and says EINTR under one without.
# Before 2026-11-29 the shim's connect waited in poll(), which is never
# restarted: 62 of 300 said EINTR.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_connsig
run_both connsig "$BIN/prog_connsig"
