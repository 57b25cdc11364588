# Shared helpers for integration scripts (sourced; POSIX sh + a few bashisms avoided).
#
#   . "$(dirname "$0")/../../lib/lib.sh"     (a test, integration/tests/SUBJECT/t_*.sh)
#   under_shim CMD...        run CMD with the shim preloaded (ASan-aware)
#   start_bg NAME CMD...     start CMD in the background, log to $T/NAME.log, remember its PID
#   start_aside NAME CMD...  the same for CMD that cleans up after itself when
#                            sent SIGTERM (a test script beside this one, its
#                            namespaces and programs): cleanup gives it 10 s for
#                            that, not 0.1 s; its PID in $LAST_PID
#   aside_wait PID           wait for that aside to end (it bounds its own
#                            time): its exit status; cleanup forgets it
#   running PID              PID is a live process (not gone, not a zombie)
#   procs_matching PCRE [EXCEPT]  the live processes but EXCEPT whose command
#                            line (its NUL-separated arguments, or a title
#                            set over them) matches PCRE, one PID a line
#   ended CS PID...          wait until none of PID... runs, CS hundredths of a
#                            second at most; false if one still does
#   wait_udp PORT [SECS]     wait until a UDP socket is bound on PORT (in network
#                            namespace $SS_NS if set)
#   wait_tcp PORT [SECS]     wait until a TCP socket listens on PORT
#   free_port                print a free port number (TCP and UDP) on loopback
#   fail MSG                 print MSG and exit 1
#   skip WHY                 print "skip: WHY" and exit 77: the whole test cannot
#                            run here (no root, no network namespace, no
#                            binfmt_misc, a container or chroot...); run.sh
#                            counts it as skipped, never as passed. A test
#                            that skips only a part prints "skip: WHY" and
#                            goes on (run.sh counts those lines apart)
#   need_root WHY            skip unless root
#   need_netns WHY           skip unless a network namespace can be made here
#                            and its /proc/sys/net written (root, unshare -n,
#                            /proc/sys not read-only: not in most containers)
#   own_netns WHY            (right after sourcing lib.sh, before starting
#                            anything) run the script again, from the
#                            start, in a network namespace of its own that
#                            goes with it (need_netns first); in that run,
#                            return at once
#   apart_netns              the same where a namespace can be made, loopback
#                            up in it; else go on here, on the host's
#                            loopback (run.sh runs such a test beside the
#                            others only where it can make one; else in
#                            lane a). A test that installs packages
#                            (deps.sh) needs them installed before: make test
#                            does (the namespace has no way out)
#   need_mntns WHY           skip unless a mount namespace can be made here
#                            (root, unshare -m)
#   need_tun WHY             skip unless /dev/net/tun opens (the link emulator)
#   can_netns                true if a network namespace can be made here
#   sha FILE                 sha256 of FILE
#   stats_lines FILE [WHO]   the counter lines of the RUDP_STATS blocks in the
#                            log FILE ("connections: ...", "udp: ...", one a
#                            line, unindented), of WHO's blocks only if given
#                            ("rudp-keeper[123]", "rudp[45]")
#   attacker_prog NAME       (root) copy $BIN/NAME (or $TOOLS/NAME, a user's
#                            tool) to $T/NAME where uid nobody
#                            can run it, wherever the tree is checked out
#   as_nobody CMD...         run CMD as uid/gid nobody, no groups, 30 s at most
#   public_ldp               the preload line under_shim uses, naming a copy
#                            of the shim in $T where any uid can load it, for
#                            a program run as another user (a checkout under
#                            /root, mode 0700, keeps the built one from it)
#   make_key FILE            a new key for keyed mode (rudp-run --genkey) in FILE,
#                            mode 0600 from the start (umask 077)
#
# Every script gets a private temp dir $T, removed on exit together with every
# process it started (by PID, never by name).

set -eu

