#!/bin/sh
# A program that closes every fd above 2 (as daemons and sshd do with
# close_range/closefrom) must not break the engine: a new connection after
# it works.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
# socat is in deps.sh's compat group, not the test group make test installs:
# alone on a fresh machine this test installs it itself.
timeout 900 "$ROOT/integration/deps.sh" compat ||
    fail "cannot install the compat packages (integration/deps.sh compat)"
command -v socat >/dev/null || fail "socat missing (integration/deps.sh compat)"
head -c 1000000 /dev/urandom > "$T/data"
port=$(free_port)
bg_app echo socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" SYSTEM:cat
wait_listen "$port"
run_app python3 "$ROOT/integration/compat/lifetime.py" closeall "$port" "$T/data"
