#!/bin/sh
# A keeper with data to deliver names itself, delivers, and leaves once
# done (issue 30, finding 6). A server under the shim queues what it can
# for a client that is stopped (SIGSTOP: its engine acknowledges nothing)
# and ends with _exit(), its connection open: kernel TCP would deliver the
# bytes and a FIN after the process is gone, and so must its keeper.
#   - while it delivers, the keeper is named in ps: "rudp-keeper" (comm)
#     and "rudp-keeper: python3 .../server.py ..." (its command line), not
#     the server's own name, and holds none of the server's own fds (a file
#     it left open);
#   - the client, continued, reads every byte the server wrote, then EOF;
#   - the keeper is gone within 10 s of that while the client still holds
#     its end open (everything delivered and acknowledged: nothing left for
#     it), well before the 60 s that TIME_WAIT and the linger of a closing
#     connection last; the client closes after.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

[ "$SHIM_MODE" = shim ] || { echo "skip: keepers are the shim's"; exit 77; }

P=$(free_port)
cat >"$T/server.py" <<'PY'
import os, socket, sys, time
port, go, sent = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen()
c, _ = s.accept()
for _ in range(600):
    if os.path.exists(go):
        break
    time.sleep(0.05)
c.setblocking(False)
data = os.urandom(8 << 20)
n = 0
try:
    while n < len(data):
        n += c.send(data[n:n + 65536])
except BlockingIOError:
    pass
with open(sent, "wb") as f:
    f.write(data[:n])
marker = open(sent + ".marker", "w")  # an fd of the program's: not the keeper's
os._exit(0)  # the connection open, n bytes queued
PY
cat >"$T/client.py" <<'PY'
import os, signal, socket, sys, time
port, got, close = int(sys.argv[1]), sys.argv[2], sys.argv[3]
c = socket.create_connection(("127.0.0.1", port))
print("connected", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)
with open(got, "wb") as f:
    while True:
        b = c.recv(65536)
        if not b:
            break
        f.write(b)
print("eof", flush=True)
for _ in range(600):  # its end stays open until told
    if os.path.exists(close):
        break
    time.sleep(0.05)
c.close()
PY

# keepers: live processes other than the server whose command line names
# its script (the server's own, or a keeper's title)
keepers() { procs_matching "\\Q$T/server.py\\E" "$SRV"; }

start_bg server under_shim env RUDP_LOG=info "$PY" "$T/server.py" "$P" "$T/go" "$T/sent"
SRV=$LAST_PID
wait_udp "$P"
start_bg client under_shim "$PY" "$T/client.py" "$P" "$T/got" "$T/close"
CLI=$LAST_PID
wait_line "$T/client.log" '^connected$' 10 || fail "the client did not connect: $(cat "$T/client.log")"
i=0
until [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$CLI/stat" 2>/dev/null)" = T ]; do
    [ "$i" -lt 200 ] || fail "the client did not stop"
    sleep 0.05; i=$((i + 1))
done
touch "$T/go"
ended 1000 "$SRV" || fail "the server did not end"
[ -s "$T/sent" ] || fail "the server queued nothing: $(tail -3 "$T/server.log")"
echo "ok: the server queued $(wc -c <"$T/sent") bytes for the stopped client and ended"

end=$(($(date +%s) + 10))
while [ -z "$(keepers)" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
K=$(keepers | head -1)
[ -n "$K" ] || fail "no keeper carries the server's connection: $(tail -5 "$T/server.log")"
# found by its command line, it may be the copy fork() just made, named as
# the server until it names itself once it has closed the program's fds
# (keeper.c's keeper_main): a loaded make test met it so once (RUDP_FD_TABLE
# =own, t_fd_table_own); or a process of the server's that is gone by the
# time it is read (another loaded make test, the same test: /proc/$K gone).
# Each of them is asked again until one names itself, at most 5 s
i=0
while [ "$(cat "/proc/$K/comm" 2>/dev/null)" != rudp-keeper ] && [ "$i" -lt 100 ]; do
    sleep 0.05; i=$((i + 1))
    for k in $(keepers); do
        [ "$(cat "/proc/$k/comm" 2>/dev/null)" = rudp-keeper ] && K=$k && break
    done
done
PIDS="$PIDS $K"
comm=$(cat "/proc/$K/comm" 2>/dev/null)
args=$(tr '\0' ' ' <"/proc/$K/cmdline")
echo "keeper $K: comm '$comm', command line '$args'"
[ "$comm" = rudp-keeper ] || fail "keeper $K is named '$comm' in ps, not rudp-keeper"
case "$args" in
"rudp-keeper: "*"$T/server.py $P "*) ;;
*) fail "keeper $K's command line is not 'rudp-keeper: <the server's>': $args" ;;
esac
echo "ok: the keeper names itself in ps"
# it holds none of the program's own fds (a file left open at _exit)
held=$(ls -l "/proc/$K/fd" 2>/dev/null | grep -c 'sent\.marker' || true)
[ "$held" = 0 ] || fail "keeper $K holds the program's file: $(ls -l "/proc/$K/fd" | grep marker)"
[ -n "$(ls "/proc/$K/fd" 2>/dev/null)" ] || fail "keeper $K's fds cannot be listed"
echo "ok: the keeper holds none of the program's files"

kill -CONT "$CLI"
wait_line "$T/client.log" '^eof$' 60 || fail "the client did not reach EOF: $(tail -3 "$T/client.log")"
[ "$(sha "$T/sent")" = "$(sha "$T/got")" ] ||
    fail "the client got $(wc -c <"$T/got") bytes, not the $(wc -c <"$T/sent") the server wrote"
echo "ok: the keeper delivered all $(wc -c <"$T/got") bytes, then EOF"

end=$(($(date +%s) + 10))
while running "$K" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.05; done
if running "$K"; then
    grep "rudp.*\[$K\]" "$T/server.log" | tail -5 >&2
    fail "keeper $K still runs 10 s after it delivered everything (it must leave at once, well before the 60 s of TIME_WAIT and of a closing connection's linger)"
fi
echo "ok: the keeper left once it had delivered, the client's end still open"
touch "$T/close"
wait_exit "$CLI" 30 || fail "the client did not end"