# ROOT: the checkout, the first directory at or above the script's own that
# holds integration/lib/lib.sh (a sourced file cannot know its own path, so
# the search starts from $0: integration/demo.sh, integration/bench/run.sh,
# integration/tests/SUBJECT/t_*.sh, or "." from an interactive shell).
ROOT=$(cd "$(dirname -- "$0")" 2>/dev/null && pwd) || ROOT=$(pwd)
while [ ! -f "$ROOT/integration/lib/lib.sh" ] && [ "$ROOT" != / ]; do ROOT=$(dirname "$ROOT"); done
[ -f "$ROOT/integration/lib/lib.sh" ] ||
    { echo "lib.sh: no integration/lib/lib.sh at or above $(dirname "$0")" >&2; exit 1; }
BUILD=${RUDP_SHIM_BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
# SAN: the sanitizer of the build (make asan/tsan/ubsan build into
# build/asan, build/tsan, build/ubsan), none otherwise. From the build
# directory's own name only: a checkout whose path holds "asan" (a clone
# in /tmp/asan14) is not an ASan build.
case "${BUILD%/}" in
*/build/asan) SAN=asan ;;
*/build/tsan) SAN=tsan ;;
*/build/ubsan) SAN=ubsan ;;
*) SAN=none ;;
esac
SHIM=$BUILD/librudp_shim.so
# BIN: the test and benchmark programs (make progs); TOOLS: the user's
# tools as make leaves them (rudp-run, rudp-stat, rudp-plot, rudp.lua).
BIN=$BUILD/progs
TOOLS=$BUILD/bin
# In an ASan run every program started with the preload (under_shim, or
# LD_PRELOAD="$(shim_preload)" directly) gets under_shim's options: leaks
# are not checked in programs that are not ours (bash, a python3 wrapper
# script, leaks at exit), which LeakSanitizer would fail with exit 23.
case "$SAN" in
asan) export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}" ;;
esac
# The system's python3 where there is one: a version manager's wrapper
# first in PATH can take a second per start.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3 || echo python3)
T=$(mktemp -d /tmp/rudp-it.XXXXXX)
PIDS=""
ASIDE=""

running() {
    { read -r _st <"/proc/$1/stat"; } 2>/dev/null || return 1
    _st=${_st##*) } # after the command name, which may hold ") "
    case $_st in Z* | X*) return 1 ;; esac
}

