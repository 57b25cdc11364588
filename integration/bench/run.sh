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
#   B25    as B14, nginx as two processes (master_process off, listen
#          reuseport), each serving the connections it accepts: under the
#          shim with its own engines, not the master's (design.md, "The
#          move measured before building it"). Only when BENCH_ONLY names it;
#          with B13's transports (+norecv too), BENCH_APP_TIME as B14's.
#   B15    roaming: 20 MB over one connection while the client's address
#          changes 3 times (emu_readdr): total time and goodput, or how
#          kernel TCP fails
#   B16    roaming: 12 MB over one connection across a 10 s blackout of the
#          link (emu_blackout): time to resume after it, total time
#   B17    short fetches on new connections (curl from python3 http.server,
#          10 KB, 100 KB, 1 MB), 100 Mbit/s, 50 ms RTT: connect() and each
#          fetch in ms and in round trips (b17_fetch.sh)
#   B20    loopback: connects per second and 1-byte round trips per second
#          of a static client under rudp-supervise, a static server under
#          it, the preload and kernel TCP (and kernel TCP under
#          rudp-supervise --pass: the filter alone), tests/prog_reach
#          (b20_reach.sh, issue 35)
#   B21    path MTU (issue 44, b21_mtu.sh): bulk goodput on B1's link at MTU
#          1280 with every IP fragment dropped, 1500, 9000, and through a
#          WireGuard tunnel (wireguard-go) over it; the time from a black
#          hole's start (packets over 1280 bytes dropped, no ICMP) to the
#          bytes flowing again
#   B22    two paths (issue 48, b22_hand.sh): two veth pairs at 100 Mbit/s;
#          a download whose primary drops everything for 10 s: the longest
#          gap at the receiver (kernel TCP's the reference), the moves;
#          and an idle connection's standby cost (datagrams and bytes per
#          hour), keyed and unkeyed
#   B23    B1's transfer under perf record -a -g: each end's CPU per GB,
#          the kernel's work for it included wherever it ran (kernel TCP's
#          ACKs, pacing and sending in softirq; b23_ends.sh, issue 46)
#   B24    the ceiling of issue 46's design change (b24_ceiling.sh): redis
#          GET's shape in one program (integration/bench/ceiling.c) over
#          kernel TCP, under the shim, and driving the core in its own
#          thread (no engine, no bridge): requests per second, CPU per
#          request at each end
#   B8     B1's link, bulk goodput without and with a spoofed-source SYN
#          flood and a junk-datagram flood at the receiver's port (sent
#          from inside the receiver's namespace, so they do not cross the
#          link); achieved flood rates, receiver peak RSS and CPU
#
# Every bulk row also says what limited the flow (the sender's TCP_INFO
# averaged by bulk.c: cwnd, peer window, app, else pacing) and its CPU cost:
# seconds of CPU per GB at the sender and at the receiver (whole process,
# engine included), and on emulated rows the busiest emulator thread's CPU
# (near 100 % means the emulator, not the transport, set the pace). Issue
# 33: each emulated row's kernel references against the line rate (a
# lossless row whose kernel bbr is under 85 % of it is not counted), system
# calls (perf stat) and context switches per GB at each end, the machine's
# and the emulator's CPU per GB; B5, B6 and B13 the same per request; the
# table ends with issue 33's targets, met or not (report_targets.py).
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
#   BENCH_ONLY=B1,...,B22 scenarios to run (e.g. BENCH_ONLY=B2,B5)
#   BENCH_ROAM_STALL=20   B15, B16: stop a transfer after this many seconds
#                         with no byte arriving
#   BENCH_FANIN=3500      B12's connections
#   BENCH_APP_TIME=5      seconds of wrk per B14 and B25 run (B13: 100,000 requests)
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
#   BENCH_REACH_N=1000    B20's connects per run; BENCH_REACH_RR=10000 its
#                         1-byte round trips
#   BENCH_CC="newreno"    rudp controllers (default: every one RUDP_CC accepts
#                         of newreno, cubic, bbr)
#   BENCH_KEYED=1         0: no keyed rows and no cryptocost
#   BENCH_APP_RECV=1      0: no rudp-CC+norecv rows (the app thread's
#                         receive and the writes in memory off:
#                         RUDP_APP_RECV=0 RUDP_SEND_RING=0) in B5, B6, B13, B14
#   BENCH_BUF=32M         the room both transports get: kernel TCP's largest
#                         buffers in every namespace (net.ipv4.tcp_rmem and
#                         tcp_wmem maximum) and rudp's RUDP_BUFFER (largest
#                         send buffer and receive window) in bulk transfers,
#                         as a host on a long fat path is tuned
#                         (docs/benchmarks.md)
#   BENCH_PERF=1          0: no cost pass under perf stat (no system call
#                         counts; CPU and context switches remain, from each
#                         program's rusage). With it, run 1 of B1-B4, B6 and
#                         B9-B11's bulk transfers, B6's ping-pong and B13 is
#                         run again under perf for its system calls alone
#                         (PSTAT_SC below; B5 counts in its one pass: 40 ms
#                         round trips)
#   BENCH_SC_TIME=3       seconds of a bulk transfer's cost pass
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
. "$ROOT/integration/lib/wglib.sh"             # B21's WireGuard tunnel
. "$ROOT/integration/tests/paths/pmlib.sh"     # B21's fragment counters
ROAM_STALL=${BENCH_ROAM_STALL:-20}

