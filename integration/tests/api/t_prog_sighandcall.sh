#!/bin/sh
# tests/prog_sighandcall.c over kernel TCP, then under the shim: a signal
# handler's close(), dup2(), write() and socket() (async-signal-safe) on a
# thread interrupted inside the same calls on a connection. The shim's
# locks are held inside sections that defer the program's handlers to
# their release (shim/base/crit.c); a handler that waited on one its own
# thread held would hang the child, which must end within 30 s.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sighandcall
run_both sighandcall "$BIN/prog_sighandcall"
