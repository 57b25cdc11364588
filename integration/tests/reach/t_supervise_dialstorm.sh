#!/bin/sh
# Go's dial storm (TestTCPSpuriousConnSetupCompletion: 10,000 dials with
# short timeouts, against a listener that closes at the end) under rudp-run
# at a low descriptor limit (issue 43, finding 4). The supervisor's fds (a
# pidfd, a copy of the program's socket, the engine's UDP socket and
# bridge) run short there: its connects once went over kernel TCP with no
# line and no counter, with a key too. tests/prog_dialstorm.c, static, is
# the program (the same shape as Go's test; one process listens and dials),
# run in two shapes: Go's (its test at GOMAXPROCS 2: 4 dials at a time)
# at ulimit -n 256, where the supervisor's reserve and its wait for fds
# carry every connect over rudp here (not asserted: a busy machine may
# not); and 5,000 dials 32 at a time at ulimit -n 128, past what they can
# do, so that connects must go the announced way.
#   1. without a key (RUDP_FALLBACK's default, tcp): every kernel TCP SYN
#      on the port is a connect the supervisor counted (RUDP_STATS: its
#      line, and the fallback's tries), and a warn line said it;
#   2. with a key (RUDP_FALLBACK=none, the keyed default): no kernel TCP
#      SYN at all; connects it could not carry failed with ENOBUFS, said
#      at warn and counted;
#   3. in Go's shape, no dial refused or reset but those that race with the
#      listener's close (at most one per dialer), as over kernel TCP: an
#      accepted connection the engine has no fd for waits for one
#      (bridge.c), it is not reset;
#   4. keyed, past the fds, on a kernel before 6.9 (tests/prog_oldkernel's
#      filter, as t_supervise_oldkernel): the dialing threads' fds are
#      reached through /proc and their group's pidfd, and /proc's open
#      short of fds once read as the thread gone, the call continued: 4,226
#      kernel TCP SYNs in 5,000 dials. As 2.
# A SYN is counted by nftables on loopback's output in this test's own
# network namespace (reachlib.sh), the shim's TIME_WAIT hand-over aside.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_static PROG prog_dialstorm
need_supervise

MS=50
# The engine's budget for a handshake (RUDP_CONNECT_TIMEOUT, 30 s by
# default): a dial gives up after $MS ms, but the engine goes on with a
# connect whose SYN nobody answers (the last ones, to the closed listener)
# until this runs out, and the serving process (a keeper by then) holds
# $PORT that long: the next case's port_quiet waited ~24 s for it. 5 s is
# still 100 times a dial's wait and past RUDP_SLOW_CONNECT's 3 s.
CONNECT_TIMEOUT=5s

nft -f - <<NFT
table inet storm {
    chain out {
        type filter hook output priority 0;
        ip saddr != $TW_MEET ip daddr != $TW_MEET tcp dport $PORT tcp flags & (syn | ack) == syn counter comment "syn"
    }
}
NFT
syn_now() {
    nft list chain inet storm out | awk '/"syn"/ { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }'
}

# storm NAME CONC NOFILE [DIALS]: the dials (10,000), CONC at a time, under rudp-run at
# `ulimit -n NOFILE`, the
# supervisor's counters (RUDP_STATS) into $T/NAME.err; sets SYN (kernel TCP
# SYNs it caused), ESC_TCP and ESC_FAILED (the supervisor's line), FB (the
# fallback's kernel TCP tries: rudp refused or unanswered).
storm() {
    CONC=$2 NOFILE=$3 DIALS=${4:-10000}
    port_quiet
    _s0=$(syn_now)
    # shellcheck disable=SC2086 # $RUNSUP: rudp-run and its options
    ( ulimit -n "$NOFILE" && RUDP_STATS=1 RUDP_CONNECT_TIMEOUT=$CONNECT_TIMEOUT \
        exec timeout 120 $RUNSUP "$PROG" "$PORT" $DIALS $CONC $MS ) \
        >"$T/$1.out" 2>"$T/$1.err" || { show "$T/$1.out" "$T/$1.err"; fail "$1: the program failed"; }
    grep -q "^dials $DIALS " "$T/$1.out" || { show "$T/$1.out"; fail "$1: no result line"; }
    # The serving process prints its counters when it ends, after the
    # program, in one block (enginestats.c): the supervisor's line is in it,
    # or nothing was counted (0 below).
    wait_line "$T/$1.err" "^  udp: datagrams sent" 60 ||
        { show "$T/$1.err"; fail "$1: no counters from the supervisor (RUDP_STATS)"; }
    SYN=$(( $(syn_now) - _s0 ))
    _l=$(grep -a -m1 "rudp-supervise: connects it could not carry" "$T/$1.err" || true)
    ESC_TCP=$(echo "$_l" | sed -n 's/.*over kernel TCP \([0-9]*\),.*/\1/p' | grep . || echo 0)
    ESC_FAILED=$(echo "$_l" | sed -n 's/.*failed with ENOBUFS \([0-9]*\);.*/\1/p' | grep . || echo 0)
    _f=$(grep -a -m1 "fallback to kernel TCP: connects" "$T/$1.err" || true)
    FB=$(( $(echo "$_f" | sed -n 's/.*rudp refused \([0-9]*\),.*/\1/p' | grep . || echo 0) +
           $(echo "$_f" | sed -n 's/.*unanswered \([0-9]*\)).*/\1/p' | grep . || echo 0) ))
    echo "$1: $(cat "$T/$1.out")"
    echo "$1: kernel TCP SYNs $SYN; the supervisor sent $ESC_TCP over kernel TCP and failed $ESC_FAILED (ENOBUFS); the fallback tried kernel TCP $FB times"
}

