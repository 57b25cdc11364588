# One connection's sender: FILE to ADDR PORT, paced at RATE bytes/s (0: unpaced).
import socket, sys, time
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
data = open(sys.argv[3], 'rb').read()
rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0  # bytes/s, 0: unpaced
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
t0 = time.time(); off = 0; chunk = 1 << 16
while off < len(data):
    if rate:
        due = t0 + off / rate
        if due > time.time(): time.sleep(due - time.time())
    s.sendall(data[off:off + chunk]); off += chunk
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16): pass
print("sent %d in %.2f s" % (len(data), time.time() - t0))
