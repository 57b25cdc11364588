# B17: what a person waits for on a long link (issue 32). Sourced by
# run.sh, with its helpers (emu_up, srv, nsx, rec, say...).
#
# A python3 http.server in namespace b (fetchsrv.py) serves files of 10 KB, 100 KB and
# 1 MB over a 100 Mbit/s link with a 50 ms round trip; curl in namespace a
# fetches each FETCH_N times, each fetch a new process and a new
# connection, as a browser's first visit or a script's API call. curl's own
# timers give connect() (time_connect: the handshake) and the whole fetch
# (time_total); the figures are medians over the fetches, then over the
# runs, and the report states them in round trips as well. Kernel TCP
# (cubic, bbr: the server's TCP_CONGESTION, fetchsrv.py) runs the same
# fetches over the same link in the same run. One fetch before the
# measured ones warms the server's page cache (and, where a transport has
# them, gives the client what a returning client has).
FETCH_N=${BENCH_FETCH_N:-15}
SPEC_B17="delay=25,rate=100,queue=625k"
meta desc_B17 "short fetches on new connections: curl from python3 http.server, 10 KB / 100 KB / 1 MB, 100 Mbit/s, 50 ms RTT, no loss, queue 625 kB each way; median of $FETCH_N fetches per size, each a new curl process"
meta rtt_B17 50

# fetch_times NS TR URL N OUT [CURL_OPT...]: N fetches of URL with curl
# under TR in NS, one line per fetch in OUT: "connect_s total_s http_code".
# The clients' 0-RTT tokens (B17T) go to a directory of the run's own.
fetch_times() {
    _fns=$1 _ftr=$2 _furl=$3 _fn=$4 _fout=$5
    shift 5
    : >"$_fout"
    _fi=0
    while [ "$_fi" -lt "$_fn" ]; do
        (nsx "$_fns" "$_ftr" 30 env XDG_RUNTIME_DIR="$T/tokens17" curl -s -o /dev/null \
            --max-time 20 -w '%{time_connect} %{time_total} %{http_code}\n' "$@" "$_furl") \
            >>"$_fout" 2>>"$_fout.err" || echo "NA NA fail" >>"$_fout"
        _fi=$((_fi + 1))
    done
}

# med_ms FILE COL: the median of column COL (seconds) of FILE's lines whose
# code is 200, in ms; NA if fewer than half the fetches succeeded.
med_ms() {
    awk -v c="$2" '$3 == 200 { v[n++] = $c * 1000 } END {
        if (n == 0 || n * 2 < NR) { print "NA"; exit }
        for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        printf "%.1f\n", n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }' "$1"
}

# B17T, with a token (issue 32's "<= 1.1 RTT with a token and the
# program's opt-in"): after B17's fetches of each transport, its server
# again with TCP_FASTOPEN and curl --tcp-fastopen (TCP_FASTOPEN_CONNECT),
# 10 KB only. One fetch first gives the client its token (kernel TCP: its
# cookie); each fetch after it uses the one the last gave. Kernel TCP gets
# TCP Fast Open too (net.ipv4.tcp_fastopen=3 in both namespaces, a
# per-namespace setting), so the rows compare 0-RTT with 0-RTT.
# BENCH_B17_TFO=0 leaves it out.
B17_TFO=${BENCH_B17_TFO:-1}
meta desc_B17T "B17 with TCP Fast Open: the server sets TCP_FASTOPEN, curl --tcp-fastopen (kernel TCP: net.ipv4.tcp_fastopen=3; rudp: a token from the fetch before), 10 KB; median of $FETCH_N fetches"
meta rtt_B17T 50

