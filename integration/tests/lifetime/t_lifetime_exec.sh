#!/bin/sh
# inetd-style handoff: a server accepts, then execs /bin/cat with the
# connection as stdin/stdout; 10 MB must echo back intact through the exec.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
head -c 10000000 /dev/urandom > "$T/data"
port=$(free_port)
bg_app inetd python3 "$ROOT/integration/compat/lifetime.py" inetd "$port"
wait_listen "$port"
run_app python3 "$ROOT/integration/compat/lifetime.py" echo-client "$port" "$T/data"