RUNS=${BENCH_RUNS:-3}
ONLY=${BENCH_ONLY:-B1,B2,B3,B4,B5,B6,B7,B8,B9,B10,B11,B12,B13,B14,B15,B16,B17,B18,B19,B20,B21,B22,B23,B24}
APP_TIME=${BENCH_APP_TIME:-5}
FANIN=${BENCH_FANIN:-3500}
B23_HZ=${BENCH_B23_HZ:-999} # said at the start, not after the scenarios before B23
case "$B23_HZ" in
    '' | *[!0-9]* | 0) fail "BENCH_B23_HZ=$B23_HZ: not a whole number of samples per second (999 by default)" ;;
esac
TIME=${BENCH_TIME:-15}
LO_TIME=${BENCH_LO_TIME:-3}
SC_TIME=${BENCH_SC_TIME:-3}
FAIR_TIME=${BENCH_FAIR_TIME:-15}
FLOOD_TIME=${BENCH_FLOOD_TIME:-10}
FLOOD_SYN=${BENCH_FLOOD_SYN:-3000}
FLOOD_JUNK=${BENCH_FLOOD_JUNK:-3000}
FLOOD_CONTROL=${BENCH_FLOOD_CONTROL:-0}
RAWPY=$ROOT/integration/tools/rudpraw.py
RR_COUNT=${BENCH_RR_COUNT:-1000}
BUF=${BENCH_BUF:-32M}
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

# The room both transports get (BENCH_BUF): a host on a long fat path
# raises TCP's buffer limits well past the bandwidth-delay product (B10:
# 2.5 MB), for the send queue holds every byte until it is acknowledged
# in order: in flight, plus everything SACKed behind a loss for one more
# round trip. The namespaces inherit the host's tcp_wmem (4 MB at most
# here), which held kernel bbr to ~56 % on B10. rudp's RUDP_BUFFER is set
# to the same for the bulk transfers (bulk_run) only: a connection's idle
# memory grows with it (B12, 500 connections: 28 KB each at the default
# 8M, 46 KB at 32M), and the request/response, fan-in and application rows
# measure the default. (net.core.rmem_max/wmem_max are the host's and only bound
# setsockopt: autotuning follows tcp_rmem/tcp_wmem, and the shim's UDP
# sockets take their size with SO_RCVBUFFORCE as root.)
case "$BUF" in
    *[kK]) BUFB=$((${BUF%?} * 1024)) ;;
    *[mM]) BUFB=$((${BUF%?} * 1048576)) ;;
    *) BUFB=$BUF ;;