if want B17; then
    sc=B17
    mkdir -p "$T/www17"
    mkdir -m 700 -p "$T/tokens17"
    head -c 10000 /dev/urandom >"$T/www17/f10k"
    head -c 100000 /dev/urandom >"$T/www17/f100k"
    head -c 1000000 /dev/urandom >"$T/www17/f1m"
    command -v curl >/dev/null || fail "curl not installed (integration/deps.sh bench)"
    r=1
    while [ "$r" -le "$RUNS" ]; do # no traced run: a fetch is not a bulk flow
        emu_up bnB17 "$SPEC_B17" "$SPEC_B17" "$r"
        port=7101
        for tr in $(rotate "$r" $TRS); do
            l=$LOGS/B17.$tr.$r
            cc=${tr#*-} cc=${cc%+key}
            [ "$cc" != newreno ] || cc=reno # the kernel's name, which the shim takes too
            srv "$EMU_NS_B" "$tr" 600 "$l.srv" "$PY" "$ROOT/integration/bench/fetchsrv.py" \
                "$EMU_IP_B" "$port" "$T/www17" "$cc"
            spid=$SRV
            if wait_port "$EMU_NS_B" "$tr" "$port"; then
                fetch_times "$EMU_NS_A" "$tr" "http://$EMU_IP_B:$port/f10k" 1 "$l.warm"
                for f in f10k f100k f1m; do
                    fetch_times "$EMU_NS_A" "$tr" "http://$EMU_IP_B:$port/$f" "$FETCH_N" "$l.$f"
                    rec B17 "$tr" "$r" "${f}_ms" "$(med_ms "$l.$f" 2)"
                    [ "$f" != f10k ] || rec B17 "$tr" "$r" connect_ms "$(med_ms "$l.$f" 1)"
                done
                cat "$l.f10k" "$l.f100k" "$l.f1m" >"$l.all"
                rec B17 "$tr" "$r" connect_all_ms "$(med_ms "$l.all" 1)"
                rec B17 "$tr" "$r" failed "$(grep -vc ' 200$' "$l.all" || true)"
                say "B17 run $r/$RUNS $tr: connect $(med_ms "$l.all" 1) ms; 10 KB $(med_ms "$l.f10k" 2), 100 KB $(med_ms "$l.f100k" 2), 1 MB $(med_ms "$l.f1m" 2) ms"
            fi
            emu__kill_pid "$spid"
            port=$((port + 1))
            [ "$B17_TFO" != 0 ] || continue
            for ns in "$EMU_NS_A" "$EMU_NS_B"; do
                ip netns exec "$ns" sysctl -qw net.ipv4.tcp_fastopen=3 2>>"$LOGS/emu.log" || true
            done
            srv "$EMU_NS_B" "$tr" 600 "$l.tfo.srv" "$PY" "$ROOT/integration/bench/fetchsrv.py" \
                "$EMU_IP_B" "$port" "$T/www17" "$cc" tfo
            spid=$SRV
            if wait_port "$EMU_NS_B" "$tr" "$port"; then
                fetch_times "$EMU_NS_A" "$tr" "http://$EMU_IP_B:$port/f10k" 1 "$l.tfo.warm" --tcp-fastopen
                fetch_times "$EMU_NS_A" "$tr" "http://$EMU_IP_B:$port/f10k" "$FETCH_N" "$l.tfo.f10k" --tcp-fastopen
                rec B17T "$tr" "$r" f10k_ms "$(med_ms "$l.tfo.f10k" 2)"
                rec B17T "$tr" "$r" connect_all_ms "$(med_ms "$l.tfo.f10k" 1)"
                rec B17T "$tr" "$r" failed "$(grep -vc ' 200$' "$l.tfo.f10k" || true)"
                say "B17T run $r/$RUNS $tr: with TCP Fast Open: connect $(med_ms "$l.tfo.f10k" 1) ms; 10 KB $(med_ms "$l.tfo.f10k" 2) ms"
            fi
            emu__kill_pid "$spid"
            port=$((port + 1))
        done
        emu_down 2>>"$LOGS/emu.log"
        r=$((r + 1))
    done
fi
