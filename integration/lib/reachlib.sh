# Helpers for the supervisor's tests (integration/tests/reach/, issue 35).
# Sourced first, instead of lib.sh (which it sources):
#
#   . "$(dirname "$0")/../../lib/reachlib.sh"
#
# The script is run again in a network namespace of its own (root, unshare
# -n; else "skip:"), where nftables counts, on loopback's output (each
# packet once), TCP segments from or to $PORT (but the shim's own TIME_WAIT
# hand-over, below) and UDP datagrams to it.
#
#   tcp_now, udp_now          those counts so far
#   need_static VAR NAME      VAR=$BIN/NAME_static, tests/NAME.c linked
#                             static: skip without it (no static libc
#                             here: the Makefile fails a build that has
#                             one), fail if it is not static
#   need_supervise            skip unless the supervisor can work here
#                             (rudp-supervise --probe: every kernel part it
#                             needs) and starts (--pass true: both stages)
#   go_program DIR OUT        skip without Go (golang-go); else build the Go
#                             program integration/tests/reach/DIR, static
#                             (CGO_ENABLED=0, offline), to OUT
#   reach_case NAME BYTES ERE CMD...
#                             tests/prog_reach serves one connection on
#                             $PORT under the preloaded shim; CMD is the
#                             client; both must end well, the server having
#                             echoed BYTES and CMD's output matching ERE.
#                             Sets TCP and UDP to the counts it caused and
#                             prints them. SERVE_WITH="CMD..." serves with
#                             "CMD... server PORT" instead.
#   gap NAME SERVED WHAT...   $PROG WHAT... plain, then supervised: the
#                             same output, no TCP supervised (below); each
#                             run stopped after GAP_LIMIT s (60: a hang)

if [ "${REACH_NETNS:-}" != 1 ]; then
    [ "$(id -u)" = 0 ] || { echo "skip: needs root (a network namespace and nftables)"; exit 77; }
    command -v nft >/dev/null 2>&1 || { echo "skip: nft not installed"; exit 77; }
    unshare -n true 2>/dev/null || { echo "skip: cannot make a network namespace here"; exit 77; }
    REACH_NETNS=1 exec unshare -n sh "$0" "$@"
fi
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh" >/dev/null
ip link set lo up

SUP=$TOOLS/rudp-supervise
# rudp-run, as a user starts these programs: it picks the supervisor for a
# static or Go program by itself (t_run_supervise checks the choice). Used
# unquoted (a command and its options).
RUNSUP="$TOOLS/rudp-run --shim $SHIM"
PORT=5000
# These tests count the TCP segments of connections that must be rudp: no
# kernel TCP probe when a handshake is slow on a busy machine, nor for a
# peer that never answers (RUDP_FALLBACK's race, which a supervised program
# has as a preloaded one does since the supervisor relays it).
# t_supervise_features sets RUDP_FALLBACK=tcp where it tests it.
export RUDP_FALLBACK=none
# The shim's own loopback TCP connection that hands a closed listener's
# TIME_WAIT to the kernel at exit (shim/ports/timewait.c: TW_MEET_ADDR),
# from the listener's port, 7 segments: under the preload too, not counted.
TW_MEET=127.82.84.87
need_bin prog_reach
[ -x "$SUP" ] || fail "rudp-supervise not built ($SUP)"

nft -f - <<NFT
table inet reach {
    chain out {
        type filter hook output priority 0;
        ip saddr != $TW_MEET ip daddr != $TW_MEET meta l4proto tcp th dport $PORT counter comment "tcp_dport"
        ip saddr != $TW_MEET ip daddr != $TW_MEET meta l4proto tcp th sport $PORT counter comment "tcp_sport"
        meta l4proto udp th dport $PORT counter comment "udp_dport"
    }
}
NFT
trap 'nft delete table inet reach 2>/dev/null; cleanup' EXIT INT TERM

