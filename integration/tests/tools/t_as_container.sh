#!/bin/sh
# Six tests again as a container of Docker's defaults runs them
# (build/progs/dockerlike --no-ipv6: its capabilities, the system calls
# its seccomp profile refuses, no ::1 on loopback): each must pass, or
# skip saying why, never fail for what a container lacks. One of each
# kind that failed there before (see integration/README.md):
# TCP_CONGESTION a container's root may not set (t_prog_options); the
# engines' own fd tables and CLONE_VM children without pidfd_getfd and
# kcmp (t_prog_fdheld, t_prog_clonevm); the app threads' paths under the
# filter every process of a container starts under (t_prog_appsend); IPv6
# parts without ::1 (t_prog_names, t_curl_http).
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
need_root "dockerlike cuts root's capabilities"
need_netns "dockerlike --no-ipv6 makes a network namespace"
need_bin dockerlike
dl=$("$BIN/dockerlike" --no-ipv6 true 2>&1) || skip "dockerlike cannot run here (already in a container?): $dl"

rc=0
"$BIN/dockerlike" --no-ipv6 "$ROOT/integration/run.sh" t_prog_options.sh t_prog_fdheld.sh \
    t_prog_clonevm.sh t_prog_appsend.sh t_prog_names.sh t_curl_http.sh >"$T/out" 2>&1 || rc=$?
sed 's/^/as a container: /' "$T/out"
[ "$rc" = 0 ] || fail "as in a container of Docker's defaults: $(tail -1 "$T/out")"
last=$(tail -1 "$T/out")
case "$last" in
*" passed, 0 failed, "*) ;;
*) fail "as in a container: no summary line: $last" ;;
esac
echo "ok: as in a container of Docker's defaults, without ::1: $last"
