#!/bin/sh
# mosquitto (an MQTT broker: one event loop, long-lived connections) <->
# mosquitto_sub and mosquitto_pub, over kernel TCP and then with all three
# under the shim (lib/battery.sh): a subscriber (QoS 1) receives 2,000 lines
# published one message each, in order and exactly; a second one receives
# a 1 MiB binary message, sha256 equal; the broker ends on SIGTERM with
# status 0.  nftables counts the kernel TCP segments on the port: > 0 over
# kernel TCP, 0 under the shim.
#
# The broker queues a QoS 1 subscriber's messages while the subscriber is
# behind, and by default drops those past max_queued_messages (1000 above
# the 20 in flight; mosquitto.conf(5)), logging "Outgoing messages are being
# dropped for client ...".  How far mosquitto_sub falls behind mosquitto_pub
# is up to the scheduler: with both cores busy it fell more than 1,020
# behind, over kernel TCP, and waited out its -W 60 for messages the broker
# had dropped.  The configuration below queues all 2,000, so every message
# reaching the subscriber is what the broker promises however the three
# programs are scheduled (with the default, a subscriber stopped while the
# publisher ran got 1,020 of 2,000; with this queue, 2,000).
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

# wait_sub NAME SECS: wait_exit for subscriber NAME's exit status, but fail
# at once, naming the cause, when the broker logs that it drops NAME's
# messages (the subscriber would wait out its -W for them)
wait_sub() {
    _ws=0
    while :; do
        _wr=0
        wait_exit "$(eval "echo \$${1}_PID")" 1 || _wr=$?
        [ "$_wr" = 124 ] || return "$_wr"
        if grep -q "messages are being dropped for client $1\\." "$T/mosquitto.log"; then
            show "$T/mosquitto.log"
            fail "the broker dropped messages for $1 (its queue was full: max_queued_messages)"
        fi
        _ws=$((_ws + 1))
        [ "$_ws" -lt "$2" ] || return 124
    done
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
# the subscriber's queue holds every message of the run (see above)
max_queued_messages 2000
CONF
    bg_app mosq mosquitto -c "$T/mosquitto.conf"
    MQ=$LAST_PID
    bat_listen "$MQ" "$P" 20
    assert_listener "$P"

    subscribe sublines 2000 bat/lines "$T/got.lines"
    run_app mosquitto_pub -h 127.0.0.1 -p "$P" -i publines -q 1 -t bat/lines -l <"$BAT_TOP/lines" ||
        fail "mosquitto_pub -l exited $?"
    rc=0
    wait_sub sublines 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/sublines.log" "$T/mosquitto.log"; fail "mosquitto_sub (lines) exited $rc"; }
    cmp -s "$T/got.lines" "$BAT_TOP/lines" ||
        fail "the subscriber got $(wc -l <"$T/got.lines") lines, not the 2,000 published in order"
    echo "ok: 2,000 messages (QoS 1) from mosquitto_pub to mosquitto_sub, in order, exact"

    subscribe subblob 1 bat/blob "$T/got.blob" -N
    run_app mosquitto_pub -h 127.0.0.1 -p "$P" -i pubblob -q 1 -t bat/blob -f "$BAT_TOP/blob" ||
        fail "mosquitto_pub -f exited $?"
    rc=0
    wait_sub subblob 60 || rc=$?
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
