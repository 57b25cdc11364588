#!/usr/bin/env python3
"""qlog_check.py FILE.sqlog...: checks traces written by RUDP_QLOG_DIR.

Our own schema check of what qvis needs (qlog 0.3, JSON-SEQ, RFC 7464):
every record starts with 0x1E, ends with a newline and parses as one JSON
object; the first is the header (qlog_version "0.3", qlog_format
"JSON-SEQ", trace.vantage_point.type client or server, common_fields with
a numeric reference_time and time_format "relative"); every event has a
numeric "time" that never decreases, a known "name" and the data fields
that event requires, typed. A trace cut by RUDP_QLOG_MAX must end with the
generic:warning that says so. Prints one line per file with its event
counts; exits 1 on the first problem, naming the file and record.

--expect NAME=MIN (repeatable): also require at least MIN events NAME.
--cut: require the file to be cut (and report its size).
"""
import json
import sys

NUM = (int, float)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_num(v):
    return isinstance(v, NUM) and not isinstance(v, bool)


class Bad(Exception):
    pass


def need(cond, what):
    if not cond:
        raise Bad(what)


def check_header(h):
    need(isinstance(h, dict), "header is not an object")
    need(h.get("qlog_version") == "0.3", "qlog_version is not \"0.3\"")
    need(h.get("qlog_format") == "JSON-SEQ", "qlog_format is not \"JSON-SEQ\"")
    tr = h.get("trace")
    need(isinstance(tr, dict), "header has no trace object")
    vp = tr.get("vantage_point")
    need(isinstance(vp, dict) and vp.get("type") in ("client", "server"),
         "trace.vantage_point.type is not client or server")
    cf = tr.get("common_fields")
    need(isinstance(cf, dict), "trace.common_fields missing")
    need(is_num(cf.get("reference_time")), "common_fields.reference_time is not a number")
    need(cf.get("time_format") == "relative", "common_fields.time_format is not \"relative\"")
    return vp["type"]


FRAME_FIELDS = {
    "padding": {},
    "ping": {},
    "ack": {"ack_delay": is_num},
    "stream": {"stream_id": is_uint, "offset": is_uint, "length": is_uint},
    "max_data": {"maximum": is_uint},
    "data_blocked": {"limit": is_uint},
    "reset_stream": {"stream_id": is_uint, "error_code": is_uint, "final_size": is_uint},
    "new_token": {"token": lambda v: isinstance(v, dict) and is_uint(v.get("length"))},
    # qlog's UnknownFrame: rudp's URGENT (0x0c) with its offset
    "unknown": {"raw_frame_type": is_uint},
}
PACKET_TYPES = {"initial", "retry", "1RTT", "stateless_reset"}


def check_frames(frames):
    need(isinstance(frames, list), "frames is not a list")
    for f in frames:
        need(isinstance(f, dict), "a frame is not an object")
        ft = f.get("frame_type")
        need(ft in FRAME_FIELDS, "unknown frame_type %r" % ft)
        for k, ok in FRAME_FIELDS[ft].items():
            need(ok(f.get(k)), "%s frame: %s missing or mistyped" % (ft, k))
        if ft == "ack" and "acked_ranges" in f:
            rs = f["acked_ranges"]
            need(isinstance(rs, list) and rs, "ack frame: acked_ranges empty or not a list")
            for r in rs:
                need(isinstance(r, list) and len(r) == 2 and all(is_uint(x) for x in r)
                     and r[0] <= r[1], "ack frame: bad range %r" % (r,))


def check_packet(d, raw_needed):
    hd = d.get("header")
    need(isinstance(hd, dict), "no header")
    need(hd.get("packet_type") in PACKET_TYPES, "header.packet_type %r" % hd.get("packet_type"))
    need(is_uint(hd.get("packet_number")), "header.packet_number missing or mistyped")
    if raw_needed:
        need(isinstance(d.get("raw"), dict) and is_uint(d["raw"].get("length")),
             "raw.length missing or mistyped")
    if "frames" in d or raw_needed:
        check_frames(d.get("frames"))


METRICS = {"min_rtt": is_num, "smoothed_rtt": is_num, "latest_rtt": is_num,
           "rtt_variance": is_num, "pto_count": is_uint, "congestion_window": is_uint,
           "bytes_in_flight": is_uint, "ssthresh": is_uint, "pacing_rate": is_uint,
           "rudp_delivery_rate": is_uint}


