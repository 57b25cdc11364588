#!/bin/sh
# tests/prog_sigdefer.c over kernel TCP, then under the shim: realtime
# signals queued as fast as they are taken to an event loop's threads
# while their bytes are read and written in memory, every one handled once
# with its siginfo, none left held; sigaction() and signal() reporting the
# program's own handlers, SA_RESETHAND's one run. Under the shim some must
# have come inside the shim's short sections and been deferred to their
# end (shim/base/crit.c; RUDP_STATS: "deferred to the section's end").
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the engine in the program's fd table whatever the hard fd limit here:
# an engine with a table of its own takes no app thread's turn
export RUDP_FD_TABLE=shared

need_bin prog_sigdefer
rc=0
timeout -k 5 120 "$BIN/prog_sigdefer" >"$T/tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/tcp"
[ "$rc" = 0 ] || fail "prog_sigdefer over kernel TCP exited $rc"

RUDP_STATS=1 run_app_t 120 "$BIN/prog_sigdefer" >"$T/shim" 2>"$T/stats" || rc=$?
sed 's/^/shim: /' "$T/shim"
[ "$rc" = 0 ] || { show "$T/stats"; fail "prog_sigdefer under the shim exited $rc"; }
assert_transport "$T/shim"
d=$(grep -a "signals that came inside the shim's short sections" "$T/stats" |
    sed -n 's/.*deferred to the section.s end \([0-9]*\), handler run at once (not queued again) \([0-9]*\).*/\1 \2/p' |
    sort -n | tail -1)
[ "${d%% *}" -ge 1 ] 2>/dev/null ||
    { show "$T/stats"; fail "no signal came inside a section and was deferred (${d:-no line})"; }
echo "ok: signals deferred to the end of the shim's sections: ${d%% *} (run at once: ${d#* })"
