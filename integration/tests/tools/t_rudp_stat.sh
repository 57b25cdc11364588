#!/bin/sh
# rudp-stat (tools/rudp-stat.c, shim/engine/control.c): the live view of
# a running process under the shim.
#  (a) nginx (master + 2 workers) under the shim while wrk under the shim
#      loads it: rudp-stat of a worker (served by its master's engine) and of
#      wrk list ESTAB connections with every field (addresses, id, age, the
#      cipher: "plain" unkeyed, cc and phase, rtt, cwnd, inflight, pacing,
#      delivery, bytes, unacked, unsent, lost, pto),
#      the listener, and with --verbose the engine counters;
#  (b) a keeper: a writer under the shim queues 1-2 MB for a reader that does
#      not read yet (256 KiB window) and _exit()s; rudp-stat of the keeper shows
#      it named "(rudp-keeper)", "keeper of pid <writer>" and its connection;
#      then the reader reads and gets every byte;
#  (c) uid nobody running rudp-stat against wrk is refused by the process
#      itself (non-zero exit, "permission denied: process N belongs to uid
#      0"), while root succeeds; an unknown pid gives a one-line error;
#  (d) 9 connections to wrk's control socket (more than the 8 it serves at
#      once) that never read do not keep a later rudp-stat from its answer;
#  (e) lookalike names ("@rudp-ctl/<pid>/0" and 31 random ones, bound by
#      nobody; random names land before the real one in /proc/net/unix) fool
#      neither root's rudp-stat (which matches socket inodes) nor the
#      name-only search of rudp-stat as nobody against a non-dumpable
#      process of nobody's (its /proc/PID/fd unreadable even to its owner):
#      every candidate is tried until the SO_PEERCRED pid is the process's;
#  (f) a server in a network namespace of the test's own (a container's, an
#      `ip netns` one), whose control socket's abstract name is that
#      namespace's: root's rudp-stat in this one shows it, by its pid and
#      without one; a process with no control socket is told where rudp-stat
#      looked;
#  (g) a process that ends while rudp-stat, listing every process, waits
#      for its answer (stopped, rudp-stat's connection in its control
#      socket's queue, then killed) is left out, as ps and ss leave out what
#      ended: exit 0 and no line about it; asked for by its pid, it is an
#      error ("no process").
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
[ "$SHIM_MODE" = shim ] || skip "rudp-stat needs the shim"
need_root "to run rudp-stat as nobody"
compat_deps
need_tool rudp-stat
STAT=$TOOLS/rudp-stat

# Checks that FILE's report has an ESTAB connection with every field.
assert_report() {
    _f=$1 _what=$2
    grep -Eq '^pid [0-9]+ \(.*\) engines [0-9]+ up [0-9.]+s' "$_f" ||
        { cat "$_f" >&2; fail "$_what: no header line"; }
    grep -Eq '^ESTAB 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:[0-9]+ id [0-9a-f]{16} age [0-9.]+s engine [0-9]+ plain' "$_f" ||
        { head -20 "$_f" >&2; fail "$_what: no ESTAB connection line"; }
    grep -Eq '^  (bbr (Startup|Drain|ProbeBW|ProbeRTT)|(cubic|newreno) (slow start|conservative slow start|avoidance|recovery)) rtt [0-9.]+/[0-9.]+ ms min [0-9.-]+ cwnd [0-9]+ inflight [0-9]+ pacing [0-9.]+[KMG]bit/s delivery [0-9.]+[KMG]bit/s.* sent [0-9]+ recv [0-9]+ unacked [0-9]+ unsent [0-9]+ lost [0-9]+ pto [0-9]+ mtu [0-9]+$' "$_f" ||
        { head -20 "$_f" >&2; fail "$_what: no detail line with every field"; }
    # the engine counters (--verbose): the lines RUDP_STATS prints
    grep -q '^counters:$' "$_f" &&
        grep -Eq '^  engine: threads [0-9]+ \(connections each [0-9/]+\)' "$_f" &&
        grep -Eq '^  datagrams: datagrams out [0-9]+ in [0-9]+' "$_f" &&
        grep -Eq '^  loss and rtt: [0-9.]+% of [0-9]+ data packets declared lost' "$_f" ||
        { tail -8 "$_f" >&2; fail "$_what: no engine counters"; }
}

