#!/bin/sh
# The engine's fds in a table of their own (RUDP_FD_TABLE=own, issue 43
# item 4b): what the rest of make test checks with the engine in the
# program's table (this machine's hard fd limit makes auto "shared"),
# again with it apart, for the parts that cross tables: each connect's and
# listen()'s fds copied into the engine's table, a peer's reset marked on
# the app's end through a copy, the keeper forked from the engine's thread
# at exit, exec and a fatal signal (with what the exec passes on), a
# connect racing kernel TCP across exec, a child sharing our memory, two
# processes sharing a listener, closing every fd, rudp-stat finding the
# control socket in the engine's table, keyed mode. Each script is run as
# it is, with the variable set; each must pass.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"

export RUDP_FD_TABLE=own
# t_prog_endings' supervised column: the supervisor keeps one table
# whatever RUDP_FD_TABLE says (docs/limits.md), so it is not run again
export ENDINGS_NO_SUPERVISED=1
t=$ROOT/integration/tests
passed=0
for s in api/t_prog_transparency.sh api/t_prog_endings.sh api/t_prog_relisten.sh \
    api/t_prog_clonevm.sh api/t_prog_sigdeath.sh api/t_prog_spawn.sh \
    lifetime/t_prog_keeperhand.sh lifetime/t_lifetime_exec.sh lifetime/t_lifetime_exit.sh \
    lifetime/t_keeper_delivers.sh lifetime/t_lifetime_closeall.sh lifetime/t_prog_keeper.sh \
    lifetime/t_lifetime_daemon.sh \
    keyed/t_keyed_nc.sh tools/t_rudp_stat.sh; do
    [ -f "$t/$s" ] || fail "no script $s"
    rc=0
    timeout -k 5 300 sh "$t/$s" >"$T/out" 2>&1 || rc=$?
    case $rc in
    0) passed=$((passed + 1)) ;;
    77) echo "skip: $s with RUDP_FD_TABLE=own: $(grep -m1 '^skip: ' "$T/out" | cut -c7-)" ;;
    *) show "$T/out"; fail "$s with RUDP_FD_TABLE=own exited $rc" ;;
    esac
done
echo "ok: $passed scripts passed with the engine's fds in a table of their own"
