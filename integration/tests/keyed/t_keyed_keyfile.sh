#!/bin/sh
# RUDP_KEY_FILE, the key file of keyed mode (shim/base/key.c), and rudp-run's
# --genkey and --key-file:
#  - refused, one line naming RUDP_KEY_FILE and the
#    path: any group or other permission bit (0644 named with its mode and
#    "chmod 600"; 0400 and 0700 are accepted); contents that are not 32 bytes in hex or base64
#    (garbage, 63 or 65 hex digits, a non-hex digit, base64 without its
#    padding or in the URL alphabet, two keys, an empty file); a symbolic
#    link to a good key file; a FIFO (without hanging), a directory, a
#    missing file;
#  - accepted: the base64 of rudp-run --genkey and the same key in hex,
#    bare or with whitespace and CRLF around it; and they are the same key:
#    nc with the hex form talks to nc with the base64 form (sha256 equal),
#    while a client with another key in hex gets no connection;
#  - rudp-run --genkey prints 44 characters of base64 for 32 bytes, a new
#    key each time, and warns when its output goes to a file others may
#    read; --key-file exports an absolute path.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
[ "$SHIM_MODE" = shim ] || skip "keyed mode is the shim's"
LDP=$(shim_preload)
RUN=$TOOLS/rudp-run

# start FILE: a TCP socket made under the shim with RUDP_KEY_FILE=FILE; $rc,
# $T/err. A bad key file refuses it (EACCES, exit 13; docs/configuration.md).
start() { rc=0; timeout 10 env LD_PRELOAD="$LDP" RUDP_KEY_FILE="$1" "$BIN/prog_tcpsocket" 2>"$T/err" || rc=$?; }
good() {
    start "$1"
    [ "$rc" = 0 ] && [ ! -s "$T/err" ] || fail "$2: refused: exit $rc, $(cat "$T/err")"
}
# bad FILE WHAT PHRASE: refused by name with PHRASE in the line
bad() {
    start "$1"
    [ "$rc" != 124 ] || fail "$2: the program hung at start-up"
    [ "$rc" = 13 ] || fail "$2: exit $rc, want 13 (EACCES): $(cat "$T/err")"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "$2: not one line: $(cat "$T/err")"
    grep -qF "RUDP_KEY_FILE=\"$1\"" "$T/err" || fail "$2: the line does not name RUDP_KEY_FILE and the path: $(cat "$T/err")"
    grep -qF -- "$3" "$T/err" || fail "$2: the line does not say '$3': $(cat "$T/err")"
}
# keyfile NAME: prints $T/NAME after making it mode 0600 with stdin as contents
keyfile() { (umask 077 && cat >"$T/$1") && echo "$T/$1"; }

# --- rudp-run --genkey ---
make_key "$T/a"
make_key "$T/b"
B64=$(cat "$T/a")
[ "$(wc -c <"$T/a")" = 45 ] && [ "$(printf %s "$B64" | base64 -d | wc -c)" = 32 ] ||
    fail "--genkey printed '$B64', not 44 characters of base64 for 32 bytes"
cmp -s "$T/a" "$T/b" && fail "--genkey printed the same key twice"
(umask 022 && "$RUN" --genkey >"$T/open.key" 2>"$T/genkey.err") || fail "--genkey to a 0644 file failed"
grep -q "others may read" "$T/genkey.err" || fail "no warning for a key written to a 0644 file: $(cat "$T/genkey.err")"
(umask 077 && "$RUN" --genkey >"$T/c" 2>"$T/genkey.err") || fail "--genkey failed"
[ ! -s "$T/genkey.err" ] || fail "a warning for a 0600 file: $(cat "$T/genkey.err")"
echo "ok: --genkey: $(printf %s "$B64" | cut -c1-8)... (44 characters, 32 bytes), warns for a file others may read"
(cd "$T" && "$RUN" --shim "$SHIM" --key-file a printenv RUDP_KEY_FILE) >"$T/env" 2>&1 ||
    fail "rudp-run --key-file failed: $(cat "$T/env")"
[ "$(cat "$T/env")" = "$T/a" ] || fail "--key-file a exported '$(cat "$T/env")', want $T/a"
echo "ok: --key-file exports an absolute path"

# --- the mode ---
for m in 640 604 660 602 620 704 644; do
    cp "$T/a" "$T/mode$m" && chmod "$m" "$T/mode$m"
    bad "$T/mode$m" "mode $m" "has mode 0$m"
done
grep -qF "chmod 600 $T/mode644" "$T/err" || fail "the mode's line does not say the fix: $(cat "$T/err")"
echo "ok: any group or other bit refused: $(cat "$T/err")"
for m in 400 700; do
    cp "$T/a" "$T/mode$m" && chmod "$m" "$T/mode$m"
    good "$T/mode$m" "mode $m"
