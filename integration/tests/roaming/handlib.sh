# Two paths between a client and a server (issue 48), for
# t_roam_handover.sh, t_roam_offer.sh and the bench's B22 (b22_hand.sh);
# sourced after lib.sh and roamlib.sh:
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
# the route back to it). The variant "offer" (done-when 3: the second path
# is the server's, not the client's) has link 1 only, and S a second
# address, 10.201.9.2/32 on lo beside the first.
#
# roamlib's side a is C and side b is S (EMU_NS_A, EMU_NS_B, EMU_IP_B):
# roam_bg, roam_listening, roam_over_rudp, roam_wait_bytes and roam_finish
# work as on emu_up's link.
#
#   hand_setup SIZE        what the test needs: root, network and mount
#                          namespaces, deps.sh's test packages, nft and tc
#                          (else skip); $T/payload, SIZE random bytes
#   hand_up norules|rules|offer
#                          a new pair of namespaces, the client's routing
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
#                          10.201.2.2) is answered on hc2.
#                          offer: link 1 only, the client's one default
#                            route via 10.201.1.1 dev hc1; S holds
#                            10.201.9.1 and 10.201.9.2 (HAND_IP_S2). Checks
#                            that hc1 is the client's only interface but lo,
#                            and that both addresses are routed through it
#                            and answer a ping. HAND_VARIANT,
#                          HAND_LABEL (the variant in words), HAND_NS_C,
#                          HAND_NS_S; what hand_cut silences in words:
#                          HAND_PRIMARY ("the primary", in the variant
#                          offer "10.201.9.1"), HAND_DROPS_IN_C and
#                          HAND_DROPS_IN_S (what its rules drop: "arriving
#                          on link 1 in C" and "in S", or "from 10.201.9.1
#                          arriving in C" and "to it in S"). The first call
#                          installs the EXIT trap (hand_down, then lib.sh's
#                          cleanup)
#   hand_transfer [-w] TAG PORT RATE HOLD
#                          the download: $T/payload from a listener bound
#                          to 10.201.9.1:PORT in S, with -w to 0.0.0.0:PORT
#                          (the wildcard, as a listener that offers its
#                          other address must be; the client still connects
#                          to 10.201.9.1) (roamio.py --send, paced
#                          at RATE bytes/s) to a client in C (--recv $T/out,
#                          --log $T/prog, --hold HOLD: after EOF it closes
#                          only once the file HOLD exists), each under
#                          $ROAM_MODE (roam_bg); logs $EMU_DIR/srv.TAG.log
#                          and cli.TAG.log. The words of HAND_SRV_ENV (e.g.
#                          RUDP_OFFER_ADDR=10.201.9.2) go to the server
#                          only, after $ROAM_ENV's (under the shim: roam_bg).
#                          As roam_transfer b2a: ROAM_SENDER,
#                          ROAM_RECEIVER, ROAM_T0 for roam_finish
#   hand_cut               the primary goes silent, link and routes left as
#                          they are: in C and in S an nftables rule (table
#                          inet hand, prerouting, priority raw) counts and
#                          drops every IP packet arriving on link 1 (hc1,
#                          hs1); ARP still passes. In the variant offer,
#                          the server's first address goes silent instead,
#                          its second left to carry: the rules drop every
#                          packet from 10.201.9.1 arriving in C and every
#                          one to 10.201.9.1 arriving in S. HAND_CUT_MS: the
#                          CLOCK_REALTIME millisecond it began
#   hand_mend              the primary carries again: reads the rules'
#                          counters into HAND_DROPS_C and HAND_DROPS_S
#                          (packets dropped in C, in S), then deletes them.
#                          HAND_MEND_MS: the millisecond it ended
#   hand_run [-w] [-m] [-q] VARIANT TAG PORT RATE
#                          one download with the cut, under $ROAM_MODE, in
#                          a new pair of namespaces (hand_up VARIANT):
#                          hand_transfer [-w] TAG PORT RATE of $T/payload;
#                          HAND_CUT_AFTER_MS (1500) after the first byte
#                          arrives hand_cut, HAND_CUT_FOR_MS (10000) later
#                          hand_mend; then the rest of the download and,
#                          under the shim, the client's move back to its
#                          primary path (HAND_BACK_WAIT, 10 s at most)
#                          before the client may close; roam_finish,
#                          hand_down. Unless -q (the bench: its rows are
#                          its output): fails if under the shim a kernel
#                          TCP connection carries PORT (roam_over_rudp) and
#                          prints, once the primary is back, when it was
#                          cut and how much had arrived then. Leaves
#                          roam_finish's results; HAND_TAG (TAG); HAND_AT
#                          and HAND_BACK_AT, the bytes at the receiver when
#                          the primary was cut and when it came back (both
#                          empty if it never was: nothing arrived);
#                          HAND_DROPS_C and HAND_DROPS_S (0 without a cut);
#                          after a cut, the longest wait between two reads
#                          at the receiver that overlaps it: HAND_GAP_MS
#                          (0: none), HAND_GAP_FROM (its start less
#                          HAND_CUT_MS), HAND_GAP_MIN ("at least " if it
#                          lasted until the primary came back, else empty);
#                          under the shim, HAND_STANDBY_MS and
#                          HAND_PRIMARY_MS, the client's moves to its
#                          standby path and back (hand_log_ms; empty if not
#                          logged); and HAND_SUMMARY, one line saying what
#                          happened, its durations as secs prints them and
#                          the gap's start as "(from cut+1.2 s)", with -m
#                          as hand_dur prints them and "(from cut +36 ms)"
#   hand_counters          the counter lines (RUDP_STATS at the exits) of
#                          hand_run's last download: the client's
#                          "handover:" in HAND_HANDOVER, the server's
#                          "path:" in HAND_PATHS, and the client's log line
#                          that opened its standby path ("a standby path
#                          ...", its time cut off) in HAND_STANDBY; each
#                          empty if there is none
#   hand_problems [OFFERED]
#                          what hand_run and hand_counters left, under the
#                          shim, against what a handover must do: prints
#                          each problem, one a line (nothing if none): not
#                          intact; no cut, or the cut or the primary's
#                          return after the whole download had arrived;
#                          nothing dropped in C; the client's counters
#                          without a move to its standby path and as many
#                          back (at least one); the server's without the
#                          peer moving both ways (2 or more). With
#                          OFFERED, also the client's standby log line
#                          without OFFERED (e.g. "a standby path to
#                          10.201.9.2:PORT, the server's other address")
#   hand_check [OFFERED]   hand_counters, then prints them ("   client:
#                          ...", with OFFERED the standby line first, and
#                          "   server: ...") and hand_problems' lines as
#                          "   FAIL: ..."; if there were any, shows the
#                          ends of the client's and the server's logs
#                          (roam_show) and returns 1
#   hand_dur MS            MS milliseconds in words: "36 ms" within a
#                          second, else "1.2 s" (a move of the shim takes
#                          milliseconds, which secs would print as 0.0 s)
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
HAND_IP_S2=10.201.9.2
HAND_N=0
HAND_TRAP=""
# hand_run's clock: the cut 1.5 s after the first byte, for 10 s; then
# 10 s at most for the move back.
HAND_CUT_AFTER_MS=1500
HAND_CUT_FOR_MS=10000
HAND_BACK_WAIT=10

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
    offer) HAND_LABEL="one link, the server's two addresses ($HAND_IP_S, $HAND_IP_S2)" ;;
    *) fail "usage: hand_up norules|rules|offer" ;;
    esac
    HAND_VARIANT=$1
    if [ "$1" = offer ]; then
        HAND_PRIMARY=$HAND_IP_S
        HAND_DROPS_IN_C="from $HAND_IP_S arriving in C" HAND_DROPS_IN_S="to it in S"
    else
        HAND_PRIMARY="the primary"
        HAND_DROPS_IN_C="arriving on link 1 in C" HAND_DROPS_IN_S="in S"
    fi
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
    ip -n "$_c" addr add 10.201.1.2/24 dev hc1
    ip -n "$_s" addr add 10.201.1.1/24 dev hs1
    ip -n "$_s" addr add "$HAND_IP_S/32" dev lo
    hand__dev "$_c" hc1
    hand__dev "$_s" hs1
    if [ "$HAND_VARIANT" = offer ]; then
        ip -n "$_s" addr add "$HAND_IP_S2/32" dev lo
        ip -n "$_c" route add default via 10.201.1.1 dev hc1
        EMU_NS_A=$_c EMU_NS_B=$_s EMU_DEV_A=hc1 EMU_DEV_B=hs1
        EMU_IP_A=10.201.1.2 EMU_IP_B=$HAND_IP_S
        hand__check_offer
        return 0
    fi
    ip -n "$_c" link add hc2 type veth peer name hs2 netns "$_s" || fail "veth pair 2"
    ip -n "$_c" addr add 10.201.2.2/24 dev hc2
    ip -n "$_s" addr add 10.201.2.1/24 dev hs2
    hand__dev "$_c" hc2
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

