#!/bin/sh
# Socket options and their edges under the supervisor, as Linux TCP answers
# them (issue 35: what the program can tell apart from the preload only
# where the kernel makes it so): tests/prog_sockopts linked statically
# (prog_sockopts_static) runs its checks over kernel TCP first, then under
# rudp-supervise, where every "ok:" line must be the same and every
# connected fd a bridge. Among them: options set before connect and on a
# listener are there after it; TCP's ranges and lengths; bad pointers give
# EFAULT (the supervisor answers TCP's EFAULT where the bridge's own answer
# at the TCP level would be EOPNOTSUPP); SO_ZEROCOPY is either granted with
# its completions (kernel TCP) or refused with EOPNOTSUPP (the bridge
# copies: set before connect the supervisor asks the shim too).
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
PROG=$BIN/prog_sockopts_static
[ -x "$PROG" ] || skip "no static libc here: $PROG not built"

timeout 120 "$PROG" >"$T/plain" 2>&1 || { show "$T/plain"; fail "plain: the checks failed"; }
timeout 120 "$SUP" "$PROG" >"$T/supervised" 2>&1 ||
    { show "$T/supervised"; fail "supervised: the checks failed"; }
same_checks "$T/plain" "$T/supervised"
grep '^zerocopy:' "$T/plain" "$T/supervised"
echo "ok"
