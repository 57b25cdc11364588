#!/usr/bin/env python3
"""Checks chatload logs against what chatd promises (see README.md).

    chatcheck.py broadcast --count C LOG...
    chatcheck.py cap --count C --max MAX LOG...        (logs in launch order)
    chatcheck.py shutdown LOG...
    chatcheck.py slow --count C --slow NICK --bound MS --receipt-bound MS LOG...
    chatcheck.py gen-bad DIR                          (writes the bad-input files)
    chatcheck.py badinput --dir DIR LOG...            (watcher logs, then bad ones)

Log format (written by chatload.c): "> T text" sent, "< T line" received,
"# ..." lifecycle; T in CLOCK_MONOTONIC microseconds.  Exit status 0 when
every check holds; otherwise each failure is printed and the status is 1.
"""
import argparse
import os
import re
import sys

CHAT_RE = re.compile(rb'^([^* :][^ :]*): (.*)$', re.S)
SEQ_RE = re.compile(rb'^(\S+) seq=(\d+) t=(\d+)')
RECEIPT_RE = re.compile(rb'^\* delivered (\d+)/(\d+) #(\d+)$')
WELCOME_RE = re.compile(rb'^\* welcome (\S+) \((\d+) online; arrival #(\d+), admitted #(\d+)\)$')
WAITING_RE = re.compile(rb'^\* waiting: (\d+) ahead of you')
ONLINE_RE = re.compile(rb'\((\d+) online')
GOODBYE = b'* server shutting down'

errors = []


def err(msg):
    errors.append(msg)


class Log:
    def __init__(self, path):
        self.path = path
        self.nick = None
        self.sent = []          # (t_us, text)
        self.rx = []            # (t_us, line)
        self.meta = []          # text after "# "
        self.exit = None
        with open(path, 'rb') as f:
            data = f.read()
        for raw in data.split(b'\n'):
            if raw.startswith(b'< ') or raw.startswith(b'> '):
                parts = raw.split(b' ', 2)
                t = int(parts[1])
                text = parts[2] if len(parts) > 2 else b''
                (self.rx if raw[0:1] == b'<' else self.sent).append((t, text))
            elif raw.startswith(b'# '):
                m = raw[2:].decode('utf-8', 'replace')
                self.meta.append(m)
                if m.startswith('pid ') and ' nick ' in m:
                    self.nick = m.split(' nick ', 1)[1]
                if m.startswith('exit '):
                    self.exit = int(m.split()[1])
        self.name = self.nick or os.path.basename(path)

    def chat(self):
        """(t, sender, body) for every chat line received."""
        out = []
        for t, line in self.rx:
            m = CHAT_RE.match(line)
            if m:
                out.append((t, m.group(1).decode('utf-8', 'replace'), m.group(2)))
        return out

    def receipts(self):
        out = []
        for t, line in self.rx:
            m = RECEIPT_RE.match(line)
            if m:
                out.append((t, int(m.group(1)), int(m.group(2)), int(m.group(3))))
        return out

    def notices(self):
        return [line for _, line in self.rx if line.startswith(b'* ')]

    def has_meta(self, prefix):
        return any(m.startswith(prefix) for m in self.meta)


def check_exit(log, want=0):
    if log.exit != want:
        err(f'{log.name}: exit {log.exit}, wanted {want} '
            f'(last meta: {log.meta[-2:] if log.meta else None})')


def seqs_by_sender(log):
    """sender -> [seq, ...] in arrival order, checking own-echo and format."""
    by = {}
    for t, sender, body in log.chat():
        if sender == log.nick:
            err(f'{log.name}: received its own message: {body[:60]!r}')
            continue
        m = SEQ_RE.match(body)
        if not m:
            err(f'{log.name}: unexpected chat line from {sender}: {body[:60]!r}')
            continue
        if m.group(1).decode() != sender:
            err(f'{log.name}: line from {sender} claims to be {m.group(1)!r}')
        by.setdefault(sender, []).append(int(m.group(2)))
    return by


def check_contiguous(log, sender, seqs):
    """Exactly once and in the sender's order: each seq is the previous + 1."""
    for a, b in zip(seqs, seqs[1:]):
        if b != a + 1:
            err(f'{log.name}: from {sender}: seq {b} after {a} '
                f'({"duplicate" if b <= a else "gap"})')
            return False
    return True


