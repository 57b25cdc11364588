#!/usr/bin/env python3
"""rudpraw: an independent raw client for librudp_shim's wire protocol.

Written from the wire format documented in docs/wire.md ("Wire format",
"Handshake"), the way an outside attacker would write it: no ctypes, no
linking with the C code, Python 3 standard library only. It exists for the
security tests and the flood benchmark: it lets a script say exactly which
datagrams reach a server and count every byte it cost to send them.

The codec, the connection and the raw packets are in rudpwire.py (its
docstring lists them); this file re-exports them, so `import rudpraw`
still gives the whole API.

Command line: `rudpraw.py SUBCOMMAND HOST PORT [options]`. Each subcommand
ends with one summary line `key=value ...` on stdout (always with
sent_bytes= and sent_dgrams=, the UDP payload sent) and exits 1 if not even
a handshake succeeded. --server-pid PID adds the server's VmRSS before and
after (server_rss_kb_before=, server_rss_kb_after=) and held_per_sent_byte=,
the growth per UDP payload byte sent. junk and synflood also print a line
`flooding=junk|synflood ...` first, flushed, the moment they start sending.

  handshake   one connection; prints the server's connection ID, its initial
              window and largest datagram (a smoke test)
  send        one connection; sends --data TEXT (or --data-file's bytes) at
              offset 0 with FIN, in order within the server's limit,
              resending what is not acknowledged; waits for the ACKs (and,
              with --wait-fin, the server's FIN)
  blocked     one connection; --count bare DATA_BLOCKED frames (value: the
              limit the server advertised) --interval-ms apart, answering the
              server in between; prints max_data_seen=, the largest MAX_DATA
  scatter     one connection (after --blocked N DATA_BLOCKED frames, if
              asked); one STREAM frame of --bytes-per bytes at every offset
              k*--step, k = 1, 2, ... up to the advertised limit (never offset
              0: nothing is in order), one frame per datagram; prints how many
              the server acknowledged, i.e. kept
  many        --conns connections from ONE UDP socket (one source port,
              different client IDs), each through the first DATA; answers the
              server for --hold seconds (--abort: then a RESET frame on each);
              prints how many got a SYNACK, a RESET or no answer
  junk        random datagrams at --rate per second for --seconds: random
              bytes, and the protocol's magic followed by garbage (stray DATA
              for unknown connections, SYNs with forged cookies)
  synflood    SYNs padded to 1200 bytes from random source addresses in
              --src-net, through a raw socket (IPv4 and UDP headers built
              here, checksums included); needs root. With --tcp, TCP SYNs
              instead (44-byte IPv4 + TCP segments with an MSS option,
              checksums included): the same attack on a kernel TCP
              listener, for the flood benchmark's comparison. sent_bytes
              then counts TCP header bytes
  selftest    the codec against RFC 9000's varint examples and round trips

Everything is bounded: each wait has a timeout (--timeout, default 3 s),
each loop a count or a deadline, and datagrams go to HOST only.
"""

import argparse
import ipaddress
import os
import random
import select
import socket
import struct
import sys
import time

from rudpwire import *  # noqa: F401,F403 (the module API, re-exported)
from rudpwire import _has_params, _long_hdr


# ---- the command line ----

def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Report:
    """The one summary line, in the order the fields were added."""

    def __init__(self, args):
        self.kv = []
        self.pid = getattr(args, "server_pid", None)
        self.rss0 = rss_kb(self.pid) if self.pid else None

    def add(self, **kw):
        self.kv.extend(kw.items())

    def emit(self):
        out = ["%s=%s" % kv for kv in self.kv]
        out.append(stats.summary())
        if self.pid:
            rss1 = rss_kb(self.pid)
            out.append("server_rss_kb_before=%s server_rss_kb_after=%s" % (self.rss0, rss1))
            if self.rss0 is not None and rss1 is not None and stats.sent_bytes:
                out.append("held_per_sent_byte=%.1f" % ((rss1 - self.rss0) * 1024 / stats.sent_bytes))
        print(" ".join(out), flush=True)


def new_socket(args):
    fam, addr = resolve(args.host, args.port)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", 0))
    return s, addr


