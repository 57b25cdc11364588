#!/bin/sh
# connect() again on the same socket under the supervisor, as Linux TCP
# answers it (issue 35, review 18; docs/reach.md "What the program can tell
# apart"): tests/prog_reconnect linked statically (prog_reconnect_static)
# runs its checks over kernel TCP first, then under rudp-supervise, where
# every "ok:" line must be the same (the bound check's port aside, which
# the kernel picks) and every connected fd a bridge (rudp, not "tcp"):
#   refused     a blocking connect refused, IPv4 and IPv6: then the same
#               socket connects once the listener is up, then EISCONN;
#   bound       the same after a bind: the refusal frees the port;
#   nonblock    EINPROGRESS, SO_ERROR read: connect() then ECONNABORTED,
#               unread: the error itself; then a fresh connect succeeds;
#   unspec      connect(AF_UNSPEC) on a connected bridge disconnects it (0,
#               SO_ERROR ECONNRESET, the peer reset), and the socket
#               connects again, its epoll registration kept;
#   connecting  connect(AF_UNSPEC) while the handshake is pending;
#   sndtimeo    a blocking connect bounded by SO_SNDTIMEO: EINPROGRESS when
#               the time is up, and connect() again waits again, at most
#               SO_SNDTIMEO, and says EALREADY; 0 once accepted, then EISCONN
#               (the time taken, in the ok line, left out of the comparison).
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_static PROG prog_reconnect
CHECKS="refused bound nonblock unspec connecting sndtimeo"

# shellcheck disable=SC2086 # the checks' names
timeout 120 "$PROG" $CHECKS >"$T/plain" 2>&1 || { show "$T/plain"; fail "plain: the checks failed"; }
# shellcheck disable=SC2086
timeout 120 "$SUP" "$PROG" $CHECKS >"$T/supervised" 2>&1 ||
    { show "$T/supervised"; fail "supervised: the checks failed"; }
same_checks "$T/plain" "$T/supervised" 's/port [0-9]*/port P/; s/took [0-9]* ms/took T ms/'
echo "ok"
