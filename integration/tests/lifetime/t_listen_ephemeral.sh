#!/bin/sh
# listen() on a port the kernel chose never fails, as under TCP. A rudp
# listener needs the UDP port of the same number as its TCP port; if the
# kernel chose a TCP port whose UDP twin is taken, listen() used to fail
# with EADDRINUSE (seen as a rare flake of t_prog_threads). Played in a
# private network namespace whose ephemeral range is 40000-40003, with the
# odd ports (the ones bind(0) prefers) taken for UDP: bind(0)+listen and a
# bare listen, v4 and dual-stack v6, each must listen and carry an echo.
. "$(dirname "$0")/../../lib/lib.sh"
need_netns "the port range is set in a network namespace of its own"

cat >"$T/eph.py" <<'PY'
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "v6" else socket.AF_INET
host = "::1" if fam == socket.AF_INET6 else "127.0.0.1"
l = socket.socket(fam, socket.SOCK_STREAM)
if sys.argv[2] == "bind0":
    l.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
l.listen(4)
port = l.getsockname()[1]
if len(sys.argv) > 3:  # kernel TCP's own choice; no connection, no TIME_WAIT
    print(port)
    sys.exit(0)
c = socket.create_connection((host, port), timeout=10)
a, _ = l.accept()
c.sendall(b"ping")
assert a.recv(4) == b"ping"
# The client closes first, and the server once it read the EOF: a server
# that closes first holds its port through TIME_WAIT (under TCP, and
# under the shim as a kernel TIME_WAIT at exit: shim/ports/timewait.c), and
# in a four-port range three such holds leave a later client no port.
c.close()
assert a.recv(1) == b""
a.close()
print(port)
PY

cat >"$T/inner.sh" <<EOF2
set -eu
ip link set lo up
echo "40000 40003" >/proc/sys/net/ipv4/ip_local_port_range
python3 - <<'PY' &
import socket, time
held = []
for p in (40001, 40003):
    for fam, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        u = socket.socket(fam, socket.SOCK_DGRAM)
        if fam == socket.AF_INET6:
            u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        u.bind((host, p))
        held.append(u)
open("$T/held", "w").write("ok")
time.sleep(60)
PY
holder=\$!
i=0; while [ ! -s "$T/held" ] && [ \$i -lt 100 ]; do sleep 0.05; i=\$((i + 1)); done
[ -s "$T/held" ] || { echo "FAIL: could not hold the odd UDP ports"; kill \$holder; exit 1; }
rc=0
for fam in v4 v6; do
    for how in bind0 bare; do
        kport=\$(python3 "$T/eph.py" \$fam \$how kernel 2>/dev/null || echo failed)
        if port=\$(env LD_PRELOAD="$(shim_preload)" ASAN_OPTIONS=detect_leaks=0 \
                timeout 30 python3 "$T/eph.py" \$fam \$how 2>"$T/err"); then
            echo "ok: \$fam \$how: listening on \$port under the shim (kernel TCP alone chose \$kport)"
        else
            echo "FAIL: \$fam \$how: \$(tail -3 "$T/err")"; rc=1
        fi
    done
done
kill \$holder
exit \$rc
EOF2
unshare -n sh "$T/inner.sh" || fail "listen on a kernel-chosen port failed under the shim"
