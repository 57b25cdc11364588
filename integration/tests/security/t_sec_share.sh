#!/bin/sh
# A listening socket shared by two processes (issue 30, finding 8d), as a
# local attacker and as a child that dropped privileges see it:
#   1. another user binds the service's UDP port first (uid nobody, any
#      port is free to it), names its socket as a listener of ours does
#      ("\0rudp-udp <inode>", porthand.c) and answers as a holder: a live
#      listener (EADDRINUSE) to port questions; to a share request, it keeps
#      any fd it is given and offers a unix listener of its own. The
#      service (root, under the shim) binds the TCP port and listens. Before
#      the fix the service's TCP socket was sent to the attacker (SCM_RIGHTS),
#      listening: it could accept the service's TCP clients. Now the
#      attacker gets no fd, the service's listen() returns 0 as TCP's does
#      (its UDP port is taken: plain TCP) and a TCP client is served by the
#      service, from its real address.
#   2. a socket inherited across fork, on which the child listens after the
#      parent did (Linux: 0 to both), and the share fails: the child dropped
#      privileges to nobody; the parent's engine has no fd to give its
#      listener with (RLIMIT_NOFILE); a stranger holds the names the share
#      request was bound to before the fix ("\0rudp-share <pid> <seq>").
#      Before the fix the child's failed share unlistened the shared socket
#      (connect(AF_UNSPEC)), and the parent's plain TCP clients were
#      refused; now the child's listen() returns 0 and the parent still
#      serves a TCP client.
# Each part fails on s30/merge 0ab0fc0.
. "$(dirname "$0")/../../lib/lib.sh"
# The engine in the program's fd table whatever the hard fd limit here:
# the emfile case runs the holder out of fd numbers by the program's soft
# limit, which an engine with a table of its own may still have (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared
need_root "to run an attacker as uid nobody"
command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
chmod 755 "$T"
wait_for() { i=0; while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 400 ] || return 1; sleep 0.05; done; }

# --- 1. a stranger answering as the holder of the service's UDP port ---------
cat >"$T/attacker.py" <<'PY'
import os, select, socket, struct, sys, time
PH_MAGIC = 0x72706831
port, stop = int(sys.argv[1]), sys.argv[2]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", port))
ino = os.fstat(u.fileno()).st_ino
h = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
h.bind(b"\0rudp-udp %d" % ino)
h.listen(8)
mine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # offered as "the listener"
mine.bind(b"\0rudp-share-attacker %d" % os.getpid())
mine.listen(8)
print("attacker: holding", port, "as", ino, flush=True)
end = time.monotonic() + 25
while time.monotonic() < end and not os.path.exists(stop):
    if not select.select([h], [], [], 0.2)[0]:
        continue
    c, _ = h.accept()
    req, fds = b"", []
    if select.select([c], [], [], 0.3)[0]:
        try:
            req, fds, _, _ = socket.recv_fds(c, 64, 8)
        except OSError as e:
            print("attacker: recv", e, flush=True)
    for fd in fds:
        s = socket.socket(fileno=fd)
        print("attacker: got fd", fd, "type", s.type, "family", s.family,
              "listening", s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), flush=True)
        s.setblocking(False)
        try:
            n, a = s.accept()
            print("attacker: accepted a client of the service from", a, flush=True)
        except OSError:
            pass
    try:
        if req:  # a share request: "here is the listener"
            print("attacker: share request", req.hex(), flush=True)
            socket.send_fds(c, [struct.pack("<IiI", PH_MAGIC, 0, 0)], [mine.fileno()])
        else:    # a port question: "a live listener holds it"
            c.send(struct.pack("<IiI", PH_MAGIC, 98, 0))
    except OSError as e:
        print("attacker: send", e, flush=True)
    c.close()
print("attacker: done", flush=True)
PY
# echo1.serve(s, who): accepts one connection on s and echoes its line
cat >"$T/echo1.py" <<'PY'
def serve(s, who):
    s.settimeout(20)
    c, a = s.accept()
    c.settimeout(20)
    line = c.makefile("rb").readline()
    print(who + ": accepted from", a, "line", line, flush=True)
    c.sendall(line)
    c.close()
PY
cat >"$T/service.py" <<'PY'
import socket, sys
from echo1 import serve
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
try:
    s.listen(8)
except OSError as e:
    print("service: listen failed:", e, flush=True)
    sys.exit(1)
print("service: listening", flush=True)
serve(s, "service")
PY
cat >"$T/client.py" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"REAL\n")
assert c.makefile("rb").readline() == b"REAL\n", "no echo"
print("client: echoed", flush=True)
PY
P=$(free_port)
start_bg attacker setpriv --reuid=65534 --regid=65534 --clear-groups \
    "$PY" "$T/attacker.py" "$P" "$T/stop"
wait_for "$T/attacker.log" '^attacker: holding' || fail "attacker did not start: $(cat "$T/attacker.log")"
start_bg service under_shim env RUDP_LOG=debug "$PY" "$T/service.py" "$P"
SPID=$LAST_PID
wait_for "$T/service.log" '^service: \(listening\|listen failed\)' ||
    fail "service did not start: $(cat "$T/service.log")"
grep '^service:' "$T/service.log"
# the client (no shim: plain TCP, as the service's port is the attacker's
# UDP one) runs whatever listen() said, so the attacker has its chance
"$PY" "$T/client.py" "$P" >"$T/client.log" 2>&1 || true
cat "$T/client.log"
ended 2500 "$SPID" || true
touch "$T/stop"
wait_for "$T/attacker.log" '^attacker: done' || true
grep '^attacker:' "$T/attacker.log"
grep -q '^rudp.*asked for its port' "$T/service.log" || grep -q 'asked for its port' "$T/service.log" ||
    fail "the service never asked the attacker's socket: the test proves nothing"
