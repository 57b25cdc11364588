#!/bin/sh
# node.js http (libuv: epoll, its own close of fds) with keep-alive, server
# and client both node (integration/compat/node_http.js), over kernel TCP
# and then with both ends under the shim (lib/battery.sh): 400 GETs at once
# through an Agent with 4 kept-alive sockets, every body exact; an 8 MiB
# POST echoed, sha256 equal; the server saw 4 connections in all; after
# server.close() (libuv closes the listener's fd with syscall(SYS_close)) a
# new connect is refused, ECONNREFUSED, as a closed TCP listener's; it ends
# on SIGTERM with status 0; neither node says a thread could not start
# (node starts its SIGUSR1 inspector thread with a 32 KiB stack:
# "pthread_create: Invalid argument" when a preload's static TLS does not
# fit in it).  nftables counts the kernel TCP segments on the
# port: > 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

JS=$ROOT/integration/compat/node_http.js
run() {
    P=$(bat_port)
    bg_app node-srv node "$JS" serve "$P"
    SRV=$LAST_PID
    bat_listen "$SRV" "$P" 30
    assert_listener "$P"
    rc=0
    # RUDP_FALLBACK=none: the refused connect after server.close() would
    # otherwise have the fallback ask kernel TCP too (a SYN and its RST, as
    # documented for RUDP_FALLBACK=tcp), and no connection of the client
    # can silently go over kernel TCP instead of rudp.
    RUDP_FALLBACK=none run_app_t 120 node "$JS" client "$P" >"$T/client.out" 2>&1 || rc=$?
    cat "$T/client.out"
    [ "$rc" = 0 ] || { show "$T/node-srv.log"; fail "the node client exited $rc"; }
    rc=0
    stop_app "$SRV" 20 || rc=$?
    [ "$rc" = 0 ] || { show "$T/node-srv.log"; fail "the node server exited $rc on SIGTERM"; }
    echo "ok: the node server ends on SIGTERM"
    ! grep -h 'pthread_create' "$T/client.out" "$T/node-srv.log" ||
        fail "node could not start a thread (above)"
    echo "ok: no thread of node's failed to start"
}
battery run
