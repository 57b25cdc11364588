# Two paths between a client and a server (issue 48), for
# t_roam_handover.sh; sourced after lib.sh and roamlib.sh:
#
#   . "$(dirname "$0")/../../lib/lib.sh"
#   . "$ROOT/integration/tests/roaming/roamlib.sh"
#   . "$ROOT/integration/tests/roaming/handlib.sh"
#
# Namespaces C (client) and S (server) joined by two veth pairs, no
# emulator: link 1, the primary (hc1 10.201.1.2/24 in C, hs1 10.201.1.1/24
# in S), and link 2, the standby (hc2 10.201.2.2/24, hs2 10.201.2.1/24),
# each end's egress shaped to 100 Mbit/s (tbf: this kernel has no netem, fq
# or fq_codel). The server's address, 10.201.9.1/32 on S's lo, is on
# neither link: S reaches the client's subnets by its two connected routes,
# the client reaches 10.201.9.1 by its default route, through hc1. IPv6 off,
# rp_filter 0 everywhere (a reply from 10.201.9.1 arriving on hc2 is not on
# the route back to it).
#
# roamlib's side a is C and side b is S (EMU_NS_A, EMU_NS_B, EMU_IP_B):
# roam_bg, roam_listening, roam_over_rudp, roam_wait_bytes and roam_finish
# work as on emu_up's link.
#
#   hand_setup SIZE        what the test needs: root, network and mount
#                          namespaces, deps.sh's test packages, nft and tc
#                          (else skip); $T/payload, SIZE random bytes
#   hand_up norules|rules  a new pair of namespaces, the client's routing
#                          as a laptop with two uplinks has it:
#                          norules: two default routes in the main table,
#                            via 10.201.1.1 dev hc1 metric 100 and via
#                            10.201.2.1 dev hc2 metric 200, no ip rule
#                          rules: the main table's default via 10.201.1.1
#                            only; "from 10.201.2.2 lookup 102", table 102's
#                            default via 10.201.2.1 dev hc2
#                          Checks both paths before it returns: 10.201.9.1
#                          is routed through hc1 and answers a ping, and a
#                          ping bound to hc2 (SO_BINDTODEVICE, from
#                          10.201.2.2) is answered on hc2. HAND_VARIANT,
#                          HAND_LABEL (the variant in words), HAND_NS_C,
#                          HAND_NS_S. The first call installs the EXIT
#                          trap (hand_down, then lib.sh's cleanup)
#   hand_transfer TAG PORT RATE HOLD
#                          the download: $T/payload from a listener bound
#                          to 10.201.9.1:PORT in S (roamio.py --send, paced
#                          at RATE bytes/s) to a client in C (--recv $T/out,
#                          --log $T/prog, --hold HOLD: after EOF it closes
#                          only once the file HOLD exists), each under
#                          $ROAM_MODE (roam_bg); logs $EMU_DIR/srv.TAG.log
#                          and cli.TAG.log. As roam_transfer b2a: ROAM_SENDER,
#                          ROAM_RECEIVER, ROAM_T0 for roam_finish
#   hand_cut               the primary goes silent, link and routes left as
#                          they are: in C and in S an nftables rule (table
#                          inet hand, prerouting, priority raw) counts and
#                          drops every IP packet arriving on link 1 (hc1,
#                          hs1); ARP still passes. HAND_CUT_MS: the
#                          CLOCK_REALTIME millisecond it began
#   hand_mend              the primary carries again: reads the rules'
#                          counters into HAND_DROPS_C and HAND_DROPS_S
#                          (packets dropped in C, in S), then deletes them.
#                          HAND_MEND_MS: the millisecond it ended
#   hand_down              ends what runs in the namespaces (roam_bg's PIDs
#                          first, by PID) and deletes them (emu_down); safe
#                          to call twice
#   hand_wait_until MS PID wait until CLOCK_REALTIME millisecond MS, or
#                          until PID has ended, whichever comes first
#   hand_wait_log FILE TEXT SECS PID
#                          wait until a line of FILE holds TEXT (0), PID
#                          has ended (1) or SECS seconds have passed (2)
#   hand_log_ms FILE TEXT  the CLOCK_REALTIME millisecond of the first shim
#                          log line (ISO 8601 time first) of FILE holding
#                          TEXT, or nothing
#   hand_counter FILE PREFIX
#                          the first counter line of FILE's RUDP_STATS
#                          blocks that starts with PREFIX ("handover:",
#                          "path:"), or nothing
#   hand_size FILE         FILE's size in bytes, 0 if there is none
#
# A run killed with SIGKILL cannot clean up: each namespace is registered
# as emu_up's are ($EMU_REG/NS.owner with this shell's PID), and the next
# emu_up of any test deletes those whose owner is dead.

