#!/usr/bin/env python3
"""rudpwire: the codec and client state of librudp_shim's wire protocol,
for rudpraw.py (the raw client and flooder) and the tests' scripts.

Written from the wire format documented in docs/wire.md ("Wire format",
"Handshake"), the way an outside attacker would write it: no ctypes, no
linking with the C code, Python 3 standard library only.

Module API (import it from other scripts):

  varint_encode / varint_decode     QUIC variable-length integers (RFC 9000 §16)
  Header, encode_header, decode_header
                                    the 16-byte header and the SYN/RETRY/SYNACK
                                    extension, for all five packet types
  padding, ping, ack, ack_raw, max_data, data_blocked, reset_frame, stream
                                    frame encoders (bytes)
  decode_frames                     frames as the server sends them: Padding,
                                    Ping, Ack, MaxData, DataBlocked, ResetFrame,
                                    Stream (named tuples)
  Endpoint                          one UDP socket towards one server; several
                                    connections share it, demultiplexed by the
                                    destination connection ID of what arrives
  Conn                              one connection: handshake (SYN, SYNACK;
                                    a RETRY cookie first from a server under
                                    load; first DATA), packet numbers,
                                    ACKs for what the server sends, its MAX_DATA
                                    limit, RESETs, a small receive stream
  stats                             every UDP payload byte and datagram sent
                                    by this process (Stats)
  pn_expand, PnRanges, paced, udp_ipv4_packet, tcp_syn_ipv4_packet,
  inet_checksum                     packet-number expansion (RFC 9000 A.3),
                                    received-number ranges, a rate pacer, raw
                                    IPv4/UDP packets and TCP SYNs for spoofed
                                    sources
"""

import array
import bisect
import collections
import ipaddress
import os
import random
import select
import socket
import struct
import sys
import time
import weakref


# ---- constants (docs/wire.md) ----

MAGIC = b"ru"
VERSION = 1
SHORT_HDR = 16
TOKEN_MAX = 32
MIN_SYN_SIZE = 1200
VARINT_MAX = (1 << 62) - 1
ACK_MAX_RANGES = 64  # ranges the server's decoder accepts in one ACK

PKT_SYN, PKT_RETRY, PKT_SYNACK, PKT_DATA, PKT_RESET = 1, 2, 3, 4, 5
PKT_NAMES = {1: "SYN", 2: "RETRY", 3: "SYNACK", 4: "DATA", 5: "RESET"}
FLAG_ACK_NOW = 0x1

FR_PADDING, FR_PING, FR_ACK, FR_MAX_DATA, FR_DATA_BLOCKED, FR_RESET = 0, 1, 2, 3, 4, 5
FR_STREAM = 0x08
STREAM_FIN, STREAM_LEN = 0x01, 0x02


class DecodeError(ValueError):
    """A datagram or frame that does not parse; never trusted further."""


# ---- varints (RFC 9000 §16) ----

def varint_len(v):
    if v < 0 or v > VARINT_MAX:
        raise ValueError("varint out of range: %r" % (v,))
    return 1 if v < 1 << 6 else 2 if v < 1 << 14 else 4 if v < 1 << 30 else 8


def varint_encode(v, length=None):
    """Minimal encoding, or `length` bytes (1, 2, 4, 8) for the non-minimal
    encodings RFC 9000 allows (the server accepts them)."""
    n = length or varint_len(v)
    if n not in (1, 2, 4, 8) or v >= 1 << (8 * n - 2) or v < 0:
        raise ValueError("varint %r does not fit %r bytes" % (v, n))
    prefix = {1: 0x00, 2: 0x40, 4: 0x80, 8: 0xC0}[n]
    b = bytearray(v.to_bytes(n, "big"))
    b[0] |= prefix
    return bytes(b)


def varint_decode(buf, off=0):
    """Returns (value, offset after it); DecodeError if truncated."""
    if off >= len(buf):
        raise DecodeError("varint truncated")
    n = 1 << (buf[off] >> 6)
    if off + n > len(buf):
        raise DecodeError("varint truncated")
    v = int.from_bytes(buf[off:off + n], "big") & ((1 << (8 * n - 2)) - 1)
    return v, off + n


