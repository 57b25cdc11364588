#!/bin/sh
# bind(0) with SO_REUSEADDR takes a port no socket holds, where there is
# one, as the kernel's own search does (inet_csk_find_open_port: a port
# shared with a TIME_WAIT only when none is free). Under the shim bind(0)
# picks a port free for UDP and TCP alike (shim/interpose/listen.c); with
# SO_REUSEADDR it could land on a port held by a TIME_WAIT (the shim hands
# each listener's port to one at exit, shim/ports/timewait.c), and a later
# bind of that port without SO_REUSEADDR then failed with EADDRINUSE where
# TCP's succeeds: a rare failure of t_prog_relisten. Played in a private
# network namespace whose ephemeral range is 40000-40003, three of them held
# by kernel TIME_WAITs: ten bind(0)s with SO_REUSEADDR must each get 40002,
# and a second socket must bind it without SO_REUSEADDR, over kernel TCP and
# under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
need_netns "the port range is set in a network namespace of its own"

cat >"$T/tw.py" <<'PY'
# Kernel TCP (no shim): a server that closes first holds its port in
# TIME_WAIT; the client comes from a port outside the range.
import socket
for i, p in enumerate((40000, 40001, 40003)):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", p))
    l.listen(1)
    c = socket.socket()
    c.bind(("127.0.0.1", 50000 + i))
    c.connect(("127.0.0.1", p))
    a, _ = l.accept()
    l.close()
    a.close()          # the server's FIN first: its side goes to TIME_WAIT
    assert c.recv(1) == b""
    c.close()
PY

cat >"$T/pick.py" <<'PY'
import socket
ports = []
for _ in range(10):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    ports.append(s.getsockname()[1])
    s.close()
t = socket.socket()
t.bind(("127.0.0.1", ports[-1]))   # no SO_REUSEADDR: no TIME_WAIT may hold it
t.listen(1)
print(" ".join(map(str, ports)))
PY

cat >"$T/inner.sh" <<EOF2
set -eu
ip link set lo up
echo "40000 40003" >/proc/sys/net/ipv4/ip_local_port_range
python3 "$T/tw.py"
tw=\$(ss -Htan state time-wait | wc -l)
echo "TIME_WAITs held: \$tw"
[ "\$tw" -ge 3 ] || { echo "FAIL: the TIME_WAITs were not made"; exit 1; }
rc=0
want="40002 40002 40002 40002 40002 40002 40002 40002 40002 40002"
for how in kernel shim; do
    if [ \$how = shim ]; then pre="$(shim_preload)"; else pre=; fi
    if got=\$(env LD_PRELOAD="\$pre" ASAN_OPTIONS=detect_leaks=0 \
            timeout 30 python3 "$T/pick.py" 2>"$T/err"); then
        if [ "\$got" = "\$want" ]; then
            echo "ok: \$how: bind(0) with SO_REUSEADDR took the free port: \$got"
        else
            echo "FAIL: \$how: bind(0) with SO_REUSEADDR took \$got (free: 40002)"; rc=1
        fi
    else
        echo "FAIL: \$how: \$(tail -3 "$T/err")"; rc=1
    fi
done
exit \$rc
EOF2
unshare -n sh "$T/inner.sh" || fail "bind(0) with SO_REUSEADDR took a port a TIME_WAIT holds"
echo ok
