#!/bin/sh
# Benchmarks: rudp (both ends under the shim) against kernel TCP cubic and bbr
# (no shim), over the same emulated link (integration/emu) in the same run.
# `make bench` runs this after installing the `bench` group and building.
#
#   B1-B4  bulk goodput at the receiver (bulk.c, a -> b), 100 Mbit/s:
#          B1 10 ms RTT no loss, B2 40 ms 1 %, B3 40 ms 5 %, B4 100 ms 2 %
#   B5     1000 sequential 100-byte echoes (rr), 40 ms RTT, 1 % loss
#   B6     loopback, no emulator: bulk throughput, 1-byte ping-pong round trip
#   B7     one rudp flow and one kernel TCP cubic flow sharing B1's link
#
# Loss and delay apply in both directions (data and acknowledgements). Every
# figure is the median of BENCH_RUNS runs; run r uses linkemu seed r for all
# transports, so they meet the same loss positions by packet index.
#
# Environment:
#   BENCH_RUNS=3          runs per figure
#   BENCH_ONLY=B1,...,B7  scenarios to run (e.g. BENCH_ONLY=B2,B5)
#   BENCH_TIME=15         seconds per bulk run (B1-B4)
#   BENCH_LO_TIME=3       seconds per loopback bulk run (B6)
#   BENCH_FAIR_TIME=15    seconds per fairness run (B7)
#   BENCH_RR_COUNT=1000   echoes per B5 run; BENCH_PING_COUNT=10000 for B6
#   BENCH_CC="newreno"    rudp controllers (default: every one RUDP_CC accepts
#                         of newreno, cubic, bbr)
#   BENCH_OUT=build/bench results.tsv, meta.tsv, table.txt, bench.png, logs/
#   BENCH_COMMIT=TEXT     what to print as the commit when not in a git checkout
#
# Output: the table on stdout (and in table.txt), progress on stderr.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/integration/emu/netns.sh"

RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-B1,B2,B3,B4,B5,B6,B7}
TIME=${BENCH_TIME:-15}
LO_TIME=${BENCH_LO_TIME:-3}
FAIR_TIME=${BENCH_FAIR_TIME:-15}
RR_COUNT=${BENCH_RR_COUNT:-1000}
PING_COUNT=${BENCH_PING_COUNT:-10000}
OUT=${BENCH_OUT:-$BUILD/bench}
REPORT="python3 $ROOT/integration/bench/report.py"
LINK=100