# ---- header ----

class Header:
    """A datagram header. scid/token belong to SYN, RETRY and SYNACK;
    max_data/max_datagram (the transport parameters) to SYN and SYNACK."""

    __slots__ = ("ptype", "flags", "dcid", "pn", "scid", "token", "max_data", "max_datagram")

    def __init__(self, ptype, flags=0, dcid=0, pn=0, scid=0, token=b"", max_data=0,
                 max_datagram=0):
        self.ptype, self.flags, self.dcid, self.pn = ptype, flags, dcid, pn
        self.scid, self.token = scid, bytes(token)
        self.max_data, self.max_datagram = max_data, max_datagram

    def __repr__(self):
        return "Header(%s flags=%x dcid=%016x pn=%d scid=%016x token=%s max_data=%d max_dgram=%d)" % (
            PKT_NAMES.get(self.ptype, self.ptype), self.flags, self.dcid, self.pn, self.scid,
            self.token.hex(), self.max_data, self.max_datagram)


def _long_hdr(ptype):
    return ptype in (PKT_SYN, PKT_RETRY, PKT_SYNACK)


def _has_params(ptype):
    return ptype in (PKT_SYN, PKT_SYNACK)


def encode_header(h, version=VERSION, magic=MAGIC):
    """Encodes h. version and magic can be overridden to forge datagrams;
    a type outside 0..15 or a token over 255 bytes cannot be encoded at all
    (the fields are 4 and 8 bits wide), anything else is written as asked."""
    out = bytearray(magic)
    out += bytes([version & 0xFF, ((h.flags & 0xF) << 4) | (h.ptype & 0xF)])
    out += (h.dcid & (2**64 - 1)).to_bytes(8, "big") + (h.pn & 0xFFFFFFFF).to_bytes(4, "big")
    if _long_hdr(h.ptype):
        out += h.scid.to_bytes(8, "big") + bytes([len(h.token)]) + h.token
    if _has_params(h.ptype):
        out += varint_encode(h.max_data) + varint_encode(h.max_datagram)
    return bytes(out)


def decode_header(buf):
    """Returns (Header, offset of the first frame). Rejects what the server's
    decoder rejects: bad magic, another version, unknown type, truncation,
    a token over 32 bytes."""
    if len(buf) < 3 or buf[0:2] != MAGIC:
        raise DecodeError("bad magic")
    if buf[2] != VERSION:
        raise DecodeError("version %d" % buf[2])
    if len(buf) < SHORT_HDR:
        raise DecodeError("short header")
    ptype, flags = buf[3] & 0xF, buf[3] >> 4
    if ptype not in PKT_NAMES:
        raise DecodeError("unknown packet type %d" % ptype)
    h = Header(ptype, flags, int.from_bytes(buf[4:12], "big"), int.from_bytes(buf[12:16], "big"))
    off = SHORT_HDR
    if _long_hdr(ptype):
        if len(buf) < off + 9:
            raise DecodeError("short long header")
        h.scid = int.from_bytes(buf[off:off + 8], "big")
        tlen = buf[off + 8]
        off += 9
        if tlen > TOKEN_MAX or off + tlen > len(buf):
            raise DecodeError("bad token length %d" % tlen)
        h.token = bytes(buf[off:off + tlen])
        off += tlen
    if _has_params(ptype):
        h.max_data, off = varint_decode(buf, off)
        h.max_datagram, off = varint_decode(buf, off)
    return h, off


# ---- frames: encoding ----

def padding(n=1):
    return bytes(n)


def ping():
    return bytes([FR_PING])