def check_receipts(log, count, n_eq_m=True, m_exact=None, slack=0):
    rs = log.receipts()
    nums = [k for _, _, _, k in rs]
    if nums != list(range(1, count + 1)):
        err(f'{log.name}: receipts for {nums[:10]}{"..." if len(nums) > 10 else ""} '
            f'({len(nums)}), wanted #1..#{count}')
    for _, n, m, k in rs:
        if n > m:
            err(f'{log.name}: receipt #{k}: {n}/{m}, more acks than recipients')
        elif n_eq_m and not (m - slack <= n <= m):
            err(f'{log.name}: receipt #{k}: {n}/{m}, wanted {m - slack}..{m}')
        if m_exact is not None and m != m_exact:
            err(f'{log.name}: receipt #{k}: M={m}, wanted {m_exact}')
    return rs


def mode_broadcast(a):
    logs = [Log(p) for p in a.logs]
    nicks = {l.nick for l in logs}
    for log in logs:
        check_exit(log)
        by = seqs_by_sender(log)
        for s in by:
            if s not in nicks:
                err(f'{log.name}: messages from unknown sender {s}')
        for s in nicks - {log.nick}:
            seqs = by.get(s, [])
            if seqs != list(range(1, a.count + 1)):
                check_contiguous(log, s, seqs)
                err(f'{log.name}: from {s}: {len(seqs)} messages '
                    f'(first {seqs[:3]}, last {seqs[-3:]}), wanted seq 1..{a.count}')
        check_receipts(log, a.count, n_eq_m=True, m_exact=len(logs) - 1)
    total = sum(len(l.chat()) for l in logs)
    print(f'broadcast: {len(logs)} clients, {total} chat lines received, '
          f'{sum(len(l.receipts()) for l in logs)} receipts')


def mode_cap(a):
    logs = [Log(p) for p in a.logs]
    arrivals, admits, waited = [], [], 0
    for i, log in enumerate(logs):
        check_exit(log)
        if not log.has_meta('connected'):
            err(f'{log.name}: never connected')
        notices = log.notices()
        w = [m for m in map(WELCOME_RE.match, notices) if m]
        if len(w) != 1:
            err(f'{log.name}: {len(w)} welcome lines')
            continue
        arrivals.append(int(w[0].group(3)))
        admits.append(int(w[0].group(4)))
        waits = [int(m.group(1)) for m in map(WAITING_RE.match, notices) if m]
        if i < a.max:
            if waits:
                err(f'{log.name}: launched #{i + 1} of cap {a.max} but waited')
        else:
            waited += 1
            if not waits or waits[0] != i - a.max:
                err(f'{log.name}: launched #{i + 1}: first wait position {waits[:1]}, '
                    f'wanted {i - a.max}')
            if any(y > x for x, y in zip(waits, waits[1:])):
                err(f'{log.name}: wait position went up: {waits}')
        for line in notices:
            for m in ONLINE_RE.finditer(line):
                if int(m.group(1)) > a.max:
                    err(f'{log.name}: {line!r} exceeds the cap {a.max}')
            if line.startswith(b'* not sent'):
                err(f'{log.name}: sent while waiting: {line!r}')
        for s, seqs in seqs_by_sender(log).items():
            check_contiguous(log, s, seqs)
        check_receipts(log, a.count, n_eq_m=False)
    if arrivals != sorted(arrivals) or len(set(arrivals)) != len(arrivals):
        err(f'arrival order is not launch order: {arrivals}')
    if admits != sorted(admits) or len(set(admits)) != len(admits):
        err(f'admitted out of arrival order: {admits}')
    print(f'cap: {len(logs)} clients served, {waited} waited, admission order {admits}')


