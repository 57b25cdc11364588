# One connection's sender: FILE to ADDR PORT, paced at RATE bytes/s (0:
# unpaced); with a fifth argument "listen", to the first connection
# accepted on ADDR PORT instead.
import fcntl, socket, struct, sys, termios, time
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
data = open(sys.argv[3], 'rb').read()
rate = float(sys.argv[4]) if len(sys.argv) > 4 else 0  # bytes/s, 0: unpaced
if sys.argv[5:6] == ['listen']:
    l = socket.socket(fam, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(1)
    print("listening", flush=True)
    s, _ = l.accept()
else:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
t0 = time.time(); off = 0; chunk = 1 << 16
while off < len(data):
    if rate:
        wait = t0 + off / rate - time.time()  # read the clock once: a
        if wait > 0: time.sleep(wait)         # second read may be past it
    s.sendall(data[off:off + chunk]); off += chunk
# Every byte acknowledged (SIOCOUTQ 0), the connection still open: the
# segment size it ended with (under the shim: rudp's datagram size).
until = time.time() + 60
while struct.unpack('i', fcntl.ioctl(s, termios.TIOCOUTQ, b'\0' * 4))[0] and time.time() < until:
    time.sleep(0.01)
mss = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
s.shutdown(socket.SHUT_WR)
while s.recv(1 << 16): pass
print("sent %d in %.2f s" % (len(data), time.time() - t0))
print("mss %d" % mss)