def ack_raw(largest, delay_us, first_range, pairs=()):
    """An ACK frame field by field (gap/length pairs as on the wire), so a
    test can also write ranges the server must reject."""
    out = bytearray([FR_ACK])
    out += varint_encode(largest) + varint_encode(delay_us)
    out += varint_encode(len(pairs)) + varint_encode(first_range)
    for gap, length in pairs:
        out += varint_encode(gap) + varint_encode(length)
    return bytes(out)


def normalize_ranges(ranges):
    """Inclusive (lo, hi) packet-number ranges, any order, overlapping or
    adjacent: merged and sorted highest first, as an ACK frame lists them."""
    merged = []
    for lo, hi in sorted(ranges, key=lambda r: r[0]):
        if lo > hi:
            raise ValueError("range (%d, %d) is backwards" % (lo, hi))
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [tuple(r) for r in reversed(merged)]


def ack(ranges, delay_us=0):
    """An ACK frame for inclusive (lo, hi) ranges (RFC 9000 §19.3.1).
    Keeps the ACK_MAX_RANGES highest: one more and the server drops the
    whole packet."""
    r = normalize_ranges(ranges)[:ACK_MAX_RANGES]
    if not r:
        raise ValueError("an ACK needs at least one range")
    pairs = [(r[i - 1][0] - r[i][1] - 2, r[i][1] - r[i][0]) for i in range(1, len(r))]
    return ack_raw(r[0][1], delay_us, r[0][1] - r[0][0], pairs)


def max_data(limit):
    return bytes([FR_MAX_DATA]) + varint_encode(limit)


def data_blocked(limit):
    return bytes([FR_DATA_BLOCKED]) + varint_encode(limit)


def reset_frame(code=0, final_size=0):
    return bytes([FR_RESET]) + varint_encode(code) + varint_encode(final_size)


def stream(offset, data, fin=False, explicit_len=True):
    """A STREAM frame. Without explicit_len the data runs to the end of the
    datagram, so the frame must be the packet's last."""
    t = FR_STREAM | (STREAM_FIN if fin else 0) | (STREAM_LEN if explicit_len else 0)
    out = bytes([t]) + varint_encode(offset)
    if explicit_len:
        out += varint_encode(len(data))
    return out + bytes(data)


def stream_hdr_len(offset, length, explicit_len=True):
    return 1 + varint_len(offset) + (varint_len(length) if explicit_len else 0)


# ---- frames: decoding ----

Padding = collections.namedtuple("Padding", "n")
Ping = collections.namedtuple("Ping", "")
Ack = collections.namedtuple("Ack", "largest delay_us ranges")  # ranges: [(lo, hi)], highest first
MaxData = collections.namedtuple("MaxData", "limit")
DataBlocked = collections.namedtuple("DataBlocked", "limit")
ResetFrame = collections.namedtuple("ResetFrame", "code final_size")
Stream = collections.namedtuple("Stream", "offset data fin")


def _decode_ack(buf, off):
    largest, off = varint_decode(buf, off)
    delay, off = varint_decode(buf, off)
    count, off = varint_decode(buf, off)
    first, off = varint_decode(buf, off)
    # Same limits as the server's decoder: no range below zero, at most 64.
    if count > ACK_MAX_RANGES - 1 or first > largest:
        raise DecodeError("bad ACK")
    ranges = [(largest - first, largest)]
    for _ in range(count):
        gap, off = varint_decode(buf, off)
        length, off = varint_decode(buf, off)
        prev_lo = ranges[-1][0]
        if prev_lo < 2 or gap > prev_lo - 2:
            raise DecodeError("ACK gap below zero")
        hi = prev_lo - gap - 2
        if length > hi:
            raise DecodeError("ACK range below zero")
        ranges.append((hi - length, hi))
    return Ack(largest, delay, ranges), off