HAND_IP_S=10.201.9.1
HAND_N=0
HAND_TRAP=""

hand_setup() {
    need_netns "two network namespaces joined by two veth pairs"
    need_mntns "ip netns exec"
    timeout 900 "$ROOT/integration/deps.sh" test ||
        fail "cannot install the test packages (integration/deps.sh test)"
    command -v nft >/dev/null 2>&1 || skip "no nft (nftables) here: the primary is cut by it"
    command -v tc >/dev/null 2>&1 || skip "no tc (iproute2) here: the links are shaped by it"
    # roam_bg's logs
    EMU_DIR=$T
    head -c "$1" /dev/urandom >"$T/payload" || fail "payload"
}

hand__trap() {
    [ -z "$HAND_TRAP" ] || return 0
    trap 'hand_down; cleanup' EXIT
    # Each ignores the others first, as emu_up's: a second signal must not
    # cut the clean-up short and leave the namespaces behind.
    trap 'trap "" INT TERM HUP; exit 130' INT
    trap 'trap "" INT TERM HUP; exit 143' TERM
    trap 'trap "" INT TERM HUP; exit 129' HUP
    HAND_TRAP=1
}

# Sets the keys $2... in namespace $1 (one may be missing, as IPv6's).
hand__sysctl() {
    _sns=$1
    shift
    for _kv in "$@"; do
        ip netns exec "$_sns" sysctl -qw "$_kv" >/dev/null 2>&1 || true
    done
}

hand_up() {
    case "${1:-}" in
    norules) HAND_LABEL="no rules (two default routes, metrics 100 and 200)" ;;
    rules) HAND_LABEL="source rules (from 10.201.2.2 lookup 102)" ;;
    *) fail "usage: hand_up norules|rules" ;;
    esac
    HAND_VARIANT=$1
    hand__trap
    HAND_N=$((HAND_N + 1))
    HAND_NS_C=ho$$-c$HAND_N HAND_NS_S=ho$$-s$HAND_N
    _c=$HAND_NS_C _s=$HAND_NS_S
    mkdir -p "$EMU_REG"
    for _n in "$_c" "$_s"; do
        ! ip netns list | grep -q "^$_n\( \|$\)" || fail "namespace $_n already exists"
        echo "$$" >"$EMU_REG/$_n.owner"
        ip netns add "$_n" || fail "ip netns add $_n"
        EMU_ALL_NS="$EMU_ALL_NS $_n"
        ip -n "$_n" link set lo up
        # Before the links exist: "default" is what a new device starts with.
        hand__sysctl "$_n" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip netns exec "$_n" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
            net.ipv4.conf.default.rp_filter=0 >/dev/null || fail "rp_filter in $_n"
    done
    # Made inside the namespaces: no name is ever taken in the caller's.
    ip -n "$_c" link add hc1 type veth peer name hs1 netns "$_s" || fail "veth pair 1"
    ip -n "$_c" link add hc2 type veth peer name hs2 netns "$_s" || fail "veth pair 2"
    ip -n "$_c" addr add 10.201.1.2/24 dev hc1
    ip -n "$_s" addr add 10.201.1.1/24 dev hs1
    ip -n "$_c" addr add 10.201.2.2/24 dev hc2
    ip -n "$_s" addr add 10.201.2.1/24 dev hs2
    ip -n "$_s" addr add "$HAND_IP_S/32" dev lo
    hand__dev "$_c" hc1
    hand__dev "$_c" hc2
    hand__dev "$_s" hs1
    hand__dev "$_s" hs2
    if [ "$HAND_VARIANT" = norules ]; then
        ip -n "$_c" route add default via 10.201.1.1 dev hc1 metric 100
        ip -n "$_c" route add default via 10.201.2.1 dev hc2 metric 200
    else
        ip -n "$_c" route add default via 10.201.1.1 dev hc1
        ip -n "$_c" route add default via 10.201.2.1 dev hc2 table 102
        ip -n "$_c" rule add from 10.201.2.2 lookup 102
    fi
    EMU_NS_A=$_c EMU_NS_B=$_s EMU_DEV_A=hc1 EMU_DEV_B=hs1
    EMU_IP_A=10.201.1.2 EMU_IP_B=$HAND_IP_S
    hand__check
}

