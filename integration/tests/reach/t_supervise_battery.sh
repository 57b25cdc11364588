#!/bin/sh
# The preload's test programs under the supervisor (issue 35: what a
# program can tell differs from the preload only where the kernel makes it
# so). Each program of tests/ below, linked statically (build/progs/static/,
# the Makefile's SUP_BATTERY), runs over kernel TCP first, then under
# rudp-supervise: both must pass, print the same "ok:" lines (numbers aside:
# ports, pids, times) and, supervised, carry every connection it reports
# over a bridge (no "transport: tcp"). The same programs run under the
# preload in their own tests (t_prog_*, run_both).
# What they check, in short: accept order and a full backlog, the accept
# queue, every readiness mechanism with forked accepters, CLONE_VM
# children, connects at the fd limit, the keeper (TIME_WAIT, SIGTERM, a
# listener handed to an exec'd image, a connect left to a forked child),
# SIOCOUTQ, a peer's close and reset, pktinfo and TCLASS on accepted
# sockets, a prefork server's listener dying with its last holder, a
# listener closed and made again at once, a socket shared before listen()
# (one queue), a server restarted on its port while its old connection
# delivers, the program's own UDP on its listener's port and SO_REUSEPORT
# groups (prog_reuseport), death by signal, signals during
# calls, small thread stacks, socket options and their edges (bad pointers:
# TCP's EFAULT, SO_ZEROCOPY refused: the bridge copies), raw syscall(),
# threads, the write queue, a listener group across processes, options
# set before connect and listen (IP_TOS, TCP_CONGESTION, buffer sizes),
# epoll and O_ASYNC carried over (si_fd the program's), sendto() with an
# address on a connection (blocking, under signals, MSG_OOB, EPIPE).
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
SB=$BIN/static
# The programs run as under the preload's run_both: RUDP_FALLBACK as the
# user has it (prog_clonevm's listener on kernel TCP, its UDP port held by
# the program, is reached by the fallback), not reachlib's "none".
unset RUDP_FALLBACK
# name and arguments; one a line
LIST='prog_acceptorder
prog_acceptorder full
prog_acceptorder busy
prog_acceptq
prog_accepters
prog_clonevm
prog_connopts
prog_epollpre
prog_fdlimit
prog_keeper timewait
prog_keeper sigterm
prog_keeperhand listener
prog_keeperhand exit
prog_keeperhand relayexit
prog_keeperhand finwait
prog_options
prog_outq 500
prog_peerclose
prog_peerreset nosend
prog_pktinfo
prog_prefork
prog_prefork -k
prog_relisten
prog_restart
prog_reuseport
prog_sendaddr
prog_sigdeath
prog_signals
prog_smallstack
prog_sockopts
prog_sysclose
prog_threads
prog_writeq
prog_xgroup'

# What a program's lines may say differently by design, the same under the
# preload: prog_options checks TCP_CONGESTION with names rudp runs whether
# the kernel has them or not (vegas, htcp, copa...): over kernel TCP it
# checks the kernel's answer (ENOENT here), over a bridge rudp's (taken,
# read back); each branch asserted by the program itself.
norm() {
    case $1 in
    prog_options) echo 's/^ok: kernel TCP answers vegas: .*/ok: vegas, htcp: the transport'"'"'s answer/
s/^ok: rudp runs vegas and htcp: .*/ok: vegas, htcp: the transport'"'"'s answer/
s/^ok: \([a-z]*\): .*/ok: \1: the transport'"'"'s answer/' ;;
    esac
}

# BATTERY_ONLY="prog_a prog_b": only those (by program name)
n=0
while read -r prog args; do
    case " ${BATTERY_ONLY:-$prog} " in *" $prog "*) ;; *) continue ;; esac
    [ -x "$SB/$prog" ] || skip "no static libc here: $SB/$prog not built"
    tag=$prog${args:+_$args}
    # shellcheck disable=SC2086 # the arguments
    timeout -k 5 90 "$SB/$prog" $args >"$T/$tag.plain" 2>&1 ||
        { show "$T/$tag.plain"; fail "$tag over kernel TCP failed"; }
    # shellcheck disable=SC2086
    timeout -k 5 90 "$SUP" "$SB/$prog" $args >"$T/$tag.supervised" 2>&1 ||
        { show "$T/$tag.supervised"; fail "$tag under rudp-supervise failed"; }
    echo "$tag:"
    # its fail ends the subshell; the status ends this script
    # the programs' processes print concurrently: compared as sets
    if ! (SAME_SORTED=1 same_checks "$T/$tag.plain" "$T/$tag.supervised" "$(norm "$prog")
s/[0-9][0-9]*/N/g") >"$T/$tag.same" 2>&1; then
        cat "$T/$tag.same"
        fail "$tag: the supervised program tells a difference"
    fi
    sed 's/^/  /' "$T/$tag.same"
    n=$((n + 1))
done <<LIST
$LIST
LIST
echo "$n programs: the same checks over kernel TCP and supervised"
echo "ok"
