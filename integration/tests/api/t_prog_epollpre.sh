#!/bin/sh
# tests/prog_epollpre.c over kernel TCP, then under the shim: an event loop
# that registers before connect() (EPOLLOUT for the connect's completion,
# then EPOLLIN after EPOLL_CTL_MOD; a one-shot in a second set; a blocking
# connect; a refused one; one registered after a refused connect() and
# reporting the next connect() on the socket) and a listener registered
# before listen() in level, edge, deleted and MOD'ed epoll sets, IPv4 and
# IPv6; F_SETOWN_EX, F_SETSIG (the signal arriving), O_ASYNC, O_NONBLOCK,
# FD_CLOEXEC and SO_* options set before connect()/listen() read back after. The shim's swap
# (dup3) must carry what belongs to the file (shim/state/epollreg.c, appfd.c).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_epollpre
run_both epollpre "$BIN/prog_epollpre"
# Without the fallback (as with a key) a connecting bridge's registrations
# were noted only by the fallback's race: connect() again after a refusal
# lost them (check "again").
rc=0
RUDP_FALLBACK=none run_app "$BIN/prog_epollpre" >"$T/nofb" 2>&1 || rc=$?
sed 's/^/shim, RUDP_FALLBACK=none: /' "$T/nofb"
[ "$rc" = 0 ] || fail "prog_epollpre with RUDP_FALLBACK=none exited $rc"