def decode_frames(buf):
    """Every frame of a DATA packet's payload, or DecodeError: like the
    server, one bad frame makes the whole packet untrustworthy."""
    frames = []
    off, end = 0, len(buf)
    while off < end:
        t = buf[off]
        off += 1
        if t == FR_PADDING:
            start = off - 1
            while off < end and buf[off] == 0:
                off += 1
            frames.append(Padding(off - start))
        elif t == FR_PING:
            frames.append(Ping())
        elif t == FR_ACK:
            f, off = _decode_ack(buf, off)
            frames.append(f)
        elif t == FR_MAX_DATA:
            v, off = varint_decode(buf, off)
            frames.append(MaxData(v))
        elif t == FR_DATA_BLOCKED:
            v, off = varint_decode(buf, off)
            frames.append(DataBlocked(v))
        elif t == FR_RESET:
            code, off = varint_decode(buf, off)
            size, off = varint_decode(buf, off)
            frames.append(ResetFrame(code, size))
        elif FR_STREAM <= t <= FR_STREAM | STREAM_FIN | STREAM_LEN:
            soff, off = varint_decode(buf, off)
            if t & STREAM_LEN:
                length, off = varint_decode(buf, off)
                if length > end - off:
                    raise DecodeError("STREAM longer than the datagram")
            else:
                length = end - off
            if soff > VARINT_MAX - length:
                raise DecodeError("STREAM beyond 2^62")
            frames.append(Stream(soff, bytes(buf[off:off + length]), bool(t & STREAM_FIN)))
            off += length
        else:
            raise DecodeError("unknown frame type 0x%02x" % t)
    return frames


# ---- packet numbers ----

def pn_expand(expected, truncated, bits=32):
    """RFC 9000 Appendix A.3 with 32-bit truncated packet numbers."""
    win = 1 << bits
    hwin, mask = win // 2, win - 1
    cand = (expected & ~mask) | truncated
    if cand + hwin <= expected and cand < (1 << 62) - win:
        return cand + win
    if cand > expected + hwin and cand >= win:
        return cand - win
    return cand


class PnRanges:
    """Received packet numbers as disjoint inclusive ranges, ascending; only
    the `keep` highest ranges are kept (the server also reports only its
    newest ranges), so memory stays bounded whatever the peer sends."""

    def __init__(self, keep=64):
        self.r = []
        self.keep = keep

    def contains(self, pn):
        i = bisect.bisect_right(self.r, pn, key=lambda x: x[0])
        return i > 0 and self.r[i - 1][1] >= pn

    def add(self, pn):
        """Adds pn; False if it was already there."""
        r = self.r
        i = bisect.bisect_right(r, pn, key=lambda x: x[0])
        if i > 0 and r[i - 1][1] >= pn:
            return False
        left = i > 0 and r[i - 1][1] == pn - 1
        right = i < len(r) and r[i][0] == pn + 1
        if left and right:
            r[i - 1][1] = r[i][1]
            del r[i]
        elif left:
            r[i - 1][1] = pn
        elif right:
            r[i][0] = pn
        else:
            r.insert(i, [pn, pn])
        if len(r) > self.keep:
            del r[0]
        return True

    def highest(self, n):
        """The n highest ranges, highest first, as (lo, hi) tuples."""
        return [tuple(x) for x in reversed(self.r[-n:])]


# ---- sending and counting ----

class Stats:
    """What this process sent: UDP payload bytes and datagrams (the raw
    socket's IPv4/UDP headers are not counted: they are not payload)."""

    def __init__(self):
        self.sent_bytes = self.sent_dgrams = self.send_errors = 0
        self.recv_bytes = self.recv_dgrams = 0

    def summary(self):
        return "sent_bytes=%d sent_dgrams=%d" % (self.sent_bytes, self.sent_dgrams)


stats = Stats()


def send_udp(sock, data, addr):
    """sendto that counts what went out. A full send buffer (a flood
    outrunning the kernel) waits up to 1 s for room, then the datagram is
    counted as an error, never retried forever."""
    for attempt in (0, 1):
        try:
            sock.sendto(data, addr)
            stats.sent_bytes += len(data)
            stats.sent_dgrams += 1
            return True
        except (BlockingIOError, InterruptedError):
            if attempt == 0:
                select.select([], [sock], [], 1.0)
        except OSError:
            break  # ENOBUFS, ICMP errors reported on a connected socket, ...
    stats.send_errors += 1
    return False


