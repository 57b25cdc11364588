#!/bin/sh
# tests/prog_edges.c over kernel TCP, then under the shim: a blocking
# accept() that goes on waiting after a foreign connection to the
# listener's unix name was refused (non-blocking: EAGAIN); getsockname()
# after a failed connect and after connect(AF_UNSPEC) keeping the attempt's
# port, IPv4 and IPv6; sendmmsg()/recvmmsg() with addresses on a connected
# socket (ignored; reported as length 0), MSG_OOB included; an epoll
# registration of an fd above 2^20 carried over connect().
#
# fd numbers above 2^20 need fs.nr_open raised (the kernel's default is
# 2^20, and RLIMIT_NOFILE cannot pass it): as root it is raised for the run
# if lower, and set back at the end.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_edges
# fs.nr_open is raised where we may (root); prog_edges says "skip:" for
# the epollhigh check where RLIMIT_NOFILE still cannot pass 2^20 (no
# CAP_SYS_RESOURCE, as in some containers).
NEED=$(((1 << 20) + 1024))
OLD_NR_OPEN=$(cat /proc/sys/fs/nr_open)
if [ "$(id -u)" = 0 ] && [ "$OLD_NR_OPEN" -lt "$NEED" ]; then
    trap 'echo "$OLD_NR_OPEN" >/proc/sys/fs/nr_open; cleanup' EXIT INT TERM
    echo "$NEED" >/proc/sys/fs/nr_open 2>/dev/null || true
fi
run_both edges "$BIN/prog_edges"
