#!/bin/sh
# Our exec passes the slabs (and a racing connect's socket) through the
# keeper, never as fds left open across the execve (tests/prog_execwin.c):
# a forked child with a live connection exec's itself while a thread of it
# fork()+exec()s images without the shim in a loop; none of those may hold a
# memfd "rudp-slots" or an fd at 700 and above, and the connection carries
# data after each exec. Over kernel TCP, then under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_execwin
run_both execwin_race "$BIN/prog_execwin" race
# A forked child with a second thread and its parent's connection (no
# keeper of its own: a holder serves the slabs) exec's itself.
run_both execwin_holder "$BIN/prog_execwin" holder
# As root (else "skip:"): a caller of real uid nobody and effective root
# spawns with POSIX_SPAWN_RESETIDS: the image runs as nobody, runs the shim
# and gets the slabs; without the flag it is in secure execution and gets
# nothing.
# That image runs as nobody: it must reach the program and the shim it
# preloads, which a checkout under root's home does not let it (/root is
# 0700 on Debian, where `make test` as root on a fresh machine finds a clone:
# "posix_spawn: Permission denied"). It runs copies of both in $T, made
# searchable (public_ldp, as attacker_prog does).
ldp_built=${APP_LDP:-}
ldp_public=$(public_ldp)
cp "$BIN/prog_execwin" "$T/pub/" && chmod 755 "$T/pub/prog_execwin"
[ "$SHIM_MODE" = tcp ] || APP_LDP=$ldp_public
run_both execwin_resetids "$T/pub/prog_execwin" resetids
APP_LDP=$ldp_built
# As root (else "skip:"): binfmt_misc formats named execwin_PID_* (mounted
# in a mount namespace of the program's own if it is not), a magic whose
# interpreter is the program (runs the shim: the slabs) and an extension
# whose interpreter is its static build (exactly the fds passed); the
# program removes them as it ends, and this trap any a killed run left.
# "skip:" where the kernel itself cannot run such a file (an execve by
# system call, no shim in between, fails: a chroot or container whose
# paths the kernel resolves elsewhere).
misc_clean() {
    command -v unshare >/dev/null 2>&1 || return 0
    unshare -m sh -c 'd=/proc/sys/fs/binfmt_misc
        [ -w $d/register ] || mount -t binfmt_misc binfmt_misc $d 2>/dev/null || exit 0
        for f in $d/execwin_*; do [ -e "$f" ] && echo -1 >"$f"; done; exit 0' 2>/dev/null || true
}
trap 'misc_clean; cleanup' EXIT INT TERM
run_both execwin_binfmt "$BIN/prog_execwin" binfmt

# Where the interpreter's path is not the one the kernel resolves (a chroot
# or container: issue 30, "posix_spawn .../data: No such file or directory"
# on a fresh machine), the binfmt case is a skip, not a failure. As root
# only: elsewhere the case skips before it registers anything.
if [ "$(id -u)" = 0 ]; then
    out=$(EXECWIN_INTERP=/nonexistent/prog_execwin run_app_t 60 "$BIN/prog_execwin" binfmt 2>&1) ||
        { echo "$out"; fail "binfmt with an interpreter the kernel cannot find failed, where it must skip"; }
    if echo "$out" | grep -q '^skip: binfmt_misc not mounted and cannot be'; then
        # no binfmt_misc at all (a container, a chroot): the case skipped
        # above already, and said why
        echo "binfmt with an interpreter the kernel cannot find: not tried (no binfmt_misc)"
    else
        echo "$out" | grep -q '^skip: binfmt_misc: the kernel cannot run' ||
            { echo "$out"; fail "binfmt with an interpreter the kernel cannot find: no skip line"; }
        echo "ok: an interpreter path the kernel cannot resolve makes the binfmt case skip, not fail"
    fi
fi