# The offer variant's one path, to both of the server's addresses.
hand__check_offer() {
    _r=$(ip -n "$HAND_NS_C" -o link show | awk -F': ' '$2 != "lo" { sub(/@.*/, "", $2); print $2 }')
    [ "$_r" = hc1 ] || fail "$HAND_LABEL: the client's interfaces but lo are not hc1 alone: $_r"
    for _a in "$HAND_IP_S" "$HAND_IP_S2"; do
        _r=$(ip -n "$HAND_NS_C" route get "$_a" 2>&1)
        case "$_r" in *" dev hc1 "*) ;; *) fail "$HAND_LABEL: $_a not routed through hc1: $_r" ;; esac
        ip netns exec "$HAND_NS_C" ping -n -q -c 1 -W 2 "$_a" >/dev/null ||
            fail "$HAND_LABEL: no answer from $_a"
    done
}

hand_transfer() {
    _bind=$HAND_IP_S
    if [ "$1" = -w ]; then _bind=0.0.0.0; shift; fi
    _tag=$1 _port=$2 _rate=$3 _hold=$4
    rm -f "$T/out" "$T/prog"
    _env=${ROAM_ENV:-}
    ROAM_ENV="$_env ${HAND_SRV_ENV:-}"
    roam_bg b "srv.$_tag" "$PY" "$ROAM_IO" listen "$_port" --bind "$_bind" \
        --send "$T/payload" --rate "$_rate"
    ROAM_ENV=$_env
    ROAM_SENDER=$LAST_PID ROAM_SNAME=srv.$_tag
    roam_listening b "$_port"
    ROAM_T0=$(ms_now)
    roam_bg a "cli.$_tag" "$PY" "$ROAM_IO" connect "$HAND_IP_S" "$_port" \
        --recv "$T/out" --log "$T/prog" --rate "$_rate" --hold "$_hold"
    ROAM_RECEIVER=$LAST_PID ROAM_RNAME=cli.$_tag
}

