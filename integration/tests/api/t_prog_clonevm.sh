#!/bin/sh
# tests/prog_clonevm.c over kernel TCP, then under the shim (run_both):
# children that share the process's memory but are not its threads
# (vfork() then close/dup2/_exit, exec or connect; clone(CLONE_VM) with its
# own fd table or with CLONE_FILES) leave the parent's listener and
# connection as they were, and their own connections carry their bytes:
# under the shim over rudp (the transport lines), a kernel TCP listener's
# relayed to the child's bridge. Then the vfork child's connect again, as
# the first child of a program, through vfork() and through __vfork().
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"

need_bin prog_clonevm
run_both clonevm "$BIN/prog_clonevm"
# a vfork child first of all, by either of glibc's names for vfork: the
# shim must see it come (interpose/clonevm.c), with no clone before it
run_both vfork_first "$BIN/prog_clonevm" --vfork-first vfork
run_both __vfork_first "$BIN/prog_clonevm" --vfork-first __vfork