command -v gnuplot >/dev/null || fail "gnuplot not installed (integration/deps.sh bench)"
command -v python3 >/dev/null || fail "python3 not installed (integration/deps.sh bench)"
[ -x "$BIN/rr" ] && [ -x "$BIN/bulk" ] || fail "$BIN/rr or $BIN/bulk not built (make)"
[ -f "$SHIM" ] || fail "shim not built: $SHIM"
[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
LDP=$(shim_preload)

if [ -z "${BENCH_CC:-}" ]; then
    BENCH_CC=""
    for cc in newreno cubic bbr; do
        if env LD_PRELOAD="$LDP" RUDP_CC="$cc" true 2>/dev/null; then BENCH_CC="$BENCH_CC $cc"; fi
    done
fi
TRS="tcp-cubic"
grep -qw bbr /proc/sys/net/ipv4/tcp_available_congestion_control && TRS="$TRS tcp-bbr"
for cc in $BENCH_CC; do TRS="$TRS rudp-$cc"; done
RUDP_TRS=""
for cc in $BENCH_CC; do RUDP_TRS="$RUDP_TRS rudp-$cc"; done

mkdir -p "$OUT"
rm -rf "$OUT/logs" "$OUT/emu"
mkdir -p "$OUT/logs"
LOGS=$OUT/logs
# The emulator's logs and counters go with ours, not into lib.sh's $T.
mkdir -p "$OUT/emu"
EMU_DIR=$OUT/emu
RES=$OUT/results.tsv
META=$OUT/meta.tsv
printf '# scenario\ttransport\trun\tmetric\tvalue\n' >"$RES"
: >"$META"
meta() { printf '%s\t%s\n' "$1" "$2" >>"$META"; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$RES"; }
say() { echo "bench: $(date +%T) $*" >&2; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
calc() { awk "BEGIN { v = $1; printf \"%.4f\", v }" 2>/dev/null || echo NA; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
meta machine "$(nproc) vCPU ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
meta kernel "$(uname -r)"
if rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
    git -C "$ROOT" diff --quiet HEAD -- core shim 2>/dev/null || rev="$rev (core/ or shim/ modified)"
else
    rev="${BENCH_COMMIT:-not a git checkout}"
fi
meta commit "$rev"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta runs "$RUNS"
meta link_mbit "$LINK"
meta title "median of $RUNS runs, $(date -u +%Y-%m-%d)"
LOAD0=$(loadavg)
START=$(date +%s)
say "transports:$TRS; runs $RUNS; scenarios $ONLY; results in $OUT"

# Links (each direction): delay = RTT/2, queue = one bandwidth-delay product.
SPEC_B1="delay=5,rate=100,queue=125k"
SPEC_B2="delay=20,loss=1,rate=100,queue=500k"
SPEC_B3="delay=20,loss=5,rate=100,queue=500k"
SPEC_B4="delay=50,loss=2,rate=100,queue=1250k"
SPEC_B5=$SPEC_B2
meta desc_B1 "bulk, 100 Mbit/s, 10 ms RTT, no loss, queue 125 kB each way; ${TIME} s runs"
meta desc_B2 "bulk, 100 Mbit/s, 40 ms RTT, 1% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B3 "bulk, 100 Mbit/s, 40 ms RTT, 5% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B4 "bulk, 100 Mbit/s, 100 ms RTT, 2% loss both ways, queue 1.25 MB; ${TIME} s runs"
meta desc_B5 "$RR_COUNT sequential 100-byte echoes, 40 ms RTT, 1% loss both ways (all transports at once on one link)"
meta desc_B6 "loopback 127.0.0.1, no emulator: bulk ${LO_TIME} s; 1-byte ping-pong x $PING_COUNT"
meta desc_B7 "B1's link shared ${FAIR_TIME} s: one rudp flow + one kernel TCP cubic flow started together"
meta rtt_B5 40
meta note1 "Mbit/s: bytes the receiving application read in the first N s after accept (bulk.c), slow start included; the 100 Mbit/s link counts IP bytes, so ~96.5 is the payload ceiling for both (1448/1500 TCP, ~1378/1428 rudp)."
meta note2 "retx%: sender's retransmitted / first-sent bytes (rudp: RUDP_STATS; tcp: TCP_INFO bytes_retrans). loss%: linkemu's random drops a->b in the run. B5: nearest-rank percentiles of the 1000 round trips."

# ---------------------------------------------------------------- helpers

# nsx NS TR SECS CMD...: exec CMD in namespace NS, bounded by SECS, with
# transport TR's environment (rudp-CC: the shim preloaded, RUDP_CC=CC,
# RUDP_STATS=1; tcp-*: nothing). Replaces the calling (sub)shell.
nsx() {
    _ns=$1 _tr=$2 _secs=$3
    shift 3
    case "$_tr" in
        rudp-*) exec ip netns exec "$_ns" timeout -k 5 "$_secs" env LD_PRELOAD="$LDP" \
            RUDP_STATS=1 RUDP_CC="${_tr#rudp-}" "$@" ;;
        *) exec ip netns exec "$_ns" timeout -k 5 "$_secs" "$@" ;;
    esac
}

# srv NS TR SECS LOG CMD...: nsx in the background; emu_down (and the EXIT
# trap) kill it by PID. Sets SRV.
srv() {
    _ns=$1 _tr=$2 _secs=$3 _log=$4
    shift 4
    (nsx "$_ns" "$_tr" "$_secs" "$@") >"$_log" 2>&1 &
    SRV=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $SRV"
    PIDS="$PIDS $SRV"
}

# wait_port NS TR PORT: until the server listens (a UDP socket under the
# shim, a TCP listener without it).
wait_port() {
    _i=0
    while [ "$_i" -lt 200 ]; do
        case "$2" in
            rudp-*) ip netns exec "$1" ss -H -n -ua "sport = :$3" 2>/dev/null | grep -q . && return 0 ;;
            *) ip netns exec "$1" ss -H -n -tl "sport = :$3" 2>/dev/null | grep -q . && return 0 ;;
        esac
        sleep 0.05
        _i=$((_i + 1))
    done
    say "nothing listening on port $3 in $1 after 10 s"
    return 1
}

