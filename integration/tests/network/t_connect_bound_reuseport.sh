#!/bin/sh
# A client that bound its port explicitly, then connected, keeps that port
# to itself: under the shim the connection's UDP socket holds it, and
# connect() set SO_REUSEPORT on every client UDP socket (so that a client
# may share a kernel-chosen port when the ephemeral range is full:
# udpdiag.c), ports the app chose too; so any process of the same user
# could join the port with SO_REUSEPORT (a UDP bind succeeded where it must
# say EADDRINUSE). Over kernel TCP first (the same program, the port is a
# TCP one and the UDP bind must succeed there), then under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

cat >"$T/join.py" <<'PY'
import errno, socket, sys
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
try:
    u.bind(("127.0.0.1", int(sys.argv[1])))
    print("joined")
except OSError as e:
    print("EADDRINUSE" if e.errno == errno.EADDRINUSE else "error %s" % e)
PY
cat >"$T/bound.py" <<'PY'
import os, socket, subprocess, sys
shim = bool(os.environ.pop("LD_PRELOAD", ""))
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(4)
for attempt in range(50):
    p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    p.bind(("127.0.0.1", 0))
    port = p.getsockname()[1]
    p.close()
    c = socket.socket()
    try:
        c.bind(("127.0.0.1", port))
        break
    except OSError:
        c.close()
c.connect(l.getsockname())
a, _ = l.accept()
c.sendall(b"x")
assert a.recv(1) == b"x"
# another process of this user, not under the shim
got = subprocess.run([sys.executable, sys.argv[1], str(port)], capture_output=True,
                     text=True, timeout=20).stdout.strip()
want = "EADDRINUSE" if shim else "joined"
tcp = set()
for f in ("/proc/net/tcp", "/proc/net/tcp6"):
    tcp |= set(int(x.split()[9]) for x in open(f).readlines()[1:])
print("transport: %s" % ("tcp" if os.fstat(c.fileno()).st_ino in tcp else "rudp"))
if got != want:
    print("FAIL: a UDP SO_REUSEPORT bind to the bound client's port %d: %s (want %s)" % (port, got, want))
    sys.exit(1)
print("ok: a UDP SO_REUSEPORT bind to the bound client's port %d: %s" % (port, got))
PY
run_both bound python3 "$T/bound.py" "$T/join.py"
