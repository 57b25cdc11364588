#!/bin/sh
# Java (OpenJDK 17: the JVM's own threads, NIO's selector behind
# com.sun.net.httpserver, java.net.http.HttpClient's pool of kept-alive
# connections, classic java.net.Socket / ServerSocket) as server and client
# (integration/compat/JavaNet.java, compiled here), over kernel TCP
# and then with both ends under the shim (lib/battery.sh): 300 GETs at once,
# every body exact; an 8 MiB POST echoed; 4 sockets each echoing 16 MiB;
# sha256 equal; no "pthread_create" failure; the server JVM ends on SIGTERM
# (status 143, the JVM's after its shutdown hooks).  nftables counts the
# kernel TCP segments on the two ports: > 0 over kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
apart_netns
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
[ -x "$JAVA" ] || JAVA=$(command -v java) || fail "no java (openjdk-17-jdk-headless)"
JAVAC=${JAVA%/java}/javac
[ -x "$JAVAC" ] || JAVAC=$(command -v javac) || fail "no javac (openjdk-17-jdk-headless)"
# compiled once for the four JVMs (the source launcher would compile it in each)
mkdir "$BAT_TOP/classes"
"$JAVAC" -d "$BAT_TOP/classes" "$ROOT/integration/compat/JavaNet.java" || fail "javac JavaNet.java failed"
# a small heap, one GC thread, C1 only: a quicker start on a busy 2-core machine
JOPTS="-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

run() {
    H=$(bat_port) E=$(bat_port)
    # shellcheck disable=SC2086
    bg_app java-srv "$JAVA" $JOPTS -cp "$BAT_TOP/classes" JavaNet serve "$H" "$E"
    SRV=$LAST_PID
    bat_listen "$SRV" "$H" 60
    bat_listen "$SRV" "$E" 60
    wait_line "$T/java-srv.log" '^listening$' 60 || { show "$T/java-srv.log"; fail "the Java server did not start"; }
    assert_listener "$H"
    rc=0
    # shellcheck disable=SC2086
    run_app_t 180 "$JAVA" $JOPTS -cp "$BAT_TOP/classes" JavaNet client "$H" "$E" >"$T/client.out" 2>&1 || rc=$?
    cat "$T/client.out"
    [ "$rc" = 0 ] || { show "$T/java-srv.log"; fail "the Java client exited $rc"; }
    rc=0
    stop_app "$SRV" 30 || rc=$?
    [ "$rc" = 143 ] || { show "$T/java-srv.log"; fail "the Java server exited $rc on SIGTERM, want 143"; }
    echo "ok: the Java server ends on SIGTERM"
    ! grep -h 'pthread_create\|OutOfMemoryError: unable to create' "$T/client.out" "$T/java-srv.log" ||
        fail "the JVM could not start a thread (above)"
}
battery run
