# A throwaway PostgreSQL server for tests and benchmarks, sourced by
# tests/integration/lib.sh and tests/perf/run.sh. Nothing here exits: every
# function says what went wrong on stderr and returns non-zero, and the
# caller fails (or skips) its own way.
#
# pg_setup DIR LOG PWFILE: a new cluster in DIR (a directory this script
#   owns; the caller removes it after pg_teardown), listening on 127.0.0.1 on a
#   free port and on a unix socket in DIR/pg/sock, its log appended to LOG;
#   role and database "sftca", the role's random password in PWFILE (0600,
#   owned by the caller: the signer reads it). Sets and exports PG_BIN,
#   PG_OS_USER, PG_DIR, PG_PORT, PG_URL, PG_PWFILE, PG_LOG.
# pg_start, pg_stop [MODE], pg_restart: the same cluster, same port. MODE:
#   fast (default) or immediate (no shutdown checkpoint: what a crash leaves).
# pg_teardown: stop (fast, then immediate) and remove DIR.
# psql_q SQL: SQL as the sftca role over TCP with the password; tuples only,
#   unaligned; psql's exit code.
# pg_missing: why no server can be started here (empty: it can).

# pg_find_bin: the newest /usr/lib/postgresql/VERSION/bin with the server
# (Debian keeps them off PATH; /usr/bin/psql is a version wrapper).
pg_find_bin() {
	local d
	PG_BIN=
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ] && [ -x "$d/psql" ] && PG_BIN=$d
	done
	[ -n "$PG_BIN" ]
}

pg_missing() {
	pg_find_bin || { echo "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (Debian package postgresql)"; return 0; }
	if [ "$(id -u)" = 0 ]; then
		command -v runuser >/dev/null || { echo "runuser is not installed (util-linux)"; return 0; }
		id -u postgres >/dev/null 2>&1 || command -v useradd >/dev/null ||
			{ echo "no postgres user and no useradd to create sftca-pgtest"; return 0; }
	fi
	command -v openssl >/dev/null || echo "openssl is not installed"
}

# pg_os_user: the unprivileged account the server runs as. initdb and
# postgres refuse to run as root: as root, Debian's postgres system user, else
# a system user of our own (created once, kept); as anyone else, oneself.
pg_os_user() {
	if [ "$(id -u)" != 0 ]; then
		PG_OS_USER=$(id -un)
	elif id -u postgres >/dev/null 2>&1; then
		PG_OS_USER=postgres
	else
		PG_OS_USER=sftca-pgtest
		# Two tests may race to create it: the loser's useradd fails, the user exists.
		id -u "$PG_OS_USER" >/dev/null 2>&1 ||
			useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
				"$PG_OS_USER" 2>/dev/null || id -u "$PG_OS_USER" >/dev/null 2>&1 ||
			{ echo "pg: cannot create the system user $PG_OS_USER" >&2; return 1; }
	fi
}

# pg_as CMD...: CMD as PG_OS_USER, from a directory that user can enter
# (the caller's may be root's 0700 test directory).
pg_as() {
	if [ "$(id -u)" = 0 ]; then
		(cd "$PG_DIR" && runuser -u "$PG_OS_USER" -- "$@")
	else
		(cd "$PG_DIR" && "$@")
	fi
}

