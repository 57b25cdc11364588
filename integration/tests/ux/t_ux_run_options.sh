#!/bin/sh
# Issue 34 item 6: rudp-run's options as a user types them.
#  - --opt=value works as --opt value does (--log=info, --cc=cubic,
#    -l info); an option that takes no value refuses one (--stats=1), and
#    an empty one (--log=) is refused by name, exit 2;
#  - no arguments: a short usage (at most 5 lines) pointing at --help,
#    exit 2; --help has examples;
#  - --cc foo is refused before the program starts, exit 2, naming the
#    option typed (--cc, not RUDP_CC) and the valid values; so is a
#    combination (--keepalive 90s --idle-timeout 60s).
. "$(dirname "$0")/../../lib/lib.sh"
RUN="$TOOLS/rudp-run --shim $SHIM"

out=$($RUN --log=info --cc=cubic -l debug --connect-timeout=5s printenv RUDP_LOG RUDP_CC RUDP_CONNECT_TIMEOUT 2>"$T/err" | tr '\n' ' ') ||
    fail "--log=info --cc=cubic: $(cat "$T/err")"
[ "$out" = "debug cubic 5s " ] || fail "--log=info --cc=cubic -l debug --connect-timeout=5s set '$out'"
out=$(cd "$T" && $RUN --qlog-dir=q printenv RUDP_QLOG_DIR) || fail "--qlog-dir=q failed"
[ "$out" = "$T/q" ] || fail "--qlog-dir=q exported '$out'"
echo "ok: --opt=value as --opt value"

# refuse WHAT ARGS...: exit 2, the program (touch) not run; $T/err
refuse() {
    what=$1; shift
    rm -f "$T/ran"
    rc=0; $RUN "$@" sh -c "touch '$T/ran'" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 2 ] || fail "$what: exit $rc, want 2: $(cat "$T/err")"
    [ ! -e "$T/ran" ] || fail "$what: the program ran"
    grep -q '^rudp-run: ' "$T/err" || fail "$what: no rudp-run: line: $(cat "$T/err")"
}
refuse "--stats=1" --stats=1
grep -q -- "--stats" "$T/err" && grep -q "takes no value" "$T/err" || fail "--stats=1: $(cat "$T/err")"
refuse "--log=" --log=
grep -q -- "--log needs a value" "$T/err" || fail "--log=: $(cat "$T/err")"
echo "ok: --stats=1 and --log= refused by name: $(cat "$T/err")"

rc=0; $RUN >"$T/out" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] || fail "no arguments: exit $rc"
[ "$(wc -l <"$T/err")" -le 5 ] || fail "no arguments: $(wc -l <"$T/err") lines of usage, want at most 5"
grep -q "usage: rudp-run" "$T/err" && grep -q -- "--help" "$T/err" || fail "no arguments: $(cat "$T/err")"
echo "ok: no arguments: $(wc -l <"$T/err") lines pointing at --help"
$RUN --help >"$T/help" || fail "--help failed"
grep -qi '^examples' "$T/help" || fail "--help has no examples section"
[ "$(sed -n '/^[Ee]xamples/,$p' "$T/help" | grep -c '^ *rudp-run ')" -ge 3 ] ||
    fail "--help: fewer than 3 example commands"
echo "ok: --help has $(sed -n '/^[Ee]xamples/,$p' "$T/help" | grep -c '^ *rudp-run ') examples"

refuse "--cc foo" --cc foo
grep -q -- "--cc foo" "$T/err" && grep -q "cubic" "$T/err" && grep -q "bbr" "$T/err" ||
    fail "--cc foo: does not name --cc foo and the controllers: $(cat "$T/err")"
! grep -q "RUDP_CC=" "$T/err" || fail "--cc foo: named as the variable: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" = 1 ] || fail "--cc foo: not one line: $(cat "$T/err")"
echo "ok: $(cat "$T/err")"
refuse "--cc=foo" --cc=foo
grep -q -- "--cc foo" "$T/err" || fail "--cc=foo: $(cat "$T/err")"
refuse "--keepalive 90s --idle-timeout 60s" --keepalive 90s --idle-timeout=60s
grep -q -- "--keepalive 90s must be shorter than --idle-timeout 60s" "$T/err" ||
    fail "a combination: $(cat "$T/err")"
echo "ok: $(cat "$T/err")"
