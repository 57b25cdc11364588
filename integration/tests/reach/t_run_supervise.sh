#!/bin/sh
# rudp-run chooses the front end that reaches a program (issue 35): the
# supervisor for one the preload cannot reach (statically linked, Go, not
# glibc's loader), the preload for a dynamic glibc one, and says which, and
# why, at --log info; --supervise and --no-supervise force the choice;
# where the supervisor cannot run it says why. Server: tests/prog_reach
# under the preloaded shim; nftables counts TCP and UDP on its port
# (integration/lib/reachlib.sh).
#   1. rudp-supervise --classify (what rudp-run asks): the static
#      prog_reach, the Go client, the dynamic prog_reach, a program whose
#      interpreter is musl's loader (linked here with -Wl,--dynamic-linker:
#      it need not run), a shell script (its interpreter's: /bin/sh);
#   2. rudp-run, automatic: the static client and the Go client go under
#      the supervisor (0 TCP segments), the dynamic client is preloaded
#      (0 TCP segments; rudp-run says it preloads);
#   3. --no-supervise with the static client: a warning, kernel TCP;
#      --supervise with the dynamic client: the supervisor, 0 TCP;
#   4. the supervisor unavailable, for real: rudp-run run under a
#      supervisor already (rudp-supervise --pass), where the kernel refuses
#      a second seccomp listener (EBUSY): --probe says so; the static client
#      runs with a warning that says why, over kernel TCP; with --supervise
#      rudp-run refuses (status 2) and the program does not run.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_static CLI prog_reach
RUN="$TOOLS/rudp-run --shim $SHIM"

# 1. The classification, as rudp-run gets it (status 0: the supervisor,
# 1: the preload).
printf 'int main(void) { return 0; }\n' >"$T/m.c"
cc -o "$T/musl_prog" -Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1 "$T/m.c" ||
    fail "cannot link a program with musl's loader as its interpreter"
printf '#!/bin/sh\nexit 0\n' >"$T/script.sh"
chmod +x "$T/script.sh"
GO=""
if command -v go >/dev/null 2>&1; then
    go_program goclient "$T/reachclient"
    GO=$T/reachclient
fi
classify() { # classify FILE STATUS ERE
    _rc=0
    _why=$("$SUP" --classify "$1") || _rc=$?
    [ "$_rc" = "$2" ] && echo "$_why" | grep -Eq "$3" ||
        fail "classify $1: status $_rc ($_why), not $2 ($3)"
    echo "classify: $(basename "$1"): $_rc, $_why"
}
classify "$CLI" 0 "^statically linked"
[ -z "$GO" ] || classify "$GO" 0 "^a Go program"
classify "$BIN/prog_reach" 1 "^dynamically linked against glibc"
classify "$T/musl_prog" 0 "^loaded by /lib/ld-musl-x86_64.so.1, not glibc's loader"
classify "$T/script.sh" 1 "^a script run by /bin/sh, dynamically linked against glibc"

# 2. Automatic: what rudp-run says at --log info, and where the bytes went.
reach_case auto_static 1000000 "^echoed 1000000$" $RUN --log info "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "auto_static: $TCP TCP segments: not under the supervisor"
grep -q "^rudp-run: .*prog_reach_static: under the supervisor, rudp-supervise: it is statically linked" \
    "$T/auto_static.client" || { show "$T/auto_static.client"; fail "auto_static: rudp-run did not say it chose the supervisor"; }
echo "auto_static: $(grep '^rudp-run:' "$T/auto_static.client")"
if [ -n "$GO" ]; then
    reach_case auto_go 1048576 "^echoed 1048576 true <nil>$" $RUN --log info "$GO" "127.0.0.1:$PORT"
    [ "$TCP" = 0 ] || fail "auto_go: $TCP TCP segments: not under the supervisor"
    grep -q "^rudp-run: .*reachclient: under the supervisor, rudp-supervise: it is a Go program" \
        "$T/auto_go.client" || { show "$T/auto_go.client"; fail "auto_go: rudp-run did not say it chose the supervisor"; }
    echo "auto_go: $(grep '^rudp-run:' "$T/auto_go.client")"
