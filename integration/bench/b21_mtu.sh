# B21: path MTU (issue 44). Sourced by run.sh after its helpers and
# roamlib.sh (emu_up, bulk, roam_transfer, rotate, run_trs, rec, meta,
# want...); POSIX sh.
#
# Bulk goodput (bulk.c, as B1-B4) on B1's link (100 Mbit/s, 10 ms RTT, no
# loss: the kernel references reach line rate there) at three MTUs, every
# transport in turn, kernel TCP beside the shim in the same run:
#   B21-1280  MTU 1280 (the IPv6 minimum), every IP fragment dropped at both
#             receivers (nftables, before reassembly), as cellular links,
#             tunnels and firewalls do
#   B21-1500  MTU 1500 (fragments dropped too: none should exist)
#   B21-9000  MTU 9000 (jumbo frames)
#   B21-wg    a WireGuard tunnel (wireguard-go, MTU 1420) over the MTU-1500
#             link: the emulator's rate counts the tunnel's packets
# Each also records the IP fragments dropped (frags, pmlib.sh's pm_nofrag
# and pm_packets: every rudp datagram of a 4fe1127 shim at MTU 1280) and,
# for rudp, the sender's average datagram payload (RUDP_STATS: bytes out /
# datagrams out) and sizes raised.
#
#   B21-hole  a black hole: the same link at MTU 1500, 30 MB from a to b
#             (roamio.py, unpaced); once b holds a quarter, b starts to
#             drop every packet over 1280 bytes and every fragment, with no
#             ICMP (nftables): resume_s is the time from then to the end of
#             the longest silence at the receiver that follows (the first
#             byte read after the fallback), and whether the transfer
#             completed. Kernel TCP gets net.ipv4.tcp_mtu_probing=1 here
#             (without it, nothing ever gets through); rudp records its
#             black holes suspected and found (RUDP_STATS).
EMU_MTU0=${EMU_MTU:-1500}

# b21_bulk SC RUN TR PORT: bulk, and its fragments and datagram sizes
b21_bulk() {
    _f0=$(pm_packets b21 "$EMU_NS_A" "$EMU_NS_B")
    bulk "$1" "$2" "$3" "$4"
    rec "$1" "$3" "$2" frags $(($(pm_packets b21 "$EMU_NS_A" "$EMU_NS_B") - _f0))
    case "$3" in
        rudp-*)
            _lg=$LOGS/$1.$3.$2.err
            _o=$(grep -o 'bytes out [0-9]*' "$_lg" | head -1 | awk '{ print $3 }')
            _n=$(grep -o 'datagrams out [0-9]*' "$_lg" | head -1 | awk '{ print $3 }')
            [ -n "$_n" ] && [ "$_n" -gt 0 ] && rec "$1" "$3" "$2" dgram_avg "$((_o / _n))"
            rec "$1" "$3" "$2" pmtu_raised "$(grep -o 'sizes raised [0-9]*' "$_lg" | head -1 | awk '{ print $3 }')"
            ;;
    esac
}

# b21_hole TR: one black-hole transfer over TR in run $r
b21_hole() {
    _tr=$1
    case "$_tr" in
        rudp-*) roam_mode shim >/dev/null; ROAM_ENV="RUDP_CC=${_tr#rudp-} RUDP_ACCEPT_TCP=0" ;;
        *) roam_mode tcp >/dev/null || return 0; ROAM_ENV="" ;;
    esac
    EMU_MTU=1500 EMU_IPV6=0 emu_up bnB21h "$SPEC_B1" "$SPEC_B1" "$r"
    ip netns exec "$EMU_NS_A" sysctl -qw net.ipv4.tcp_mtu_probing=1
    _size=$(stat -c %s "$T/payload")
    # shellcheck disable=SC2046
    roam_transfer a2b 7500 0 $(cc_opt "$_tr")
    _rc=0 _t0="" _resume=NA
    roam_wait_bytes "$T/out" $((_size / 4)) "$ROAM_SENDER" || _rc=$?
    if [ "$_rc" = 0 ]; then
        ip netns exec "$EMU_NS_B" nft -f - <<'EOF' || fail "B21: nft"