done

# --- the contents ---
HEX=$(printf %s "$B64" | base64 -d | od -An -tx1 -v | tr -d ' \n')
[ "${#HEX}" = 64 ] || fail "cannot make the hex form: $HEX"
good "$T/a" "base64 from --genkey"
good "$(printf '%s' "$B64" | keyfile b64bare)" "base64 without a newline"
good "$(printf '%s\n' "$HEX" | keyfile hex)" "hex"
good "$(printf '%s\n' "$HEX" | tr a-f A-F | keyfile hexupper)" "hex in capitals"
good "$(printf '  \t%s\r\n\n' "$HEX" | keyfile hexspace)" "hex with whitespace and CRLF"
good "$(printf '\n %s \n' "$B64" | keyfile b64space)" "base64 with whitespace"
echo "ok: accepted: base64 and hex, whitespace around them"
NOKEY="does not hold a key"
bad "$(echo hello | keyfile k1)" "garbage" "$NOKEY"
bad "$(printf '%s\n' "$HEX" | cut -c2- | keyfile k2)" "63 hex digits" "$NOKEY"
bad "$(printf '%s0\n' "$HEX" | keyfile k3)" "65 hex digits" "$NOKEY"
bad "$(printf 'g%s\n' "$(printf %s "$HEX" | cut -c2-)" | keyfile k4)" "a non-hex digit" "$NOKEY"
bad "$(printf '%s\n' "$B64" | tr -d = | keyfile k5)" "base64 without its padding" "$NOKEY"
bad "$(printf -- '-%s\n' "$(printf %s "$B64" | cut -c2-)" | keyfile k6)" "base64 in the URL alphabet" "$NOKEY"
bad "$(printf '%s\n%s\n' "$B64" "$B64" | keyfile k7)" "two keys" "$NOKEY"
bad "$(printf '%s %s\n' "$(printf %s "$HEX" | cut -c1-32)" "$(printf %s "$HEX" | cut -c33-)" | keyfile k8)" \
    "hex with a space inside" "$NOKEY"
bad "$(: | keyfile k9)" "an empty file" "$NOKEY"
echo "ok: refused by name: $(cat "$T/err")"

# --- what the file is ---
ln -s "$T/a" "$T/link"
bad "$T/link" "a symbolic link" "symbolic link"
mkfifo -m 600 "$T/fifo"
bad "$T/fifo" "a FIFO" "not a regular file"
mkdir -m 700 "$T/dir"
bad "$T/dir" "a directory" "not a regular file"
bad "$T/missing" "a missing file" "cannot be opened"
echo "ok: a symbolic link, a FIFO, a directory and a missing file refused by name"

# --- hex and base64 are the same key; another key is not ---
printf '%s\n' "$(base64 -d <"$T/b" | od -An -tx1 -v | tr -d ' \n')" | keyfile bhex >/dev/null
head -c 100000 /dev/urandom >"$T/data"
P=$(free_port)
bg_app_io srv /dev/null "$T/got" env RUDP_KEY_FILE="$T/hex" nc -l 127.0.0.1 "$P"
SRV=$LAST_PID
wait_listen "$P"
rc=0
run_app_t 30 env RUDP_KEY_FILE="$T/b64space" RUDP_CONNECT_TIMEOUT=2s nc -N 127.0.0.1 "$P" \
    <"$T/data" 2>"$T/cli.err" || rc=$?
[ "$rc" = 0 ] || { show "$T/cli.err" "$T/srv.log"; fail "base64 -> hex: nc exited $rc"; }
wait_exit "$SRV" 30 || { show "$T/srv.log"; fail "the hex-keyed listener failed"; }
[ "$(sha "$T/got")" = "$(sha "$T/data")" ] || fail "base64 -> hex: sha256 differs"
P=$(free_port)
bg_app_io srv2 /dev/null "$T/got2" env RUDP_KEY_FILE="$T/hex" nc -l 127.0.0.1 "$P"
wait_listen "$P"
rc=0
run_app_t 30 env RUDP_KEY_FILE="$T/bhex" RUDP_CONNECT_TIMEOUT=2s nc -N 127.0.0.1 "$P" \
    <"$T/data" 2>"$T/cli2.err" || rc=$?
[ "$rc" != 0 ] || fail "a client with another key (hex) connected"
[ ! -s "$T/got2" ] || fail "a client with another key delivered data"
echo "ok: nc with the key in base64 reaches nc with it in hex (sha256 equal); another key does not"
