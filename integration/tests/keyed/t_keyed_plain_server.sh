#!/bin/sh
# Issue 43, finding 3: a keyed client (RUDP_KEY_FILE, rudp-run --key-file;
# no fallback to kernel TCP, the keyed default) that meets a plain TCP
# server, not under the shim, fails as before (curl: exit 7, "Couldn't
# connect"; connect(): ECONNREFUSED) but with one line at the default log
# level that names the peer and the likely cause. In a network namespace
# of its own, plain web servers (python3 -m http.server, no shim):
#  a. on this host (127.0.0.1): keyed curl, preloaded and under the
#     supervisor (rudp-run --key-file --supervise): one warn line, "LOCAL >
#     PEER id ID: connect failed: Connection refused: a plain TCP server
#     listens at PEER, not rudp (is it running under the shim, with the same
#     key?)" (the shim looks at this host's TCP listeners, sock_diag: the
#     server is sent nothing); the server saw no request.
#  b. the same with RUDP_FALLBACK=none and no key: the same line, without
#     the key's words.
#  c. a keyed program connecting twice: ECONNREFUSED both times, as before;
#     the line once (once per destination, as the fallback's).
#  d. keyed, to a port where nothing listens: as quiet as kernel TCP (exit
#     7, nothing on stderr).
#  e. on another host (a second namespace, 10.77.4.2, over a veth pair):
#     nothing on this host can tell, so with a key the line says what is
#     likely: "no rudp listener at PEER (ICMP port unreachable): nothing
#     listens there, or a plain TCP server, not under the shim".
# On 4fe1127 the reason was at --log info only: stderr held curl's line.
. "$(dirname "$0")/../../lib/lib.sh"
own_netns "the servers listen in namespaces of the test's own"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
ip link set lo up

make_key "$T/key"
mkdir "$T/www"
echo hello >"$T/www/f.txt"
P=8080
start_bg http "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$P"
wait_tcp "$P" 20

# one_warn NAME ERE...: $T/NAME.err holds exactly one warn line, and it
# matches every ERE
one_warn() {
    _n=$1; shift
    grep ' warn: ' "$T/$_n.err" >"$T/$_n.warn" || true
    [ "$(wc -l <"$T/$_n.warn")" = 1 ] || { show "$T/$_n.err"; fail "$_n: want one warn line"; }
    for _e in "$@"; do
        grep -Eq -- "$_e" "$T/$_n.warn" || { show "$T/$_n.err"; fail "$_n: the warn line does not say: $_e"; }
    done
}
LEAD="warn: 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:$P id [0-9a-f]{16}: connect failed: Connection refused: "
PLAIN="a plain TCP server listens at 127\.0\.0\.1:$P, not rudp \(is it running under the shim"

# a. keyed curl, preloaded and supervised
rc=0
run_app env RUDP_KEY_FILE="$T/key" curl -sS --max-time 20 -o /dev/null "http://127.0.0.1:$P/f.txt" \
    2>"$T/a.err" || rc=$?
[ "$rc" = 7 ] || { show "$T/a.err"; fail "a: curl exited $rc, want 7 (refused, as before)"; }
one_warn a "$LEAD$PLAIN, with the same key\?\)" "with a key a connect does not fall back to kernel TCP"
echo "ok: a. keyed curl: exit 7; $(sed 's/.* warn: //' "$T/a.warn")"
SUP=$TOOLS/rudp-supervise
if _e=$(timeout 10 "$SUP" --probe 2>&1); then
    rc=0
    timeout -k 5 60 "$TOOLS/rudp-run" --shim "$SHIM" --supervise --key-file "$T/key" \
        curl -sS --max-time 20 -o /dev/null "http://127.0.0.1:$P/f.txt" 2>"$T/a-sup.err" || rc=$?
    [ "$rc" = 7 ] || { show "$T/a-sup.err"; fail "a: supervised curl exited $rc, want 7"; }
    one_warn a-sup "$LEAD$PLAIN, with the same key\?\)"
    echo "ok: a. keyed curl under the supervisor: exit 7, the same line"
else
    echo "skip: a. under the supervisor: it cannot work here: $_e"
fi
! grep -q 'GET /f.txt' "$T/http.log" || { show "$T/http.log"; fail "a: the plain server got a request"; }

