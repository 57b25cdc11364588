#!/bin/sh
# Dual listener (issue 14) with nc: (1) OpenBSD nc -l under the shim and a
# plain nc (no shim) as the client, 4 MiB each way at once on one kernel TCP
# connection, each half-closing at the end of its input (-N): sha256 equal
# both ways. (2) a python server under the shim accepting two plain nc
# clients from chosen source ports (nc -p), the first with accept() (flags
# 0), the second with accept4(SOCK_NONBLOCK | SOCK_CLOEXEC) (through libc,
# so the shim's accept4): each accepted fd must be a real kernel TCP socket
# (its inode listed in /proc/net/tcp), carry the flags asked for and no
# other, report the client's address from accept and getpeername, SO_ERROR
# 0 and TCP_INFO state ESTABLISHED (or CLOSE_WAIT: the client may have
# half-closed already, a kernel TCP state a bridge never reports); the
# server answers each client with what it saw, which the client checks.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "the dual listener is the shim's"

SIZE=4194304
head -c "$SIZE" /dev/urandom >"$T/up"
head -c "$SIZE" /dev/urandom >"$T/down"

# ---- (1) nc -l under the shim <-> plain nc ----
P=$(free_port)
bg_app_io ncl "$T/down" "$T/got-up" nc -N -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_tcp "$P"
rc=0
timeout 60 nc -N 127.0.0.1 "$P" <"$T/up" >"$T/got-down" 2>"$T/ncc.log" || rc=$?
[ "$rc" = 0 ] || { show "$T/ncc.log" "$T/ncl.log"; fail "plain nc exited $rc"; }
rc=0
wait_exit "$SRV" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/ncl.log"; fail "nc -l under the shim exited $rc"; }
[ "$(sha "$T/got-up")" = "$(sha "$T/up")" ] || fail "client -> server: sha256 differs ($(stat -c %s "$T/got-up") bytes)"
[ "$(sha "$T/got-down")" = "$(sha "$T/down")" ] || fail "server -> client: sha256 differs ($(stat -c %s "$T/got-down") bytes)"
echo "ok: nc -l under the shim <-> plain nc: $SIZE bytes each way, sha256 equal"

# ---- (2) what accept() returns for a plain client ----
cat >"$T/srv.py" <<'PYEOF'
import ctypes, fcntl, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(8)
print("listening", flush=True)

def kernel_tcp(fd):
    ino = str(os.fstat(fd).st_ino)
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(f) as h:
            if any(l.split()[9] == ino for l in h.readlines()[1:]):
                return 1
    return 0

for flags in (0, socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC):
    sa = ctypes.create_string_buffer(128)
    sl = ctypes.c_uint32(128)
    fd = libc.accept4(ls.fileno(), sa, ctypes.byref(sl), flags)
    if fd < 0:
        print("accept4 failed", ctypes.get_errno(), flush=True)
        sys.exit(1)
    fam, port = struct.unpack("=H", sa.raw[:2])[0], struct.unpack("!H", sa.raw[2:4])[0]
    addr = "%s:%d" % (socket.inet_ntoa(sa.raw[4:8]), port)
    nb = 1 if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK else 0
    ce = 1 if fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC else 0
    c = socket.socket(fileno=fd)
    c.setblocking(True)
    gp = "%s:%d" % c.getpeername()
    err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    state = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)[0]
    line = "flags %d: accept %s (len %d family %d) getpeername %s kernel_tcp %d nonblock %d cloexec %d so_error %d tcpi_state %d" % (
        flags, addr, sl.value, fam, gp, kernel_tcp(fd), nb, ce, err, state)
    print(line, flush=True)
    got = b""
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
    c.sendall((line + " got " + got.decode() + "\n").encode())
    c.close()
PYEOF
P=$(free_port)
bg_app pysrv "$PY" "$T/srv.py" "$P"
wait_line "$T/pysrv.log" '^listening' 10 || { show "$T/pysrv.log"; fail "python server did not start"; }
wait_tcp "$P"
i=0
for want in "nonblock 0 cloexec 0" "nonblock 1 cloexec 1"; do
    i=$((i + 1))
    SP=$(free_port)
    [ "$SP" != "$P" ] || SP=$((SP + 1))
    rc=0
    echo "hello $i" | timeout 30 nc -N -p "$SP" 127.0.0.1 "$P" >"$T/reply$i" 2>"$T/nc$i.log" || rc=$?
    [ "$rc" = 0 ] || { show "$T/nc$i.log" "$T/pysrv.log"; fail "plain nc $i exited $rc"; }
    grep -Eq "accept 127\.0\.0\.1:$SP \(len 16 family 2\) getpeername 127\.0\.0\.1:$SP kernel_tcp 1 $want so_error 0 tcpi_state (1|8) got hello $i\$" "$T/reply$i" ||
        { cat "$T/reply$i"; show "$T/pysrv.log"; fail "client $i (source port $SP): the server did not see a kernel TCP socket with the client's address and flags '$want'"; }
    echo "ok: plain nc from port $SP: $(cat "$T/reply$i")"
done
