#!/bin/sh
# A listener open across an exec into an image that will not run the shim
# is said by name: the image gets a unix socket where it expects its TCP
# listener, and clients under the shim cannot reach it. nginx's binary
# upgrade (kill -USR2) does this: it keeps only TZ in the new binary's
# environment, and its new master silently opened a kernel TCP listener
# (a helper's hunt, 2026-11-29). python3 under the shim listens and execs
# /bin/true with LD_PRELOAD removed:
#  - the listener inheritable: one warn line naming the image, the fd and
#    what to do (keep LD_PRELOAD; nginx: env LD_PRELOAD;);
#  - the listener close-on-exec (Python's default), or LD_PRELOAD kept in
#    the environment: no such line.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "the warning is the shim's"

cat >"$T/ex.py" <<'PYEOF'
import os, socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(5)
s.set_inheritable(sys.argv[1] == "inherit")
env = dict(os.environ)
if sys.argv[2] == "drop":
    env.pop("LD_PRELOAD", None)
print("fd", s.fileno(), flush=True)
os.execve("/bin/true", ["true"], env)
PYEOF

# $1 inherit|cloexec, $2 drop|keep: the warn lines in $T/$1.$2
case_run() {
    rc=0
    run_app "$PY" "$T/ex.py" "$1" "$2" >"$T/$1.$2.out" 2>"$T/$1.$2.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/$1.$2.err"; fail "$1 $2: exited $rc"; }
    grep 'inherits listener fd' "$T/$1.$2.err" >"$T/$1.$2.warn" || true
}

case_run inherit drop
fd=$(sed -n 's/^fd //p' "$T/inherit.drop.out")
[ "$(wc -l <"$T/inherit.drop.warn")" = 1 ] || { show "$T/inherit.drop.err"; fail "no warn line for the listener"; }
grep -q "exec of /bin/true: .*inherits listener fd $fd.*Keep LD_PRELOAD" "$T/inherit.drop.warn" ||
    { show "$T/inherit.drop.warn"; fail "the line does not name the image, fd $fd and what to do"; }
sed 's/^/    /' "$T/inherit.drop.warn"
echo "ok: an inherited listener into an image without the shim is said, with fd $fd"

for c in "cloexec drop" "inherit keep"; do
    # shellcheck disable=SC2086 # two words
    case_run $c
    f=$(echo "$c" | tr ' ' .)
    [ ! -s "$T/$f.warn" ] || { show "$T/$f.warn"; fail "$c: a warn line where nothing crosses into a non-shim image"; }
    echo "ok: $c: no warn line"
done
