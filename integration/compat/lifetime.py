#!/usr/bin/env python3
"""Process-lifetime cases the shim must survive, run by t_lifetime_*.sh.

  inetd PORT          accept one connection, then exec /bin/cat with it as
                      stdin/stdout (the engine hands over to a keeper)
  daemon PORT FILE    listen, fork, the parent exits at once; the child echoes
                      one connection; FILE gets "ready" once the parent is gone
  writer PORT FILE    connect, send FILE, then _exit() without close()
  closeall PORT FILE  connect and echo FILE, closefrom(3) via os.closerange,
                      then connect again and echo again
  echo-client PORT FILE   send FILE, read the echo, compare; exit 1 on mismatch
"""
import os, socket, sys, threading

def listener(port):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("127.0.0.1", port))
    l.listen(4)
    return l

def echo_client(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    def w():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=w)
    t.start()
    got = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        got += d
    t.join()
    s.close()
    return bytes(got) == data, len(got)

def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "inetd":
        l = listener(port)
        print("listening", flush=True)
        c, _ = l.accept()
        l.close()
        os.dup2(c.fileno(), 0)
        os.dup2(c.fileno(), 1)
        c.close()
        os.execv("/bin/cat", ["cat"])
    elif mode == "daemon":
        l = listener(port)
        if os.fork() > 0:
            os._exit(0)          # as a daemonizing parent does
        open(sys.argv[3], "w").write("ready\n")
        c, _ = l.accept()
        while True:
            d = c.recv(65536)
            if not d:
                break
            c.sendall(d)
        c.close()
        os._exit(0)
    elif mode == "writer":
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(open(sys.argv[3], "rb").read())
        os._exit(0)              # no close(), no destructors
    elif mode == "closeall":
        data = open(sys.argv[3], "rb").read()
        ok1, n1 = echo_client(port, data)
        os.closerange(3, 65536)  # what daemons and sshd do (close_range/closefrom)
        ok2, n2 = echo_client(port, data)
        print(f"before closing every fd: {'ok' if ok1 else 'MISMATCH'} {n1}; "
              f"after: {'ok' if ok2 else 'MISMATCH'} {n2}", flush=True)
        sys.exit(0 if ok1 and ok2 else 1)
    elif mode == "echo-client":
        ok, n = echo_client(port, open(sys.argv[3], "rb").read())
        print(f"echo {'ok' if ok else 'MISMATCH'} ({n} bytes)", flush=True)
        sys.exit(0 if ok else 1)

main()