# Device $2 of namespace $1: rp_filter off, up, its egress at 100 Mbit/s.
hand__dev() {
    ip netns exec "$1" sysctl -qw "net.ipv4.conf.$2.rp_filter=0" >/dev/null || fail "rp_filter on $2"
    ip -n "$1" link set "$2" up
    ip netns exec "$1" tc qdisc add dev "$2" root tbf rate 100mbit burst 128kb limit 512kb ||
        skip "no tbf qdisc here (tc qdisc add dev $2 root tbf failed): the links are shaped by it"
}

# Both paths carry, as the test means them to.
hand__check() {
    _r=$(ip -n "$HAND_NS_C" route get "$HAND_IP_S" 2>&1)
    case "$_r" in *" dev hc1 "*) ;; *) fail "$HAND_LABEL: $HAND_IP_S not routed through hc1: $_r" ;; esac
    # the standby as the shim uses it: bound to hc2 and to 10.201.2.2
    _r=$(ip -n "$HAND_NS_C" route get "$HAND_IP_S" from 10.201.2.2 oif hc2 2>&1)
    case "$_r" in *"via 10.201.2.1 dev hc2"*) ;;
    *) fail "$HAND_LABEL: from 10.201.2.2 on hc2, $HAND_IP_S is not reached via 10.201.2.1: $_r" ;; esac
    ip netns exec "$HAND_NS_C" ping -n -q -c 1 -W 2 "$HAND_IP_S" >/dev/null ||
        fail "$HAND_LABEL: no answer from $HAND_IP_S over the primary"
    ip netns exec "$HAND_NS_C" ping -n -q -c 1 -W 2 -I hc2 "$HAND_IP_S" >/dev/null ||
        fail "$HAND_LABEL: no answer from $HAND_IP_S over the standby (bound to hc2)"
}

hand_transfer() {
    _tag=$1 _port=$2 _rate=$3 _hold=$4
    rm -f "$T/out" "$T/prog"
    roam_bg b "srv.$_tag" "$PY" "$ROAM_IO" listen "$_port" --bind "$HAND_IP_S" \
        --send "$T/payload" --rate "$_rate"
    ROAM_SENDER=$LAST_PID ROAM_SNAME=srv.$_tag
    roam_listening b "$_port"
    ROAM_T0=$(ms_now)
    roam_bg a "cli.$_tag" "$PY" "$ROAM_IO" connect "$HAND_IP_S" "$_port" \
        --recv "$T/out" --log "$T/prog" --rate "$_rate" --hold "$_hold"
    ROAM_RECEIVER=$LAST_PID ROAM_RNAME=cli.$_tag
}

# The rules of hand_cut, one namespace ($1) and device ($2).
hand__rule() {
    ip netns exec "$1" nft -f - <<EOF || fail "nft in $1"
table inet hand {
  chain pre { type filter hook prerouting priority raw; iifname "$2" counter drop; }
}
EOF
}

hand__drops() {
    ip netns exec "$1" nft list table inet hand 2>/dev/null |
        awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "packets") s += $(i + 1) }
             END { print s + 0 }'
}

hand_cut() {
    HAND_CUT_MS=$(ms_now)
    hand__rule "$HAND_NS_C" hc1
    hand__rule "$HAND_NS_S" hs1
}

hand_mend() {
    HAND_DROPS_C=$(hand__drops "$HAND_NS_C")
    HAND_DROPS_S=$(hand__drops "$HAND_NS_S")
    ip netns exec "$HAND_NS_C" nft delete table inet hand || fail "nft delete in C"
    ip netns exec "$HAND_NS_S" nft delete table inet hand || fail "nft delete in S"
    HAND_MEND_MS=$(ms_now)
}

hand_down() { emu_down 2>/dev/null; }

hand_wait_until() {
    while [ "$(ms_now)" -lt "$1" ] && running "$2"; do sleep 0.05; done
}

hand_wait_log() {
    _i=0
    while ! grep -qF -- "$2" "$1" 2>/dev/null; do
        running "$4" || return 1
        _i=$((_i + 1))
        [ "$_i" -lt $(($3 * 20)) ] || return 2
        sleep 0.05
    done
}

hand_log_ms() {
    _ts=$(grep -m 1 -F -- "$2" "$1" 2>/dev/null | cut -d' ' -f1)
    case "$_ts" in
    [0-9][0-9][0-9][0-9]-*T*Z) date -u -d "$_ts" +%s%3N 2>/dev/null || true ;;
    esac
}

hand_counter() {
    stats_lines "$1" | awk -v p="$2" 'index($0, p) == 1 { print; exit }'
}

hand_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
