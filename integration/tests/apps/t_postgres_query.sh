#!/bin/sh
# PostgreSQL (a postmaster that forks a backend per connection) and psql,
# both under the shim (kernel TCP with RUDP_NO_SHIM=1): initdb into $T as the
# postgres user (postgres refuses root), the server on a private port and
# 127.0.0.1, then psql over TCP: a computed sum; a table created, filled and
# counted; a 200,000-row result (about 7 MB) whose sha256 equals the one
# computed here; 4 sessions at once, each in its own forked backend.  The
# server ends on SIGINT (fast shutdown) with status 0.  In ASan runs
# postgres, initdb and psql get the regular shim: with libasan preloaded they
# hang in bindtextdomain() at start-up, shim or not (Debian 12, gcc 12).
. "$(dirname "$0")/../../lib/lib.sh"
. "$ROOT/integration/lib/shimlib.sh"
. "$ROOT/integration/compat/compat.sh"
need_root "postgres runs as a user of its own (setpriv, chown)"
compat_deps

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$PGBIN/postgres" ] || fail "no postgres under /usr/lib/postgresql/*/bin"
PGU=postgres
if ! id "$PGU" >/dev/null 2>&1; then
    PGU=rudp-pg
    id "$PGU" >/dev/null 2>&1 ||
        timeout 20 useradd --system --no-create-home --shell /usr/sbin/nologin "$PGU" ||
        fail "cannot create a user to run postgres"
fi
# The server runs as $PGU: it must reach its directories under $T.
chmod 711 "$T"
mkdir -m 700 "$T/pg" "$T/sock"
chown "$PGU:" "$T/pg" "$T/sock"

timeout 120 setpriv --reuid="$PGU" --regid="$(id -g "$PGU")" --init-groups \
    "$PGBIN/initdb" -D "$T/pg" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$T/initdb.log" 2>&1 || { show "$T/initdb.log"; fail "initdb failed"; }
echo "ok: initdb ($PGBIN, user $PGU)"

PG_ENV=""
if [ "$SHIM_MODE" = shim ]; then
    # postgres execs as $PGU: a copy of the shim it can load (public_ldp;
    # a checkout under /root, 0700, keeps the built one from it)
    PG_LDP=$(public_ldp)
    if [ "$ASAN_RUN" = 1 ]; then
        cp "$(regular_ldp)" "$T/pub/librudp_shim_regular.so"
        chmod 755 "$T/pub/librudp_shim_regular.so"
        PG_LDP=$T/pub/librudp_shim_regular.so
        echo "note: postgres and psql under the regular shim ($PG_LDP) in an ASan run"
    fi
    PG_ENV="LD_PRELOAD=$PG_LDP RUDP_EXPECT_ABORT=1"
fi

P=$(free_port)
# env and setpriv exec postgres: the recorded PID is the postmaster's own.
# shellcheck disable=SC2086
start_bg pg env $PG_ENV setpriv --reuid="$PGU" --regid="$(id -g "$PGU")" --init-groups \
    "$PGBIN/postgres" -D "$T/pg" -p "$P" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories="$T/sock" -c fsync=off -c max_connections=20 \
    -c shared_buffers=16MB -c log_connections=on
PG=$LAST_PID
wait_listen "$P" 60
assert_listener "$P"

psql_run() {
    # shellcheck disable=SC2086
    timeout -k 5 60 env $PG_ENV PGCONNECT_TIMEOUT=20 "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$P" -U postgres -d postgres "$@"
}
# The postmaster may still be starting when its port is bound.
i=0
until psql_run -c 'select 1' >/dev/null 2>"$T/psql0.err"; do
    [ "$i" -lt 40 ] || { show "$T/psql0.err" "$T/pg.log"; fail "psql cannot connect"; }
    sleep 0.25
    i=$((i + 1))
done

out=$(psql_run -c 'select sum(i) from generate_series(1, 1000000) i' 2>"$T/psql1.err") ||
    { show "$T/psql1.err" "$T/pg.log"; fail "psql: sum query failed"; }
[ "$out" = 500000500000 ] || fail "sum query said '$out', want 500000500000"
echo "ok: psql: select sum(i) = $out"

out=$(psql_run -c 'create table t (i int primary key, s text)' \
    -c "insert into t select i, md5(i::text) from generate_series(1, 50000) i" \
    -c 'select count(*), count(distinct s) from t' 2>"$T/psql2.err") ||
    { show "$T/psql2.err" "$T/pg.log"; fail "psql: table queries failed"; }
[ "$out" = "50000|50000" ] || fail "table count said '$out', want 50000|50000"
echo "ok: psql: table created, 50,000 rows inserted and counted"

python3 -c '
import hashlib, sys
w = sys.stdout.write
for i in range(1, 200001):
    w("%d|%s\n" % (i, hashlib.md5(str(i).encode()).hexdigest()))' >"$T/want.txt"
psql_run -c 'select i, md5(i::text) from generate_series(1, 200000) i' >"$T/got.txt" 2>"$T/psql3.err" ||
    { show "$T/psql3.err" "$T/pg.log"; fail "psql: large result query failed"; }
[ "$(sha "$T/got.txt")" = "$(sha "$T/want.txt")" ] ||
    fail "200,000-row result: sha256 differs ($(stat -c %s "$T/got.txt") of $(stat -c %s "$T/want.txt") bytes)"
echo "ok: psql: 200,000 rows ($(stat -c %s "$T/got.txt") bytes), sha256 equal"

# 4 sessions at once: each reports its backend's PID after a 1 s sleep.
for i in 1 2 3 4; do
    # shellcheck disable=SC2086
    timeout -k 5 60 env $PG_ENV PGCONNECT_TIMEOUT=20 "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$P" -U postgres -d postgres \
        -c 'select pg_backend_pid() from pg_sleep(1)' >"$T/par.$i" 2>"$T/par.$i.err" &
    PIDS="$PIDS $!"
    eval "PAR_$i=\$!"
done
for i in 1 2 3 4; do
    eval "c_pid=\$PAR_$i"
    rc=0
    wait_exit "$c_pid" 60 || rc=$?
    [ "$rc" = 0 ] || { show "$T/par.$i.err" "$T/pg.log"; fail "concurrent psql $i exited $rc"; }
done
n=$(cat "$T/par.1" "$T/par.2" "$T/par.3" "$T/par.4" | grep -E '^[0-9]+$' | sort -u | wc -l)
[ "$n" = 4 ] || fail "4 concurrent sessions reported $n distinct backend PIDs: $(cat "$T"/par.[1-4] | tr '\n' ' ')"
echo "ok: 4 concurrent sessions, 4 forked backends: $(cat "$T"/par.[1-4] | tr '\n' ' ')"

rc=0
stop_app "$PG" 30 INT || rc=$?
[ "$rc" = 0 ] || { show "$T/pg.log"; fail "postgres exited $rc on SIGINT (fast shutdown)"; }
grep -q 'database system is shut down' "$T/pg.log" || { show "$T/pg.log"; fail "postgres did not log a clean shutdown"; }
echo "ok: postgres fast shutdown, status 0"