esac
EMU_SYSCTL="net.ipv4.tcp_rmem=4096 131072 $BUFB
net.ipv4.tcp_wmem=4096 16384 $BUFB"

# What each measured program costs. PSTAT=FILE before nsx: its CPU and
# context switches, all threads (engine included), from wait4's rusage
# (build/progs/rusage, integration/bench/rusage.c), which costs the program
# nothing while it runs. PSTAT_SC=FILE: its system calls, context switches
# and CPU under perf stat (raw_syscalls:sys_enter), in a pass of its own
# (costpass): perf's per-task counters and its tracepoint on every call
# slow each call and each context switch, so the transport that makes more
# of them is slowed more, and no rate, latency or CPU figure of the table
# comes from a program run under it (redis-benchmark under the shim, this
# VM: 45,000 requests/s bare, 27,000-35,000 under perf stat; kernel TCP
# 54,000 and 50,000).
PERF_EV=task-clock,context-switches,raw_syscalls:sys_enter
PERF=""
PSTAT=""
PSTAT_SC=""
ROOM="" # bulk_run sets it to BUF for rudp's RUDP_BUFFER (nsx)
if [ "${BENCH_PERF:-1}" != 0 ] && command -v perf >/dev/null &&
    perf stat -x, -o /dev/null -e "$PERF_EV" true 2>/dev/null; then
    PERF=perf
fi

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

# The app thread's receive and the writes in memory (issue 46,
# shim/engine/apprecv.c, txring.c; on by default): QLOG_TR again with
# RUDP_APP_RECV=0 RUDP_SEND_RING=0 at both ends, as
# rudp-CC+norecv, in the scenarios of requests and round trips (B5, B6,
# B13, B14), so that each prints the path on and off in one run. None when
# BENCH_APP_RECV=0.
RECV_TR=""
RECV_SCS="B5 B6 B13 B14"
[ "${BENCH_APP_RECV:-1}" = 0 ] || [ -z "$QLOG_TR" ] || RECV_TR=$QLOG_TR+norecv

# trs SC: scenario SC's transports: TRS, KEY_TR in KEY_SCS, RECV_TR in
# RECV_SCS.
trs() {
    _t=$TRS
    case " $KEY_SCS " in *" $1 "*) _t="$_t $KEY_TR" ;; esac
    case " $RECV_SCS " in *" $1 "*) _t="$_t $RECV_TR" ;; esac
    echo $_t
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
meta tuning "every namespace: net.ipv4.tcp_rmem = 4096 131072 $BUFB, tcp_wmem = 4096 16384 $BUFB; rudp bulk transfers: RUDP_BUFFER=$BUF (host: tcp_rmem $(sysctl -n net.ipv4.tcp_rmem | tr '\t' ' '), tcp_wmem $(sysctl -n net.ipv4.tcp_wmem | tr '\t' ' '), net.core.rmem_max $(sysctl -n net.core.rmem_max), wmem_max $(sysctl -n net.core.wmem_max)); syscall counts: ${PERF:-none (perf missing or refused)}"
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
for _s in B1 B2 B3 B4 B5 B9 B10; do
    eval "meta spec_$_s \"\$SPEC_$_s\"" # each direction's linkemu SPEC
