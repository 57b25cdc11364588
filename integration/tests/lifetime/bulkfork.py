# bulkfork.py MODE MIB AT: a bulk reader that forks in the middle of a
# transfer (t_bulk_fork.sh). A child of ours listens and sends MIB MiB
# whose every 8-byte word is its own offset, then shuts writing down; we
# connect, read AT MiB, fork, and then:
#   both  parent and child read on to the end at once
#   child the parent closes its copy, the child reads the rest
# Each read is placed in the stream by its content; the pieces of both
# processes must cover the stream exactly once: no byte lost, none twice,
# none changed. Prints "ok: ..." and exits 0, or says what is wrong and
# exits 1.
import array, os, socket, struct, sys

mode, mib, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
total = mib << 20
words = 1 << 17  # per MiB


def expect(off, n):
    w0 = off // 8
    b = array.array("Q", range(w0, (off + n + 7) // 8)).tobytes()
    return b[off - w0 * 8:off - w0 * 8 + n]


def place(data):
    """the stream offset of data, or -1: the first whole word names it"""
    for skip in range(8):
        if skip + 8 > len(data):
            break
        off = struct.unpack_from("<Q", data, skip)[0] * 8 - skip
        if 0 <= off and off + len(data) <= total and data == expect(off, len(data)):
            return off
    return -1


def reader(sock, path, budget=None):
    """reads to EOF (or budget bytes), writes "offset length" lines to path"""
    buf = bytearray(262144)
    got = 0
    with open(path, "a") as f:
        while budget is None or got < budget:
            n = sock.recv_into(buf, len(buf) if budget is None else min(len(buf), budget - got))
            if n == 0:
                break
            piece = bytes(buf[:n])
            off = place(piece) if n >= 8 else -2
            f.write("%d %d %s\n" % (off, n, piece.hex() if off == -2 else "-"))
            got += n
    return got


lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1)
port = lst.getsockname()[1]
sender = os.fork()
if sender == 0:
    c, _ = lst.accept()
    for k in range(mib):
        c.sendall(array.array("Q", range(k * words, (k + 1) * words)).tobytes())
    c.shutdown(socket.SHUT_WR)
    c.settimeout(30)
    try:
        c.recv(1)  # until both readers are done
    except OSError:
        pass
    os._exit(0)
lst.close()

d = os.environ.get("T", "/tmp")
paths = [os.path.join(d, "bulkfork.%s.%s" % (mode, who)) for who in ("pre", "parent", "child")]
for p in paths:
    open(p, "w").close()
print("pid: %d" % os.getpid(), flush=True)
s = socket.create_connection(("127.0.0.1", port))
reader(s, paths[0], at << 20)
child = os.fork()
if child == 0:
    code = 0
    try:
        reader(s, paths[2])
    except Exception as e:
        print("child: %r" % e)
        code = 1
    os._exit(code)
if mode == "both":
    reader(s, paths[1])
s.close()
_, st = os.waitpid(child, 0)
if st != 0:
    print("FAIL: the reading child exited with status %d" % st)
    sys.exit(1)
_, st = os.waitpid(sender, 0)
if st != 0:
    print("FAIL: the sender exited with status %d" % st)
    sys.exit(1)

pieces, counts, short = [], {}, []
for p in paths:
    who = p.rsplit(".", 1)[1]
    counts[who] = 0
    for line in open(p):
        off, n, hx = line.split()
        off, n = int(off), int(n)
        counts[who] += n
        if off == -1:
            print("FAIL: %s read %d bytes that are not a piece of the stream" % (who, n))
            sys.exit(1)
        if off == -2:
            short.append(bytes.fromhex(hx))
        else:
            pieces.append((off, n))
pieces.sort()
pos, holes = 0, []
for off, n in pieces:
    if off < pos:
        print("FAIL: bytes %d..%d were read twice" % (off, min(pos, off + n)))
        sys.exit(1)
    if off > pos:
        holes.append([pos, off - pos])
    pos = off + n
if pos < total:
    holes.append([pos, total - pos])
for piece in short:  # reads under 8 bytes: into a hole they match
    for h in holes:
        if h[1] >= len(piece) and expect(h[0], len(piece)) == piece:
            h[0] += len(piece)
            h[1] -= len(piece)
            break
    else:
        print("FAIL: a read of %d bytes matches no hole in the stream" % len(piece))
        sys.exit(1)
holes = [h for h in holes if h[1]]
if holes:
    print("FAIL: %d bytes never read (first at %d)" % (sum(h[1] for h in holes), holes[0][0]))
    sys.exit(1)
print("ok: %s: %d MiB read exactly once: %d before the fork, %d by the parent, %d by the child"
      % (mode, mib, counts["pre"], counts["parent"], counts["child"]))
