# A throwaway sshd for the tests (sourced after lib.sh; root; openssh-server
# and openssh-client, in deps.sh's compat group):
#
#   sshd_setup PORT ADDR    writes in $T a host key, a client key root may
#                           log in with ($T/client_key, $T/authorized_keys),
#                           and $T/sshd_config: port PORT on ADDR, public keys
#                           only, no PAM, pid file and keys under $T, LogLevel
#                           VERBOSE (to stderr with -e); checks it (sshd -t)
#
# Start sshd by its absolute path, as it re-execs itself:
#   /usr/sbin/sshd -D -e -f "$T/sshd_config"
# Its privilege separation chroots into /run/sshd (Debian's unit makes it at
# boot): sshd_setup makes it, empty and root-owned, if missing.

sshd_setup() {
    [ -d /run/sshd ] || mkdir -m 755 /run/sshd
    timeout 20 ssh-keygen -q -t ed25519 -N '' -f "$T/host_key" || fail "ssh-keygen (host key)"
    timeout 20 ssh-keygen -q -t ed25519 -N '' -f "$T/client_key" || fail "ssh-keygen (client key)"
    cp "$T/client_key.pub" "$T/authorized_keys"
    cat >"$T/sshd_config" <<CONF
Port $1
ListenAddress $2
HostKey $T/host_key
PidFile $T/sshd.pid
AuthorizedKeysFile $T/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
CONF
    timeout 20 /usr/sbin/sshd -t -f "$T/sshd_config" || fail "sshd -t rejects the config"
}
