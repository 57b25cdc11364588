#!/bin/sh
# rtnetlink news is believed only from the kernel. Any process of the host
# with CAP_NET_ADMIN may send a message to another's netlink port (without
# it the kernel refuses: skipped then); under the shim the engine
# read its rtnetlink socket with recvfrom(..., NULL, NULL) and took a
# forged RTM_DELADDR naming a client connection's address (127.0.0.1 here)
# as the kernel's: the connection moved to a new socket ("moved to a new
# socket (its address went away)") at a stranger's word. Now a message
# whose sender is not port 0 is dropped. A client and server in one
# process under the shim (RUDP_LOG=info), connected on loopback; another
# process sends the forged RTM_DELADDR to the engine's netlink port; then
# two round trips on the connection (the engine reads its netlink socket
# before it can see them); no move may be logged.
. "$(dirname "$0")/../../lib/lib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests the engine's rtnetlink socket, found among the process's fds
# (/proc/PID/fd) (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared

cat >"$T/victim.py" <<'PY'
import os, socket, sys
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(1)
c = socket.create_connection(l.getsockname())
a, _ = l.accept()
c.sendall(b"1"); assert a.recv(1) == b"1"
print(os.getpid(), flush=True)
assert sys.stdin.readline().strip() == "sent"
for i in range(2):
    c.sendall(b"2"); assert a.recv(1) == b"2"
    a.sendall(b"3"); assert c.recv(1) == b"3"
print("done", flush=True)
PY

cat >"$T/forge.py" <<'PY'
import os, socket, struct, sys
pid = int(sys.argv[1])
inodes = set()
for fd in os.listdir("/proc/%d/fd" % pid):
    try:
        t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
    except OSError:
        continue
    if t.startswith("socket:["):
        inodes.add(int(t[8:-1]))
ports = [int(r.split()[2]) for r in open("/proc/net/netlink").readlines()[1:]
         if r.split()[1] == "0" and int(r.split()[-1]) in inodes]
if not ports:
    print("skip: no rtnetlink socket in the shim's process (rtnetlink denied here?)")
    sys.exit(77)
RTM_DELADDR, IFA_ADDRESS, IFA_LOCAL = 21, 1, 2
addr = socket.inet_aton("127.0.0.1")
attrs = struct.pack("HH4s", 8, IFA_LOCAL, addr) + struct.pack("HH4s", 8, IFA_ADDRESS, addr)
body = struct.pack("BBBBI", socket.AF_INET, 8, 0, 254, 1) + attrs
msg = struct.pack("IHHII", 16 + len(body), RTM_DELADDR, 0, 1, 0) + body
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
for p in ports:
    try:
        s.sendto(msg, (p, 0))
    except PermissionError:
        # netlink_sendmsg: a unicast to a port of NETLINK_ROUTE needs
        # CAP_NET_ADMIN (a container's root lacks it): no forgery to test
        print("skip: sending to another process's rtnetlink port needs CAP_NET_ADMIN (EPERM here)")
        sys.exit(77)
print("forged RTM_DELADDR of 127.0.0.1 sent to netlink port(s) %s" % ports)
PY

mkfifo "$T/in"
env LD_PRELOAD="$(shim_preload)" RUDP_LOG=info RUDP_FALLBACK=none timeout 60 \
    python3 "$T/victim.py" <"$T/in" >"$T/victim.out" 2>"$T/victim.err" &
vpid=$!
exec 3>"$T/in"
i=0
while ! [ -s "$T/victim.out" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
pid=$(head -1 "$T/victim.out")
[ -n "$pid" ] || { cat "$T/victim.err"; fail "the victim did not connect"; }
rc=0
python3 "$T/forge.py" "$pid" || rc=$?
if [ "$rc" = 77 ]; then echo sent >&3; exec 3>&-; wait $vpid || true; exit 77; fi
[ "$rc" = 0 ] || fail "forge.py exited $rc"
echo sent >&3
exec 3>&-
wait $vpid || { cat "$T/victim.err"; fail "the connection did not carry on"; }
grep -q '^done' "$T/victim.out" || fail "the victim did not finish"
if grep 'moved to a new socket' "$T/victim.err"; then
    fail "a forged rtnetlink message (not from the kernel) moved the connection"
fi
echo "ok: a forged RTM_DELADDR from another process's netlink port: ignored, the connection stayed on its socket"
