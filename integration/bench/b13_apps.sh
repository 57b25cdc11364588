# B13, B14, B25: redis-benchmark against redis-server and wrk against nginx
# over loopback. Sourced by run.sh after its helpers (emu_up, srv, nsx,
# rec, want...); POSIX sh.
#
# The applications themselves, unmodified, as users run them; requests per
# second from their own benchmark tools, kernel TCP and rudp in one run.
# b13_pass LOG PORT N VAR: redis-server and redis-benchmark -n N (SET and
# GET) with $tr, each end's costs to LOG.srv.perf and LOG.cli.perf through
# VAR (PSTAT, or PSTAT_SC: its files then LOG.*.perf.sc); B13_SET and
# B13_GET the requests per second (empty if it failed).
b13_pass() {
    _suf=""
    [ "$4" = PSTAT ] || _suf=.sc
    rm -f "$1.srv.perf$_suf" "$1.cli.perf$_suf"
    eval "$4=\$1.srv.perf\$_suf"
    srv "$EMU_NS_A" "$tr" 120 "$1.redis$_suf" redis-server --port "$2" \
        --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$APPDIR" --protected-mode no --unixsocket '' --logfile ''
    PSTAT="" PSTAT_SC=""
    _spid=$SRV
    B13_SET="" B13_GET=""
    if wait_port "$EMU_NS_A" "$tr" "$2"; then
        (eval "$4=\$1.cli.perf\$_suf"; nsx "$EMU_NS_A" "$tr" 120 redis-benchmark -h 127.0.0.1 \
            -p "$2" -n "$3" -c 50 -t set,get --csv) >"$1.csv$_suf" 2>"$1.err$_suf" ||
            say "B13 run $r $tr: redis-benchmark failed (see $1.err$_suf)"
        B13_SET=$(awk -F'"' '$2 == "SET" { print $4 }' "$1.csv$_suf")
        B13_GET=$(awk -F'"' '$2 == "GET" { print $4 }' "$1.csv$_suf")
    fi
    # SIGINT: timeout passes it on, perf stat (or rusage) writes its
    # counts, redis-server shuts down (TERM would end perf unwritten)
    kill -INT "$_spid" 2>/dev/null || true
    reap "$_spid" 10
}

# b14_conf LOG PORT SHAPE [N]: nginx's configuration to LOG.conf[N].
# SHAPE workers: a master and 2 workers (B14); own: one process that
# serves what it accepts, its listener in a SO_REUSEPORT group (B25).
b14_conf() {
    if [ "$3" = workers ]; then
        b14_mp=on b14_wp=2 b14_ls=""
    else
        b14_mp=off b14_wp=1 b14_ls=" reuseport"
    fi
    cat >"$1.conf$4" <<CONF
master_process $b14_mp;
worker_processes $b14_wp;
daemon off;
pid $1.pid$4;
error_log $1.error$4 warn;
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
    server { listen 127.0.0.1:$2$b14_ls; root $APPDIR/www; }
}
CONF
}

# b14_procs NS PORT N: until N processes hold sockets on PORT in NS
# (kernel TCP's listeners, or the shim's UDP sockets: each process its
# own), at most 10 s. Where ss names no process at all (the engines' fds
# in tables of their own, RUDP_FD_TABLE=own) it cannot tell: said, and
# taken as held.
b14_procs() {
    b14_w=0
    while [ "$b14_w" -lt 200 ]; do
        b14_c=$(ip netns exec "$1" ss -H -n -p -a "sport = :$2" 2>/dev/null |
            grep -o 'pid=[0-9]*' | sort -u | wc -l)
        [ "$b14_c" -ge "$3" ] && return 0
        if [ "$b14_c" = 0 ]; then
            say "$sc: ss names no process on port $2; not checked that $3 hold it"
            return 0
        fi
        sleep 0.05
        b14_w=$((b14_w + 1))
    done
    say "$sc: fewer than $3 processes on port $2 after 10 s"
    return 1
}

# b14_pass LOG PORT SHAPE: wrk -t2 -c50 against nginx of SHAPE (b14_conf;
# own: two such processes on the port, both holding it before wrk
# starts) with $tr; its requests per second recorded for $sc. POSIX sh
# has no locals: every name here is b14_'s, apart from the helpers'
# (wait_port's _i).
b14_pass() {
    b14_l=$1 b14_n=1
    [ "$3" = own ] && b14_n=2
    b14_pids=""
    b14_i=1
    while [ "$b14_i" -le "$b14_n" ]; do
        b14_conf "$b14_l" "$2" "$3" "$b14_i"
        srv "$EMU_NS_A" "$tr" $((APP_TIME + 60)) "$b14_l.nginx$b14_i" nginx -p "$APPDIR" \
            -e "$b14_l.error$b14_i" -c "$b14_l.conf$b14_i"
        b14_pids="$b14_pids $SRV"
        # one at a time: the second joins the port the first holds
        wait_port "$EMU_NS_A" "$tr" "$2" && b14_procs "$EMU_NS_A" "$2" "$b14_i" || break
        b14_i=$((b14_i + 1))
    done
    rps=NA
    if [ "$b14_i" -gt "$b14_n" ]; then
        sleep 0.5 # the workers start after the master listens
        (nsx "$EMU_NS_A" "$tr" $((APP_TIME + 60)) wrk -t2 -c50 "-d${APP_TIME}s" \
            "http://127.0.0.1:$2/small.bin") >"$b14_l.wrk" 2>&1 ||
            say "$sc run $r $tr: wrk failed (see $b14_l.wrk)"
        rps=$(awk '/^Requests\/sec:/ { print $2 }' "$b14_l.wrk")
        grep -q 'Non-2xx\|Socket errors' "$b14_l.wrk" &&
            say "$sc run $r $tr: $(grep 'Non-2xx\|Socket errors' "$b14_l.wrk")"
    fi
    for b14_p in $b14_pids; do
        emu__kill_pid "$b14_p"
    done
    rec "$sc" "$tr" "$r" rps "${rps:-NA}"
    say "$sc run $r/$RUNS $tr: ${rps:-NA} requests/s"
}

if want B13 || want B14 || want B25; then
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
        for tr in $(rotate "$r" $(run_trs "$r" $(trs B13))); do
            l=$LOGS/B13.$tr.$r
            if want B13; then
                sc=B13
                b13_pass "$l" "$port" 100000 PSTAT
                set_rps=$B13_SET get_rps=$B13_GET
                # the system calls, in a pass of their own under perf stat
                n_sc=""
                if costpass "$r"; then
                    b13_pass "$l" $((port + 100)) 20000 PSTAT_SC
                    n_sc=40000
                fi
                reqcost B13 "$tr" "$r" "$l" 200000 $n_sc # SET and GET, -n 100000 each
                rec B13 "$tr" "$r" set_rps "${set_rps:-NA}"
                rec B13 "$tr" "$r" get_rps "${get_rps:-NA}"
                say "B13 run $r/$RUNS $tr: SET ${set_rps:-NA}/s, GET ${get_rps:-NA}/s"
                port=$((port + 1))
            fi
            if want B14; then
                sc=B14
                b14_pass "$LOGS/B14.$tr.$r" "$port" workers
                port=$((port + 1))
            fi
            if want B25; then
                sc=B25
                b14_pass "$LOGS/B25.$tr.$r" "$port" own
                port=$((port + 1))
            fi
        done
        r=$((r + 1))
    done
    emu_down 2>>"$LOGS/emu.log"
fi
