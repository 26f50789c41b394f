#!/usr/bin/env bash
# Issue 14: the PostgreSQL harness itself (tests/pg.sh through lib.sh's
# start_pg), before any signer uses it: the server runs as an unprivileged
# user, the sftca role gets in over TCP only with the password from the
# 0600 file, a restart keeps the data, write_conf writes the [ledger]
# section, and the server and its directory are gone when a test ends,
# passing or failing.
. "$(dirname "$0")/lib.sh"

t0=$(date +%s.%N)
start_pg
ok "start_pg: PostgreSQL on 127.0.0.1:$PG_PORT in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b-a}') s"

pm=$(head -1 "$PG_DIR/pg/data/postmaster.pid")
owner=$(ps -o user= -p "$pm")
[ "$owner" != root ] || fail "the postmaster runs as root"
assert_eq "$owner" "$PG_OS_USER" "the postmaster's user"
assert_eq "$(stat -c '%a %u' "$PG_PWFILE")" "600 $(id -u)" "the password file's mode and owner"
assert_eq "$PG_URL" "postgresql://sftca@127.0.0.1:$PG_PORT/sftca" "PG_URL"
ok "the server runs as $owner; $PG_PWFILE is 0600, ours"

expect_rc 0 psql_q 'select 1'
assert_eq "$OUT" 1 "select 1"
expect_rc 0 psql_q 'select current_user, current_database(), inet_server_addr()'
assert_eq "$OUT" "sftca|sftca|127.0.0.1" "who and where psql_q connects"
ok "psql_q: the sftca role over TCP with the password from the file"

# The same URL with a wrong password, and with none: TCP is not trust.
printf '127.0.0.1:%s:*:sftca:%s\n' "$PG_PORT" "not-$(cat "$PG_PWFILE")" > "$T/wrong.pgpass"
chmod 600 "$T/wrong.pgpass"
expect_rc 2 env PGPASSFILE="$T/wrong.pgpass" "$PG_BIN/psql" -X -w -A -t "$PG_URL" -c 'select 1'
assert_contains "$OUT" 'password authentication failed for user "sftca"' "a wrong password is refused"
expect_rc 2 env PGPASSFILE=/dev/null "$PG_BIN/psql" -X -w -A -t "$PG_URL" -c 'select 1'
assert_contains "$OUT" 'no password supplied' "no password is refused"
ok "a wrong password and no password are refused over TCP"

expect_rc 0 psql_q 'create table kept (v text); insert into kept values ($$before restart$$)'
pg_restart || fail "pg_restart"
[ "$(head -1 "$PG_DIR/pg/data/postmaster.pid")" != "$pm" ] || fail "pg_restart: the same postmaster still runs"
expect_rc 0 psql_q 'select v from kept'
assert_eq "$OUT" "before restart" "a row across pg_restart"
pg_stop || fail "pg_stop"
expect_rc 2 psql_q 'select 1'
assert_contains "$OUT" "Connection refused|connection to server .* failed" "psql_q while stopped"
pg_start || fail "pg_start"
expect_rc 0 psql_q 'select count(*) from kept'
assert_eq "$OUT" 1 "the row after pg_stop, pg_start"
expect_rc 0 psql_q 'insert into kept values ($$before crash$$)'
pg_stop immediate || fail "pg_stop immediate"
pg_start || fail "pg_start after pg_stop immediate"
expect_rc 0 psql_q 'select count(*) from kept'
assert_eq "$OUT" 2 "a committed row across pg_stop immediate (fsync off)"
assert_file_contains "$PG_LOG" "database system was interrupted|not properly shut down" "crash recovery after pg_stop immediate"
ok "pg_restart, pg_stop, pg_start, pg_stop immediate: same port, committed data kept"

write_conf "$T/pg.conf"
assert_eq "$(sed -n '/^\[ledger\]/,/^\[/p' "$T/pg.conf" | grep -v '^\[')" \
	"url = $PG_URL
password_file = $PG_PWFILE" "write_conf's [ledger] section"
LEDGER_URL= write_conf "$T/sqlite.conf"
assert_not_contains "$(cat "$T/sqlite.conf")" '^\[ledger\]' "LEDGER_URL= keeps SQLite"
ok "write_conf: [ledger] with url and password_file after start_pg; LEDGER_URL= leaves it out"

# A test that ends, passing or failing, leaves no server and no directory:
# an inner test script (its own lib.sh, its own traps) that starts one.
inner() {
	set +e
	OUT=$(bash -c ". \"\$SFTCA_SRC/tests/integration/lib.sh\"; start_pg; echo \"PG \$PG_PORT \$PG_DIR\"; $1" 2>&1)
	INNER_RC=$?
	set -e
	read -r _ port dir < <(grep '^PG ' <<<"$OUT")
	[ -n "${port:-}" ] || fail "the inner test did not start PostgreSQL: $OUT"
	[ -z "$(ss -Hltn "sport = :$port")" ] || fail "after a test that $2, 127.0.0.1:$port still listens"
	expect_rc 2 env PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -w "postgresql://sftca@127.0.0.1:$port/sftca" -c 'select 1'
	[ ! -e "$dir" ] || fail "after a test that $2, $dir is still there"
	! pgrep -f "postgres -D $dir/" >/dev/null || fail "after a test that $2, a postgres of $dir runs"
}
inner 'exit 0' passed
assert_eq "$INNER_RC" 0 "the passing inner test's exit code"
inner 'fail deliberately' failed
assert_eq "$INNER_RC" 1 "the failing inner test's exit code"
ok "after a test passes or fails, its server is stopped and its directory removed"
