/* version.c: the version and the commit built, in the library's read-only
 * data where rudp-run --version (and anyone with grep or strings) finds
 * them. The Makefile's VERSION and COMMIT are the one source; they arrive as
 * SHIM_VERSION and SHIM_COMMIT. The minor version changes with the wire or
 * with behaviour a user sees (docs/compatibility.md, "Versions"). */
#ifndef SHIM_VERSION
#error "SHIM_VERSION comes from the Makefile's VERSION"
#endif
#ifndef SHIM_COMMIT
#error "SHIM_COMMIT comes from the Makefile's COMMIT"
#endif

#include "poison.h"

__attribute__((used)) static const char version[] =
    "librudp_shim version " SHIM_VERSION ", commit " SHIM_COMMIT;
