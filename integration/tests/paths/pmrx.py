# One connection's receiver: accepts on ADDR PORT (with a fourth argument
# "connect", connects to it instead), writes what arrives to FILE; then
# the segment size its own side ended with (under the shim: rudp's
# datagram size), the connection still open.
import socket, sys
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
if sys.argv[4:5] == ['connect']:
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=60)
    c.settimeout(None)
else:
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
    print("listening", flush=True)
    c, _ = s.accept()
n = 0
with open(sys.argv[3], 'wb') as f:
    while True:
        b = c.recv(1 << 16)
        if not b: break
        f.write(b); n += len(b)
print("received", n)
print("mss %d" % c.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