# ---- (a) nginx + wrk ----
P=$(free_port)
chmod 755 "$T"
mkdir -m 755 "$T/www" "$T/tmp"
head -c 1048576 /dev/urandom >"$T/www/load.bin"
chmod 644 "$T/www/load.bin"
nginx_conf "$P"
nginx_start "$P"
P2=$(free_port) # for (b), while nginx holds $P (a keeper of nginx may hold it after)
WORKER=$(pgrep -P "$NGINX" | head -1)

bg_app wrk wrk -t2 -c20 -d60s --timeout 30s "http://127.0.0.1:$P/load.bin"
WRK=$LAST_PID

stat_until "$T/worker.out" '^ESTAB ' --verbose "$WORKER"
grep -q "^process $WORKER (nginx) runs no rudp engine of its own: .* served by its parent $NGINX (nginx):" "$T/worker.out" ||
    { head -3 "$T/worker.out" >&2; fail "rudp-stat of worker $WORKER does not name its master's engine"; }
assert_report "$T/worker.out" "nginx worker $WORKER"
grep -q "^pid $NGINX (nginx) " "$T/worker.out" || fail "the worker's report is not its master's"
grep -Eq "^ESTAB 127\.0\.0\.1:$P > 127\.0\.0\.1:[0-9]+ " "$T/worker.out" || fail "nginx: no connection on port $P"
grep -Eq "^LISTEN 127\.0\.0\.1:$P engine [0-9]+ backlog [0-9]+" "$T/worker.out" || fail "nginx: no LISTEN line for port $P"
echo "ok: rudp-stat $WORKER (nginx worker): $(grep -c '^ESTAB ' "$T/worker.out") ESTAB connections, served by master $NGINX"
sed -n '2,4p' "$T/worker.out" | sed 's/^/    /'

stat_until "$T/wrk.out" '^ESTAB ' -v "$WRK"
assert_report "$T/wrk.out" "wrk $WRK"
grep -q "^pid $WRK (wrk) " "$T/wrk.out" || fail "rudp-stat $WRK: not wrk's report"
grep -Eq "^ESTAB 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:$P " "$T/wrk.out" || fail "wrk: no connection to port $P"
echo "ok: rudp-stat $WRK (wrk): $(grep -c '^ESTAB ' "$T/wrk.out") ESTAB connections"

# ---- (c) another user is refused; root is not; an unknown pid ----
attacker_prog rudp-stat
rc=0
as_nobody "$T/rudp-stat" "$WRK" >"$T/nobody.out" 2>"$T/nobody.err" || rc=$?
[ "$rc" != 0 ] || fail "rudp-stat as nobody succeeded against wrk $WRK"
grep -qx "rudp-stat: permission denied: process $WRK belongs to uid 0" "$T/nobody.err" ||
    { cat "$T/nobody.out" "$T/nobody.err" >&2; fail "rudp-stat as nobody: not refused by the process"; }
! grep -q '^ESTAB' "$T/nobody.out" || fail "nobody was shown connections"
echo "ok: uid nobody refused: $(cat "$T/nobody.err")"
"$STAT" "$WRK" >"$T/root.out" 2>&1 || fail "rudp-stat as root failed after the refusal: $(head -3 "$T/root.out")"
echo "ok: root reads wrk $WRK"
rc=0
"$STAT" 99999999 >"$T/none.out" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$(wc -l <"$T/none.out")" = 1 ] && grep -qx 'rudp-stat: no process 99999999' "$T/none.out" ||
    { cat "$T/none.out" >&2; fail "unknown pid: not a one-line error (exit $rc)"; }
echo "ok: unknown pid: $(cat "$T/none.out")"