# reap PID [SECS]: wait (bounded, default 15 s) for a background job to
# exit by itself, then stop it.
reap() {
    _i=0
    while kill -0 "$1" 2>/dev/null && [ "$_i" -lt $((${2:-15} * 20)) ]; do
        sleep 0.05
        _i=$((_i + 1))
    done
    emu__kill_pid "$1"
}

# Rotates the transport list by N, so no transport always runs first.
rotate() {
    _n=$1
    shift
    _k=$(($_n % $#))
    while [ "$_k" -gt 0 ]; do
        _f=$1
        shift
        set -- "$@" "$_f"
        _k=$((_k - 1))
    done
    echo "$@"
}

cc_opt() { case "$1" in tcp-*) echo "--cc ${1#tcp-}" ;; esac; }

# bulk_run SC RUN TR NS_RECV ADDR PORT SECS LOG: one bulk transfer from
# namespace a (or the same namespace for loopback) to NS_RECV: the receiver
# counts what its application got in SECS seconds from accept. Sets G (Mbit/s
# or NA) and leaves the sender's line in LOG.send.
bulk_run() {
    _sc=$1 _run=$2 _tr=$3 _nsr=$4 _addr=$5 _port=$6 _secs=$7 _l=$8
    G=NA
    # shellcheck disable=SC2046
    srv "$_nsr" "$_tr" $((_secs + 60)) "$_l.recv" "$BIN/bulk" recv --port "$_port" \
        --time "$_secs" --once $(cc_opt "$_tr")
    _spid=$SRV
    if ! wait_port "$_nsr" "$_tr" "$_port"; then
        emu__kill_pid "$_spid"
        return 0
    fi
    _rc=0
    # shellcheck disable=SC2046
    (nsx "$EMU_NS_A" "$_tr" $((_secs + 60)) "$BIN/bulk" send --to "$_addr" --port "$_port" \
        --timeout $((_secs + 45)) $(cc_opt "$_tr")) >"$_l.send" 2>"$_l.err" || _rc=$?
    reap "$_spid"
    [ "$_rc" = 0 ] || say "$_sc run $_run $_tr: bulk sender exited $_rc (see $_l.err)"
    G=$($REPORT kv "$_l.recv" bytes mbps | cut -d' ' -f2)
}

# retx SC RUN TR LOG: records the sender's retransmission percentage:
# rudp from its RUDP_STATS line (retransmitted / first-sent stream bytes),
# kernel TCP from TCP_INFO (bytes_retrans / (bytes_sent - bytes_retrans)).
# Sets RETX.
retx() {
    RETX=NA
    case "$3" in
        rudp-*)
            # shellcheck disable=SC2046
            set -- "$1" "$2" "$3" $($REPORT rudpstats "$4.err")
            [ "$4" -gt 0 ] && RETX=$(calc "100 * $5 / $4")
            rec "$1" "$3" "$2" pto "$7"
            ;;
        *)
            # shellcheck disable=SC2046
            set -- "$1" "$2" "$3" $($REPORT kv "$4.send" tcp_bytes_sent tcp_bytes_retrans)
            [ "$4" != NA ] && [ "$4" -gt "$5" ] && RETX=$(calc "100 * $5 / ($4 - $5)")
            ;;
    esac
    rec "$1" "$3" "$2" retx_pct "$RETX"
}

# bulk SC RUN TR PORT: one run a -> b over the link that is up.
bulk() {
    _l=$LOGS/$1.$3.$2
    emu_stats
    _in0=$(emu_stat a2b_in_pkts) _lo0=$(emu_stat a2b_drop_loss)
    bulk_run "$1" "$2" "$3" "$EMU_NS_B" "$EMU_IP_B" "$4" "$TIME" "$_l"
    emu_stats
    _in1=$(emu_stat a2b_in_pkts) _lo1=$(emu_stat a2b_drop_loss)
    rec "$1" "$3" "$2" goodput "$G"
    rec "$1" "$3" "$2" loss_pct "$(calc "100 * ($_lo1 - $_lo0) / ($_in1 - $_in0 + 1e-9)")"
    retx "$1" "$2" "$3" "$_l"
    say "$1 run $2/$RUNS $3: $G Mbit/s, retx $RETX %"
    sleep 0.5 # let the queues drain before the next transport
}

