#!/usr/bin/env python3
"""Connects to HOST PORT and prints what the kernel really gave the socket:
"transport: unix" (the shim's bridge), "transport: tcp" (kernel TCP), or
"transport: refused" (ECONNREFUSED; any other failure, a timeout included,
prints "transport: failed: ERROR"). Used by t_redirect_rules.sh."""
import os, socket, sys

host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect((host, port))
except ConnectionRefusedError:
    print("transport: refused")
    sys.exit(0)
except OSError as e:
    print(f"transport: failed: {e!r}")
    sys.exit(0)
ino = os.readlink(f"/proc/self/fd/{s.fileno()}").strip("socket:[]").encode()
def listed(path):
    # bytes: the shim's abstract names are binary
    try:
        with open(path, "rb") as f:
            return any(ino in line.split() for line in f)
    except OSError:
        return False
kind = "unix" if listed("/proc/net/unix") else \
       "tcp" if listed("/proc/net/tcp") or listed("/proc/net/tcp6") else "other"
print(f"transport: {kind}")
