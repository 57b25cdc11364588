#!/bin/sh
# mosquitto (an MQTT broker: one event loop, long-lived connections) <->
# mosquitto_sub and mosquitto_pub, over kernel TCP and then with all three
# under the shim (lib/battery.sh): a subscriber (QoS 1) receives 2,000 lines
# published one message each, in order and exactly; a second one receives
# a 1 MiB binary message, sha256 equal; the broker ends on SIGTERM with
# status 0.  nftables counts the kernel TCP segments on the port: > 0 over
# kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

seq 1 2000 | sed 's/^/line /' >"$BAT_TOP/lines"
head -c 1048576 /dev/urandom >"$BAT_TOP/blob"

# subscribe NAME COUNT TOPIC OUT [ARGS]: a subscriber in the background,
# returning once the broker acknowledged its subscription (its log)
subscribe() {
    _sn=$1 _c=$2 _t=$3 _o=$4; shift 4
    : >"$T/empty"
    bg_app_io "$_sn" "$T/empty" "$_o" mosquitto_sub -h 127.0.0.1 -p "$P" -i "$_sn" -q 1 -t "$_t" \
        -C "$_c" -W 60 "$@"
    eval "${_sn}_PID=\$LAST_PID"
    wait_line "$T/mosquitto.log" "Sending SUBACK to $_sn" 20 ||
        { show "$T/mosquitto.log" "$T/$_sn.log"; fail "$_sn: no SUBACK from the broker"; }
}

run() {
    P=$(bat_port)
    cat >"$T/mosquitto.conf" <<CONF
listener $P 127.0.0.1
allow_anonymous true
persistence false
# as root mosquitto would become user mosquitto, who cannot write to $T
user root
log_dest file $T/mosquitto.log
log_type all
CONF
    bg_app mosq mosquitto -c "$T/mosquitto.conf"
    MQ=$LAST_PID
    bat_listen "$MQ" "$P" 20
    assert_listener "$P"

    subscribe sublines 2000 bat/lines "$T/got.lines"
    run_app mosquitto_pub -h 127.0.0.1 -p "$P" -i publines -q 1 -t bat/lines -l <"$BAT_TOP/lines" ||
        fail "mosquitto_pub -l exited $?"
    rc=0
    wait_exit "$sublines_PID" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/sublines.log" "$T/mosquitto.log"; fail "mosquitto_sub (lines) exited $rc"; }
    cmp -s "$T/got.lines" "$BAT_TOP/lines" ||
        fail "the subscriber got $(wc -l <"$T/got.lines") lines, not the 2,000 published in order"
    echo "ok: 2,000 messages (QoS 1) from mosquitto_pub to mosquitto_sub, in order, exact"

    subscribe subblob 1 bat/blob "$T/got.blob" -N
    run_app mosquitto_pub -h 127.0.0.1 -p "$P" -i pubblob -q 1 -t bat/blob -f "$BAT_TOP/blob" ||
        fail "mosquitto_pub -f exited $?"
    rc=0
    wait_exit "$subblob_PID" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/subblob.log" "$T/mosquitto.log"; fail "mosquitto_sub (blob) exited $rc"; }
    [ "$(sha "$T/got.blob")" = "$(sha "$BAT_TOP/blob")" ] ||
        fail "1 MiB message: sha256 differs ($(stat -c %s "$T/got.blob") bytes received)"
    echo "ok: a 1 MiB binary message, sha256 equal"

    rc=0
    stop_app "$MQ" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/mosquitto.log" "$T/mosq.log"; fail "mosquitto exited $rc on SIGTERM"; }
    echo "ok: mosquitto ends on SIGTERM"
}
battery run
