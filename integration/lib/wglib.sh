# A WireGuard tunnel between two network namespaces, by Debian's
# wireguard-go (these kernels have no WireGuard module; it makes its
# device on /dev/net/tun) and wireguard-tools' wg. Sourced after lib.sh;
# POSIX sh; needs root. (integration/deps.sh test or bench installs both.)
#
#   wg_pair NS_A NS_B DEV_A DEV_B OUTER_A OUTER_B
#       wireguard-go in each namespace making DEV_A (in NS_A) and DEV_B,
#       each with a key of its own (wg genkey, under $T), listening on
#       UDP 51820 of the namespace, the other's OUTER address its peer's
#       endpoint; inside: 10.79.0.1/24 and fd79::1/64 on DEV_A, 10.79.0.2
#       and fd79::2 on DEV_B; both up at wireguard-go's MTU (1420), and a
#       ping through. DEV_* are names of the run's own (the control socket
#       is /var/run/wireguard/DEV.sock, one directory for every
#       namespace). False, with WG_ERR saying why, where wireguard-go or
#       wg is missing or wireguard-go cannot run (no /dev/net/tun...): a
#       test skips, the bench leaves the row out. WG_PIDS: the two
#       wireguard-go processes
#   wg_down
#       ends them by PID (each removes its device and socket on TERM)
#   wg_mtu NS DEV
#       the MTU of DEV in NS
WG_PIDS=""
WG_ERR=""

# wg__up NS DEV: wireguard-go in the foreground (-f: its PID is the one
# we end; without it, it forks and the parent exits), until DEV and its
# control socket exist; false (WG_ERR) if it ends first
wg__up() {
    ip netns exec "$1" env WG_PROCESS_FOREGROUND=1 wireguard-go -f "$2" >"$T/$2.log" 2>&1 &
    _wp=$!
    WG_PIDS="$WG_PIDS $_wp"
    _i=0
    until ip -n "$1" link show "$2" >/dev/null 2>&1 && [ -S "/var/run/wireguard/$2.sock" ]; do
        running "$_wp" || { WG_ERR="wireguard-go did not start: $(tail -1 "$T/$2.log")"; return 1; }
        _i=$((_i + 1)); [ $_i -lt 250 ] || fail "wireguard-go made no $2 in 5 s"; sleep 0.02
    done
    (umask 077 && wg genkey >"$T/$2.key") || fail "wg genkey"
}

wg_pair() {
    WG_ERR="no wireguard-go (integration/deps.sh test)"
    command -v wireguard-go >/dev/null 2>&1 || return 1
    WG_ERR="no wg (wireguard-tools; integration/deps.sh test)"
    command -v wg >/dev/null 2>&1 || return 1
    WG_ERR="no usable /dev/net/tun, where wireguard-go makes its device"
    { [ -c /dev/net/tun ] && (: <>/dev/net/tun) 2>/dev/null; } || return 1
    WG_ERR=""
    wg__up "$1" "$3" && wg__up "$2" "$4" || return 1
    _pa=$(wg pubkey <"$T/$3.key") _pb=$(wg pubkey <"$T/$4.key")
    ip netns exec "$1" wg set "$3" listen-port 51820 private-key "$T/$3.key" \
        peer "$_pb" endpoint "$6:51820" allowed-ips 10.79.0.0/24,fd79::/64 || fail "wg set $3"
    ip netns exec "$2" wg set "$4" listen-port 51820 private-key "$T/$4.key" \
        peer "$_pa" endpoint "$5:51820" allowed-ips 10.79.0.0/24,fd79::/64 || fail "wg set $4"
    ip -n "$1" addr add 10.79.0.1/24 dev "$3"
    ip -n "$2" addr add 10.79.0.2/24 dev "$4"
    ip -n "$1" addr add fd79::1/64 dev "$3" nodad
    ip -n "$2" addr add fd79::2/64 dev "$4" nodad
    ip -n "$1" link set "$3" up
    ip -n "$2" link set "$4" up
    ip netns exec "$1" ping -c 1 -W 5 10.79.0.2 >/dev/null || fail "no ping through the tunnel"
}

wg_down() {
    for _wp in $WG_PIDS; do kill "$_wp" 2>/dev/null || true; done
    # shellcheck disable=SC2086
    ended 200 $WG_PIDS || for _wp in $WG_PIDS; do kill -9 "$_wp" 2>/dev/null || true; done
    for _wp in $WG_PIDS; do wait "$_wp" 2>/dev/null || true; done
    WG_PIDS=""
}

wg_mtu() { ip -n "$1" -o link show "$2" | sed -n 's/.* mtu \([0-9]*\) .*/\1/p'; }
