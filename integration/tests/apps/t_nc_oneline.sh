#!/bin/sh
# `printf hi | nc -N 127.0.0.1 P` delivers exactly "hi" to `nc -l P`, both
# under the shim (kernel TCP with RUDP_NO_SHIM=1), and both exit 0 by
# themselves.  Then the harder exit case: `nc -q 0` (Debian: quit right
# after EOF on stdin, no half-close, no waiting for the peer) must deliver
# too -- kernel TCP sends what was written before the process exits.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

oneline() {
    oc=$1; shift
    P=$(free_port)
    bg_app_io "$oc-l" /dev/null "$T/$oc.got" nc -l 127.0.0.1 "$P"
    SRV=$LAST_PID
    wait_listen "$P"
    rc=0
    printf hi | run_app_t 20 nc "$@" 127.0.0.1 "$P" >/dev/null 2>"$T/$oc-c.log" || rc=$?
    [ "$rc" = 0 ] || { show "$T/$oc-c.log"; fail "$oc: client nc exited $rc"; }
    rc=0
    wait_exit "$SRV" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/$oc-l.log"; fail "$oc: listening nc exited $rc"; }
    got=$(od -An -c "$T/$oc.got" | tr -s ' ')
    if [ "$(stat -c %s "$T/$oc.got")" != 2 ] || [ "$(cat "$T/$oc.got")" != hi ]; then
        fail "$oc: the listener got '$got', want 'h i'"
    fi
    echo "ok: $oc: nc $* delivered exactly \"hi\"; both ends exited 0"
}

oneline half-close -N
oneline quit-at-eof -q 0
