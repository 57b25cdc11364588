#!/bin/sh
# A whole shell session with LD_PRELOAD set (done-when item 2 of issue 14):
# one bash under the shim runs, one after the other,
#   - curl to a plain web server on loopback (python3 -m http.server),
#   - git clone over a plain git daemon (git://),
#   - python talking to a plain redis-server (SET, then GET),
#   - curl to a web server that runs under the shim;
# every program works as without the shim (file and clone checked, the
# value read back), the first three reach their plain servers over kernel
# TCP (each logs its fallback), and the last goes over rudp (its stats count
# no fallback and one rudp connection opened).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "a session under the shim; nothing to run over kernel TCP"
command -v git >/dev/null || fail "git missing (make test installs it)"
# redis-server is in deps.sh's compat group, not the test group make test
# installs: alone on a fresh machine this test installs it itself.
timeout 900 "$ROOT/integration/deps.sh" compat ||
    fail "cannot install the compat packages (integration/deps.sh compat)"
command -v redis-server >/dev/null || fail "redis-server missing (integration/deps.sh compat)"

mkdir "$T/www" "$T/swww" "$T/git" "$T/src"
head -c 262144 /dev/urandom >"$T/www/plain.bin"
head -c 262144 /dev/urandom >"$T/swww/shim.bin"
# a repository with one commit, served bare
git -C "$T/src" init -q
head -c 100000 /dev/urandom >"$T/src/data"
git -C "$T/src" add data
git -C "$T/src" -c user.name=t -c user.email=t@t commit -qm one
git clone -q --bare "$T/src" "$T/git/repo.git"
rev=$(git -C "$T/src" rev-parse HEAD)

PW=$(free_port)
start_bg plainhttp "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$PW"
PG=$((PW + 1))
start_bg gitd git daemon --reuseaddr --export-all --listen=127.0.0.1 --port="$PG" \
    --base-path="$T/git" "$T/git"
PR=$((PW + 2))
start_bg redis redis-server --port "$PR" --bind 127.0.0.1 --save "" --appendonly no
PS=$((PW + 3))
bg_app shimhttp "$PY" -m http.server --bind 127.0.0.1 --directory "$T/swww" "$PS"
wait_tcp "$PW" 20
wait_tcp "$PG" 20
wait_tcp "$PR" 20
wait_udp "$PS" 20

cat >"$T/session.sh" <<EOS
set -e
curl -sS --fail -o "$T/plain.got" "http://127.0.0.1:$PW/plain.bin" 2>"$T/curl1.err"
git clone -q "git://127.0.0.1:$PG/repo.git" "$T/clone" 2>"$T/git.err"
"$PY" - "$PR" >"$T/redis.out" 2>"$T/redis.err" <<'PYEOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
def cmd(*a):
    s.sendall(("*%d\r\n" % len(a) + "".join("\$%d\r\n%s\r\n" % (len(x), x) for x in a)).encode())
    return s.recv(4096)
print(cmd("SET", "coexist", "over-tcp").decode().strip())
print(cmd("GET", "coexist").decode().split("\r\n")[1])
PYEOF
curl -sS --fail -o "$T/shim.got" "http://127.0.0.1:$PS/shim.bin" 2>"$T/curl2.err"
EOS
rc=0
# The session runs curl: in an ASan run it gets the regular shim (app_ldp).
APP_USES_CURL=1 run_app_t 120 env RUDP_LOG=info RUDP_STATS=1 bash "$T/session.sh" 2>"$T/bash.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/bash.err" "$T"/*.err; fail "the session failed (exit $rc)"; }

cmp -s "$T/plain.got" "$T/www/plain.bin" || fail "curl to the plain server: file differs"
[ "$(git -C "$T/clone" rev-parse HEAD)" = "$rev" ] || fail "git clone: wrong HEAD"
cmp -s "$T/clone/data" "$T/src/data" || fail "git clone: data differs"
[ "$(cat "$T/redis.out")" = "+OK
over-tcp" ] || { show "$T/redis.out" "$T/redis.err"; fail "redis: unexpected answers"; }
cmp -s "$T/shim.got" "$T/swww/shim.bin" || fail "curl to the shimmed server: file differs"
echo "ok: curl, git clone, python+redis and curl again all worked in one session under LD_PRELOAD"

for f in curl1 git redis; do
    grep -q "connected over kernel TCP" "$T/$f.err" ||
        { show "$T/$f.err"; fail "$f: no fallback to kernel TCP logged"; }
done
echo "ok: the three plain servers were reached over kernel TCP (fallback logged by curl, git, python)"
grep -q "fallback to kernel TCP: connects 0 " "$T/curl2.err" ||
    { show "$T/curl2.err"; fail "curl to the shimmed server fell back to TCP"; }
grep -q "connections: opened 1 " "$T/curl2.err" ||
    { show "$T/curl2.err"; fail "curl to the shimmed server opened no rudp connection"; }
echo "ok: the shimmed server was reached over rudp (1 connection opened, no fallback)"
