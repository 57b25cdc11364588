#!/bin/sh
# CPython's own regression tests for sockets, run over kernel TCP and then
# under the shim (both ends in one process: the tests talk to themselves
# over loopback), and compared test by test. By hand, not in `make test`:
# about 3 minutes each way, and some of CPython's tests time themselves
# (see docs/compatibility.md).
#
#   integration/compat/cpython_suite.sh [TEST...]   (default: the list below)
#
# Installs libpython3.11-testsuite (integration/deps.sh cpython) if missing.
# Prints each test whose outcome differs (ok, failure, error, skipped) and
# the engines' counters of the shim run (RUDP_STATS); exits 1 if a test
# passes over kernel TCP and not under the shim, 0 otherwise. The shim runs
# with RUDP_FALLBACK=none and RUDP_ACCEPT_TCP=0: nothing goes by kernel TCP.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
SO=$BUILD/librudp_shim.so
PY=/usr/bin/python3
[ -f "$SO" ] || { echo "no $SO: run make all first" >&2; exit 2; }
"$ROOT/integration/deps.sh" cpython

TESTS=${*:-"test_socket test_ssl test_asyncio test_selectors test_epoll test_poll test_select
    test_socketserver test_httplib test_httpservers test_urllib2_localnet test_ftplib
    test_poplib test_smtplib test_imaplib test_xmlrpc test_telnetlib test_asyncore
    test_asynchat test_wsgiref"}
D=$(mktemp -d /tmp/cpython_suite.XXXXXX)
trap 'rm -rf "$D"' EXIT

# Lists a JUnit XML file's test cases as "name|outcome".
cat >"$D/outcomes.py" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).iter("testcase"):
    kinds = [c.tag for c in tc if c.tag in ("failure", "error", "skipped")]
    print("%s|%s" % (tc.get("name"), kinds[0] if kinds else "ok"))
PYEOF

# run NAME [ENV...]: the tests one after the other, outcomes written as
# JUnit XML; 'network' is only loopback for these tests. AF_VSOCK tests
# are left out: they are not TCP, and where the host has VSOCK but no peer
# their accept() waits until the timeout ends the whole file.
run() {
    _n=$1; shift
    # shellcheck disable=SC2086 # TESTS is a list
    env "$@" timeout 1800 "$PY" -m test $TESTS -u network --timeout 120 -i '*VSOCK*' \
        --junit-xml "$D/$_n.xml" >"$D/$_n.log" 2>&1 || true
    [ -s "$D/$_n.xml" ] || { tail -40 "$D/$_n.log"; echo "FAIL: the $_n run wrote no results"; exit 1; }
    "$PY" "$D/outcomes.py" "$D/$_n.xml" | sort -u >"$D/$_n.out"
    echo "$_n: $(wc -l <"$D/$_n.out") tests, $(grep -c '|ok$' "$D/$_n.out" || true) ok," \
        "$(grep -Ec '\|(failure|error)$' "$D/$_n.out" || true) failed or in error," \
        "$(grep -c '|skipped$' "$D/$_n.out" || true) skipped"
}

run tcp
run shim "LD_PRELOAD=$SO" RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0 RUDP_STATS=1 \
    "RUDP_LOG_FILE=$D/rudp.log"
grep '^  connections: ' "$D/rudp.log" | sed 's/^  /shim: /' | head -3

# Outcomes that differ, by test.
join -t '|' -a1 -a2 -e none -o 0,1.2,2.2 "$D/tcp.out" "$D/shim.out" |
    awk -F'|' '$2 != $3 { print "differs: " $1 ": tcp " $2 ", shim " $3 }' >"$D/diff"
# Differences README explains (Known limits, What a program can tell):
# these are printed, not counted.
# Loopback: kernel TCP delivers bytes and resets before send()/close()
# returns; these tests look at the peer at once (the ssl ones only lose
# the race in some runs).
KNOWN="test.test_epoll.TestEPoll.test_control_and_wait
    test.test_ssl.TestPreHandshakeClose.test_preauth_data_to_tls_server
    test.test_ssl.TestPreHandshakeClose.test_preauth_data_to_tls_client"
for k in $KNOWN; do
    sed -i "s/^differs: $k: .*/& (known: docs/limits.md, What a program can tell)/" "$D/diff"
done
cat "$D/diff"
worse=$(grep -v '(known: ' "$D/diff" | grep -c ': tcp ok, shim \(failure\|error\|none\)' || true)
if [ "$worse" -gt 0 ]; then
    echo "FAIL: $worse test(s) pass over kernel TCP and not under the shim"
    grep -A25 '^\(FAIL\|ERROR\): ' "$D/shim.log" | head -200
    exit 1
fi
echo "ok: no test passes over kernel TCP and fails under the shim"
