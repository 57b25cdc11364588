#!/bin/sh
# check_funclen.sh [MAX [DIR...]]: no function in shim/ or tools/supervise/
# is longer than MAX lines (150 unless given; make layers runs it).
#
# A function that long does too many things for a reader to hold at once,
# and on the application's thread (connect, listen) its stages hide each
# other's failure paths. Split it into stages, each a static function whose
# name says what it does.
#
# Measured from the sources as the style lays them out: a function's body
# opens with "{" alone at column 0 and closes with "}" alone at column 0;
# its length is that of the body, both braces included. Inside a body
# nothing else starts at column 0 but preprocessor lines and goto labels.
# The check refuses
# what it could not measure rather than pass it: a definition at column 0
# whose "{" ends the signature line (K&R style, body on the lines below),
# a "{" at column 0 inside a body, a body never closed. A definition on
# one line ("int f(void) { return 0; }") is one line long: not measured.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MAX=${1:-150}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- shim tools/supervise

files=$(find "$@" -name '*.[ch]' | sort)
[ -n "$files" ] || { echo "check_funclen: no C sources under $*"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# One line per function: "LENGTH FILE:LINE NAME", or "UNMEASURED FILE:LINE
# why" for what the layout above does not cover. The name is the
# identifier before the first "(" of the signature, which begins at the
# last line before the "{" that starts at column 0 with a letter or "_"
# (its continuation lines are indented; attributes are skipped).
# shellcheck disable=SC2086
awk '
function name_of(s,    t) {
    gsub(/__attribute__ *\(\(([^()]|\([^()]*\))*\)\)/, "", s)
    t = s
    sub(/\(.*/, "", t)
    sub(/.*[^A-Za-z0-9_]/, "", t)
    return t == "" ? "?" : t
}
function unclosed() {
    if (open)
        printf "UNMEASURED %s:%d %s never closes at column 0\n", file, open, fname
    open = 0
}
FNR == 1 { unclosed(); file = FILENAME; sig = "" }
/^\{/ {
    if (open) {
        printf "UNMEASURED %s:%d a \"{\" at column 0 inside %s\n", file, FNR, fname
        next
    }
    if ($0 != "{") {
        printf "UNMEASURED %s:%d a \"{\" at column 0 not alone on its line\n", file, FNR
        next
    }
    open = FNR; fname = name_of(sig); sigline = sigat
    next
}
/^\}/ {
    if (open) {
        if ($0 != "}")
            printf "UNMEASURED %s:%d text after the closing \"}\" of %s\n", file, FNR, fname
        printf "%d %s:%d %s\n", FNR - open + 1, file, sigline, fname
        open = 0
    }
    next
}
open { next }
/^[A-Za-z_].*\)[ \t]*\{[ \t]*$/ && !/=/ && !/^(typedef|struct|union|enum)[ \t]/ {
    printf "UNMEASURED %s:%d its body opens at the end of the signature line\n", file, FNR
}
/^[A-Za-z_]/ { sig = $0; sigat = FNR; next }
/^[ \t]/ { if (sig != "") sig = sig " " $0; next }
{ sig = "" }
END { unclosed() }
' $files >"$tmp/all"

fail=0
if grep -q '^UNMEASURED ' "$tmp/all"; then
    echo "FUNCTIONS NOT MEASURED (lay them out with \"{\" and \"}\" alone at column 0):"
    grep '^UNMEASURED ' "$tmp/all" | sed 's/^UNMEASURED /  /'
    fail=1
fi
grep -v '^UNMEASURED ' "$tmp/all" | sort -rn >"$tmp/len" || true
if awk -v max="$MAX" '$1 > max { found = 1 } END { exit !found }' "$tmp/len"; then
    echo "FUNCTIONS OVER $MAX LINES (split them into stages, each a named static function):"
    awk -v max="$MAX" '$1 > max { printf "  %s: %s, %d lines\n", $2, $3, $1 }' "$tmp/len"
    fail=1
fi
if [ $fail -ne 0 ]; then
    echo "function length: FAILED"
    exit 1
fi
echo "function length: OK ($(wc -l <"$tmp/len") functions in $*, none over $MAX lines;" \
     "longest: $(awk 'NR == 1 { printf "%s at %s, %d", $3, $2, $1 }' "$tmp/len"))"
