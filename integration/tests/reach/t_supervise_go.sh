#!/bin/sh
# A Go program (net.Dial: system calls without libc, which no preload
# reaches) carries its connection over rudp under rudp-supervise (issue 35).
# The client is goclient/, built here with Debian's golang-go, static
# (CGO_ENABLED=0); the server tests/prog_reach under the preloaded shim.
#   1. the Go client alone: kernel TCP (the counters see it);
#   2. under rudp-supervise: 1 MiB echoed, 0 TCP segments, UDP datagrams,
#      and LocalAddr/RemoteAddr are the TCP ones (getsockname and
#      getpeername answered by the shim in the supervisor: Go closes and
#      dials again when they are not inet addresses).
. "$(dirname "$0")/../../lib/reachlib.sh"
command -v go >/dev/null 2>&1 || skip "no Go toolchain (golang-go)"
need_supervise

mkdir -p "$ROOT/build/gocache"
( cd "$ROOT/integration/tests/reach/goclient" &&
  GOCACHE="$ROOT/build/gocache" GOPATH="$T/gopath" GOPROXY=off CGO_ENABLED=0 \
      timeout 300 go build -o "$T/reachclient" . ) >"$T/gobuild.log" 2>&1 ||
    { show "$T/gobuild.log"; fail "go build failed"; }
readelf -l "$T/reachclient" | grep -q INTERP && fail "the Go client is not static"

ERE="^echoed 1048576 true <nil>$"
reach_case plain 1048576 "$ERE" "$T/reachclient" "127.0.0.1:$PORT"
[ "$TCP" -gt 0 ] || fail "plain: the Go client alone counted no TCP segment (probe broken?)"

reach_case supervised 1048576 "$ERE" "$SUP" "$T/reachclient" "127.0.0.1:$PORT"
[ "$TCP" = 0 ] || fail "supervised: $TCP TCP segments: the connection was not rudp"
[ "$UDP" -gt 0 ] || fail "supervised: no UDP datagram on the port"
grep -Eq "^local 127\.0\.0\.1:[0-9]+ remote 127\.0\.0\.1:$PORT$" "$T/supervised.client" ||
    { show "$T/supervised.client"; fail "supervised: LocalAddr/RemoteAddr are not the TCP ones"; }
echo "supervised: $(grep '^local' "$T/supervised.client")"
echo "ok"
