#!/bin/sh
# Connections reach accept() in the order their clients' connect()s
# returned (tests/prog_acceptorder.c): clients one after another, and 8
# threads connecting at once (a client whose connect() returned before
# another's began is accepted first); over kernel TCP, then under the shim
# with one engine, the default (engines by load: the listener's backlog
# gives it one socket per CPU, at most 4) and two and four (a listener's
# handshakes land on any of its engines: shim/engine/fifo.c orders them by
# the kernel's receive time).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_acceptorder
RUDP_ENGINES=1 run_both acceptorder "$BIN/prog_acceptorder"
for n in default 2 4; do
    if [ "$n" = default ]; then
        run_app env -u RUDP_ENGINES "$BIN/prog_acceptorder" >"$T/acceptorder.shim$n" 2>&1
    else
        RUDP_ENGINES=$n run_app "$BIN/prog_acceptorder" >"$T/acceptorder.shim$n" 2>&1
    fi || {
        sed "s/^/shim, $n engines: /" "$T/acceptorder.shim$n"
        fail "prog_acceptorder under the shim with RUDP_ENGINES=$n"
    }
    sed "s/^/shim, $n engines: /" "$T/acceptorder.shim$n"
    assert_transport "$T/acceptorder.shim$n"
done
