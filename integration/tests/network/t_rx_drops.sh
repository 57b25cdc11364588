#!/bin/sh
# The engine counts the datagrams its UDP sockets drop for a full receive
# buffer (SO_RXQ_OVFL; the "dropped by a full receive buffer" figure of
# RUDP_STATS, which t_many_conns asserts is 0 after a fan-in burst). Here the
# count must be non-zero: a listening nc under the shim is stopped (SIGSTOP:
# its engine reads nothing), 100,000 small datagrams are sent to its UDP port
# (each costs the buffer ~800 bytes: 80 MB against a listener's 32 MiB), it is
# continued, a few more follow (a drop is reported with the next datagram
# read), and one connection ends it. The server must report drops, count the
# junk as malformed, and still serve the connection.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
LDP=$(shim_preload)
P=$(free_port)
env RUDP_STATS=1 LD_PRELOAD="$LDP" nc -l 127.0.0.1 "$P" \
    </dev/null >"$T/srv.out" 2>"$T/srv.log" &
SRV=$! # nc itself (lib.sh ends it if the test fails): SIGSTOP must reach it
PIDS="$PIDS $SRV"
wait_udp "$P"
kill -STOP "$SRV"
# One socket sends all (the kernel gives a source's datagrams to one member
# of the listener's group): the flood; SIGCONT; once the server's sockets
# have read their queues (/proc/net/udp, bounded wait), a few more.
python3 - "$P" "$SRV" <<'PY' || fail "the server's UDP queue did not drain"
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(n):
    for _ in range(n):
        s.sendto(b"not rudp, 24 bytes long", ("127.0.0.1", port))
def queued():
    total = 0
    with open("/proc/net/udp") as f:
        for line in list(f)[1:]:
            cols = line.split()
            if int(cols[1].split(":")[1], 16) == port:
                total += int(cols[4].split(":")[1], 16)
    return total
send(100000)
os.kill(pid, signal.SIGCONT)
for _ in range(600):  # bounded: 30 s
    if queued() == 0:
        break
    time.sleep(0.05)
else:
    sys.exit(1)
send(20)
PY
echo hello | env LD_PRELOAD="$LDP" timeout 60 nc -N 127.0.0.1 "$P" >/dev/null 2>"$T/cli.log" ||
    fail "the client failed: $(tail -2 "$T/cli.log")"
wait_exit "$SRV" 60 || fail "the server did not finish: $(tail -3 "$T/srv.log")"
grep -qx hello "$T/srv.out" || fail "the server did not get the line: $(cat "$T/srv.out")"
drops=$(stats_lines "$T/srv.log" | sed -n 's/^udp: .* \([0-9][0-9]*\) dropped by a full receive buffer.*/\1/p' | head -1)
bad=$(sed -n 's/.*malformed \([0-9][0-9]*\),.*/\1/p' "$T/srv.log" | head -1)
echo "server: $drops datagrams dropped by a full receive buffer, $bad malformed"
[ -n "$drops" ] && [ "$drops" -gt 0 ] || fail "no drops counted: $(stats_lines "$T/srv.log" | grep '^udp:' | head -1)"
[ -n "$bad" ] && [ "$bad" -gt 0 ] && [ $((bad + drops)) -le 100020 ] ||
    fail "malformed $bad, drops $drops (sent 100,020)"
echo "ok: receive-buffer drops counted ($drops), junk dropped as malformed, the connection served"