# ---- (d) readers that never read ----
# Connects N times to PID's own control socket (the listener whose
# SO_PEERCRED pid is PID), waits until each has its answer waiting (poll,
# never read), says so in READY and holds them all.
cat >"$T/holder.py" <<'PY'
import select, socket, struct, sys, time
pid, n, ready = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
real = None
for line in open("/proc/net/unix", errors="replace").read().splitlines()[1:]:
    f = line.split()
    if len(f) < 8 or not f[7].startswith("@rudp-ctl/%d/" % pid) or not int(f[3], 16) & 0x10000:
        continue
    s = socket.socket(socket.AF_UNIX)
    s.connect("\0" + f[7][1:])
    if struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0] == pid:
        real = f[7][1:]
    s.close()
    if real:
        break
if not real:
    sys.exit("no control socket of %d" % pid)
held = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect("\0" + real)
    held.append(s)
for s in held:
    if not select.select([s], [], [], 30)[0]:
        sys.exit("no answer waiting on a held connection")
open(ready, "w").write("%d\n" % len(held))
time.sleep(3600)
PY
start_bg holder python3 "$T/holder.py" "$WRK" 9 "$T/held"
HOLDER=$LAST_PID
i=0
while [ ! -s "$T/held" ]; do
    kill -0 "$HOLDER" 2>/dev/null || { show "$T/holder.log"; fail "the holder of 9 connections failed"; }
    [ "$i" -lt 300 ] || fail "the holder's 9 connections got no answer"
    sleep 0.1
    i=$((i + 1))
done
"$STAT" "$WRK" >"$T/held.out" 2>&1 || { cat "$T/held.out" >&2; fail "rudp-stat $WRK failed while 9 connections did not read"; }
grep -q "^pid $WRK (wrk) " "$T/held.out" || { head -3 "$T/held.out" >&2; fail "rudp-stat $WRK: no report while 9 connections did not read"; }
echo "ok: 9 connections that never read; rudp-stat $WRK still answered"
kill "$HOLDER" 2>/dev/null || true

# ---- (e) lookalike names ----
# Binds and listens on "@rudp-ctl/<pid>/0" and 31 names with random 64-bit
# suffixes, like the real one's, for each PID (abstract names: anyone may;
# /proc/net/unix lists them by a hash of the name, so most come before the
# real one), says "ready" on stdout, and holds them.
cat >"$T/squat.py" <<'PY'
import os, socket, sys, time
pids = sys.argv[1:]
held = []
for pid in pids:
    for i in range(32):
        s = socket.socket(socket.AF_UNIX)
        s.bind("\0rudp-ctl/%s/%s" % (pid, os.urandom(8).hex() if i else "0"))
        s.listen(16)
        held.append(s)
print("ready", flush=True)
time.sleep(3600)
PY
# A process of nobody's under the shim that makes itself non-dumpable: its
# /proc/PID/fd is root's, so rudp-stat as nobody can only go by name.
cat >"$T/nodump.py" <<'PY'
import ctypes, socket, sys, time
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
time.sleep(3600)
PY
NBPY=""
for py in /usr/bin/python3 /usr/local/bin/python3; do
    as_nobody "$py" -c '' 2>/dev/null && { NBPY=$py; break; }
done
[ -n "$NBPY" ] || fail "no python3 that uid nobody may run"
P3=$(free_port)
# nobody loads a copy of the shim (public_ldp): a checkout under /root
# (0700) keeps the built one from it
public_ldp >/dev/null
shim_built=$SHIM SHIM=$T/pub/librudp_shim.so
bg_app nodump setpriv --reuid=65534 --regid=65534 --clear-groups "$NBPY" "$T/nodump.py" "$P3"
NODUMP=$LAST_PID
SHIM=$shim_built
wait_listen "$P3"
i=0
while ! grep -q "@rudp-ctl/$NODUMP/[0-9a-f]\{16\}\$" /proc/net/unix; do
    [ "$i" -lt 100 ] || { show "$T/nodump.log"; fail "process $NODUMP (nobody) has no control socket"; }
    sleep 0.1
    i=$((i + 1))
