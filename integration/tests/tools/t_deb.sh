#!/bin/sh
# make deb: the Debian package, installed with dpkg into a throwaway root,
# never onto the host's /usr:
#   - make deb builds rudp-shim VERSION and a higher DEB_VERSION (into $T,
#     not build/deb/) and leaves the checkout as git status had it;
#   - the package declares its dependencies and holds, all under /usr, the
#     tools, the library, the man pages and the systemd drop-in example;
#   - the throwaway root: in a mount namespace of the test's own, an overlay
#     whose lower layer is the host's / (read-only to it; its dpkg database
#     meets the dependencies) and whose upper layer is a tmpfs; chroot there;
#   - dpkg -i, then rudp-run from PATH carries curl's fetch from a python3
#     server over rudp (the listener takes rudp only and the client may not
#     fall back, so kernel TCP would fail; sha256 of the payload);
#   - dpkg -i of the higher version upgrades it, and a new client fetches
#     from the server still running from before;
#   - dpkg --purge, then the upper layer holds nothing but what dpkg and
#     man-db keep of their own (below): no file of the package is left.
. "$(dirname "$0")/../../lib/lib.sh"
if [ "${IT_OWN_MNTNS:-}" != 1 ]; then
    need_mntns "a throwaway root for dpkg"
    rm -rf "$T" # exec: this run's cleanup never comes
    IT_OWN_MNTNS=1 exec unshare -m --propagation private sh "$0"
fi
for c in dpkg-deb chroot curl git; do
    command -v "$c" >/dev/null || fail "$c is missing (integration/deps.sh test installs it)"
done
st=$(dpkg-query -W -f="\${Status}" rudp-shim 2>/dev/null) || true
case "$st" in *" installed") skip "the host has rudp-shim installed: its purge here would hide the host's files" ;; esac

# The root's mounts go first (lazily: a process may still use them), then
# lib.sh's cleanup, which keeps $T rather than remove files through a mount
# still there (the root's /dev is the host's); any mount left goes with the
# mount namespace.
R=$T/root
unmount_root() {
    umount -R -l "$R" 2>/dev/null || true
    umount -l "$T/ovl" 2>/dev/null || true
    # shellcheck disable=SC2034 # lib.sh's cleanup reads it
    if grep -q " $T/" /proc/self/mountinfo; then KEEP_TMP=1; fi
    cleanup
}
trap unmount_root EXIT INT TERM

# --- the packages ------------------------------------------------------------
V=$(sed -n 's/^VERSION := //p' "$ROOT/Makefile")
V2=$V+t1
dpkg --compare-versions "$V2" gt "$V" || fail "$V2 is not above $V"
before_git=$(git -C "$ROOT" status --porcelain 2>&1)
for v in "$V" "$V2"; do
    timeout 120 make -s -C "$ROOT" deb DEB_DIR="$T/deb" DEB_VERSION="$v" >"$T/deb-$v.log" 2>&1 ||
        fail "make deb DEB_VERSION=$v failed: $(tail -20 "$T/deb-$v.log")"
done
[ "$(git -C "$ROOT" status --porcelain 2>&1)" = "$before_git" ] ||
    fail "make deb changed the checkout: $(git -C "$ROOT" status --porcelain)"
# shellcheck disable=SC2012
echo "ok: make deb built $(ls "$T/deb" | tr '\n' ' ')(git status unchanged)"
D1=$T/deb/rudp-shim_${V}_amd64.deb
D2=$T/deb/rudp-shim_${V2}_amd64.deb
for f in "$D1" "$D2"; do [ -f "$f" ] || fail "no ${f##*/}: $(ls "$T/deb")"; done
for f in "$T"/deb/*; do
    case "${f##*/}" in rudp-shim*_"$V"_amd64.* | rudp-shim*_"$V2"_amd64.*) ;;
    *) fail "make deb left more in DEB_DIR: $(ls "$T/deb")" ;; esac
done

dep=$(dpkg-deb -f "$D1" Depends)
for p in libc6 libsodium23; do
    echo "$dep" | grep -q "\\b$p\\b" || fail "Depends lacks $p: $dep"
