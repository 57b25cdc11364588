#!/bin/sh
# tests/prog_keeperhand.c over kernel TCP and under the shim: what a keeper
# carries across exec and exit.
#   listener: a listener made by a process that closed its copy and exited
#     while an image it exec'd holds it: the keeper serves it and the
#     exec'd image accepts the keeper's connection (its pid is entered in
#     the slab the listener's owner made).
#   exec: a non-blocking connect to a plain kernel TCP server (no rudp
#     there) that execs at once: the keeper finishes the race and the new
#     image's shim takes the TCP socket (SCM_RIGHTS) onto the fd; the new
#     image's epoll_wait (and, another round, poll) sees it writable, the
#     server reads its bytes. The transport is kernel TCP both ways, so
#     this one is run both ways by hand, not by run_both.
#   exit: the same connect, then a fork, and the connecting process exits
#     at once: its forked child waits for the fd (poll), says hello and
#     reads the reply; the keeper carries the TCP connection on for the
#     child (it relays between the bridge and the TCP socket).
#   relayexit: the connect to that server completes first, then the fork
#     and the exit; the child talks once its parent is gone. Where the
#     engines keep a table of their own (t_fd_table_own runs this script
#     with RUDP_FD_TABLE=own) the program relays the connection itself, and
#     the keeper must carry the relay on and then end: every process the
#     test made ends within 20 s of the connection (it is their
#     subreaper). Before 2026-11-29 that keeper waited for ever for relay
#     threads it did not have (a rudp-supervise keeper 37 minutes on), and
#     the child's connection died with its parent. Kernel TCP, so by hand.
#   finwait: a process closes a connection (FIN_WAIT_2) and exits while a
#     forked child holds another of its connections; the peer then writes
#     and must be reset (SO_ERROR EPIPE, as TCP's orphaned socket makes it).
#     RUDP_ENGINES=2 puts the closed connection on an engine of its own,
#     which retires in the keeper at once: before 2026-11-29 its socket
#     stayed open and unread, and the peer's bytes went unanswered.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_keeperhand
run_both keeperhand_listener "$BIN/prog_keeperhand" listener
run_both keeperhand_exit "$BIN/prog_keeperhand" exit
run_both keeperhand_finwait env RUDP_ENGINES=2 "$BIN/prog_keeperhand" finwait

rc=0
timeout -k 5 60 "$BIN/prog_keeperhand" relayexit >"$T/relayexit.tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/relayexit.tcp"
[ "$rc" = 0 ] || fail "prog_keeperhand relayexit over kernel TCP exited $rc"
run_app "$BIN/prog_keeperhand" relayexit >"$T/relayexit.shim" 2>&1 || rc=$?
sed 's/^/shim: /' "$T/relayexit.shim"
[ "$rc" = 0 ] || fail "prog_keeperhand relayexit under the shim exited $rc"
grep -q '^ok: the connection a forked child held' "$T/relayexit.shim" || fail "relayexit: no ok line"

timeout -k 5 60 "$BIN/prog_keeperhand" exec >"$T/exec.tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/exec.tcp"
[ "$rc" = 0 ] || fail "prog_keeperhand exec over kernel TCP exited $rc"
run_app env RUDP_LOG=info "$BIN/prog_keeperhand" exec >"$T/exec.shim" 2>&1 || rc=$?
sed 's/^/shim: /' "$T/exec.shim"
[ "$rc" = 0 ] || fail "prog_keeperhand exec under the shim exited $rc"
if [ "$SHIM_MODE" = shim ]; then
    [ "$(grep -c '^ok: the new image' "$T/exec.shim")" = 2 ] || fail "exec: not both rounds"
    [ "$(grep -c '^transport: tcp$' "$T/exec.shim")" = 2 ] ||
        fail "exec: the new image's fd is not the fallback's kernel TCP socket"
    n=$(grep -c "handed to the new image" "$T/exec.shim" || true)
    echo "ok: exec: both rounds over kernel TCP; $n handed by a keeper after exec"
fi

# exit, relayexit and exec again at `ulimit -n 128`, below the shim's fd
# base (700), the engines' fds in the program's table and in their own
# (the default at such a limit): the fallback's TCP socket, the relay's
# and the keeper's copies must go below it. Before 2026-11-29 every one
# failed there (no fallback at all, or a relay never started: EOF).
# relayexit 20: pairs of its own first fill the first engine's table, so
# the relayed connect is a second engine's. Both tables are named here, so
# not again when t_fd_table_own runs this script.
[ -n "${RUDP_FD_TABLE:-}" ] && exit 0
for tab in shared own; do
    for args in exit relayexit "relayexit 20" exec; do
        rc=0
        # shellcheck disable=SC2086 # the arguments
        ( ulimit -n 128 && run_app env RUDP_FD_TABLE=$tab "$BIN/prog_keeperhand" $args ) \
            >"$T/low.out" 2>&1 || rc=$?
        [ "$rc" = 0 ] || { sed 's/^/low: /' "$T/low.out"; fail "ulimit -n 128, RUDP_FD_TABLE=$tab: prog_keeperhand $args exited $rc"; }
    done
done
echo "ok: at ulimit -n 128, both fd tables: exit, relayexit (one engine and two) and exec pass"
