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
#   B9-B11 bulk goodput past 100 Mbit/s: B9 1 Gbit/s 1 ms RTT no loss, B10
#          1 Gbit/s 20 ms 1 %, B11 a veth pair (MTU 1500, no emulator: what
#          the CPUs allow)
#   B12    fan-in: 3,500 connections opened at once by one process to one
#          server over loopback, one byte each way on all (prog_many): time
#          to answer all, UDP receive-buffer drops, retransmissions, server
#          memory per connection
#   B13    redis-benchmark (-c 50, SET and GET) against redis-server over
#          loopback: requests per second
#   B14    nginx (master + 2 workers) serving a 1 KiB file to wrk (-t2
#          -c50) over loopback: requests per second
#   B15    roaming: 20 MB over one connection while the client's address
#          changes 3 times (emu_readdr): total time and goodput, or how
#          kernel TCP fails
#   B16    roaming: 12 MB over one connection across a 10 s blackout of the
#          link (emu_blackout): time to resume after it, total time
#   B17    short fetches on new connections (curl from python3 http.server,
#          10 KB, 100 KB, 1 MB), 100 Mbit/s, 50 ms RTT: connect() and each
#          fetch in ms and in round trips (b17_fetch.sh)
#   B8     B1's link, bulk goodput without and with a spoofed-source SYN
#          flood and a junk-datagram flood at the receiver's port (sent
#          from inside the receiver's namespace, so they do not cross the
#          link); achieved flood rates, receiver peak RSS and CPU
#
# Every bulk row also says what limited the flow (the sender's TCP_INFO
# averaged by bulk.c: cwnd, peer window, app, else pacing) and its CPU cost:
# seconds of CPU per GB at the sender and at the receiver (whole process,
# engine included), and on emulated rows the busiest emulator thread's CPU
# (near 100 % means the emulator, not the transport, set the pace).
#
# Keyed mode: B1-B4, B6, B9 and B11 also run rudp-CC+key, the traced
# controller (bbr if measured) with RUDP_KEY_FILE at both ends (a key made
# for the run, keyed.key in BENCH_OUT, mode 0600), in the same rotation as
# the other transports; the report sets each keyed row beside the unkeyed
# row of its controller (goodput and CPU s/GB, keyed / unkeyed, against
# issue 13's targets) and prints cryptocost's table (per-datagram seal and
# open in ns, both ciphers; the handshake), measured once at the start.
#
# Loss and delay apply in both directions (data and acknowledgements). Every
# figure is the median of BENCH_RUNS runs; run r uses linkemu seed r for all
# transports, so they meet the same loss positions by packet index.
#
# Environment:
#   BENCH_RUNS=3          runs per figure
#   BENCH_ONLY=B1,...,B17 scenarios to run (e.g. BENCH_ONLY=B2,B5)
#   BENCH_ROAM_STALL=20   B15, B16: stop a transfer after this many seconds
#                         with no byte arriving
#   BENCH_FANIN=3500      B12's connections
#   BENCH_APP_TIME=5      seconds of wrk per B14 run (B13: 100,000 requests)
#   BENCH_TIME=15         seconds per bulk run (B1-B4)
#   BENCH_LO_TIME=3       seconds per loopback bulk run (B6)
#   BENCH_FAIR_TIME=15    seconds per fairness run (B7)
#   BENCH_FLOOD_TIME=10   seconds per B8 bulk run (each transport runs twice)
#   BENCH_FLOOD_SYN=3000  B8 spoofed SYNs per second (0: no SYN flood)
#   BENCH_FLOOD_JUNK=3000 B8 junk datagrams per second (0: no junk flood)
#   BENCH_FLOOD_CONTROL=0 1: B8 runs each transport a third time with the same
#                         floods sent to a closed port of the receiver's
#                         namespace (the machine pays for them, the server
#                         never sees them): what the floods cost by CPU alone
#   BENCH_FETCH_N=15      B17's fetches per size per run
#   BENCH_RR_COUNT=1000   echoes per B5 run; BENCH_PING_COUNT=10000 for B6
#   BENCH_CC="newreno"    rudp controllers (default: every one RUDP_CC accepts
#                         of newreno, cubic, bbr)
#   BENCH_KEYED=1         0: no keyed rows and no cryptocost
#   BENCH_OUT=build/bench results.tsv, meta.tsv, table.txt, bench.png, logs/,
#                         plot_<scenario>.png, qlog/<scenario>/ (see below),
#                         keyed.key, cryptocost.txt
#   BENCH_COMMIT=TEXT     what to print as the commit when not in a git checkout
#   BENCH_QLOG=1          0: no traces, no per-scenario plots; keep: keep every
#                         trace in qlog/ (by default only the plots stay: a
#                         15 s bulk run writes ~100 MB of trace)
#
# Output: the table on stdout (and in table.txt), progress on stderr.
# Every scenario ends with one more run, of one rudp controller alone (bbr
# if measured, else the first), with RUDP_QLOG_DIR set; it is not in the
# table (its figures go to traced.tsv), and rudp-plot draws its largest trace
# (the main connection's sender; in B12, whose 3,500 connections carry a
# byte each, the one that waited longest among the first 64 of each process,
# the shim's cap on traces live at once) as plot_<scenario>.png next to the
# table: why a row is what it is.
. "$(dirname "$0")/../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh" # and integration/emu/netns.sh
ROAM_STALL=${BENCH_ROAM_STALL:-20}

RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-B1,B2,B3,B4,B5,B6,B7,B8,B9,B10,B11,B12,B13,B14,B15,B16,B17,B18,B19}
APP_TIME=${BENCH_APP_TIME:-5}
FANIN=${BENCH_FANIN:-3500}
TIME=${BENCH_TIME:-15}
LO_TIME=${BENCH_LO_TIME:-3}
FAIR_TIME=${BENCH_FAIR_TIME:-15}
FLOOD_TIME=${BENCH_FLOOD_TIME:-10}
FLOOD_SYN=${BENCH_FLOOD_SYN:-3000}
FLOOD_JUNK=${BENCH_FLOOD_JUNK:-3000}
FLOOD_CONTROL=${BENCH_FLOOD_CONTROL:-0}
RAWPY=$ROOT/integration/tools/rudpraw.py
RR_COUNT=${BENCH_RR_COUNT:-1000}
PING_COUNT=${BENCH_PING_COUNT:-10000}
OUT=${BENCH_OUT:-$BUILD/bench}
LINK=100

