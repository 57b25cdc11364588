#!/bin/sh
# A blocking connect() never says EAGAIN where TCP would not. Under the shim
# each client connection takes a UDP port of its own; when the ephemeral
# range had none free (keepers of earlier connections held them), connect()
# returned the UDP socket's EAGAIN (t_engines' "v6 bind0" case, Python's
# BlockingIOError), while TCP, which shares a local port among connections
# to different peers, connected. Played in a private network namespace
# whose ephemeral range is 40000-40003: a server (backlog 8, two engines)
# listens on port 5000 of every address; 24 blocking connects at once, 3
# to each of 127.0.0.1 ... 127.0.0.8, all held open together (more than
# the 4 ports, as TCP allows: 3 per peer), each carrying an echo; over
# kernel TCP first, then under the shim (RUDP_ENGINES=2 at both ends). All
# must connect and echo, and the shim's connections be rudp. The shim's
# client runs with RUDP_FALLBACK=none: with a backlog of 8 some of the 24
# SYNs are dropped and retried, and on a busy machine a retry can pass the
# fallback's probe delay, which would (rightly) carry that connection over
# kernel TCP; this test is about ports (t_fallback_* test the fallback).
. "$(dirname "$0")/../../lib/lib.sh"
[ "$(id -u)" = 0 ] || { echo "skip: needs root (a network namespace of its own)"; exit 77; }
unshare -n true 2>/dev/null || { echo "skip: cannot make a network namespace here"; exit 77; }

cat >"$T/server.py" <<'PY'
import socket, sys, threading
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("0.0.0.0", 5000))
l.listen(8)
open(sys.argv[1], "w").write("ok")
def serve(a):
    while True:
        b = a.recv(64)
        if not b:
            break
        a.sendall(b)
    a.close()
while True:
    a, _ = l.accept()
    threading.Thread(target=serve, args=(a,), daemon=True).start()
PY

cat >"$T/client.py" <<'PY'
import os, socket, sys, threading, time
PEERS, PER = 8, 3
held, errors = [], []
lock = threading.Lock()
barrier = threading.Barrier(PEERS * PER)
def one(i):
    host = "127.0.0.%d" % (1 + i % PEERS)
    try:
        barrier.wait(30)
        c = socket.create_connection((host, 5000), timeout=None)  # blocking
        c.sendall(b"x%d" % i)
        got = c.recv(64)
        if got != b"x%d" % i:
            raise RuntimeError("echo %r" % got)
        with lock:
            held.append(c)
    except Exception as e:
        with lock:
            errors.append("%s: %s: %s" % (host, type(e).__name__, e))
ts = [threading.Thread(target=one, args=(i,)) for i in range(PEERS * PER)]
t0 = time.time()
for t in ts: t.start()
for t in ts: t.join(60)
# The shim answers SO_DOMAIN as TCP would: ask the kernel which sockets
# are TCP ones (the others are the shim's unix bridges).
tcp = set()
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    tcp |= set(int(l.split()[9]) for l in open(f).readlines()[1:])
kinds = ["tcp" if os.fstat(c.fileno()).st_ino in tcp else "unix" for c in held]
for e in errors:
    print("FAIL:", e)
print("connected %d of %d at once in %.1f s; transports %s"
      % (len(held), PEERS * PER, time.time() - t0, sorted(set(kinds))))
sys.exit(1 if errors or len(held) != PEERS * PER else 0)
PY

cat >"$T/inner.sh" <<EOF2
set -eu
ip link set lo up
echo "40000 40003" >/proc/sys/net/ipv4/ip_local_port_range
run() { # MODE: kernel TCP (tcp) or the shim
    rm -f "$T/ready"
    if [ "\$1" = tcp ]; then
        python3 "$T/server.py" "$T/ready" 2>"$T/server.\$1.log" &
    else
        env LD_PRELOAD="$(shim_preload)" RUDP_ENGINES=2 python3 "$T/server.py" "$T/ready" \
            2>"$T/server.\$1.log" &
    fi
    srv=\$!
    i=0; while [ ! -s "$T/ready" ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
    rc=0
    if [ "\$1" = tcp ]; then
        timeout 90 python3 "$T/client.py" >"$T/client.\$1.out" 2>&1 || rc=\$?
    else
        env LD_PRELOAD="$(shim_preload)" RUDP_ENGINES=2 RUDP_FALLBACK=none timeout 90 python3 "$T/client.py" \
            >"$T/client.\$1.out" 2>&1 || rc=\$?
    fi
    sed "s/^/\$1: /" "$T/client.\$1.out"
    kill \$srv 2>/dev/null || true
    wait \$srv 2>/dev/null || true
    return \$rc
}
run tcp
run shim
EOF2
rc=0
unshare -n sh "$T/inner.sh" || rc=$?
[ "$rc" = 0 ] || fail "24 blocking connects at once with 4 ephemeral ports: not all connected"
grep -q "transports \['unix'\]" "$T/client.shim.out" ||
    fail "under the shim the connections were not all rudp (unix bridges)"
echo "ok: 24 blocking connects at once over 4 ephemeral ports (3 to each of 8 peers): all connect and echo, over kernel TCP and under the shim (two engines, backlog 8), never EAGAIN"
