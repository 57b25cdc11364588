#!/bin/sh
# Roaming (issue 15): one ssh session lives through three changes of the
# client's address. `ssh root@B 'cat > FILE'` of 20 MB of random bytes from
# namespace a to sshd in namespace b, both under the shim (RUDP_FALLBACK=none:
# nothing may fall back to kernel TCP), over a 20 Mbit/s link (5 ms each
# way, so the transfer takes ~8 s) while a's address moves 10.99.0.1 ->
# .11 -> .12 -> .13, each time the server holds another quarter of the file
# (emu_readdr: the new address added, the old one removed, as on a laptop
# changing networks).
#
# Asserts, under the shim: ssh exits 0, the sha256 of FILE equals the
# payload's, and it was one session: sshd logged one login, and its child
# for the connection was the same process at every change. Every change
# happened mid-transfer (the server held less than the whole file).
#
# Beside that, at the same time on a link of its own, the same run over
# kernel TCP, for information: it prints how TCP fares (a TCP connection is
# bound to its address: ssh stalls after the first change until its
# ServerAlive check gives up). Both runs use ServerAliveInterval=2,
# ServerAliveCountMax=3: 6 s without a word from the server ends the
# session (a laptop's ssh might wait 5 s x 3; shorter here, which only
# makes the shim run's session harder to keep).
# A run with no byte at the server for $ROAM_STALL (30) seconds is stopped.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/tests/roaming/roamlib.sh"
. "$ROOT/integration/lib/sshd.sh"
timeout 900 "$ROOT/integration/deps.sh" compat ||
    fail "cannot install the compat packages (integration/deps.sh compat)"

SIZE=20000000
PORT=2222
A2B="rate=20,queue=200k,delay=5"
B2A="delay=5"
NEW_ADDRS="10.99.0.11 10.99.0.12 10.99.0.13"

roam_setup "$SIZE"
sshd_setup "$PORT" 0.0.0.0
want=$(sha "$T/payload")

# run_ssh: one transfer under $ROAM_MODE with the address changes. Leaves
# RC (ssh's exit status, 124: stopped, stalled), ELAPSED (ms), GOT (bytes at
# the server), CHANGES (how many happened), FIRST_MS (when the first did),
# KIDS (sshd's children at each change, one line each), AT (the bytes at
# the server at each change), LOGINS, WHY (ssh's last line of complaint),
# SUMMARY (one line of what happened).
run_ssh() {
    EMU_IPV6=0 emu_up roamssh "$A2B" "$B2A"
    # sshd must be started by its absolute path: it re-execs itself.
    roam_bg b sshd /usr/sbin/sshd -D -e -f "$T/sshd_config"
    SSHD=$LAST_PID
    roam_listening b "$PORT"
    rm -f "$T/copy"
    t0=$(ms_now)
    roam_bg -i "$T/payload" a ssh ssh -F /dev/null -p "$PORT" -i "$T/client_key" -o IdentitiesOnly=yes \
        -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=INFO -o ConnectTimeout=30 -o ServerAliveInterval=2 \
        -o ServerAliveCountMax=3 "root@$EMU_IP_B" "cat > $T/copy"
    CLIENT=$LAST_PID
    CHANGES=0 FIRST_MS="" KIDS="" AT="" k=1 stop=""
    for new in $NEW_ADDRS; do
        rc=0
        roam_wait_bytes "$T/copy" $((SIZE * k / 4)) "$CLIENT" || rc=$?
        case $rc in
            1) stop="ssh ended before change $k" ;;
            2) stop="no byte at the server for ${ROAM_STALL} s before change $k" ;;
        esac
        [ -z "$stop" ] || break
        [ "$k" = 1 ] && roam_over_rudp b "$PORT"
        KIDS="$KIDS$(pgrep -P "$SSHD" | sort -n | paste -sd ' ')
"
        AT="$AT $ROAM_SIZE"
        old=$EMU_IP_A
        emu_readdr a "$new"
        now=$(ms_now)
        [ -n "$FIRST_MS" ] || FIRST_MS=$now
        echo "   change $k at $(secs $((now - t0))), server at $(mb "$ROAM_SIZE"): $old -> $new"
        CHANGES=$k k=$((k + 1))
    done
    ROAM_WATCH=$T/copy
    roam_wait_exit "$CLIENT"
    RC=$ROAM_RC ELAPSED=$(($(ms_now) - t0)) GOT=$(roam__size "$T/copy")
    LOGINS=$(grep -c 'Accepted publickey' "$EMU_DIR/sshd.log" || true)
    WHY=$(grep -v '^[0-9T:.-]*Z rudp\[' "$EMU_DIR/ssh.log" | tail -n 1)
    SUMMARY="ssh exited $RC after $(secs "$ELAPSED")"
    [ "$RC" != 124 ] || SUMMARY="ssh stopped after $(secs "$ELAPSED"): no byte at the server for ${ROAM_STALL} s"
    [ -z "$FIRST_MS" ] || SUMMARY="$SUMMARY, $(secs $((t0 + ELAPSED - FIRST_MS))) after the first change"
    SUMMARY="$SUMMARY; $(mb "$GOT") of $(mb "$SIZE") at the server; $CHANGES of 3 changes${stop:+ ($stop)}"
    [ -z "$WHY" ] || SUMMARY="$SUMMARY; ssh said: '$WHY'"
    roam_stop "$SSHD"
    emu_down 2>/dev/null
}

# The kernel TCP run (information) beside this one, in namespaces of its own.
if roam_beside; then
    run_ssh
    echo "kernel TCP: $SUMMARY"
    exit 0
fi

roam_mode shim
run_ssh
roam_beside_said
if [ "$RC" != 0 ] || [ "$CHANGES" != 3 ]; then
    roam_show "$EMU_DIR/ssh.log" "$EMU_DIR/sshd.log"
    fail "under the shim: $SUMMARY"
fi
got=$(sha "$T/copy")
[ "$got" = "$want" ] || fail "under the shim: sha256 of the copy differs ($(mb "$GOT") of $(mb "$SIZE"))"
[ "$LOGINS" = 1 ] || fail "under the shim: sshd logged $LOGINS logins, not 1: not one session"
for at in $AT; do
    [ "$at" -lt "$SIZE" ] || fail "under the shim: an address change came after the whole file had arrived"
done
[ -n "$(echo "$KIDS" | head -n 1)" ] || fail "under the shim: sshd had no child for the connection"
[ "$(printf '%s' "$KIDS" | sort -u | wc -l)" = 1 ] ||
    fail "under the shim: sshd's children changed between the address changes: $(echo "$KIDS" | paste -sd '|')"
echo "ok: under the shim: $(mb "$SIZE") in $(secs "$ELAPSED") across 3 address changes, sha256 equal;" \
    "one session (1 login, sshd child $(echo "$KIDS" | head -n 1) throughout), ssh exit 0"
