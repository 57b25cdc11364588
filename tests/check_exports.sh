#!/bin/sh
# The shim must export exactly the interposed symbols (-fvisibility=hidden
# everywhere else): anything more could clash with the host program. The
# socket calls, plus close_range/closefrom (so programs closing every fd
# spare the engine's), exec*/_exit (the engine hands over to a keeper),
# posix_spawn/posix_spawnp (the new image gets the slabs as an exec'd one) and
# sigaction/signal (a keeper and RUDP_STATS when a signal ends the program:
# signals.c; with bsd_signal/ssignal/sysv_signal/__sysv_signal/sigset/
# siginterrupt the program's handlers go through a trampoline that defers a
# signal past the shim's short sections, and pthread_sigmask/sigprocmask/
# sighold/sigrelse/sigblock/sigsetmask say the thread's mask changed:
# base/crit.c) and
# dup2/dup3 (sock.c: one over a listener's number closes it, as close() does;
# dup too: a copy of a bridge's fd is not followed by epoll.c's notes),
# syscall (the numbers of those calls, for programs calling through it:
# syscalls.c), vfork/__vfork and clone/__clone (clonevm.c: a child sharing our memory seen coming), epoll_ctl (a connect falling back to kernel TCP keeps its registrations:
# epollreg.c), and the send/receive calls that carry an address (msgaddr.c,
# mmsg.c: answered as TCP does on a bridge), and write/send/writev (appsend.c:
# a small write sent by the writing thread while its engine sleeps), and
# shim_front_register (interpose/front.c: rudp-supervise says its front end),
# prctl (syscalls.c: a program's seccomp filter turns the app-thread paths off),
# fcntl/fcntl64 (sockopt.c: an F_SETFL makes the app-thread read ask O_NONBLOCK again),
# fdopen/_IO_fdopen (stdio.c: a number stdio may close inside libc is proved at every
# lookup), __close/__dup2/mq_close (glibc's other names of close/dup2, and a close of any
# number: sock.c), unshare
# (clonevm.c: a thread's own fd table makes every lookup ask the kernel),
# poll/ppoll and their fortified forms, select/pselect and
# epoll_wait/epoll_pwait/epoll_pwait2 (poll.c, select.c, epoll.c: the app
# thread's receive).
set -eu
so=${1:-build/librudp_shim.so}
want="_Exit _IO_fdopen __clone __close __dup2 __poll_chk __ppoll_chk __read_chk __recv_chk __recvfrom_chk __sysv_signal __vfork _exit accept accept4 bind bsd_signal clone close close_range closefrom connect dup dup2 dup3 epoll_ctl epoll_pwait epoll_pwait2 epoll_wait execl execle execlp execv execve execvp execvpe fcntl fcntl64 fdopen fexecve getpeername getsockname getsockopt ioctl listen mq_close poll posix_spawn posix_spawnp ppoll prctl pselect pthread_sigmask read readv recv recvfrom recvmmsg recvmsg select send sendmmsg sendmsg sendto setsockopt shim_front_register shutdown sigaction sigblock sighold siginterrupt signal sigprocmask sigrelse sigset sigsetmask socket ssignal syscall sysv_signal unshare vfork write writev"
got=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$got" != "$want" ]; then
    echo "FAIL: $so exports:"; echo "  $got"; echo "expected:"; echo "  $want"
    exit 1
fi
echo "exports OK: $got"