command -v gnuplot >/dev/null || fail "gnuplot not installed (integration/deps.sh bench)"
command -v python3 >/dev/null || fail "python3 not installed (integration/deps.sh bench)"
# The interpreter itself: a version manager's python3 wrapper can take a
# second per start on a busy machine, and B8's floods must start on time.
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) || PY=python3
[ -x "$PY" ] || PY=python3
REPORT="$PY $ROOT/integration/bench/report.py"
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
# The transport traced (qlog_env), in a run of its own after the measured
# ones: run TRACE_RUN of each scenario runs QLOG_TR alone, and
# what it measures goes to traced.tsv, not results.tsv: tracing costs CPU
# (and, at high rates, goodput), which the medians must not include.
QLOG_TR=$(echo $RUDP_TRS | tr ' ' '\n' | grep -x rudp-bbr || echo $RUDP_TRS | cut -d' ' -f1)
TRACE_RUN=$((RUNS + 1))
LAST=$RUNS # the last run of a scenario's loop
[ "${BENCH_QLOG:-1}" = 0 ] || [ -z "$QLOG_TR" ] || LAST=$TRACE_RUN

mkdir -p "$OUT"
rm -rf "$OUT/logs" "$OUT/emu" "$OUT/qlog" "$OUT"/plot_*.png "$OUT/traced.tsv" \
    "$OUT/keyed.key" "$OUT/cryptocost.txt"
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
# rec SC TR RUN METRIC VALUE: a measured run's figure to results.tsv; the
# traced run's to traced.tsv (for a look, never in the table).
rec() {
    _f=$RES
    [ "$3" -le "$RUNS" ] || _f=$OUT/traced.tsv
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >>"$_f"
}
say() { echo "bench: $(date +%T) $*" >&2; }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; esac; return 1; }
calc() { awk "BEGIN { v = $1; printf \"%.4f\", v }" 2>/dev/null || echo NA; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Keyed mode (issue 13): QLOG_TR again with a key at both ends, as
# rudp-CC+key, in the scenarios where the issue sets its cost (B1-B4:
# within 2 % of unkeyed; loopback B6 and B11: at least 0.8x), and B9 (a
# gigabit link: one run more, cheap). The key is made for the run, private
# from the start (rm first: a redirect into an old file keeps its mode),
# the way the README tells users to make one. No keyed rows when
# BENCH_KEYED=0 or when this checkout has no keyed mode (no --genkey).
KEY_TR=""
KEY_SCS="B1 B2 B3 B4 B6 B9 B11"
KEYFILE=$OUT/keyed.key
if [ "${BENCH_KEYED:-1}" != 0 ] && [ -n "$QLOG_TR" ]; then
    if (umask 077 && "$TOOLS/rudp-run" --genkey >"$KEYFILE") 2>"$LOGS/keyed.log"; then
        KEY_TR=$QLOG_TR+key
        # What the cryptography costs, on a machine not yet busy with us.
        timeout -k 5 120 "$BIN/cryptocost" >"$OUT/cryptocost.txt" 2>>"$LOGS/keyed.log" ||
            say "cryptocost failed (see $LOGS/keyed.log)"
    else
        rm -f "$KEYFILE"
        say "no keyed rows: rudp-run --genkey failed (see $LOGS/keyed.log)"
    fi
fi

# trs SC: scenario SC's transports: TRS, and KEY_TR in KEY_SCS.
trs() {
    case " $KEY_SCS " in
        *" $1 "*) [ -z "$KEY_TR" ] || { echo $TRS $KEY_TR; return 0; } ;;
    esac
    echo $TRS
}

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
say "transports:$TRS${KEY_TR:+ (and $KEY_TR in $KEY_SCS)}; runs $RUNS; scenarios $ONLY; results in $OUT"

# Links (each direction): delay = RTT/2, queue = one bandwidth-delay product.
SPEC_B1="delay=5,rate=100,queue=125k"
SPEC_B2="delay=20,loss=1,rate=100,queue=500k"
SPEC_B3="delay=20,loss=5,rate=100,queue=500k"
SPEC_B4="delay=50,loss=2,rate=100,queue=1250k"
SPEC_B5=$SPEC_B2
SPEC_B9="delay=0.5,rate=1000,queue=125k"
SPEC_B10="delay=10,loss=1,rate=1000,queue=2500k"
SPEC_B11=veth
SPEC_B15="delay=10,rate=20,queue=50k" # B15 and B16
meta link_B9 1000
meta link_B10 1000
meta link_B11 NA
meta desc_B1 "bulk, 100 Mbit/s, 10 ms RTT, no loss, queue 125 kB each way; ${TIME} s runs"
meta desc_B2 "bulk, 100 Mbit/s, 40 ms RTT, 1% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B3 "bulk, 100 Mbit/s, 40 ms RTT, 5% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B4 "bulk, 100 Mbit/s, 100 ms RTT, 2% loss both ways, queue 1.25 MB; ${TIME} s runs"
meta desc_B9 "bulk, 1 Gbit/s, 1 ms RTT, no loss, queue 125 kB each way; ${TIME} s runs"
meta desc_B10 "bulk, 1 Gbit/s, 20 ms RTT, 1% loss both ways, queue 2.5 MB; ${TIME} s runs"
meta desc_B11 "bulk over a veth pair between two namespaces, MTU 1500, no emulator; ${TIME} s runs"
meta desc_B12 "fan-in: $FANIN connections opened at once by one client process to one server, loopback in a fresh namespace, one byte each way on all"
meta desc_B13 "redis-benchmark -c 50 -n 100000 -t set,get against redis-server, loopback in a fresh namespace"
meta desc_B14 "nginx (master + 2 workers) serving a 1 KiB file, wrk -t2 -c50 -d${APP_TIME}s, loopback in a fresh namespace"
meta desc_B15 "roaming: 20 MB a -> b over one connection (roamio.py, unpaced), 20 Mbit/s, 20 ms RTT, queue 50 kB each way; the client's address changes 3 times (at 1/4, 1/2, 3/4 of the bytes at b)"
meta desc_B16 "roaming: 12 MB a -> b over one connection (roamio.py, unpaced), B15's link; the link goes silent both ways for 10 s once b holds a quarter"
meta desc_B5 "$RR_COUNT sequential 100-byte echoes, 40 ms RTT, 1% loss both ways (all transports at once on one link)"
meta desc_B6 "loopback 127.0.0.1, no emulator: bulk ${LO_TIME} s; 1-byte ping-pong x $PING_COUNT"
meta desc_B7 "B1's link shared ${FAIR_TIME} s: one rudp flow + one kernel TCP cubic flow started together"
meta desc_B8 "B1's link, ${FLOOD_TIME} s bulk runs, each without and with floods at the receiver's port from inside its namespace: spoofed SYNs ${FLOOD_SYN}/s (rudp SYNs, or TCP SYNs for kernel TCP) + junk UDP ${FLOOD_JUNK}/s"
meta rtt_B5 40
meta note1 "Mbit/s: bytes the receiving application read in the first N s after accept (bulk.c), slow start included; the 100 Mbit/s link counts IP bytes, so ~96.5 is the payload ceiling for both (1448/1500 TCP, ~1378/1428 rudp)."
meta note2 "retx%: sender's retransmitted / first-sent bytes (rudp: RUDP_STATS; tcp: TCP_INFO bytes_retrans). loss%: linkemu's random drops a->b in the run. B5: nearest-rank percentiles of the 1000 round trips."
meta note3 "repair%: rudp sender's stream bytes copied with a short write's last packet (RUDP_REPAIR, RUDP_STATS) / first-sent bytes."
if want B8; then
    meta note3 "B8: ratio = median of each run's flood / no-flood goodput; worst = the lowest flood run; SYN and junk pps: what the flooders achieved; spoof replies/s: replies to the spoofed sources that crossed the link (a's Ip InAddrErrors); sender srtt: mean of TCP_INFO's smoothed RTT from the 2nd second; peak RSS: the rudp receiver's VmHWM; CPU: % of one CPU. Details: integration/bench/README.md."
