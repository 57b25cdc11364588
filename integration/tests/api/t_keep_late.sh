#!/bin/sh
# A reader late for its kept bytes three times in a row is kept no more
# for a while, not for good (shim/engine/bridgepump.c: shim_bridge_pass_kept):
# the bytes a poll() told of wait in the connection for the read after it
# (design.md, "Kept for the read after a poll"); three keeps passed on
# into the bridge with no read of ours between (a reader we do not see:
# stdio's) and the bridge is kept no more for SHIM_KEEP_OFF_FOR (100 ms),
# twice that the next time (up to 102.4 s), until a read takes kept
# bytes. A reader of ours preempted three times in a row on a busy
# machine lost its keeps for
# the rest of its run before (t_bridge_grow's bulk reader in CI: 11 takes,
# then none for 2 s).
# A python client of a python echo server, over kernel TCP first, then both
# under the shim: 100 echoes read without a poll (the socket's mode known,
# its round trip measured); then late rounds, each a poll's echo passed on
# unread (a second poll before the read: the poll's own flush passes the
# kept bytes on), 6 to 40 of them in 150 ms (not every echo is kept: one
# may come before its poll waits; three suffice); then, 900 ms later, 50
# echoes each read right after its poll. Every echo must come whole and in
# order; under the shim the client's counters must say the bridge was
# kept no more and that reads took kept bytes after it (none before: they
# were read without a poll or late). Where no three late rounds were kept
# (a loaded machine: the paths wait for a short round trip) it says skip.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# the app threads' own receive, which an engine with a table of its own
# does not take (RUDP_FD_TABLE)
export RUDP_FD_TABLE=shared

cat >"$T/srv.py" <<'PY'
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1])))
l.listen(1)
a, _ = l.accept()
while True:
    b = a.recv(64)
    if not b:
        break
    a.sendall(b)
PY
cat >"$T/cli.py" <<'PY'
import select, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
p = select.poll()
p.register(c.fileno(), select.POLLIN)
fd = c.fileno()
def ask(s):
    c.sendall(s)
    got = p.poll(5000)
    assert got == [(fd, select.POLLIN)], ("poll", s, got)
for i in range(100):
    c.sendall(b"w%02d" % i)
    assert c.recv(3) == b"w%02d" % i
end = time.monotonic() + 0.15
i = 0
while i < 40 and (i < 6 or time.monotonic() < end):
    ask(b"L%d" % (i % 10))
    got = p.poll(0)   # a second look before the read: the kept bytes go on
    assert got == [(fd, select.POLLIN)], ("second poll", i, got)
    assert c.recv(2) == b"L%d" % (i % 10)
    i += 1
print("late rounds: %d" % i)
time.sleep(0.9)       # past SHIM_KEEP_OFF_FOR (100 ms), 100 + 200 + 400 ms at most
for i in range(50):
    ask(b"P%02d" % i)
    assert c.recv(3) == b"P%02d" % i
c.close()
print("ok: echoes whole and in order")
PY

# run MODE: the echo server and the client, under the shim with MODE=shim
run() {
    P=$(free_port)
    if [ "$1" = shim ]; then
        start_bg "srv_$1" under_shim python3 "$T/srv.py" "$P"
    else
        start_bg "srv_$1" python3 "$T/srv.py" "$P"
    fi
    srv=$LAST_PID
    if [ "$1" = shim ]; then wait_udp "$P"; else wait_tcp "$P"; fi
    _rc=0
    if [ "$1" = shim ]; then
        under_shim env RUDP_APP_RECV=1 RUDP_STATS=1 timeout 60 python3 "$T/cli.py" "$P" \
            >"$T/cli_$1.out" 2>"$T/cli_$1.log" || _rc=$?
    else
        timeout 60 python3 "$T/cli.py" "$P" >"$T/cli_$1.out" 2>"$T/cli_$1.log" || _rc=$?
    fi
    wait_exit "$srv" || { show "$T/srv_$1.log"; fail "$1: the echo server exited non-zero"; }
    [ "$_rc" = 0 ] || { show "$T/cli_$1.log"; fail "$1: the client exited $_rc"; }
    sed "s/^/$1: /" "$T/cli_$1.out"
}
run tcp
run shim
line=$(stats_lines "$T/cli_shim.log" | grep '^kept for the read after a poll:')
[ -n "$line" ] || { show "$T/cli_shim.log"; fail "under the shim no bytes were kept for a read after a poll"; }
echo "shim: $line"
off=$(printf '%s\n' "$line" | sed -n 's/.*with no read of ours between) \([0-9]*\).*/\1/p')
took=$(printf '%s\n' "$line" | sed -n 's/.*reads that took them \([0-9]*\),.*/\1/p')
unread=$(printf '%s\n' "$line" | sed -n 's/.*passed on into the bridge unread \([0-9]*\);.*/\1/p')
if [ "${off:-0}" = 0 ] && [ "${unread:-0}" -lt 3 ]; then
    # the app threads' paths wait for a connection's round trip to be
    # short (SHIM_APPRECV_RTT_US): on a loaded machine the late rounds'
    # polls may all have gone the bridge's way, keeping nothing
    echo "skip: kept no more: no three of the late rounds' echoes were kept (${unread:-0} passed on unread): this machine's load left the polls to the engine"
    exit 0
fi
[ "${off:-0}" -ge 1 ] || fail "$unread keeps passed on unread with no read between, and the bridge was not kept no more (${off:-0})"
# 50 polls' echoes after the 900 ms: most are read right after the poll
[ "${took:-0}" -ge 25 ] ||
    fail "after the bridge was kept no more and 900 ms passed, only ${took:-0} of 50 reads after a poll took kept bytes"
echo "ok: kept no more after three late reads ($off), and kept again 900 ms later ($took reads took kept bytes)"
