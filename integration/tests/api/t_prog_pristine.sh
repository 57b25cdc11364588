#!/bin/sh
# tests/prog_pristine.c over kernel TCP and then under the shim (run_both):
# a client socket's options (TCP_NODELAY, SO_KEEPALIVE, SO_RCVTIMEO, its
# F_SETOWN owner) reach its connection however they were set before
# connect(): on the socket, through a dup() closed before connect(), by
# syscall(), by ioctl(FIOSETOWN), or on an earlier socket dup2()ed over its
# number; and a bind() through a dup gives the connection that address
# (shim/state/pristine.c: the shim reads nothing back from a socket nobody
# set an option on or bound, and must tell such a socket from these).
#
# Then, under the shim, that it does read none back: `prog_pristine plain 6`
# under strace, where the shim's reads of TCP_KEEPIDLE (taken with the other
# options at connect and listen) are the listener's and the first connect's
# (which learns what an untouched socket holds): 2 at most, where reading
# them on every connect gives 7.
#
# And that the shim's copies into the program's memory (an option's value,
# an address) change no signal mask where its trampoline defers the
# program's handlers (base/crit.c's sections): the rt_sigprocmask calls of
# the program's thread under strace for `prog_pristine opts 10` and
# `opts 40` (30 rounds more of getsockopt, getsockname and getpeername)
# differ by 30 at most, where holding every signal by the mask made 180.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_pristine
run_both pristine "$BIN/prog_pristine"

[ "$SHIM_MODE" = shim ] || skip "the count of option reads needs the shim"
if ! command -v strace >/dev/null; then
    echo "skip: strace is missing: the count of option reads not checked"
    exit 0
fi
rc=0
timeout -k 5 60 strace -f -qq -e trace=getsockopt -o "$T/st" \
    env "LD_PRELOAD=$(app_ldp "$BIN/prog_pristine")" "$BIN/prog_pristine" plain 6 \
    >"$T/plain.out" 2>&1 || rc=$?
cat "$T/plain.out"
if [ "$rc" != 0 ] && grep -q 'ptrace' "$T/plain.out"; then
    echo "skip: strace may not trace here (ptrace refused): the count of option reads not checked"
    exit 0
fi
[ "$rc" = 0 ] || fail "prog_pristine plain 6 under strace exited $rc"
assert_transport "$T/plain.out"
n=$(grep -c 'TCP_KEEPIDLE' "$T/st" || true)
echo "getsockopt(TCP_KEEPIDLE) calls for a listener and 6 connects: $n"
[ "$n" -le 2 ] || fail "the shim read the options of $n sockets nobody set one on (want 2 at most)"
echo "ok: 6 connects of untouched sockets: their options read back $n times (listener, first connect)"

# masks N: the rt_sigprocmask calls of `prog_pristine opts N`'s own
# thread (the first pid strace names; engines' and keepers' are others)
masks() {
    timeout -k 5 60 strace -f -qq -e trace=rt_sigprocmask -o "$T/mask$1" \
        env "LD_PRELOAD=$(app_ldp "$BIN/prog_pristine")" "$BIN/prog_pristine" opts "$1" \
        >"$T/mask$1.out" 2>&1 || { show "$T/mask$1.out"; fail "prog_pristine opts $1 under strace failed"; }
    assert_transport "$T/mask$1.out" >&2
    awk 'NR == 1 { main = $1 } $1 == main && /rt_sigprocmask\(/ { n++ } END { print n + 0 }' "$T/mask$1"
}
m10=$(masks 10)
m40=$(masks 40)
echo "rt_sigprocmask calls of the program's thread: $m10 for 10 rounds of option and address calls, $m40 for 40"
[ $((m40 - m10)) -le 30 ] ||
    fail "the shim changed the signal mask $((m40 - m10)) times in 30 rounds more (want 30 at most)"
echo "ok: 30 rounds more of option and address calls, $((m40 - m10)) more mask changes"
