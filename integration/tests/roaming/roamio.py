#!/usr/bin/env python3
"""roamio: the two ends of a roaming test's transfer, and its attacker.

One TCP connection (under the shim when LD_PRELOAD says so: nothing here
knows), one direction of bytes, measured at the receiver:

  roamio.py listen PORT (--send FILE | --recv FILE) [--rate B/s] [--log FILE] [--cc NAME]
                   [--hold FLAG]
  roamio.py connect HOST PORT (--send FILE | --recv FILE) [--rate B/s] [--log FILE] [--cc NAME]

listen accepts one connection (printing "peer IP PORT"), connect makes one
(printing "local IP PORT"). --send writes FILE's bytes, paced at --rate
bytes per second when given (a sender that falls behind catches up), then
shuts down its sending side and waits for the peer to close: so exit 0
means the receiver read everything. --recv reads to EOF into FILE as it
arrives, logging each read to --log as "MS TOTAL" (CLOCK_REALTIME
milliseconds, as `date +%s%3N`, and bytes so far), then closes; with
--hold FLAG it prints "eof" first and waits until the file FLAG exists
(a test changing the network between the two). Either end
prints one last line, "done bytes=N secs=S" and exits 0, or "error: WHY
after S s, bytes=N" and exits 1.

  roamio.py spoof --src IP --sport N --to IP --port N --cid HEX [--pn N]
                  [--count K] [--size B]

sends K rudp DATA datagrams (integration/tools/rudpraw.py's codec: the
16-byte header with destination connection ID CID and packet numbers from
N up, a PING frame, padding to B bytes of UDP payload) from the source
address IP:N, which need not be ours, through a raw socket (IPv4 and UDP
headers built here; needs root). Prints "spoofed K datagrams, S bytes".

  roamio.py flipcopy --dev DEV --from-port N --src IP --secs S [--max K]

an observer's copies: for S seconds, each UDP datagram from port N that
DEV carries (AF_PACKET: what the interface receives) goes again, one to
four of its bits past the first 12 bytes (the magic, version, type and
connection ID stay) flipped, from IP (not ours) to the datagram's own
destination, through a raw socket; at most K. Prints "copied K datagrams,
S bytes".
"""

import argparse
import os
import socket
import sys
import time

CHUNK = 16384


def ms_now():
    return int(time.time() * 1000)


def send_file(sock, path, rate, state):
    with open(path, "rb") as f:
        t0 = time.monotonic()
        while True:
            buf = f.read(CHUNK)
            if not buf:
                break
            if rate:
                wait = t0 + state["bytes"] / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            sock.sendall(buf)
            state["bytes"] += len(buf)
    sock.shutdown(socket.SHUT_WR)
    # The receiver closes once it has read everything.
    while sock.recv(CHUNK):
        pass


def recv_file(sock, path, log, state, hold=None):
    out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    lf = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if log else -1
    try:
        while True:
            buf = sock.recv(1 << 16)
            if not buf:
                break
            os.write(out, buf)
            state["bytes"] += len(buf)
            if lf >= 0:
                os.write(lf, b"%d %d\n" % (ms_now(), state["bytes"]))
    finally:
        os.close(out)
        if lf >= 0:
            os.close(lf)
    if hold:
        print("eof", flush=True)
        while not os.path.exists(hold):
            time.sleep(0.01)


def set_cc(sock, cc):
    """TCP_CONGESTION (kernel TCP; root may pick one not in the namespace's
    allowed list)."""
    if cc:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, cc.encode())


def transfer(sock, args):
    state = {"bytes": 0}
    t0 = time.monotonic()
    try:
        if args.send:
            send_file(sock, args.send, args.rate, state)
        else:
            recv_file(sock, args.recv, args.log, state, args.hold)
        sock.close()
    except OSError as e:
        print("error: %s after %.1f s, bytes=%d" % (e.strerror or e, time.monotonic() - t0,
                                                    state["bytes"]), flush=True)
        return 1
    print("done bytes=%d secs=%.3f" % (state["bytes"], time.monotonic() - t0), flush=True)
    return 0