# The rules of hand_cut, one namespace ($1) and what they match ($2, nft).
hand__rule() {
    ip netns exec "$1" nft -f - <<EOF || fail "nft in $1"
table inet hand {
  chain pre { type filter hook prerouting priority raw; $2 counter drop; }
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
    if [ "$HAND_VARIANT" = offer ]; then
        hand__rule "$HAND_NS_C" "ip saddr $HAND_IP_S"
        hand__rule "$HAND_NS_S" "ip daddr $HAND_IP_S"
    else
        hand__rule "$HAND_NS_C" 'iifname "hc1"'
        hand__rule "$HAND_NS_S" 'iifname "hs1"'
    fi
}

hand_mend() {
    HAND_DROPS_C=$(hand__drops "$HAND_NS_C")
    HAND_DROPS_S=$(hand__drops "$HAND_NS_S")
    ip netns exec "$HAND_NS_C" nft delete table inet hand || fail "nft delete in C"
    ip netns exec "$HAND_NS_S" nft delete table inet hand || fail "nft delete in S"
    HAND_MEND_MS=$(ms_now)
}

hand_run() {
    _hr_w="" _hr_fmt=secs _hr_sep="" _hr_q=""
    while :; do
        case "${1:-}" in
        -w) _hr_w=-w ;;
        -m) _hr_fmt=hand_dur _hr_sep=" " ;;
        -q) _hr_q=1 ;;
        *) break ;;
        esac
        shift
    done
    [ "$#" = 4 ] || fail "usage: hand_run [-w] [-m] [-q] VARIANT TAG PORT RATE"
    hand_up "$1"
    HAND_TAG=$2 _hr_port=$3 _hr_hold=$T/hold.$2
    _hr_size=$(hand_size "$T/payload")
    rm -f "$_hr_hold"
    # shellcheck disable=SC2086 # -w or nothing
    hand_transfer $_hr_w "$2" "$3" "$4" "$_hr_hold"
    HAND_AT="" HAND_BACK_AT="" HAND_DROPS_C=0 HAND_DROPS_S=0
    HAND_GAP_MS=0 HAND_GAP_FROM="" HAND_GAP_MIN="" HAND_STANDBY_MS="" HAND_PRIMARY_MS=""
    _hr_rc=0
    roam_wait_bytes "$T/prog" 1 "$ROAM_RECEIVER" || _hr_rc=$?
    if [ "$_hr_rc" = 0 ]; then
        [ -n "$_hr_q" ] || roam_over_rudp b "$_hr_port"
        _hr_first=$(awk '{ print $1; exit }' "$T/prog")
        hand_wait_until $((_hr_first + HAND_CUT_AFTER_MS)) "$ROAM_RECEIVER"
        hand_cut
        HAND_AT=$(hand_size "$T/out")
        hand_wait_until $((HAND_CUT_MS + HAND_CUT_FOR_MS)) "$ROAM_RECEIVER"
        hand_mend
        HAND_BACK_AT=$(hand_size "$T/out")
        # "primary cut", "10.201.9.1 cut": HAND_PRIMARY without its article
        [ -n "$_hr_q" ] ||
            echo "   $HAND_LABEL: ${HAND_PRIMARY#the } cut $(secs $((HAND_CUT_MS - _hr_first)))" \
                "after the first byte (receiver at $(mb "$HAND_AT")), back after" \
                "$(secs $((HAND_MEND_MS - HAND_CUT_MS))) (receiver at $(mb "$HAND_BACK_AT"))"
        _hr_rc=0
        roam_wait_bytes "$T/out" "$_hr_size" "$ROAM_RECEIVER" || _hr_rc=$?
        if [ "$_hr_rc" = 0 ] && [ "$ROAM_MODE" = shim ]; then
            hand_wait_log "$EMU_DIR/cli.$HAND_TAG.log" "moves back to its primary path" \
                "$HAND_BACK_WAIT" "$ROAM_RECEIVER" || true
        fi
    fi
    : >"$_hr_hold"
    roam_finish
    hand__summary "$_hr_fmt" "$_hr_sep"
    hand_down
}

