#!/bin/sh
# check_core_names.sh [BUILD]: every global symbol the core's library
# defines says by its name whether it is public, as libuv's uv_ and uv__
# do: either core/rudp.h declares it (the interface the shim and other
# embedders may call), or it starts with rudp__ (internal: for core/ itself,
# its unit tests and fuzz targets; check_layers.sh keeps the shim off
# them). Fails naming each symbol that is neither; `make layers-core` runs
# it with check_core_layers.sh.
#
# "Declared in rudp.h" is read from the header preprocessed (no comments):
# a name the header only mentions in prose is not part of the interface.
set -eu

BUILD=${1:-build}
cd "$(dirname "$0")/.."
LIB=$BUILD/libcore.a
CC=${CC:-cc}

if [ ! -f "$LIB" ]; then
    echo "check_core_names: $LIB missing (make lib first)" >&2
    exit 2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$CC" -E -P -D_GNU_SOURCE core/rudp.h | grep -oE '\<rudp_[A-Za-z0-9_]+' | sort -u >"$tmp/public"
nm -g --defined-only "$LIB" 2>/dev/null | awk 'NF == 3 { print $3 }' | sort -u >"$tmp/defined"
grep -v '^rudp__' "$tmp/defined" | comm -23 - "$tmp/public" >"$tmp/bad" || true

if [ -s "$tmp/bad" ]; then
    n=$(wc -l <"$tmp/bad")
    while read -r s; do
        obj=$(nm -A -g --defined-only "$LIB" 2>/dev/null | awk -v s="$s" '$NF == s { split($1, p, ":"); print p[2]; exit }')
        echo "core names: $s (in $obj) is global, not declared in core/rudp.h and not rudp__-internal"
    done <"$tmp/bad"
    echo "core names: $n symbol(s) to rename rudp__* (or make static, or declare in rudp.h)"
    exit 1
fi
echo "core names: ok ($(wc -l <"$tmp/defined") global symbols: $(grep -c '^rudp__' "$tmp/defined") rudp__ internal, the rest rudp.h's)"