def mode_shutdown(a):
    logs = [Log(p) for p in a.logs]
    n = len(logs)
    # lengths[S][R]: how many of S's messages R received (a prefix 1..L).
    lengths = {l.nick: {} for l in logs}
    for log in logs:
        check_exit(log)
        lines = [line for _, line in log.rx]
        if GOODBYE not in lines:
            err(f'{log.name}: no goodbye line')
        elif lines[-1] != GOODBYE:
            err(f'{log.name}: lines after the goodbye: {lines[lines.index(GOODBYE) + 1:][:3]}')
        if not log.has_meta('eof'):
            err(f'{log.name}: no EOF')
        by = seqs_by_sender(log)
        for s in lengths:
            if s == log.nick:
                continue
            seqs = by.get(s, [])
            if seqs != list(range(1, len(seqs) + 1)):
                check_contiguous(log, s, seqs)
                err(f'{log.name}: from {s}: not the prefix 1..{len(seqs)}')
            lengths[s][log.nick] = len(seqs)
    total = 0
    for log in logs:
        ls = set(lengths[log.nick].values())
        if len(ls) != 1:
            err(f'{log.nick}: receivers got different numbers of its messages: '
                f'{sorted(lengths[log.nick].items())[:6]}...')
            continue
        got = ls.pop()
        total += got
        if got > len(log.sent):
            err(f'{log.nick}: receivers got {got} messages but it sent {len(log.sent)}')
        # Every message the server accepted has its receipt, all delivered.
        check_receipts(log, got, n_eq_m=True, m_exact=n - 1)
    if total == 0:
        err('no message was accepted before the signal: the load never ran')
    print(f'shutdown: {n} clients saw the goodbye and EOF; {total} accepted messages '
          f'each at all {n - 1} receivers; sent {sum(len(l.sent) for l in logs)}')


