#!/bin/sh
# Keyed stateless reset (core/keyreset.c, docs/security.md "Keyed mode"): a keyed
# server killed with SIGKILL and restarted on the same port ends its old
# connections at their next packet, and a stranger without the key still
# gets nothing back (keyreset_case.sh says how). Twice: with one engine per
# process, and with RUDP_ENGINES=2, where each engine resets only the
# connection IDs tagged with its own index and hands the others' to their
# engine (shim/ports/forward.c). Before that (main at a819b17) RUDP_ENGINES=2
# sent no keyed reset at all: the client's poll ran out after 30 s with
# the connection still up.
# Keyed mode is the shim's alone, so this runs under the shim only.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
D=$(dirname "$0")
echo "== one engine"
RUDP_ENGINES=1 sh "$D/keyreset_case.sh" || fail "one engine"
echo "== RUDP_ENGINES=2"
RUDP_ENGINES=2 KR_STRANGER=0 sh "$D/keyreset_case.sh" || fail "RUDP_ENGINES=2"
