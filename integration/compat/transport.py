#!/usr/bin/env python3
"""Connects to HOST PORT and prints what the kernel really gave the socket:
"transport: unix" (the shim's bridge), "transport: tcp" (kernel TCP), or
"transport: refused". Used by t_redirect_rules.sh."""
import os, socket, sys

host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(family, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect((host, port))
except OSError:
    print("transport: refused")
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
