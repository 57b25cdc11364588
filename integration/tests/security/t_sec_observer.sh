#!/bin/sh
# An observer who sends from its own address (issue 30, finding 1). On
# a1af020 one bit-flipped copy of a client's datagram, sent from another
# UDP socket, made the server stop answering the real client: the copy's
# frames were processed (its packet number, its ACK of packets never sent)
# and its address taken for a new path.
#
# nc -N uploads 20 MB to nc -l, both under the shim (RUDP_FALLBACK=none),
# through tests/prog_observer.c: a UDP relay on loopback whose observer
# sees every datagram and sends the server 20,000 hostile ones from a
# socket of its own (another address, which it reads): bit-flipped copies
# (most of them, some ahead of their original), truncated, extended, junk,
# empty and replayed datagrams. Unkeyed, then keyed (RUDP_KEY_FILE).
#
# Asserts: the attack was delivered (20,000 sent); the upload completes
# and its sha256 is equal; the server sent the observer's address at most
# 3 x what it received from it (RFC 9000 §8: an address not validated).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

[ "$SHIM_MODE" = shim ] || { echo "skip: the attack is on rudp datagrams (RUDP_NO_SHIM=1)"; exit 77; }
need_bin prog_observer
COUNT=20000
SIZE=20000000
head -c "$SIZE" /dev/urandom >"$T/up"
# datagrams of a real network (loopback's would be 64 KiB: a few hundred for 20 MB)
export RUDP_FALLBACK=none RUDP_STATS=1 RUDP_DATAGRAM=1400

run() { # LABEL
    P=$(free_port)
    bg_app_io "srv-$1" /dev/null "$T/got-$1" nc -l 127.0.0.1 "$P"
    SRV=$LAST_PID
    wait_listen "$P"
    R=$(free_port) # once P is taken: another one
    start_bg "obs-$1" "$BIN/prog_observer" "$R" "$P" "$COUNT" 3
    OBS=$LAST_PID
    wait_line "$T/obs-$1.log" '^observer: relaying'
    rc=0
    run_app_t 180 nc -N 127.0.0.1 "$R" <"$T/up" >/dev/null 2>"$T/cli-$1.log" || rc=$?
    [ "$rc" = 0 ] || { show "$T/cli-$1.log" "$T/srv-$1.log" "$T/obs-$1.log"; fail "$1: nc exited $rc"; }
    rc=0
    wait_exit "$SRV" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/srv-$1.log"; fail "$1: nc -l exited $rc"; }
    wait_exit "$OBS" 30 || fail "$1: the observer did not end"
    line=$(grep '^observer: hostile' "$T/obs-$1.log")
    echo "   $1: $line"
    sent=$(echo "$line" | sed -n 's/^observer: hostile \([0-9]*\) .*/\1/p')
    bytes=$(echo "$line" | sed -n 's/.* bytes \([0-9]*\);.*/\1/p')
    back=$(echo "$line" | sed -n 's/.* datagrams \([0-9]*\) bytes$/\1/p')
    [ "$(sha "$T/got-$1")" = "$(sha "$T/up")" ] ||
        fail "$1: sha256 differs ($(stat -c %s "$T/got-$1") of $SIZE bytes)"
    [ "$sent" = "$COUNT" ] || fail "$1: only $sent of $COUNT hostile datagrams were sent: the transfer ended first"
    echo "ok: $1: 20 MB upload intact under $COUNT hostile datagrams"
    [ "$back" -le $((3 * bytes)) ] ||
        fail "$1: the server sent $back bytes to the observer's address, more than 3 x $bytes"
    echo "ok: $1: the observer's address got $back bytes (at most 3 x $bytes)"
}

run unkeyed
make_key "$T/key"
export RUDP_KEY_FILE="$T/key"
run keyed