done
dpkg-deb -c "$D1" | awk '{ print $6 }' | sed 's|^\./||' >"$T/contents"
want="usr/bin/rudp-run usr/bin/rudp-supervise usr/bin/rudp-stat usr/bin/rudp-plot
usr/lib/rudp-shim/librudp_shim.so usr/share/librudp_shim/rudp.lua
usr/share/man/man1/rudp-run.1.gz usr/share/man/man1/rudp-supervise.1.gz
usr/share/man/man1/rudp-stat.1.gz usr/share/man/man1/rudp-plot.1.gz
usr/share/man/man7/librudp_shim.7.gz usr/share/doc/rudp-shim/copyright
usr/share/doc/rudp-shim/examples/rudp.conf"
for f in $want; do
    grep -qx "$f" "$T/contents" || fail "the package lacks /$f: $(cat "$T/contents")"
done
# Everything under /usr: so the exclusions of the purge's check below
# (under /var) cannot hide a file of the package.
outside=$(grep -v -e '^$' -e '^usr/' "$T/contents") || true
[ -z "$outside" ] || fail "the package installs outside /usr: $outside"
echo "ok: Depends: $dep; $(wc -l <"$T/contents") entries, all under /usr, man pages and drop-in among them"

# --- the throwaway root --------------------------------------------------------
mkdir "$T/ovl" "$R"
mount -t tmpfs -o mode=0700 rudp-deb "$T/ovl" || skip "cannot mount a tmpfs here"
mkdir "$T/ovl/up" "$T/ovl/work"
e=$(mount -t overlay overlay -o "lowerdir=/,upperdir=$T/ovl/up,workdir=$T/ovl/work" "$R" 2>&1) ||
    skip "cannot mount an overlay of / here: $e"
mount --rbind /dev "$R/dev"
mount --bind /proc "$R/proc"
mount --bind /sys "$R/sys"
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs tmpfs "$R/run"
mount --bind "$T/deb" "$R/mnt"
upper() { (cd "$T/ovl/up" && find . -mindepth 1 -printf '%y %p\n' | LC_ALL=C sort); }
upper >"$T/up.before"
# A clean environment: no LD_PRELOAD or RUDP_* of the caller's, and a PATH
# without /usr/local (a make install there would answer for rudp-run).
RPATH=/usr/sbin:/usr/bin:/sbin:/bin
in_root() { timeout 60 chroot "$R" /usr/bin/env -i PATH=$RPATH HOME=/root LC_ALL=C "$@"; }

in_root dpkg -i "/mnt/${D1##*/}" >"$T/install.log" 2>&1 ||
    fail "dpkg -i failed: $(tail -20 "$T/install.log")"
[ "$(in_root dpkg-query -W -f="\${Version} \${Status}" rudp-shim)" = "$V install ok installed" ] ||
    fail "not installed: $(in_root dpkg-query -W rudp-shim 2>&1)"
[ "$(in_root sh -c 'command -v rudp-run')" = /usr/bin/rudp-run ] || fail "rudp-run is not /usr/bin's"
in_root rudp-run --version >"$T/version" 2>&1 || fail "rudp-run --version: $(cat "$T/version")"
grep -qx 'library: /usr/lib/rudp-shim/librudp_shim.so' "$T/version" ||
    fail "rudp-run does not find the package's library: $(cat "$T/version")"
echo "ok: dpkg -i installed $V; $(head -1 "$T/version")"
# (a minimal image's dpkg may be told to leave man pages out)
if grep -qs '^path-exclude=/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
    echo "skip: this dpkg installs no man pages (path-exclude in /etc/dpkg/dpkg.cfg.d)"
else
    in_root man -w rudp-run >"$T/man" 2>&1 || fail "man -w rudp-run: $(cat "$T/man")"
    echo "ok: man rudp-run is $(cat "$T/man")"
fi

