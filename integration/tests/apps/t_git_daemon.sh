#!/bin/sh
# git daemon (forks a child per connection, which runs git upload-pack or
# receive-pack with the connection as its stdin and stdout) <-> git clone,
# git push and git ls-remote over git://, over kernel TCP and then with both
# ends under the shim (lib/battery.sh): a repository of 30 commits and an
# 8 MiB random file cloned, the clone's HEAD the repository's and git fsck
# clean, the file's sha256 equal; a new commit pushed back, which the
# repository then holds; ls-remote names it; git daemon ends on SIGTERM.
# nftables counts the kernel TCP segments on the port: > 0 over kernel TCP,
# 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

export GIT_CONFIG_NOSYSTEM=1 HOME="$BAT_TOP" GIT_AUTHOR_NAME=bat GIT_AUTHOR_EMAIL=bat@test \
    GIT_COMMITTER_NAME=bat GIT_COMMITTER_EMAIL=bat@test
git init -q -b main "$BAT_TOP/work"
head -c 8388608 /dev/urandom >"$BAT_TOP/work/big"
(
    cd "$BAT_TOP/work"
    git add big && git commit -q -m big
    i=1
    while [ "$i" -lt 30 ]; do
        seq "$i" 1000 >"f$((i % 5))"
        git add . && git commit -q -m "commit $i"
        i=$((i + 1))
    done
) || fail "cannot make the repository"
git clone -q --bare "$BAT_TOP/work" "$BAT_TOP/bat.git" || fail "git clone --bare failed"
HEAD=$(git -C "$BAT_TOP/bat.git" rev-parse main)

g() { run_app_t 60 git "$@"; }

run() {
    P=$(bat_port)
    mkdir "$T/repos"
    cp -a "$BAT_TOP/bat.git" "$T/repos/bat.git"
    bg_app gitd git daemon --base-path="$T/repos" --export-all --enable=receive-pack \
        --listen=127.0.0.1 --port="$P" --reuseaddr --verbose --informative-errors "$T/repos"
    GD=$LAST_PID
    bat_listen "$GD" "$P" 20
    assert_listener "$P"
    U=git://127.0.0.1:$P/bat.git

    g clone -q "$U" "$T/clone" 2>"$T/clone.err" || { rc=$?; show "$T/clone.err" "$T/gitd.log"; fail "git clone exited $rc"; }
    [ "$(git -C "$T/clone" rev-parse HEAD)" = "$HEAD" ] || fail "the clone's HEAD is not the repository's"
    git -C "$T/clone" fsck --full --no-progress 2>"$T/fsck.err" || { show "$T/fsck.err"; fail "git fsck of the clone failed"; }
    [ "$(sha "$T/clone/big")" = "$(sha "$BAT_TOP/work/big")" ] || fail "the cloned 8 MiB file: sha256 differs"
    echo "ok: git clone over git:// (30 commits, an 8 MiB file): HEAD equal, fsck clean, sha256 equal"

    (cd "$T/clone" && echo "pushed in the $SHIM_MODE run" >pushed && git add pushed && git commit -q -m pushed) ||
        fail "cannot commit in the clone"
    NEW=$(git -C "$T/clone" rev-parse HEAD)
    g -C "$T/clone" push -q origin main 2>"$T/push.err" || { rc=$?; show "$T/push.err" "$T/gitd.log"; fail "git push exited $rc"; }
    [ "$(git -C "$T/repos/bat.git" rev-parse main)" = "$NEW" ] || fail "the repository does not hold the pushed commit"
    g ls-remote "$U" >"$T/ls" 2>"$T/ls.err" || { rc=$?; show "$T/ls.err"; fail "git ls-remote exited $rc"; }
    grep -q "^$NEW	refs/heads/main$" "$T/ls" || { show "$T/ls"; fail "ls-remote does not name the pushed commit"; }
    echo "ok: git push over git:// (receive-pack), the repository holds it, ls-remote names it"

    rc=0
    stop_app "$GD" 20 || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 143 ] || { show "$T/gitd.log"; fail "git daemon exited $rc on SIGTERM"; }
    echo "ok: git daemon ends on SIGTERM"
}
battery run
