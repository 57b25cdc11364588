#!/bin/sh
# tests/prog_transparency.c over kernel TCP, then under the shim: what a
# kernel TCP socket gives a program keeps working. Asserted, each a named
# case of the program: stdio on both ends (fdopen, fprintf+fflush, fgets,
# a line longer than BUFSIZ); sendfile() from an unlinked file and splice()
# through pipes both ways, bytes compared; dup/dup2/dup3 copies carrying
# bytes, the original's close() keeping the connection, the fd inherited
# across fork() and across exec (the image writes and reads a reply);
# epoll level-triggered, edge-triggered, EPOLLONESHOT and EPOLLEXCLUSIVE
# (one connect, one accept); a blocked read() interrupted by a signal
# (EINTR without SA_RESTART, the bytes after it with); MSG_PEEK and
# MSG_WAITALL; FIONREAD; a read() in a signal handler; 1,000 threads each
# a request and response over its own connection; and every readiness
# call (poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
# epoll_pwait2, __poll_chk, io_uring POLL_ADD) woken by bytes that arrive
# while it already waits. Under the shim no connection is kernel TCP
# (assert_transport).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_transparency
run_both transparency "$BIN/prog_transparency"