done
meta link_B9 1000
meta link_B10 1000
meta link_B11 NA
meta desc_B1 "bulk, 100 Mbit/s, 10 ms RTT, no loss, queue 125 kB each way; ${TIME} s runs"
meta desc_B2 "bulk, 100 Mbit/s, 40 ms RTT, 1% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B3 "bulk, 100 Mbit/s, 40 ms RTT, 5% loss both ways, queue 500 kB; ${TIME} s runs"
meta desc_B4 "bulk, 100 Mbit/s, 100 ms RTT, 2% loss both ways, queue 1.25 MB; ${TIME} s runs"
meta desc_B9 "bulk, 1 Gbit/s, 1 ms RTT, no loss, queue 125 kB each way (linkemu --slack 50); ${TIME} s runs"
meta desc_B10 "bulk, 1 Gbit/s, 20 ms RTT, 1% loss both ways, queue 2.5 MB (linkemu --slack 50); ${TIME} s runs"
meta desc_B11 "bulk over a veth pair between two namespaces, MTU 1500, no emulator; ${TIME} s runs"
meta desc_B12 "fan-in: $FANIN connections opened at once by one client process to one server, loopback in a fresh namespace, one byte each way on all"
meta desc_B13 "redis-benchmark -c 50 -n 100000 -t set,get against redis-server, loopback in a fresh namespace"
meta desc_B14 "nginx (master + 2 workers) serving a 1 KiB file, wrk -t2 -c50 -d${APP_TIME}s, loopback in a fresh namespace"
meta desc_B25 "two nginx processes (master_process off, listen reuseport: each serves what it accepts) serving a 1 KiB file, wrk -t2 -c50 -d${APP_TIME}s, loopback in a fresh namespace"
meta desc_B15 "roaming: 20 MB a -> b over one connection (roamio.py, unpaced), 20 Mbit/s, 20 ms RTT, queue 50 kB each way; the client's address changes 3 times (at 1/4, 1/2, 3/4 of the bytes at b)"
meta desc_B16 "roaming: 12 MB a -> b over one connection (roamio.py, unpaced), B15's link; the link goes silent both ways for 10 s once b holds a quarter"
for _s in B21-1280 B21-1500 B21-9000 B21-wg B21-hole; do
    meta "spec_$_s" "$SPEC_B1"
done
meta desc_B21-1280 "bulk, B1's link (100 Mbit/s, 10 ms RTT, no loss) at MTU 1280, every IP fragment dropped at both ends (nftables); ${TIME} s runs"
meta desc_B21-1500 "bulk, B1's link at MTU 1500, IP fragments dropped; ${TIME} s runs"
meta desc_B21-9000 "bulk, B1's link at MTU 9000 (jumbo frames), IP fragments dropped; ${TIME} s runs"
meta desc_B21-wg "bulk through a WireGuard tunnel (wireguard-go, MTU 1420) over B1's link at MTU 1500 (the link counts the tunnel's packets); ${TIME} s runs"
meta desc_B21-hole "black hole: 30 MB a -> b (roamio.py, unpaced) on B1's link at MTU 1500; once b holds a quarter, b drops every packet over 1280 bytes and every fragment, no ICMP (kernel TCP: tcp_mtu_probing=1)"
meta desc_B23 "bulk on B1's link (100 Mbit/s, 10 ms RTT, no loss), every CPU sampled by perf ($B23_HZ Hz); ${TIME} s runs"
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
    _cc=${_tr#rudp-} _key="" _pf="" _recv=""
    case "$_cc" in *+key) _cc=${_cc%+key} _key=RUDP_KEY_FILE=$KEYFILE ;; esac
    case "$_cc" in *+norecv) _cc=${_cc%+norecv} _recv="RUDP_APP_RECV=0 RUDP_SEND_RING=0" ;; esac
    # PSTAT=FILE: the program's rusage to FILE; PSTAT_SC=FILE: perf stat's
    # counts to FILE (report.py read_perf reads both forms); ROOM=SIZE:
    # RUDP_BUFFER (bulk_run's transfers)
    [ -z "$PSTAT" ] || _pf="$BIN/rusage -o $PSTAT --"
    [ -z "$PSTAT_SC" ] || [ -z "$PERF" ] || _pf="perf stat -x, -o $PSTAT_SC -e $PERF_EV --"
    case "$_tr" in
        rudp-*) exec ip netns exec "$_ns" timeout -k 5 "$_secs" $_pf env LD_PRELOAD="$LDP" \
            RUDP_STATS=1 RUDP_FALLBACK=none RUDP_ACCEPT_TCP=0 RUDP_CC="$_cc" \
            ${ROOM:+RUDP_BUFFER=$ROOM} $_key $_recv $(qlog_env "$_tr") "$@" ;;
        *) exec ip netns exec "$_ns" timeout -k 5 "$_secs" $_pf "$@" ;;
    esac
}

