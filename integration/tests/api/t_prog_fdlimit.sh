#!/bin/sh
# tests/prog_fdlimit.c over kernel TCP, then under the shim: with every fd
# number its soft RLIMIT_NOFILE (128) allows in use, a program's connect()
# succeeds (blocking, non-blocking; its first and a later one), carries
# bytes, and getrlimit() still says 128; TCP needs no new fd for it.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -le 192 ]; then
    echo "skip: hard RLIMIT_NOFILE $hard leaves no room above the 128 the test sets"
    exit 0
fi
need_bin prog_fdlimit
run_both fdlimit "$BIN/prog_fdlimit"

# The hard limit at 128 too (issue 43, finding 5): nothing can be raised and
# the shim has no fd for its socket. TCP connects; so does the program
# under the shim, over kernel TCP, said at warn (once per destination) and
# counted; with a key (rudp or nothing) it fails with ENOBUFS, said.
timeout -k 5 60 "$BIN/prog_fdlimit" hard >"$T/hard.tcp" 2>&1 ||
    { show "$T/hard.tcp"; fail "prog_fdlimit hard over kernel TCP failed"; }
rc=0
run_app "$BIN/prog_fdlimit" hard >"$T/hard.shim" 2>&1 || rc=$?
[ "$rc" = 0 ] || { show "$T/hard.shim"; fail "prog_fdlimit hard under the shim exited $rc"; }
n=$(grep -c "warn: connect to 127.0.0.1:[0-9]*: over kernel TCP, not rudp: no file descriptor left in this process" "$T/hard.shim") || true
[ "$n" = 1 ] || { show "$T/hard.shim"; fail "at the hard limit: $n warn lines for one destination, not 1"; }
# (counted too: "no file descriptor for rudp" in RUDP_STATS and rudp-stat,
# which only a process with an engine prints; this one never had room for one)
echo "ok: at the hard limit the connects go over kernel TCP, said once"
make_key "$T/key"
rc=0
run_app env RUDP_KEY_FILE="$T/key" "$BIN/prog_fdlimit" hard >"$T/hard.key" 2>&1 || rc=$?
[ "$rc" = 4 ] && grep -q "^refused: .*ENOBUFS" "$T/hard.key" &&
    grep -q "warn: connect to .*: failed (ENOBUFS): no file descriptor left in this process .* the key forbids kernel TCP" "$T/hard.key" ||
    { show "$T/hard.key"; fail "keyed, at the hard limit: not ENOBUFS with its warn line (exit $rc)"; }
echo "ok: keyed, at the hard limit the connect fails with ENOBUFS, said"
# With a key and RUDP_FALLBACK=tcp (and RUDP_ACCEPT_TCP=1 for the server
# side, in this same process) the user allowed kernel TCP: it goes there,
# said, as without a key (on 993ddbf the key alone refused it, ENOBUFS).
rc=0
run_app env RUDP_KEY_FILE="$T/key" RUDP_FALLBACK=tcp RUDP_ACCEPT_TCP=1 "$BIN/prog_fdlimit" hard \
    >"$T/hard.keytcp" 2>&1 || rc=$?
[ "$rc" = 0 ] && grep -q "warn: connect to .*: over kernel TCP, not rudp: no file descriptor left" "$T/hard.keytcp" ||
    { show "$T/hard.keytcp"; fail "keyed, RUDP_FALLBACK=tcp, at the hard limit: not over kernel TCP (exit $rc)"; }
echo "ok: keyed with RUDP_FALLBACK=tcp, at the hard limit the connect goes over kernel TCP, said"
