#!/bin/sh
# Runs every integration/t_*.sh (or those named as arguments), each under a
# timeout, and ends with the plain line "N passed, N failed".
set -u
cd "$(dirname "$0")"
pass=0 failed=0 names=""
logs=$(mktemp -d /tmp/rudp-run.XXXXXX)
limit=${RUDP_IT_TIMEOUT:-300}
list=${*:-$(ls t_*.sh 2>/dev/null)}
for t in $list; do
    start=$(date +%s)
    if timeout -k 5 "$limit" sh "./$t" >"$logs/$t.log" 2>&1; then
        pass=$((pass + 1)); echo "PASS $t ($(( $(date +%s) - start ))s)"
    else
        failed=$((failed + 1)); names="$names $t"
        echo "FAIL $t ($(( $(date +%s) - start ))s)"; sed 's/^/    /' "$logs/$t.log" | tail -40
    fi
done
rm -rf "$logs"
echo "$pass passed, $failed failed"
[ "$failed" -eq 0 ]