def cmd_listen(args):
    ls = socket.socket(socket.AF_INET6 if ":" in args.bind else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    set_cc(ls, args.cc)
    ls.bind((args.bind, args.port))
    ls.listen(1)
    print("listening on %d" % args.port, flush=True)
    sock, peer = ls.accept()
    ls.close()
    print("peer %s %d" % peer[:2], flush=True)
    return transfer(sock, args)


def cmd_connect(args):
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET)
        set_cc(sock, args.cc)
        sock.settimeout(30)
        sock.connect((args.host, args.port))
    except OSError as e:
        print("error: connect: %s after 0 s, bytes=0" % (e.strerror or e), flush=True)
        return 1
    sock.settimeout(None)
    print("local %s %d" % sock.getsockname()[:2], flush=True)
    return transfer(sock, args)


def cmd_spoof(args):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
    import rudpraw as rr

    src, dst = socket.inet_aton(args.src), socket.inet_aton(args.to)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    total = 0
    for i in range(args.count):
        h = rr.Header(rr.PKT_DATA, rr.FLAG_ACK_NOW, int(args.cid, 16), args.pn + i)
        payload = rr.encode_header(h) + rr.ping()
        payload += rr.padding(max(0, args.size - len(payload)))
        raw.sendto(rr.udp_ipv4_packet(src, args.sport, dst, args.port, payload, ident=i + 1),
                   (args.to, 0))
        total += len(payload)
        time.sleep(0.05)
    print("spoofed %d datagrams, %d bytes" % (args.count, total), flush=True)
    return 0


def cmd_flipcopy(args):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "..", "tools"))
    import random
    import struct

    import rudpraw as rr

    rng = random.Random(0x5EED)
    src = socket.inet_aton(args.src)
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    sniff.bind((args.dev, 0))
    sniff.settimeout(0.2)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    end = time.monotonic() + args.secs
    n = total = 0
    while time.monotonic() < end and n < args.max:
        try:
            pkt = sniff.recv(65535)
        except socket.timeout:
            continue
        if len(pkt) < 28 or pkt[9] != 17 or pkt[12:16] == src:
            continue
        ihl = (pkt[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
        payload = bytearray(pkt[ihl + 8:])
        if sport != args.from_port or len(payload) <= 12:
            continue
        for _ in range(rng.randint(1, 4)):
            at = 12 + rng.randrange(len(payload) - 12)
            payload[at] ^= 1 << rng.randrange(8)
        dst = pkt[16:20]
        raw.sendto(rr.udp_ipv4_packet(src, sport, dst, dport, bytes(payload), ident=n + 1),
                   (socket.inet_ntoa(dst), 0))
        n += 1
        total += len(payload)
    print("copied %d datagrams, %d bytes" % (n, total), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("listen", "connect"):
        p = sub.add_parser(name)
        if name == "connect":
            p.add_argument("host")
        else:
            p.add_argument("--bind", default="0.0.0.0")
        p.add_argument("port", type=int)
        way = p.add_mutually_exclusive_group(required=True)
        way.add_argument("--send")
        way.add_argument("--recv")
        p.add_argument("--rate", type=float, default=0)
        p.add_argument("--log")
        p.add_argument("--cc", help="TCP_CONGESTION for the connection (kernel TCP)")
        p.add_argument("--hold", help="--recv: after EOF, close only once this file exists")
    p = sub.add_parser("flipcopy")
    p.add_argument("--dev", required=True)
    p.add_argument("--from-port", type=int, required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--secs", type=float, required=True)
    p.add_argument("--max", type=int, default=100000)
    p = sub.add_parser("spoof")
    p.add_argument("--src", required=True)
    p.add_argument("--sport", type=int, required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cid", required=True)
    p.add_argument("--pn", type=int, default=1 << 24)
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--size", type=int, default=1200)
    args = ap.parse_args()
    return {"listen": cmd_listen, "connect": cmd_connect, "spoof": cmd_spoof,
            "flipcopy": cmd_flipcopy}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
