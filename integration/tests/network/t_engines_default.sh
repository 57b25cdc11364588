#!/bin/sh
# The default engine count (RUDP_ENGINES unset: up to one per CPU of the
# affinity mask, at most 4, started by load; docs/configuration.md, "Engine
# threads"), read from each process's RUDP_STATS line "engine: threads N".
# One python3 process listens on the loopback address with a backlog,
# connects CONNS clients to itself, accepts them, moves a byte each way on
# each, and exits:
#   backlog 5, 1 client          1 engine (a small program)
#   backlog 128, 1 client        one per CPU (at most 4): the listener's group
#   backlog 128 + TCP_FASTOPEN   1 (0-RTT tokens are an engine's own)
#   backlog 128 under taskset -c 0        1 (one CPU in its mask)
#   backlog 5, 40 clients        2 where there are 2 CPUs (32 connections
#                                 fill the first engine)
#   RUDP_ENGINES=2, backlog 5    2 (forced: every listener gets all)
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests several engines, which a process whose engine keeps a table of its own
# does not run (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared
[ "$SHIM_MODE" = shim ] || skip "counts the shim's engine threads"
cat >"$T/eng.py" <<'PY'
import socket, sys
backlog, conns, tfo = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if tfo:
    l.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
l.bind(("127.0.0.1", 0))
l.listen(backlog)
cs, ss = [], []
for i in range(conns):
    c = socket.create_connection(l.getsockname(), timeout=20)
    s, _ = l.accept()
    cs.append(c)
    ss.append(s)
for c, s in zip(cs, ss):
    c.sendall(b"x")
    assert s.recv(1) == b"x"
    s.sendall(b"y")
    assert c.recv(1) == b"y"
for x in cs + ss:
    x.close()
print("done", conns)
PY
command -v python3 >/dev/null || skip "no python3"
ncpu=$(nproc)
all=$((ncpu < 4 ? ncpu : 4))
two=$((ncpu < 2 ? 1 : 2))
# threads LABEL WANT CMD...: CMD under the shim; its "engine: threads N"
threads() {
    _l=$1 _want=$2
    shift 2
    _rc=0
    run_app env RUDP_STATS=1 "$@" >"$T/$_l.log" 2>&1 || _rc=$?
    [ "$_rc" = 0 ] && grep -q '^done' "$T/$_l.log" || { show "$T/$_l.log"; fail "$_l: exited $_rc"; }
    _n=$(grep -v rudp-keeper "$T/$_l.log" | sed -n 's/.*engine: threads \([0-9]*\) .*/\1/p' | head -1)
    [ "$_n" = "$_want" ] || { show "$T/$_l.log"; fail "$_l: $_n engine threads, want $_want"; }
    echo "ok: $_l: $_n engine thread(s)"
}
E="env -u RUDP_ENGINES"
threads "backlog 5" 1 $E python3 "$T/eng.py" 5 1 0
threads "backlog 128 ($ncpu CPUs)" "$all" $E python3 "$T/eng.py" 128 1 0
threads "backlog 128, TCP_FASTOPEN" 1 $E python3 "$T/eng.py" 128 1 1
if command -v taskset >/dev/null; then
    threads "backlog 128, taskset -c 0" 1 $E taskset -c 0 python3 "$T/eng.py" 128 1 0
else
    echo "skip: no taskset"
fi
threads "backlog 5, 40 connections" "$two" $E python3 "$T/eng.py" 5 40 0
threads "RUDP_ENGINES=2, backlog 5" 2 env RUDP_ENGINES=2 python3 "$T/eng.py" 5 1 0
