#!/bin/sh
# tests/prog_privdrop.c over kernel TCP, then both ends under the shim: a
# server binds a port below 1024 as root, gives root up, then listens; a
# client's bytes come back whole. Under the shim the listener may not
# have its UDP port (EACCES): it listens on plain kernel TCP, says so by
# name, and the client gets there by the fallback (its fd is kernel TCP,
# so the transport asserted is "tcp", not a bridge). Before 2026-11-29
# listen() failed with EACCES there.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_root "binding a port below 1024, then giving root up"
need_bin prog_privdrop
P=$BIN/prog_privdrop
timeout -k 5 60 "$P" >"$T/tcp" 2>&1 || { sed 's/^/tcp:  /' "$T/tcp"; fail "over kernel TCP"; }
sed 's/^/tcp:  /' "$T/tcp"
grep -q '^skip: ' "$T/tcp" && skip "$(sed -n 's/^skip: //p' "$T/tcp" | head -1)"
RUDP_FALLBACK=tcp run_app "$P" >"$T/shim" 2>&1 || { sed 's/^/shim: /' "$T/shim"; fail "under the shim"; }
sed 's/^/shim: /' "$T/shim"
grep -q '^ok: ' "$T/shim" || fail "under the shim: no ok line"
grep -q 'may not be bound by this process now' "$T/shim" ||
    fail "under the shim: the listener's warning is not there"
echo "ok: listened on plain kernel TCP with its reason said, the echo whole"
