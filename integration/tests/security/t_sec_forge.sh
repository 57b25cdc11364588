#!/bin/sh
# A local user forging the peer address a server sees (issue "harden",
# finding 1). tests/prog_forge.c plays both sides.
#
# The server (under the shim) listens on TCP 127.0.0.1:P, redirected, and on
# a plain abstract unix socket of its own. The attacker runs as uid nobody:
#   1. finds the shim listener's abstract name with sock_diag (as ss -xl),
#      binds a name claiming to be an engine end whose peer is
#      10.9.8.7:4444, and connects to the listener: on 8d193eb accept() and
#      getpeername() then report 10.9.8.7:4444. It must be refused (closed
#      unseen, counted), never accepted.
#   2. connects with the same forged name to the application's own unix
#      listener: getpeername() there must stay AF_UNIX, not turn into
#      10.9.8.7:4444 (a server telling local from TCP clients by address
#      family, as PostgreSQL does, would take it for a TCP client).
#   3. a real client under the shim still gets through, with its own address.
. "$(dirname "$0")/../../lib/lib.sh"
attacker_prog prog_forge

P=$(free_port)
U="rudp-forge-test-$$"
start_bg serve under_shim env RUDP_STATS=1 "$BIN/prog_forge" serve "$P" "$U" 60
SPID=$LAST_PID
wait_udp "$P"
wait_line() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 400 ] || return 1; sleep 0.05; done; }
wait_line "$T/serve.log" '^serve: listening' || fail "server did not start: $(cat "$T/serve.log")"

as_nobody "$T/prog_forge" forge "$P" 10.9.8.7 4444 >"$T/forge.out" 2>&1 || true
cat "$T/forge.out"
grep -q '^forge: connected' "$T/forge.out" ||
    fail "the forger could not even connect: the test proves nothing"
as_nobody "$T/prog_forge" plain "$U" 10.9.8.7 4444 >"$T/plain.out" 2>&1 || true
cat "$T/plain.out"
wait_line "$T/serve.log" "^line(unix): FORGED" || { cat "$T/serve.log"; fail "the forged unix connection never arrived"; }

under_shim timeout 30 "$BIN/prog_forge" client "$P" REAL || fail "the real client failed"
wait_line "$T/serve.log" '^line(tcp): REAL' || fail "the real client's line never arrived"
under_shim timeout 30 "$BIN/prog_forge" client "$P" QUIT || fail "the QUIT client failed"
i=0; while kill -0 "$SPID" 2>/dev/null && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
cat "$T/serve.log"

! grep -q '10\.9\.8\.7' "$T/serve.log" ||
    fail "the server reported the forged address 10.9.8.7: a local user chose its peer address"
! grep -q '^line(tcp): FORGED' "$T/serve.log" ||
    fail "the forged connection reached the server's accept() on the rudp listener"
grep -q '^forge: closed' "$T/forge.out" || fail "the forged connection was not closed by the server side"
echo "ok: forged engine connection refused; no forged address reported"
grep -q '^accepted unix family=AF_UNIX' "$T/serve.log" ||
    fail "getpeername on the application's own unix socket did not stay AF_UNIX"
echo "ok: a forged name on a plain unix connection is not decoded as a TCP address"
[ "$(grep -c '^accepted tcp accept=127\.0\.0\.1:[0-9]* getpeername=127\.0\.0\.1:' "$T/serve.log")" = 2 ] ||
    fail "the real clients were not accepted with their own address"
grep -q 'foreign connections to our listeners refused 1$' "$T/serve.log" ||
    fail "the refusal was not counted (RUDP_STATS)"
echo "ok: real clients accepted with 127.0.0.1; one foreign connection counted"
