#!/bin/sh
# The shim's static TLS stays under 1 KiB (tests/check_tls.sh, readelf -lW):
# every thread of every program under the shim pays it from its stack.
. "$(dirname "$0")/../../lib/lib.sh"
"$ROOT/tests/check_tls.sh" "$SHIM" 1024