fi

# ---------------------------------------------------------------- helpers

# nsx NS TR SECS CMD...: exec CMD in namespace NS, bounded by SECS, with
# transport TR's environment (rudp-CC: the shim preloaded, RUDP_CC=CC,
# RUDP_STATS=1; rudp-CC+key: RUDP_KEY_FILE as well; tcp-*: nothing).
# Replaces the calling (sub)shell. rudp rows measure rudp: RUDP_FALLBACK=none
# and RUDP_ACCEPT_TCP=0, so a handshake slowed by loss or load never moves a
# connection of the row to kernel TCP (the default in use would, after the
# probe delay: docs/deploying.md).
nsx() {
    _ns=$1 _tr=$2 _secs=$3
    shift 3
    _cc=${_tr#rudp-} _key=""
    case "$_cc" in *+key) _cc=${_cc%+key} _key=RUDP_KEY_FILE=$KEYFILE ;; esac
    case "$_tr" in
        rudp-*) exec ip netns exec "$_ns" timeout -k 5 "$_secs" env LD_PRELOAD="$LDP" \
            RUDP_STATS=1 RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0 RUDP_CC="$_cc" $_key \
            $(qlog_env "$_tr") "$@" ;;
        *) exec ip netns exec "$_ns" timeout -k 5 "$_secs" "$@" ;;
    esac
}

# qlog_env TR: RUDP_QLOG_DIR=$OUT/qlog/$sc for TR = QLOG_TR in the traced
# run ($r = TRACE_RUN) of scenario $sc, with the directory made
# (writable by all, sticky: nginx's workers run as nobody); nothing
# otherwise.
qlog_env() {
    [ "${BENCH_QLOG:-1}" != 0 ] && [ "$1" = "$QLOG_TR" ] && [ "${r:-0}" = "$TRACE_RUN" ] && [ -n "${sc:-}" ] || return 0
    mkdir -p "$OUT/qlog/$sc" && chmod 1777 "$OUT/qlog/$sc" && echo "RUDP_QLOG_DIR=$OUT/qlog/$sc"
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

# run_trs R TR...: the transports of run R: all of them in a measured run,
# QLOG_TR alone (if among them) in the traced one.
run_trs() {
    _r=$1
    shift
    if [ "$_r" -le "$RUNS" ]; then
        echo "$@"
        return 0
    fi
    for _t in "$@"; do
        [ "$_t" != "$QLOG_TR" ] || echo "$_t"
    done
    return 0
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

# keyed_ok TR FILE...: false when TR is keyed but a FILE (a process's
# RUDP_STATS) lacks the keyed line: that process ran unkeyed (a shim that
# does not know RUDP_KEY_FILE), and its run must not count as keyed.
keyed_ok() {
    case "$1" in *+key) ;; *) return 0 ;; esac
    _kt=$1
    shift
    for _kf in "$@"; do
        grep -q 'keyed: handshakes rejected' "$_kf" 2>/dev/null ||
            { say "$_kt: no keyed line in $_kf's RUDP_STATS: not counted"; return 1; }
    done
    return 0
}

# bulk_run SC RUN TR NS_RECV ADDR PORT SECS LOG: one bulk transfer from
# namespace a (or the same namespace for loopback) to NS_RECV: the receiver
# counts what its application got in SECS seconds from accept. Sets G (Mbit/s
# or NA) and leaves the sender's line in LOG.send; sets UNKEYED=1 (and G=NA)
# when a keyed transport's run went unkeyed (keyed_ok), else 0: none of
# that run's figures count.
bulk_run() {
    _sc=$1 _run=$2 _tr=$3 _nsr=$4 _addr=$5 _port=$6 _secs=$7 _l=$8
    G=NA UNKEYED=0
    # shellcheck disable=SC2046
    srv "$_nsr" "$_tr" $((_secs + 60)) "$_l.recv" "$BIN/bulk" recv --port "$_port" \
        --time "$_secs" --once $(cc_opt "$_tr")
    _spid=$SRV
    if ! wait_port "$_nsr" "$_tr" "$_port"; then
        emu__kill_pid "$_spid"
        return 0
    fi
    # B8's hook: the receiver listens, the sender has not started.
    [ -z "${BULK_HOOK:-}" ] || $BULK_HOOK ready "$_spid"
    _rc=0
    # shellcheck disable=SC2046
    (nsx "$EMU_NS_A" "$_tr" $((_secs + 60)) "$BIN/bulk" send --to "$_addr" --port "$_port" \
        --timeout $((_secs + 45)) $(cc_opt "$_tr")) >"$_l.send" 2>"$_l.err" || _rc=$?
    # ... and the receiver's window is over.
    [ -z "${BULK_HOOK:-}" ] || $BULK_HOOK done "$_spid"
    reap "$_spid"
    [ "$_rc" = 0 ] || say "$_sc run $_run $_tr: bulk sender exited $_rc (see $_l.err)"
    G=$($REPORT kv "$_l.recv" bytes mbps | cut -d' ' -f2)
    keyed_ok "$_tr" "$_l.recv" "$_l.err" || { G=NA UNKEYED=1; }
}