def open_conn(args, sock=None, addr=None):
    if sock is None:
        sock, addr = new_socket(args)
    after = getattr(args, "after", None)
    c = Conn(sock, addr, window=args.window, max_datagram=args.max_datagram,
             hs_timeout=args.timeout, hold_first=bool(after))
    c.handshake()
    if c.state == "held":
        # The server holds us in SYN_RCVD until our first DATA: send it once
        # the file exists (bounded by the handshake budget, several times).
        print("held after SYNACK, waiting for %s" % after, flush=True)
        c.ep.wait(lambda: os.path.exists(after), 10 * args.timeout)
        if os.path.exists(after):
            c.release()
    return c


def conn_fields(c):
    return dict(state=c.state,
                server_id="%016x" % c.server_id if c.server_id is not None else "-",
                window=c.initial_window, max_datagram=c.peer_max_datagram,
                retries=c.retries, syns=c.syns, src_port=c.ep.sock.getsockname()[1])


def fail_handshake(rep, c):
    rep.add(**conn_fields(c))
    rep.add(handshake="failed")
    rep.emit()
    return 1


def cmd_handshake(args):
    rep = Report(args)
    c = open_conn(args)
    if c.state != "established":
        return fail_handshake(rep, c)
    # Wait for the server's ACK of our first DATA: proof it took the PING.
    c.ep.wait(lambda: c.largest_acked >= 0, args.timeout)
    rep.add(handshake="ok", **conn_fields(c))
    rep.add(ping_acked=int(c.largest_acked >= 0))
    rep.emit()
    return 0


def cmd_send(args):
    rep = Report(args)
    c = open_conn(args)
    if c.state != "established":
        return fail_handshake(rep, c)
    if args.data_file:
        with open(args.data_file, "rb") as f:
            data = f.read()
    else:
        data = args.data.encode()
    want_fin = not args.no_fin
    inflight = {}  # pn -> (offset, chunk, fin, time sent)
    off, fin_sent, blocked_at, retransmits = 0, False, None, 0
    deadline = time.monotonic() + args.timeout

    # Chunks fill max_payload, so owed ACKs go in packets of their own.
    def send_chunk(o, chunk, fin):
        pn = c.send([stream(o, chunk, fin=fin)], ack_now=True, piggyback=False)
        inflight[pn] = (o, chunk, fin, time.monotonic())

    while time.monotonic() < deadline and c.state == "established":
        # New bytes, as far as the server's limit lets us.
        while off < len(data) or (want_fin and not fin_sent):
            room = c.max_payload - stream_hdr_len(off, c.max_payload)
            n = min(room, len(data) - off, c.limit - off)
            if n <= 0 and off < len(data):
                if blocked_at != c.limit:  # once per limit, as the C sender
                    blocked_at = c.limit
                    c.send([data_blocked(c.limit)], piggyback=False)
                break
            last = off + n == len(data)
            send_chunk(off, data[off:off + n], want_fin and last)
            fin_sent = fin_sent or (want_fin and last)
            off += n
        c.ep.poll(0.05)
        # Whatever is not acknowledged after 300 ms goes again, in a new
        # packet (packet numbers are never reused).
        now = time.monotonic()
        for pn in list(inflight):
            if c.is_acked(pn):
                del inflight[pn]
            elif now - inflight[pn][3] > 0.3:
                o, chunk, fin, _ = inflight.pop(pn)
                send_chunk(o, chunk, fin)
                retransmits += 1
        if off == len(data) and (fin_sent or not want_fin) and not inflight:
            break
    all_acked = off == len(data) and (fin_sent or not want_fin) and not inflight
    if args.wait_fin and all_acked:
        c.ep.wait(lambda: c.fin_received or c.state != "established", args.timeout)
        c.ep.poll(0.05)  # our ACK of the FIN goes out here
    got = c.read()
    rep.add(**conn_fields(c))
    rep.add(data_bytes=len(data), acked=int(all_acked), retransmits=retransmits,
            recv_bytes=len(got), peer_fin=int(c.fin_received))
    rep.emit()
    return 0 if all_acked else 1


def inflate(c, count, interval_ms):
    """DATA_BLOCKED at the advertised limit, count times: the server doubles
    its window (at most once per its RTT estimate) each time."""
    for _ in range(count):
        c.send([data_blocked(c.limit)], piggyback=False)
        c.ep.wait(lambda: False, interval_ms / 1000.0, slice_s=interval_ms / 1000.0)
    # Let the last MAX_DATA arrive.
    c.ep.poll(min(0.2, max(0.02, interval_ms / 1000.0)))