# counter PROTO DIR: the packets that rule counted so far
counter() {
    nft list chain inet reach out |
        awk -v c="\"$1_$2\"" '$0 ~ c { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}
tcp_now() { echo $(( $(counter tcp dport) + $(counter tcp sport) )); }
udp_now() { counter udp dport; }

# The TCP segments on the port since $3 (tcp_now) into TCP, checked for case
# $1 run $2 (plain: some, the probe works; supervised: none, it was rudp).
tcp_since() {
    TCP=$(( $(tcp_now) - $3 ))
    if [ "$2" = plain ]; then
        [ "$TCP" -gt 0 ] || fail "$1 (plain): no TCP segment counted (probe broken?)"
    else
        [ "$TCP" = 0 ] || fail "$1 ($2): $TCP TCP segments: not rudp"
    fi
}

need_static() {
    _p=$BIN/$2_static
    [ -x "$_p" ] || skip "no static libc here: $_p not built"
    readelf -l "$_p" | grep -q INTERP && fail "$_p is not statically linked"
    eval "$1=\$_p"
}

need_supervise() {
    _e=$(timeout 10 "$SUP" --probe 2>&1) || skip "the supervisor cannot work here: $_e"
    _e=$(timeout 10 "$SUP" --pass true 2>&1) || fail "the supervisor does not start: $_e"
}

go_program() {
    command -v go >/dev/null 2>&1 || skip "no Go toolchain (golang-go)"
    mkdir -p "$ROOT/build/gocache"
    ( cd "$ROOT/integration/tests/reach/$1" &&
      GOCACHE="$ROOT/build/gocache" GOPATH="$T/gopath" GOPROXY=off CGO_ENABLED=0 \
          timeout 300 go build -o "$2" . ) >"$T/gobuild.log" 2>&1 ||
        { show "$T/gobuild.log"; fail "go build of $1 failed"; }
    readelf -l "$2" | grep -q INTERP && fail "the Go program $1 is not static"
    return 0
}

# port_quiet: waits (30 s at most) until no UDP socket and no TCP listener
# is on $PORT. The case before may have left a serving process there: a
# supervised program's engine outlives the program until its connections
# have delivered (the keeper), holding the port's UDP socket and its
# listener's TCP one. Without this wait, wait_udp took that old socket for
# the next server's, and its client met an engine with no listener
# ("connection refused"), and a plain program's bind of the port met the
# old TCP socket (EADDRINUSE): as after a preloaded program's keeper, the
# kernel's own bind knows nothing of our handover (docs/limits.md).
port_quiet() {
    _i=0
    while [ "$_i" -lt 600 ]; do
        # ss lists neither a keeper's TCP socket that holds a listener's
        # port through TIME_WAIT (bound, not listening) nor a bind's
        # refusal: a server's own bind of the port (SO_REUSEADDR) is tried
        [ -z "$(ss -H -n -ua "sport = :$PORT" 2>/dev/null)$(ss -H -n -tl "sport = :$PORT" 2>/dev/null)" ] &&
            "$PY" -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$PORT" 2>/dev/null &&
            return 0
        sleep 0.05
        _i=$((_i + 1))
    done
    ss -H -n -uap "sport = :$PORT"
    ss -H -n -tlp "sport = :$PORT"
    # what a keeper there still carries, its connections first
    for _p in $(ss -H -n -uap "sport = :$PORT" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | sort -u); do
        "$TOOLS/rudp-stat" "$_p" 2>&1 | head -8
    done
    fail "port $PORT still held 30 s after the case before"
}

reach_case() {
    _name=$1 _bytes=$2 _ere=$3; shift 3
    port_quiet
    if [ -n "${SERVE_WITH:-}" ]; then
        # shellcheck disable=SC2086 # a command and its words
        start_bg "$_name.server" $SERVE_WITH server "$PORT"
    else
        start_bg "$_name.server" under_shim "$BIN/prog_reach" server "$PORT"
    fi
    _srv=$LAST_PID
    wait_udp "$PORT"
    _t0=$(tcp_now) _u0=$(udp_now)
    timeout 60 "$@" >"$T/$_name.client" 2>&1 ||
        { show "$T/$_name.client" "$T/$_name.server.log"; fail "$_name: client failed"; }
    wait_exit "$_srv" 30 || { show "$T/$_name.server.log"; fail "$_name: server failed"; }
    # a client that outlives the command (orphan: the program's child,
    # served after the program ended) prints its line a moment after the
    # server has echoed the last byte: waited for, at most 10 s
    _i=0
    until grep -Eq "$_ere" "$T/$_name.client" || [ "$_i" -ge 200 ]; do
        sleep 0.05
        _i=$((_i + 1))
    done
    grep -Eq "$_ere" "$T/$_name.client" || { show "$T/$_name.client"; fail "$_name: no echo"; }
    grep -qx "served $_bytes" "$T/$_name.server.log" ||
        { show "$T/$_name.server.log"; fail "$_name: the server did not echo $_bytes bytes"; }
    TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
    echo "$_name: $_bytes bytes echoed; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
}

# gap NAME SERVED WHAT...: prog_reach serves SERVED connections (0: none,
# the case serves itself), $PROG WHAT... runs plain, then supervised
# ($SUP); both must succeed and print the same; supervised, no TCP.
gap() {
    _name=$1 _count=$2; shift 2
    for _how in plain supervised; do
        port_quiet
        _srv=
        if [ "$_count" -gt 0 ]; then
            start_bg "$_name.$_how.server" under_shim "$BIN/prog_reach" server "$PORT" "$_count"
            _srv=$LAST_PID
            wait_udp "$PORT"
        fi
        _sup=
        [ "$_how" = supervised ] && _sup=$SUP
        _t0=$(tcp_now)
        timeout "${GAP_LIMIT:-60}" $_sup "$PROG" "$@" >"$T/$_name.$_how" 2>&1 ||
            { show "$T/$_name.$_how"; [ -z "$_srv" ] || show "$T/$_name.$_how.server.log"
              fail "$_name ($_how): the program failed"; }
        if [ -n "$_srv" ]; then
            wait_exit "$_srv" 30 || { show "$T/$_name.$_how.server.log"; fail "$_name ($_how): the server failed"; }
        fi
        _tcp=$(( $(tcp_now) - _t0 ))
        if [ "$_how" = plain ]; then
            [ "$_tcp" -gt 0 ] || fail "$_name (plain): no TCP segment counted (probe broken?)"
        else
            [ "$_tcp" = 0 ] || fail "$_name (supervised): $_tcp TCP segments: not rudp"
        fi
    done
    cmp -s "$T/$_name.plain" "$T/$_name.supervised" ||
        { echo "plain:"; cat "$T/$_name.plain"; echo "supervised:"; cat "$T/$_name.supervised"
          fail "$_name: the supervised program tells a difference"; }
    echo "$_name: $(tail -1 "$T/$_name.supervised") (plain and supervised alike, 0 TCP supervised)"
}

# same_checks PLAIN SUPERVISED [SED_SCRIPT]: the "ok:" lines of a test
# program's output over kernel TCP (file PLAIN) and under the supervisor
# (SUPERVISED) are the same (SED_SCRIPT applied to both first: what the
# kernel picks, a time), and every supervised connection is a bridge;
# prints them and their count. SAME_SORTED=1: as sets (lines that
# processes of the program print concurrently come in either order).
same_checks() {
    _p=$1 _s=$2 _sed=${3:-}
    for _f in "$_p" "$_s"; do
        grep '^ok:' "$_f" | sed -e "$_sed" >"$_f.ok"
        if [ -n "${SAME_SORTED:-}" ]; then
            sort "$_f.ok" >"$_f.sorted" && mv "$_f.sorted" "$_f.ok"
        fi
    done
    [ -s "$_p.ok" ] || { show "$_p"; fail "plain: no ok line"; }
    cmp -s "$_p.ok" "$_s.ok" ||
        { echo "plain:"; cat "$_p.ok"; echo "supervised:"; cat "$_s.ok"
          fail "the supervised program tells a difference"; }
    # a program that prints no transport line (plain) has none to check
    if grep -q '^transport:' "$_p"; then
        grep -q '^transport:' "$_s" || { show "$_s"; fail "no transport line"; }
    fi
    grep '^transport:' "$_s" | grep -q 'tcp' &&
        { show "$_s"; fail "supervised: a connection is kernel TCP, not a bridge"; }
    cat "$_s.ok"
    echo "$(wc -l <"$_s.ok") checks alike, plain and supervised; every supervised connection a bridge"
}