def resolve(host, port):
    """(family, sockaddr) of HOST:PORT; the first address getaddrinfo gives."""
    fam, _, _, _, sa = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)[0]
    return fam, sa


def random_cid():
    """A random 64-bit connection ID; 0 is avoided (it is the SYN's dcid)."""
    while True:
        v = random.getrandbits(64)
        if v:
            return v


# ---- the demultiplexer ----

class Endpoint:
    """One UDP socket talking to one server address. Every Conn on the
    socket registers its client ID (the server's RETRY, SYNACK, DATA and
    refusing RESET carry it as dcid) and, once known, the server's ID (a
    stateless RESET echoes the dcid of the DATA that caused it)."""

    _by_sock = weakref.WeakKeyDictionary()

    @classmethod
    def of(cls, sock, addr):
        """The Endpoint of sock (made on first use), so Conns built from
        the same socket share it."""
        ep = cls._by_sock.get(sock)
        if ep is None:
            ep = cls(sock, addr)
            cls._by_sock[sock] = ep
        elif ep.addr[:2] != addr[:2]:
            raise ValueError("socket already talks to %r" % (ep.addr,))
        return ep

    def __init__(self, sock, addr):
        self.sock, self.addr = sock, addr
        sock.setblocking(False)
        self.conns = {}
        self.foreign = 0       # datagrams from another address
        self.malformed = 0     # header or frames fail to decode
        self.unmatched = 0     # no Conn of ours has that dcid
        self.icmp_errors = 0   # ECONNREFUSED and the like on recv

    def register(self, cid, conn):
        self.conns[cid] = conn

    def send(self, data):
        return send_udp(self.sock, data, self.addr)

    def poll(self, timeout=0.0, max_dgrams=4096):
        """Waits up to `timeout` for a datagram, handles everything queued
        (at most max_dgrams), then lets each Conn send what it owes (ACKs,
        handshake retransmissions). Returns the number handled."""
        deadline = time.monotonic() + timeout
        n = 0
        while n < max_dgrams:
            try:
                data, src = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                left = deadline - time.monotonic()
                if n or left <= 0:
                    break
                select.select([self.sock], [], [], left)
                continue
            except OSError:
                self.icmp_errors += 1
                continue
            n += 1
            stats.recv_dgrams += 1
            stats.recv_bytes += len(data)
            if src[:2] != self.addr[:2]:
                self.foreign += 1
                continue
            self._dispatch(data)
        now = time.monotonic()
        for c in set(self.conns.values()):
            c.service(now)
        return n

    def wait(self, pred, timeout, slice_s=0.05):
        """Polls until pred() is true or timeout passes; returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.poll(min(left, slice_s))
        return pred()

    def settle(self, quiet, timeout):
        """Polls until nothing arrives for `quiet` seconds (the server has
        said what it had to say) or timeout passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.poll(min(quiet, max(0.0, deadline - time.monotonic()))):
                return True
        return False

    def _dispatch(self, data):
        try:
            h, off = decode_header(data)
        except DecodeError:
            self.malformed += 1
            return
        c = self.conns.get(h.dcid)
        if c is None:
            self.unmatched += 1
            return
        c.on_datagram(h, data, off)


# ---- a connection ----

