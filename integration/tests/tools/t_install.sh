#!/bin/sh
# make install / make uninstall into a staging directory (DESTDIR):
#   - every file is where the man pages say (bin, lib, lib/.debug, man1,
#     man7, share/librudp_shim): the user's tools (tools/) and their pages (man/);
#   - the library has no debug info, the separate file has it, the
#     library's .gnu_debuglink names it (and gdb, if present, finds it);
#   - man renders every page from the staged MANPATH, NAME lines included;
#   - the installed rudp-run finds the installed (stripped) library beside
#     itself and carries a transfer over UDP with it;
#   - the installed rudp-supervise finds that library by itself, and the
#     installed rudp-run the supervisor beside itself for a static program
#     (where the supervisor can work here);
#   - make uninstall leaves no file behind.
. "$(dirname "$0")/../../lib/lib.sh"
for c in man readelf objcopy; do
    command -v "$c" >/dev/null || fail "$c is missing (integration/deps.sh test installs it)"
done
D=$T/stage
P=/usr/local
I=$D$P
# The build is done (make test builds first); install needs nothing else.
make -s -C "$ROOT" install DESTDIR="$D" PREFIX="$P" >"$T/install.log" 2>&1 ||
    fail "make install failed: $(tail -5 "$T/install.log")"

want="bin/rudp-run bin/rudp-supervise bin/rudp-stat bin/rudp-plot lib/librudp_shim.so lib/.debug/librudp_shim.so.debug
share/man/man1/rudp-run.1 share/man/man1/rudp-supervise.1 share/man/man1/rudp-stat.1 share/man/man1/rudp-plot.1
share/man/man7/librudp_shim.7 share/librudp_shim/rudp.lua"
pages="rudp-run:1 rudp-supervise:1 rudp-stat:1 rudp-plot:1 librudp_shim:7"
for f in $want; do
    [ -f "$I/$f" ] || fail "make install did not install $P/$f: $(cd "$D" && find . -type f)"
done
for f in bin/rudp-run $(echo "$want" | grep -o 'bin/rudp-[a-z]*' | sort -u); do
    [ -x "$I/$f" ] || fail "$P/$f is not executable"
done
echo "ok: installed $(echo $want | wc -w) files: $(echo $want)"