procs_matching() {
    grep -alP -- "$1" /proc/[0-9]*/cmdline 2>/dev/null |
        while read -r _f; do
            _p=${_f#/proc/}; _p=${_p%/cmdline}
            if [ "$_p" != "${2:-}" ] && running "$_p"; then echo "$_p"; fi
        done
}

# ended CS PID...: wait until none of PID... runs, at most CS hundredths of a
# second; false if one still does then.
ended() {
    _cs=$1; shift
    while :; do
        _up=""
        for _p in "$@"; do running "$_p" && { _up=1; break; }; done
        [ -n "$_up" ] || return 0
        [ "$_cs" -gt 0 ] || return 1
        sleep 0.01
        _cs=$((_cs - 1))
    done
}

cleanup() {
    for p in $PIDS $ASIDE; do kill "$p" 2>/dev/null || true; done
    # an aside ends its own programs and namespaces on TERM: 10 s for that;
    # the others 0.1 s to end, as long as one of them runs
    # shellcheck disable=SC2086
    ended 1000 $ASIDE || true
    # shellcheck disable=SC2086
    ended 10 $PIDS || true
    for p in $PIDS $ASIDE; do kill -9 "$p" 2>/dev/null || true; done
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $T" >&2; else rm -rf "$T"; fi
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skip: $*"; exit 77; }
# have_ipv6_lo: whether loopback has ::1 here. Not where IPv6 is off
# (net.ipv6.conf.lo.disable_ipv6=1: a container of an IPv4-only Docker
# network; ipv6.disable=1): an IPv6 part then says "skip: no IPv6 loopback
# here: WHAT" (skip_ipv6 WHAT) and the rest of the test runs
have_ipv6_lo() {
    grep -q '^0\{31\}1 .* lo$' /proc/net/if_inet6 2>/dev/null
}
skip_ipv6() { echo "skip: no IPv6 loopback here (no ::1 on lo in /proc/net/if_inet6): $*"; }
need_root() { [ "$(id -u)" = 0 ] || skip "not root: $*"; }
can_netns() {
    [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 && unshare -n true 2>/dev/null
}
need_netns() {
    need_root "$*"
    command -v unshare >/dev/null 2>&1 || skip "no unshare (util-linux): $*"
    _e=$(unshare -n true 2>&1) || skip "no network namespace here (unshare -n: $_e): $*"
    _f=/proc/sys/net/ipv4/ip_local_port_range
    _e=$(unshare -n sh -c "cat $_f >$_f" 2>&1) ||
        skip "cannot write /proc/sys/net in a network namespace here ($_e): $*"
}
own_netns() {
    [ "${IT_OWN_NETNS:-}" = 1 ] && return 0
    need_netns "$*"
    rm -rf "$T" # exec: this run's cleanup never comes
    IT_OWN_NETNS=1 exec unshare -n sh "$0"
}
# apart_netns: (right after sourcing lib.sh, as own_netns) the script again
# in a network namespace of its own with loopback up, where one can be made
# (can_netns, and ip); else here, on the host's loopback. For a test that
# needs nothing of the host's network but loopback: run.sh runs it in its
# lanes beside the others (it looks for a line "apart_netns" in the
# script), where a namespace can be made.
apart_netns() {
    if [ "${IT_OWN_NETNS:-}" = 1 ]; then
        # (a script run by one already in its namespace, without the
        # right to set links maybe: dockerlike's, t_as_container's)
        ip link set lo up 2>/dev/null || ip -o link show lo | grep -q '[<,]UP[,>]' ||
            fail "cannot bring up lo in the test's namespace"
        return 0
    fi
    command -v ip >/dev/null 2>&1 && can_netns || return 0
    rm -rf "$T" # exec: this run's cleanup never comes
    IT_OWN_NETNS=1 exec unshare -n sh "$0"
}
need_mntns() {
    need_root "$*"
    command -v unshare >/dev/null 2>&1 || skip "no unshare (util-linux): $*"
    _e=$(unshare -m true 2>&1) || skip "no mount namespace here (unshare -m: $_e): $*"
}
need_tun() {
    { [ -c /dev/net/tun ] && (: <>/dev/net/tun) 2>/dev/null; } || skip "no usable /dev/net/tun: $*"
}

# Preload line: ASan builds need libasan ahead of the shim.
shim_preload() {
    case "$SAN" in
        asan) echo "$(gcc -print-file-name=libasan.so):$SHIM" ;;
        tsan) echo "$(gcc -print-file-name=libtsan.so):$SHIM" ;;
        *) echo "$SHIM" ;;
    esac
}

under_shim() {
    [ -f "$SHIM" ] || fail "shim not built: $SHIM"
    case "$SAN:$1" in
    asan:curl)
        # curl deadlocks in setlocale() with libasan preloaded, shim or
        # not (Debian 12): in ASan runs curl uses the regular shim, its
        # peers keep the ASan one.
        echo "note: curl under the regular shim ($ROOT/build) in an ASan run" >&2
        env LD_PRELOAD="$ROOT/build/librudp_shim.so" "$@"
        return ;;
    esac
    env LD_PRELOAD="$(shim_preload)" ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}" "$@"
}

start_bg() {
    name=$1; shift
    # The log emptied now, not by the background job's redirection, which
    # may come after the caller's next look at it: a name used again would
    # show its last run's lines (pmlib.sh's "listening" did so)
    : >"$T/$name.log"
    # A shell function run in the background is a subshell whose PID is not
    # the program's: start under_shim's program directly so $LAST_PID is it.
    if [ "$1" = under_shim ]; then
        shift
        [ -f "$SHIM" ] || fail "shim not built: $SHIM"
        env LD_PRELOAD="$(shim_preload)" \
            ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}" \
            "$@" >"$T/$name.log" 2>&1 &
    else
        "$@" >"$T/$name.log" 2>&1 &
    fi
    PIDS="$PIDS $!"
    LAST_PID=$!
}

start_aside() {
    name=$1; shift
    "$@" >"$T/$name.log" 2>&1 &
    ASIDE="$ASIDE $!"
    LAST_PID=$!
}

aside_wait() {
    _rc=0
    wait "$1" || _rc=$?
    _left=""
    for _p in $ASIDE; do [ "$_p" = "$1" ] || _left="$_left $_p"; done
    ASIDE=$_left
    return "$_rc"
}