def cmd_blocked(args):
    rep = Report(args)
    c = open_conn(args)
    if c.state != "established":
        return fail_handshake(rep, c)
    inflate(c, args.count, args.interval_ms)
    rep.add(**conn_fields(c))
    rep.add(blocked_sent=args.count, interval_ms=args.interval_ms, max_data_updates=c.max_data_updates,
            max_data_seen=c.limit, growth=round(c.limit / c.initial_window, 2) if c.initial_window else 0)
    rep.emit()
    return 0


def cmd_scatter(args):
    rep = Report(args)
    c = open_conn(args)
    if c.state != "established":
        return fail_handshake(rep, c)
    if args.blocked:
        inflate(c, args.blocked, args.interval_ms)
    limit = c.limit
    if args.bytes_per + stream_hdr_len(limit, 0, False) > c.max_payload:
        print("error: --bytes-per %d does not fit a %d-byte payload" % (args.bytes_per, c.max_payload),
              file=sys.stderr)
        return 2
    payload = bytes([0x5A]) * args.bytes_per
    pns = []
    k = 1
    stream_bytes = 0
    # Keep at most `window` packets unanswered: a flood would overrun the
    # sockets' buffers and measure drops, not what the server keeps. The
    # server acknowledges at once on a gap, so a packet below the largest
    # acknowledged that is not acknowledged was refused, not pending; if
    # it refuses everything, the wait is short and bounded.
    window = 128
    answered = -1  # ACKs seen up to here, or where we stopped waiting for them
    while k * args.step + args.bytes_per <= limit and len(pns) < args.max_frames:
        answered = max(answered, c.largest_acked)
        if pns and pns[-1] - answered > window:
            if not c.ep.wait(lambda: pns[-1] - c.largest_acked <= window // 2, 0.2):
                answered = pns[-1]  # refused, not pending: a window more, then wait again
        pns.append(c.send([stream(k * args.step, payload, explicit_len=False)], piggyback=False))
        stream_bytes += args.bytes_per
        k += 1
        c.ep.poll(0)
    # Delayed ACKs (25 ms at most) and the last answers.
    c.ep.settle(0.2, args.timeout)
    acked = sum(1 for pn in pns if pn in c.acked)
    rep.add(**conn_fields(c))
    rep.add(limit=limit, step=args.step, bytes_per=args.bytes_per, frames_sent=len(pns),
            acked=acked, not_acked=len(pns) - acked, stream_bytes=stream_bytes,
            max_data_seen=c.limit)
    rep.emit()
    return 0


def cmd_many(args):
    rep = Report(args)
    sock, addr = new_socket(args)
    conns = [Conn(sock, addr, window=args.window, max_datagram=args.max_datagram,
                  hs_timeout=args.timeout) for _ in range(args.conns)]
    ep = conns[0].ep if conns else Endpoint.of(sock, addr)
    pending = list(reversed(conns))
    active = []
    # A bounded number of handshakes at a time, like an eager client; the
    # server's SYN_RCVD backlog drops the excess and our SYNs retry.
    deadline = time.monotonic() + args.timeout * max(1, args.conns)
    while (pending or active) and time.monotonic() < deadline:
        while pending and len(active) < args.parallel:
            c = pending.pop()
            c.start()
            active.append(c)
        ep.poll(0.01)
        active = [c for c in active if c.state == "syn_sent"]
    hold_end = time.monotonic() + args.hold
    while time.monotonic() < hold_end:
        ep.poll(min(0.2, hold_end - time.monotonic()))
    states = collections.Counter(c.state for c in conns)
    if args.abort:
        # A client giving up: the server must forget every connection,
        # accepted by its application or not.
        for c in conns:
            c.abort()
    rep.add(conns=args.conns, completed=sum(1 for c in conns if c.server_id is not None),
            established=states["established"], refused=states["refused"],
            reset=states["reset"], no_answer=states["timeout"] + states["syn_sent"] + states["new"],
            retries=sum(c.retries for c in conns), held_s=args.hold,
            src_port=sock.getsockname()[1])
    rep.emit()
    return 0 if states["established"] else 1


def junk_pool(kind, size, n=512):
    """Precomputed datagrams (Python cannot make fresh random bytes at
    flood rates); cycled through while flooding."""
    rnd = random.Random()
    pool = []
    for i in range(n):
        ln = size or rnd.randint(16, 1200)
        k = kind if kind != "mix" else ("random", "magic", "data", "syn")[i % 4]
        if k == "random":
            d = os.urandom(ln)
        elif k == "magic":
            # Right magic and version, then garbage: every decoder branch.
            d = MAGIC + bytes([VERSION]) + os.urandom(max(0, ln - 3))
        elif k == "data":
            # DATA for connections that do not exist: the server answers
            # each with a stateless RESET (smaller than the datagram).
            d = encode_header(Header(PKT_DATA, dcid=random_cid(), pn=i)) + os.urandom(max(0, ln - 16))
        else:
            # A SYN with a forged cookie: the server must check the MAC.
            h = Header(PKT_SYN, scid=random_cid(), token=os.urandom(12), max_data=1 << 18,
                       max_datagram=1400)
            b = encode_header(h)
            d = b + bytes(max(0, (size or MIN_SYN_SIZE) - len(b)))
        pool.append(d[:ln] if size else d)
    return pool


def drain_replies(sock, counts):
    """Counts what the server sends back (RETRY, RESET...), never blocking."""
    for _ in range(4096):
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            counts["icmp_errors"] += 1
            continue
        counts["replies"] += 1
        counts["reply_bytes"] += len(data)
        stats.recv_dgrams += 1
        stats.recv_bytes += len(data)


def flooding(args):
    """The line a flood prints as its first datagram is due, so a script
    can start what the flood should meet only once it runs (an
    interpreter's start-up can take a second on a loaded machine)."""
    print("flooding=%s rate_target=%s seconds=%s" % (args.cmd, args.rate, args.seconds), flush=True)


def cmd_junk(args):
    rep = Report(args)
    sock, addr = new_socket(args)
    sock.setblocking(False)
    pool = junk_pool(args.kind, args.size)
    counts = collections.Counter()
    i = 0
    flooding(args)
    t0 = time.monotonic()
    for n in paced(args.rate, args.seconds):
        for _ in range(n):
            send_udp(sock, pool[i % len(pool)], addr)
            i += 1
        drain_replies(sock, counts)
    elapsed = time.monotonic() - t0
    drain_replies(sock, counts)
    rep.add(kind=args.kind, avg_size=stats.sent_bytes // max(1, stats.sent_dgrams),
            seconds=round(elapsed, 3), rate_target=args.rate,
            rate=round(stats.sent_dgrams / elapsed) if elapsed > 0 else 0, send_errors=stats.send_errors,
            replies=counts["replies"], reply_bytes=counts["reply_bytes"])
    rep.emit()
    return 0


def cmd_synflood(args):
    rep = Report(args)
    fam, addr = resolve(args.host, args.port)
    if fam != socket.AF_INET:
        print("error: synflood is IPv4 only", file=sys.stderr)
        return 2
    net = ipaddress.ip_network(args.src_net, strict=False)
    if net.version != 4:
        print("error: --src-net must be IPv4", file=sys.stderr)
        return 2
    try:
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    except PermissionError:
        print("error: a raw socket needs root (CAP_NET_RAW)", file=sys.stderr)
        return 1
    raw.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    raw.setblocking(False)
    dst = socket.inet_aton(addr[0])
    rnd = random.Random()
    base, span = int(net.network_address), net.num_addresses
    # Each SYN is fresh (new source, port, client ID); the padding is zeros
    # and adds nothing to the checksum, so a packet costs microseconds.
    token_len = 12 if args.bad_token else 0
    flooding(args)
    t0 = time.monotonic()
    for n in paced(args.rate, args.seconds):
        for _ in range(n):
            src = (base + rnd.randrange(span)).to_bytes(4, "big")
            sport, ident = rnd.randint(1024, 65535), rnd.getrandbits(16) or 1
            if args.tcp:
                # Kernel TCP's equivalent: a spoofed TCP SYN to the port.
                pkt = tcp_syn_ipv4_packet(src, sport, dst, args.port, rnd.getrandbits(32), ident)
                size = len(pkt) - 20
            else:
                h = Header(PKT_SYN, scid=random_cid(), token=os.urandom(token_len), max_data=1 << 18,
                           max_datagram=1400)
                b = encode_header(h)
                payload = b + bytes(MIN_SYN_SIZE - len(b))
                pkt = udp_ipv4_packet(src, sport, dst, args.port, payload, ident)
                size = len(payload)
            try:
                raw.sendto(pkt, (addr[0], 0))
                stats.sent_bytes += size
                stats.sent_dgrams += 1
            except (BlockingIOError, InterruptedError):
                select.select([], [raw], [], 0.1)
                stats.send_errors += 1
            except OSError:
                stats.send_errors += 1
    elapsed = time.monotonic() - t0
    rep.add(src_net=str(net), seconds=round(elapsed, 3), rate_target=args.rate,
            rate=round(stats.sent_dgrams / elapsed) if elapsed > 0 else 0,
            proto="tcp" if args.tcp else "rudp", bad_token=int(args.bad_token),
            send_errors=stats.send_errors)
    rep.emit()
    return 0


def cmd_selftest(args):
    """The codec on known values (RFC 9000 §A.1) and round trips; no network."""
    checks = 0

    def eq(a, b, what):
        nonlocal checks
        checks += 1
        if a != b:
            raise AssertionError("%s: %r != %r" % (what, a, b))

    for hexs, v in (("c2197c5eff14e88c", 151288809941952652), ("9d7f3e7d", 494878333),
                    ("7bbd", 15293), ("25", 37), ("4025", 37)):
        eq(varint_decode(bytes.fromhex(hexs)), (v, len(hexs) // 2), "varint " + hexs)
    for v in (0, 63, 64, 16383, 16384, 2**30 - 1, 2**30, VARINT_MAX):
        eq(varint_decode(varint_encode(v))[0], v, "varint round trip %d" % v)
    for t in PKT_NAMES:
        h = Header(t, 1, 0x0102030405060708, 0xFFFFFFFF, 0x1112131415161718, b"tok" if t <= 3 else b"",
                   256 * 1024, 65000)
        b = encode_header(h)
        g, off = decode_header(b)
        eq(off, len(b), "header length %s" % PKT_NAMES[t])
        eq((g.ptype, g.flags, g.dcid, g.pn), (t, 1, h.dcid, h.pn), "short fields %s" % PKT_NAMES[t])
        if _long_hdr(t):
            eq((g.scid, g.token), (h.scid, h.token), "long fields")
        if _has_params(t):
            eq((g.max_data, g.max_datagram), (h.max_data, h.max_datagram), "params")
    ranges = [(100, 120), (90, 97), (50, 50), (0, 10)]
    fr = decode_frames(ack(ranges, 25) + max_data(1 << 20) + data_blocked(7) + ping() + padding(5)
                       + reset_frame(3, 9) + stream(5, b"abc", fin=True) + stream(1 << 40, b"tail", explicit_len=False))
    eq(fr[0], Ack(120, 25, ranges), "ack")
    eq(fr[1:], [MaxData(1 << 20), DataBlocked(7), Ping(), Padding(5), ResetFrame(3, 9),
                Stream(5, b"abc", True), Stream(1 << 40, b"tail", False)], "frames")
    eq(normalize_ranges([(1, 3), (4, 6), (10, 12), (11, 20)]), [(10, 20), (1, 6)], "normalize")
    for bad in (ack_raw(5, 0, 6), ack_raw(10, 0, 0, [(9, 0)]), b"\x06", bytes([0x0A, 5, 4, 1])):
        try:
            decode_frames(bad)
        except DecodeError:
            checks += 1
        else:
            raise AssertionError("accepted a bad frame %s" % bad.hex())
    eq(pn_expand(2**32 + 5, 0xFFFFFFFE), 2**32 - 2, "pn below a wrap")
    eq(pn_expand(2**32 - 3, 2), 2**32 + 2, "pn across a wrap")
    eq(pn_expand(0, 7), 7, "pn from zero")
    r = PnRanges(keep=3)
    for pn in (1, 2, 3, 7, 5, 6, 10, 12, 14):
        r.add(pn)
    eq(r.highest(5), [(14, 14), (12, 12), (10, 10)], "pn ranges keep the highest")
    eq(r.add(12), False, "pn ranges duplicate")
    pkt = udp_ipv4_packet(bytes([10, 1, 2, 3]), 1234, bytes([127, 0, 0, 1]), 4321, b"hello!!")
    eq(inet_checksum(pkt[:20]), 0, "ip checksum verifies")
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, len(pkt) - 20)
    eq(inet_checksum(pseudo + pkt[20:]), 0, "udp checksum verifies")
    pkt = tcp_syn_ipv4_packet(bytes([10, 1, 2, 3]), 1234, bytes([127, 0, 0, 1]), 4321, 0x01020304, 7)
    eq((len(pkt), pkt[9], pkt[20 + 13], pkt[20 + 12] >> 4), (44, 6, 0x02, 6), "tcp syn layout")
    eq(inet_checksum(pkt[:20]), 0, "ip checksum verifies (tcp)")
    pseudo = pkt[12:20] + struct.pack("!BBH", 0, 6, len(pkt) - 20)
    eq(inet_checksum(pseudo + pkt[20:]), 0, "tcp checksum verifies")
    print("selftest=ok checks=%d" % checks)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    def target(name, help_):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("host")
        sp.add_argument("port", type=int)
        sp.add_argument("--timeout", type=float, default=3.0,
                        help="handshake budget and every wait, seconds (default 3)")
        sp.add_argument("--server-pid", type=int,
                        help="report this process's VmRSS before and after")
        sp.add_argument("--window", type=int, default=1 << 20,
                        help="our receive window, advertised in the SYN (default 1 MiB)")
        sp.add_argument("--max-datagram", type=int, default=65000,
                        help="largest datagram we accept, advertised in the SYN")
        return sp

    target("handshake", "one handshake; print the server's ID and window")
    sp = target("send", "send TEXT in order at offset 0 with FIN")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="the text to send")
    g.add_argument("--data-file", help="send this file's bytes instead")
    sp.add_argument("--no-fin", action="store_true")
    sp.add_argument("--wait-fin", action="store_true", help="then wait for the server's FIN")
    sp.add_argument("--after", metavar="FILE",
                    help="hold after the SYNACK (server in SYN_RCVD) until FILE exists")
    sp = target("blocked", "DATA_BLOCKED frames: how far does the window grow")
    sp.add_argument("--count", type=int, default=8)
    sp.add_argument("--interval-ms", type=float, default=5.0)
    sp = target("scatter", "one out-of-order frame every --step bytes up to the limit")
    sp.add_argument("--step", type=int, required=True)
    sp.add_argument("--bytes-per", type=int, default=1)
    sp.add_argument("--blocked", type=int, default=0, help="DATA_BLOCKED frames first")
    sp.add_argument("--interval-ms", type=float, default=5.0, help="between those frames")
    sp.add_argument("--max-frames", type=int, default=1 << 20, help="bound on frames sent")
    sp = target("many", "many connections from one UDP socket")
    sp.add_argument("--conns", type=int, required=True)
    sp.add_argument("--hold", type=float, default=0.0, help="seconds to keep them alive")
    sp.add_argument("--parallel", type=int, default=16, help="handshakes under way at once")
    sp.add_argument("--abort", action="store_true", help="end with a RESET frame on each")
    sp = target("junk", "random datagrams at a rate")
    sp.add_argument("--rate", type=float, required=True, help="datagrams per second (0: flat out)")
    sp.add_argument("--seconds", type=float, required=True)
    sp.add_argument("--size", type=int, default=0, help="bytes per datagram (default 16..1200)")
    sp.add_argument("--kind", choices=("mix", "random", "magic", "data", "syn"), default="mix")
    sp = target("synflood", "spoofed SYNs through a raw socket (root)")
    sp.add_argument("--rate", type=float, required=True)
    sp.add_argument("--seconds", type=float, required=True)
    sp.add_argument("--src-net", required=True, help="spoofed sources, e.g. 10.99.0.0/16")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--bad-token", action="store_true", help="forged cookies instead of none")
    g.add_argument("--tcp", action="store_true",
                   help="TCP SYNs (IPv4 + TCP, MSS option) instead of rudp SYNs: the same "
                        "attack on a kernel TCP listener")
    sub.add_parser("selftest", help="codec checks, no network")

    args = p.parse_args(argv)
    # Bounds on every loop the options drive.
    for name, lo, hi in (("count", 0, 1 << 20), ("conns", 0, 1 << 20), ("step", 1, None),
                         ("bytes_per", 0, 65507), ("parallel", 1, 4096), ("seconds", 0, 3600),
                         ("hold", 0, 3600), ("timeout", 0.001, 3600)):
        v = getattr(args, name, None)
        if v is not None and (v < lo or (hi is not None and v > hi)):
            p.error("--%s must be in %s..%s" % (name.replace("_", "-"), lo, hi or ""))
    return globals()["cmd_" + args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
