#!/bin/sh
# The shim must export exactly the interposed symbols (-fvisibility=hidden
# everywhere else): anything more could clash with the host program.
set -eu
so=${1:-build/librudp_shim.so}
want="accept accept4 bind close connect getpeername getsockname getsockopt ioctl listen setsockopt shutdown socket"
got=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TWiV]$/ {print $3}' | sort | tr '\n' ' ' | sed 's/ $//')
if [ "$got" != "$want" ]; then
    echo "FAIL: $so exports:"; echo "  $got"; echo "expected:"; echo "  $want"
    exit 1
fi
echo "exports OK: $got"