# retx SC RUN TR LOG [SUFFIX]: records the sender's retransmission
# percentage (metric retx_pct, and pto and repair_pct for rudp, with SUFFIX
# appended):
# rudp from its RUDP_STATS line (retransmitted / first-sent stream bytes),
# kernel TCP from TCP_INFO (bytes_retrans / (bytes_sent - bytes_retrans)).
# Sets RETX.
retx() {
    RETX=NA
    _sfx=${5:-}
    case "$3" in
        rudp-*)
            # shellcheck disable=SC2046
            _rep=$($REPORT rudprepair "$4.err" | cut -d' ' -f1)
            set -- "$1" "$2" "$3" $($REPORT rudpstats "$4.err")
            [ "$4" -gt 0 ] && RETX=$(calc "100 * $5 / $4")
            rec "$1" "$3" "$2" "pto$_sfx" "$7"
            # copies of short writes' last packets (RUDP_REPAIR): same share
            [ "$4" -gt 0 ] && rec "$1" "$3" "$2" "repair_pct$_sfx" "$(calc "100 * $_rep / $4")"
            ;;
        *)
            # shellcheck disable=SC2046
            set -- "$1" "$2" "$3" $($REPORT kv "$4.send" tcp_bytes_sent tcp_bytes_retrans)
            [ "$4" != NA ] && [ "$4" -gt "$5" ] && RETX=$(calc "100 * $5 / ($4 - $5)")
            ;;
    esac
    rec "$1" "$3" "$2" "retx_pct$_sfx" "$RETX"
}

# limits SC RUN TR LOG: what limited the flow and what it cost (bulk.c's
# lines): shares of cwnd-, window- and app-limited samples, mean pacing
# rate, CPU seconds per GB sent (sender) and received (receiver).
limits() {
    _lsc=$1 _lrun=$2 _ltr=$3
    # shellcheck disable=SC2046
    set -- "$1" "$2" "$3" $($REPORT kv "$4.send" sent cwnd_limited_pct rwnd_limited_pct \
        app_limited_pct pacing_mbps cpu_s) $($REPORT kv "$4.recv" bytes cpu_s)
    rec "$1" "$3" "$2" cwnd_lim_pct "$5"
    rec "$1" "$3" "$2" rwnd_lim_pct "$6"
    rec "$1" "$3" "$2" app_lim_pct "$7"
    rec "$1" "$3" "$2" pacing_mbps "$8"
    _c=NA
    [ "$4" != NA ] && [ "$9" != NA ] && [ "$4" -gt 0 ] && _c=$(calc "$9 / ($4 / 1e9)")
    rec "$1" "$3" "$2" cpu_snd_s_gb "$_c"
    shift 9
    _c=NA
    [ "$1" != NA ] && [ "$2" != NA ] && [ "$1" -gt 0 ] && _c=$(calc "$2 / ($1 / 1e9)")
    rec "$_lsc" "$_ltr" "$_lrun" cpu_rcv_s_gb "$_c"
}