# nokey NAME CONC NOFILE: kernel TCP only as the fallback goes, said and
# counted
nokey() {
    storm "$@"
    [ "$SYN" -le $((ESC_TCP + FB)) ] ||
        { show "$T/$1.err"; fail "$1: $SYN kernel TCP SYNs, $((ESC_TCP + FB)) counted: connects left rudp unannounced"; }
    if [ "$ESC_TCP" -gt 0 ]; then
        grep -aq "rudp-supervise: connect to 127.0.0.1:$PORT: over kernel TCP, not rudp: no file descriptor left" "$T/$1.err" ||
            { show "$T/$1.err"; fail "$1: $ESC_TCP connects over kernel TCP, no warn line"; }
    fi
    [ "$ESC_FAILED" = 0 ] || fail "$1: $ESC_FAILED connects failed where the fallback is on"
}

# keyed NAME CONC NOFILE: never kernel TCP; ENOBUFS, said and counted
keyed() {
    storm "$@"
    [ "$SYN" = 0 ] || { show "$T/$1.err"; fail "$1: $SYN kernel TCP SYNs: a keyed connect left rudp"; }
    [ "$ESC_TCP" = 0 ] || fail "$1: the supervisor counted $ESC_TCP connects over kernel TCP"
    if [ "$ESC_FAILED" -gt 0 ]; then
        grep -aq "rudp-supervise: connect to 127.0.0.1:$PORT: failed (ENOBUFS), not sent over kernel TCP.*no file descriptor left in rudp-supervise (EMFILE)" "$T/$1.err" ||
            { show "$T/$1.err"; fail "$1: $ESC_FAILED connects failed, no warn line"; }
        grep -Eq " connect:ENOBUFS=$ESC_FAILED( |\$)" "$T/$1.out" ||
            { show "$T/$1.out"; fail "$1: the program did not get ENOBUFS $ESC_FAILED times"; }
    fi
}

# go_refused NAME: check 3
go_refused() {
    _r=$(sed -n 's/.* refused \([0-9]*\) .*/\1/p' "$T/$1.out")
    [ "${_r:-x}" -le "$CONC" ] 2>/dev/null ||
        { show "$T/$1.out"; fail "$1: $_r dials refused or reset (TCP: at most $CONC, racing the close)"; }
}

unset RUDP_FALLBACK RUDP_KEY_FILE
nokey nokey_go 4 256
go_refused nokey_go
nokey nokey_past 32 128 5000
[ "$ESC_TCP" -gt 0 ] ||
    echo "note: nokey_past: no connect went past the supervisor's fds: the announced way was not exercised"

umask 077
"$TOOLS/rudp-run" --genkey >"$T/key" 2>/dev/null || fail "rudp-run --genkey"
export RUDP_KEY_FILE="$T/key"
keyed keyed_go 4 256
go_refused keyed_go
keyed keyed_past 32 128 5000
[ "$ESC_FAILED" -gt 0 ] ||
    echo "note: keyed_past: no connect went past the supervisor's fds: ENOBUFS was not exercised"
if [ -x "$BIN/prog_oldkernel" ] && "$BIN/prog_oldkernel" --check >"$T/oldcheck" 2>&1; then
    _runsup=$RUNSUP
    RUNSUP="$BIN/prog_oldkernel $RUNSUP"
    keyed keyed_old 32 128 5000
    RUNSUP=$_runsup
    [ "$ESC_FAILED" -gt 0 ] ||
        echo "note: keyed_old: no connect went past the supervisor's fds: ENOBUFS was not exercised"
else
    echo "skip: keyed_old: no seccomp filter to play a kernel before 6.9 here ($(head -1 "$T/oldcheck" 2>/dev/null))"
fi
echo "ok"
