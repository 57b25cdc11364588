#!/bin/sh
# vsftpd (forks a session process per connection, privilege separation; a
# listener made per passive transfer; in active mode it connects from its
# fixed data port to the client's listener) <-> curl, over kernel TCP and
# then with both ends under the shim (lib/battery.sh): anonymous login; a
# directory listing; a 10 MiB file downloaded in passive mode (EPSV), three
# times, and once in active mode (EPRT: curl listens, vsftpd connects);
# a 5 MiB file uploaded in passive and one in active mode; every sha256
# equal; vsftpd ends on SIGTERM.  nftables counts the kernel TCP segments on
# the control port, the 8 passive ports and the active data port: > 0 over
# kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps
bat_no_asan 'vsftpd answers its login with "500" under libasan alone (its seccomp sandbox)'

id ftp >/dev/null 2>&1 || fail "no user ftp (the vsftpd package makes it)"
[ "$(id -u)" = 0 ] || { echo "skip: vsftpd runs its sessions as user ftp: needs root"; exit 77; }
mkdir -p /var/run/vsftpd/empty
# the sessions run as ftp: they must reach the files under $T
chmod 711 "$BAT_TOP"
head -c 10485760 /dev/urandom >"$BAT_TOP/10m"
head -c 5242880 /dev/urandom >"$BAT_TOP/5m"

run() {
    chmod 711 "$T"
    P=$(bat_port) Q=$(bat_range 8) R=$(bat_port)
    mkdir -p "$T/ftp/pub" "$T/ftp/up"
    chmod 755 "$T/ftp" "$T/ftp/pub"
    chown ftp: "$T/ftp/up"
    cp "$BAT_TOP/10m" "$T/ftp/pub/10m"
    chmod 644 "$T/ftp/pub/10m"
    cat >"$T/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=$P
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$T/ftp
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_umask=022
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port=$Q
pasv_max_port=$((Q + 7))
port_enable=YES
connect_from_port_20=YES
ftp_data_port=$R
secure_chroot_dir=/var/run/vsftpd/empty
xferlog_enable=YES
vsftpd_log_file=$T/vsftpd.xfer
CONF
    bg_app vsftpd vsftpd "$T/vsftpd.conf"
    FTPD=$LAST_PID
    bat_listen "$FTPD" "$P" 20
    assert_listener "$P"
    U=ftp://127.0.0.1:$P

    run_app curl -sS --max-time 30 "$U/pub/" >"$T/list" 2>"$T/list.err" ||
        { rc=$?; show "$T/list.err" "$T/vsftpd.log"; fail "curl: directory listing exited $rc"; }
    grep -q ' 10485760 .* 10m$' "$T/list" || { show "$T/list"; fail "the listing does not show pub/10m"; }
    echo "ok: anonymous login, directory listing: $(cat "$T/list")"

    for i in 1 2 3; do
        run_app curl -sS --max-time 60 -o "$T/got.$i" "$U/pub/10m" 2>"$T/get.$i.err" ||
            { rc=$?; show "$T/get.$i.err" "$T/vsftpd.log"; fail "curl: passive download $i exited $rc"; }
        [ "$(sha "$T/got.$i")" = "$(sha "$BAT_TOP/10m")" ] || fail "passive download $i: sha256 differs"
    done
    echo "ok: 10 MiB downloaded three times in passive mode (a listener each), sha256 equal"
    run_app curl -sS --max-time 60 -P 127.0.0.1 -o "$T/got.act" "$U/pub/10m" 2>"$T/get.act.err" ||
        { rc=$?; show "$T/get.act.err" "$T/vsftpd.log"; fail "curl: active download exited $rc"; }
    [ "$(sha "$T/got.act")" = "$(sha "$BAT_TOP/10m")" ] || fail "active download: sha256 differs"
    echo "ok: 10 MiB downloaded in active mode (vsftpd connected from port $R), sha256 equal"

    run_app curl -sS --max-time 60 -T "$BAT_TOP/5m" "$U/up/pasv" 2>"$T/put.err" ||
        { rc=$?; show "$T/put.err" "$T/vsftpd.log"; fail "curl: passive upload exited $rc"; }
    run_app curl -sS --max-time 60 -P 127.0.0.1 -T "$BAT_TOP/5m" "$U/up/act" 2>"$T/put.act.err" ||
        { rc=$?; show "$T/put.act.err" "$T/vsftpd.log"; fail "curl: active upload exited $rc"; }
    for f in pasv act; do
        [ "$(sha "$T/ftp/up/$f")" = "$(sha "$BAT_TOP/5m")" ] || fail "upload ($f): sha256 differs"
    done
    echo "ok: 5 MiB uploaded in passive and in active mode, sha256 equal"

    rc=0
    stop_app "$FTPD" 20 || rc=$?
    # vsftpd dies of the SIGTERM itself (143 from the shell's view)
    [ "$rc" = 0 ] || [ "$rc" = 143 ] || { show "$T/vsftpd.log"; fail "vsftpd exited $rc on SIGTERM"; }
    echo "ok: vsftpd ends on SIGTERM"
}
battery run
