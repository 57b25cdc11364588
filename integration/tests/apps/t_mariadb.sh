#!/bin/sh
# MariaDB (mariadbd with its thread pool, pool-of-threads, 4 groups; a
# timer thread with a small stack) <-> the mariadb client, over kernel TCP
# and then with both ends under the shim (lib/battery.sh): a user with a
# password (the server's auth handshake); a computed sum; a table of 50,000
# rows inserted and counted; a 100,000-row result whose sha256 equals the
# one computed here; 8 sessions at once, each seen by the server as its
# own connection; the server ends on SIGTERM with status 0 and a clean
# shutdown.  nftables counts the kernel TCP segments on the port: > 0 over
# kernel TCP, 0 under the shim.
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
. "$ROOT/integration/lib/battery.sh"
battery_deps

# the server's options, for the bootstrap too (a small redo log: a 22 MB
# data directory rather than 114 MB)
SMALL="--innodb-log-file-size=4M --innodb-buffer-pool-size=32M"
# shellcheck disable=SC2086
timeout 120 mariadb-install-db --no-defaults --datadir="$BAT_TOP/db" --user=root \
    --auth-root-authentication-method=normal --skip-test-db $SMALL >"$BAT_TOP/install.log" 2>&1 ||
    { show "$BAT_TOP/install.log"; fail "mariadb-install-db failed"; }
cat >"$BAT_TOP/init.sql" <<'SQL'
CREATE DATABASE IF NOT EXISTS bat;
CREATE USER IF NOT EXISTS 'bat'@'127.0.0.1' IDENTIFIED BY 'bat-pw-30';
GRANT ALL ON *.* TO 'bat'@'127.0.0.1';
SQL
"$PY" -c '
import hashlib, sys
w = sys.stdout.write
for i in range(1, 100001):
    w("%d\t%s\n" % (i, hashlib.md5(str(i).encode()).hexdigest()))' >"$BAT_TOP/want.txt"

sql() { # sql ARGS...: the client, batch mode, no column names
    run_app_t 60 mariadb -h 127.0.0.1 -P "$P" -u bat -pbat-pw-30 -D bat --batch -N --connect-timeout=20 "$@"
}

run() {
    P=$(bat_port)
    cp -a "$BAT_TOP/db" "$T/db"
    # shellcheck disable=SC2086
    bg_app mariadbd mariadbd --no-defaults --datadir="$T/db" --user=root --port="$P" \
        --bind-address=127.0.0.1 --socket="$T/sock" --pid-file="$T/pid" --log-error="$T/err.log" \
        --thread-handling=pool-of-threads --thread-pool-size=4 --skip-name-resolve \
        --init-file="$BAT_TOP/init.sql" $SMALL
    DB=$LAST_PID
    bat_listen "$DB" "$P" 60
    assert_listener "$P"
    # the port is bound before the init file has run
    i=0
    until sql -e 'select 1' >/dev/null 2>"$T/sql0.err"; do
        [ "$i" -lt 40 ] || { show "$T/sql0.err" "$T/err.log" "$T/mariadbd.log"; fail "the client cannot log in"; }
        running "$DB" || { show "$T/err.log" "$T/mariadbd.log"; fail "mariadbd ended"; }
        sleep 0.25
        i=$((i + 1))
    done
    out=$(sql -e 'show variables like "thread_handling"') || fail "show variables failed"
    [ "$out" = "thread_handling	pool-of-threads" ] || fail "thread_handling: '$out'"

    out=$(sql -e 'select sum(seq) from seq_1_to_1000000' 2>"$T/sql1.err") ||
        { show "$T/sql1.err" "$T/err.log"; fail "sum query failed"; }
    [ "$out" = 500000500000 ] || fail "sum query said '$out', want 500000500000"
    echo "ok: login with a password, thread pool on, select sum(seq) = $out"

    out=$(sql -e 'create table t (i int primary key, s char(32)) engine=innodb;
        insert into t select seq, md5(seq) from seq_1_to_50000;
        select count(*), count(distinct s) from t' 2>"$T/sql2.err") ||
        { show "$T/sql2.err" "$T/err.log"; fail "table queries failed"; }
    [ "$out" = "50000	50000" ] || fail "table count said '$out', want 50000 50000"
    echo "ok: a table of 50,000 rows inserted and counted"

    sql -e 'select seq, md5(seq) from seq_1_to_100000' >"$T/got.txt" 2>"$T/sql3.err" ||
        { show "$T/sql3.err" "$T/err.log"; fail "large result query failed"; }
    [ "$(sha "$T/got.txt")" = "$(sha "$BAT_TOP/want.txt")" ] ||
        fail "100,000-row result: sha256 differs ($(stat -c %s "$T/got.txt") of $(stat -c %s "$BAT_TOP/want.txt") bytes)"
    echo "ok: 100,000 rows ($(stat -c %s "$T/got.txt") bytes), sha256 equal"

    for i in 1 2 3 4 5 6 7 8; do
        bg_app_io "par.$i" /dev/null "$T/par.$i" mariadb -h 127.0.0.1 -P "$P" -u bat -pbat-pw-30 \
            -D bat --batch -N --connect-timeout=20 -e 'select connection_id(), sleep(1)'
        eval "PAR_$i=\$LAST_PID"
    done
    for i in 1 2 3 4 5 6 7 8; do
        eval "c_pid=\$PAR_$i"
        rc=0
        wait_exit "$c_pid" 60 || rc=$?
        [ "$rc" = 0 ] || { show "$T/par.$i.log" "$T/err.log"; fail "concurrent session $i exited $rc"; }
    done
    n=$(cut -f1 "$T"/par.[1-8] | grep -E '^[0-9]+$' | sort -u | wc -l)
    [ "$n" = 8 ] || fail "8 concurrent sessions reported $n distinct connection ids: $(cat "$T"/par.[1-8] | tr '\n' ' ')"
    echo "ok: 8 sessions at once, 8 connections in the thread pool"

    rc=0
    stop_app "$DB" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/err.log" "$T/mariadbd.log"; fail "mariadbd exited $rc on SIGTERM"; }
    grep -q 'Shutdown complete' "$T/err.log" || { show "$T/err.log"; fail "mariadbd did not log a clean shutdown"; }
    echo "ok: mariadbd ends on SIGTERM, clean shutdown"
}
battery run
