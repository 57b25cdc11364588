#!/bin/sh
# posix_spawn()'s slabs and the images that run the shim, told right
# (tests/prog_execstate.c race, script, script_static, nosuid, suid_root,
# suid_secure): a thread fork()+exec()ing an image without the shim while
# the main thread posix_spawn()s never passes it a memfd, and a spawn whose
# file actions close every fd still succeeds; an image reached through
# scripts (two levels) runs the shim when the last interpreter is this
# dynamic program and gets the slabs, and gets nothing it does not know of
# when it is the static build; a set-uid copy on a nosuid mount, or one
# owned by root run by root, runs the shim and gets them; a nobody-owned
# set-uid copy (secure execution) gets nothing. Over kernel TCP, then
# under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
need_bin prog_execstate
run_both spawn_race "$BIN/prog_execstate" race
run_both spawn_script "$BIN/prog_execstate" script
run_both spawn_script_static "$BIN/prog_execstate" script_static
run_both spawn_nosuid "$BIN/prog_execstate" nosuid
run_both spawn_suid_root "$BIN/prog_execstate" suid_root
# A sanitizer build's set-uid image in secure execution is not dumpable,
# and LeakSanitizer, which needs to read it as a tracer would, ends it with
# a fatal error (status 1) over kernel TCP as under the shim.
case "$SAN" in
asan) echo "skip: spawn_suid_secure: LeakSanitizer cannot run in a set-uid image ($BUILD)" ;;
*) run_both spawn_suid_secure "$BIN/prog_execstate" suid_secure ;;
esac