# nsa_env SECS [VAR=VALUE...] CMD...: exec CMD in namespace a, bounded,
# with the variables set (replaces the calling subshell; B20, B24: rows
# that are not transports)
nsa_env() {
    _secs=$1
    shift
    exec ip netns exec "$EMU_NS_A" timeout -k 5 "$_secs" env "$@"
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
    bulk_pass "$_l" "$_port" "$_secs" PSTAT || return 0
    G=$($REPORT kv "$_l.recv" bytes mbps | cut -d' ' -f2)
    keyed_ok "$_tr" "$_l.recv" "$_l.err" || { G=NA UNKEYED=1; }
}

# bulk_sc: after bulk_run (its variables) and whatever the caller counts
# over the run (the machine's and the emulator's CPU, the link's drops),
# before limits: the system calls per GB, under perf, in a pass of their
# own (LOG.sc.*), in run 1.
bulk_sc() {
    [ -n "${BULK_HOOK:-}" ] || ! costpass "$_run" ||
        bulk_pass "$_l.sc" $((_port + 500)) "$SC_TIME" PSTAT_SC || true
}

# bulk_pass LOG PORT SECS VAR: bulk_run's transfer, each end's costs to
# LOG.recv.perf and LOG.send.perf through VAR (PSTAT or PSTAT_SC: nsx);
# false when the receiver did not listen.
bulk_pass() {
    rm -f "$1.recv.perf" "$1.send.perf"
    eval "$4=\$1.recv.perf"
    ROOM=$BUF
    # shellcheck disable=SC2046
    srv "$_nsr" "$_tr" $(($3 + 60)) "$1.recv" "$BIN/bulk" recv --port "$2" \
        --time "$3" --once $(cc_opt "$_tr")
    PSTAT="" PSTAT_SC="" ROOM=""
    _spid=$SRV
    if ! wait_port "$_nsr" "$_tr" "$2"; then
        emu__kill_pid "$_spid"
        return 1
    fi
    # B8's hook: the receiver listens, the sender has not started.
    [ -z "${BULK_HOOK:-}" ] || $BULK_HOOK ready "$_spid"
    _rc=0
    # shellcheck disable=SC2046
    (eval "$4=\$1.send.perf"; ROOM=$BUF nsx "$EMU_NS_A" "$_tr" $(($3 + 60)) "$BIN/bulk" send --to "$_addr" \
        --port "$2" --timeout $(($3 + 45)) $(cc_opt "$_tr")) >"$1.send" 2>"$1.err" || _rc=$?
    # ... and the receiver's window is over.
    [ -z "${BULK_HOOK:-}" ] || $BULK_HOOK done "$_spid"
    reap "$_spid"
    [ "$_rc" = 0 ] || say "$_sc run $_run $_tr: bulk sender exited $_rc (see $1.err)"
    return 0
}

