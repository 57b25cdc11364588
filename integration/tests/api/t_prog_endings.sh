#!/bin/sh
# Every way a connection can end, as a program that reads and never writes
# sees it (tests/prog_endings.c): poll(), read(), getsockopt(SO_ERROR) and
# write(), over kernel TCP, under the preload, and (where the supervisor
# runs) supervised. Each case runs in a network namespace of its own, whose
# "path" an nftables rule cuts.
#
# Asserted: an abnormal end (reset, keepalive/idle timeout, user timeout,
# refusal) is an error on read(), never an end of file, and poll() shows
# POLLERR (not after the reader's own SHUT_WR, "shut", where only the
# preload's interposed read can tell): under the preload the errno TCP gives, supervised an error at
# least (ECONNRESET: the one an AF_UNIX bridge can raise where no call is
# interposed). And the table the cases make is docs/endings.md's, row for
# row: the doc says what was measured.
#
# Before issue 43 the preload's reader of a timed-out connection read 0
# (EOF), as nc saving a cut download as whole.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"

need_netns "prog_endings cuts its path with nftables in a namespace of its own"
command -v nft >/dev/null 2>&1 || skip "nft not installed (nftables)"
need_bin prog_endings
SUP=$TOOLS/rudp-supervise
STATIC=$BIN/static/prog_endings
sup=1
if [ "${ENDINGS_NO_SUPERVISED:-0}" = 1 ]; then
    sup=0 # t_fd_table_own's rerun: it measures the supervised column once
elif [ ! -x "$STATIC" ]; then
    echo "skip: no static libc here: the supervised column is not measured"
    sup=0
elif ! e=$(timeout 10 "$SUP" --probe 2>&1); then
    echo "skip: the supervisor cannot work here ($e): the supervised column is not measured"
    sup=0
fi

DROP='nft add table inet ends \; add chain inet ends in "{ type filter hook input priority 0; policy drop; }"'
# the supervised program's timeouts for the idle case, as the keepalive it
# asks TCP for (TCP_KEEPIDLE 1 + 2 x TCP_KEEPINTVL 1); TCP ignores them.
# The preload takes the program's own options (tests/prog_keepalive.c).
TIMEOUTS="RUDP_IDLE_TIMEOUT=3s RUDP_KEEPALIVE=1s"

# $1 case, $2 how (tcp, shim, supervised): the program's "ending" line
measure() {
    _out=$T/$1.$2
    case $2 in
    tcp) unshare -n sh -c "ip link set lo up && exec timeout -k 5 60 $BIN/prog_endings $1 '$DROP'" \
             >"$_out" 2>&1 ;;
    shim) unshare -n sh -c "ip link set lo up && exec env LD_PRELOAD=$APP_LDP ASAN_OPTIONS=$APP_ASO \
             RUDP_EXPECT_ABORT=1 timeout -k 5 60 $BIN/prog_endings $1 '$DROP'" \
             >"$_out" 2>&1 ;;
    supervised) unshare -n sh -c "ip link set lo up && exec env RUDP_EXPECT_ABORT=1 $TIMEOUTS \
             timeout -k 5 60 $SUP $STATIC $1 '$DROP'" >"$_out" 2>&1 ;;
    esac || { show "$_out"; fail "$1 ($2) failed"; }
    grep "^ending $1: " "$_out" || { show "$_out"; fail "$1 ($2): no ending line"; }
    if [ "$2" != tcp ] && grep '^transport: ' "$_out" | grep -qw tcp; then
        fail "$1 ($2): the connection was kernel TCP, not rudp"
    fi
}

# field $2 (poll, read, ...) of line $1
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

CASES="fin reset idle shut partial taken utimeout refused"
# All at once: each run is a namespace, files and processes of its own, and
# spends its time (2 to 4 s) waiting for its timers (keepalive, idle, user
# timeout), which no run's CPU moves: one after another they took ~47 s.
runs=""
for c in $CASES; do
    for how in tcp shim supervised; do
        [ "$how" = supervised ] && [ "$sup" = 0 ] && continue
        measure "$c" "$how" >"$T/$c.$how.said" 2>&1 &
        runs="$runs $!:$c.$how"
    done
done
bad=""
for j in $runs; do
    wait "${j%%:*}" || { cat "$T/${j#*:}.said" >&2; bad="$bad ${j#*:}"; }
done
[ -z "$bad" ] || fail "measuring failed:$bad"

# the assertions: the call that says how it ended (the first read; after a
# short read, the second; SO_ERROR where it comes first) says what TCP's
# says, an error; poll shows POLLERR where TCP's does
for c in $CASES; do
    [ "$c" = fin ] && continue
    case $c in partial) f=read2 ;; taken) f=so_error ;; *) f=read ;; esac
    t=$(grep "^ending $c: " "$T/$c.tcp")
    s=$(grep "^ending $c: " "$T/$c.shim")
    [ "$(field "$t" $f)" != 0 ] || fail "$c: kernel TCP's $f said 0 (the reference is broken)"
    [ "$(field "$s" $f)" = "$(field "$t" $f)" ] ||
        fail "$c: the preload's $f says $(field "$s" $f), kernel TCP's $(field "$t" $f)"
    # shut: the app's end, shut down for writing, cannot be made to raise
    # an error (docs/endings.md): its poll shows no ERR, a supervised read 0;
    # partial: the bytes left come first, poll says IN
    case $c in
    shut|partial) ;;
    *) case "|$(field "$s" poll)|" in *"|ERR|"*) ;; *) fail "$c: the preload's poll shows no ERR: $(field "$s" poll)" ;; esac ;;
    esac
    echo "ok: $c: the preload's $f says $(field "$s" $f), as TCP's; poll $(field "$s" poll)"
    case $c in shut|partial) continue ;; esac
    if [ "$sup" = 1 ]; then
        v=$(grep "^ending $c: " "$T/$c.supervised")
        case $(field "$v" $f) in
        0|[1-9]*) fail "$c: supervised, $f said $(field "$v" $f), not an error" ;;
        esac
        echo "ok: $c: supervised, $f says $(field "$v" $f)"
    fi
done

# the table: one row per case and call
for c in $CASES; do
    for f in poll all read read2 so_error write write2; do
        row="| $c | $f | $(field "$(grep "^ending $c: " "$T/$c.tcp")" $f) | $(field "$(grep "^ending $c: " "$T/$c.shim")" $f) |"
        if [ "$sup" = 1 ]; then
            row="$row $(field "$(grep "^ending $c: " "$T/$c.supervised")" $f) |"
        else
            row="$row - |"
        fi
        echo "$row"
    done
done | sed 's/|\([A-Z]\)/\\|\1/g' >"$T/measured"
doc=$ROOT/docs/endings.md
grep -E '^\| (fin|reset|idle|shut|partial|taken|utimeout|refused) \| [a-z_0-9]+ \| ' "$doc" >"$T/documented" || true
if [ "$sup" = 0 ]; then # compare what was measured
    for f in measured documented; do
        awk -F' \\| ' '{ print $1 " | " $2 " | " $3 " | " $4 " | - |" }' "$T/$f" >"$T/$f.cut"
        mv "$T/$f.cut" "$T/$f"
    done
fi
if ! diff -u "$T/documented" "$T/measured"; then
    fail "docs/endings.md's table differs from what was measured (above: - the doc, + measured)"
fi
echo "ok: docs/endings.md's table is what was measured ($(wc -l <"$T/measured") rows)"