# pg_port_free PORT: nothing listens on 127.0.0.1:PORT.
pg_port_free() { [ -z "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }

pg_setup() {
	local dir=$1 log=$2 pwfile=$3 pw try
	pg_find_bin || { echo "pg: $(pg_missing)" >&2; return 1; }
	PG_DIR=$dir PG_LOG=$log PG_PWFILE=$pwfile
	export PG_BIN PG_DIR PG_LOG PG_PWFILE
	pg_os_user || return 1
	export PG_OS_USER
	# DIR stays the caller's (0711: the server's user may only pass through);
	# the cluster, its socket and its lock files are in DIR/pg, the server's.
	chmod 0711 "$dir" && mkdir -p "$dir/pg/data" "$dir/pg/sock" && chmod 0700 "$dir/pg" "$dir/pg/data" &&
		chown -R "$PG_OS_USER:" "$dir/pg" || { echo "pg: cannot prepare $dir/pg for $PG_OS_USER" >&2; return 1; }
	touch "$log"
	# Local (unix socket) connections: trust, for the set-up below (the
	# socket is in DIR/pg, 0700: only root and the server's user reach it); TCP:
	# scram-sha-256, the way the signer connects. --no-sync: a test cluster
	# need not survive a power cut, and initdb's fsyncs are most of its time.
	pg_as "$PG_BIN/initdb" -D "$dir/pg/data" -U postgres -E UTF8 --locale=C --auth-local=trust \
		--auth-host=scram-sha-256 --no-sync --no-instructions >>"$log" 2>&1 ||
		{ echo "pg: initdb failed: $(tail -3 "$log")" >&2; return 1; }
	# fsync off and small buffers: start and writes in well under a second.
	# Any stop, even immediate (a server crash), leaves committed data in the
	# OS's page cache for recovery; only an OS crash, which a test never
	# causes, would lose it. synchronous_commit stays on: a commit still
	# writes its WAL before it returns, or a crash test could lose a row the
	# signer was told was committed.
	cat >>"$dir/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/pg/sock'
fsync = off
shared_buffers = 16MB
max_connections = 50
logging_collector = off
log_connections = on
CONF
	for try in 1 2 3 4 5; do
		PG_PORT=$((20000 + RANDOM % 40000))
		pg_port_free "$PG_PORT" || continue
		sed -i "/^port = /d" "$dir/pg/data/postgresql.conf"
		echo "port = $PG_PORT" >>"$dir/pg/data/postgresql.conf"
		pg_start && break
		# Another process may have taken the port between the check and the bind.
		grep -q "could not bind\|Address already in use" "$log" || return 1
		PG_PORT=
	done
	[ -n "$PG_PORT" ] || { echo "pg: no free port after 5 tries" >&2; return 1; }
	export PG_PORT
	PG_URL=postgresql://sftca@127.0.0.1:$PG_PORT/sftca
	export PG_URL
	pw=$(openssl rand -hex 24) || return 1
	(umask 077 && printf '%s\n' "$pw" >"$pwfile") && chmod 0600 "$pwfile" || return 1
	# The test's own psql reads the password from a pgpass file, never argv
	# or the environment.
	(umask 077 && printf '127.0.0.1:%s:*:sftca:%s\n' "$PG_PORT" "$pw" >"$dir/pgpass") || return 1
	# Over the socket as the superuser; the password on stdin, not argv.
	pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/pg/sock" -p "$PG_PORT" -U postgres -d postgres \
		>>"$log" 2>&1 <<SQL || { echo "pg: creating role and database sftca failed: $(tail -3 "$log")" >&2; return 1; }
SET password_encryption = 'scram-sha-256';
CREATE ROLE sftca LOGIN PASSWORD '$pw';
CREATE DATABASE sftca OWNER sftca;
SQL
}

pg_start() {
	pg_as "$PG_BIN/pg_ctl" start -D "$PG_DIR/pg/data" -w -t 30 </dev/null >>"$PG_LOG" 2>&1 ||
		{ echo "pg: server did not start: $(tail -3 "$PG_LOG")" >&2; return 1; }
}

pg_stop() {
	pg_as "$PG_BIN/pg_ctl" stop -D "$PG_DIR/pg/data" -m "${1:-fast}" -w -t 30 </dev/null >>"$PG_LOG" 2>&1 ||
		{ echo "pg: server did not stop: $(tail -3 "$PG_LOG")" >&2; return 1; }
}

pg_restart() { pg_stop && pg_start; }

# pg_teardown: the server gone, then its directory. Also on a failed test,
# so nothing here may depend on the test's state beyond PG_DIR.
pg_teardown() {
	[ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ] || return 0
	if [ -f "$PG_DIR/pg/data/postmaster.pid" ]; then
		pg_stop 2>/dev/null ||
			pg_stop immediate 2>/dev/null ||
			kill -KILL "$(head -1 "$PG_DIR/pg/data/postmaster.pid")" 2>/dev/null
	fi
	rm -rf "$PG_DIR"
}

psql_q() {
	PGPASSFILE=$PG_DIR/pgpass PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		"$PG_URL" -c "$1" </dev/null
}