wait_sock() {
    proto=$1 port=$2 secs=${3:-10}
    i=0
    while [ "$i" -lt $((secs * 20)) ]; do
        if ${SS_NS:+ip netns exec "$SS_NS"} ss -H -n "-${proto}l" "sport = :$port" 2>/dev/null |
            grep -q .; then return 0; fi
        if [ "$proto" = u ] && ${SS_NS:+ip netns exec "$SS_NS"} ss -H -n -ua "sport = :$port" \
            2>/dev/null | grep -q .; then return 0; fi
        sleep 0.05
        i=$((i + 1))
    done
    # what the programs started in the background said (why none bound)
    for _f in "$T"/*.log; do
        [ -f "$_f" ] && { echo "--- ${_f##*/} (last lines)"; tail -5 "$_f"; }
    done
    # and what holds the port, in any state (a TIME_WAIT, a bound socket)
    echo "--- sockets on port $port"
    ${SS_NS:+ip netns exec "$SS_NS"} ss -H -n -tuap "( sport = :$port or dport = :$port )" 2>&1 | head -5
    fail "nothing bound on $proto port $port after ${secs}s"
}
wait_udp() { wait_sock u "$1" "${2:-10}"; }
wait_tcp() { wait_sock t "$1" "${2:-10}"; }

free_port() {
    i=0
    while [ "$i" -lt 200 ]; do
        # 20500-32499: below the kernel's ephemeral ports (32768-60999 by
        # default), which a connect() of this or any test may take between
        # the pick and the bind (a client's TIME_WAIT on the port then
        # fails a bind without SO_REUSEADDR: t_sec_memory, t_sec_squat,
        # once each in one run); above linkemu's NAT block (10000-19999).
        p=$(( (($$ * 7919 + i * 104729) % 12000) + 20500 ))
        # No socket with P at either end: an earlier test's client may sit
        # in TIME_WAIT towards P (dport) for 60 s, and assert_on_port would
        # take it for a TCP connection of this test's. And a TCP bind() to
        # it works: a keeper holding a listener's port through TIME_WAIT
        # holds a bound TCP socket, which ss does not list (the kernel's
        # own TIME_WAIT it does)
        if ! ss -H -n -ta "( sport = :$p or dport = :$p )" | grep -q . &&
            ! ss -H -n -ua "( sport = :$p or dport = :$p )" | grep -q . &&
            "$PY" -c 'import socket, sys; socket.socket().bind(("", int(sys.argv[1])))' "$p" 2>/dev/null; then
            echo "$p"; return 0
        fi
        i=$((i + 1))
    done
    fail "no free port"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# A block is a "... stats: the rudp engines' counters (RUDP_STATS):" line
# and the lines indented by two spaces after it (shim/engine/enginestats.c).
stats_lines() {
    awk -v who="${2:-}" '
        / stats: the rudp engines. counters \(RUDP_STATS\):$/ {
            inb = who == "" || index($0, " " who " stats: ") > 0; next }
        /^  / { if (inb) { sub(/^  /, ""); print } next }
        { inb = 0 }' "$1"
}

attacker_prog() {
    need_root "to run an attacker as uid nobody"
    command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
    _ap=$BIN/$1
    [ -x "$_ap" ] || _ap=$TOOLS/$1
    [ -x "$_ap" ] || fail "$1 not built in $BIN or $TOOLS (make)"
    chmod 755 "$T"
    cp "$_ap" "$T/$1" && chmod 755 "$T/$1"
}
as_nobody() { timeout 30 setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
public_ldp() {
    [ -f "$SHIM" ] || fail "shim not built: $SHIM"
    chmod 755 "$T"
    mkdir -p "$T/pub"
    chmod 755 "$T/pub"
    [ -f "$T/pub/librudp_shim.so" ] || cp "$SHIM" "$T/pub/librudp_shim.so"
    chmod 755 "$T/pub/librudp_shim.so"
    (SHIM=$T/pub/librudp_shim.so; shim_preload)
}
make_key() {
    (umask 077 && "$TOOLS/rudp-run" --genkey >"$1") || fail "rudp-run --genkey >$1 failed"
}