# b. no key, RUDP_FALLBACK=none
rc=0
run_app env RUDP_FALLBACK=none curl -sS --max-time 20 -o /dev/null "http://127.0.0.1:$P/f.txt" \
    2>"$T/b.err" || rc=$?
[ "$rc" = 7 ] || { show "$T/b.err"; fail "b: curl exited $rc, want 7"; }
one_warn b "$LEAD$PLAIN\?\); RUDP_FALLBACK=none: no fallback to kernel TCP"
echo "ok: b. RUDP_FALLBACK=none, no key: exit 7, the same line without the key's words"

# c. a program's two connects: its errno as before, the line once
rc=0
run_app env RUDP_KEY_FILE="$T/key" "$PY" -c '
import errno, socket, sys
for i in range(2):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", int(sys.argv[1])))
        print("connected")
    except OSError as e:
        print(errno.errorcode.get(e.errno, e.errno))
    s.close()
' "$P" >"$T/c.out" 2>"$T/c.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/c.out" "$T/c.err"; fail "c: the client exited $rc"; }
[ "$(tr '\n' ' ' <"$T/c.out")" = "ECONNREFUSED ECONNREFUSED " ] ||
    { show "$T/c.out" "$T/c.err"; fail "c: want ECONNREFUSED twice"; }
one_warn c "$LEAD$PLAIN"
echo "ok: c. two keyed connects: ECONNREFUSED, ECONNREFUSED; one warn line"

# d. keyed, nothing listening: quiet
Q=$((P + 1))
rc=0
run_app env RUDP_KEY_FILE="$T/key" curl -sS --max-time 20 -o /dev/null "http://127.0.0.1:$Q/" \
    2>"$T/d.err" || rc=$?
[ "$rc" = 7 ] || { show "$T/d.err"; fail "d: curl exited $rc, want 7"; }
! grep -q 'rudp' "$T/d.err" || { show "$T/d.err"; fail "d: a line where nothing listens"; }
echo "ok: d. keyed, nothing listening: exit 7, no line of ours (as quiet as kernel TCP)"

# e. a plain server on another host: a second namespace over a veth pair
unshare -n sleep 600 &
B=$!
PIDS="$PIDS $B"
# until the child has its own namespace (unshare may not have run yet)
i=0
while [ "$(readlink /proc/$B/ns/net 2>/dev/null)" = "$(readlink /proc/self/ns/net)" ]; do
    i=$((i + 1)); [ "$i" -lt 500 ] || fail "e: the second namespace was not made"
    sleep 0.01
done
ip link add kpa type veth peer name kpb netns "$B" || fail "veth"
ip addr add 10.77.4.1/24 dev kpa
ip link set kpa up
nsenter -t "$B" -n sh -c 'ip link set lo up && ip addr add 10.77.4.2/24 dev kpb && ip link set kpb up' ||
    fail "the second namespace"
start_bg http-b nsenter -t "$B" -n "$PY" -m http.server --bind 10.77.4.2 --directory "$T/www" "$P"
i=0
until nsenter -t "$B" -n ss -Htln "sport = :$P" | grep -q .; do
    i=$((i + 1)); [ "$i" -lt 200 ] || fail "e: the server in the second namespace does not listen"
    sleep 0.1
done
curl -sS --max-time 10 -o /dev/null "http://10.77.4.2:$P/f.txt" || fail "e: the plain server is not reachable over kernel TCP"
rc=0
run_app env RUDP_KEY_FILE="$T/key" curl -sS --max-time 20 -o /dev/null "http://10.77.4.2:$P/f.txt" \
    2>"$T/e.err" || rc=$?
[ "$rc" = 7 ] || { show "$T/e.err"; fail "e: curl exited $rc, want 7"; }
one_warn e "warn: 10\.77\.4\.1:[0-9]+ > 10\.77\.4\.2:$P id [0-9a-f]{16}: connect failed: Connection refused: no rudp listener at 10\.77\.4\.2:$P \(ICMP port unreachable\): nothing listens there, or a plain TCP server, not under the shim"
echo "ok: e. keyed curl to a plain server on another host: exit 7; $(sed 's/.* warn: //' "$T/e.warn")"