# CPU ticks (1/100 s) of the busier linkemu thread direction a -> b.
emu_ticks() {
    for _t in /proc/"$EMU_PID"/task/*; do
        case "$(cat "$_t/comm" 2>/dev/null)" in
            *a2b) awk '{ print $14 + $15 }' "$_t/stat" 2>/dev/null; return ;;
        esac
    done
    echo 0
}

# bulk SC RUN TR PORT: one run a -> b over the link that is up.
bulk() {
    _l=$LOGS/$1.$3.$2
    if [ -z "$EMU_PID" ]; then # veth: no emulator, no loss
        bulk_run "$1" "$2" "$3" "$EMU_NS_B" "$EMU_IP_B" "$4" "$TIME" "$_l"
        rec "$1" "$3" "$2" goodput "$G"
        RETX=NA
        if [ "$UNKEYED" = 0 ]; then
            retx "$1" "$2" "$3" "$_l"
            limits "$1" "$2" "$3" "$_l"
        fi
        say "$1 run $2/$RUNS $3: $G Mbit/s, retx $RETX %"
        sleep 0.5
        return
    fi
    emu_stats
    _in0=$(emu_stat a2b_in_pkts) _lo0=$(emu_stat a2b_drop_loss)
    _e0=$(emu_ticks) _t0=$(date +%s%N)
    bulk_run "$1" "$2" "$3" "$EMU_NS_B" "$EMU_IP_B" "$4" "$TIME" "$_l"
    _e1=$(emu_ticks) _t1=$(date +%s%N)
    emu_stats
    _in1=$(emu_stat a2b_in_pkts) _lo1=$(emu_stat a2b_drop_loss)
    rec "$1" "$3" "$2" goodput "$G"
    rec "$1" "$3" "$2" loss_pct "$(calc "100 * ($_lo1 - $_lo0) / ($_in1 - $_in0 + 1e-9)")"
    rec "$1" "$3" "$2" emu_cpu_pct "$(calc "($_e1 - $_e0) * 1e9 / ($_t1 - $_t0)")"
    RETX=NA
    if [ "$UNKEYED" = 0 ]; then
        retx "$1" "$2" "$3" "$_l"
        limits "$1" "$2" "$3" "$_l"
    fi
    say "$1 run $2/$RUNS $3: $G Mbit/s, retx $RETX %"
    sleep 0.5 # let the queues drain before the next transport
}

# ---------------------------------------------------------------- B1-B4

for sc in B1 B2 B3 B4 B9 B10 B11; do
    want "$sc" || continue
    eval "spec=\$SPEC_$sc"
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up "bn$sc" "$spec" "$spec" "$r"
        port=5201
        for tr in $(rotate "$r" $(run_trs "$r" $(trs "$sc"))); do
            bulk "$sc" "$r" "$tr" "$port"
            port=$((port + 1))
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
done

# ---------------------------------------------------------------- B5

if want B5; then
    sc=B5
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up bnB5 "$SPEC_B5" "$SPEC_B5" "$r"
        port=7001
        for tr in $(run_trs "$r" $TRS); do
            # shellcheck disable=SC2046
            srv "$EMU_NS_B" "$tr" 600 "$LOGS/B5.$tr.$r.srv" "$BIN/rr" server --port "$port" --once $(cc_opt "$tr")
            port=$((port + 1))
        done
        port=7001
        for tr in $(run_trs "$r" $TRS); do
            wait_port "$EMU_NS_B" "$tr" "$port" || true
            port=$((port + 1))
        done
        # All transports at once: each is one small request in flight, so
        # they do not compete for the 100 Mbit/s link.
        port=7001 cpids=""
        for tr in $(run_trs "$r" $TRS); do
            # shellcheck disable=SC2046
            (nsx "$EMU_NS_A" "$tr" 600 "$BIN/rr" client --to "$EMU_IP_B" --port "$port" \
                --size 100 --count "$RR_COUNT" $(cc_opt "$tr") \
                --samples "$LOGS/B5.$tr.$r.samples") >"$LOGS/B5.$tr.$r.out" 2>"$LOGS/B5.$tr.$r.err" &
            cpids="$cpids $!"
            PIDS="$PIDS $!"
            port=$((port + 1))
        done
        set -- $cpids
        for tr in $(run_trs "$r" $TRS); do
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
    sc=B6
    # A namespace of our own (the link is idle), so nothing else on the
    # host's loopback shares the ports. Both ends in namespace a.
    emu_up bnB6 "" "" 1
    r=1
    while [ "$r" -le "$LAST" ]; do
        port=5201
        for tr in $(rotate "$r" $(run_trs "$r" $(trs B6))); do
            l=$LOGS/B6.$tr.$r
            bulk_run B6 "$r" "$tr" "$EMU_NS_A" 127.0.0.1 "$port" "$LO_TIME" "$l"
            g=$G
            rec B6 "$tr" "$r" goodput "$g"
            # CPU s/GB, for keyed against unkeyed
            [ "$UNKEYED" = 1 ] || limits B6 "$r" "$tr" "$l"
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
                [ "$1" = NA ] || ! keyed_ok "$tr" "$l.rrsrv" "$l.rrerr" ||
                    { p50=$(calc "$1 * 1000"); p99=$(calc "$2 * 1000"); mean=$(calc "$4 * 1000"); }
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
    sc=B7
    r=1
    while [ "$r" -le "$LAST" ]; do
        for tr in $(run_trs "$r" $RUDP_TRS); do
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

# ---------------------------------------------------------------- B8

# The floods start in namespace b and go to b's own address, the
# receiver's port: they reach the server without crossing the emulated
# link, which would measure link sharing rather than the server. The SYN
# flood's sources are spoofed in FLOOD_NET, inside emub's /24: b routes
# its replies to them (rudp RETRY, TCP SYN-ACK) into the TUN, over the
# b->a direction of the link, and a, which does not forward, drops them
# (a's Ip InAddrErrors counts them). The junk flood comes from an ordinary
# UDP socket in b; replies to it stay on b's loopback.
FLOOD_NET=10.99.0.128/25

# snap NS FILE: the namespace's /proc/net/snmp and /proc/net/netstat.
snap() { ip netns exec "$1" cat /proc/net/snmp /proc/net/netstat >"$2" 2>/dev/null || : >"$2"; }

# bgx NS SECS LOG CMD...: CMD in namespace NS in the background, bounded
# by SECS, no shim; cleaned up by PID. Sets BGX.
bgx() {
    _bns=$1 _bsecs=$2 _blog=$3
    shift 3
    (exec ip netns exec "$_bns" timeout -k 5 "$_bsecs" "$@") >"$_blog" 2>&1 &
    BGX=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $BGX"
    PIDS="$PIDS $BGX"
}

# b8_hook ready|done SPID: bulk_run's hook. "ready": the receiver listens
# on B8_PORT; starts the sampler of the receiver process (timeout's child),
# in a flood run both floods, waits until they send and 0.5 s more (so the
# handshake meets them too), then takes the first snapshot of the counters.
# "done": the sender has returned, i.e. the receiver's window is over; the
# second snapshot. The floods last FLOOD_TIME + 2 s from their start, past
# the window, so the snapshots bracket a transfer under flood throughout.
b8_hook() {
    if [ "$1" = "done" ]; then
        b8_snap 1
        return 0
    fi
    B8_RPID=$(cut -d' ' -f1 "/proc/$2/task/$2/children" 2>/dev/null || true)
    B8_SAMP="" B8_SYN="" B8_JUNK=""
    if [ -n "$B8_RPID" ]; then
        $REPORT sample "$B8_RPID" "$B8_L.sample" $((FLOOD_TIME + 60)) &
        B8_SAMP=$!
        PIDS="$PIDS $B8_SAMP"
    fi
    if [ "$B8_MODE" != base ]; then
        _fsecs=$((FLOOD_TIME + 2))
        # control: nothing listens on port 9 in b.
        _fport=$B8_PORT
        [ "$B8_MODE" = flood ] || _fport=9
        if [ "$FLOOD_SYN" != 0 ]; then
            _proto=""
            case "$B8_TR" in tcp-*) _proto=--tcp ;; esac
            bgx "$EMU_NS_B" $((_fsecs + 30)) "$B8_L.syn" "$PY" "$RAWPY" synflood "$EMU_IP_B" \
                "$_fport" --rate "$FLOOD_SYN" --seconds "$_fsecs" --src-net "$FLOOD_NET" $_proto
            B8_SYN=$BGX
        fi
        if [ "$FLOOD_JUNK" != 0 ]; then
            bgx "$EMU_NS_B" $((_fsecs + 30)) "$B8_L.junk" "$PY" "$RAWPY" junk "$EMU_IP_B" \
                "$_fport" --rate "$FLOOD_JUNK" --seconds "$_fsecs" --kind mix
            B8_JUNK=$BGX
        fi
        # Until both floods say they are sending (bounded), then 0.5 s more.
        _i=0
        while [ "$_i" -lt 200 ]; do
            _n=0
            for _f in "$B8_L.syn" "$B8_L.junk"; do
                [ ! -f "$_f" ] || grep -q '^flooding=' "$_f" || _n=1
            done
            [ "$_n" = 0 ] && break
            sleep 0.05
            _i=$((_i + 1))
        done
        [ "$_i" -lt 200 ] || say "B8: a flood did not start within 10 s (see $B8_L.syn, $B8_L.junk)"
        sleep 0.5
    fi
    b8_snap 0
}

# b8_snap N: linkemu's counters, a's and b's SNMP counters, as snapshot N.
b8_snap() {
    emu_stats
    cp "$EMU_STATS" "$B8_L.emu$1"
    snap "$EMU_NS_A" "$B8_L.snmpa$1"
    snap "$EMU_NS_B" "$B8_L.snmpb$1"
}

# b8 RUN TR PORT MODE: one B8 bulk run, MODE base (no flood), flood, or
# control (the floods at port 9, where nothing listens). Records every
# metric as NAME_MODE (the flood rates as syn_pps, junk_pps in a flood run,
# with _control appended in a control run); the link and SNMP counters cover the
# receiver's window (b8_hook's snapshots), the rudp counters the receiver's
# life, the flood rates the floods' own.
b8() {
    B8_TR=$2 B8_PORT=$3 B8_MODE=$4 B8_L=$LOGS/B8.$2.$1.$4
    rm -f "$B8_L.emu0" "$B8_L.emu1"
    BULK_HOOK=b8_hook
    bulk_run B8 "$1" "$2" "$EMU_NS_B" "$EMU_IP_B" "$3" "$FLOOD_TIME" "$B8_L"
    BULK_HOOK=""
    for _p in $B8_SAMP $B8_SYN $B8_JUNK; do reap "$_p" 30; done
    _m=$4
    rec B8 "$2" "$1" "goodput_$_m" "$G"
    retx B8 "$1" "$2" "$B8_L" "_$_m"
    # The sender's smoothed RTT (TCP_INFO; under the shim, rudp's): a queue
    # anywhere on the path, the receiver's socket and engine included.
    # shellcheck disable=SC2046
    set -- "$1" "$2" $($REPORT kv "$B8_L.send" srtt_mean_ms srtt_max_ms)
    rec B8 "$2" "$1" "srtt_ms_$_m" "$3"
    rec B8 "$2" "$1" "srtt_max_ms_$_m" "$4"
    set -- "$1" "$2"
    case "$2" in
        rudp-*)
            # shellcheck disable=SC2046
            set -- "$1" "$2" $($REPORT rudpstats "$B8_L.err")
            rec B8 "$2" "$1" "retx_pkts_$_m" "$5"
            set -- "$1" "$2"
            ;;
    esac
    eval "B8_G_$_m=\$G"
    if [ -f "$B8_L.emu0" ] && [ -f "$B8_L.emu1" ]; then
        _t0=$(emu_stat time_ns "$B8_L.emu0") _t1=$(emu_stat time_ns "$B8_L.emu1")
        _rb0=$(emu_stat b2a_in_bytes "$B8_L.emu0") _rb1=$(emu_stat b2a_in_bytes "$B8_L.emu1")
        _rq0=$(emu_stat b2a_drop_queue "$B8_L.emu0") _rq1=$(emu_stat b2a_drop_queue "$B8_L.emu1")
        _fq0=$(emu_stat a2b_drop_queue "$B8_L.emu0") _fq1=$(emu_stat a2b_drop_queue "$B8_L.emu1")
        _dt=$(calc "($_t1 - $_t0) / 1e9")
        # The reverse direction (b->a): ACKs, and replies to spoofed sources.
        rec B8 "$2" "$1" "b2a_kbps_$_m" "$(calc "($_rb1 - $_rb0) * 8 / 1000 / $_dt")"
        rec B8 "$2" "$1" "b2a_qdrops_$_m" $((_rq1 - _rq0))
        # The data direction's drop-tail losses (the link has no random loss).
        rec B8 "$2" "$1" "a2b_qdrops_$_m" $((_fq1 - _fq0))
        # shellcheck disable=SC2046
        set -- "$1" "$2" $($REPORT snmp "$B8_L.snmpa0" "$B8_L.snmpa1" Ip.InAddrErrors) \
            $($REPORT snmp "$B8_L.snmpb0" "$B8_L.snmpb1" Udp.RcvbufErrors TcpExt.SyncookiesSent \
                TcpExt.ListenDrops)
        rec B8 "$2" "$1" "spoof_replies_ps_$_m" "$(calc "$3 / $_dt")"
        rec B8 "$2" "$1" "rcvbuf_errs_$_m" "$4"
        rec B8 "$2" "$1" "syncookies_$_m" "$5"
        rec B8 "$2" "$1" "listen_drops_$_m" "$6"
    fi
    # shellcheck disable=SC2046
    set -- "$1" "$2" $($REPORT kv "$B8_L.sample" vmhwm_kb main_cpu_pct other_cpu_pct cpu_busy_pct)
    [ "$3" = NA ] || rec B8 "$2" "$1" "peak_rss_mb_$_m" "$(calc "$3 / 1024")"
    rec B8 "$2" "$1" "app_cpu_pct_$_m" "$4"
    rec B8 "$2" "$1" "engine_cpu_pct_$_m" "$5"
    rec B8 "$2" "$1" "busy_pct_$_m" "$6"
    _what=""
    if [ "$_m" != base ]; then
        _syn=$($REPORT kv "$B8_L.syn" rate) _junk=$($REPORT kv "$B8_L.junk" rate)
        _sfx=""
        [ "$_m" = flood ] || _sfx=_$_m
        rec B8 "$2" "$1" "syn_pps$_sfx" "$_syn"
        rec B8 "$2" "$1" "junk_pps$_sfx" "$_junk"
        rec B8 "$2" "$1" "junk_replies$_sfx" "$($REPORT kv "$B8_L.junk" replies)"
        _what=", SYN $_syn/s, junk $_junk/s"
    fi
    case "$2" in
        rudp-*)
            for _kv in $($REPORT rudpcounters "$B8_L.recv"); do
                rec B8 "$2" "$1" "${_kv%%=*}_$_m" "${_kv#*=}"
            done
            ;;
    esac
    say "B8 run $1/$RUNS $2 $_m: $G Mbit/s$_what"
    sleep 0.5 # the queues drain, the floods' last replies settle
}

if want B8; then
    sc=B8
    r=1
    while [ "$r" -le "$LAST" ]; do
        emu_up bnB8 "$SPEC_B1" "$SPEC_B1" "$r"
        port=5401
        for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
            # Alternate which comes first, so neither mode always meets a
            # machine just warmed (or just loaded) by the other.
            if [ $((r % 2)) = 1 ]; then modes="base flood"; else modes="flood base"; fi
            [ "$FLOOD_CONTROL" = 0 ] || modes="$modes control"
            B8_G_base=NA B8_G_flood=NA B8_G_control=NA
            for m in $modes; do
                b8 "$r" "$tr" "$port" "$m"
                port=$((port + 1))
            done
            ratio=NA
            [ "$B8_G_base" != NA ] && [ "$B8_G_flood" != NA ] && ratio=$(calc "$B8_G_flood / $B8_G_base")
            rec B8 "$tr" "$r" flood_ratio "$ratio"
            if [ "$FLOOD_CONTROL" != 0 ]; then
                ratio=NA
                [ "$B8_G_base" != NA ] && [ "$B8_G_control" != NA ] &&
                    ratio=$(calc "$B8_G_control / $B8_G_base")
                rec B8 "$tr" "$r" control_ratio "$ratio"
            fi
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
fi

# ---------------------------------------------------------------- B12

if want B12; then
    sc=B12
    [ -x "$BIN/prog_many" ] || fail "$BIN/prog_many not built (make)"
    emu_up bnB12 veth veth 1 # a namespace of our own; only its loopback is used
    r=1
    while [ "$r" -le "$LAST" ]; do
        for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
            l=$LOGS/B12.$tr.$r
            srv "$EMU_NS_A" "$tr" 180 "$l.srv" "$BIN/prog_many" server "$FANIN" 1
            spid=$SRV
            _i=0
            until grep -q '^port ' "$l.srv" 2>/dev/null || [ "$_i" -ge 200 ]; do
                sleep 0.05
                _i=$((_i + 1))
            done
            port=$(sed -n 's/^port //p' "$l.srv")
            ms=NA drops=NA retx=NA per=NA
            if [ -n "$port" ]; then
                snap "$EMU_NS_A" "$l.snmp0"
                rc=0
                (nsx "$EMU_NS_A" "$tr" 180 "$BIN/prog_many" client "$port" "$FANIN") \
                    </dev/null >"$l.cli" 2>"$l.clierr" || rc=$?
                reap "$spid" 60
                snap "$EMU_NS_A" "$l.snmp1"
                [ "$rc" = 0 ] || say "B12 run $r $tr: client exited $rc"
                ms=$(sed -n 's/^client: .* round trips in \([0-9]*\) ms/\1/p' "$l.cli")
                [ -n "$ms" ] || ms=NA
                per=$(sed -n 's/.*memory per connection \([0-9-]*\) bytes.*/\1/p' "$l.srv")
                [ -n "$per" ] || per=NA
                # shellcheck disable=SC2046
                set -- $($REPORT snmp "$l.snmp0" "$l.snmp1" Udp.RcvbufErrors Tcp.RetransSegs)
                drops=$1
                case "$tr" in
                    rudp-*)
                        # shellcheck disable=SC2046
                        set -- $($REPORT rudpstats "$l.srv") $($REPORT rudpstats "$l.clierr")
                        retx=$(($3 + $7)) # packets declared lost and resent, both ends
                        rec B12 "$tr" "$r" pto "$(($4 + $8))"
                        ;;
                    *) retx=$2 ;;
                esac
            else
                emu__kill_pid "$spid"
            fi
            rec B12 "$tr" "$r" fanin_ms "$ms"
            rec B12 "$tr" "$r" rcvbuf_drops "$drops"
            rec B12 "$tr" "$r" retx_pkts "$retx"
            rec B12 "$tr" "$r" mem_per_conn "$per"
            say "B12 run $r/$RUNS $tr: all answered in $ms ms, drops $drops, retransmissions $retx"
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi

