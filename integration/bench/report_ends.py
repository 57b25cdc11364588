"""B23 (b23_ends.sh): each end's CPU per GB from a system-wide perf
sample of one transfer, the kernel's work for it included wherever it ran.
No third-party modules.

  report.py ends SCRIPT SND_PID RCV_PID A2B_TID B2A_TID HZ BYTES
      SCRIPT: perf script -F comm,pid,tid,time,ip,sym of perf record -a -g
      -F HZ over the transfer; prints "snd_proc snd rcv_proc rcv link
      unattributed" in CPU seconds per GB received (NA when BYTES is not a
      positive number):

      snd_proc, rcv_proc  every sample of the sender's, the receiver's
                          process (all its threads, user and kernel)
      snd, rcv            the process's, plus the samples of the emulator
                          thread delivering into that end (b->a, a->b) that
                          are inside the kernel's receive path (what the
                          packet set off: IP, TCP or UDP, the wake-up of the
                          reader, and whatever the protocol sent in answer),
                          plus samples of the idle task or ksoftirqd inside
                          that end's TCP timers (pacing, small queues,
                          retransmission; delayed ACK)
      link                the emulator threads' other samples: the link's
                          own work (its reads, queues, timers and writes)
      unattributed        samples elsewhere in the network stack that name
                          neither end (softirq work on other processes,
                          packets taken in the idle task): counted for
                          neither, for either transport
      All NA when either process has no sample or no emulator sample is
      inside the receive path (kernel symbols not resolved: the kernel's
      share could not be told, which would favour kernel TCP's reference).
"""
import re

HEAD = re.compile(r"^(.*?)\s+(\d+)/(\d+)\s+([\d.]+):")

# Frames of the kernel's receive path: a sample of an emulator thread with
# one of these under it is work the delivered packet set off at that end.
RECEIVE = frozenset(("__netif_receive_skb_core", "__netif_receive_skb",
                     "__netif_receive_skb_one_core", "netif_receive_skb",
                     "process_backlog", "ip_rcv", "ip6_rcv", "ip_local_deliver"))
# TCP's own timers, charged to their end where they fire in the idle task
# or ksoftirqd (anywhere else they are another process's context).
TCP_SENDER = frozenset(("tcp_pace_kick", "tcp_tasklet_func", "tcp_tsq_handler",
                        "tcp_tsq_write", "tcp_write_timer", "tcp_write_timer_handler",
                        "tcp_retransmit_timer"))
TCP_RECEIVER = frozenset(("tcp_delack_timer", "tcp_delack_timer_handler"))
NET = ("tcp_", "udp_", "ip_", "net_rx_action", "__netif", "netif_")


def samples(path):
    """(comm, pid, tid, frames) of each sample in a perf script file."""
    cur, frames = None, []
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                if cur:
                    yield cur[0], cur[1], cur[2], frames
                cur, frames = None, []
                continue
            if cur is None:
                m = HEAD.match(line)
                if m:
                    cur, frames = (m.group(1).strip(), int(m.group(2)), int(m.group(3))), []
                continue
            w = line.split()
            if len(w) >= 2:
                frames.append(w[1])
    if cur:
        yield cur[0], cur[1], cur[2], frames


def attribute(path, snd, rcv, a2b, b2a):
    """Sample counts: {snd_proc, snd_kern, rcv_proc, rcv_kern, link, unattr,
    received (emulator samples inside the receive path)}."""
    n = dict.fromkeys(("snd_proc", "snd_kern", "rcv_proc", "rcv_kern", "link", "unattr",
                       "received"), 0)
    for comm, pid, tid, frames in samples(path):
        if pid == snd:
            n["snd_proc"] += 1
            continue
        if pid == rcv:
            n["rcv_proc"] += 1
            continue
        fs = set(frames)
        if tid in (a2b, b2a):
            if fs & RECEIVE:
                n["received"] += 1
                n["rcv_kern" if tid == a2b else "snd_kern"] += 1
            else:
                n["link"] += 1
        elif (pid == 0 or comm.startswith("ksoftirqd")) and fs & TCP_SENDER:
            n["snd_kern"] += 1
        elif (pid == 0 or comm.startswith("ksoftirqd")) and fs & TCP_RECEIVER:
            n["rcv_kern"] += 1
        elif any(x.startswith(NET) for x in frames):
            n["unattr"] += 1
    return n


def cmd_ends(path, snd, rcv, a2b, b2a, hz, nbytes):
    try:
        gb = float(nbytes) / 1e9
        hz = float(hz)
        n = attribute(path, int(snd), int(rcv), int(a2b), int(b2a))
    except (ValueError, OSError):
        gb, n = 0, None
    if not n or gb <= 0 or hz <= 0 or not n["snd_proc"] or not n["rcv_proc"] or not n["received"]:
        print("NA NA NA NA NA NA")
        return

    def per(k):
        return n[k] / hz / gb

    print(" ".join("%.3f" % v for v in (
        per("snd_proc"), per("snd_proc") + per("snd_kern"),
        per("rcv_proc"), per("rcv_proc") + per("rcv_kern"), per("link"), per("unattr"))))
