#!/bin/sh
# curl to a port nobody listens on (nothing on TCP or UDP), under the shim
# (kernel TCP with RUDP_NO_SHIM=1): it must fail with exit 7 and "Couldn't
# connect" in under 1 s -- a refusal, not a connect timeout -- over
# 127.0.0.1, [::1] and localhost.
. "$(dirname "$0")/lib.sh"
. "$ROOT/integration/shimlib.sh"

P=$(free_port)
for url in "http://127.0.0.1:$P/" "http://[::1]:$P/" "http://localhost:$P/"; do
    t0=$(ms_now)
    rc=0
    run_app_t 20 curl -g -sS -o /dev/null "$url" 2>"$T/err" || rc=$?
    ms=$(( $(ms_now) - t0 ))
    cat "$T/err"
    [ "$rc" = 7 ] || fail "$url: curl exited $rc, want 7 (couldn't connect)"
    grep -q "Couldn't connect" "$T/err" || fail "$url: no \"Couldn't connect\" in curl's error"
    [ "$ms" -lt 1000 ] || fail "$url: refused after $ms ms, want under 1000"
    echo "ok: $url: exit 7, \"Couldn't connect\", $ms ms"
done