! grep -q '^attacker: got fd' "$T/attacker.log" || fail "the attacker received an fd from the service"
! grep -q '^attacker: accepted' "$T/attacker.log" || fail "the attacker accepted the service's client"
grep -q '^service: listening' "$T/service.log" || fail "the service's listen() failed"
grep -q "^service: accepted from ('127.0.0.1', [0-9]*) line b'REAL" "$T/service.log" ||
    fail "the service did not serve the real client"
grep -q '^client: echoed' "$T/client.log" || fail "the client got no echo"
echo "ok: a stranger answering as the holder of the service's UDP port got no fd, and the service served its client"

# --- 2. the child of a fork listens second on the shared socket --------------
# fork.py PORT drop: the child drops privileges to nobody before it listens;
# fork.py PORT go:FILE: the child listens once FILE exists;
# fork.py PORT emfile: the parent has one fd number free while the child
# listens (and its engine none for the listener it would share).
cat >"$T/fork.py" <<'PY'
import os, resource, socket, sys, time
from echo1 import serve
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
mode = sys.argv[2]
r, w = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w); os.close(r2)
    os.read(r, 1)                   # the parent listens first
    if mode == "drop":
        os.setgid(65534); os.setuid(65534)
    elif mode.startswith("go:"):
        for i in range(400):
            if os.path.exists(mode[3:]):
                break
            time.sleep(0.05)
    try:
        s.listen(8)
        print("child: listen 0", flush=True)
    except OSError as e:
        print("child: listen failed:", e, flush=True)
    os.write(w2, b"x")
    os.read(r, 1)                   # holds the socket until the parent is done
    os._exit(0)
os.close(r); os.close(w2)
s.listen(8)
print("parent: listening, child", pid, flush=True)
if mode == "emfile":
    # one fd number free below the limit: the engine accepts the child's
    # request with it, and has none left to give its listener
    a = os.open("/dev/null", os.O_RDONLY)
    b = os.open("/dev/null", os.O_RDONLY)
    os.close(b)
    lim = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (b + 1, lim[1]))
os.write(w, b"x")
os.read(r2, 1)
if mode == "emfile":
    resource.setrlimit(resource.RLIMIT_NOFILE, lim)
    os.close(a)
print("parent: child listened", flush=True)
try:
    serve(s, "parent")
finally:
    os.write(w, b"x")
    os.waitpid(pid, 0)
PY
# fork_case NAME MODE WHAT: fork.py under the shim; the child's listen()
# returns 0 and the parent still serves a plain TCP client.
fork_case() {
    _p=$(free_port)
    start_bg "$1" under_shim env RUDP_LOG=info "$PY" "$T/fork.py" "$_p" "$2"
    _pid=$LAST_PID
    if [ -n "${3:-}" ]; then
        wait_for "$T/$1.log" '^parent: listening' || fail "$1: no listener: $(cat "$T/$1.log")"
        "$3" "$(sed -n 's/^parent: listening, child \([0-9]*\)/\1/p' "$T/$1.log")"
    fi
    wait_for "$T/$1.log" '^parent: child listened' || fail "$1: the child never listened: $(cat "$T/$1.log")"
    "$PY" "$T/client.py" "$_p" >"$T/$1.client" 2>&1 || true
    cat "$T/$1.client"
    ended 2500 "$_pid" || true
    grep '^\(parent\|child\):' "$T/$1.log"
    grep -q '^child: listen 0' "$T/$1.log" || fail "$1: the child's listen() failed (Linux: 0)"
    grep -q '^client: echoed' "$T/$1.client" ||
        fail "$1: the parent's TCP listener stopped when the child listened on the shared socket"
    grep -q "^parent: accepted from ('127.0.0.1', [0-9]*) line b'REAL" "$T/$1.log" ||
        fail "$1: the parent did not serve the client"
}

# a child that dropped privileges: its holder (the parent's engine, root)
# is not of its user, and shares nothing with it
fork_case drop drop
echo "ok: a child that dropped privileges listened on the shared socket, and the parent still served TCP"

# a stranger (nobody) binds the share request's names the child would have
# used before the fix ("\0rudp-share <pid> <seq>"): the child's listen()
# still returns 0 and the parent's listener lives on
cat >"$T/squat.py" <<'PY'
import os, socket, sys, time
held = []
for n in range(64):
    u = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    u.bind(b"\0rudp-share %s %d" % (sys.argv[1].encode(), n))
    held.append(u)
print("squat:", len(held), "names held", flush=True)
open(sys.argv[2], "w").close()
for i in range(500):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.05)
PY
squat_share() {
    start_bg squat setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$PY" "$T/squat.py" "$1" "$T/pub/go" "$T/pub/stop"
    wait_for "$T/squat.log" '^squat: 64 names held' || fail "squatter did not start: $(cat "$T/squat.log")"
}
# the same socket, but the holder has no fd to give its listener with: it
# says so (not the same as "not mine"), and the shared socket keeps
# listening for the parent
fork_case emfile emfile
grep -q 'cannot share the listener' "$T/emfile.log" ||
    fail "emfile: the holder did not fail for want of an fd: the test proves nothing"
echo "ok: a holder that could not share its listener left the parent's listener alone"

mkdir -m 777 "$T/pub"
fork_case squatted "go:$T/pub/go" squat_share
touch "$T/pub/stop"
echo "ok: a stranger holding the share request's names did not stop the parent's listener"
