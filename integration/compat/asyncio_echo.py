#!/usr/bin/env python3
"""asyncio stream echo server and concurrent clients, for t_asyncio_echo.sh.

  asyncio_echo.py server HOST PORT
      asyncio.start_server (default backlog); each connection: read and write
      back until EOF, then close.  Runs until SIGTERM, then exits 0.
  asyncio_echo.py client HOST PORT N SIZE SENT RECEIVED
      N connections opened at once with asyncio.open_connection; each writes
      SIZE random bytes (a writer task, then write_eof) while a reader task
      reads until EOF.  Writes what every client sent to SENT and what it got
      back to RECEIVED, client by client in order, for the caller's sha256sum.
      Exit 0 when every client finished; prints a summary line either way.
"""
import asyncio
import os
import signal
import sys
import time


async def serve(host, port):
    async def echo(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
            writer.close()
            await writer.wait_closed()
        except (ConnectionError, OSError) as e:
            print("server: connection error: %r" % e, file=sys.stderr, flush=True)
            writer.close()

    server = await asyncio.start_server(echo, host, port)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("server: listening on %s:%d" % (host, port), flush=True)
    async with server:
        await stop.wait()


async def one_client(host, port, payload):
    reader, writer = await asyncio.open_connection(host, port)

    async def send():
        view = memoryview(payload)
        for off in range(0, len(view), 16384):
            writer.write(view[off:off + 16384])
            await writer.drain()
        writer.write_eof()

    async def receive():
        chunks = []
        while True:
            data = await reader.read(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)

    got = (await asyncio.gather(send(), receive()))[1]
    writer.close()
    await writer.wait_closed()
    return got


async def clients(host, port, n, size):
    payloads = [os.urandom(size) for _ in range(n)]
    results = await asyncio.gather(*(one_client(host, port, p) for p in payloads),
                                   return_exceptions=True)
    return payloads, results


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "server":
        asyncio.run(serve(sys.argv[2], int(sys.argv[3])))
        return 0
    if len(sys.argv) != 8 or sys.argv[1] != "client":
        print(__doc__, file=sys.stderr)
        return 2
    host, port, n, size = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    t0 = time.monotonic()
    payloads, results = asyncio.run(clients(host, port, n, size))
    failed = 0
    with open(sys.argv[6], "wb") as sent, open(sys.argv[7], "wb") as received:
        for i, (p, r) in enumerate(zip(payloads, results)):
            sent.write(p)
            if isinstance(r, BaseException):
                failed += 1
                print("client %d: %r" % (i, r), file=sys.stderr)
                continue
            received.write(r)
            if len(r) != len(p):
                print("client %d: %d of %d bytes echoed" % (i, len(r), len(p)), file=sys.stderr)
    print("clients: %d of %d finished, %.2f s" % (n - failed, n, time.monotonic() - t0), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
