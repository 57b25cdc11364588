#!/bin/sh
# make tsan: the multi-threaded client tests with the ThreadSanitizer shim
# (and TSan-built test programs), with the server in a thread and in a
# forked process: prog_threads (200 connections at once), prog_appsend
# (application threads sending while engines sleep, engine/appsend.c) and
# prog_transparency (1,000 threads with a connection each, threads blocked
# in every readiness call, signals, fork and exec) and prog_apprecv (a
# blocking reader waiting on its UDP socket itself, engine/apprecv.c,
# left by signals, siglongjmp and cancellation), prog_epollmany (epoll
# waits for many connections running every engine's turn, left the same
# ways, across fork), prog_epollkept (their sets told of bytes kept in
# memory for the read, engine/appwhole.c), prog_sigdefer (realtime signals
# queued to both threads of such a loop, deferred past the shim's sections
# by signals.c's trampoline, base/crit.c), prog_sighandcall (handlers
# calling close(), dup2(), write() and socket() over the shim's locks held
# by the thread they interrupt, base/crit.c's shim_mutex), prog_threadloops
# (two threads' event loops at once, each taking its own engine's turns,
# engine/appwhole.c, or sharing one); prog_appsend again with
# the app thread's send off, so that its writes go to the engine in memory
# (engine/txring.c); prog_threads again with the engines' fds in tables of
# their own.
# Any ThreadSanitizer report fails it.
#
# Two choices here were forced by TSan itself, found by attaching gdb to
# hung runs:
# - The shim is preloaded alone, so it comes before libtsan (a NEEDED of
#   both the program and the shim). With libtsan preloaded first, the
#   program's accept4() enters TSan's interceptor, which marks the thread
#   as "in a blocking call" and ignores every interceptor until it returns,
#   so the shim's pthread_mutex_lock under accept4 went unseen and TSan
#   reported false races on memory that mutex guards. With the shim first,
#   the shim's own calls to libc (RTLD_NEXT) go through TSan's interceptors
#   like any program's, and TSan also sees the shim close fds.
# - symbolize=0: TSan's in-process symbolizer deadlocks in this program
#   (the report then hangs until the timeout instead of printing), so the
#   report is printed with module+offset frames and symbolized here with
#   addr2line.
set -eu
B=${1:-build/tsan}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Prints a TSan report with the shim's and the program's frames resolved.
symbolize() {
    while IFS= read -r line; do
        mod=$(printf '%s\n' "$line" | sed -n 's/.*(\([^()+]*\)+\(0x[0-9a-f]*\))$/\1 \2/p')
        case "$mod" in
        librudp_shim.so\ *) file=$B/librudp_shim.so ;;
        prog_threads\ *) file=$B/progs/prog_threads ;;
        prog_appsend\ *) file=$B/progs/prog_appsend ;;
        prog_transparency\ *) file=$B/progs/prog_transparency ;;
        prog_apprecv\ *) file=$B/progs/prog_apprecv ;;
        prog_epollmany\ *) file=$B/progs/prog_epollmany ;;
        prog_epollkept\ *) file=$B/progs/prog_epollkept ;;
        prog_sigdefer\ *) file=$B/progs/prog_sigdefer ;;
        prog_sighandcall\ *) file=$B/progs/prog_sighandcall ;;
        prog_threadloops\ *) file=$B/progs/prog_threadloops ;;
        *) printf '%s\n' "$line"; continue ;;
        esac
        off=${mod#* }
        printf '%s  %s\n' "$line" "$(addr2line -f -C -p -e "$file" "$off")"
    done
}

rc=0
# "own:" runs the program with the engines' fds in tables of their own
# (RUDP_FD_TABLE=own: engines started for room, copies into their tables,
# eventfd copies between them). TSan keeps its state of an fd by number,
# not by table: a program of its own holding over ~700 fds would have its
# numbers meet the engines' (SHIM_FD_BASE up) and be reported as races on
# the same fd (prog_transparency's 1,000 connections); prog_threads holds
# fewer.
# ring: with the app thread's send off, prog_appsend's writes go to the
# engine in memory (shim/engine/txring.c).
for run in "prog_threads" "prog_threads -f" "prog_appsend" "prog_appsend -f" \
    "ring:prog_appsend" "ring:prog_appsend -f" \
    "prog_transparency" "prog_apprecv" "prog_epollmany" "prog_epollmany ownfd" "prog_epollmany blockread" "prog_epollkept" "prog_sigdefer" "prog_sighandcall" "prog_threadloops own" "prog_threadloops given" "own:prog_threads" "own:prog_threads -f"; do
    table=shared appsend=1
    case $run in own:*) table=own run=${run#own:} ;; esac
    case $run in ring:*) appsend=0 run=${run#ring:} ;; esac
    prog=${run%% *} mode=${run#"$prog"}
    echo "== $prog$mode under the TSan shim (RUDP_FD_TABLE=$table RUDP_APP_SEND=$appsend)"
    # prog_appsend sends from a SIGALRM handler on purpose (its edges):
    # the app-thread path then allocates, from libc's malloc under the
    # sanitizers, which TSan rightly calls signal-unsafe. The product's
    # allocator is the shim's own (base/alloc.c), whose lock that path
    # checks first (shim_alloc_held): those reports alone are off there.
    # prog_sighandcall's handlers call close(), dup2() and socket() on
    # purpose (async-signal-safe), which reach the shim's records and its
    # allocator (libc's malloc under the sanitizers): the same.
    unsafe=1
    [ "$prog" = prog_appsend ] && unsafe=0
    [ "$prog" = prog_sighandcall ] && unsafe=0
    # prog_apprecv forks while a thread reads, on purpose, and its children
    # connect (the shim starts an engine thread there): TSan's runtime
    # cannot follow threads started after a multi-threaded fork, so that
    # case is left to make test (PROG_APPRECV_NOFORK=1; its seccomp image
    # is exec'd, a new runtime).
    # shellcheck disable=SC2086
    # PROG_TSAN=1: prog_epollmany's wait cancelled in epoll_wait is left to
    # make test (TSan cannot see locks taken in a cancelled blocking call's
    # cleanup handlers: the program says why).
    if ! LD_PRELOAD="$B/librudp_shim.so" PROG_APPRECV_NOFORK=1 PROG_TSAN=1 RUDP_FD_TABLE=$table \
        RUDP_APP_SEND=$appsend \
        TSAN_OPTIONS="halt_on_error=0 exitcode=66 symbolize=0 report_signal_unsafe=$unsafe" \
        timeout 300 "$B/progs/$prog" $mode >"$out" 2>&1; then
        rc=1
    fi
    tail -3 "$out"
    if grep -q "WARNING: ThreadSanitizer" "$out"; then
        grep -A30 "WARNING: ThreadSanitizer" "$out" | head -60 | symbolize
        rc=1
    fi
done
[ "$rc" = 0 ] && echo "tsan: clean" || echo "tsan: FAILED"
exit "$rc"
