# Two network namespaces joined by linkemu (sourced; POSIX sh; needs root).
#
#   . "$ROOT/integration/emu/netns.sh"      (after integration/lib/lib.sh, if used)
#
#   emu_up PREFIX A2B_SPEC B2A_SPEC [SEED]
#       Creates namespaces ${PREFIX}a and ${PREFIX}b (the PID $$ is appended to
#       PREFIX unless it already contains it, so concurrent runs never
#       collide), brings lo up in both, starts linkemu with TUN devices emua
#       (in a) and emub (in b), waits for its readiness line, then sets MTU
#       1500 and addresses 10.99.0.1/24 + fd99::1/64 on emua, 10.99.0.2/24 +
#       fd99::2/64 on emub. SPECs are linkemu's (see `linkemu --help`), e.g.
#       "delay=20,loss=1,rate=100,queue=500k"; "" means a clean direction.
#       A2B_SPEC "veth" joins the namespaces by a veth pair instead, with no
#       emulator (EMU_PID stays empty; emu_stats does not apply): the
#       kernel's own link, for measuring what the hosts' CPUs allow.
#       Sets: EMU_NS_A EMU_NS_B EMU_DEV_A EMU_DEV_B EMU_IP_A EMU_IP_B
#             EMU_IP6_A EMU_IP6_B EMU_PID EMU_LOG EMU_STATS
#   emu_a CMD...            run CMD in namespace a (ip netns exec)
#   emu_b CMD...            run CMD in namespace b
#   emu_bg a|b NAME CMD...  start CMD in the background in namespace a or b,
#                           output to $EMU_DIR/NAME.log, PID in $LAST_PID;
#                           emu_down kills it (by PID) before the namespaces go
#   emu_stats               make linkemu rewrite $EMU_STATS now (SIGUSR1)
#   emu_stat KEY [FILE]     print one counter from $EMU_STATS (or FILE),
#                           e.g. emu_stat a2b_drop_loss
#   emu_readdr a|b NEWIP    move side a or b to a new address mid-run, as a
#                           laptop changing networks: NEWIP (10.99.0.X, or
#                           fd99::X for IPv6) is added, then the old one is
#                           removed, so sockets bound to it or sending from
#                           it fail from then on; the routes stay. Updates
#                           EMU_IP_A/EMU_IP_B (EMU_IP6_A/EMU_IP6_B): call it
#                           in the test's own shell, not in $(...)
#   emu_nat_on a|b          puts that side behind a NAT: its TCP and UDP
#                           reach the peer from a random port of
#                           EMU_NAT_PORTS_A (_B), a block of 1000 ports in
#                           EMU_NAT_BASE..+9999 (10000..19999, below the
#                           ephemeral ports: the peer never sees a socket's
#                           own port; the address stays); what comes back
#                           for a port of that range without a mapping is
#                           dropped silently (drop_nat). linkemu's NAT, on
#                           the link (not on a veth one)
#   emu_nat_rebind a|b      the NAT forgets every mapping and
#                           maps from the next block, so the next packet of
#                           each flow leaves with a new source port; replies
#                           to the old port are dropped, as a real NAT does
#   emu_nat_off a|b         removes the NAT and its mappings
#   emu_blackout SECS [a2b|b2a]
#                           the link goes silent for SECS seconds (fractions
#                           allowed) both ways or one way, and the call
#                           returns at once: everything linkemu reads or
#                           would deliver meanwhile is dropped and counted
#                           in a2b_drop_down/b2a_drop_down; the endpoints'
#                           sends still succeed. Sets EMU_DOWN_END_MS, the
#                           CLOCK_REALTIME millisecond the link carries
#                           again (compare with `date +%s%3N`)
#   emu_link_down [a2b|b2a], emu_link_up [a2b|b2a]
#                           the same blackout, until emu_link_up
#   emu_down                stop linkemu (by PID), print its final counters
#                           to stderr (kept in $EMU_STATS with the TUN queue
#                           drops tun_a_tx_dropped/tun_b_tx_dropped appended,
#                           copied to $EMU_DIR/stats.N for the N-th emu_up
#                           of this shell), end every process still in the
#                           namespaces (TERM, 2 s, KILL, by PID: forked
#                           children, keepers), delete the namespaces. Safe
#                           to call twice.
#
# Knobs (environment): LINKEMU (binary; default $BIN/linkemu or
# $ROOT/build/progs/linkemu), EMU_IPV6=0 disables IPv6 in both namespaces
# (then nothing but your own traffic crosses the link: no ND/MLD chatter, so
# counters and seeded drop patterns are exact), EMU_MTU (1500), EMU_TXQLEN
# (1000: packets the kernel queues for linkemu on each TUN device before it
# drops them uncounted; larger lets a stalled host catch up), EMU_ARGS
# (extra linkemu options, e.g. "--limit 100000"), EMU_NAT_BASE (10000: the
# NAT's 10,000 ports start there; nothing should listen on them on a NATed
# side), EMU_SYSCTL (sysctl settings, one KEY=VALUE a line, set in both
# namespaces as soon as they are made, e.g. the benchmarks' TCP buffer
# limits; only per-namespace keys take).
#
# Cleanup: the first emu_up in a shell installs an EXIT trap that stops
# linkemu and deletes every namespace this shell made (ending what still
# runs in them, as emu_down does), then calls lib.sh's
# cleanup if it is defined; INT, TERM and HUP exit through it. In a subshell
# (e.g. inside $(...), where traps are reset) emu_up installs a trap of its
# own that cleans only the emulator. A run killed with SIGKILL cannot clean
# up: each namespace is registered in /run/linkemu/NS.owner with the PID of
# the shell that made it, and emu_up deletes registered namespaces whose
# owner is dead and which hold no process. Only one link at a time per
# shell; nothing outside the namespaces made here is touched.

