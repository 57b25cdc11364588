#!/usr/bin/env python3
"""B17's server: python3's http.server (ThreadingHTTPServer, the files of
DIR) on IP:PORT, its listener set to TCP congestion control CC
(TCP_CONGESTION, inherited by accepted sockets). Kernel TCP in a network
namespace other than the host's may only set the host's allowed
controllers by sysctl; a socket option by root may set any, and the shim
takes the same option as its rudp controller.

With a fifth argument "tfo" the listener also sets TCP_FASTOPEN (a queue
of 16): kernel TCP takes data in SYNs (with net.ipv4.tcp_fastopen's server
bit, which B17's namespaces set), the shim gives tokens and takes 0-RTT
data (issue 32), as a server that opts in to TCP Fast Open would.

usage: fetchsrv.py IP PORT DIR CC [tfo]
"""
import functools
import http.server
import socket
import sys


TFO = False


class Server(http.server.ThreadingHTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, CC.encode())
        if TFO:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
        super().server_bind()


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


if __name__ == "__main__":
    ip, port, root, CC = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    TFO = sys.argv[5:6] == ["tfo"]
    handler = functools.partial(Quiet, directory=root)
    with Server((ip, port), handler) as srv:
        srv.serve_forever()
