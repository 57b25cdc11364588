#!/usr/bin/env python3
# 10 loopback connections to a SO_REUSEPORT listener; a listener of another
# process joins its group (shim/ports/xgroup.c: the datagrams the kernel now gives
# the new member are forwarded back), then the clients send 80 MB in all.
# Prints the time taken; run under the shim with RUDP_STATS=1 for the
# forwarding counters ("group of processes: ... dropped N"). No assertion.
# Usage: LD_PRELOAD=build/librudp_shim.so RUDP_STATS=1 python3 xgjoin.py [join|nojoin]
import os, select, socket, sys, time

S = socket.SOL_SOCKET
N, TOTAL = 10, 80 * 1000 * 1000
join = (sys.argv[1] if len(sys.argv) > 1 else "join") == "join"

def listener(port=0):
    l = socket.socket()
    l.setsockopt(S, socket.SO_REUSEPORT, 1)
    l.bind(("127.0.0.1", port))
    l.listen(64)
    return l

A = listener()
P = A.getsockname()[1]
pairs = []
for i in range(N):
    c = socket.create_connection(("127.0.0.1", P))
    a, _ = A.accept()
    pairs.append((c, a))
pid = 0
if join:
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r); os.close(w2)
        B = listener(P)
        os.write(w, b"r")
        os.read(r2, 1)  # until the parent is done (closes w2)
        B.close()
        sys.exit(0)     # an ordinary exit: RUDP_STATS prints its counters
    os.close(w); os.close(r2)
    os.read(r, 1)
per = TOTAL // N
chunk = b"x" * 65536
left = {c.fileno(): per for c, _ in pairs}
got = {a.fileno(): 0 for _, a in pairs}
byfd = {}
for c, a in pairs:
    c.setblocking(False); a.setblocking(False)
    byfd[c.fileno()] = c; byfd[a.fileno()] = a
t0 = time.monotonic()
ep = select.epoll()
for c, a in pairs:
    ep.register(c.fileno(), select.EPOLLOUT)
    ep.register(a.fileno(), select.EPOLLIN)
done = 0
while done < N:
    evs = ep.poll(30)
    if not evs:
        print("stalled: %d of %d connections done" % (done, N)); sys.exit(1)
    for fd, ev in evs:
        s = byfd[fd]
        if fd in left:
            try:
                n = s.send(chunk[:min(len(chunk), left[fd])])
            except BlockingIOError:
                continue
            left[fd] -= n
            if left[fd] == 0:
                ep.unregister(fd)
        else:
            while True:
                try:
                    b = s.recv(1 << 20)
                except BlockingIOError:
                    break
                got[fd] += len(b)
                if got[fd] == per:
                    ep.unregister(fd); done += 1
                    break
dt = time.monotonic() - t0
print("%s: %d MB over %d connections in %.3f s (%.0f MB/s)" %
      ("after a join" if join else "no join", TOTAL // 1000000, N, dt, TOTAL / dt / 1e6))
for c, a in pairs:
    c.close(); a.close()
if pid:
    os.close(w2); os.waitpid(pid, 0)