EMU_ALL_NS=""
EMU_BG_PIDS=""
EMU_PID=""
EMU_N=0
EMU_DIR=""
EMU_OWN_DIR=0
EMU_TRAP_PID=""
EMU_REG=/run/linkemu
EMU_NAT_GEN_A="" EMU_NAT_GEN_B=""

emu__fail() {
    if command -v fail >/dev/null 2>&1; then fail "$*"; fi
    echo "FAIL: $*" >&2
    exit 1
}

emu__kill_pid() {
    # Stop one PID we started: TERM, up to 5 s, then KILL.
    _p=$1
    kill -TERM "$_p" 2>/dev/null || return 0
    _i=0
    while kill -0 "$_p" 2>/dev/null && [ "$_i" -lt 100 ]; do
        sleep 0.05
        _i=$((_i + 1))
    done
    kill -KILL "$_p" 2>/dev/null || true
    wait "$_p" 2>/dev/null || true
}

# Deletes namespace $1 after ending, by PID, every process still in it:
# only this shell's jobs and their offspring can be there (a forked
# server's child, a shim keeper that outlived its program), and one left
# behind would keep the namespace alive after its name is gone.
emu__ns_del() {
    _left=$(ip netns pids "$1" 2>/dev/null || true)
    if [ -n "$_left" ]; then
        # shellcheck disable=SC2086
        kill -TERM $_left 2>/dev/null || true
        _i=0
        while [ -n "$(ip netns pids "$1" 2>/dev/null)" ] && [ "$_i" -lt 40 ]; do
            sleep 0.05
            _i=$((_i + 1))
        done
        _left=$(ip netns pids "$1" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$_left" ] || kill -KILL $_left 2>/dev/null || true
    fi
    ip netns del "$1" 2>/dev/null || true
    rm -f "$EMU_REG/$1.owner"
}

emu_cleanup_all() {
    trap '' INT TERM HUP # nor a signal after an exit: see emu__trap
    for _p in $EMU_BG_PIDS $EMU_PID; do emu__kill_pid "$_p"; done
    EMU_BG_PIDS="" EMU_PID=""
    for _ns in $EMU_ALL_NS; do emu__ns_del "$_ns"; done
    EMU_ALL_NS=""
    # A subshell leaves the directory to the shell that made it.
    if [ "$EMU_OWN_DIR" = 1 ] && [ -n "$EMU_DIR" ] && [ "${EMU_REAL_PID:-$$}" = "$$" ]; then
        rm -rf "$EMU_DIR"
    fi
}

# Sets EMU_REAL_PID to the PID of the shell running this code: unlike $$,
# it differs in a subshell. (Not via $(...), which is itself a subshell.)
# The shell opens /proc/self for a builtin's redirection itself: no file of
# its own, which subshells running at once would share (their $$ is one).
emu__real_pid() {
    read -r EMU_REAL_PID _ </proc/self/stat
}

emu__trap() {
    [ "$EMU_TRAP_PID" = "$EMU_REAL_PID" ] && return 0
    if [ "$EMU_REAL_PID" != "$$" ]; then
        # A subshell: lib.sh's cleanup belongs to the parent, leave it alone.
        trap 'emu_cleanup_all' EXIT
    elif command -v cleanup >/dev/null 2>&1; then
        trap 'emu_cleanup_all; cleanup' EXIT
    else
        trap 'emu_cleanup_all' EXIT
    fi
    # Each ignores the others first: a second signal (a timeout's to the
    # process group, then a parent test's to this one) must not cut the
    # clean-up short and leave the namespaces behind.
    trap 'trap "" INT TERM HUP; exit 130' INT
    trap 'trap "" INT TERM HUP; exit 143' TERM
    trap 'trap "" INT TERM HUP; exit 129' HUP
    EMU_TRAP_PID=$EMU_REAL_PID
}

# Delete namespaces registered by emu_up whose owner shell is gone (killed
# before its trap could run) and which hold no process any more.
emu__gc() {
    [ -d "$EMU_REG" ] || return 0
    for _f in "$EMU_REG"/*.owner; do
        [ -f "$_f" ] || continue
        read -r _owner <"$_f" || continue
        _ns=$(basename "$_f" .owner)
        kill -0 "$_owner" 2>/dev/null && continue
        if [ -e "/var/run/netns/$_ns" ]; then
            [ -z "$(ip netns pids "$_ns" 2>/dev/null)" ] || continue
            echo "emu: removing namespace $_ns left by dead PID $_owner" >&2
            ip netns del "$_ns" 2>/dev/null || continue
        fi
        rm -f "$_f"
    done
}

emu_a() { ip netns exec "$EMU_NS_A" "$@"; }
emu_b() { ip netns exec "$EMU_NS_B" "$@"; }

# Sets _ns and _dev for side $1 (a or b); $2 names the caller for the error.
emu__side() {
    case "$1" in
        a) _ns=$EMU_NS_A _dev=$EMU_DEV_A ;;
        b) _ns=$EMU_NS_B _dev=$EMU_DEV_B ;;
        *) emu__fail "$2: side must be a or b, not '$1'" ;;
    esac
}

emu_bg() {
    _side=$1 _name=$2
    shift 2
    emu__side "$_side" emu_bg
    ip netns exec "$_ns" "$@" >"$EMU_DIR/$_name.log" 2>&1 &
    LAST_PID=$!
    EMU_BG_PIDS="$EMU_BG_PIDS $LAST_PID"
}

emu_stat() {
    sed -n "s/^$1=//p" "${2:-$EMU_STATS}"
}

# True while linkemu runs (an exited but unreaped child still takes signals).
emu__alive() {
    [ -n "$EMU_PID" ] && [ -r "/proc/$EMU_PID/stat" ] &&
        ! sed 's/.*) //' "/proc/$EMU_PID/stat" 2>/dev/null | grep -q '^[ZX]'
}

emu_stats() { emu__signal USR1 emu_stats; }

# Sends linkemu SIG ($1: USR1 or USR2) and waits until it has rewritten
# $EMU_STATS, which it does for both; $2 names the caller for the error.
emu__signal() {
    emu__alive || { cat "$EMU_LOG" >&2; emu__fail "$2: linkemu is not running"; }
    _before=$(emu_stat time_ns 2>/dev/null || true)
    kill -"$1" "$EMU_PID"
    _i=0
    while [ "$_i" -lt 500 ]; do
        _now=$(emu_stat time_ns 2>/dev/null || true)
        [ -n "$_now" ] && [ "$_now" != "$_before" ] && return 0
        emu__alive || break
        sleep 0.01
        _i=$((_i + 1))
    done
    tail -n 20 "$EMU_LOG" >&2
    emu__fail "linkemu did not rewrite $EMU_STATS"
}

emu_up() {
    [ $# -ge 3 ] || emu__fail "usage: emu_up PREFIX A2B_SPEC B2A_SPEC [SEED]"
    [ -z "$EMU_PID" ] || emu__fail "emu_up: a link is already up (emu_down first)"
    _prefix=$1
    case "$_prefix" in *"$$"*) ;; *) _prefix="$_prefix$$-" ;; esac
    _seed=${4:-1}
    if [ -z "${LINKEMU:-}" ]; then
        if [ -n "${BIN:-}" ]; then LINKEMU=$BIN/linkemu; else LINKEMU=${ROOT:-.}/build/progs/linkemu; fi
    fi
    [ -x "$LINKEMU" ] || emu__fail "linkemu not built: $LINKEMU (make build/progs/linkemu)"
    # ip netns exec makes a mount namespace and marks / rslave in it, which
    # fails where / is no mount point (a chroot: "mount --make-rslave /"
    # failed: Invalid argument) or mount namespaces are refused: a skip
    # under lib.sh, as need_netns's are
    if ! _e=$(unshare -m true 2>&1); then
        command -v skip >/dev/null 2>&1 &&
            skip "no mount namespace for ip netns exec here (unshare -m: $_e)"
        emu__fail "no mount namespace for ip netns exec here (unshare -m: $_e)"
    fi
    if [ -z "$EMU_DIR" ]; then
        if [ -n "${T:-}" ] && [ -d "$T" ]; then
            EMU_DIR=$T
        else
            EMU_DIR=$(mktemp -d /tmp/linkemu.XXXXXX)
            EMU_OWN_DIR=1
        fi
    fi
    emu__real_pid
    emu__trap
    emu__gc
    mkdir -p "$EMU_REG"

    EMU_N=$((EMU_N + 1))
    EMU_NS_A=${_prefix}a EMU_NS_B=${_prefix}b
    EMU_DEV_A=emua EMU_DEV_B=emub
    EMU_IP_A=10.99.0.1 EMU_IP_B=10.99.0.2
    EMU_IP6_A=fd99::1 EMU_IP6_B=fd99::2
    EMU_NAT_GEN_A="" EMU_NAT_GEN_B="" EMU_NAT_PORTS_A="" EMU_NAT_PORTS_B=""
    EMU_DOWN_END_MS=""
    # Named by shell and count: a subshell shares $EMU_DIR and would reuse N.
    EMU_LOG=$EMU_DIR/linkemu.$EMU_REAL_PID.$EMU_N.log
    EMU_STATS=$EMU_DIR/linkemu.$EMU_REAL_PID.$EMU_N.stats
    EMU_CTL=$EMU_DIR/linkemu.$EMU_REAL_PID.$EMU_N.ctl
    for _ns in "$EMU_NS_A" "$EMU_NS_B"; do
        if ip netns list | grep -q "^$_ns\( \|$\)"; then
            emu__fail "namespace $_ns already exists"
        fi
        echo "$EMU_REAL_PID" >"$EMU_REG/$_ns.owner"
        ip netns add "$_ns" || emu__fail "ip netns add $_ns"
        EMU_ALL_NS="$EMU_ALL_NS $_ns"
        ip -n "$_ns" link set lo up
        emu__sysctl "$_ns"
        if [ "${EMU_IPV6:-1}" = 0 ]; then
            ip netns exec "$_ns" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6 &&
                echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6'
        fi
    done

    if [ "$2" = veth ]; then
        ip link add "$EMU_DEV_A" netns "$EMU_NS_A" type veth peer name "$EMU_DEV_B" \
            netns "$EMU_NS_B" || emu__fail "ip link add veth"
    else
        emu__linkemu "$@"
    fi
    for _side in a b; do
        if [ "$_side" = a ]; then
            _ns=$EMU_NS_A _dev=$EMU_DEV_A _ip=$EMU_IP_A _ip6=$EMU_IP6_A
        else
            _ns=$EMU_NS_B _dev=$EMU_DEV_B _ip=$EMU_IP_B _ip6=$EMU_IP6_B
        fi
        ip -n "$_ns" link set dev "$_dev" mtu "${EMU_MTU:-1500}" txqueuelen "${EMU_TXQLEN:-1000}" up
        ip -n "$_ns" addr add "$_ip/24" dev "$_dev"
        if [ "${EMU_IPV6:-1}" != 0 ]; then
            ip -n "$_ns" addr add "$_ip6/64" dev "$_dev" nodad
        fi
    done
}

# Sets EMU_SYSCTL's KEY=VALUE lines in namespace $1.
emu__sysctl() {
    [ -n "${EMU_SYSCTL:-}" ] || return 0
    _ifs=$IFS
    IFS='
'
    for _kv in $EMU_SYSCTL; do
        [ -n "$_kv" ] || continue
        ip netns exec "$1" sysctl -qw "$_kv" >/dev/null ||
            { IFS=$_ifs; emu__fail "emu_up: sysctl $_kv in $1"; }
    done
    IFS=$_ifs
}

# Starts linkemu between the namespaces and waits until it is ready.
emu__linkemu() {
    # Truncated here, appended to by linkemu: the readiness poll below can
    # never see an older run's line.
    : >"$EMU_LOG"
    rm -f "$EMU_STATS"
    # shellcheck disable=SC2086
    "$LINKEMU" --ns-a "$EMU_NS_A" --ns-b "$EMU_NS_B" --dev-a "$EMU_DEV_A" --dev-b "$EMU_DEV_B" \
        --a2b "$2" --b2a "$3" --seed "$_seed" --mtu "${EMU_MTU:-1500}" \
        --stats "$EMU_STATS" --ctl "$EMU_CTL" ${EMU_ARGS:-} 2>>"$EMU_LOG" &
    EMU_PID=$!
    _i=0
    until grep -q '^linkemu: ready' "$EMU_LOG" 2>/dev/null; do
        if ! kill -0 "$EMU_PID" 2>/dev/null || [ "$_i" -ge 100 ]; then
            cat "$EMU_LOG" >&2
            emu__fail "linkemu did not become ready"
        fi
        sleep 0.05
        _i=$((_i + 1))
    done
}

# --- roaming: a new address, a NAT that re-maps, a silent link -----------

emu_readdr() {
    [ $# -eq 2 ] || emu__fail "usage: emu_readdr a|b NEWIP"
    emu__side "$1" emu_readdr
    _new=$2
    case "$1:$_new" in
        a:*:*) _old=$EMU_IP6_A _plen=64 _other=$EMU_IP6_B _net=fd99:: ;;
        b:*:*) _old=$EMU_IP6_B _plen=64 _other=$EMU_IP6_A _net=fd99:: ;;
        a:*) _old=$EMU_IP_A _plen=24 _other=$EMU_IP_B _net=10.99.0. ;;
        *) _old=$EMU_IP_B _plen=24 _other=$EMU_IP_A _net=10.99.0. ;;
    esac
    # The link's prefix: the peer's route to it stays as it is.
    case "$_new" in "$_net"*) ;; *) emu__fail "emu_readdr: $_new is not in ${_net}X" ;; esac
    [ "$_new" != "$_old" ] && [ "$_new" != "$_other" ] ||
        emu__fail "emu_readdr: $_new is already side a's or b's address"
    if [ "$_plen" = 64 ]; then
        [ "${EMU_IPV6:-1}" != 0 ] || emu__fail "emu_readdr: IPv6 is off (EMU_IPV6=0)"
        ip -n "$_ns" addr add "$_new/64" dev "$_dev" nodad || emu__fail "emu_readdr: add $_new"
    else
        # Deleting a subnet's primary address deletes its secondaries too,
        # unless they are promoted: the new address is one of them.
        ip netns exec "$_ns" sysctl -qw "net.ipv4.conf.$_dev.promote_secondaries=1" ||
            emu__fail "emu_readdr: promote_secondaries on $_dev"
        ip -n "$_ns" addr add "$_new/24" dev "$_dev" || emu__fail "emu_readdr: add $_new"
    fi
    ip -n "$_ns" addr del "$_old/$_plen" dev "$_dev" || emu__fail "emu_readdr: del $_old"
    # The peer is now reached from the new address, by the same route.
    ip -n "$_ns" route get "$_other" 2>/dev/null | grep -q " src $_new\( \|$\)" ||
        emu__fail "emu_readdr: side $1 does not reach $_other from $_new: $(ip -n "$_ns" route get "$_other" 2>&1)"
    case "$1:$_plen" in
        a:24) EMU_IP_A=$_new ;;
        b:24) EMU_IP_B=$_new ;;
        a:64) EMU_IP6_A=$_new ;;
        b:64) EMU_IP6_B=$_new ;;
    esac
}

# The NAT is linkemu's (integration/emu/linkemu_nat.c), on the link in
# front of the NATed side, where a NAT box sees packets: one by one. The
# kernel's (nftables snat, conntrack) could only sit in a namespace's hooks,
# where the sending host's own UDP GSO trains pass whole, and this kernel
# (6.18) then gets every datagram's checksum wrong (UdpInCsumErrors at the
# receiver): replies translated on the peer's output lost a server's trains
# to its NATed client, and only those (t_roam_keeper's keepers' FIN+PING).
emu__nat_check() {
    case "$1" in a|b) ;; *) emu__fail "usage: $2 a|b" ;; esac
    [ -n "$EMU_PID" ] || emu__fail "$2: the NAT is linkemu's: a veth link (emu_up ... veth) has none"
}

# Maps side $1's source ports to block $2 (modulo 10), forgetting every
# mapping, and records it.
emu__nat_block() {
    _lo=$((${EMU_NAT_BASE:-10000} + ($2 % 10) * 1000))
    _ports="$_lo-$((_lo + 999))"
    emu__ctl nat "$1" "$2" "${EMU_NAT_BASE:-10000}"
    case "$1" in
        a) EMU_NAT_GEN_A=$2 EMU_NAT_PORTS_A=$_ports ;;
        b) EMU_NAT_GEN_B=$2 EMU_NAT_PORTS_B=$_ports ;;
    esac
}

emu_nat_on() {
    [ $# -eq 1 ] || emu__fail "usage: emu_nat_on a|b"
    emu__nat_check "$1" emu_nat_on
    if [ "$1" = a ]; then _other=$EMU_NAT_GEN_B; else _other=$EMU_NAT_GEN_A; fi
    [ -z "$_other" ] || emu__fail "emu_nat_on $1: linkemu has one NAT, in front of the other side now"
    emu__nat_block "$1" 0
}

emu_nat_rebind() {
    [ $# -eq 1 ] || emu__fail "usage: emu_nat_rebind a|b"
    emu__nat_check "$1" emu_nat_rebind
    if [ "$1" = a ]; then _gen=$EMU_NAT_GEN_A; else _gen=$EMU_NAT_GEN_B; fi
    [ -n "$_gen" ] || emu__fail "emu_nat_rebind $1: no NAT there (emu_nat_on $1 first)"
    # One command: a packet read before it keeps its old mapping, none after
    # can take one from the old block.
    emu__nat_block "$1" $((_gen + 1))
}

emu_nat_off() {
    [ $# -eq 1 ] || emu__fail "usage: emu_nat_off a|b"
    emu__nat_check "$1" emu_nat_off
    if [ "$1" = a ]; then _gen=$EMU_NAT_GEN_A; else _gen=$EMU_NAT_GEN_B; fi
    [ -n "$_gen" ] || return 0 # none in front of that side
    emu__ctl nat off
    if [ "$1" = a ]; then
        EMU_NAT_GEN_A="" EMU_NAT_PORTS_A=""
    else
        EMU_NAT_GEN_B="" EMU_NAT_PORTS_B=""
    fi
}

# Writes linkemu's control command ($*) and has it applied (SIGUSR2).
emu__ctl() {
    [ -n "$EMU_PID" ] || emu__fail "emu: no linkemu running (a veth link has no blackout)"
    _applied=$(emu_stat ctl_applied 2>/dev/null || true)
    echo "$*" >"$EMU_CTL.tmp" && mv -f "$EMU_CTL.tmp" "$EMU_CTL"
    emu__signal USR2 "emu: $*"
    [ "$(emu_stat ctl_applied)" = $((${_applied:-0} + 1)) ] ||
        { tail -n 5 "$EMU_LOG" >&2; emu__fail "linkemu did not apply '$*'"; }
}

emu_blackout() {
    case "$#:${2:-}" in 1:|2:a2b|2:b2a) ;; *) emu__fail "usage: emu_blackout SECONDS [a2b|b2a]" ;; esac
    _ms=$(awk -v s="$1" 'BEGIN { if (s !~ /^[0-9]*\.?[0-9]+$/) exit 1; printf "%.3f", s * 1000 }') ||
        emu__fail "emu_blackout: '$1' is not a number of seconds"
    emu__ctl down "$_ms" ${2:-}
    # The end as linkemu set it (CLOCK_MONOTONIC), on the wall clock.
    _d=${2:-a2b}
    EMU_DOWN_END_MS=$((($(emu_stat realtime_ns) + $(emu_stat "${_d}_down_until_ns") -
        $(emu_stat time_ns)) / 1000000))
}

emu_link_down() {
    case "${1:-}" in ''|a2b|b2a) ;; *) emu__fail "usage: emu_link_down [a2b|b2a]" ;; esac
    emu__ctl down ${1:-}
}

emu_link_up() {
    case "${1:-}" in ''|a2b|b2a) ;; *) emu__fail "usage: emu_link_up [a2b|b2a]" ;; esac
    emu__ctl up ${1:-}
}

emu__tun_drops() { # NS DEV: TX dropped of the TUN device (0 if unknown)
    ip -n "$1" -s link show dev "$2" 2>/dev/null |
        awk '/TX:/ { getline; print $4; f = 1 } END { if (!f) print 0 }'
}

emu_down() {
    for _p in $EMU_BG_PIDS; do emu__kill_pid "$_p"; done
    EMU_BG_PIDS=""
    if [ -n "$EMU_PID" ]; then
        # Packets the kernel dropped before linkemu read them (TUN queue
        # full: linkemu too slow) are not in its counters; keep them too.
        _da=$(emu__tun_drops "$EMU_NS_A" "$EMU_DEV_A")
        _db=$(emu__tun_drops "$EMU_NS_B" "$EMU_DEV_B")
        emu__kill_pid "$EMU_PID"
        EMU_PID=""
        printf 'tun_a_tx_dropped=%s\ntun_b_tx_dropped=%s\n' "$_da" "$_db" >>"$EMU_STATS"
        sed -n '/counters after/,$p' "$EMU_LOG" | tail -n 4 >&2
        echo "  TUN queue drops before linkemu: a2b $_da, b2a $_db" >&2
        cp "$EMU_STATS" "$EMU_DIR/stats.$EMU_N" 2>/dev/null || true
    fi
    for _ns in $EMU_ALL_NS; do emu__ns_del "$_ns"; done
    EMU_ALL_NS=""
}
