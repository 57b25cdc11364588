#!/bin/sh
# curl to a port nobody listens on (nothing on TCP or UDP), under the shim
# (kernel TCP with RUDP_NO_SHIM=1): it must fail with exit 7 and "Couldn't
# connect", every address it tried refused -- a refusal, not a connect
# timeout -- over 127.0.0.1, [::1] and localhost (both: curl tries each).
# The refusal is told from a timeout by the error itself, not by a clock:
# curl -v names the errno of each failed attempt ("Connection refused", not
# "Connection timed out"), and the shim's handshake budget is pinned at 30 s
# (RUDP_CONNECT_TIMEOUT, its default), so a handshake that went unanswered
# could only end as a timeout, long after the refusal would have come.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

export RUDP_CONNECT_TIMEOUT=30s
P=$(free_port)
for url in "http://127.0.0.1:$P/" "http://[::1]:$P/" "http://localhost:$P/"; do
    case "$url" in *::1* | *localhost*) have_ipv6_lo || { skip_ipv6 "$url"; continue; } ;; esac
    t0=$(ms_now)
    rc=0
    run_app_t 90 curl -g -v -sS --connect-timeout 60 -o /dev/null "$url" 2>"$T/err" || rc=$?
    ms=$(( $(ms_now) - t0 ))
    grep -v '^[<>{}]' "$T/err" | grep -E 'Trying|connect|curl:' || true
    [ "$rc" = 7 ] || fail "$url: curl exited $rc, want 7 (couldn't connect)"
    grep -q "Couldn't connect" "$T/err" || fail "$url: no \"Couldn't connect\" in curl's error"
    tried=$(grep -c '^\*   Trying ' "$T/err" || true)
    refused=$(grep -c '^\* connect to .* failed: Connection refused$' "$T/err" || true)
    [ "$tried" -ge 1 ] || fail "$url: curl tried no address"
    [ "$refused" = "$tried" ] ||
        fail "$url: $refused of $tried attempts refused: $(grep '^\* connect to .* failed' "$T/err" | tr '\n' ' ')"
    case "$url" in
    *localhost*) [ "$tried" = 2 ] || fail "$url: curl tried $tried addresses, want 127.0.0.1 and ::1" ;;
    esac
    echo "ok: $url: exit 7, \"Couldn't connect\", $refused of $tried attempts refused ($ms ms)"
done
