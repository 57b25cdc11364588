#!/bin/sh
# A 32-bit program (i386) keeps kernel TCP, and is told so (issue 35,
# docs/reach.md): the supervisor's filter sees x86_64 calls only (an i386
# call, int 0x80, passes unseen) and the shim is x86_64's. Decided, not
# filtered: the i386 ABI's calls, its socketcall() and 32-bit structures
# would be a second set of handlers for programs few still run.
# tests/prog_reach linked -m32 -static here (gcc-12-multilib; skip without)
# echoes through a server under the preload (which takes plain TCP
# clients):
#   1. rudp-supervise --classify: status 3, "not an x86_64 program";
#   2. rudp-run (automatic), rudp-run --supervise and rudp-supervise
#      itself: each warns that its connections use kernel TCP, and the
#      echo goes through, over kernel TCP (segments counted).
. "$(dirname "$0")/../../lib/reachlib.sh"
need_supervise
need_bin prog_reach
P32=$T/prog_reach32
# The kernel's asm/ headers serve both ABIs; gcc-multilib's /usr/include/asm
# symlink to them conflicts with the cross compilers (integration/deps.sh),
# so the build takes its own.
mkdir "$T/inc32"
ln -s /usr/include/x86_64-linux-gnu/asm "$T/inc32/asm"
cc -m32 -isystem "$T/inc32" -std=c11 -D_GNU_SOURCE -O2 -static -o "$P32" "$ROOT/tests/prog_reach.c" \
    "$ROOT/tests/progutil.c" 2>"$T/cc32.log" ||
    skip "no 32-bit static build here (gcc-12-multilib): $(grep -m1 -i error "$T/cc32.log")"
file -b "$P32" 2>/dev/null | grep -q "32-bit" || readelf -h "$P32" | grep -q "ELF32" ||
    fail "$P32 is not a 32-bit program"
# A kernel built or booted without IA32 emulation (ia32_emulation=0, some
# VMs) runs no 32-bit program at all: nothing to tell then.
rc=0
"$P32" >"$T/run32.log" 2>&1 || rc=$?
[ "$rc" != 126 ] || skip "this kernel runs no 32-bit program (exec: Exec format error)"

# 1.
st=0
why=$("$TOOLS/rudp-supervise" --classify "$P32") || st=$?
[ "$st" = 3 ] || fail "--classify: status $st for a 32-bit program, not 3 ($why)"
case $why in "not an x86_64 program"*) ;; *) fail "--classify: \"$why\"" ;; esac
echo "classify: $why (status 3)"

# 2.
RUN="$TOOLS/rudp-run --shim $SHIM"
i386_case() {
    _name=$1; shift
    reach_case "$_name" 100000 "^echoed 100000$" "$@" "$P32" client 127.0.0.1 "$PORT" 100000
    grep -q "warning: .*not an x86_64 program.*kernel TCP" "$T/$_name.client" ||
        { show "$T/$_name.client"; fail "$_name: no warning that it keeps kernel TCP"; }
    [ "$TCP" -gt 0 ] || fail "$_name: no TCP segment: the warning said kernel TCP"
}
# shellcheck disable=SC2086 # a command and its words
i386_case run $RUN
# shellcheck disable=SC2086
i386_case run_supervise $RUN --supervise
i386_case supervise "$TOOLS/rudp-supervise" --shim "$SHIM"
echo "ok"
