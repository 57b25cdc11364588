#!/bin/sh
# tests/prog_apprecv.c over kernel TCP, then under the shim with the app
# thread's receive on (RUDP_APP_RECV=1, shim/engine/apprecv.c): echoes
# read after read(), after poll() (interpose/poll.c), after epoll_wait()
# (interpose/epoll.c) and after select() (interpose/select.c), a poll() and
# an epoll_wait() left by a signal
# (EINTR, SA_RESTART or not), a blocking
# reader whose read is left by a signal (SA_RESTART: the read goes on;
# without: EINTR), a siglongjmp or a pthread_cancel (the connection is
# still served: what the peer sends is delivered with nobody reading), a
# reader stopped alone by a tracer (delivered all the same, and a second
# connection's echoes go on meanwhile), a fork while a thread reads, and a new image that sandboxes itself with
# seccomp against the calls the path makes (it must not die of them).
# Under the shim the path must have been taken (RUDP_STATS: "app-thread
# receives"), reads must have had their bytes straight from the
# connection (no bridge between), and a reader cancelled in its wait, and
# one stopped there, must have had its socket taken back by the engine
# (the lease). Reads after a poll must have taken bytes kept for them in
# the connection, and bytes kept for stdio's read (which the shim does
# not see) must have been passed on into the bridge unread ("kept for the
# read after a poll").
# Then under a seccomp filter the processes started under (as in any
# container): one refusing process_vm_readv keeps the paths off, one of
# Docker's defaults (build/progs/dockerlike) has them on; and epoll waits
# under one refusing epoll_pwait2.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
# The engine in the program's fd table whatever the hard fd limit here: this
# tests the app threads' own receive, which an engine with a table of its own
# does not take (RUDP_FD_TABLE).
export RUDP_FD_TABLE=shared

need_bin prog_apprecv
rc=0
timeout -k 5 120 "$BIN/prog_apprecv" >"$T/tcp" 2>&1 || rc=$?
sed 's/^/tcp:  /' "$T/tcp"
[ "$rc" = 0 ] || fail "prog_apprecv over kernel TCP exited $rc"

RUDP_APP_RECV=1 RUDP_STATS=1 run_app_t 120 "$BIN/prog_apprecv" >"$T/shim" 2>"$T/stats" || rc=$?
sed 's/^/shim: /' "$T/shim"
[ "$rc" = 0 ] || { show "$T/stats"; fail "prog_apprecv under the shim exited $rc"; }
assert_transport "$T/shim"
# most LINE KEY: of the stats lines holding LINE, the one whose number
# after KEY is the largest (the parent's figures: its children print theirs)
most() {
    grep -a "$1" "$T/stats" |
        awk -v k="$2" '{ n = $0; sub(".*" k, "", n); sub(/[ ,].*/, "", n);
                         if (n + 0 >= best) { best = n + 0; l = $0 } } END { print l }'
}
# field LINE RE: the number RE's \(...\) picks out of LINE (sed)
field() { printf '%s\n' "$1" | sed -n "s/$2/\\1/p"; }
# pick LINE KEY WHY: most's line into $picked, shown, or fail WHY
pick() {
    picked=$(most "$1" "$2")
    [ -n "$picked" ] || { show "$T/stats"; fail "$3"; }
    echo "shim: $picked"
}
pick 'app-thread receives:' 'took the datagram ' "no app-thread receive under RUDP_APP_RECV=1"
line=$picked
took=$(field "$line" '.*took the datagram \([0-9]*\) .*')
polls=$(field "$line" '.*in poll or ppoll \([0-9]*\),.*')
epolls=$(field "$line" '.*in epoll \([0-9]*\),.*')
selects=$(field "$line" '.*in select \([0-9]*\);.*')
direct=$(field "$line" ".*straight into the reader's buffer \\([0-9]*\\)).*")
lapsed=$(field "$line" '.*jumped out) \([0-9]*\).*')
[ "${took:-0}" -ge 3000 ] || fail "the reading thread took only ${took:-0} datagrams of 6,400 echoes"
[ "${polls:-0}" -ge 1000 ] || fail "the polling thread took only ${polls:-0} datagrams of 2,200 echoes"
[ "${epolls:-0}" -ge 1000 ] || fail "the epoll thread took only ${epolls:-0} datagrams of 2,200 echoes"
[ "${selects:-0}" -ge 500 ] || fail "the select thread took only ${selects:-0} datagrams of 1,200 echoes"
[ "${direct:-0}" -ge 1000 ] || fail "only ${direct:-0} reads had their bytes straight from the connection (2,000 one-byte echoes, 400 more in check_direct)"
[ "${lapsed:-0}" -ge 1 ] || fail "no wait was taken back by its lease (the cancelled reader's)"
pick 'kept for the read after a poll:' 'keeps ' "no bytes kept for a read after a poll"
kline=$picked
keeps=$(field "$kline" '.*keeps \([0-9]*\),.*')
taken=$(field "$kline" '.*reads that took them \([0-9]*\),.*')
late=$(field "$kline" '.*into the bridge unread \([0-9]*\).*')
[ "${taken:-0}" -ge 1000 ] || fail "only ${taken:-0} reads took bytes kept for them after a poll (of ${keeps:-0} keeps; 2,200 echoes in pollpong)"
[ "${late:-0}" -ge 1 ] || fail "no kept bytes were passed on into the bridge unread (stdio's reads after a poll)"
waits="the cancelled reader's wait"
if grep -q '^ok: stopped' "$T/shim"; then
    [ "$lapsed" -ge 2 ] || fail "only $lapsed wait taken back by its lease: the stopped reader's was not"
    waits="the cancelled and the stopped readers' waits"
