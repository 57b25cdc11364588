# A client under the shim, to a web server that may not run it. Usage:
#   fbclient.py HOST PORT PATH MODE[,MODE...]
# fetches PATH once per MODE, in order: "blocking" (socket.create_connection:
# a blocking connect) or "asyncio" (a non-blocking connect whose epoll
# registration is made while it is in progress, before the shim can know
# which transport will carry it). Prints "MODE MS BYTES" per fetch; exits
# non-zero on any error.
import asyncio, socket, sys, time

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
req = ("GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode()


def body(resp):
    head, _, rest = resp.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200"):
        sys.exit("bad answer: %r" % head[:60])
    return rest


def blocking():
    t0 = time.monotonic()
    s = socket.create_connection((host, port), timeout=60)
    s.sendall(req)
    chunks = []
    while True:
        d = s.recv(65536)
        if not d:
            break
        chunks.append(d)
    s.close()
    ms = (time.monotonic() - t0) * 1000
    print("blocking %.0f %d" % (ms, len(body(b"".join(chunks)))), flush=True)


async def fetch():
    t0 = time.monotonic()
    r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 60)
    w.write(req)
    await w.drain()
    d = await asyncio.wait_for(r.read(), 60)
    w.close()
    print("asyncio %.0f %d" % ((time.monotonic() - t0) * 1000, len(body(d))), flush=True)

for mode in sys.argv[4].split(","):
    if mode == "blocking":
        blocking()
    else:
        asyncio.run(fetch())
