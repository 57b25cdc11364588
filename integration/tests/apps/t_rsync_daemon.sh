#!/bin/sh
# rsync --daemon (forks a child per connection, the rsync protocol over the
# socket both ways) <-> the rsync client, over kernel TCP and then with both
# ends under the shim (lib/battery.sh): a tree of 200 files (empty to 4 MiB,
# about 35 MiB in all, nested directories, a symlink) pulled from a read-only
# module, then pushed back into a writable one; both copies equal the
# source (sha256 of every file, the same names and links); a second pull
# after 20 files changed sends only those (rsync's --stats); the daemon
# ends on SIGTERM.  nftables counts the kernel TCP segments on the port:
# > 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

"$PY" - "$BAT_TOP/src" <<'PY'
import os, random, sys
root = sys.argv[1]
r = random.Random(30)
for i in range(200):
    d = os.path.join(root, "d%d" % (i % 7), "e%d" % (i % 3))
    os.makedirs(d, exist_ok=True)
    n = 0 if i % 50 == 0 else (4 << 20 if i % 40 == 1 else r.randrange(1, 150000))
    with open(os.path.join(d, "f%03d" % i), "wb") as f:
        f.write(os.urandom(n))
os.symlink("d0/e0/f000", os.path.join(root, "link"))
PY

# tree_sum DIR: one line per entry: path, type, sha256 or link target
# (one sha256sum for all the files: a process per file was 27 s of the
# test's 32 alone on a 2-vCPU VM; the names have no blanks)
tree_sum() {
    (cd "$1" && {
        find . -mindepth 1 -type d -printf '%p d\n'
        find . -mindepth 1 -type l -printf '%p l %l\n'
        find . -mindepth 1 -type f -print0 | xargs -0r sha256sum | awk '{ print $2 " f " $1 }'
    } | LC_ALL=C sort)
}
tree_sum "$BAT_TOP/src" >"$BAT_TOP/src.sum"

run() {
    P=$(bat_port)
    cp -a "$BAT_TOP/src" "$T/src"
    mkdir "$T/up"
    cat >"$T/rsyncd.conf" <<CONF
use chroot = no
munge symlinks = no
pid file = $T/rsyncd.pid
log file = $T/rsyncd.log
uid = root
gid = root
[src]
    path = $T/src
    read only = yes
[up]
    path = $T/up
    read only = no
CONF
    bg_app rsyncd rsync --daemon --no-detach --address=127.0.0.1 --port="$P" --config="$T/rsyncd.conf"
    RS=$LAST_PID
    bat_listen "$RS" "$P" 20
    assert_listener "$P"

    run_app rsync -a "rsync://127.0.0.1:$P/src/" "$T/pulled/" >"$T/pull.log" 2>&1 ||
        { rc=$?; show "$T/pull.log" "$T/rsyncd.log"; fail "rsync pull exited $rc"; }
    tree_sum "$T/pulled" | cmp -s - "$BAT_TOP/src.sum" || fail "the pulled tree differs from the source"
    echo "ok: pulled 200 files ($(du -sk "$T/pulled" | cut -f1) KiB) from the read-only module, every sha256 equal"

    run_app rsync -a "$T/pulled/" "rsync://127.0.0.1:$P/up/" >"$T/push.log" 2>&1 ||
        { rc=$?; show "$T/push.log" "$T/rsyncd.log"; fail "rsync push exited $rc"; }
    tree_sum "$T/up" | cmp -s - "$BAT_TOP/src.sum" || fail "the pushed tree differs from the source"
    echo "ok: pushed the tree back into the writable module, every sha256 equal"

    i=0
    for f in $(cd "$T/src" && find . -type f -size +0 | LC_ALL=C sort | head -20); do
        head -c 1000 /dev/urandom >>"$T/src/$f"
        i=$((i + 1))
    done
    run_app rsync -a --stats "rsync://127.0.0.1:$P/src/" "$T/pulled/" >"$T/pull2.log" 2>&1 ||
        { rc=$?; show "$T/pull2.log" "$T/rsyncd.log"; fail "second rsync pull exited $rc"; }
    n=$(sed -n 's/^Number of regular files transferred: //p' "$T/pull2.log")
    [ "$n" = 20 ] || { show "$T/pull2.log"; fail "second pull transferred '$n' files, want the 20 changed"; }
    [ "$(tree_sum "$T/pulled")" = "$(tree_sum "$T/src")" ] || fail "after the second pull the trees differ"
    echo "ok: a second pull sent the 20 changed files only, trees equal"

    rc=0
    stop_app "$RS" 20 || rc=$?
    # rsync's daemon exits 20 on SIGTERM ("received SIGINT, SIGTERM, or SIGHUP")
    [ "$rc" = 0 ] || [ "$rc" = 20 ] || { show "$T/rsyncd.log"; fail "rsync --daemon exited $rc on SIGTERM"; }
    echo "ok: rsync --daemon ends on SIGTERM"
}
battery run
