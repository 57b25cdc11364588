#!/bin/sh
# Keyed mode with nc (issue 13, "done when" 1): OpenBSD nc -l <-> nc, both
# under the shim with one RUDP_KEY_FILE, bytes both ways at once on one
# connection: the listener sends 8 MiB while the client sends 8 MiB; each
# half-closes at the end of its input (-N) and exits at the peer's EOF;
# sha256 equal both ways. Halfway through (the client's input is a FIFO
# this script holds open) rudp-stat of both processes shows their
# connection with an AEAD cipher (chacha20-poly1305 or aes256-gcm), and
# none as "plain".
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
need_tool rudp-stat

SIZE=8388608 HALF=4194304
head -c "$SIZE" /dev/urandom >"$T/up"
head -c "$SIZE" /dev/urandom >"$T/down"
make_key "$T/key"
export RUDP_KEY_FILE="$T/key"

P=$(free_port)
bg_app_io ncl "$T/down" "$T/got-up" nc -N -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P"
mkfifo "$T/fifo"
bg_app_io ncc "$T/fifo" "$T/got-down" nc -N 127.0.0.1 "$P"
CLI=$LAST_PID
exec 3>"$T/fifo"
head -c "$HALF" "$T/up" >&3

# The connection's line in each process's report, with its cipher.
CONN='^[A-Z0-9-]+ 127\.0\.0\.1:[0-9]+ > 127\.0\.0\.1:[0-9]+ id [0-9a-f]{16} age [0-9.]+s engine [0-9]+'
for who in SRV CLI; do
    eval pid=\$$who
    "$TOOLS/rudp-stat" "$pid" >"$T/stat-$who" 2>&1 || { cat "$T/stat-$who"; fail "rudp-stat $who failed"; }
    grep -Eq "$CONN (chacha20-poly1305|aes256-gcm)( |\$)" "$T/stat-$who" ||
        { cat "$T/stat-$who"; fail "$who: no connection with an AEAD cipher"; }
    ! grep -Eq "$CONN (plain|keyed)( |\$)" "$T/stat-$who" ||
        { cat "$T/stat-$who"; fail "$who: a connection without its cipher"; }
    echo "ok: $who: $(grep -Eo "$CONN [a-z0-9-]+" "$T/stat-$who" | head -1)"
done

tail -c +"$((HALF + 1))" "$T/up" >&3
exec 3>&-
for who in CLI SRV; do
    eval pid=\$$who
    rc=0
    wait_exit "$pid" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/ncc.log" "$T/ncl.log"; fail "$who: nc exited $rc"; }
done
[ "$(sha "$T/got-up")" = "$(sha "$T/up")" ] ||
    fail "client -> server: sha256 differs ($(stat -c %s "$T/got-up") of $SIZE bytes)"
[ "$(sha "$T/got-down")" = "$(sha "$T/down")" ] ||
    fail "server -> client: sha256 differs ($(stat -c %s "$T/got-down") of $SIZE bytes)"
echo "ok: keyed, both ways at once: 8 MiB each, sha256 equal"