# ---------------------------------------------------------------- B1-B4

for sc in B1 B2 B3 B4; do
    want "$sc" || continue
    eval "spec=\$SPEC_$sc"
    r=1
    while [ "$r" -le "$RUNS" ]; do
        emu_up "bn$sc" "$spec" "$spec" "$r"
        port=5201
        for tr in $(rotate "$r" $TRS); do
            bulk "$sc" "$r" "$tr" "$port"
            port=$((port + 1))
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
done

# ---------------------------------------------------------------- B5

if want B5; then
    r=1
    while [ "$r" -le "$RUNS" ]; do
        emu_up bnB5 "$SPEC_B5" "$SPEC_B5" "$r"
        port=7001
        for tr in $TRS; do
            # shellcheck disable=SC2046
            srv "$EMU_NS_B" "$tr" 600 "$LOGS/B5.$tr.$r.srv" "$BIN/rr" server --port "$port" --once $(cc_opt "$tr")
            port=$((port + 1))
        done
        port=7001
        for tr in $TRS; do
            wait_port "$EMU_NS_B" "$tr" "$port" || true
            port=$((port + 1))
        done
        # All transports at once: each is one small request in flight, so
        # they do not compete for the 100 Mbit/s link.
        port=7001 cpids=""
        for tr in $TRS; do
            # shellcheck disable=SC2046
            (nsx "$EMU_NS_A" "$tr" 600 "$BIN/rr" client --to "$EMU_IP_B" --port "$port" \
                --size 100 --count "$RR_COUNT" $(cc_opt "$tr") \
                --samples "$LOGS/B5.$tr.$r.samples") >"$LOGS/B5.$tr.$r.out" 2>"$LOGS/B5.$tr.$r.err" &
            cpids="$cpids $!"
            PIDS="$PIDS $!"
            port=$((port + 1))
        done
        set -- $cpids
        for tr in $TRS; do
            rc=0
            wait "$1" || rc=$?
            shift
            [ "$rc" = 0 ] || say "B5 run $r $tr: rr client exited $rc (see $LOGS/B5.$tr.$r.err)"
            # shellcheck disable=SC2046
            set -- $($REPORT rr "$LOGS/B5.$tr.$r.out") "$@"
            rec B5 "$tr" "$r" p50_ms "$1"
            rec B5 "$tr" "$r" p99_ms "$2"
            rec B5 "$tr" "$r" max_ms "$3"
            rec B5 "$tr" "$r" mean_ms "$4"
            say "B5 run $r/$RUNS $tr: p50 $1 ms, p99 $2 ms, max $3 ms"
            shift 4
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
fi

# ---------------------------------------------------------------- B6

if want B6; then
    # A namespace of our own (the link is idle), so nothing else on the
    # host's loopback shares the ports. Both ends in namespace a.
    emu_up bnB6 "" "" 1
    r=1
    while [ "$r" -le "$RUNS" ]; do
        port=5201
        for tr in $(rotate "$r" $TRS); do
            l=$LOGS/B6.$tr.$r
            bulk_run B6 "$r" "$tr" "$EMU_NS_A" 127.0.0.1 "$port" "$LO_TIME" "$l"
            g=$G
            rec B6 "$tr" "$r" goodput "$g"
            port=$((port + 1))

            # shellcheck disable=SC2046
            srv "$EMU_NS_A" "$tr" 120 "$l.rrsrv" "$BIN/rr" server --port "$port" --bind 127.0.0.1 \
                --once $(cc_opt "$tr")
            spid=$SRV
            p50=NA p99=NA mean=NA
            if wait_port "$EMU_NS_A" "$tr" "$port"; then
                rc=0
                # shellcheck disable=SC2046
                (nsx "$EMU_NS_A" "$tr" 120 "$BIN/rr" client --to 127.0.0.1 --port "$port" \
                    --size 1 --count "$PING_COUNT" --warmup 200 $(cc_opt "$tr")) \
                    >"$l.rr" 2>"$l.rrerr" || rc=$?
                reap "$spid"
                # shellcheck disable=SC2046
                set -- $($REPORT rr "$l.rr")
                [ "$1" = NA ] || { p50=$(calc "$1 * 1000"); p99=$(calc "$2 * 1000"); mean=$(calc "$4 * 1000"); }
                [ "$rc" = 0 ] || say "B6 run $r $tr: rr exited $rc"
            fi
            rec B6 "$tr" "$r" rtt1_p50_us "$p50"
            rec B6 "$tr" "$r" rtt1_p99_us "$p99"
            rec B6 "$tr" "$r" rtt1_mean_us "$mean"
            say "B6 run $r/$RUNS $tr: $g Mbit/s, 1-byte rtt p50 $p50 us"
            port=$((port + 1))
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi

