#!/bin/sh
# Issue 34 item 7: a bad setting (RUDP_LOG=verbose) under LD_PRELOAD.
#  - a program that makes no TCP socket (ls, sh, a UDP socket) runs as
#    without the shim: its own exit status, nothing on stderr;
#  - the first TCP socket() fails with EACCES, and one line on stderr names
#    the variable, its value, what it accepts and the errno; a child of a
#    shell is refused the same way;
#  - a bad key file: TCP refused too (no fallback to plaintext);
#  - rudp-run refuses the same setting itself, exit 2, before the program
#    starts (it never runs), with its own "rudp-run:" line.
# (docs/configuration.md, "A bad setting", has the reasons.)
. "$(dirname "$0")/../../lib/lib.sh"
LDP=$(shim_preload)
PROBE=$BIN/prog_tcpsocket
[ -x "$PROBE" ] || fail "$PROBE not built (make progs)"

rc=0
env LD_PRELOAD="$LDP" RUDP_LOG=verbose ls "$ROOT" >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 0 ] || fail "ls with RUDP_LOG=verbose: exit $rc, $(cat "$T/err")"
[ ! -s "$T/err" ] || fail "ls with RUDP_LOG=verbose wrote to stderr: $(cat "$T/err")"
grep -qx README.md "$T/out" || fail "ls printed no README.md: $(cat "$T/out")"
rc=0; env LD_PRELOAD="$LDP" RUDP_LOG=verbose sh -c 'exit 7' 2>"$T/err" || rc=$?
[ "$rc" = 7 ] && [ ! -s "$T/err" ] || fail "sh -c 'exit 7': exit $rc, $(cat "$T/err")"
rc=0; env LD_PRELOAD="$LDP" RUDP_LOG=verbose "$PROBE" udp 2>"$T/err" || rc=$?
[ "$rc" = 0 ] && [ ! -s "$T/err" ] || fail "a UDP socket with RUDP_LOG=verbose: exit $rc, $(cat "$T/err")"
echo "ok: ls, sh and a UDP socket run unaffected, silent, with their own exit status"

# refused WHAT ENV...: the probe's TCP socket gets EACCES (exit 13) and one
# line names the problem; $T/err
refused() {
    what=$1; shift
    rc=0; env LD_PRELOAD="$LDP" "$@" "$PROBE" tcp 2>"$T/err" || rc=$?
    [ "$rc" = 13 ] || fail "$what: socket() gave exit $rc, want 13 (EACCES): $(cat "$T/err")"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "$what: not one line: $(cat "$T/err")"
    grep -q "EACCES" "$T/err" || fail "$what: the line does not name the errno: $(cat "$T/err")"
}
refused "RUDP_LOG=verbose" RUDP_LOG=verbose
grep -q 'RUDP_LOG="verbose"' "$T/err" && grep -q "off, error, warn, info, debug" "$T/err" ||
    fail "RUDP_LOG=verbose: the line does not name the variable and the levels: $(cat "$T/err")"
echo "ok: the first TCP socket gets EACCES, one line: $(cat "$T/err")"
rc=0; env LD_PRELOAD="$LDP" RUDP_CC=foo "$PROBE" tcp6 2>/dev/null || rc=$?
[ "$rc" = 13 ] || fail "RUDP_CC=foo: an IPv6 TCP socket gave exit $rc, want 13"
rc=0; env LD_PRELOAD="$LDP" RUDP_CC=foo sh -c "$PROBE tcp; echo child \$?" >"$T/out" 2>"$T/err" || rc=$?
[ "$(cat "$T/out")" = "child 13" ] && grep -q 'RUDP_CC="foo"' "$T/err" ||
    fail "a shell's child: $(cat "$T/out") $(cat "$T/err")"
echo "ok: IPv6 too, and a shell's child is refused the same way"

echo garbage >"$T/bad.key"; chmod 600 "$T/bad.key"
refused "a bad key file" RUDP_KEY_FILE="$T/bad.key"
grep -q "RUDP_KEY_FILE" "$T/err" || fail "a bad key file: $(cat "$T/err")"
echo "ok: a bad key file: TCP refused, not plaintext: $(cat "$T/err")"

rc=0
RUDP_LOG=verbose "$TOOLS/rudp-run" --shim "$SHIM" sh -c "touch '$T/ran'" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "rudp-run with RUDP_LOG=verbose: exit $rc, want 2: $(cat "$T/err")"
[ ! -e "$T/ran" ] || fail "rudp-run started the program with a bad setting"
grep -q '^rudp-run: ' "$T/err" && grep -q 'RUDP_LOG' "$T/err" && grep -q verbose "$T/err" ||
    fail "rudp-run's message: $(cat "$T/err")"
echo "ok: rudp-run refuses it itself, exit 2, the program not started: $(cat "$T/err")"