# --- rudp-run from PATH, server and client -------------------------------------
mkdir "$R/tmp/www"
head -c 1048576 /dev/urandom >"$R/tmp/www/big.bin"
port=$(free_port)
start_bg srv chroot "$R" /usr/bin/env -i PATH=$RPATH HOME=/root LC_ALL=C \
    rudp-run --accept-tcp 0 python3 -m http.server "$port" --bind 127.0.0.1 --directory /tmp/www
SRV=$LAST_PID
wait_udp "$port"
ss -H -n -tl "sport = :$port" | grep -q . && fail "the server's listener is on kernel TCP"
# fetch N: curl under rudp-run, no fallback to kernel TCP, its counters
fetch() {
    in_root rudp-run --fallback none --stats curl -sS --max-time 20 -o "/tmp/got$1" \
        "http://127.0.0.1:$port/big.bin" >"$T/cli$1.log" 2>&1 ||
        fail "fetch $1 failed: $(cat "$T/cli$1.log")"
    [ "$(sha "$R/tmp/got$1")" = "$(sha "$R/tmp/www/big.bin")" ] || fail "fetch $1: the file differs"
    c=$(stats_lines "$T/cli$1.log" | grep '^connections: opened 1 ' | tail -1) ||
        fail "fetch $1: no rudp connection in the counters: $(cat "$T/cli$1.log")"
    echo "ok: fetch $1, 1 MiB over rudp, sha256 equal; the client's counters: $c"
}
fetch 1

# --- upgrade, then purge -------------------------------------------------------
in_root dpkg -i "/mnt/${D2##*/}" >"$T/upgrade.log" 2>&1 ||
    fail "the upgrade failed: $(tail -20 "$T/upgrade.log")"
grep -q "over ($V)" "$T/upgrade.log" || fail "dpkg did not upgrade over $V: $(cat "$T/upgrade.log")"
[ "$(in_root dpkg-query -W -f="\${Version} \${Status}" rudp-shim)" = "$V2 install ok installed" ] ||
    fail "not upgraded: $(in_root dpkg-query -W rudp-shim 2>&1)"
echo "ok: dpkg -i upgraded $V to $V2; the server started before it still serves:"
fetch 2
kill "$SRV"
ended 500 "$SRV" || fail "the server did not end on SIGTERM"

in_root dpkg --purge rudp-shim >"$T/purge.log" 2>&1 || fail "purge failed: $(cat "$T/purge.log")"
st=$(in_root dpkg-query -W -f="\${Status}" rudp-shim 2>/dev/null) || true
case "$st" in "" | *" not-installed") ;; *) fail "after the purge: $st" ;; esac
left=$(cd "$R/var/lib/dpkg/info" && ls -d rudp-shim.* 2>/dev/null) || true
[ -z "$left" ] || fail "dpkg's records of the package are left: $left"
# What may differ, and why: dpkg's database (status, its backups, locks,
# triggers; the package's own info files checked just above), dpkg's log,
# man-db's index (its trigger ran for the pages), and directories of the
# host's own (/usr/bin...), copied up when the package wrote into them. Any
# other entry, a whiteout (c) included, is a file the package left, changed
# or removed.
upper >"$T/up.after"
comm -13 "$T/up.before" "$T/up.after" >"$T/up.new"
grep -Ev '^. \./var/lib/dpkg(/|$)|^f \./var/log/dpkg\.log$|^. \./var/cache/man(/|$)' "$T/up.new" |
    while read -r y p; do
        [ "$y" = d ] && [ -d "/${p#./}" ] || echo "$y $p"
    done >"$T/up.left"
[ -s "$T/up.left" ] && fail "after the purge the root differs in: $(cat "$T/up.left")"
echo "ok: dpkg --purge left no file: of the root's $(wc -l <"$T/up.new") entries changed," \
    "all are dpkg's database and log, man-db's index or the host's directories"

# (by name, not the whole status file: the host may install packages meanwhile)
! grep -qx 'Package: rudp-shim' /var/lib/dpkg/status || fail "the host's dpkg lists rudp-shim"
[ ! -e /usr/lib/rudp-shim ] || fail "the host has /usr/lib/rudp-shim"
echo "ok: the host's dpkg database and /usr have no trace of the package"