else
    echo "auto_go: not run: no Go toolchain (golang-go, which integration/deps.sh test installs)"
fi
# The dynamic client, preloaded: 0 TCP too (the preloaded shim's), and
# rudp-run says it preloads.
reach_case auto_dynamic 1000000 "^echoed 1000000$" $RUN --log info "$BIN/prog_reach" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "auto_dynamic: $TCP TCP segments: not preloaded"
grep -q "^rudp-run: .*prog_reach: preloading librudp_shim.so: it is dynamically linked against glibc" \
    "$T/auto_dynamic.client" || { show "$T/auto_dynamic.client"; fail "auto_dynamic: rudp-run did not say it preloads"; }
echo "auto_dynamic: $(grep '^rudp-run:' "$T/auto_dynamic.client")"
# With the default log level (warn) rudp-run says nothing of either.
env -u RUDP_LOG $RUN "$CLI" bogus >"$T/quiet.out" 2>&1 || true
grep -q '^rudp-run' "$T/quiet.out" && fail "rudp-run spoke at the default log level: $(cat "$T/quiet.out")"

# 3. Forced.
reach_case forced_preload 1000000 "^echoed 1000000$" $RUN --no-supervise "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "forced_preload: no TCP segment: --no-supervise must leave the static client on kernel TCP"
grep -q "^rudp-run: warning: .*prog_reach_static: it is statically linked .*, which LD_PRELOAD cannot reach (--no-supervise); its connections will use kernel TCP$" \
    "$T/forced_preload.client" || { show "$T/forced_preload.client"; fail "forced_preload: no warning"; }
echo "forced_preload: $(grep '^rudp-run:' "$T/forced_preload.client")"
reach_case forced_supervise 1000000 "^echoed 1000000$" $RUN --log info --supervise "$BIN/prog_reach" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "forced_supervise: $TCP TCP segments"
grep -q "^rudp-run: .*prog_reach: under the supervisor, rudp-supervise (--supervise): it is dynamically linked against glibc" \
    "$T/forced_supervise.client" || { show "$T/forced_supervise.client"; fail "forced_supervise: rudp-run did not say it chose the supervisor"; }
echo "forced_supervise: $(grep '^rudp-run:' "$T/forced_supervise.client")"

# 4. Unavailable: a second seccomp listener in one process tree is refused
# by the kernel (EBUSY), as for a program already under another
# supervisor (or a container runtime's).
_why=""
_rc=0
_why=$("$SUP" --pass "$SUP" --probe) || _rc=$?
[ "$_rc" = 1 ] && echo "$_why" | grep -q "^seccomp: Device or resource busy (already under a seccomp user-notification listener" ||
    fail "probe under a supervisor: status $_rc, $_why"
echo "probe under a supervisor: $_why"
"$SUP" --probe >"$T/probe" || fail "probe alone: $(cat "$T/probe")"
echo "probe alone: $(cat "$T/probe")"
reach_case unavailable 1000000 "^echoed 1000000$" "$SUP" --pass $RUN "$CLI" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" -gt 0 ] || fail "unavailable: no TCP segment"
grep -q "^rudp-run: warning: .*prog_reach_static: it is statically linked .*, which LD_PRELOAD cannot reach, and the supervisor cannot run here (seccomp: Device or resource busy .*); its connections will use kernel TCP$" \
    "$T/unavailable.client" || { show "$T/unavailable.client"; fail "unavailable: no warning saying why"; }
echo "unavailable: $(grep '^rudp-run:' "$T/unavailable.client")"
_rc=0
"$SUP" --pass $RUN --supervise "$CLI" bogus >"$T/refused.out" 2>&1 || _rc=$?
[ "$_rc" = 2 ] && grep -q "^rudp-run: --supervise: the supervisor cannot run here: seccomp: Device or resource busy" "$T/refused.out" ||
    { show "$T/refused.out"; fail "--supervise where unavailable: status $_rc, not 2 with the reason"; }
grep -q "usage" "$T/refused.out" && fail "--supervise where unavailable: the program ran"
echo "forced, unavailable: status 2: $(cat "$T/refused.out")"
echo "ok"
