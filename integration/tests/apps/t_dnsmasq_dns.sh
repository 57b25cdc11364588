#!/bin/sh
# dnsmasq (a DNS server on one port for UDP and TCP, a forked child per TCP
# connection) <-> dig, over kernel TCP and then with both ends under the
# shim (lib/battery.sh): an A record over UDP and over TCP; a 3,000-byte TXT
# record over TCP, and over UDP, where dnsmasq truncates it and dig retries
# over TCP by itself; 20 queries on one kept-open TCP connection; every
# answer exact; dnsmasq ends on SIGTERM.
#
# The program's own UDP on its TCP port: under the shim the listener gives
# the UDP port to the program and listens on plain kernel TCP (README: the
# program's own UDP), which the shim says in a warning, and the shimmed
# dig reaches it over kernel TCP (RUDP_FALLBACK).  So nftables counts
# kernel TCP segments on the port in both runs, and the test wants that,
# and the warning, under the shim (battery ... tcp).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps
bat_no_asan 'dnsmasq hangs at start-up under libasan alone, never listening'

# 12 strings of 250 characters: 3,000 bytes of TXT, more than UDP's 512
# (dig asks with EDNS 1232: still truncated)
BIG=""
for i in 01 02 03 04 05 06 07 08 09 10 11 12; do
    s=$(printf "s$i-%0246d" 0)
    BIG="$BIG${BIG:+,}$s"
done
WANT_TXT=$(echo "$BIG" | tr ',' '\n' | sed 's/.*/"&"/' | tr '\n' ' ' | sed 's/ $//')

# ask LABEL ARGS...: dig's short answer on stdout ($T/dig.LABEL; its stderr,
# where the shim may say a connect went over kernel TCP, apart in
# $T/dig.LABEL.err); exits 0 or fails
ask() {
    _l=$1; shift
    run_app_t 30 dig @127.0.0.1 -p "$P" +time=10 +tries=1 "$@" >"$T/dig.$_l" 2>"$T/dig.$_l.err" ||
        { rc=$?; show "$T/dig.$_l" "$T/dig.$_l.err" "$T/dnsmasq.log"; fail "dig ($_l) exited $rc"; }
}

run() {
    P=$(bat_port)
    bg_app dnsmasq dnsmasq --keep-in-foreground --log-facility=- --log-queries \
        --conf-file=/dev/null --port="$P" --listen-address=127.0.0.1 --bind-interfaces \
        --no-resolv --no-hosts --no-poll --user=root --pid-file= \
        --host-record=bat.test,10.9.8.7 --txt-record="big.test,$BIG"
    DM=$LAST_PID
    wait_tcp "$P" 20
    wait_udp "$P" 20

    ask a-udp +notcp +short bat.test A
    [ "$(cat "$T/dig.a-udp")" = 10.9.8.7 ] || { show "$T/dig.a-udp"; fail "A over UDP: wrong answer"; }
    ask a-tcp +tcp +short bat.test A
    [ "$(cat "$T/dig.a-tcp")" = 10.9.8.7 ] || { show "$T/dig.a-tcp"; fail "A over TCP: wrong answer"; }
    echo "ok: bat.test A 10.9.8.7 over UDP and over TCP"

    ask txt-tcp +tcp +short big.test TXT
    [ "$(cat "$T/dig.txt-tcp")" = "$WANT_TXT" ] || { show "$T/dig.txt-tcp"; fail "TXT over TCP: wrong answer"; }
    ask txt-udp +notcp big.test TXT
    cat "$T/dig.txt-udp" "$T/dig.txt-udp.err" | grep -q 'Truncated, retrying in TCP mode' ||
        { show "$T/dig.txt-udp"; fail "TXT over UDP: dnsmasq did not truncate it"; }
    ask txt-udp-short +notcp +short big.test TXT
    [ "$(grep -v Truncated "$T/dig.txt-udp-short")" = "$WANT_TXT" ] ||
        { show "$T/dig.txt-udp-short"; fail "TXT over UDP, then TCP: wrong answer"; }
    echo "ok: a 3,000-byte TXT over TCP, and over UDP truncated, then TCP (dig's retry): exact"

    set --
    i=0
    while [ "$i" -lt 20 ]; do set -- "$@" bat.test A; i=$((i + 1)); done
    ask keepopen +tcp +keepopen +short "$@"
    [ "$(grep -c '^10\.9\.8\.7$' "$T/dig.keepopen")" = 20 ] ||
        { show "$T/dig.keepopen"; fail "20 queries on one TCP connection: not 20 answers"; }
    echo "ok: 20 queries on one kept-open TCP connection, 20 answers"

    if [ "$SHIM_MODE" = shim ]; then
        grep -q "UDP port $P is the application's own" "$T/dnsmasq.log" ||
            { show "$T/dnsmasq.log"; fail "no warning that the listener is plain kernel TCP"; }
        echo "ok: the shim's warning: $(grep -m1 "UDP port $P is the application's own" "$T/dnsmasq.log")"
    fi

    rc=0
    stop_app "$DM" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/dnsmasq.log"; fail "dnsmasq exited $rc on SIGTERM"; }
    echo "ok: dnsmasq ends on SIGTERM"
}
battery run tcp
