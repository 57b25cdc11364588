#!/bin/sh
# A listener's accept queue holds backlog + 1 completed connections and no
# more, then takes one per place accept() frees (tests/prog_acceptq.c); over
# kernel TCP, then under the shim with one engine and with two (each engine
# completes handshakes of the same listener: the count is shared).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_acceptq
RUDP_ENGINES=1 run_both acceptq "$BIN/prog_acceptq"
RUDP_ENGINES=2 run_app "$BIN/prog_acceptq" >"$T/acceptq.shim2" 2>&1 || {
    sed 's/^/shim, 2 engines: /' "$T/acceptq.shim2"
    fail "prog_acceptq under the shim with RUDP_ENGINES=2"
}
sed 's/^/shim, 2 engines: /' "$T/acceptq.shim2"
assert_transport "$T/acceptq.shim2"