class Conn:
    """One rudp connection, client side. States: new, syn_sent,
    established, refused (RESET to our SYN), reset (RESET packet or frame
    later), timeout (no handshake within the budget), closed."""

    def __init__(self, sock, addr, cid=None, window=1 << 20, max_datagram=65000,
                 hs_timeout=3.0, max_retries=3, hold_first=False):
        self.ep = Endpoint.of(sock, addr)
        # Stop after the SYNACK (state "held", the server in SYN_RCVD) until
        # release(): lets a test choose when the server completes it.
        self.hold_first = hold_first
        self.cid = cid if cid is not None else random_cid()
        self.window = window            # our receive window, sent in the SYN
        self.max_datagram = max_datagram
        self.hs_timeout = hs_timeout
        self.max_retries = max_retries  # RETRYs followed (the C client: 3)
        self.state = "new"
        self.server_id = None
        self.token = b""
        self.retries = 0
        self.syns = 0
        self.hs_deadline = self.hs_next = 0.0
        self.hs_rto = 0.2
        # What the server told us.
        self.initial_window = None      # max_data of its SYNACK
        self.peer_max_datagram = None
        self.limit = 0                  # highest offset limit (MAX_DATA) so far
        self.max_data_updates = 0
        self.reset_code = None
        self.peer_blocked = 0           # DATA_BLOCKED frames from the server
        # Our packet numbers. DATA starts at 0 in a space of its own, as the
        # C client does; SYN packet numbers are just the attempt count.
        self.next_pn = 0
        self._unacked = []              # ack-eliciting pns sent, ascending
        self.acked = set()              # ack-eliciting pns the server acknowledged
        self.largest_acked = -1
        # What we owe the server.
        self.rx = PnRanges()
        self.rx_largest = -1
        self.rx_largest_time = 0.0
        self.ack_owed = False
        self.ping_owed = False
        self.max_data_owed = False
        # The server's byte stream to us.
        self.rcv_next = 0               # contiguous bytes received
        self.rcv_read = 0               # bytes the caller took with read()
        self.rcv_buf = bytearray()
        self._rcv_ooo = {}
        self.peer_fin = None            # final size, once the FIN came
        self.max_data_sent = window
        self.ep.register(self.cid, self)

    # -- handshake --

    def start(self):
        """Sends the first SYN; the handshake proceeds as datagrams arrive
        (Endpoint.poll) and retransmits on its own timer."""
        now = time.monotonic()
        self.state = "syn_sent"
        self.hs_deadline = now + self.hs_timeout
        self._send_syn(now)

    def handshake(self, timeout=None):
        """Runs the whole handshake; True once the first DATA is sent."""
        self.start()
        self.ep.wait(lambda: self.state != "syn_sent", timeout or self.hs_timeout)
        return self.state == "established"

    def release(self):
        """Step 5: our first DATA; the server is ESTABLISHED on it. ACK_NOW,
        as the C client's last packet before it runs dry carries it."""
        self.state = "established"
        self.send([ping()], ack_now=True)

    def _send_syn(self, now):
        h = Header(PKT_SYN, pn=self.syns, scid=self.cid, token=self.token,
                   max_data=self.window, max_datagram=self.max_datagram)
        b = encode_header(h)
        # PADDING to 1200: the server drops shorter SYNs (anti-amplification).
        self.ep.send(b + bytes(max(0, MIN_SYN_SIZE - len(b))))
        self.syns += 1
        self.hs_next = now + self.hs_rto * (2 ** min(self.syns - 1, 3))

    def service(self, now):
        """Timers and debts, run after each poll: SYN retransmission, the
        handshake budget, and one packet with what we owe."""
        if self.state == "syn_sent":
            if now >= self.hs_deadline:
                self.state = "timeout"
            elif now >= self.hs_next:
                self._send_syn(now)
            return
        if self.state == "established":
            self.flush()

    def on_datagram(self, h, data, off):
        if h.ptype == PKT_RETRY:
            # A cookie: echo it in a fresh SYN. The server ties it to our
            # address and ID; a few seconds later it expires.
            if self.state != "syn_sent" or not h.token or self.retries >= self.max_retries:
                return
            self.retries += 1
            self.token = h.token
            self._send_syn(time.monotonic())
        elif h.ptype == PKT_SYNACK:
            if self.state == "syn_sent":
                self.server_id = h.scid
                self.ep.register(h.scid, self)
                self.initial_window = self.limit = h.max_data
                self.peer_max_datagram = h.max_datagram
                if self.hold_first:
                    self.state = "held"
                    return
                self.release()
            elif self.state == "established" and h.scid == self.server_id:
                self.ping_owed = True  # our first DATA was lost: confirm again
        elif h.ptype == PKT_RESET:
            if self.state == "syn_sent" and h.dcid == self.cid:
                self.state = "refused"
            elif self.state in ("established", "closed") and h.dcid == self.server_id:
                self.state = "reset"
        elif h.ptype == PKT_DATA:
            if self.state in ("established", "closed"):
                self._on_data(h, memoryview(data)[off:])
        # SYN from the server makes no sense: ignored.

    # -- receiving DATA --

    def _on_data(self, h, payload):
        try:
            frames = decode_frames(payload)
        except DecodeError:
            self.ep.malformed += 1
            return
        now = time.monotonic()
        pn = pn_expand(self.rx_largest + 1, h.pn)
        if not self.rx.add(pn):
            self.ack_owed = True  # a repeat: our ACK was probably lost
            return
        if pn > self.rx_largest:
            self.rx_largest, self.rx_largest_time = pn, now
        eliciting = False
        for f in frames:
            if isinstance(f, Ack):
                self._on_ack(f)
                continue
            if isinstance(f, Padding):
                continue
            eliciting = True
            if isinstance(f, MaxData):
                self.max_data_updates += 1
                self.limit = max(self.limit, f.limit)
            elif isinstance(f, DataBlocked):
                self.peer_blocked += 1
                self.max_data_owed = True  # our update may have been lost
            elif isinstance(f, ResetFrame):
                self.reset_code = f.code
                self.state = "reset"
            elif isinstance(f, Stream):
                self._on_stream(f)
        if eliciting:
            self.ack_owed = True

    def _on_ack(self, f):
        self.largest_acked = max(self.largest_acked, min(f.largest, self.next_pn - 1))
        u = self._unacked
        for lo, hi in f.ranges:
            i = bisect.bisect_left(u, lo)
            j = bisect.bisect_right(u, hi)
            if i < j:
                self.acked.update(u[i:j])
                del u[i:j]

    def _on_stream(self, f):
        end = f.offset + len(f.data)
        if f.fin:
            self.peer_fin = end
        # Keep only what fits the window we advertised: the server may not
        # exceed it, so anything beyond is dropped rather than stored.
        if end <= self.rcv_next or end > self.max_data_sent:
            return
        if f.offset > self.rcv_next:
            old = self._rcv_ooo.get(f.offset, b"")
            if len(f.data) > len(old):
                self._rcv_ooo[f.offset] = f.data
            return
        self.rcv_buf += f.data[self.rcv_next - f.offset:]
        self.rcv_next = end
        while self._rcv_ooo:
            o = min(self._rcv_ooo)
            if o > self.rcv_next:
                break
            d = self._rcv_ooo.pop(o)
            if o + len(d) > self.rcv_next:
                self.rcv_buf += d[self.rcv_next - o:]
                self.rcv_next = o + len(d)

    @property
    def fin_received(self):
        return self.peer_fin is not None and self.rcv_next >= self.peer_fin

    def read(self):
        """The server's bytes received in order and not yet read; reading
        opens our window again (MAX_DATA once a quarter of it is free)."""
        d = bytes(self.rcv_buf)
        self.rcv_buf.clear()
        self.rcv_read += len(d)
        if self.rcv_read + self.window - self.max_data_sent >= self.window // 4:
            self.max_data_owed = True
        return d

    # -- sending DATA --

    @property
    def max_payload(self):
        """Frame bytes one DATA packet may carry (both sides' limits)."""
        m = min(self.max_datagram, self.peer_max_datagram or MIN_SYN_SIZE)
        return m - SHORT_HDR

    def send(self, frames, ack_now=False, piggyback=True):
        """Sends one DATA packet with `frames` (bytes each); with piggyback
        an ACK we owe goes first. Returns its packet number."""
        if self.server_id is None:
            raise RuntimeError("no handshake yet")
        frames = (self._owed_frames() if piggyback else []) + list(frames)
        pn = self.next_pn
        self.next_pn += 1
        h = Header(PKT_DATA, FLAG_ACK_NOW if ack_now else 0, self.server_id, pn)
        self.ep.send(encode_header(h) + b"".join(frames))
        # Only ack-eliciting packets are tracked: the server need not
        # acknowledge the others (it does, in passing, in its ranges).
        if any(f and f[0] not in (FR_ACK, FR_PADDING) for f in frames):
            self._unacked.append(pn)
        return pn

    def _owed_frames(self):
        """ACK (and MAX_DATA, PING) we owe, clearing the debts."""
        out = []
        if self.ack_owed and self.rx.r:
            delay = int(max(0.0, time.monotonic() - self.rx_largest_time) * 1e6)
            out.append(ack(self.rx.highest(32), delay))
        self.ack_owed = False
        if self.max_data_owed:
            self.max_data_sent = max(self.max_data_sent, self.rcv_read + self.window)
            out.append(max_data(self.max_data_sent))
            self.max_data_owed = False
        if self.ping_owed:
            out.append(ping())
            self.ping_owed = False
        return out

    def flush(self):
        """Sends one packet with whatever is owed, if anything."""
        if self.server_id is None or not (self.ack_owed or self.max_data_owed or self.ping_owed):
            return None
        frames = self._owed_frames()
        if not frames:
            return None
        return self.send(frames, piggyback=False)

    def is_acked(self, pn):
        return pn in self.acked

    def abort(self, code=0):
        """A RESET frame: the server drops the connection at once."""
        if self.state == "established":
            self.send([reset_frame(code, 0)], piggyback=False)
            self.state = "closed"