def check_metrics(d):
    need(d, "metrics_updated with no value")
    for k, v in d.items():
        need(k in METRICS, "metrics_updated: unknown field %s" % k)
        need(METRICS[k](v), "metrics_updated: %s mistyped" % k)
        need(v >= 0, "metrics_updated: %s negative" % k)


def check_state(d):
    need(isinstance(d.get("new"), str) and d["new"], "new state missing")
    need("old" not in d or isinstance(d["old"], str), "old state mistyped")


def check_mtu(d):
    # the QUIC events draft's connectivity:mtu_updated: the new size, the
    # old one, and whether the search is over
    need(is_uint(d.get("new")) and d["new"] >= 1200, "mtu_updated: new size missing or < 1200")
    need("old" not in d or is_uint(d["old"]), "mtu_updated: old size mistyped")
    need(isinstance(d.get("done", False), bool), "mtu_updated: done mistyped")


def check_warning(d):
    need(isinstance(d.get("message"), str), "generic:warning without a message")


EVENTS = {
    "transport:packet_sent": lambda d: check_packet(d, True),
    "transport:packet_received": lambda d: check_packet(d, True),
    "recovery:packet_lost": lambda d: check_packet(d, False),
    "recovery:metrics_updated": check_metrics,
    "recovery:congestion_state_updated": check_state,
    "connectivity:connection_state_updated": check_state,
    "connectivity:mtu_updated": check_mtu,
    "generic:warning": check_warning,
}


def no_constant(name):
    """NaN and Infinity are not JSON (RFC 8259 §6), though Python reads them."""
    raise ValueError("%s is not a JSON number" % name)


def check_file(path):
    data = open(path, "rb").read()
    need(data, "empty file")
    need(data[0] == 0x1E, "does not start with a record separator (0x1E)")
    parts = data.split(b"\x1e")[1:]
    counts = {}
    last_time = None
    vantage = None
    cut = False
    for i, part in enumerate(parts):
        where = "record %d" % (i + 1)
        try:
            need(part.endswith(b"\n"), "not ended by a newline")
            need(not cut, "events after the cut record")
            try:
                rec = json.loads(part.decode("utf-8"), parse_constant=no_constant)
            except (ValueError, UnicodeDecodeError) as e:
                raise Bad("not valid JSON: %s" % e)
            if i == 0:
                vantage = check_header(rec)
                continue
            need(isinstance(rec, dict), "not an object")
            t = rec.get("time")
            need(is_num(t) and t >= 0, "time missing, not a number, or negative")
            need(last_time is None or t >= last_time, "time went back (%s < %s)" % (t, last_time))
            last_time = t
            name = rec.get("name")
            need(name in EVENTS, "unknown event name %r" % name)
            d = rec.get("data")
            need(isinstance(d, dict), "data is not an object")
            EVENTS[name](d)
            if name == "generic:warning" and d.get("code") == "rudp_trace_cut":
                cut = True
            counts[name] = counts.get(name, 0) + 1
        except Bad as e:
            raise Bad("%s: %s" % (where, e))
    need(len(parts) > 1, "no event after the header")
    return vantage, counts, cut, len(data)


def main(argv):
    expect, want_cut, files = {}, False, []
    it = iter(argv)
    for a in it:
        if a == "--expect":
            k, v = next(it).split("=")
            expect[k] = int(v)
        elif a == "--cut":
            want_cut = True
        else:
            files.append(a)
    if not files:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for f in files:
        try:
            vantage, counts, cut, size = check_file(f)
            for k, n in expect.items():
                need(counts.get(k, 0) >= n, "%d %s events, expected at least %d"
                     % (counts.get(k, 0), k, n))
            need(cut or not want_cut, "not cut, though --cut was given")
        except (Bad, OSError) as e:
            print("qlog_check: %s: %s" % (f, e), file=sys.stderr)
            return 1
        summary = ", ".join("%s %d" % (k.split(":")[1], v) for k, v in sorted(counts.items()))
        print("qlog_check: %s: ok (%s, %d bytes%s): %s"
              % (f, vantage, size, ", cut" if cut else "", summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