# ---------------------------------------------------------------- B13, B14

# The applications themselves, unmodified, as users run them; requests per
# second from their own benchmark tools, kernel TCP and rudp in one run.
if want B13 || want B14; then
    for _b in redis-server redis-benchmark nginx wrk; do
        command -v "$_b" >/dev/null || fail "$_b not installed (integration/deps.sh bench)"
    done
    APPDIR=$OUT/apps
    rm -rf "$APPDIR"
    mkdir -p "$APPDIR/www" "$APPDIR/tmp"
    chmod 755 "$OUT" "$APPDIR" "$APPDIR/www" # nginx's workers run as nobody
    head -c 1024 /dev/urandom >"$APPDIR/www/small.bin"
    chmod 644 "$APPDIR/www/small.bin"
    emu_up bnB13 veth veth 1 # a namespace of our own; only its loopback is used
    r=1
    while [ "$r" -le "$LAST" ]; do
        port=6400
        for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
            l=$LOGS/B13.$tr.$r
            if want B13; then
                sc=B13
                srv "$EMU_NS_A" "$tr" 120 "$l.redis" redis-server --port "$port" \
                    --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
                    --dir "$APPDIR" --protected-mode no --unixsocket '' --logfile ''
                spid=$SRV
                set_rps=NA get_rps=NA
                if wait_port "$EMU_NS_A" "$tr" "$port"; then
                    (nsx "$EMU_NS_A" "$tr" 120 redis-benchmark -h 127.0.0.1 -p "$port" \
                        -n 100000 -c 50 -t set,get --csv) >"$l.csv" 2>"$l.err" ||
                        say "B13 run $r $tr: redis-benchmark failed (see $l.err)"
                    set_rps=$(awk -F'"' '$2 == "SET" { print $4 }' "$l.csv")
                    get_rps=$(awk -F'"' '$2 == "GET" { print $4 }' "$l.csv")
                fi
                emu__kill_pid "$spid"
                rec B13 "$tr" "$r" set_rps "${set_rps:-NA}"
                rec B13 "$tr" "$r" get_rps "${get_rps:-NA}"
                say "B13 run $r/$RUNS $tr: SET ${set_rps:-NA}/s, GET ${get_rps:-NA}/s"
                port=$((port + 1))
            fi
            if want B14; then
                sc=B14
                l=$LOGS/B14.$tr.$r
                cat >"$l.conf" <<CONF
