#!/bin/sh
# tests/prog_procenv.c over kernel TCP, then under the shim (run_both), as
# root: a server that chroots into an empty directory, or takes a private
# mount namespace with an empty /dev, before its first socket listens and
# serves a connection (the engine opens nothing by path when it starts); a
# child made by a raw clone() system call (no fork(), no pthread_atfork
# handler) serves a listener of its own and writes on a connection made
# before the clone, and the parent's connections go on working.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_procenv
need_mntns "chroot, mount namespaces"
# In an ASan build (make asan) the program is instrumented too, and
# LeakSanitizer cannot list a process's threads without /proc, which a
# chrooted server lacks: it would end the server with a fatal error.
case "$SAN" in
asan)
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    APP_ASO="${APP_ASO:+$APP_ASO:}detect_leaks=0" ;;
esac
run_both procenv "$BIN/prog_procenv"

# An engine that cannot start is said in the log at error level, naming
# the step and its errno; the application sees only listen() fail. Here
# pthread_create fails: a uid of its own with RLIMIT_NPROC 1 (root is not
# bound by it), exec'd all the way down so that no other process counts.
# That uid loads a copy of the shim (public_ldp): a checkout under /root
# (0700) keeps the built one from it.
[ "$SHIM_MODE" = shim ] || { echo "skip: an engine that cannot start: the shim's"; exit 0; }
rc=0
ldp=$(public_ldp)
setpriv --reuid 54321 --regid 54321 --clear-groups prlimit --nproc=1 \
    env "LD_PRELOAD=$ldp" "ASAN_OPTIONS=$APP_ASO" python3 -c '
import errno, socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
try:
    s.listen()
except OSError as e:
    print("listen failed:", errno.errorcode[e.errno])
else:
    print("listen succeeded")
' >"$T/nostart" 2>&1 || rc=$?
cat "$T/nostart"
[ "$rc" = 0 ] || fail "the program with RLIMIT_NPROC 1 exited $rc"
grep -q '^listen failed: EAGAIN' "$T/nostart" || fail "listen() did not fail with EAGAIN"
grep -q 'error: engine 0 cannot start: pthread_create: ' "$T/nostart" ||
    fail "no error line naming the engine's failed start"
echo "ok: an engine that cannot start is logged at error level by name"
