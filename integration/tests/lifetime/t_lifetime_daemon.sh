#!/bin/sh
# A daemonizing server: listen, fork, the parent exits at once; the child
# must still accept and echo (its listener must not die with the parent).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
head -c 2000000 /dev/urandom > "$T/data"
port=$(free_port)
run_app python3 "$ROOT/integration/compat/lifetime.py" daemon "$port" "$T/ready"
i=0
while [ ! -s "$T/ready" ] && [ "$i" -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$T/ready" ] || fail "the daemon child never started"
run_app python3 "$ROOT/integration/compat/lifetime.py" echo-client "$port" "$T/data"