master_process on;
worker_processes 2;
daemon off;
pid $l.pid;
error_log $l.error warn;
events { worker_connections 1024; use epoll; }
http {
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 1000000;
    access_log off;
    client_body_temp_path $APPDIR/tmp/body;
    proxy_temp_path $APPDIR/tmp/proxy;
    fastcgi_temp_path $APPDIR/tmp/fastcgi;
    uwsgi_temp_path $APPDIR/tmp/uwsgi;
    scgi_temp_path $APPDIR/tmp/scgi;
    server { listen 127.0.0.1:$port; root $APPDIR/www; }
}
CONF
                srv "$EMU_NS_A" "$tr" $((APP_TIME + 60)) "$l.nginx" nginx -p "$APPDIR" \
                    -e "$l.error" -c "$l.conf"
                spid=$SRV
                rps=NA
                if wait_port "$EMU_NS_A" "$tr" "$port"; then
                    sleep 0.5 # the workers start after the master listens
                    (nsx "$EMU_NS_A" "$tr" $((APP_TIME + 60)) wrk -t2 -c50 "-d${APP_TIME}s" \
                        "http://127.0.0.1:$port/small.bin") >"$l.wrk" 2>&1 ||
                        say "B14 run $r $tr: wrk failed (see $l.wrk)"
                    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$l.wrk")
                    grep -q 'Non-2xx\|Socket errors' "$l.wrk" &&
                        say "B14 run $r $tr: $(grep 'Non-2xx\|Socket errors' "$l.wrk")"
                fi
                emu__kill_pid "$spid"
                rec B14 "$tr" "$r" rps "${rps:-NA}"
                say "B14 run $r/$RUNS $tr: ${rps:-NA} requests/s"
                port=$((port + 1))
            fi
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi

# ---------------------------------------------------------------- B15, B16

