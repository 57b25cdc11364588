/* version.c: the version, in the library's read-only data where rudp-run
 * --version (and anyone with grep or strings) finds it. The Makefile's
 * VERSION is the one source; it arrives as SHIM_VERSION. */
#ifndef SHIM_VERSION
#error "SHIM_VERSION comes from the Makefile's VERSION"
#endif

#include "poison.h"

__attribute__((used)) static const char version[] = "librudp_shim version " SHIM_VERSION;
