#!/bin/sh
# OpenSSH port forwarding: sshd (a child per connection, privilege
# separation; for -L it connects to the target, for -R its session process
# listens) and ssh (for -L it listens), with python3's http.server as the
# target, over kernel TCP and then with all of them under the shim
# (lib/battery.sh): curl fetches a 10 MiB file through ssh -L (curl -> ssh's
# listener -> the ssh connection -> sshd's connect -> http.server) and
# through ssh -R (curl -> sshd's listener -> the ssh connection -> ssh's
# connect -> http.server), three times each, sha256 equal; ssh ends on
# SIGTERM, sshd too.  nftables counts the kernel TCP segments on the four
# ports (sshd, http.server, -L's, -R's): > 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
. "$ROOT/integration/lib/sshd.sh"
battery_deps
[ "$(id -u)" = 0 ] || { echo "skip: sshd's privilege separation needs root"; exit 77; }

mkdir -p "$BAT_TOP/www"
head -c 10485760 /dev/urandom >"$BAT_TOP/www/10m"

run() {
    S=$(bat_port) B=$(bat_port) L=$(bat_port) R=$(bat_port)
    sshd_setup "$S" 127.0.0.1
    bg_app backend "$PY" -m http.server --bind 127.0.0.1 --directory "$BAT_TOP/www" "$B"
    bat_listen "$LAST_PID" "$B" 20
    bg_app sshd /usr/sbin/sshd -D -e -f "$T/sshd_config"
    SSHD=$LAST_PID
    bat_listen "$SSHD" "$S" 20
    assert_listener "$S"
    # -N: no command, forwarding only; ExitOnForwardFailure: a forward that
    # cannot listen ends ssh at once
    bg_app ssh ssh -N -i "$T/client_key" -p "$S" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes -o ConnectTimeout=20 \
        -L "127.0.0.1:$L:127.0.0.1:$B" -R "127.0.0.1:$R:127.0.0.1:$B" root@127.0.0.1
    SSH=$LAST_PID
    bat_listen "$SSH" "$L" 30
    bat_listen "$SSH" "$R" 30
    echo "ok: ssh -L listens on $L, sshd listens on $R for ssh -R"
    for way in L R; do
        eval "port=\$$way"
        for i in 1 2 3; do
            rc=0
            run_app curl -sS --max-time 60 -o "$T/got.$way.$i" "http://127.0.0.1:$port/10m" 2>"$T/curl.err" || rc=$?
            [ "$rc" = 0 ] || { show "$T/curl.err" "$T/ssh.log" "$T/sshd.log"; fail "curl through ssh -$way exited $rc"; }
            [ "$(sha "$T/got.$way.$i")" = "$(sha "$BAT_TOP/www/10m")" ] || fail "10 MiB through ssh -$way: sha256 differs"
        done
        echo "ok: 10 MiB three times through ssh -$way, sha256 equal"
    done
    rc=0
    stop_app "$SSH" 20 || rc=$?
    # ssh dies of the SIGTERM (143) or exits 255 ("Killed by signal 15")
    [ "$rc" = 143 ] || [ "$rc" = 255 ] || [ "$rc" = 0 ] || { show "$T/ssh.log"; fail "ssh exited $rc on SIGTERM"; }
    rc=0
    stop_app "$SSHD" 20 || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 143 ] || [ "$rc" = 255 ] || { show "$T/sshd.log"; fail "sshd exited $rc on SIGTERM"; }
    echo "ok: ssh and sshd end on SIGTERM"
}
battery run