lib=$I/lib/librudp_shim.so dbg=$I/lib/.debug/librudp_shim.so.debug
readelf -SW "$lib" | grep -q '\.debug_info' && fail "the installed library still has .debug_info"
readelf -SW "$dbg" | grep -q '\.debug_info' || fail "the debug file has no .debug_info"
readelf -SW "$lib" | grep -q '\.symtab' || fail "the installed library lost its symbol table"
link=$(readelf -p .gnu_debuglink "$lib" 2>/dev/null | sed -n 's/^ *\[ *0\] *//p')
[ "$link" = librudp_shim.so.debug ] || fail "the debuglink names '$link', not librudp_shim.so.debug"
sz() { wc -c <"$1"; }
echo "ok: library $(sz "$lib") bytes without debug info; $(sz "$dbg") bytes of it beside, linked"
if command -v gdb >/dev/null; then
    gdb -nx -batch -ex 'info line shim_config_load' "$lib" >"$T/gdb.out" 2>&1 || true
    grep -q 'config\.c' "$T/gdb.out" || fail "gdb does not find the debug info: $(cat "$T/gdb.out")"
    echo "ok: gdb finds the separate debug info: $(grep -o 'Line [0-9]* of "[^"]*"' "$T/gdb.out")"
fi

for pg in $pages; do
    name=${pg%:*} sec=${pg#*:}
    LC_ALL=C MANPATH=$I/share/man MANWIDTH=80 man "$sec" "$name" >"$T/$name.txt" 2>"$T/$name.err" ||
        fail "man $sec $name failed: $(cat "$T/$name.err")"
    grep -q '^NAME' "$T/$name.txt" && grep -q "^ *$name - " "$T/$name.txt" ||
        fail "man $name: no NAME line: $(head -8 "$T/$name.txt")"
    [ -s "$T/$name.err" ] && fail "man $name warned: $(cat "$T/$name.err")"
    echo "ok: man $sec $name renders ($(wc -l <"$T/$name.txt") lines): $(grep -m1 "^ *$name - " "$T/$name.txt" | sed 's/^ *//')"
done
if command -v groff >/dev/null; then
    for f in "$I"/share/man/man1/*.1 "$I"/share/man/man7/*.7; do
        groff -ww -z -man "$f" >"$T/groff.err" 2>&1 || true
        [ -s "$T/groff.err" ] && fail "groff warns on $(basename "$f"): $(cat "$T/groff.err")"
    done
    echo "ok: groff -ww has no warning for any page"
fi

# The installed rudp-run preloads the installed library (found as
# ../lib from its own directory, with no --shim and no RUDP_SHIM)...
maps=$(env -u RUDP_SHIM "$I/bin/rudp-run" cat /proc/self/maps) || fail "installed rudp-run failed"
echo "$maps" | grep -q "$lib" || fail "installed rudp-run did not load $lib: $(echo "$maps" | grep rudp)"
env -u RUDP_SHIM "$I/bin/rudp-run" true || fail "installed rudp-run true failed"
echo "ok: the installed rudp-run runs true and cat with the installed library"
# ...and the stripped library carries a connection over UDP. The listener
# takes rudp only (--accept-tcp 0; by default a TCP listener would take
# plain clients beside it), so a TCP listener would mean the shim had none.
port=$(free_port)
printf 'through the installed shim\n' >"$T/msg"
env -u RUDP_SHIM "$I/bin/rudp-run" --accept-tcp 0 nc -l 127.0.0.1 "$port" >"$T/got" </dev/null 2>"$T/srv.err" &
srv=$!
PIDS="$PIDS $srv"
wait_udp "$port"
ss -H -n -tl "sport = :$port" | grep -q . && fail "the listener is on kernel TCP"
timeout 20 env -u RUDP_SHIM "$I/bin/rudp-run" nc -N 127.0.0.1 "$port" <"$T/msg" 2>"$T/cli.err" ||
    fail "client failed: $(cat "$T/cli.err")"
i=0; while kill -0 "$srv" 2>/dev/null && [ "$i" -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
cmp -s "$T/msg" "$T/got" || fail "the line did not arrive: $(cat "$T/got") $(cat "$T/srv.err")"
echo "ok: a line over UDP through the installed rudp-run and stripped library"
# The installed supervisor finds the installed library by itself, and the
# installed rudp-run finds the supervisor beside itself for a static program.
if "$I/bin/rudp-supervise" --probe >"$T/probe" 2>&1; then
    "$I/bin/rudp-supervise" true 2>"$T/sup.err" ||
        fail "the installed rudp-supervise did not run true: $(cat "$T/sup.err")"
    printf 'int main(void) { return 0; }\n' >"$T/s.c"
    gcc -static -o "$T/static" "$T/s.c" 2>/dev/null || fail "cannot build a static program"
    env -u RUDP_SHIM "$I/bin/rudp-run" --log info "$T/static" 2>"$T/sup.err" ||
        fail "installed rudp-run with a static program failed: $(cat "$T/sup.err")"
    grep -q "under the supervisor" "$T/sup.err" ||
        fail "installed rudp-run did not run the static program under the supervisor: $(cat "$T/sup.err")"
    echo "ok: the installed rudp-run runs a static program under the installed supervisor"
else
    echo "ok: the supervisor cannot work here ($(cat "$T/probe")): the installed one not run"
fi

make -s -C "$ROOT" uninstall DESTDIR="$D" PREFIX="$P" >"$T/uninstall.log" 2>&1 ||
    fail "make uninstall failed: $(tail -5 "$T/uninstall.log")"
left=$(cd "$D" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall left: $left"
echo "ok: make uninstall removed every file"
rm -rf "$D"
