# Helpers for the compat scripts (integration/tests/apps/t_*.sh that run packaged
# servers: nginx, redis, socat, sshd, postgres, iperf3...).  Sourced after
# lib/lib.sh and lib/shimlib.sh:
#
#   compat_deps                 install the `compat` package group (bounded)
#   assert_listener PORT        under the shim: a UDP socket on PORT and no TCP
#                               listener; over kernel TCP: a TCP listener
#   stop_app PID [SECS] [SIG]   send SIG (default TERM) to PID, wait (bounded,
#                               default 20 s); returns its exit status, 124 if
#                               it is still running (cleanup then kills it).
#                               PID's descendants (forked workers, children)
#                               are noted first (PID and start time) in
#                               STOPPED_KIDS: on exit, any of them still
#                               running (same start time: not a reused PID) is
#                               killed too, as are the descendants of every
#                               process left in $PIDS
#   descendants PID             PID's children, grandchildren... (one a line)
#   survivors PID...            those of the PIDs still running (not zombies)
#   describe PID...             one line each: PID, command, state, wchan
#   nginx_conf PORT [LINES]     writes $T/nginx.conf: master and 2 workers on
#                               127.0.0.1:PORT serving $T/www, everything it
#                               writes under $T; LINES go into http {} (the
#                               default: access_log off;)
#   secs_since MS               whole seconds since ms_now said MS
#   ASAN_RUN                    1 when the shim is the ASan build (make asan):
#                               throughput-bound loads are then scaled down, as
#                               the ASan engine is several times slower
#   regular_ldp                 the preload line of the regular (non-ASan)
#                               shim next to an ASan build, for programs that
#                               hang with libasan preloaded, shim or not (as
#                               lib.sh does for curl)

case "$SAN" in asan) ASAN_RUN=1 ;; *) ASAN_RUN=0 ;; esac

regular_ldp() {
    _r=${BUILD%/asan}/librudp_shim.so
    [ -f "$_r" ] || fail "the regular shim $_r is needed next to the ASan build (make all)"
    echo "$_r"
}

compat_deps() {
    timeout 900 "$ROOT/integration/deps.sh" compat ||
        fail "cannot install the compat packages (integration/deps.sh compat)"
}

assert_listener() {
    _tl=$(ss -H -tln "sport = :$1" 2>/dev/null || true)
    if [ "$SHIM_MODE" = shim ]; then
        ss -H -uan "sport = :$1" 2>/dev/null | grep -q . || fail "no UDP socket on port $1 under the shim"
        # A TCP listener is the dual listener (RUDP_ACCEPT_TCP, on by default
        # without a key) taking plain clients; assert_on_port checks that no
        # TCP connection carries the shimmed ones.
        if [ -n "$_tl" ]; then
            echo "ok: port $1: UDP socket, and a TCP listener for plain clients (RUDP_ACCEPT_TCP)"
        else
            echo "ok: port $1: UDP socket, no TCP listener"
        fi
    else
        [ -n "$_tl" ] || fail "no TCP listener on port $1"
        echo "ok: port $1: kernel TCP listener (RUDP_NO_SHIM=1)"
    fi
}

descendants() {
    for _k in $(pgrep -P "$1" 2>/dev/null); do
        echo "$_k"
        descendants "$_k"
    done
}

survivors() {
    for _s in "$@"; do
        case "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$_s/status" 2>/dev/null)" in
            ''|Z) ;;
            *) echo "$_s" ;;
        esac
    done
}

# Field 22 of /proc/PID/stat (after the parenthesised name): start time.
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }

KIDS_NOTED=""
stop_app() {
    STOPPED_KIDS=$(descendants "$1" | tr '\n' ' ')
    for _k in $STOPPED_KIDS; do KIDS_NOTED="$KIDS_NOTED $_k:$(start_time "$_k")"; done
    kill "-${3:-TERM}" "$1" 2>/dev/null || true
    wait_exit "$1" "${2:-20}"
}

# On exit: the descendants of every process still recorded in $PIDS (a
# forked server's children are not in $PIDS) and those stop_app noted end
# with them; a PID is killed only while its start time is the one noted.
compat_cleanup() {
    for _p in $PIDS; do
        for _k in $(descendants "$_p"); do KIDS_NOTED="$KIDS_NOTED $_k:$(start_time "$_k")"; done
    done
    for _e in $KIDS_NOTED; do
        _p=${_e%%:*}
        [ -n "${_e#*:}" ] && [ "$(start_time "$_p")" = "${_e#*:}" ] && kill "$_p" 2>/dev/null
    done
    cleanup
    for _e in $KIDS_NOTED; do
        _p=${_e%%:*}
        [ -n "${_e#*:}" ] && [ "$(start_time "$_p")" = "${_e#*:}" ] && kill -9 "$_p" 2>/dev/null
    done
    return 0
}
trap compat_cleanup EXIT INT TERM

# describe PID...: "PID (command line) state wchan" for each one still there.
describe() {
    for _d in "$@"; do
        [ -r "/proc/$_d/cmdline" ] || continue
        printf '%s (%s) %s %s\n' "$_d" "$(tr '\0' ' ' <"/proc/$_d/cmdline" | cut -c1-60)" \
            "$(sed -n 's/^State:[[:space:]]*//p' "/proc/$_d/status" 2>/dev/null)" \
            "$(cat "/proc/$_d/wchan" 2>/dev/null)"
    done
}

secs_since() { echo $(( ($(ms_now) - $1 + 500) / 1000 )); }

# nginx_start PORT: runs nginx on $T/nginx.conf (nginx_conf) under the
# shim and waits until it listens on PORT with both workers up; NGINX is
# the master's pid.
nginx_start() {
    bg_app nginx nginx -p "$T" -e "$T/error.log" -c "$T/nginx.conf"
    NGINX=$LAST_PID
    wait_listen "$1" 20
    _i=0
    while [ "$(pgrep -c -P "$NGINX" 2>/dev/null || echo 0)" -lt 2 ]; do
        [ "$_i" -lt 100 ] || { show "$T/error.log" "$T/nginx.log"; fail "nginx did not start 2 workers"; }
        sleep 0.05
        _i=$((_i + 1))
    done
}

nginx_conf() {
    cat >"$T/nginx.conf" <<CONF
master_process on;
worker_processes 2;
daemon off;
pid $T/nginx.pid;
error_log $T/error.log warn;
events {
    worker_connections 1024;
    use epoll;
}
http {
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 100000;
${2:-    access_log off;}
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
    server {
        listen 127.0.0.1:$1;
        root $T/www;
    }
}
CONF
}
