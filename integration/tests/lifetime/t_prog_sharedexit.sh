#!/bin/sh
# A listener two processes hold, after the one that listened first has
# exited (issue 43, finding 6; tests/prog_sharedexit.c): the survivor must
# get every connection, as over kernel TCP. Under the shim the exited
# process's keeper completes the handshakes; on 4fe1127 the survivor
# refused each of its bridges ("not our engine") when it had no other way
# to know the keeper for ours: when both processes listen() on a socket
# shared before listen (fork-both), and when the listener was passed with
# SCM_RIGHTS (pass; pass-plain: plain kernel TCP clients, which the keeper
# hands over too). The keeper now shows the listener's secret, which the
# listener's name commits to (shim/state/names.c, ident.c). fork-keep and
# fork-close (the survivor forked after listen) passed before too.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_sharedexit
need_tool rudp-stat
trap 'end_keepers; cleanup' EXIT INT TERM
for mode in fork-keep fork-close fork-both pass pass-plain; do
    run_both "sharedexit_$mode" "$BIN/prog_sharedexit" "$mode"
done