# Roaming (issue 15), with the roaming tests' helpers (roamlib.sh): one
# connection, roamio.py at both ends, SIZE random bytes from a to b, the
# sender unpaced, on B15's link. B15 moves a's address three times
# (emu_readdr), each time b holds another quarter; B16 silences the link
# both ways for 10 s (emu_blackout) once b holds a quarter. Kernel TCP
# runs the same transfers: how it fails is printed, never asserted. A
# transfer with no byte arriving for ROAM_STALL s is stopped.
#
# roam_row SC TR: one transfer of scenario SC over TR in run $r; records
# complete (0/1), total_s (connect to the last byte read, complete runs),
# goodput (Mbit/s over that time), got_mb, and B15: changes (made) and
# survived (changes after which bytes still arrived), B16: resume_s (the
# link's return to the next byte read) and down_mb (read meanwhile). The
# outcome in words goes to meta.tsv as outcome_SC_TR_RUN.
roam_row() {
    _sc=$1 _tr=$2
    case "$_tr" in
        rudp-*) roam_mode shim >/dev/null; ROAM_ENV="RUDP_CC=${_tr#rudp-} RUDP_ACCEPT_TCP=0" ;;
        *) roam_mode tcp >/dev/null || return 0; ROAM_ENV="" ;;
    esac
    EMU_IPV6=0 emu_up "bn$_sc" "$SPEC_B15" "$SPEC_B15" "$r"
    _size=$(stat -c %s "$T/payload")
    # shellcheck disable=SC2046
    roam_transfer a2b 7400 0 $(cc_opt "$_tr")
    _t0=$ROAM_T0 _made=0 _survived=0 _stop="" _times="" _resume=NA _down=NA
    if [ "$_sc" = B15 ]; then
        _k=1
        for _new in 10.99.0.11 10.99.0.12 10.99.0.13; do
            _rc=0
            roam_wait_bytes "$T/out" $((_size * _k / 4)) "$ROAM_SENDER" || _rc=$?
            case $_rc in
                1) _stop="the sender ended before change $_k" ;;
                2) _stop="nothing arrived for ${ROAM_STALL} s" ;;
            esac
            [ -z "$_stop" ] || break
            emu_readdr a "$_new" 2>>"$LOGS/emu.log"
            _times="$_times $(ms_now)"
            _made=$_k _k=$((_k + 1))
        done
    else
        _rc=0
        roam_wait_bytes "$T/out" $((_size / 4)) "$ROAM_SENDER" || _rc=$?
        case $_rc in
            0) emu_blackout 10 2>>"$LOGS/emu.log"; _times=$EMU_DOWN_END_MS _made=1 ;;
            1) _stop="the sender ended before the blackout" ;;
            2) _stop="nothing arrived for ${ROAM_STALL} s" ;;
        esac
    fi
    # A stalled transfer stops here, not after another ROAM_STALL.
    [ -z "$_stop" ] || roam_stop "$ROAM_SENDER"
    roam_finish
    _last=$(tail -n 1 "$T/prog" 2>/dev/null | cut -d' ' -f1)
    for _ch in $_times; do
        [ -z "$(roam_first_after "$_ch" "$T/prog")" ] || _survived=$((_survived + 1))
    done
    if [ "$_sc" = B16 ] && [ "$_made" = 1 ]; then
        _line=$(roam_first_after "$_times" "$T/prog")
        [ -z "$_line" ] || _resume=$(calc "(${_line%% *} - $_times) / 1000")
        _down=$(awk -v e="$_times" '$1 <= e - 10000 { b0 = $2 } $1 <= e { b1 = $2 }
            END { printf "%.1f", (b1 - b0) / 1e6 }' "$T/prog")
    fi
    _secs=NA _gp=NA
    if [ "$ROAM_OK" = 1 ]; then
        _secs=$(calc "($_last - $_t0) / 1000")
        _gp=$(calc "$_size * 8 / ($_last - $_t0) / 1000")
    fi
    _what="$ROAM_OUTCOME"
    if [ "$ROAM_OK" = 1 ]; then
        _what="complete in $(secs $((_last - _t0))), $(calc "$_size * 8 / ($_last - $_t0) / 1000" | cut -c1-5) Mbit/s"
    else
        # When the bytes stopped: after which change (or the blackout), how long in.
        if [ "$_made" = 0 ]; then _at="before the first change"
        elif [ "$_survived" -lt "$_made" ]; then _at="at change $((_survived + 1)) of 3"
        else _at="after the last change"; fi
        [ "$_sc" = B15 ] || _at=$(echo "$_at" | sed 's/the first change/the blackout/;
            s/change 1 of 3/the blackout/; s/the last change/the blackout/')
        _what="died $_at: ${_last:+last byte $(secs $((_last - _t0))) after connect; }${_stop:+$_stop, stopped; }$ROAM_OUTCOME"
    fi
    meta "outcome_${_sc}_${_tr}_$r" "$_what"
    for _f in cli srv; do cp "$EMU_DIR/$_f.log" "$LOGS/$_sc.$_tr.$r.$_f" 2>/dev/null || true; done
    cp "$T/prog" "$LOGS/$_sc.$_tr.$r.prog" 2>/dev/null || true
    rec "$_sc" "$_tr" "$r" complete "$ROAM_OK"
    rec "$_sc" "$_tr" "$r" total_s "$_secs"
    rec "$_sc" "$_tr" "$r" goodput "$_gp"
    rec "$_sc" "$_tr" "$r" got_mb "$(calc "$ROAM_GOT / 1e6")"
    if [ "$_sc" = B15 ]; then
        rec B15 "$_tr" "$r" changes "$_made"
        rec B15 "$_tr" "$r" survived "$_survived"
    else
        rec B16 "$_tr" "$r" resume_s "$_resume"
        rec B16 "$_tr" "$r" down_mb "$_down"
    fi
    [ "$_sc" = B15 ] || _what="resumed $_resume s after the link's return; $_what"
    say "$_sc run $r/$RUNS $_tr: $_what"
    emu_down 2>>"$LOGS/emu.log"
}

for sc in B15 B16; do
    want "$sc" || continue
    if [ "$sc" = B15 ]; then head -c 20000000 /dev/urandom >"$T/payload"
    else head -c 12000000 /dev/urandom >"$T/payload"; fi
    r=1
    while [ "$r" -le "$RUNS" ]; do # no traced run: roamio.py is not bulk
        for tr in $(rotate "$r" $TRS); do
            roam_row "$sc" "$tr"
        done
        r=$((r + 1))
    done
done

# ---------------------------------------------------------------- B17

. "$ROOT/integration/bench/b17_fetch.sh"

# B18, B19: recorded LTE links, delay percentiles (trace.sh)
. "$ROOT/integration/bench/trace.sh"

# ---------------------------------------------------------------- report

# ---------------------------------------------------------------- plots

for d in "$OUT"/qlog/*/; do
    [ -d "$d" ] || continue
    sc=$(basename "$d")
    f=$(ls -S "$d" | grep '\.sqlog$' | head -1)
    [ -n "$f" ] || { say "$sc: no qlog trace written"; continue; }
    python3 "$TOOLS/rudp-plot" "$d$f" -o "$OUT/plot_$sc.png" \
        --title "$sc, $QLOG_TR, traced run (unrecorded): $f" >>"$LOGS/plot.log" 2>&1 ||
        say "$sc: rudp-plot failed (see $LOGS/plot.log)"
done
[ "${BENCH_QLOG:-1}" = keep ] || rm -rf "$OUT/qlog"

meta load "load average $LOAD0 at start, $(loadavg) at end; $(($(date +%s) - START)) s in all"
$REPORT table "$OUT"
gnuplot "$OUT/bench.gp" 2>"$LOGS/gnuplot.log" || { cat "$LOGS/gnuplot.log" >&2; fail "gnuplot failed"; }
[ -s "$OUT/bench.png" ] || fail "no chart written"
say "table: $OUT/table.txt; chart: $OUT/bench.png; per-scenario plots: $OUT/plot_*.png; raw: $RES; logs: $LOGS"