def mode_slow(a):
    logs = [Log(p) for p in a.logs]
    slow = [l for l in logs if l.nick == a.slow]
    normal = [l for l in logs if l.nick != a.slow]
    if len(slow) != 1:
        err(f'slow client {a.slow} not among the logs')
    worst, worst_receipt = 0, 0
    nicks = {l.nick for l in normal}
    for log in normal:
        check_exit(log)
        by = seqs_by_sender(log)
        for s in nicks - {log.nick}:
            if by.get(s, []) != list(range(1, a.count + 1)):
                err(f'{log.name}: from {s}: {len(by.get(s, []))} messages, wanted 1..{a.count}')
        for t, sender, body in log.chat():
            m = SEQ_RE.match(body)
            if m:
                worst = max(worst, (t - int(m.group(3))) // 1000)
        if not any(line.startswith(f'* dropped {a.slow}: too slow'.encode())
                   for line in log.notices()):
            err(f'{log.name}: never told that {a.slow} was dropped')
        rs = check_receipts(log, a.count, n_eq_m=True, slack=1)
        sent_at = {i + 1: t for i, (t, _) in enumerate(log.sent)}
        for t, _, _, k in rs:
            if k in sent_at:
                worst_receipt = max(worst_receipt, (t - sent_at[k]) // 1000)
    if worst > a.bound:
        err(f'a message took {worst} ms to reach a reader (bound {a.bound} ms)')
    if worst_receipt > a.receipt_bound:
        err(f'a receipt took {worst_receipt} ms (bound {a.receipt_bound} ms)')
    for log in slow:
        check_exit(log)
        if not log.has_meta('resumed'):
            err(f'{log.name}: never resumed reading')
        if not any(line.startswith(b'* you were dropped: too slow') for line in log.notices()):
            err(f'{log.name}: no drop reason received')
        if not log.has_meta('eof'):
            err(f'{log.name}: no EOF after the drop')
    print(f'slow: worst delivery latency {worst} ms (bound {a.bound}), '
          f'worst receipt {worst_receipt} ms (bound {a.receipt_bound})')


# ---- bad input ---------------------------------------------------------------

JUNK = bytes(range(0x80, 0x100)) + bytes(range(0, 10))   # no newline in it


def bad_inputs():
    """name -> (bytes sent raw, lines the watchers must receive from it)."""
    control = b'\x00\x01\x02binary\x1b[31mred\x7f\xff\xfe end'
    bad = (b'/nick w1\n'                        # taken
           b'/nick guest7\n'                    # reserved
           b'/nick bad name!\n'                 # invalid
           b'/frobnicate now\n'                 # unknown command
           + b'A' * 10000 + b'\n'               # too long
           + b'after the long line\n'
           + control + b'\r\n'
           + b'//slash line\n'
           + b'\n\r\n'                          # empty lines: ignored
           + b'B' * 4096 + b'\n'                # exactly the maximum
           + b'C' * 4097 + b'\n'                # one over
           + JUNK * 800                         # 107 KB of binary, no newline
           + b'\nstill here\n'
           + b'/quit\n')
    bad_want = [b'bad: after the long line',
                b'bad: ???binary?[31mred?\xff\xfe end',
                b'bad: /slash line',
                b'bad: ' + b'B' * 4096,
                b'bad: still here']
    return {
        'bad': (bad, bad_want),
        'vanish': (b'vanish says hi\npartial line without newline', [b'vanish: vanish says hi']),
        'rst': (b'rst partial line', []),
        'empty': (b'', []),
    }


def mode_gen_bad(a):
    for name, (data, _) in bad_inputs().items():
        with open(os.path.join(a.dir, name + '.bin'), 'wb') as f:
            f.write(data)


def mode_badinput(a):
    logs = {Log(p).nick: Log(p) for p in a.logs}
    want = []
    for name, (_, lines) in bad_inputs().items():
        want += lines
    for w in ('w1', 'w2'):
        log = logs.get(w)
        if log is None:
            err(f'no log for watcher {w}')
            continue
        check_exit(log)
        got = [f'{s}: '.encode() + b for _, s, b in log.chat()]
        if len(got) != len(want) + 1 or got[:-1] != want or not got[-1].startswith(b'ok: ok seq=1 '):
            err(f'{w}: chat lines differ:\n  got  {[g[:50] for g in got]}\n  want {[x[:50] for x in want]} + ok')
        notices = log.notices()
        for who in ('bad', 'vanish', 'rst', 'empty'):
            if f'* {who} left'.encode() not in [n.split(b' (')[0] for n in notices]:
                err(f'{w}: not told that {who} left')
        for n in notices:
            if b'too long' in n or b'error' in n:
                err(f'{w}: got someone else\'s error: {n!r}')
    bad = logs.get('bad')
    if bad:
        check_exit(bad)
        notes = bad.notices()
        expect = {b'* error: line too long (max 4096 bytes), discarded': 3,
                  b'* error: nick w1 is taken': 1,
                  b'* error: nick guest7 is reserved': 1,
                  b'* error: unknown command /frobnicate (try /help)': 1,
                  b'* bye': 1}
        for line, times in expect.items():
            if notes.count(line) != times:
                err(f'bad: {notes.count(line)} x {line!r}, wanted {times}')
        if not any(n.startswith(b'* error: nick must be') for n in notes):
            err('bad: invalid nick not refused')
        # Receipts go only to senders still in the chat, and bad's /quit
        # follows its lines at once: any number from 0 to 5 is right.
        if len(bad.receipts()) > 5:
            err(f'bad: {len(bad.receipts())} receipts for 5 lines')
    for name in ('vanish', 'rst', 'empty', 'ok'):
        if name in logs:
            check_exit(logs[name])
        else:
            err(f'no log for {name}')
    print(f'badinput: watchers got exactly {len(want) + 1} expected lines')


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest='mode', required=True)
    b = sub.add_parser('broadcast')
    b.add_argument('--count', type=int, required=True)
    b.add_argument('logs', nargs='+')
    c = sub.add_parser('cap')
    c.add_argument('--count', type=int, required=True)
    c.add_argument('--max', type=int, required=True)
    c.add_argument('logs', nargs='+')
    s = sub.add_parser('shutdown')
    s.add_argument('logs', nargs='+')
    w = sub.add_parser('slow')
    w.add_argument('--count', type=int, required=True)
    w.add_argument('--slow', required=True)
    w.add_argument('--bound', type=int, required=True)
    w.add_argument('--receipt-bound', type=int, required=True)
    w.add_argument('logs', nargs='+')
    g = sub.add_parser('gen-bad')
    g.add_argument('dir')
    d = sub.add_parser('badinput')
    d.add_argument('logs', nargs='+')
    a = p.parse_args()
    {'broadcast': mode_broadcast, 'cap': mode_cap, 'shutdown': mode_shutdown,
     'slow': mode_slow, 'gen-bad': mode_gen_bad, 'badinput': mode_badinput}[a.mode](a)
    for e in errors[:40]:
        print('FAIL:', e, file=sys.stderr)
    if len(errors) > 40:
        print(f'FAIL: ... and {len(errors) - 40} more', file=sys.stderr)
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
