#!/usr/bin/env python3
"""An HTTP server (python's http.server) whose responses wait at a gate.

    gated_http.py BIND PORT DIR GATE

GET /NAME answers DIR/NAME with its Content-Length, writes all of it but the
last 64 KiB, then waits until the file GATE exists before it writes the
rest: the connection stays open, mid-response, for as long as a test needs
to look at it (ss, /proc), and the test decides when it ends -- no race
with a transfer that might finish first. A gate that does not open within
120 s ends the connection without the rest, so the client fails (curl:
"transfer closed with N bytes remaining") rather than the test passing.
Used by t_redirect_outside.sh. Prints "held NAME at N of M bytes" and
"released NAME" to stderr.
"""
import http.server
import os
import sys
import time

TAIL = 65536
GATE_LIMIT_S = 120

bind, port, root, gate = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        name = os.path.basename(self.path.split("?", 1)[0])
        try:
            with open(os.path.join(root, name), "rb") as f:
                body = f.read()
        except OSError:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        head = max(0, len(body) - TAIL)
        self.wfile.write(body[:head])
        self.wfile.flush()
        print(f"held {name} at {head} of {len(body)} bytes", file=sys.stderr, flush=True)
        deadline = time.monotonic() + GATE_LIMIT_S
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                print(f"gate {gate} not opened in {GATE_LIMIT_S} s: {name} cut short",
                      file=sys.stderr, flush=True)
                self.close_connection = True
                return
            time.sleep(0.02)
        self.wfile.write(body[head:])
        print(f"released {name}", file=sys.stderr, flush=True)


http.server.ThreadingHTTPServer((bind, port), Handler).serve_forever()
