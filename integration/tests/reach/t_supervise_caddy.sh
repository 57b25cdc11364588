#!/bin/sh
# A real Go server from Debian's packages serves over rudp under rudp-run
# (issue 35, "done when" 2): Caddy (bookworm's caddy 2.6,
# a Go program: no preload reaches it) as a plain file server on $PORT,
# with a Caddyfile written here (not the package's systemd service: no
# admin endpoint, no automatic HTTPS, its state in the test's directory).
#   1. plain: Caddy alone and curl: kernel TCP (the counters see it), the
#      file served whole twice, the second time on the kept-alive
#      connection;
#   2. Caddy under rudp-run, which puts it under the supervisor by itself
#      (and says so): curl under the preload (twice, kept alive, as in 1),
#      then the Go client (gohttp get) under rudp-run (the supervisor too)
#      fetch the file whole (SHA-256), 0 TCP segments on the port, UDP
#      datagrams to it; then SIGTERM to the supervisor (rudp-run's pid: it
#      execs it) goes on to Caddy, which stops.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
CADDY=$(command -v caddy) || skip "caddy not installed (integration/deps.sh test)"
command -v curl >/dev/null 2>&1 || skip "curl not installed"

go_program gohttp "$T/gohttp"
need_tool rudp-run
# The user's way: rudp-run, which puts a Go program under the supervisor
# by itself (and says so at --log info)
RUN="$TOOLS/rudp-run --shim $SHIM --log info"

mkdir -p "$T/www" "$T/home"
head -c 1000000 /dev/urandom >"$T/www/f1m"
WANT=$(sha "$T/www/f1m")
cat >"$T/Caddyfile" <<EOF
{
	admin off
	auto_https off
	storage file_system $T/home/storage
}
:$PORT {
	root * $T/www
	file_server
}
EOF
URL=http://127.0.0.1:$PORT/f1m

for _how in plain supervised; do
    _sup=""
    [ "$_how" = plain ] || _sup=$RUN
    # shellcheck disable=SC2086 # $_sup: a command or nothing
    # Caddy's own files (autosave.json, its data) in the test's directory
    start_bg "caddy.$_how" env HOME="$T/home" XDG_CONFIG_HOME="$T/home/config" \
        XDG_DATA_HOME="$T/home/data" $_sup "$CADDY" run --config "$T/Caddyfile" --adapter caddyfile
    _srv=$LAST_PID
    if [ "$_how" = plain ]; then wait_tcp "$PORT" 60; else wait_udp "$PORT" 60; fi
    _t0=$(tcp_now) _u0=$(udp_now)
    # twice in one curl: the second on the kept-alive connection (curl's
    # num_connects: 1, then 0)
    _curl="curl --max-time 60 -sS -w %{num_connects}\n -o $T/got.$_how $URL -o $T/got2.$_how $URL"
    # shellcheck disable=SC2086 # $_curl: words ($T has no blank)
    if [ "$_how" = plain ]; then
        $_curl >"$T/curl.$_how" 2>"$T/curl.$_how.err" ||
            { show "$T/curl.$_how" "$T/curl.$_how.err" "$T/caddy.$_how.log"; fail "$_how: curl failed"; }
    else
        # stderr apart: in an ASan run under_shim notes there which shim curl runs under
        under_shim $_curl >"$T/curl.$_how" 2>"$T/curl.$_how.err" ||
            { show "$T/curl.$_how" "$T/curl.$_how.err" "$T/caddy.$_how.log"; fail "$_how: curl (preloaded) failed"; }
    fi
    for _f in "$T/got.$_how" "$T/got2.$_how"; do
        [ "$(sha "$_f")" = "$WANT" ] || fail "$_how: curl did not get the file whole"
    done
    [ "$(tr '\n' ' ' <"$T/curl.$_how")" = "1 0 " ] ||
        { show "$T/curl.$_how"; fail "$_how: curl's second fetch did not reuse the connection"; }
    _what="curl (2 fetches, 1 connection)"
    if [ "$_how" = supervised ]; then
        # shellcheck disable=SC2086 # $RUN: a command and its options
        timeout 60 $RUN "$T/gohttp" get "$URL" >"$T/goget" 2>&1 ||
            { show "$T/goget" "$T/caddy.$_how.log"; fail "$_how: the Go client failed"; }
        grep -qx "200 OK, 1000000 bytes, sha256 $WANT" "$T/goget" ||
            { show "$T/goget"; fail "$_how: the Go client did not get the file whole"; }
        _what="curl (preloaded; 2 fetches, 1 connection) and the Go client (rudp-run: supervised)"
    fi
    if [ "$_how" = supervised ]; then
        for _f in "$T/caddy.$_how.log" "$T/goget"; do
            grep -q "^rudp-run: .*: under the supervisor, rudp-supervise: it is a Go program" "$_f" ||
                { show "$_f"; fail "$_how: rudp-run did not say it chose the supervisor"; }
        done
    fi
    TCP=$(( $(tcp_now) - _t0 )) UDP=$(( $(udp_now) - _u0 ))
    echo "$_how: $_what fetched the 1 MB file from Caddy; TCP segments on port $PORT: $TCP, UDP datagrams to it: $UDP"
    if [ "$_how" = plain ]; then
        [ "$TCP" -gt 0 ] || fail "plain: no TCP segment counted (probe broken?)"
    else
        [ "$TCP" = 0 ] || { show "$T/caddy.$_how.log"; fail "supervised: $TCP TCP segments: not rudp"; }
        [ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"
    fi
    kill -TERM "$_srv"
    _rc=0
    wait_exit "$_srv" 30 || _rc=$?
    [ "$_rc" != 124 ] || { show "$T/caddy.$_how.log"; fail "$_how: Caddy did not stop on SIGTERM"; }
    grep -q "shutting down" "$T/caddy.$_how.log" ||
        { show "$T/caddy.$_how.log"; fail "$_how: Caddy did not say it stops (SIGTERM not forwarded?)"; }
done
echo "ok"