# ---------------------------------------------------------------- B7

if want B7; then
    r=1
    while [ "$r" -le "$RUNS" ]; do
        for tr in $RUDP_TRS; do
            emu_up bnB7 "$SPEC_B1" "$SPEC_B1" "$r"
            l=$LOGS/B7.$tr.$r
            srv "$EMU_NS_B" tcp-cubic $((FAIR_TIME + 60)) "$l.cubic.recv" "$BIN/bulk" recv \
                --port 5301 --time "$FAIR_TIME" --once --cc cubic
            sc_pid=$SRV
            srv "$EMU_NS_B" "$tr" $((FAIR_TIME + 60)) "$l.rudp.recv" "$BIN/bulk" recv \
                --port 5302 --time "$FAIR_TIME" --once
            sr_pid=$SRV
            wait_port "$EMU_NS_B" tcp-cubic 5301 || true
            wait_port "$EMU_NS_B" "$tr" 5302 || true
            (nsx "$EMU_NS_A" tcp-cubic $((FAIR_TIME + 60)) "$BIN/bulk" send --to "$EMU_IP_B" \
                --port 5301 --timeout $((FAIR_TIME + 45)) --cc cubic) >"$l.cubic.send" 2>"$l.cubic.err" &
            c1=$!
            (nsx "$EMU_NS_A" "$tr" $((FAIR_TIME + 60)) "$BIN/bulk" send --to "$EMU_IP_B" \
                --port 5302 --timeout $((FAIR_TIME + 45))) >"$l.rudp.send" 2>"$l.rudp.err" &
            c2=$!
            PIDS="$PIDS $c1 $c2"
            wait "$c1" || say "B7 run $r: cubic sender failed (see $l.cubic.err)"
            wait "$c2" || say "B7 run $r: $tr sender failed (see $l.rudp.err)"
            reap "$sc_pid"
            reap "$sr_pid"
            emu_down 2>>"$LOGS/emu.log"
            gc=$($REPORT kv "$l.cubic.recv" bytes mbps | cut -d' ' -f2)
            gr=$($REPORT kv "$l.rudp.recv" bytes mbps | cut -d' ' -f2)
            rec B7 "$tr" "$r" rudp_goodput "$gr"
            rec B7 "$tr" "$r" cubic_goodput "$gc"
            share=NA
            [ "$gr" != NA ] && [ "$gc" != NA ] && share=$(calc "100 * $gr / ($gr + $gc)")
            rec B7 "$tr" "$r" rudp_share_pct "$share"
            say "B7 run $r/$RUNS $tr: rudp $gr Mbit/s, cubic $gc Mbit/s, rudp share $share %"
        done
        r=$((r + 1))
    done
fi

# ---------------------------------------------------------------- report

meta load "load average $LOAD0 at start, $(loadavg) at end; $(($(date +%s) - START)) s in all"
$REPORT table "$OUT"
gnuplot "$OUT/bench.gp" 2>"$LOGS/gnuplot.log" || { cat "$LOGS/gnuplot.log" >&2; fail "gnuplot failed"; }
[ -s "$OUT/bench.png" ] || fail "no chart written"
say "table: $OUT/table.txt; chart: $OUT/bench.png; raw: $RES; logs: $LOGS"
