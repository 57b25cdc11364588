#!/bin/sh
# Keyed mode on the wire (issue 13, "done when" 1): curl -> python3 -m
# http.server, both under the shim with one RUDP_KEY_FILE made by
# `rudp-run --genkey` (mode 0600): a 4 MiB random file arrives with sha256
# equal, and a capture of the transfer on loopback (tshark) holds none of
# its plaintext: eight 16-byte pieces of the file, the request line and the
# server's banner are all absent, while the capture holds at least as many
# bytes as the file (the transfer was captured). The same search over a
# capture of the same transfer without a key finds the banner, the request
# line and (at least 6 of) the pieces, so the search can fail.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
command -v tshark >/dev/null || fail "tshark is missing (integration/deps.sh test installs it)"

SIZE=4194304
mkdir "$T/www"
head -c "$SIZE" /dev/urandom >"$T/www/big.bin"
want=$(sha "$T/www/big.bin")
make_key "$T/key"
[ "$(stat -c %a "$T/key")" = 600 ] || fail "the key file has mode $(stat -c %a "$T/key"), want 600"

# Eight pieces of the file, spread over it, as hex lines.
python3 - "$T/www/big.bin" >"$T/pieces" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
for i in range(8):
    off = (2 * i + 1) * len(data) // 16
    print(data[off:off + 16].hex())
PY

# search CAPTURE: "PIECES HTTP BYTES": how many of the pieces and of the two
# HTTP strings CAPTURE holds, and its size.
search() {
    python3 - "$1" "$T/pieces" <<'PY'
import sys
cap = open(sys.argv[1], "rb").read()
pieces = [bytes.fromhex(h) for h in open(sys.argv[2]).read().split()]
http = (b"GET /big.bin HTTP/1.1", b"Server: SimpleHTTP/")
print(sum(p in cap for p in pieces), sum(h in cap for h in http), len(cap))
PY
}

# capture NAME: the transfer under the shim (with RUDP_KEY_FILE as exported
# or not), captured on loopback into $T/NAME.pcapng.
capture() {
    cap=$1
    P=$(free_port)
    capture_start "$cap" "$P"
    ts=$CAPTURE_PID
    bg_app "http-$cap" "$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$P"
    http=$LAST_PID
    wait_listen "$P" 20
    rc=0
    run_app curl -sS --fail --max-time 50 -o "$T/got-$cap" "http://127.0.0.1:$P/big.bin" \
        2>"$T/curl-$cap.err" || rc=$?
    [ "$rc" = 0 ] || { show "$T/curl-$cap.err" "$T/http-$cap.log"; fail "$cap: curl exited $rc"; }
    [ "$(sha "$T/got-$cap")" = "$want" ] || fail "$cap: sha256 differs ($(stat -c %s "$T/got-$cap") bytes)"
    kill "$http"
    wait_exit "$http" 10 || true
    capture_stop "$T/$cap.pcapng" "$P" "$ts"
}

unset RUDP_KEY_FILE
capture plain
set -- $(search "$T/plain.pcapng")
echo "without a key: $1 of 8 pieces and $2 of 2 HTTP strings in $3 captured bytes"
[ "$2" = 2 ] && [ "$1" -ge 6 ] || fail "the search does not find the plaintext of an unkeyed transfer"

export RUDP_KEY_FILE="$T/key"
capture keyed
set -- $(search "$T/keyed.pcapng")
echo "with a key: $1 of 8 pieces and $2 of 2 HTTP strings in $3 captured bytes"
[ "$3" -ge "$SIZE" ] || fail "the keyed capture holds $3 bytes, less than the $SIZE transferred"
[ "$1" = 0 ] && [ "$2" = 0 ] || fail "the keyed capture holds plaintext of the transfer"
echo "ok: keyed: 4 MiB, sha256 equal; the capture holds none of the plaintext the unkeyed one shows"
