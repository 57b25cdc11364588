#!/bin/sh
# Two builds on one wire: a fleet upgraded one host at a time has clients of
# one build talking to servers of another. This build against 4fe1127's
# (librudp_shim 0.12.0; it has no tag, so it is named by its commit), both
# ways on loopback: an old client with a new server, a new client with an
# old server. Each pair runs
#   - nc -N uploading 4 MiB to nc -l, then half-closing;
#   - nc -N -l sending 4 MiB to nc, keyed (one key at both ends);
#   - curl fetching 4 MiB from python3 -m http.server.
# Asserted for each: what arrived is the file (sha256); the client exits 0
# and so does nc's listener; it went over rudp: RUDP_FALLBACK=none at both
# ends (no kernel TCP instead), the client's counters (RUDP_STATS) say
# "opened 1", the server's "accepted 1" and no plain TCP connection
# accepted; keyed, both ends count keyed handshakes and no datagram failing
# authentication; and each build ran where it was meant to: the new end's
# counters have a pmtu: line, the old end's none.
# The two builds interoperate, so neither end refuses. A change that broke
# that would have to make the new end refuse with a message naming both
# versions (docs/compatibility.md, "Versions"), and this test say so.
# The old shim is built from git history once, into build/compat/4fe1127/
# (shimlib.sh's old_shim: seconds), and reused; without the history (a
# tarball, a shallow clone) the test is skipped.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
OLD=4fe1127
[ "$SHIM_MODE" = shim ] || skip "the point is two builds of the shim; kernel TCP runs inside"
for p in nc curl; do
    command -v "$p" >/dev/null 2>&1 || fail "$p is missing (integration/deps.sh test installs it)"
done
old_shim "$OLD"
# what each build says it is: the library's own string, as rudp-run --version reads it
for b in "$OLD_SHIM" "$SHIM"; do
    echo "$b: $("$TOOLS/rudp-run" --shim "$b" --version | head -1)"
done
"$TOOLS/rudp-run" --shim "$OLD_SHIM" --version | grep -q ') 0\.12\.0$' ||
    fail "the $OLD shim does not say 0.12.0: not the build this test means"

head -c 4194304 /dev/urandom >"$T/file"
WANT=$(sha "$T/file")
mkdir "$T/www"
ln -s "$T/file" "$T/www/file"
make_key "$T/key"

# ldp BUILD PROG: the preload line of BUILD (old or new) for PROG (curl in an
# ASan run gets the regular shim, shimlib.sh's app_ldp)
ldp() { if [ "$1" = old ]; then echo "$OLD_SHIM"; else app_ldp "$2"; fi; }

# end NAME BUILD IN OUT CMD...: CMD under BUILD's shim in the background, its
# counters on, never falling back to kernel TCP, keyed if $KEY is set;
# stdin IN, stdout OUT, stderr $T/NAME.log; its PID in LAST_PID
end() {
    _n=$1 _b=$2 _in=$3 _out=$4
    shift 4
    env "LD_PRELOAD=$(ldp "$_b" "$1")" RUDP_STATS=1 RUDP_FALLBACK=none \
        ${KEY:+"RUDP_KEY_FILE=$KEY"} "$@" <"$_in" >"$_out" 2>"$T/$_n.log" &
    PIDS="$PIDS $!"
    LAST_PID=$!
}

# counted WHAT NAME BUILD PID OPENED ACCEPTED: the counters of NAME (BUILD,
# PID) say it opened and accepted so many rudp connections, no plain TCP,
# and are BUILD's
counted() {
    stats_lines "$T/$2.log" "rudp[$4]" >"$T/$2.stats"
    grep -q "^connections: opened $5 accepted $6 " "$T/$2.stats" ||
        { show "$T/$2.log"; fail "$1: the $2's counters do not say opened $5 accepted $6"; }
    # (a keyed listener takes no plain TCP and has no such line)
    ! grep -q '^plain TCP: connections accepted [1-9]' "$T/$2.stats" ||
        { show "$T/$2.log"; fail "$1: the $2 accepted plain TCP"; }
    if [ "$3" = new ]; then
        grep -q '^pmtu: ' "$T/$2.stats" || fail "$1: the $2's counters have no pmtu: line: not this build"
    else
        ! grep -q '^pmtu: ' "$T/$2.stats" || fail "$1: the $2's counters have a pmtu: line: not the $OLD build"
    fi
    if [ -n "${KEY:-}" ]; then
        grep -q '^keyed: handshakes rejected 0 .*datagrams failing authentication 0,' "$T/$2.stats" ||
            { show "$T/$2.log"; fail "$1: the $2 was not keyed, or rejected a handshake or a datagram"; }
    fi
}

# one SERVER CLIENT CASE: a transfer between a SERVER build's listener and a
# CLIENT build's client (old or new); CASE up (nc), down (nc, keyed) or curl
one() {
    what="$2 client, $1 server, $3"
    KEY=
    P=$(free_port)
    case $3 in
    up)
        end server "$1" /dev/null "$T/got" nc -l 127.0.0.1 "$P"
        srv=$LAST_PID
        wait_udp "$P"
        end client "$2" "$T/file" /dev/null nc -N 127.0.0.1 "$P" ;;
    down)
        KEY=$T/key
        end server "$1" "$T/file" /dev/null nc -N -l 127.0.0.1 "$P"
        srv=$LAST_PID
        wait_udp "$P"
        end client "$2" /dev/null "$T/got" nc 127.0.0.1 "$P" ;;
    curl)
        end server "$1" /dev/null /dev/null "$PY" -m http.server --bind 127.0.0.1 \
            --directory "$T/www" "$P"
        srv=$LAST_PID
        wait_udp "$P"
        end client "$2" /dev/null /dev/null curl -sS --fail --max-time 30 -o "$T/got" \
            "http://127.0.0.1:$P/file" ;;
    esac
    cli=$LAST_PID
    rc=0
    wait_exit "$cli" 30 || rc=$?
    [ "$rc" = 0 ] || { show "$T/client.log" "$T/server.log"; fail "$what: the client exited $rc"; }
    # nc's listener ends by itself after the connection; the web server is
    # ended (the counters are written at its SIGTERM)
    [ "$3" != curl ] || kill "$srv"
    rc=0
    wait_exit "$srv" 30 || rc=$?
    [ "$3" = curl ] || [ "$rc" = 0 ] || { show "$T/server.log"; fail "$what: nc -l exited $rc"; }
    [ "$(sha "$T/got")" = "$WANT" ] || fail "$what: sha256 differs ($(stat -c %s "$T/got") of 4194304 bytes)"
    counted "$what" server "$1" "$srv" 0 1
    counted "$what" client "$2" "$cli" 1 0
    echo "ok: $what: 4 MiB intact over rudp${KEY:+ (keyed)}; $(grep '^datagrams: ' "$T/client.stats")"
    rm -f "$T/got"
}

for pair in "new old" "old new"; do
    for c in up down curl; do
        # shellcheck disable=SC2086 # the pair is two words
        one $pair "$c"
    done
done
echo "ok: a $OLD build (0.12.0) and this one ($(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")) interoperate both ways: uploads, keyed downloads, HTTP"
