#!/bin/sh
# Issue 34, item 3: a connect refused because nothing listens is as quiet
# under the shim as over kernel TCP, and its line at info names LOCAL > PEER.
# `nc -z 127.0.0.1 PORT` with nothing on PORT, five times (a scan, a retry
# loop), first over kernel TCP, then under the shim with RUDP_FALLBACK=tcp
# (the default) and =none:
#  - every run exits 1 with nothing on stderr, as kernel TCP's;
#  - with RUDP_LOG=info each run has one "connect failed: Connection
#    refused" line, led by "127.0.0.1:N > 127.0.0.1:PORT id ID", and no
#    warn line.
# The old code printed "warn: connection 1: connect failed: Connection
# refused" for each (with the fallback, without naming the peer).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

P=$(free_port)

# scan LABEL [VAR=VALUE...]: five refused nc -z, their stderr in $T/LABEL.err
scan() {
    _l=$1; shift
    : >"$T/$_l.err"
    for _i in 1 2 3 4 5; do
        _rc=0
        env "$@" timeout -k 5 30 nc -z 127.0.0.1 "$P" 2>>"$T/$_l.err" || _rc=$?
        [ "$_rc" = 1 ] || { show "$T/$_l.err"; fail "$_l: nc -z exited $_rc, want 1 (refused)"; }
    done
}

scan tcp
[ ! -s "$T/tcp.err" ] || { show "$T/tcp.err"; fail "kernel TCP: nc -z printed something"; }
echo "ok: kernel TCP: five refused nc -z, exit 1, nothing on stderr"
[ "$SHIM_MODE" = shim ] || exit 0

for fb in tcp none; do
    scan "shim-$fb" LD_PRELOAD="$APP_LDP" RUDP_FALLBACK=$fb
    [ ! -s "$T/shim-$fb.err" ] || { show "$T/shim-$fb.err"; fail "shim, RUDP_FALLBACK=$fb: stderr not empty"; }
    echo "ok: shim, RUDP_FALLBACK=$fb: five refused nc -z, exit 1, nothing on stderr"
    scan "info-$fb" LD_PRELOAD="$APP_LDP" RUDP_FALLBACK=$fb RUDP_LOG=info
    ! grep -q ' warn: ' "$T/info-$fb.err" || { show "$T/info-$fb.err"; fail "RUDP_FALLBACK=$fb: a warn line"; }
    n=$(grep -Ec "rudp\[[0-9]+\] info: 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:$P id [0-9a-f]{16}: connect failed: Connection refused" \
        "$T/info-$fb.err" || true)
    [ "$n" = 5 ] || { show "$T/info-$fb.err"; fail "RUDP_FALLBACK=$fb: $n info lines naming LOCAL > PEER, want 5"; }
    echo "ok: shim, RUDP_FALLBACK=$fb, RUDP_LOG=info: $(grep -m1 'connect failed' "$T/info-$fb.err" | sed 's/.*info: //')"
done