done
! as_nobody ls "/proc/$NODUMP/fd" >/dev/null 2>&1 ||
    fail "nobody can list /proc/$NODUMP/fd: the name-only search is not what is tested"
start_bg squat setpriv --reuid=65534 --regid=65534 --clear-groups "$NBPY" "$T/squat.py" "$WRK" "$NODUMP"
SQUAT=$LAST_PID
i=0
while ! grep -qx ready "$T/squat.log" 2>/dev/null; do
    kill -0 "$SQUAT" 2>/dev/null || { show "$T/squat.log"; fail "the squatter failed"; }
    [ "$i" -lt 100 ] || fail "the squatter did not bind its names"
    sleep 0.1
    i=$((i + 1))
done
[ "$(grep -c "@rudp-ctl/$NODUMP/" /proc/net/unix)" -ge 33 ] || fail "the lookalike names are not listed"
"$STAT" "$WRK" >"$T/squat-root.out" 2>&1 || { cat "$T/squat-root.out" >&2; fail "root's rudp-stat $WRK fooled by lookalike names"; }
grep -q "^pid $WRK (wrk) " "$T/squat-root.out" || fail "root's rudp-stat $WRK: not wrk's report beside lookalikes"
echo "ok: root's rudp-stat $WRK beside 32 lookalike names"
as_nobody "$T/rudp-stat" "$NODUMP" >"$T/squat-nobody.out" 2>&1 ||
    { cat "$T/squat-nobody.out" >&2; fail "nobody's rudp-stat $NODUMP (by name) fooled by lookalike names"; }
grep -q "^pid $NODUMP (python3) " "$T/squat-nobody.out" ||
    { head -3 "$T/squat-nobody.out" >&2; fail "nobody's rudp-stat $NODUMP: not its report"; }
echo "ok: nobody's rudp-stat $NODUMP, by name alone, beside 32 lookalike names"
kill "$SQUAT" "$NODUMP" 2>/dev/null || true

kill "$WRK" 2>/dev/null || true
wait_exit "$WRK" 20 >/dev/null || true
rc=0
stop_app "$NGINX" 20 QUIT || rc=$?
[ "$rc" = 0 ] || { show "$T/error.log"; fail "nginx exited $rc on SIGQUIT"; }

# ---- (f) a process in another network namespace ----
if can_netns; then
    P3=$(free_port)
    start_bg nsserver unshare -n sh -c "ip link set lo up && LD_PRELOAD='$(app_ldp "$PY")' exec '$PY' -m http.server --bind 127.0.0.1 $P3"
    NSSRV=$LAST_PID
    i=0
    until "$STAT" "$NSSRV" >"$T/ns.out" 2>&1 && grep -q "^LISTEN 127\.0\.0\.1:$P3 " "$T/ns.out"; do
        [ "$i" -lt 100 ] || { cat "$T/ns.out" "$T/nsserver.log" >&2; fail "rudp-stat $NSSRV (another network namespace): no listener on port $P3"; }
        sleep 0.1
        i=$((i + 1))
    done
    [ "$(readlink "/proc/$NSSRV/ns/net")" != "$(readlink /proc/self/ns/net)" ] ||
        fail "the server is not in a network namespace of its own"
    "$STAT" >"$T/ns-all.out" 2>&1 || true
    grep -q "^pid $NSSRV (python3) " "$T/ns-all.out" ||
        { cat "$T/ns-all.out" >&2; fail "rudp-stat without a pid does not list $NSSRV (another network namespace)"; }
    echo "ok: rudp-stat $NSSRV and rudp-stat alone show a server in network namespace $(readlink "/proc/$NSSRV/ns/net")"
    kill "$NSSRV" 2>/dev/null || true
else
    echo "skip: (f) no network namespace can be made here"
fi
"$STAT" $$ >"$T/none.out" 2>&1 && fail "rudp-stat of the test's shell (no shim) succeeded"
grep -q "looked among the listening sockets of its network namespace" "$T/none.out" ||
    { cat "$T/none.out" >&2; fail "rudp-stat of a process without a control socket does not say where it looked"; }
