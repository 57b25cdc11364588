#!/bin/sh
# memcached (4 worker threads, libevent) <-> libmemcached's tools, over
# kernel TCP and then with both ends under the shim (lib/battery.sh): 12
# files of 1 byte to 900 KB stored with memccp and read back with memccat,
# sha256 equal; memcslap with 8 threads setting 16,000 keys (text protocol)
# and getting 16,000 (binary protocol); memcstat's counters then say every
# set arrived and every get hit; memcached ends on SIGTERM.  nftables counts
# the kernel TCP segments on the port: > 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

mkdir -p "$BAT_TOP/files"
i=0
for n in 1 100 4095 4096 65536 100000 262144 300001 500000 700000 899999 900000; do
    i=$((i + 1))
    head -c "$n" /dev/urandom >"$BAT_TOP/files/f$i"
done

run() {
    P=$(bat_port)
    S=127.0.0.1:$P
    # -U 0: no UDP (its UDP on the port would make the listener plain TCP,
    # docs/design.md: the program's own UDP); -I 2m: items up to 2 MB
    bg_app memcached memcached -u root -l 127.0.0.1 -p "$P" -U 0 -t 4 -m 64 -I 2m -c 256
    MC=$LAST_PID
    bat_listen "$MC" "$P" 20
    assert_listener "$P"

    mkdir "$T/got"
    for f in "$BAT_TOP"/files/f*; do
        (cd "$BAT_TOP/files" && run_app memccp --servers="$S" "${f##*/}") || fail "memccp ${f##*/} exited $?"
    done
    for f in "$BAT_TOP"/files/f*; do
        n=${f##*/}
        (cd "$T/got" && run_app memccat --servers="$S" --file="$n" "$n") || fail "memccat $n exited $?"
        [ "$(sha "$T/got/$n")" = "$(sha "$f")" ] ||
            fail "memccat $n: sha256 differs ($(stat -c %s "$T/got/$n") of $(stat -c %s "$f") bytes)"
    done
    echo "ok: 12 files (1 byte to 900 KB) through memccp / memccat, sha256 equal"

    run_app memcslap --servers="$S" -c 8 -e 2000 -t set >"$T/slap.set" 2>&1 ||
        { rc=$?; show "$T/slap.set"; fail "memcslap -t set exited $rc"; }
    run_app memcslap --servers="$S" -c 8 -e 2000 -t get -b >"$T/slap.get" 2>&1 ||
        { rc=$?; show "$T/slap.get"; fail "memcslap -t get -b exited $rc"; }
    grep -h 'keys by' "$T/slap.set" "$T/slap.get"
    run_app memcstat --servers="$S" >"$T/stat" || fail "memcstat exited $?"
    st() { sed -n "s/^[[:space:]]*$1: //p" "$T/stat"; }
    # 12 files + 16,000 by 8 threads + the get test's 2,000 preloaded keys
    [ "$(st cmd_set)" = 18012 ] || { show "$T/stat"; fail "cmd_set $(st cmd_set), want 18012"; }
    # 12 files + 16,000 by 8 threads, all present
    [ "$(st get_hits)" = 16012 ] || { show "$T/stat"; fail "get_hits $(st get_hits), want 16012"; }
    [ "$(st get_misses)" = 0 ] || fail "get_misses $(st get_misses), want 0"
    echo "ok: memcslap: 18,012 sets and 16,012 get hits arrived, no miss ($(st total_connections) connections)"

    rc=0
    stop_app "$MC" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/memcached.log"; fail "memcached exited $rc on SIGTERM"; }
    echo "ok: memcached ends on SIGTERM"
}
battery run