table inet b21hole {
  chain pre { type filter hook prerouting priority -450;
    ip length > 1280 counter drop; ip frag-off & 0x3fff != 0 counter drop; }
}
EOF
        _t0=$(ms_now)
    else
        roam_stop "$ROAM_SENDER"
    fi
    roam_finish
    if [ -n "$_t0" ] && [ "$ROAM_OK" = 1 ]; then
        # the end of the longest silence at the receiver after the black
        # hole's start (the bytes already on the way arrive first)
        _resume=$(awk -v t0="$_t0" 'BEGIN { p = t0 }
            $1 > t0 { if ($1 - p > best) { best = $1 - p; end = $1 } p = $1 }
            END { if (end) printf "%.3f", (end - t0) / 1000; else print "NA" }' "$T/prog")
    fi
    for _f in cli srv; do cp "$EMU_DIR/$_f.log" "$LOGS/B21-hole.$_tr.$r.$_f" 2>/dev/null || true; done
    cp "$T/prog" "$LOGS/B21-hole.$_tr.$r.prog" 2>/dev/null || true
    rec B21-hole "$_tr" "$r" complete "$ROAM_OK"
    rec B21-hole "$_tr" "$r" resume_s "$_resume"
    case "$_tr" in
        rudp-*)
            set -- $(grep -o 'suspected [0-9]* found [0-9]*' "$EMU_DIR/cli.log" | tail -1 | awk '{ print $2, $4 }')
            rec B21-hole "$_tr" "$r" bh_suspected "${1:-NA}"
            rec B21-hole "$_tr" "$r" bh_found "${2:-NA}"
            ;;
    esac
    say "B21-hole run $r/$RUNS $_tr: resumed $_resume s after the black hole's start; $ROAM_OUTCOME"
    emu_down 2>>"$LOGS/emu.log"
}

if want B21; then
    for sc in B21-1280 B21-1500 B21-9000 B21-wg; do
        r=1
        while [ "$r" -le "$LAST" ]; do
            case "$sc" in
                B21-1280) EMU_MTU=1280 ;;
                B21-9000) EMU_MTU=9000 ;;
                *) EMU_MTU=1500 ;;
            esac
            emu_up "bn$sc" "$SPEC_B1" "$SPEC_B1" "$r"
            pm_nofrag b21 "$EMU_NS_A" "$EMU_NS_B"
            _ipb=$EMU_IP_B
            if [ "$sc" = B21-wg ]; then
                if ! wg_pair "$EMU_NS_A" "$EMU_NS_B" "wbe$$a" "wbe$$b" "$EMU_IP_A" "$EMU_IP_B"; then
                    say "B21-wg: skip: $WG_ERR"
                    wg_down
                    emu_down 2>>"$LOGS/emu.log"
                    break
                fi
                EMU_IP_B=10.79.0.2 # bulk's receiver: the far end of the tunnel
            fi
            port=5201
            for tr in $(rotate "$r" $(run_trs "$r" $TRS)); do
                b21_bulk "$sc" "$r" "$tr" "$port"
                port=$((port + 1))
            done
            EMU_IP_B=$_ipb
            [ "$sc" != B21-wg ] || wg_down
            emu_down 2>>"$LOGS/emu.log"
            r=$((r + 1))
        done
    done
    EMU_MTU=$EMU_MTU0
    head -c 30000000 /dev/urandom >"$T/payload"
    r=1
    while [ "$r" -le "$RUNS" ]; do # no traced run: roamio.py is not bulk
        for tr in $(rotate "$r" $TRS); do
            b21_hole "$tr"
        done
        r=$((r + 1))
    done
fi