echo "ok: $(cat "$T/none.out")"

# ---- (b) a keeper ----
head -c 2000000 /dev/urandom >"$T/data"
# The reader holds its window at 256 KiB and reads nothing until told, so the
# writer's keeper has data to deliver for as long as this part needs it.
cat >"$T/reader.py" <<'PY'
import os, socket, sys, time
port, go, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(1)
c, _ = l.accept()
for _ in range(1200):
    if os.path.exists(go):
        break
    time.sleep(0.05)
with open(out, "wb") as f:
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        f.write(d)
PY
bg_app reader env RUDP_BUFFER=256K python3 "$T/reader.py" "$P2" "$T/go" "$T/got"
READER=$LAST_PID
wait_listen "$P2"
# The writer queues what the connection takes without blocking (up to
# 2 MB; how much fits depends on buffers the test need not know), says how
# much, and _exit()s.
cat >"$T/writer.py" <<'PY'
import os, socket, sys, time
port, data, sent = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.setblocking(False)
n, stuck = 0, time.monotonic()
while n < len(data) and time.monotonic() - stuck < 0.5:
    try:
        n += s.send(data[n:n + 65536])
        stuck = time.monotonic()
    except BlockingIOError:
        time.sleep(0.01)
open(sent, "w").write(f"{n}\n")
os._exit(0)
PY
bg_app writer python3 "$T/writer.py" "$P2" "$T/data" "$T/sent"
WRITER=$LAST_PID
rc=0; wait_exit "$WRITER" 30 || rc=$?
[ "$rc" = 0 ] || { show "$T/writer.log" "$T/reader.log"; fail "the writer exited $rc (124: still running)"; }
SENT=$(cat "$T/sent")
[ "$SENT" -gt 1000000 ] || fail "the writer queued only $SENT bytes"
# The keeper: a copy of the writer, titled "rudp-keeper: <its command line>".
KEEPER=""
i=0
while [ -z "$KEEPER" ]; do
    for c in $(grep -alF "rudp-keeper: " /proc/[0-9]*/cmdline 2>/dev/null); do
        p=${c#/proc/}; p=${p%/cmdline}
        if grep -qaF "$T/writer.py" "$c" 2>/dev/null; then KEEPER=$p; break; fi
    done
    [ -n "$KEEPER" ] && break
    [ "$i" -lt 100 ] || fail "no keeper process of writer $WRITER"
    sleep 0.1
    i=$((i + 1))
done
PIDS="$PIDS $KEEPER"
i=0
while :; do
    "$STAT" "$KEEPER" >"$T/keeper.out" 2>"$T/keeper.err" || true
    grep -q "^pid $KEEPER (rudp-keeper) engines [0-9]* up [0-9.]*s keeper of pid $WRITER\$" "$T/keeper.out" &&
        grep -Eq "> 127\.0\.0\.1:$P2 id [0-9a-f]{16} " "$T/keeper.out" && break
    [ "$i" -lt 100 ] || { cat "$T/keeper.out" "$T/keeper.err" >&2; fail "rudp-stat $KEEPER: not the keeper's connection"; }
    sleep 0.1
    i=$((i + 1))
done
grep -Eq ' (unacked|unsent) [1-9][0-9]* ' "$T/keeper.out" || { cat "$T/keeper.out" >&2; fail "the keeper's connection has nothing unacknowledged"; }
echo "ok: rudp-stat $KEEPER (keeper of writer $WRITER):"
grep -A1 "127\.0\.0\.1:$P2 id" "$T/keeper.out" | sed 's/^/    /'
touch "$T/go"
rc=0; wait_exit "$READER" 60 || rc=$?
[ "$rc" = 0 ] || { show "$T/reader.log" "$T/keeper.out"; "$STAT" "$KEEPER" >&2 || true; fail "the reader did not finish (status $rc)"; }
head -c "$SENT" "$T/data" >"$T/want"
[ "$(sha "$T/want")" = "$(sha "$T/got")" ] || fail "the reader got $(wc -c <"$T/got") bytes, not the $SENT written"
wait_exit "$KEEPER" 30 >/dev/null 2>&1 || true # not our child: gone (or a zombie) is all it tells
[ -z "$(survivors "$KEEPER")" ] || { "$STAT" "$KEEPER" >&2 || true; fail "keeper $KEEPER still runs 30 s after delivering"; }
PIDS=$(echo " $PIDS " | sed "s/ $KEEPER / /") # gone: its pid is no longer ours to kill
echo "ok: the keeper delivered all $SENT bytes and left"

# (g) A process that ends while a listing waits for it.
P3=$(free_port)
bg_app ending python3 -c "import socket,time
s=socket.socket(); s.bind(('127.0.0.1', $P3)); s.listen(1); time.sleep(120)"
ENDING=$LAST_PID
# its control socket: the engine runs once it listens
i=0
until ss -xlH | grep -q "@rudp-ctl/$ENDING/"; do
    [ "$i" -lt 100 ] || { show "$T/ending.log"; fail "no control socket of process $ENDING"; }
    sleep 0.1
    i=$((i + 1))
done
kill -STOP "$ENDING"
# every thread stopped before the listing starts: a thread busy in the
# kernel stops only on its way out (the listing once got the just-started
# engine's answer, "up 0.0s", after the kill)
i=0
until [ -z "$(for _s in /proc/"$ENDING"/task/*/stat; do sed 's/.*) \(.\).*/\1/' "$_s"; done 2>/dev/null | grep -v T)" ]; do
    [ "$i" -lt 200 ] || fail "process $ENDING did not stop"
    sleep 0.05
    i=$((i + 1))
done
"$STAT" >"$T/list.out" 2>"$T/list.err" &
LISTER=$!
# rudp-stat has connected and waits for the answer: its connection sits in
# the stopped process's accept queue (Recv-Q of the listening socket), at
# least 1 (t_fd_table_own runs this script beside this one, and its
# listing may wait in the same queue). A listing asks processes one at a
# time, each for up to 5 s, and other suites' stopped ones may come first:
# up to 60 s while rudp-stat runs.
i=0
until [ "$(ss -xlH | LC_ALL=C awk -v n="@rudp-ctl/$ENDING/" 'index($5, n) == 1 { q += $3 } END { print q + 0 }')" -ge 1 ]; do
    if [ "$i" -ge 1200 ] || ! kill -0 "$LISTER" 2>/dev/null; then
        ss -xlpH | grep "@rudp-ctl/$ENDING/" >"$T/list.ss" 2>&1
        kill -9 "$ENDING" 2>/dev/null
        rc=0; wait "$LISTER" 2>/dev/null || rc=$?
        show "$T/list.err" "$T/list.out" "$T/list.ss"
        fail "rudp-stat (exit $rc after $i checks) never waited for process $ENDING's answer"
    fi
    sleep 0.05
    i=$((i + 1))
done
kill -9 "$ENDING"
rc=0; wait "$LISTER" || rc=$?
! grep -q "process $ENDING" "$T/list.err" "$T/list.out" ||
    { cat "$T/list.err" >&2; fail "rudp-stat reported process $ENDING, which ended while it waited"; }
[ "$rc" = 0 ] || { cat "$T/list.err" >&2; fail "rudp-stat listing every process exited $rc after one ended meanwhile"; }
wait "$ENDING" 2>/dev/null || true
PIDS=$(echo " $PIDS " | sed "s/ $ENDING / /")
rc=0; "$STAT" "$ENDING" >/dev/null 2>"$T/gone.err" || rc=$?
[ "$rc" = 1 ] && grep -q "no process $ENDING" "$T/gone.err" ||
    { cat "$T/gone.err" >&2; fail "rudp-stat $ENDING (ended) exited $rc"; }
echo "ok: a process that ended while the listing waited for it is left out (exit 0); asked for by its pid, 'no process'"
