#!/bin/sh
# OpenSSH: sshd on a private port (throwaway host key and config in $T,
# root logs in with a throwaway client key) and ssh, both under the shim
# (kernel TCP with RUDP_NO_SHIM=1): `ssh ... 'cat > FILE'` of 20 MiB of
# random bytes, sha256 of FILE equal; then `ssh ... 'sha256sum FILE'`
# printing the same sum back.  sshd forks per connection and the child
# re-execs sshd (`sshd -R`) with the accepted connection; its pre-auth child
# drops to the sshd user in a chroot (/run/sshd).  sshd ends on SIGTERM.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/sshd.sh"
compat_deps

SIZE=20971520
P=$(free_port)
sshd_setup "$P" 127.0.0.1

# sshd must be started by its absolute path: it re-execs itself.
bg_app sshd /usr/sbin/sshd -D -e -f "$T/sshd_config"
SSHD=$LAST_PID
wait_listen "$P" 20
assert_listener "$P"

ssh_run() {
    run_app_t 90 ssh -F /dev/null -p "$P" -i "$T/client_key" -o IdentitiesOnly=yes \
        -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR -o ConnectTimeout=30 root@127.0.0.1 "$@"
}

head -c "$SIZE" /dev/urandom >"$T/payload"
want=$(sha "$T/payload")
t0=$(ms_now)
rc=0
ssh_run "cat > $T/copy" <"$T/payload" >"$T/ssh1.out" 2>"$T/ssh1.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/ssh1.err" "$T/sshd.log"; fail "ssh 'cat > file' exited $rc"; }
got=$(sha "$T/copy")
[ "$got" = "$want" ] || fail "sha256 of the copy differs ($(stat -c %s "$T/copy") of $SIZE bytes)"
echo "ok: ssh 'cat > file': 20 MiB, sha256 equal, $(( $(ms_now) - t0 )) ms"

rc=0
ssh_run "sha256sum $T/copy" </dev/null >"$T/ssh2.out" 2>"$T/ssh2.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/ssh2.err" "$T/sshd.log"; fail "ssh 'sha256sum' exited $rc"; }
[ "$(cut -d' ' -f1 "$T/ssh2.out")" = "$want" ] || fail "ssh 'sha256sum' said: $(cat "$T/ssh2.out")"
echo "ok: ssh 'sha256sum file' prints the same sum"

rc=0
stop_app "$SSHD" 20 || rc=$?
# sshd exits 255 on SIGTERM ("Received signal 15; terminating.").
[ "$rc" = 255 ] || [ "$rc" = 0 ] || [ "$rc" = 143 ] || { show "$T/sshd.log"; fail "sshd exited $rc on SIGTERM"; }
echo "ok: sshd ends on SIGTERM"
