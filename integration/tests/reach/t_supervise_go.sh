#!/bin/sh
# A Go program (net.Dial, net.Listen: system calls without libc, which no preload
# reaches) carries its connection over rudp under rudp-supervise (issue 35).
# The client is goclient/, built here with Debian's golang-go, static
# (CGO_ENABLED=0); the server tests/prog_reach under the preloaded shim.
#   1. the Go client alone: kernel TCP (the counters see it);
#   2. under rudp-run (which runs a Go program under rudp-supervise): 1 MiB echoed, 0 TCP segments, UDP datagrams,
#      and LocalAddr/RemoteAddr are the TCP ones (getsockname and
#      getpeername answered by the shim in the supervisor: Go closes and
#      dials again when they are not inet addresses);
#   3. the Go program as the server (net.Listen, Accept) under
#      rudp-supervise, with a preloaded C client, then with the supervised
#      Go client (both ends): 0 TCP segments, the TCP addresses.
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise

go_program goclient "$T/reachclient"

ERE="^echoed 1048576 true <nil>$"
reach_case plain 1048576 "$ERE" "$T/reachclient" "127.0.0.1:$PORT"
[ "$TCP" -gt 0 ] || fail "plain: the Go client alone counted no TCP segment (probe broken?)"

# shellcheck disable=SC2086 # $RUNSUP: rudp-run and its options
reach_case supervised 1048576 "$ERE" $RUNSUP "$T/reachclient" "127.0.0.1:$PORT"
[ "$TCP" = 0 ] || fail "supervised: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"
grep -Eq "^local 127\.0\.0\.1:[0-9]+ remote 127\.0\.0\.1:$PORT$" "$T/supervised.client" ||
    { show "$T/supervised.client"; fail "supervised: LocalAddr/RemoteAddr are not the TCP ones"; }
echo "supervised: $(grep '^local' "$T/supervised.client")"

# The Go program serving (net.Listen, Accept: listen and accept4 under the
# supervisor): a preloaded C client, then the supervised Go client.
SERVE_WITH="$RUNSUP $T/reachclient"
reach_case go_server 1000000 "^echoed 1000000$" env "LD_PRELOAD=$APP_LDP" "$BIN/prog_reach" client 127.0.0.1 "$PORT" 1000000
[ "$TCP" = 0 ] || fail "go_server: $TCP TCP segments: the connection was not rudp"
grep -Eq "^accepted from 127\.0\.0\.1:[0-9]+ on 127\.0\.0\.1:$PORT$" "$T/go_server.server.log" ||
    { show "$T/go_server.server.log"; fail "go_server: RemoteAddr/LocalAddr are not the TCP ones"; }
echo "go_server: $(grep '^accepted' "$T/go_server.server.log")"
# shellcheck disable=SC2086 # $RUNSUP: rudp-run and its options
reach_case go_both 1048576 "$ERE" $RUNSUP "$T/reachclient" "127.0.0.1:$PORT"
[ "$TCP" = 0 ] || fail "go_both: $TCP TCP segments: the connection was not rudp"
SERVE_WITH=
echo "ok"
