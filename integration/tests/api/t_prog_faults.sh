#!/bin/sh
# A program's own SIGSEGV and SIGBUS (tests/prog_faults.c): sigaction() and
# signal() report what it set; its faults reach its handlers (siginfo, the
# sigaltstack); kill(SIGSEGV) reaches them, SIG_IGN ignores it; write(),
# read(), readv() and a blocked read() with a bad buffer fail with EFAULT
# and lose nothing, with every signal blocked too, its handler never
# called; a fault ends a child by SIGSEGV with SIG_DFL, SIG_IGN and after
# an SA_RESETHAND handler. Over kernel TCP, then under the shim, whose
# handler stands in for the program's to make its guarded copies of the
# program's buffers (shim/base/fault.c).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_faults
# Under ASan and TSan the sanitizer's runtime owns SIGSEGV and SIGBUS (the
# program starts with its handler, not SIG_DFL) and the shim's guard is off
# (fault.c): nothing here can hold as it would for a plain program.
case "$SAN" in
asan | tsan) skip "the sanitizer's runtime owns SIGSEGV and SIGBUS in $BUILD" ;;
esac
run_both faults "$BIN/prog_faults"
