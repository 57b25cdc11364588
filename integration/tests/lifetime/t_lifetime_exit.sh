#!/bin/sh
# A writer that sends 10 MB and calls _exit() at once, without close():
# kernel TCP would deliver every byte and a FIN; so must we.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
head -c 10000000 /dev/urandom > "$T/data"
port=$(free_port)
bg_app_io server /dev/null "$T/got" nc -l 127.0.0.1 "$port"
srv=$!
wait_listen "$port"
run_app python3 "$ROOT/integration/compat/lifetime.py" writer "$port" "$T/data"
wait_exit "$srv" 30 || fail "the receiver never saw the end of the stream"
[ "$(sha "$T/data")" = "$(sha "$T/got")" ] || fail "received $(wc -c <"$T/got") bytes, not the 10 MB sent"
echo "ok: 10 MB delivered after the writer's _exit()"