# hand_run's figures and HAND_SUMMARY, after roam_finish: durations in
# the words of function $1, $2 between "from cut" and the gap's start.
hand__summary() {
    if [ -z "$HAND_AT" ]; then
        HAND_SUMMARY="no cut: the download ended or stalled before its first byte; $ROAM_OUTCOME"
        return 0
    fi
    _hs_cut=$HAND_CUT_MS _hs_mend=$HAND_MEND_MS
    HAND_SUMMARY="nftables dropped $HAND_DROPS_C packets $HAND_DROPS_IN_C, $HAND_DROPS_S $HAND_DROPS_IN_S;"
    _hs_during=$(awk -v s="$_hs_cut" -v e="$_hs_mend" '$1 <= s { b0 = $2 } $1 <= e { b1 = $2 }
        END { print b1 - b0 }' "$T/prog")
    HAND_SUMMARY="$HAND_SUMMARY $(mb "$_hs_during") read during the cut;"
    # The longest wait between two reads that overlaps the cut (a silence
    # from before the primary's return to the end: up to then), as
    # "LENGTH|START LESS THE CUT|at least ".
    _hs_gap=$(awk -v s="$_hs_cut" -v e="$_hs_mend" '
        NR > 1 && $1 > s && p < e && $1 - p > g { g = $1 - p; at = p }
        { p = $1 }
        END { w = ""; if (p < e && e - p > g) { g = e - p; at = p; w = "at least " }
              print (g + 0) "|" (at - s) "|" w }' "$T/prog")
    HAND_GAP_MS=${_hs_gap%%|*}
    _hs_gap=${_hs_gap#*|}
    HAND_GAP_FROM=${_hs_gap%%|*} HAND_GAP_MIN=${_hs_gap#*|}
    if [ "$HAND_GAP_MS" != 0 ]; then
        _hs_from=$("$1" "$HAND_GAP_FROM")
        case "$_hs_from" in -*) ;; *) _hs_from="+$_hs_from" ;; esac
        HAND_SUMMARY="$HAND_SUMMARY longest gap between reads across it"
        HAND_SUMMARY="$HAND_SUMMARY $HAND_GAP_MIN$("$1" "$HAND_GAP_MS") (from cut$2$_hs_from);"
    fi
    _hs_line=$(roam_first_after "$_hs_mend" "$T/prog")
    if [ -n "$_hs_line" ]; then
        HAND_SUMMARY="$HAND_SUMMARY first read $("$1" $((${_hs_line%% *} - _hs_mend)))"
        HAND_SUMMARY="$HAND_SUMMARY after $HAND_PRIMARY came back;"
    else
        HAND_SUMMARY="$HAND_SUMMARY nothing read after $HAND_PRIMARY came back;"
    fi
    if [ "$ROAM_MODE" = shim ]; then
        HAND_STANDBY_MS=$(hand_log_ms "$EMU_DIR/cli.$HAND_TAG.log" "moves to its standby path")
        HAND_PRIMARY_MS=$(hand_log_ms "$EMU_DIR/cli.$HAND_TAG.log" "moves back to its primary path")
        if [ -n "$HAND_STANDBY_MS" ]; then
            HAND_SUMMARY="$HAND_SUMMARY to the standby $("$1" $((HAND_STANDBY_MS - _hs_cut))) after the cut,"
        else
            HAND_SUMMARY="$HAND_SUMMARY no move to the standby logged,"
        fi
        if [ -n "$HAND_PRIMARY_MS" ]; then
            HAND_SUMMARY="$HAND_SUMMARY back $("$1" $((HAND_PRIMARY_MS - _hs_mend)))"
            HAND_SUMMARY="$HAND_SUMMARY after $HAND_PRIMARY came back;"
        else
            HAND_SUMMARY="$HAND_SUMMARY no move back logged;"
        fi
    fi
    HAND_SUMMARY="$HAND_SUMMARY $ROAM_OUTCOME"
}

hand_counters() {
    HAND_HANDOVER=$(hand_counter "$EMU_DIR/cli.$HAND_TAG.log" "handover:")
    HAND_PATHS=$(hand_counter "$EMU_DIR/srv.$HAND_TAG.log" "path:")
    HAND_STANDBY=$(grep -m 1 -F -- "a standby path " "$EMU_DIR/cli.$HAND_TAG.log" 2>/dev/null |
        sed 's/^[^ ]* //')
}

hand_problems() {
    [ "$ROAM_OK" = 1 ] || echo "not intact: $ROAM_OUTCOME"
    if [ -n "${1:-}" ]; then
        case "$HAND_STANDBY" in
        *"$1"*) ;;
        *) echo "the client opened no standby path to the offered address ($1)" ;;
        esac
    fi
    if [ -z "$HAND_AT" ]; then
        echo "no cut: nothing arrived"
        return 0
    fi
    _hp_size=$(hand_size "$T/payload")
    [ "$HAND_AT" -lt "$_hp_size" ] || echo "the cut came after the whole download had arrived"
    [ "$HAND_BACK_AT" -lt "$_hp_size" ] ||
        echo "$HAND_PRIMARY came back after the whole download had arrived"
    # The download's data: S's count is the client's own (acknowledgments,
    # probes of the primary), which a client that heard nothing may not send.
    [ "$HAND_DROPS_C" -gt 0 ] ||
        echo "nftables dropped nothing $HAND_DROPS_IN_C: the cut proves nothing"
    _hp_to=$(echo "$HAND_HANDOVER" | sed -n 's/^handover: to standby \([0-9]*\).*/\1/p')
    _hp_back=$(echo "$HAND_HANDOVER" | sed -n 's/^handover: .* back to primary \([0-9]*\).*/\1/p')
    [ "${_hp_to:-0}" -ge 1 ] || echo "the client's counters show no move to its standby path"
    [ "${_hp_back:-0}" -ge 1 ] || echo "the client's counters show no move back to its primary path"
    [ "${_hp_to:-0}" = "${_hp_back:-0}" ] ||
        echo "the client ends on its standby path: ${_hp_to:-0} moves there, ${_hp_back:-0} back"
    _hp_moved=$(echo "$HAND_PATHS" | sed -n 's/^path: peers moved \([0-9]*\).*/\1/p')
    [ "${_hp_moved:-0}" -ge 2 ] ||
        echo "the server's counters show the peer moved ${_hp_moved:-0} times, not both ways (2 or more)"
}

hand_check() {
    hand_counters
    [ -z "${1:-}" ] || echo "   client: ${HAND_STANDBY:-no standby path logged}"
    echo "   client: ${HAND_HANDOVER:-no 'handover:' counter line}"
    echo "   server: ${HAND_PATHS:-no 'path:' counter line}"
    hand_problems "${1:-}" >"$T/check.$HAND_TAG"
    [ -s "$T/check.$HAND_TAG" ] || return 0
    sed 's/^/   FAIL: /' "$T/check.$HAND_TAG"
    roam_show "$EMU_DIR/cli.$HAND_TAG.log" "$EMU_DIR/srv.$HAND_TAG.log"
    return 1
}

hand_dur() {
    awk -v m="$1" 'BEGIN { if (m > -1000 && m < 1000) printf "%d ms", m; else printf "%.1f s", m / 1000 }'
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
