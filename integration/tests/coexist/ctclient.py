# One TCP connect, timed, and how it ended. Usage:
#   ctclient.py HOST PORT blocking|nonblocking
# blocking: connect(); nonblocking: connect() on an O_NONBLOCK socket
# (EINPROGRESS), poll() for POLLOUT (60 s at most), then SO_ERROR. Prints
# one line: "MODE ERRNO MS" (ERRNO: an errno name, or "ok"), and for
# nonblocking the poll events after it: "MODE ERRNO MS revents=OUT,ERR,HUP".
import errno, select, socket, sys, time

host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
t0 = time.monotonic()
extra = ""
if mode == "blocking":
    try:
        s.connect((host, port))
        err = 0
    except OSError as e:
        err = e.errno
else:
    s.setblocking(False)
    err = s.connect_ex((host, port))
    if err == errno.EINPROGRESS:
        p = select.poll()
        p.register(s, select.POLLOUT)
        ev = p.poll(60000)
        bits = ev[0][1] if ev else 0
        names = [n for n, b in (("OUT", select.POLLOUT), ("ERR", select.POLLERR),
                                ("HUP", select.POLLHUP)) if bits & b]
        extra = " revents=" + (",".join(names) or "none")
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
ms = int((time.monotonic() - t0) * 1000)
print("%s %s %d%s" % (mode, errno.errorcode.get(err, str(err)) if err else "ok", ms, extra))
