"""The two ends of t_roam_eperm.sh.

eperm.py serve PORT      an echo server on 127.0.0.1:PORT for one connection;
                         says "listening" once it listens
eperm.py client PORT GO  connects to it, checks one echo, says "ready", waits
                         (bounded) until the file GO exists (the test's
                         firewall rule is in), then writes 100 bytes and
                         reads. Prints one line, "end: WHAT so_error: N after
                         S", WHAT being the read's errno name or "EOF" (or
                         "data" if the echo came back), and exits 0."""
import errno
import os
import socket
import sys
import time


def serve(port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    c, _ = ls.accept()
    while True:
        b = c.recv(65536)
        if not b:
            return
        c.sendall(b)


if sys.argv[1] == "serve":
    try:
        serve(int(sys.argv[2]))
    except OSError:
        pass  # the connection ended abnormally: what the client says counts
    sys.exit(0)
port, go = int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
# Kernel TCP's user timeout ($UT seconds), as RUDP_USER_TIMEOUT under the shim.
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(os.environ["UT"]) * 1000)
s.sendall(b"ping")
got = b""
while len(got) < 4:
    b = s.recv(4 - len(got))
    if not b:
        sys.exit("no echo")
    got += b
print("ready", flush=True)
t0 = time.monotonic()
while not os.path.exists(go):
    if time.monotonic() - t0 > 20:
        sys.exit("no go")
    time.sleep(0.01)
s.settimeout(40)
t0 = time.monotonic()
s.sendall(b"x" * 100)
try:
    what = "data" if s.recv(1) else "EOF"
except OSError as e:  # socket.timeout too, an OSError without an errno
    what = errno.errorcode.get(e.errno, str(e.errno)) if e.errno else "timeout (40 s)"
so = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
print("end: %s so_error: %s after %.1f s"
      % (what, errno.errorcode.get(so, str(so)) if so else "0", time.monotonic() - t0), flush=True)
