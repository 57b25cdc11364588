#!/bin/sh
# Secure execution and the log file (issue "harden", finding 5).
#
# A system-wide preload (/etc/ld.so.preload) loads the shim into set-uid
# programs too, where glibc itself ignores LD_PRELOAD. The attack: as uid
# nobody, run a set-uid-root program with RUDP_LOG_FILE naming a file only
# root may create; a shim that reads its environment there creates it, as
# root. Here /etc/ld.so.preload exists only inside a private mount namespace
# (an overlay on /etc), so nothing outside this test sees it.
#   1. a set-uid program that makes a TCP socket (prog_tcpsocket, exit 0,
#      or socket()'s errno), RUDP_LOG_FILE in a root-only directory: not
#      created (and RUDP_LOG=bogus, a bad setting to a shim that reads it,
#      which refuses TCP sockets: exit 0, not 13 for EACCES); RUDP_KEY_FILE
#      naming a root-only key file of mode 0644, which a shim that opened it
#      would refuse (EACCES): exit 0
#   2. set-uid curl, RUDP_REDIRECT=all, to a plain kernel-TCP server: the
#      request succeeds over kernel TCP (the shim stays out of the way)
#   3. without secure execution: RUDP_LOG_FILE through a symbolic link, or
#      naming a FIFO or a directory, is refused by name (a TCP socket gets
#      EACCES, no hang); a new log file is created with mode 0600
. "$(dirname "$0")/../../lib/lib.sh"
need_mntns "mount namespace, set-uid files"
command -v setpriv >/dev/null || fail "setpriv (util-linux) missing"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "no overlay filesystem: cannot make a private /etc/ld.so.preload"

# nobody must reach the programs: $T is 0700 root, pub/ is world-readable.
chmod 755 "$T"
mkdir -m 755 "$T/pub"
mkdir -m 700 "$T/rootonly"
# What is tested is how the shim reads its configuration, the same in every
# build. In a sanitizer run the regular shim stands in: curl deadlocks with
# libasan preloaded (lib.sh), and a set-uid program's preload list would
# need the sanitizer runtime first.
PSHIM=$SHIM PPROBE=$BIN/prog_tcpsocket
case "$SAN" in asan | tsan | ubsan)
    PSHIM=$ROOT/build/librudp_shim.so PPROBE=$ROOT/build/progs/prog_tcpsocket
    echo "note: the regular shim ($PSHIM) stands in for $SHIM here" ;;
esac
[ -f "$PSHIM" ] || fail "shim not built: $PSHIM"
cp "$PSHIM" "$T/pub/librudp_shim.so"
chmod 755 "$T/pub/librudp_shim.so"
cp "$PPROBE" "$T/pub/suid-true" # a TCP socket, exit 0 (or its errno)
cp "$(command -v curl)" "$T/pub/suid-curl"
chown root:root "$T/pub/suid-true" "$T/pub/suid-curl"
chmod 4755 "$T/pub/suid-true" "$T/pub/suid-curl"
mkdir "$T/upper" "$T/work"
head -c 32 /dev/urandom | base64 >"$T/rootonly/key"
chmod 644 "$T/rootonly/key"
echo "$T/pub/librudp_shim.so" >"$T/ld.so.preload"

# A plain kernel-TCP HTTP server, not under the shim.
P=$(free_port)
mkdir "$T/www" && echo "hello over kernel tcp" >"$T/www/index.txt"
start_bg http python3 -m http.server --bind 127.0.0.1 --directory "$T/www" "$P"
wait_tcp "$P"

# Runs the script in $T/inner.sh in a private mount namespace with the preload.
cat >"$T/inner.sh" <<EOF
set -eu
mount -t overlay overlay -o lowerdir=/etc,upperdir=$T/upper,workdir=$T/work /etc
cp $T/ld.so.preload /etc/ld.so.preload
# proof that the preload is live here: an ordinary program maps the shim
grep -q librudp_shim /proc/self/maps || { echo "preload not active"; exit 3; }
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups \
    env RUDP_LOG_FILE=$T/rootonly/nologin $T/pub/suid-true || rc=\$?
echo "suid-true exit \$rc"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups \
    env RUDP_LOG=bogus $T/pub/suid-true || rc=\$?
echo "suid-true bogus exit \$rc"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups \
    env RUDP_KEY_FILE=$T/rootonly/key $T/pub/suid-true || rc=\$?
echo "suid-true key exit \$rc"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups \
    env RUDP_REDIRECT=all RUDP_CONNECT_TIMEOUT=2s \
    $T/pub/suid-curl -sS --max-time 10 -o $T/pub/got.txt http://127.0.0.1:$P/index.txt || rc=\$?
echo "suid-curl exit \$rc"
EOF
out=$(timeout 60 unshare --mount --propagation private sh "$T/inner.sh" 2>&1) ||
    { echo "$out"; fail "the mount-namespace run failed"; }
echo "$out"
[ ! -e "$T/rootonly/nologin" ] ||
    fail "RUDP_LOG_FILE from an unprivileged user's environment created a root-owned file"
echo "$out" | grep -q '^suid-true exit 0$' || fail "set-uid true under the preload failed"
echo "$out" | grep -q '^suid-true bogus exit 0$' ||
    fail "set-uid program exited non-zero with RUDP_LOG=bogus: the shim read its environment"
echo "$out" | grep -q '^suid-true key exit 0$' ||
    fail "set-uid program exited non-zero with RUDP_KEY_FILE: the shim opened the key file"
echo "ok: set-uid program: RUDP_* ignored (RUDP_KEY_FILE not opened), no file created"
echo "$out" | grep -q '^suid-curl exit 0$' || fail "set-uid curl failed: it did not get kernel TCP"
grep -q "hello over kernel tcp" "$T/pub/got.txt" || fail "set-uid curl fetched the wrong body"
echo "ok: set-uid curl with RUDP_REDIRECT=all reached a kernel-TCP server (shim out of the way)"
! grep -qs "$T/pub/librudp_shim.so" /etc/ld.so.preload || fail "the preload leaked out of the mount namespace"

# --- 3. the log file, in normal (non-secure) execution --------------------
logcase() { # logcase WHAT PATH: must be refused by name (EACCES, 13), quickly
    rc=0
    timeout 10 env LD_PRELOAD="$PSHIM" RUDP_LOG_FILE="$2" "$PPROBE" 2>"$T/err" || rc=$?
    [ "$rc" != 124 ] || fail "RUDP_LOG_FILE=$1: the program hung at start-up"
    [ "$rc" = 13 ] || { cat "$T/err"; fail "RUDP_LOG_FILE=$1: exit $rc, want 13 (EACCES)"; }
    grep -q 'RUDP_LOG_FILE' "$T/err" || fail "RUDP_LOG_FILE=$1: the error does not name the variable"
    echo "ok: RUDP_LOG_FILE=$1 refused: $(cat "$T/err")"
}
echo "secret" >"$T/target"
ln -s "$T/target" "$T/link"
logcase "a symbolic link" "$T/link"
[ "$(cat "$T/target")" = secret ] || fail "the symbolic link's target was written"
mkfifo "$T/fifo"
logcase "a FIFO" "$T/fifo"
logcase "a directory" "$T/rootonly"
env LD_PRELOAD="$PSHIM" RUDP_LOG_FILE="$T/new.log" /bin/true
[ "$(stat -c %a "$T/new.log")" = 600 ] || fail "a new log file has mode $(stat -c %a "$T/new.log"), want 600"
echo "ok: a new log file is created with mode 600"
