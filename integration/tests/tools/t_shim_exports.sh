#!/bin/sh
# The shim exports exactly the interposed symbols.
. "$(dirname "$0")/../../lib/lib.sh"
"$ROOT/tests/check_exports.sh" "$SHIM"