# costpass RUN: true when RUN is the one whose programs are run again
# under perf stat for their system calls (PSTAT_SC): the first, with perf.
costpass() { [ -n "$PERF" ] && [ "$1" = 1 ]; }

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
# rate, CPU seconds, system calls and context switches per GB sent
# (sender) and received (receiver), and for kernel TCP its own shares of
# time stalled by the peer's window and by the send buffer.
limits() {
    _lsc=$1 _lrun=$2 _ltr=$3 _l4=$4
    # system calls and context switches per GB at each end (bulkcost),
    # and the kernel's own account of the sender's stalls (NA under the
    # shim)
    # shellcheck disable=SC2046
    set -- "$1" "$2" "$3" "$4" $($REPORT bulkcost "$4") \
        $($REPORT kv "$4.send" rwnd_time_pct sndbuf_time_pct)
    rec "$1" "$3" "$2" sc_snd_gb "$5"
    rec "$1" "$3" "$2" sc_rcv_gb "$6"
    rec "$1" "$3" "$2" cs_snd_gb "$7"
    rec "$1" "$3" "$2" cs_rcv_gb "$8"
    rec "$1" "$3" "$2" rwnd_time_pct "$9"
    shift 9
    rec "$_lsc" "$_ltr" "$_lrun" sndbuf_time_pct "$1"
    set -- "$_lsc" "$_lrun" "$_ltr" "$_l4"
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

# The whole machine's busy CPU ticks (all CPUs, 1/100 s, /proc/stat), and
# those of every linkemu thread (exact: the kernel's runtime of each, in
# ticks; 0 without an emulator).
sys_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
emu_all_ticks() {
    [ -n "$EMU_PID" ] || { echo 0; return; }
    cat /proc/"$EMU_PID"/task/*/stat 2>/dev/null | awk '{ s += $14 + $15 } END { print s + 0 }'
}

# sys_cost SC RUN TR LOG T0 E0: the whole machine's CPU seconds per GB the
# receiver got (cpu_sys_s_gb), and linkemu's (cpu_emu_s_gb), from ticks T0
# and E0 (sys_ticks, emu_all_ticks) at the run's start. Kernel TCP's
# softirq work is in the machine's figure wherever it ran: here much of
# the receiving stack runs in linkemu's writes to the TUN device, so it is
# in the emulator's figure too, which is why that is not subtracted. The
# machine's figure also holds whatever else the box ran meanwhile, and
# /proc/stat samples at ticks (this kernel: TICK_CPU_ACCOUNTING), which
# misses some of a thread that runs in short timer-driven bursts: a
# rough, noisy figure on a shared box; linkemu's own is exact.
sys_cost() {
    _st=$(($(sys_ticks) - $5)) _et=$(($(emu_all_ticks) - $6))
    _sb=$($REPORT kv "$4.recv" bytes)
    _c=NA _ce=NA
    if [ "$_sb" != NA ] && [ "$_sb" -gt 0 ] && [ "$UNKEYED" = 0 ]; then
        _c=$(calc "$_st / 100 / ($_sb / 1e9)")
        [ -z "$EMU_PID" ] || _ce=$(calc "$_et / 100 / ($_sb / 1e9)")
    fi
    rec "$1" "$3" "$2" cpu_sys_s_gb "$_c"
    rec "$1" "$3" "$2" cpu_emu_s_gb "$_ce"
}

# costs SC RUN TR LOG: a run's retransmissions (retx: RETX) and what
# limited it (limits), recorded; RETX=NA for a run bulk_run found not
# keyed where it should be (UNKEYED=1).
costs() {
    RETX=NA
    [ "$UNKEYED" = 0 ] || return 0
    retx "$1" "$2" "$3" "$4"
    limits "$1" "$2" "$3" "$4"
}

# bulk SC RUN TR PORT: one run a -> b over the link that is up.
bulk() {
    _l=$LOGS/$1.$3.$2
    _s0=$(sys_ticks) _ea0=$(emu_all_ticks)
    if [ -z "$EMU_PID" ]; then # veth: no emulator, no loss
        bulk_run "$1" "$2" "$3" "$EMU_NS_B" "$EMU_IP_B" "$4" "$TIME" "$_l"
        sys_cost "$1" "$2" "$3" "$_l" "$_s0" "$_ea0"
        rec "$1" "$3" "$2" goodput "$G"
        bulk_sc
        costs "$1" "$2" "$3" "$_l"
        say "$1 run $2/$RUNS $3: $G Mbit/s, retx $RETX %"
        sleep 0.5
        return
    fi
    emu_stats
    _in0=$(emu_stat a2b_in_pkts) _lo0=$(emu_stat a2b_drop_loss)
    _e0=$(emu_ticks) _t0=$(date +%s%N)
    bulk_run "$1" "$2" "$3" "$EMU_NS_B" "$EMU_IP_B" "$4" "$TIME" "$_l"
    _e1=$(emu_ticks) _t1=$(date +%s%N)
    sys_cost "$1" "$2" "$3" "$_l" "$_s0" "$_ea0"
    emu_stats
    _in1=$(emu_stat a2b_in_pkts) _lo1=$(emu_stat a2b_drop_loss)
    rec "$1" "$3" "$2" goodput "$G"
    rec "$1" "$3" "$2" loss_pct "$(calc "100 * ($_lo1 - $_lo0) / ($_in1 - $_in0 + 1e-9)")"
    rec "$1" "$3" "$2" emu_cpu_pct "$(calc "($_e1 - $_e0) * 1e9 / ($_t1 - $_t0)")"
    bulk_sc
    costs "$1" "$2" "$3" "$_l"
    say "$1 run $2/$RUNS $3: $G Mbit/s, retx $RETX %"
    sleep 0.5 # let the queues drain before the next transport
}

# reqcost SC TR RUN LOG N [N_SC]: CPU us, system calls and context switches
# per request at each end: CPU and context switches from the measured
# pass's LOG.cli.perf and LOG.srv.perf (rusage) over N requests, system
# calls from the cost pass's LOG.cli.perf.sc and LOG.srv.perf.sc (perf
# stat) over N_SC (default N) (metrics *_cli, *_srv; NA where absent).
reqcost() {
    for _e in cli srv; do
        # shellcheck disable=SC2046
        set -- "$1" "$2" "$3" "$4" "$5" "${6:-$5}" $($REPORT reqcost "$4.$_e.perf" "$5" "${6:-$5}")
        rec "$1" "$2" "$3" "cpu_us_req_$_e" "$7"
        rec "$1" "$2" "$3" "sc_req_$_e" "$8"
        rec "$1" "$2" "$3" "cs_req_$_e" "$9"
        set -- "$1" "$2" "$3" "$4" "$5" "$6"
    done
}

# snap NS FILE: the namespace's /proc/net/snmp and /proc/net/netstat.
snap() { ip netns exec "$1" cat /proc/net/snmp /proc/net/netstat >"$2" 2>/dev/null || : >"$2"; }

# ---------------------------------------------------------------- scenarios

# Each scenario in a file of its own, in this order, with the helpers above.
. "$ROOT/integration/bench/b1_bulk.sh"     # B1-B4, B9-B11: bulk goodput
. "$ROOT/integration/bench/b5_rr.sh"       # B5: sequential echoes
. "$ROOT/integration/bench/b6_loopback.sh" # B6: loopback bulk and ping-pong
. "$ROOT/integration/bench/b7_fair.sh"     # B7: rudp beside kernel TCP cubic
. "$ROOT/integration/bench/b8_flood.sh"    # B8: bulk under SYN and junk floods
. "$ROOT/integration/bench/b12_fanin.sh"   # B12: 3,500 connections at once
. "$ROOT/integration/bench/b13_apps.sh"    # B13, B14, B25: redis and nginx
. "$ROOT/integration/bench/b15_roam.sh"    # B15, B16: roaming
. "$ROOT/integration/bench/b17_fetch.sh"   # B17: short fetches
. "$ROOT/integration/bench/trace.sh"       # B18, B19: recorded LTE links, delay percentiles
. "$ROOT/integration/bench/b20_reach.sh"   # B20: the supervisor's costs (issue 35)
. "$ROOT/integration/bench/b21_mtu.sh"     # B21: path MTU, WireGuard, a black hole (issue 44)
. "$ROOT/integration/bench/b22_hand.sh"    # B22: two paths, the stall and the standby's cost (issue 48)
. "$ROOT/integration/bench/b23_ends.sh"    # B23: each end's CPU, softirq work included (issue 46)
. "$ROOT/integration/bench/b24_ceiling.sh" # B24: the protocol in the program's thread (issue 46)

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
