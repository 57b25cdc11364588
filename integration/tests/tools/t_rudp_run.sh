#!/bin/sh
# rudp-run: --help (every setting, default, controller), --version (the
# Makefile's, and the commit), a missing program (one line, exit 127), option errors,
# what it says of programs LD_PRELOAD cannot reach (static, Go: under the
# supervisor, or a warning where it cannot work; t_run_supervise tests the
# choice itself) and of the others (nothing at the default log level), a transfer
# through it, and a bad setting reported by name with exit status 2.
. "$(dirname "$0")/../../lib/lib.sh"
RUN="$TOOLS/rudp-run --shim $SHIM"

$RUN --help >"$T/help" || fail "--help failed"
grep -q -- "--redirect" "$T/help" || fail "--help does not describe --redirect"
echo "ok: --help"

# Every setting of config.c's table of known variables appears in --help
# and the man pages, with the same options (tests/check_settings.sh, which
# make test runs too); every controller and the defaults in --help.
"$ROOT/tests/check_settings.sh" "$TOOLS/rudp-run" >"$T/settings" 2>&1 ||
    fail "tests/check_settings.sh: $(cat "$T/settings")"
vars=$(sed -n 's/^settings OK: the \([0-9]*\) .*/\1/p' "$T/settings")
for w in bbr cubic newreno "default bbr" "default warn" "default 30s" "default 8M" \
         "64K to 1G" "1200 to 65507" "--engines" "--memory" "--source-limit" "--offload" \
         "--qlog-dir" "--version" "--key-file" "--genkey" "umask 077"; do
    grep -q -- "$w" "$T/help" || fail "--help does not say '$w'"
done
echo "ok: --help names all $vars settings, their defaults and the controllers"

# The version, then the commit: git's name for HEAD (-dirty if the tree had
# changes), "unknown" in a checkout without git (a tarball).
want=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
$RUN --version >"$T/ver" || fail "--version failed"
line=$(head -1 "$T/ver")
case $line in
"rudp-run (librudp_shim) $want, commit "?*) ;;
*) fail "--version says '$line', not the Makefile's $want and a commit" ;;
esac
commit=${line##*, commit }
if [ -e "$ROOT/.git" ] && head=$(git -C "$ROOT" rev-parse -q --verify HEAD 2>/dev/null); then
    [ "$(git -C "$ROOT" rev-parse -q --verify "${commit%-dirty}^{commit}" 2>/dev/null)" = "$head" ] ||
        fail "--version names commit $commit, the checkout is at $head (built before the last commit?)"
else
    [ "$commit" = unknown ] || fail "--version names commit $commit where git names none"
fi
echo "ok: --version: $line"

# Without --shim: build/bin/rudp-run, as make leaves it, preloads the
# library of its own build (build/asan/bin/rudp-run the ASan one), and
# tools/rudp-run the source tree's build/librudp_shim.so.
lib_of() { env -u RUDP_SHIM "$1" --version | sed -n 's/^library: //p' | xargs readlink -f; }
[ "$(lib_of "$TOOLS/rudp-run")" = "$(readlink -f "$SHIM")" ] ||
    fail "$TOOLS/rudp-run preloads $(lib_of "$TOOLS/rudp-run"), not $SHIM"
if [ -f "$ROOT/build/librudp_shim.so" ]; then
    [ "$(lib_of "$ROOT/tools/rudp-run")" = "$(readlink -f "$ROOT/build/librudp_shim.so")" ] ||
        fail "tools/rudp-run preloads $(lib_of "$ROOT/tools/rudp-run"), not build/librudp_shim.so"
fi
echo "ok: without --shim, $TOOLS/rudp-run preloads $SHIM; tools/rudp-run the source tree's build"

for p in nosuchprog-rudp ./no/such/prog; do
    rc=0; $RUN "$p" >"$T/out" 2>"$T/err" || rc=$?
    [ "$rc" = 127 ] || fail "a missing program $p: exit $rc"
    [ "$(wc -l <"$T/err")" = 1 ] && [ ! -s "$T/out" ] || fail "a missing program: $(cat "$T/err")"
done
rc=0; $RUN nosuchprog-rudp 2>"$T/err" || rc=$?
[ "$(cat "$T/err")" = "rudp-run: nosuchprog-rudp: command not found" ] ||
    fail "a missing program: $(cat "$T/err")"
echo "ok: a missing program: one line, exit 127: $(cat "$T/err")"

rc=0; $RUN --bogus true 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- "--bogus" "$T/err" || fail "an unknown option: exit $rc, $(cat "$T/err")"
echo "ok: an unknown option is named, exit 2"

printf 'int main(void){return 0;}\n' >"$T/s.c"
gcc -static -o "$T/static" "$T/s.c" 2>/dev/null || fail "cannot build a static program"
$RUN --log info "$T/static" 2>"$T/err" || fail "a static program did not run"
grep -q "statically linked" "$T/err" || fail "nothing said of a static program: $(cat "$T/err")"
echo "ok: a statically linked program runs: $(cat "$T/err")"

cp /bin/true "$T/gobin"
printf 'Go\0\0\0\0' >"$T/note"
objcopy --add-section .note.go.buildid="$T/note" "$T/gobin" 2>/dev/null || fail "objcopy failed"
$RUN --log info "$T/gobin" 2>"$T/err" || fail "the Go-marked program did not run"
grep -q "Go program" "$T/err" || fail "nothing said of a Go program: $(cat "$T/err")"
echo "ok: a Go program runs: $(cat "$T/err")"

$RUN /bin/true 2>"$T/err" || fail "true failed under rudp-run"
[ ! -s "$T/err" ] || fail "a dynamic glibc program drew a warning: $(cat "$T/err")"
echo "ok: no warning for an ordinary program"

port=$(free_port)
head -c 1000000 /dev/urandom >"$T/data"
$RUN nc -l 127.0.0.1 "$port" >"$T/got" </dev/null 2>"$T/srv.err" &
srv=$!
PIDS="$PIDS $srv"
wait_udp "$port"
timeout 30 $RUN --stats nc -N 127.0.0.1 "$port" <"$T/data" 2>"$T/stats" || fail "client failed"
i=0; while kill -0 "$srv" 2>/dev/null && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ "$(sha "$T/data")" = "$(sha "$T/got")" ] || fail "data differs through rudp-run"
grep -q "datagrams out" "$T/stats" || fail "--stats printed nothing"
echo "ok: 1 MB through rudp-run, counters printed"

rc=0; $RUN --keepalive banana /bin/true 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q -- "--keepalive banana" "$T/err" || fail "bad setting: exit $rc, $(cat "$T/err")"
echo "ok: a bad setting is reported by its option, exit 2: $(cat "$T/err")"