fi
echo "ok: the path was taken ($took, $polls of them in poll, $epolls in epoll, $selects in select; $direct straight into the reader's buffer; $taken reads took bytes kept after a poll, $late keeps passed on unread), and $waits taken back ($lapsed)"

# A filter the process started under (inherited over exec: a container's
# profile, a systemd unit's SystemCallFilter=) binds the engines too; the
# first question asks a child whether it allows the paths' own calls
# (shim/base/sandbox.c). One that refuses process_vm_readv: the paths stay
# off, said at info, and 300 echoes go through the engines at both ends.
# (Under Docker's default profile, which allows them, the whole test above
# passes: build/progs/dockerlike.)
need_bin prog_refuse
need_bin rr
P=$(free_port)
env LD_PRELOAD="$(shim_preload)" RUDP_APP_RECV=1 RUDP_LOG=info RUDP_STATS=1 timeout 60 \
    "$BIN/prog_refuse" process_vm_readv "$BIN/rr" server --port "$P" --bind 127.0.0.1 --once \
    </dev/null >"$T/rsrv.out" 2>"$T/rsrv.log" &
rsrv=$!
wait_udp "$P"
rc=0
env LD_PRELOAD="$(shim_preload)" RUDP_APP_RECV=1 RUDP_LOG=info RUDP_STATS=1 timeout 60 \
    "$BIN/prog_refuse" process_vm_readv "$BIN/rr" client --to 127.0.0.1 --port "$P" --size 1 \
    --count 300 --warmup 0 </dev/null >"$T/rcli.out" 2>"$T/rcli.log" || rc=$?
wait "$rsrv" || { show "$T/rsrv.log"; fail "rr server under a filter refusing process_vm_readv failed"; }
[ "$rc" = 0 ] || { show "$T/rcli.log"; fail "rr client under a filter refusing process_vm_readv exited $rc"; }
grep -q '^count=300 ' "$T/rcli.out" || { show "$T/rcli.out"; fail "rr client: not 300 round trips"; }
for side in rsrv rcli; do
    grep -q 'may not allow the app threads.* (process_vm_readv refused)' "$T/$side.log" ||
        { show "$T/$side.log"; fail "$side: no line saying the inherited filter keeps the paths off"; }
    ! grep -Eq 'app-thread (receives|sends): [a-z -]* [1-9]' "$T/$side.log" ||
        { show "$T/$side.log"; fail "$side: an app-thread path was taken under a filter refusing its calls"; }
