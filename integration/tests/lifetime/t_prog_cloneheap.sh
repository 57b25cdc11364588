#!/bin/sh
# tests/prog_cloneheap.c over kernel TCP, then under the shim (run_both): a
# worker thread keeps the engine busy with connections while the main
# thread makes children by raw clone() system calls (no fork(): glibc's
# allocator locks are not reset, no pthread_atfork handler runs); each
# child listens, connects to itself and exits, none may hang (the engine
# thread allocates from the shim's own allocator, never holding libc's
# malloc lock at a clone).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_cloneheap
# Under ASan and TSan (make asan, make tsan) the shim's allocator is libc's,
# which those tools replace with theirs, whose locks a raw clone's child
# inherits as libc's: there the child may hang, by design (shim/base/alloc.c).
case "$SAN" in
asan | tsan) skip "the shim's own allocator is off in sanitizer builds ($BUILD)" ;;
esac
run_both cloneheap "$BIN/prog_cloneheap"