# ---- pacing ----

def paced(rate, seconds, batch_max=256):
    """Yields how many datagrams are due now so that `rate` per second is
    kept for `seconds` (rate <= 0: as fast as possible, batch_max at a
    time). Sleeps between batches instead of spinning; ends at the deadline."""
    start = time.monotonic()
    end = start + seconds
    done = 0
    while True:
        now = time.monotonic()
        if now >= end:
            return
        if rate <= 0:
            n = batch_max
        else:
            n = min(int((now - start) * rate) + 1 - done, batch_max)
            if n <= 0:
                time.sleep(max(0.0, min(end - now, start + done / rate - now)))
                continue
        yield n
        done += n


def inet_checksum(data):
    """RFC 1071 one's-complement sum, returned in network byte order.
    Summed as native 16-bit words (fast, in C) and swapped at the end: the
    sum is byte-order independent (RFC 1071 §2(B))."""
    if len(data) % 2:
        data += b"\0"
    s = sum(array.array("H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    s = ~s & 0xFFFF
    if sys.byteorder == "little":
        s = ((s & 0xFF) << 8) | (s >> 8)
    return s


def udp_ipv4_packet(src, sport, dst, dport, payload, ident=0):
    """A complete IPv4 + UDP packet (no options). The UDP checksum covers
    the pseudo-header; zero would mean "none", so 0xffff stands for it."""
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, ulen)
    uhdr = struct.pack("!HHHH", sport, dport, ulen, 0)
    csum = inet_checksum(pseudo + uhdr + payload) or 0xFFFF
    uhdr = struct.pack("!HHHH", sport, dport, ulen, csum)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident, 0, 64, socket.IPPROTO_UDP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return ip + uhdr + payload


def tcp_syn_ipv4_packet(src, sport, dst, dport, seq, ident=0, window=64240, mss=1460):
    """A complete IPv4 + TCP SYN (no IP options; one TCP option, MSS, as
    every real SYN carries). The TCP checksum covers the pseudo-header, so
    the receiving kernel treats it as any client's SYN."""
    opts = struct.pack("!BBH", 2, 4, mss)
    doff = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, doff << 4, 0x02, window, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", inet_checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0x4000, 64, socket.IPPROTO_TCP,
                     0, src, dst)
    ip = ip[:10] + struct.pack("!H", inet_checksum(ip)) + ip[12:]
    return ip + tcp