done
echo "ok: under an inherited filter refusing process_vm_readv both ends said so, took no app-thread path, and carried 300 echoes"

# ... and one that allows them, as Docker's default profile does (both
# ends under build/progs/dockerlike: its capabilities and seccomp filter):
# the paths are on, said, and taken.
need_bin dockerlike
if dl=$("$BIN/dockerlike" true 2>&1); then
    P=$(free_port)
    env LD_PRELOAD="$(shim_preload)" RUDP_APP_RECV=1 RUDP_LOG=info RUDP_STATS=1 timeout 60 \
        "$BIN/dockerlike" "$BIN/rr" server --port "$P" --bind 127.0.0.1 --once \
        </dev/null >"$T/dsrv.out" 2>"$T/dsrv.log" &
    dsrv=$!
    wait_udp "$P"
    rc=0
    env LD_PRELOAD="$(shim_preload)" RUDP_APP_RECV=1 RUDP_LOG=info RUDP_STATS=1 timeout 60 \
        "$BIN/dockerlike" "$BIN/rr" client --to 127.0.0.1 --port "$P" --size 1 --count 300 \
        --warmup 0 </dev/null >"$T/dcli.out" 2>"$T/dcli.log" || rc=$?
    wait "$dsrv" || { show "$T/dsrv.log"; fail "rr server as in a container failed"; }
    [ "$rc" = 0 ] || { show "$T/dcli.log"; fail "rr client as in a container exited $rc"; }
    for side in dsrv dcli; do
        grep -q 'allows the calls of the app threads. own paths: they are on' "$T/$side.log" ||
            { show "$T/$side.log"; fail "$side: as in a container, no line saying the paths are on"; }
        grep -Eq 'app-thread receives: [a-z -]* [1-9]' "$T/$side.log" ||
            { show "$T/$side.log"; fail "$side: as in a container, no app-thread receive"; }
    done
    echo "ok: as in a container of Docker's defaults both ends said the paths are on and took them"
else
    # not root, or already in a container: no filter of its own to add
    echo "skip: as in a container: build/progs/dockerlike cannot run here: $dl"
fi

# epoll_wait's rest, once the path's own wait has seen nothing for 50 ms,
# is the kernel's epoll_pwait2 with the time left (interpose/epoll.c):
# where the kernel has none (before Linux 5.11) or a profile older than it
# refuses it (EPERM), the program's epoll_wait must still be answered, by
# epoll_pwait, as the engines wait there. Both ends in one python under a
# filter refusing epoll_pwait2: an epoll wait of 300 ms with nothing says
# nothing after 300 ms; one whose byte comes 150 ms in gets it.
cat >"$T/pw2.py" <<'PY'
import select, socket, threading, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
c.sendall(b"x"); assert a.recv(1) == b"x"
ep = select.epoll(); ep.register(a.fileno(), select.EPOLLIN)
t0 = time.monotonic(); got = ep.poll(0.3); took = time.monotonic() - t0
assert got == [] and took >= 0.29, (got, took)
threading.Timer(0.15, lambda: c.sendall(b"y")).start()
got = ep.poll(2.0)
assert got and got[0][0] == a.fileno() and a.recv(1) == b"y", got
print("ok: epoll waits past the path's own, without epoll_pwait2")
PY
rc=0
env LD_PRELOAD="$(shim_preload)" RUDP_APP_RECV=1 timeout 60 "$BIN/prog_refuse" epoll_pwait2 \
    python3 "$T/pw2.py" >"$T/pw2.out" 2>&1 || rc=$?
cat "$T/pw2.out"
[ "$rc" = 0 ] || fail "epoll waits under a filter refusing epoll_pwait2: python exited $rc"
