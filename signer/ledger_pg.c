/* The PostgreSQL ledger: several signers on one database ([ledger] url).
 *
 * What one signer could keep in its own process is kept in the database:
 * - serials are reserved as 'pending' rows under the primary key before the
 *   token signs, each row naming the signer's instance; a signer renews a
 *   lease row while it runs, and a pending row is abandoned by another
 *   signer only once its owner's lease has expired (by the database clock,
 *   so signer clocks need not agree);
 * - CA changes run under one advisory lock and advance an epoch counter
 *   that every signer reads before it issues, to reload what another
 *   changed;
 * - CRL numbers come from one row per CA updated in place, so no two
 *   signers ever hand out the same number.
 * Each thread of work has its own connection (libpq connections are not
 * shared between threads); a broken connection is reset at its next use,
 * so a database restart fails the calls in flight and nothing else. */
#include "ledger_int.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"
#include "uuid.h"
#include "x509util.h"

#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* pg_advisory_lock keys: a CA change; the schema set-up. */
#define ADMIN_LOCK_KEY "7301284401"
#define SCHEMA_LOCK_KEY "7301284402"

struct pg_conn {
	PGconn *c;
	pthread_mutex_t mu;
	const char *what; /* which connection, for messages */
};

struct pg_ledger {
	struct ledger base;
	struct pg_conn w, r, a, h; /* writes, reads, the admin lock, the heartbeat */
	int admin_held;
	int registered; /* this instance has its row in signers */
	unsigned lease;
	pthread_t hb;
	int hb_started;
	pthread_mutex_t hb_mu;
	pthread_cond_t hb_cv;
	int stopping;
};

static const struct ledger_ops pg_ops;

/* --- connections and statements ------------------------------------------- */

/* The server's notices ("relation exists, skipping") are not errors. */
static void notice_quiet(void *arg, const char *message)
{
	(void)arg;
	log_debug("ledger: %s", message);
}

static int pg_connect(struct pg_ledger *l, const struct ledger_opts *o, const char *pw,
		      struct pg_conn *pc, const char *what)
{
	const char *keys[] = { "dbname", "password", "application_name", "connect_timeout",
			       NULL };
	const char *vals[] = { o->url, pw, "sftca-signer", "5", NULL };

	pc->what = what;
	pthread_mutex_init(&pc->mu, NULL);
	pc->c = PQconnectdbParams(keys, vals, 1);
	if (pc->c == NULL || PQstatus(pc->c) != CONNECTION_OK) {
		log_error("ledger %s: cannot connect: %s", l->base.where,
			  pc->c ? PQerrorMessage(pc->c) : "out of memory");
		return SFTCA_ERR_LEDGER;
	}
	PQsetNoticeProcessor(pc->c, notice_quiet, NULL);
	return 0;
}

static void pg_disconnect(struct pg_conn *pc)
{
	if (pc->what == NULL)
		return;
	PQfinish(pc->c);
	pc->c = NULL;
	pthread_mutex_destroy(&pc->mu);
}

/* A connection the database dropped (a restart, a failover to a standby)
 * is made again here, once per call. */
static int pg_ready(struct pg_ledger *l, struct pg_conn *pc)
{
	if (PQstatus(pc->c) == CONNECTION_OK)
		return 0;
	PQreset(pc->c);
	if (PQstatus(pc->c) != CONNECTION_OK) {
		log_error("ledger %s: the database cannot be reached (%s connection): %s",
			  l->base.where, pc->what, PQerrorMessage(pc->c));
		return SFTCA_ERR_LEDGER;
	}
	log_info("ledger %s: %s connection made again", l->base.where, pc->what);
	return 0;
}

/* Run sql with parameters (NULL entries are SQL NULL; lengths and formats
 * as PQexecParams's, NULL: all text). Returns the result when its status
 * is ok, else logs what failed and returns NULL; *code (may be NULL) is
 * SFTCA_ERR_EXISTS for a unique violation. */
static PGresult *pg_qb(struct pg_ledger *l, struct pg_conn *pc, const char *what,
		       const char *sql, int n, const char *const *params, const int *lengths,
		       const int *formats, int *code)
{
	int idle = PQtransactionStatus(pc->c) == PQTRANS_IDLE;
	PGresult *res = PQexecParams(pc->c, sql, n, NULL, params, lengths, formats, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	const char *state;

	/* libpq learns that the server went away (a restart) only when it
	 * uses the connection: a statement outside a transaction is sent
	 * once more on a new one. Inside one, the transaction is lost and the
	 * caller fails. */
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && idle &&
	    PQstatus(pc->c) == CONNECTION_BAD) {
		PQclear(res);
		PQreset(pc->c);
		if (PQstatus(pc->c) == CONNECTION_OK)
			log_info("ledger %s: %s connection made again", l->base.where, pc->what);
		res = PQexecParams(pc->c, sql, n, NULL, params, lengths, formats, 0);
		st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	}

	if (code)
		*code = SFTCA_ERR_LEDGER;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (code && state && strcmp(state, "23505") == 0)
		*code = SFTCA_ERR_EXISTS;
	else
		log_error("ledger %s: %s: %s", l->base.where, what,
			  res ? PQresultErrorMessage(res) : PQerrorMessage(pc->c));
	PQclear(res);
	return NULL;
}

/* pg_qb with every parameter in text form. */
static PGresult *pg_q(struct pg_ledger *l, struct pg_conn *pc, const char *what, const char *sql,
		      int n, const char *const *params, int *code)
{
	return pg_qb(l, pc, what, sql, n, params, NULL, NULL, code);
}

/* A statement whose rows are not wanted: 0 or an error code. */
static int pg_do(struct pg_ledger *l, struct pg_conn *pc, const char *what, const char *sql, int n,
		 const char *const *params)
{
	int code;
	PGresult *res = pg_q(l, pc, what, sql, n, params, &code);

	if (res == NULL)
		return code;
	PQclear(res);
	return 0;
}

static void pg_rollback(struct pg_ledger *l, struct pg_conn *pc)
{
	if (PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
		(void)pg_do(l, pc, "rolling back", "ROLLBACK", 0, NULL);
}

static int pg_commit(struct pg_ledger *l, struct pg_conn *pc)
{
	int r = pg_do(l, pc, "committing", "COMMIT", 0, NULL);
	if (r != 0)
		pg_rollback(l, pc);
	return r;
}

/* Lock pc and make sure it is connected; unlock with pthread_mutex_unlock. */
static int pg_take(struct pg_ledger *l, struct pg_conn *pc)
{
	int r;

	pthread_mutex_lock(&pc->mu);
	if ((r = pg_ready(l, pc)) != 0)
		pthread_mutex_unlock(&pc->mu);
	return r;
}

static int64_t col_i64(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static void col_str(const PGresult *res, int row, int col, char *dst, size_t len)
{
	snprintf(dst, len, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

/* A bytea column (text result, hex form) as a malloc'd buffer. */
static unsigned char *col_bytes(const PGresult *res, int row, int col, size_t *len)
{
	unsigned char *tmp, *out;
	size_t n = 0;

	*len = 0;
	if (PQgetisnull(res, row, col))
		return NULL;
	if ((tmp = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), &n)) == NULL)
		return NULL;
	if ((out = malloc(n ? n : 1)) != NULL) {
		memcpy(out, tmp, n);
		*len = n;
	}
	PQfreemem(tmp);
	return out;
}

/* --- text builders for parameters ------------------------------------------ */

/* A growing string; oom is sticky. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_addn(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t nc = (b->cap ? b->cap * 2 : 256) + n;
		char *np = realloc(b->p, nc);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_add(struct sbuf *b, const char *s)
{
	sb_addn(b, s, strlen(s));
}

/* One element of a PostgreSQL array literal, quoted: '{' and '}' come from
 * the caller, commas from here. */
static void arr_add(struct sbuf *b, const char *s)
{
	sb_add(b, b->len > 1 ? ",\"" : "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_addn(b, "\\", 1);
		sb_addn(b, p, 1);
	}
	sb_add(b, "\"");
}

static void arr_i64(struct sbuf *b, int64_t v)
{
	char t[32];
	snprintf(t, sizeof(t), "%s%lld", b->len > 1 ? "," : "", (long long)v);
	sb_add(b, t);
}

static void sbufs_free(struct sbuf *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(b[i].p);
}

/* "\x…": a bytea parameter in text form. */
static char *bytea_text(const unsigned char *der, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char *s = malloc(2 * len + 3);

	if (s == NULL)
		return NULL;
	s[0] = '\\';
	s[1] = 'x';
	for (size_t i = 0; i < len; i++) {
		s[2 + 2 * i] = hx[der[i] >> 4];
		s[3 + 2 * i] = hx[der[i] & 15];
	}
	s[2 + 2 * len] = '\0';
	return s;
}

static void fmt_i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%lld", (long long)v);
}

/* --- schema ----------------------------------------------------------------- */

static const char *const pg_schema[] = {
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS ca_generations ("
	" ca_id TEXT NOT NULL, generation INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('active','retiring','retired')),"
	" key_label TEXT NOT NULL, key_type TEXT NOT NULL, subject TEXT NOT NULL,"
	" serial TEXT NOT NULL, x509_version INTEGER NOT NULL,"
	" not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,"
	" cert_der BYTEA NOT NULL, imported INTEGER NOT NULL DEFAULT 0,"
	" created_at BIGINT NOT NULL, created_by TEXT NOT NULL, state_changed_at BIGINT,"
	" PRIMARY KEY (ca_id, generation))",
	"CREATE UNIQUE INDEX IF NOT EXISTS one_active ON ca_generations(ca_id)"
	" WHERE state = 'active'",
	"CREATE TABLE IF NOT EXISTS certificates ("
	" id BIGSERIAL UNIQUE, serial TEXT PRIMARY KEY, ca_id TEXT NOT NULL,"
	" generation INTEGER NOT NULL, peer_uuid TEXT NOT NULL, subject TEXT NOT NULL,"
	" not_before BIGINT NOT NULL, not_after BIGINT NOT NULL,"
	" cert_sha256 TEXT, spki_sha256 TEXT NOT NULL,"
	" requester TEXT NOT NULL, requested_at BIGINT NOT NULL, issued_at BIGINT,"
	" state TEXT NOT NULL CHECK (state IN ('pending','issued','revoked','abandoned')),"
	" revoked_at BIGINT, revocation_reason TEXT, cert_der BYTEA, instance_id TEXT,"
	" FOREIGN KEY (ca_id, generation) REFERENCES ca_generations(ca_id, generation))",
	"CREATE INDEX IF NOT EXISTS certificates_ca ON certificates(ca_id, generation, state)",
	"CREATE INDEX IF NOT EXISTS certificates_peer ON certificates(peer_uuid)",
	"CREATE INDEX IF NOT EXISTS certificates_pending ON certificates(instance_id)"
	" WHERE state = 'pending'",
	"CREATE INDEX IF NOT EXISTS certificates_compromised ON certificates(spki_sha256)"
	" WHERE state = 'revoked' AND revocation_reason = 'keyCompromise'",
	"CREATE TABLE IF NOT EXISTS crl_numbers (ca_id TEXT PRIMARY KEY, last BIGINT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS ca_custody ("
	" id BIGSERIAL PRIMARY KEY, ca_id TEXT NOT NULL,"
	" custody TEXT NOT NULL CHECK (custody IN ('shared','exclusive')),"
	" changed_at BIGINT NOT NULL, changed_by TEXT NOT NULL)",
	"CREATE INDEX IF NOT EXISTS ca_custody_ca ON ca_custody(ca_id)",
	/* One row per running (or once running) signer: its lease. */
	"CREATE TABLE IF NOT EXISTS signers ("
	" instance_id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL,"
	" started_at BIGINT NOT NULL, lease_until BIGINT NOT NULL, stopped_at BIGINT)",
	"CREATE TABLE IF NOT EXISTS epochs (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
	"INSERT INTO epochs(name, value) VALUES ('ca', 0), ('revocation', 0)"
	" ON CONFLICT (name) DO NOTHING",
};

/* The database clock, in seconds: leases are judged by it alone. */
#define DB_NOW "extract(epoch from clock_timestamp())::bigint"

static int pg_schema_init(struct pg_ledger *l)
{
	PGresult *res;
	int version = 0, r;
	char v[16];
	const char *p[1] = { v };

	if ((r = pg_do(l, &l->w, "starting the schema set-up", "BEGIN", 0, NULL)) != 0)
		return r;
	/* Two signers starting on an empty database would race to create the
	 * same tables. */
	if ((r = pg_do(l, &l->w, "locking the schema",
		       "SELECT pg_advisory_xact_lock(" SCHEMA_LOCK_KEY ")", 0, NULL)) != 0)
		goto rollback;
	/* An empty database has no meta table yet: version 0. */
	res = pg_q(l, &l->w, "reading the schema version",
		   "SELECT to_regclass('meta') IS NOT NULL", 0, NULL, NULL);
	if (res == NULL) {
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
		PQclear(res);
		res = pg_q(l, &l->w, "reading the schema version",
			   "SELECT value FROM meta WHERE key = 'schema_version'", 0, NULL, NULL);
		if (res == NULL) {
			r = SFTCA_ERR_LEDGER;
			goto rollback;
		}
	}
	if (PQntuples(res) > 0 && PQnfields(res) == 1 && strcmp(PQfname(res, 0), "value") == 0)
		version = atoi(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (version > LEDGER_SCHEMA_VERSION) {
		log_error("ledger %s has schema version %d; this signer knows up to %d: refusing "
			  "to touch it",
			  l->base.where, version, LEDGER_SCHEMA_VERSION);
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	for (size_t i = 0; i < sizeof(pg_schema) / sizeof(pg_schema[0]); i++)
		if ((r = pg_do(l, &l->w, "creating the schema", pg_schema[i], 0, NULL)) != 0)
			goto rollback;
	/* Versions before 2 never existed in PostgreSQL: a new database gets
	 * the current one; later migrations go here, in this transaction. */
	snprintf(v, sizeof(v), "%d", LEDGER_SCHEMA_VERSION);
	if (version == 0) {
		if ((r = pg_do(l, &l->w, "recording the schema version",
			       "INSERT INTO meta(key, value) VALUES ('schema_version', $1)", 1,
			       p)) != 0)
			goto rollback;
		log_info("ledger %s: schema version %d created", l->base.where,
			 LEDGER_SCHEMA_VERSION);
	}
	return pg_commit(l, &l->w);
rollback:
	pg_rollback(l, &l->w);
	return r;
}

/* --- instances and leases ---------------------------------------------------- */

/* Abandon the pending rows of every signer whose lease expired: it died
 * (or lost the database for longer than its lease) with serials reserved
 * that it will never complete. *n = rows changed. */
static int abandon_expired(struct pg_ledger *l, struct pg_conn *pc, int *n)
{
	PGresult *res = pg_q(l, pc, "abandoning the serials of dead signers",
			     "UPDATE certificates SET state = 'abandoned' WHERE state = 'pending'"
			     " AND instance_id IN (SELECT instance_id FROM signers"
			     " WHERE lease_until < " DB_NOW ")",
			     0, NULL, NULL);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	*n = atoi(PQcmdTuples(res));
	PQclear(res);
	return 0;
}

static int lease_renew(struct pg_ledger *l, struct pg_conn *pc)
{
	char lease[16];
	const char *p[2] = { l->base.instance, lease };
	PGresult *res;
	int ok;

	snprintf(lease, sizeof(lease), "%u", l->lease);
	res = pg_q(l, pc, "renewing this signer's lease",
		   "UPDATE signers SET lease_until = " DB_NOW " + $2::bigint"
		   " WHERE instance_id = $1 RETURNING stopped_at IS NULL",
		   2, p, NULL);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	ok = PQntuples(res) == 1;
	PQclear(res);
	if (!ok) {
		log_error("ledger %s: this signer's lease row (instance %s) is gone", l->base.where,
			  l->base.instance);
		return SFTCA_ERR_LEDGER;
	}
	return 0;
}

static void *heartbeat(void *arg)
{
	struct pg_ledger *l = arg;
	unsigned every = l->lease / 3 ? l->lease / 3 : 1;

	pthread_mutex_lock(&l->hb_mu);
	while (!l->stopping) {
		struct timespec until;
		int n = 0;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += every;
		while (!l->stopping &&
		       pthread_cond_timedwait(&l->hb_cv, &l->hb_mu, &until) != ETIMEDOUT)
			;
		if (l->stopping)
			break;
		pthread_mutex_unlock(&l->hb_mu);
		if (pg_take(l, &l->h) == 0) {
			if (lease_renew(l, &l->h) == 0 && abandon_expired(l, &l->h, &n) == 0 &&
			    n > 0)
				log_warn("ledger %s: %d serials left pending by a signer whose lease "
					 "expired are now abandoned (never reused)",
					 l->base.where, n);
			pthread_mutex_unlock(&l->h.mu);
		}
		pthread_mutex_lock(&l->hb_mu);
	}
	pthread_mutex_unlock(&l->hb_mu);
	return NULL;
}

static int instance_register(struct pg_ledger *l, int *abandoned)
{
	char host[256] = "?", pid[16], lease[16];
	const char *p[4] = { l->base.instance, host, pid, lease };
	int r, n = 0;

	gethostname(host, sizeof(host) - 1);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	snprintf(lease, sizeof(lease), "%u", l->lease);
	if ((r = pg_do(l, &l->w, "registering this signer",
		       "INSERT INTO signers(instance_id, host, pid, started_at, lease_until)"
		       " VALUES ($1, $2, $3::int, " DB_NOW ", " DB_NOW " + $4::bigint)",
		       4, p)) != 0)
		return r;
	l->registered = 1;
	if ((r = abandon_expired(l, &l->w, &n)) != 0)
		return r;
	if (abandoned)
		*abandoned = n;
	return 0;
}

/* --- open and close ----------------------------------------------------------- */

static void pg_close(struct ledger *base)
{
	struct pg_ledger *l = (struct pg_ledger *)base;

	if (l == NULL)
		return;
	if (l->hb_started) {
		pthread_mutex_lock(&l->hb_mu);
		l->stopping = 1;
		pthread_cond_signal(&l->hb_cv);
		pthread_mutex_unlock(&l->hb_mu);
		pthread_join(l->hb, NULL);
	}
	/* A clean stop: the lease ends now, and nothing of ours is pending. */
	if (l->registered && PQstatus(l->w.c) == CONNECTION_OK) {
		const char *p[1] = { l->base.instance };
		(void)pg_do(l, &l->w, "ending this signer's lease",
			    "UPDATE signers SET lease_until = " DB_NOW ", stopped_at = " DB_NOW
			    " WHERE instance_id = $1",
			    1, p);
	}
	pg_disconnect(&l->w);
	pg_disconnect(&l->r);
	pg_disconnect(&l->a);
	pg_disconnect(&l->h);
	pthread_mutex_destroy(&l->hb_mu);
	pthread_cond_destroy(&l->hb_cv);
	free(l);
}

int ledger_pg_open(const struct ledger_opts *o, struct ledger **out, int *abandoned)
{
	struct pg_ledger *l = calloc(1, sizeof(*l));
	PQconninfoOption *opts;
	char *pw = NULL, *err = NULL;
	size_t pwlen = 0;
	int r;

	*out = NULL;
	if (abandoned)
		*abandoned = 0;
	if (l == NULL)
		return SFTCA_ERR_NOMEM;
	l->base.ops = &pg_ops;
	l->lease = o->lease_seconds ? o->lease_seconds : 30;
	pthread_mutex_init(&l->hb_mu, NULL);
	pthread_cond_init(&l->hb_cv, NULL);
	snprintf(l->base.where, sizeof(l->base.where), "%s", o->url);
	if ((opts = PQconninfoParse(o->url, &err)) == NULL) {
		log_error("[ledger] url is not a libpq connection URI: %s",
			  err ? err : "out of memory");
		PQfreemem(err);
		r = SFTCA_ERR_CONFIG;
		goto fail;
	}
	r = 0;
	for (PQconninfoOption *p = opts; p->keyword; p++)
		if (strcmp(p->keyword, "password") == 0 && p->val && p->val[0])
			r = SFTCA_ERR_CONFIG;
	PQconninfoFree(opts);
	if (r != 0) {
		/* snprintf above copied it: never keep it for messages. */
		memset(l->base.where, 0, sizeof(l->base.where));
		snprintf(l->base.where, sizeof(l->base.where), "(url withheld)");
		log_error("[ledger] url carries a password: put it in password_file (mode 0600) "
			  "instead");
		goto fail;
	}
	if (o->password_file && (r = secret_read_file(o->password_file, &pw, &pwlen)) != 0) {
		log_error("[ledger] password_file %s: %s", o->password_file,
			  r == SFTCA_ERR_FILE_MODE ? "group or others may read it (chmod 600)"
						   : sftca_strerror(r));
		goto fail;
	}
	if ((r = uuid_random(l->base.instance)) != 0)
		goto fail;
	r = pg_connect(l, o, pw, &l->w, "write");
	if (r == 0)
		r = pg_connect(l, o, pw, &l->r, "read");
	if (r == 0)
		r = pg_connect(l, o, pw, &l->a, "admin");
	if (r == 0)
		r = pg_connect(l, o, pw, &l->h, "heartbeat");
	secret_free(pw, pwlen);
	if (r != 0 || (r = pg_schema_init(l)) != 0 || (r = instance_register(l, abandoned)) != 0)
		goto fail;
	if (pthread_create(&l->hb, NULL, heartbeat, l) != 0) {
		r = SFTCA_ERR_INTERNAL;
		goto fail;
	}
	l->hb_started = 1;
	log_info("ledger: PostgreSQL %s, instance %s, lease %u s", l->base.where, l->base.instance,
		 l->lease);
	*out = &l->base;
	return 0;
fail:
	pg_close(&l->base);
	return r;
}

/* --- epochs and the admin lock -------------------------------------------------- */

static const char bump_ca[] = "UPDATE epochs SET value = value + 1 WHERE name = 'ca'";
static const char bump_rev[] = "UPDATE epochs SET value = value + 1 WHERE name = 'revocation'";

static int pg_epochs(struct ledger *base, uint64_t *ca, uint64_t *rev)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	PGresult *res;
	int r;

	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	res = pg_q(l, &l->r, "reading the epochs", "SELECT name, value FROM epochs", 0, NULL, NULL);
	if (res == NULL)
		r = SFTCA_ERR_LEDGER;
	for (int i = 0; res && i < PQntuples(res); i++) {
		if (strcmp(PQgetvalue(res, i, 0), "ca") == 0)
			*ca = (uint64_t)col_i64(res, i, 1);
		else if (strcmp(PQgetvalue(res, i, 0), "revocation") == 0)
			*rev = (uint64_t)col_i64(res, i, 1);
	}
	PQclear(res);
	pthread_mutex_unlock(&l->r.mu);
	return r;
}

static int pg_admin_lock(struct ledger *base)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	int r;

	if ((r = pg_take(l, &l->a)) != 0)
		return r;
	/* Held on its own connection until admin_unlock: a signer that dies
	 * holding it loses its session, and the database lets go. */
	if ((r = pg_do(l, &l->a, "taking the CA-change lock",
		       "SELECT pg_advisory_lock(" ADMIN_LOCK_KEY ")", 0, NULL)) != 0) {
		pthread_mutex_unlock(&l->a.mu);
		return r;
	}
	l->admin_held = 1;
	return 0; /* a.mu stays locked: one CA change at a time in this process too */
}

static void pg_admin_unlock(struct ledger *base)
{
	struct pg_ledger *l = (struct pg_ledger *)base;

	if (!l->admin_held)
		return;
	l->admin_held = 0;
	if (PQstatus(l->a.c) == CONNECTION_OK)
		(void)pg_do(l, &l->a, "releasing the CA-change lock",
			    "SELECT pg_advisory_unlock(" ADMIN_LOCK_KEY ")", 0, NULL);
	pthread_mutex_unlock(&l->a.mu);
}

/* --- custody ------------------------------------------------------------------------ */

static int custody_insert(struct pg_ledger *l, const char *ca_id, enum ca_custody c,
			  const char *by, int64_t at)
{
	char ts[24];
	const char *p[4] = { ca_id, custody_name(c), ts, by };
	int r;

	if (c == CUSTODY_NONE)
		return SFTCA_ERR_INVALID;
	fmt_i64(ts, sizeof(ts), at);
	if ((r = pg_do(l, &l->w, "recording the CA custody",
		       "INSERT INTO ca_custody(ca_id, custody, changed_at, changed_by)"
		       " VALUES ($1, $2, $3::bigint, $4)",
		       4, p)) != 0)
		return r;
	return pg_do(l, &l->w, "advancing the CA epoch", bump_ca, 0, NULL);
}

static int pg_custody_set(struct ledger *base, const char *ca_id, enum ca_custody c,
			  const char *by, int64_t at)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	int r;

	if ((r = pg_take(l, &l->w)) != 0)
		return r;
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) == 0) {
		if ((r = custody_insert(l, ca_id, c, by, at)) == 0)
			r = pg_commit(l, &l->w);
		else
			pg_rollback(l, &l->w);
	}
	pthread_mutex_unlock(&l->w.mu);
	return r;
}

static int pg_custody_get(struct ledger *base, const char *ca_id, enum ca_custody *c)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	const char *p[1] = { ca_id };
	PGresult *res;
	int r;

	*c = CUSTODY_NONE;
	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	res = pg_q(l, &l->r, "reading the CA custody",
		   "SELECT custody FROM ca_custody WHERE ca_id = $1 ORDER BY id DESC LIMIT 1", 1, p,
		   NULL);
	if (res == NULL)
		r = SFTCA_ERR_LEDGER;
	else if (PQntuples(res) > 0 &&
		 (*c = custody_parse(PQgetvalue(res, 0, 0))) == CUSTODY_NONE) {
		log_error("ledger: CA %s has an unknown custody '%s'", ca_id, PQgetvalue(res, 0, 0));
		r = SFTCA_ERR_LEDGER;
	}
	PQclear(res);
	pthread_mutex_unlock(&l->r.mu);
	return r;
}

/* --- CA generations ------------------------------------------------------------------- */

/* One generation row with its state (a new one, or an imported one). */
static int gen_row_insert(struct pg_ledger *l, const struct ledger_gen *g, enum gen_state state)
{
	char gen[16], ver[16], nb[24], na[24], imp[8], at[24];
	char *der = bytea_text(g->cert_der, g->cert_len);
	const char *p[14] = { g->ca_id, gen, gen_state_name(state), g->key_label, g->key_type,
			      g->subject, g->serial, ver, nb, na, der, imp, at, g->created_by };
	int r;

	if (der == NULL)
		return SFTCA_ERR_NOMEM;
	snprintf(gen, sizeof(gen), "%u", g->generation);
	snprintf(ver, sizeof(ver), "%d", g->x509_version);
	fmt_i64(nb, sizeof(nb), g->not_before);
	fmt_i64(na, sizeof(na), g->not_after);
	snprintf(imp, sizeof(imp), "%d", g->imported ? 1 : 0);
	fmt_i64(at, sizeof(at), g->created_at);
	r = pg_do(l, &l->w, "recording the CA generation",
		  "INSERT INTO ca_generations(ca_id, generation, state, key_label, key_type,"
		  " subject, serial, x509_version, not_before, not_after, cert_der, imported,"
		  " created_at, created_by) VALUES ($1, $2::int, $3, $4, $5, $6, $7, $8::int,"
		  " $9::bigint, $10::bigint, $11::bytea, $12::int, $13::bigint, $14)",
		  14, p);
	free(der);
	return r;
}

static int pg_gen_insert(struct ledger *base, const struct ledger_gen *g, enum gen_state prev_state)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	char at[24];
	const char *p[3] = { gen_state_name(prev_state), at, g->ca_id };
	int r;

	fmt_i64(at, sizeof(at), g->created_at);
	if ((r = pg_take(l, &l->w)) != 0)
		return r;
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0)
		goto out;
	if (prev_state != GEN_STATE_NONE &&
	    (r = pg_do(l, &l->w, "retiring the previous generation",
		       "UPDATE ca_generations SET state = $1, state_changed_at = $2::bigint"
		       " WHERE ca_id = $3 AND state = 'active'",
		       3, p)) != 0)
		goto rollback;
	if ((r = gen_row_insert(l, g, GEN_ACTIVE)) != 0)
		goto rollback;
	if (g->custody != CUSTODY_NONE &&
	    (r = custody_insert(l, g->ca_id, g->custody, g->created_by, g->created_at)) != 0)
		goto rollback;
	if ((r = pg_do(l, &l->w, "advancing the CA epoch", bump_ca, 0, NULL)) != 0)
		goto rollback;
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	return r;
}

static int pg_gens_load(struct ledger *base, const char *ca_id, struct ledger_gen **gens,
			size_t *n)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	const char *p[1] = { ca_id };
	struct ledger_gen *v = NULL;
	PGresult *res;
	int r, rows;

	*gens = NULL;
	*n = 0;
	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	res = pg_q(l, &l->r, "reading CA generations",
		   "SELECT ca_id, generation, state, key_label, key_type, subject, serial,"
		   " x509_version, not_before, not_after, cert_der, imported, created_at,"
		   " created_by FROM ca_generations WHERE $1::text IS NULL OR ca_id = $1"
		   " ORDER BY ca_id, generation",
		   1, p, NULL);
	pthread_mutex_unlock(&l->r.mu);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	rows = PQntuples(res);
	if (rows > 0 && (v = calloc((size_t)rows, sizeof(*v))) == NULL) {
		PQclear(res);
		return SFTCA_ERR_NOMEM;
	}
	for (int i = 0; i < rows; i++) {
		struct ledger_gen *g = &v[i];
		col_str(res, i, 0, g->ca_id, sizeof(g->ca_id));
		g->generation = (unsigned)col_i64(res, i, 1);
		if ((g->state = gen_state_parse(PQgetvalue(res, i, 2))) == GEN_STATE_NONE) {
			log_error("ledger: CA %s generation %u has an unknown state '%s'", g->ca_id,
				  g->generation, PQgetvalue(res, i, 2));
			r = SFTCA_ERR_LEDGER;
			break;
		}
		col_str(res, i, 3, g->key_label, sizeof(g->key_label));
		col_str(res, i, 4, g->key_type, sizeof(g->key_type));
		col_str(res, i, 5, g->subject, sizeof(g->subject));
		col_str(res, i, 6, g->serial, sizeof(g->serial));
		g->x509_version = (int)col_i64(res, i, 7);
		g->not_before = col_i64(res, i, 8);
		g->not_after = col_i64(res, i, 9);
		if ((g->cert_der = col_bytes(res, i, 10, &g->cert_len)) == NULL) {
			r = SFTCA_ERR_NOMEM;
			break;
		}
		g->imported = (int)col_i64(res, i, 11);
		g->created_at = col_i64(res, i, 12);
		col_str(res, i, 13, g->created_by, sizeof(g->created_by));
	}
	PQclear(res);
	if (r != 0) {
		ledger_gens_free(v, (size_t)rows);
		return r;
	}
	*gens = v;
	*n = (size_t)rows;
	return 0;
}

static int pg_gen_set_state(struct ledger *base, const char *ca_id, enum gen_state from,
			    enum gen_state to, int *changed)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	const char *p[3] = { gen_state_name(to), ca_id, gen_state_name(from) };
	PGresult *res;
	int r;

	if ((r = pg_take(l, &l->w)) != 0)
		return r;
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0)
		goto out;
	/* A generation is never retired under a serial another signer has
	 * reserved with it and is signing right now. */
	if (to == GEN_RETIRED) {
		const char *q[2] = { ca_id, gen_state_name(from) };
		res = pg_q(l, &l->w, "looking for serials being signed",
			   "SELECT count(*) FROM certificates c JOIN ca_generations g"
			   " ON c.ca_id = g.ca_id AND c.generation = g.generation"
			   " WHERE c.ca_id = $1 AND g.state = $2 AND c.state = 'pending'",
			   2, q, NULL);
		if (res == NULL) {
			r = SFTCA_ERR_LEDGER;
			goto rollback;
		}
		if (col_i64(res, 0, 0) > 0) {
			log_error("ledger: CA %s: %s serials of a %s generation are being signed; "
				  "retry when they are done",
				  ca_id, PQgetvalue(res, 0, 0), gen_state_name(from));
			PQclear(res);
			r = SFTCA_ERR_PRECONDITION;
			goto rollback;
		}
		PQclear(res);
	}
	res = pg_q(l, &l->w, "changing generation state",
		   "UPDATE ca_generations SET state = $1, state_changed_at = " DB_NOW
		   " WHERE ca_id = $2 AND state = $3",
		   3, p, NULL);
	if (res == NULL) {
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	if (changed)
		*changed = atoi(PQcmdTuples(res));
	PQclear(res);
	if ((r = pg_do(l, &l->w, "advancing the CA epoch", bump_ca, 0, NULL)) != 0)
		goto rollback;
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	return r;
}

/* As the SQLite ledger's count_live; which uses $1 (ca_id), $2 (key label). */
static int count_live(struct pg_ledger *l, const char *ca_id, const char *which,
		      const char *key_label, int64_t now, uint64_t *count)
{
	char sql[1024], ts[24];
	const char *p[3] = { ca_id, key_label, ts };
	PGresult *res;
	int r;

	*count = 0;
	fmt_i64(ts, sizeof(ts), now);
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM certificates c JOIN ca_generations g"
		 " ON c.ca_id = g.ca_id AND c.generation = g.generation"
		 " WHERE c.ca_id = $1 AND (%s) AND c.state = 'issued' AND c.not_after > $3::bigint"
		 " AND c.id = (SELECT max(c2.id) FROM certificates c2"
		 "  WHERE c2.ca_id = c.ca_id AND c2.peer_uuid = c.peer_uuid"
		 "  AND c2.state IN ('issued','revoked'))",
		 which);
	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	res = pg_q(l, &l->r, "counting live leaves", sql, 3, p, NULL);
	pthread_mutex_unlock(&l->r.mu);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	*count = (uint64_t)col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_count_live_retiring(struct ledger *base, const char *ca_id,
				  const char *active_key_label, int64_t now, uint64_t *count)
{
	return count_live((struct pg_ledger *)base, ca_id,
			  "g.key_label IN (SELECT key_label FROM ca_generations"
			  " WHERE ca_id = $1 AND state = 'retiring') AND g.key_label <> $2",
			  active_key_label, now, count);
}

static int pg_count_live_v1(struct ledger *base, const char *ca_id, const char *key_label,
			    int64_t now, uint64_t *count)
{
	return count_live((struct pg_ledger *)base, ca_id, "g.x509_version = 1 AND g.key_label = $2",
			  key_label, now, count);
}

/* --- certificates ----------------------------------------------------------------------- */

static int pg_reserve(struct ledger *base, const struct ledger_cert *rows, size_t n)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	struct sbuf a[10] = { 0 };
	const char *p[11];
	PGresult *res;
	int r, code;

	for (size_t k = 0; k < 10; k++)
		sb_add(&a[k], "{");
	for (size_t i = 0; i < n; i++) {
		const struct ledger_cert *c = &rows[i];
		arr_add(&a[0], c->serial);
		arr_add(&a[1], c->ca_id);
		arr_i64(&a[2], c->generation);
		arr_add(&a[3], c->peer_uuid);
		arr_add(&a[4], c->subject);
		arr_i64(&a[5], c->not_before);
		arr_i64(&a[6], c->not_after);
		arr_add(&a[7], c->spki_sha256);
		arr_add(&a[8], c->requester);
		arr_i64(&a[9], c->requested_at);
	}
	for (size_t k = 0; k < 10; k++) {
		sb_add(&a[k], "}");
		if (a[k].oom) {
			sbufs_free(a, 10);
			return SFTCA_ERR_NOMEM;
		}
		p[k] = a[k].p;
	}
	p[10] = l->base.instance;
	if ((r = pg_take(l, &l->w)) != 0) {
		sbufs_free(a, 10);
		return r;
	}
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0)
		goto out;
	/* The generation must still be in the bundle: a finalize by another
	 * signer waits for this row lock, then sees these pending rows. */
	{
		const char *q[3] = { rows[0].ca_id, NULL, NULL };
		char gen[16];
		snprintf(gen, sizeof(gen), "%u", rows[0].generation);
		q[1] = gen;
		res = pg_q(l, &l->w, "checking the CA generation",
			   "SELECT state FROM ca_generations WHERE ca_id = $1 AND generation = $2::int"
			   " FOR SHARE",
			   2, q, NULL);
		if (res == NULL) {
			r = SFTCA_ERR_LEDGER;
			goto rollback;
		}
		if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "retired") == 0) {
			log_error("ledger: CA %s generation %u was retired by another signer: not "
				  "signing with it",
				  rows[0].ca_id, rows[0].generation);
			PQclear(res);
			r = SFTCA_ERR_PRECONDITION;
			goto rollback;
		}
		PQclear(res);
	}
	res = pg_q(l, &l->w, "reserving serials",
		   "INSERT INTO certificates(serial, ca_id, generation, peer_uuid, subject,"
		   " not_before, not_after, spki_sha256, requester, requested_at, state, instance_id)"
		   " SELECT u.*, 'pending', $11 FROM unnest($1::text[], $2::text[], $3::int[],"
		   " $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[],"
		   " $10::bigint[]) AS u",
		   11, p, &code);
	if (res == NULL) {
		r = code;
		goto rollback;
	}
	PQclear(res);
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	sbufs_free(a, 10);
	return r;
}

static int pg_complete(struct ledger *base, const struct ledger_cert *rows, size_t n)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	/* serial, offset and length in der, sha, issued, not before, not
	 * after; the serials dropped. The certificates go as one binary
	 * parameter: as a text array of hex they cost the server more to
	 * parse than the UPDATE itself. */
	struct sbuf a[8] = { 0 }, der = { 0 };
	const char *p[8], *d[1];
	int lengths[8] = { 0 }, formats[8] = { 0 };
	size_t issued = 0, dropped = 0;
	PGresult *res;
	int r;

	for (size_t k = 0; k < 8; k++)
		sb_add(&a[k], "{");
	sb_add(&der, "");
	for (size_t i = 0; i < n; i++) {
		const struct ledger_cert *c = &rows[i];
		if (c->cert_der == NULL) {
			arr_add(&a[7], c->serial);
			dropped++;
			continue;
		}
		arr_add(&a[0], c->serial);
		arr_i64(&a[1], (int64_t)der.len + 1);
		arr_i64(&a[2], (int64_t)c->cert_len);
		sb_addn(&der, (const char *)c->cert_der, c->cert_len);
		arr_add(&a[3], c->cert_sha256);
		arr_i64(&a[4], c->issued_at);
		arr_i64(&a[5], c->not_before);
		arr_i64(&a[6], c->not_after);
		issued++;
	}
	for (size_t k = 0; k < 8; k++) {
		sb_add(&a[k], "}");
		if (a[k].oom || der.oom || der.len > INT_MAX) {
			sbufs_free(a, 8);
			free(der.p);
			return SFTCA_ERR_NOMEM;
		}
	}
	for (size_t k = 0; k < 7; k++)
		p[k] = a[k].p;
	p[7] = der.p;
	lengths[7] = (int)der.len;
	formats[7] = 1;
	d[0] = a[7].p;
	if ((r = pg_take(l, &l->w)) != 0) {
		sbufs_free(a, 8);
		free(der.p);
		return r;
	}
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0)
		goto out;
	if (issued > 0) {
		res = pg_qb(l, &l->w, "recording issued certificates",
			    "UPDATE certificates AS c SET state = 'issued',"
			    " cert_der = substring($8::bytea from u.off for u.len),"
			    " cert_sha256 = u.sha, issued_at = u.ia, not_before = u.nb, not_after = u.na"
			    " FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::bigint[],"
			    " $6::bigint[], $7::bigint[]) AS u(serial, off, len, sha, ia, nb, na)"
			    " WHERE c.serial = u.serial AND c.state = 'pending'",
			    8, p, lengths, formats, NULL);
		if (res == NULL) {
			r = SFTCA_ERR_LEDGER;
			goto rollback;
		}
		/* Fewer rows than certificates: another signer abandoned ours
		 * (our lease ran out). Those certificates must not leave. */
		if ((size_t)atoll(PQcmdTuples(res)) != issued) {
			log_error("ledger %s: %s of %zu reserved serials were abandoned by another "
				  "signer (this signer's lease expired): the certificates are "
				  "discarded",
				  l->base.where, PQcmdTuples(res), issued);
			PQclear(res);
			r = SFTCA_ERR_LEDGER;
			goto rollback;
		}
		PQclear(res);
	}
	if (dropped > 0 &&
	    (r = pg_do(l, &l->w, "abandoning serials",
		       "UPDATE certificates SET state = 'abandoned'"
		       " WHERE serial = ANY($1::text[]) AND state = 'pending'",
		       1, d)) != 0)
		goto rollback;
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	sbufs_free(a, 8);
	free(der.p);
	return r;
}

static int pg_revoke(struct ledger *base, const char *ca_id, const char *serial,
		     const char *reason, int64_t at, unsigned *generation,
		     int (*before_commit)(void *arg, unsigned gen), void *arg)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	const char *p[2] = { serial, ca_id };
	char ts[24];
	const char *u[3] = { ts, reason, serial };
	enum cert_state state;
	PGresult *res;
	int r;

	fmt_i64(ts, sizeof(ts), at);
	if ((r = pg_take(l, &l->w)) != 0)
		return r;
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0)
		goto out;
	res = pg_q(l, &l->w, "looking up the serial",
		   "SELECT state, generation FROM certificates WHERE serial = $1 AND ca_id = $2"
		   " FOR UPDATE",
		   2, p, NULL);
	if (res == NULL) {
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	if (PQntuples(res) == 0) {
		PQclear(res);
		r = SFTCA_ERR_NOT_FOUND;
		goto rollback;
	}
	state = cert_state_parse(PQgetvalue(res, 0, 0));
	*generation = (unsigned)col_i64(res, 0, 1);
	PQclear(res);
	if (state != CERT_ISSUED) {
		r = SFTCA_ERR_PRECONDITION;
		goto rollback;
	}
	if ((r = pg_do(l, &l->w, "revoking",
		       "UPDATE certificates SET state = 'revoked', revoked_at = $1::bigint,"
		       " revocation_reason = $2 WHERE serial = $3 AND state = 'issued'",
		       3, u)) != 0 ||
	    (r = pg_do(l, &l->w, "advancing the revocation epoch", bump_rev, 0, NULL)) != 0)
		goto rollback;
	if (before_commit != NULL && (r = before_commit(arg, *generation)) != 0)
		goto rollback;
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	return r;
}

static const char pg_row_columns[] =
	"c.id, c.serial, c.ca_id, c.generation, c.peer_uuid, c.subject, c.not_before,"
	" c.not_after, c.cert_sha256, c.spki_sha256, c.requester, c.requested_at, c.issued_at,"
	" c.state, c.revoked_at, c.revocation_reason, c.cert_der";

/* Row i of res (pg_row_columns) into c; the DER, when asked for, is
 * malloc'd into *der (the caller frees it after use). */
static int row_from_result(const PGresult *res, int i, struct ledger_cert *c, int with_der,
			   unsigned char **der)
{
	memset(c, 0, sizeof(*c));
	col_str(res, i, 1, c->serial, sizeof(c->serial));
	col_str(res, i, 2, c->ca_id, sizeof(c->ca_id));
	c->generation = (unsigned)col_i64(res, i, 3);
	col_str(res, i, 4, c->peer_uuid, sizeof(c->peer_uuid));
	col_str(res, i, 5, c->subject, sizeof(c->subject));
	c->not_before = col_i64(res, i, 6);
	c->not_after = col_i64(res, i, 7);
	col_str(res, i, 8, c->cert_sha256, sizeof(c->cert_sha256));
	col_str(res, i, 9, c->spki_sha256, sizeof(c->spki_sha256));
	col_str(res, i, 10, c->requester, sizeof(c->requester));
	c->requested_at = col_i64(res, i, 11);
	c->issued_at = col_i64(res, i, 12);
	c->state = cert_state_parse(PQgetvalue(res, i, 13));
	c->revoked_at = col_i64(res, i, 14);
	col_str(res, i, 15, c->revocation_reason, sizeof(c->revocation_reason));
	*der = NULL;
	if (with_der && !PQgetisnull(res, i, 16)) {
		if ((*der = col_bytes(res, i, 16, &c->cert_len)) == NULL)
			return SFTCA_ERR_NOMEM;
		c->cert_der = *der;
	}
	return 0;
}

/* Run a row query on the read connection and call fn for each row. */
static int rows_each(struct pg_ledger *l, const char *what, const char *sql, int n,
		     const char *const *p, int with_der, ledger_row_fn fn, void *arg,
		     int64_t *last_id, unsigned *count)
{
	PGresult *res;
	int r;

	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	res = pg_q(l, &l->r, what, sql, n, p, NULL);
	pthread_mutex_unlock(&l->r.mu);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		struct ledger_cert c;
		unsigned char *der;
		if ((r = row_from_result(res, i, &c, with_der, &der)) != 0)
			break;
		if (last_id)
			*last_id = col_i64(res, i, 0);
		if (count)
			(*count)++;
		r = fn(arg, &c);
		free(der);
	}
	PQclear(res);
	return r;
}

static int pg_revoked_by_key(struct ledger *base, const char *ca_id, const char *key_label,
			     ledger_row_fn fn, void *arg)
{
	char sql[1024];
	const char *p[2] = { ca_id, key_label };

	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM certificates c JOIN ca_generations g"
		 " ON c.ca_id = g.ca_id AND c.generation = g.generation"
		 " WHERE c.ca_id = $1 AND g.key_label = $2 AND c.state = 'revoked' ORDER BY c.id",
		 pg_row_columns);
	return rows_each((struct pg_ledger *)base, "reading revoked serials", sql, 2, p, 0, fn, arg,
			 NULL, NULL);
}

/* One query for the whole batch (a round trip per key was most of the
 * ledger's time in IssueBatch): the newest compromised row per key, then
 * each item's hit in item order, as the SQLite ledger reports them. */
static int pg_compromised_keys(struct ledger *base, const char *const *spki, size_t n,
			       ledger_hit_fn fn, void *arg)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	struct sbuf keys = { 0 };
	char sql[1024];
	const char *p[1];
	PGresult *res;
	size_t asked = 0;
	int r;

	sb_add(&keys, "{");
	for (size_t i = 0; i < n; i++)
		if (spki[i] != NULL) {
			arr_add(&keys, spki[i]);
			asked++;
		}
	sb_add(&keys, "}");
	if (keys.oom) {
		free(keys.p);
		return SFTCA_ERR_NOMEM;
	}
	if (asked == 0) {
		free(keys.p);
		return 0;
	}
	p[0] = keys.p;
	snprintf(sql, sizeof(sql),
		 "SELECT DISTINCT ON (c.spki_sha256) %s FROM certificates c"
		 " WHERE c.spki_sha256 = ANY($1::text[]) AND c.state = 'revoked'"
		 " AND c.revocation_reason = 'keyCompromise' ORDER BY c.spki_sha256, c.id DESC",
		 pg_row_columns);
	if ((r = pg_take(l, &l->r)) != 0) {
		free(keys.p);
		return r;
	}
	res = pg_q(l, &l->r, "looking up compromised keys", sql, 1, p, NULL);
	pthread_mutex_unlock(&l->r.mu);
	free(keys.p);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	/* Hits are rare (none in a healthy batch): a scan per item is enough. */
	for (size_t i = 0; r == 0 && i < n && PQntuples(res) > 0; i++) {
		if (spki[i] == NULL)
			continue;
		for (int j = 0; r == 0 && j < PQntuples(res); j++) {
			struct ledger_cert c;
			unsigned char *der;
			if (strcmp(PQgetvalue(res, j, 9), spki[i]) != 0)
				continue;
			if ((r = row_from_result(res, j, &c, 0, &der)) == 0)
				r = fn(arg, i, &c);
			break;
		}
	}
	PQclear(res);
	return r;
}

static int pg_list(struct ledger *base, const struct ledger_filter *f, ledger_row_fn fn, void *arg,
		   int64_t *last_rowid, unsigned *count)
{
	char sql[1024], after[24], limit[16];
	const char *p[6] = { after,
			     f->ca_id && f->ca_id[0] ? f->ca_id : NULL,
			     f->peer_uuid && f->peer_uuid[0] ? f->peer_uuid : NULL,
			     f->state != CERT_STATE_NONE ? cert_state_name(f->state) : NULL,
			     limit,
			     f->ca_scope };

	*count = 0;
	*last_rowid = f->after_rowid;
	fmt_i64(after, sizeof(after), f->after_rowid);
	snprintf(limit, sizeof(limit), "%u", f->limit);
	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM certificates c WHERE c.id > $1::bigint"
		 " AND ($2::text IS NULL OR c.ca_id = $2) AND ($3::text IS NULL OR c.peer_uuid = $3)"
		 " AND ($4::text IS NULL OR c.state = $4)"
		 " AND ($6::text IS NULL OR strpos($6, ',' || c.ca_id || ',') > 0)"
		 " ORDER BY c.id LIMIT $5::int",
		 pg_row_columns);
	return rows_each((struct pg_ledger *)base, "listing", sql, 6, p, f->with_der, fn, arg,
			 last_rowid, count);
}

/* One number from a one-row query on pc (0 when no row). */
static int query_u64(struct pg_ledger *l, struct pg_conn *pc, const char *what, const char *sql,
		     const char *ca_id, uint64_t *out)
{
	const char *p[1] = { ca_id };
	PGresult *res;
	int r;

	*out = 0;
	if ((r = pg_take(l, pc)) != 0)
		return r;
	res = pg_q(l, pc, what, sql, 1, p, NULL);
	pthread_mutex_unlock(&pc->mu);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	if (PQntuples(res) > 0)
		*out = (uint64_t)col_i64(res, 0, 0);
	PQclear(res);
	return 0;
}

static int pg_next_crl_number(struct ledger *base, const char *ca_id, uint64_t *number)
{
	struct pg_ledger *l = (struct pg_ledger *)base;

	/* One row per CA, updated in place under its row lock: two signers
	 * asking at once get two different, increasing numbers. */
	return query_u64(l, &l->w, "advancing the CRL number",
			 "INSERT INTO crl_numbers(ca_id, last) VALUES ($1, 1) ON CONFLICT (ca_id)"
			 " DO UPDATE SET last = crl_numbers.last + 1 RETURNING last",
			 ca_id, number);
}

static int pg_crl_last(struct ledger *base, const char *ca_id, uint64_t *last)
{
	struct pg_ledger *l = (struct pg_ledger *)base;

	return query_u64(l, &l->r, "reading the CRL number",
			 "SELECT last FROM crl_numbers WHERE ca_id = $1", ca_id, last);
}

static int check_der(void *arg, const struct ledger_cert *c)
{
	unsigned *problems = arg;
	X509 *x = c->cert_der ? x509_from_der(c->cert_der, c->cert_len) : NULL;
	char hex[80];

	if (x == NULL || x509_serial_hex(x, hex, sizeof(hex)) != 0 || strcmp(hex, c->serial) != 0) {
		log_error("ledger: serial %s (%s): certificate missing, unreadable or carrying "
			  "another serial",
			  c->serial, cert_state_name(c->state));
		(*problems)++;
	}
	X509_free(x);
	return 0;
}

static int pg_check(struct ledger *base, unsigned *problems)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	struct ledger_filter f = { .limit = 1000, .with_der = 1 };
	PGresult *res;
	unsigned count;
	int r;

	*problems = 0;
	if ((r = pg_take(l, &l->r)) != 0)
		return r;
	/* Pending rows of a live signer are being signed; a dead one's are
	 * abandoned by the next heartbeat: only those count. */
	res = pg_q(l, &l->r, "looking for stale pending serials",
		   "SELECT c.serial, c.instance_id FROM certificates c JOIN signers s"
		   " ON c.instance_id = s.instance_id WHERE c.state = 'pending'"
		   " AND s.lease_until < " DB_NOW,
		   0, NULL, NULL);
	pthread_mutex_unlock(&l->r.mu);
	if (res == NULL)
		return SFTCA_ERR_LEDGER;
	for (int i = 0; i < PQntuples(res); i++) {
		log_error("ledger: serial %s is still pending for signer %s, whose lease expired",
			  PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		(*problems)++;
	}
	PQclear(res);
	for (enum cert_state s = CERT_ISSUED; s <= CERT_REVOKED; s++) {
		f.state = s;
		f.after_rowid = 0;
		do {
			count = 0;
			if ((r = pg_list(base, &f, check_der, problems, &f.after_rowid, &count)) != 0)
				return r;
		} while (count == f.limit);
	}
	return 0;
}

/* --- moving a ledger in ------------------------------------------------------------------- */

static int import_cert(struct pg_ledger *l, const struct ledger_cert *c)
{
	char gen[16], nb[24], na[24], rq[24], ia[24], ra[24];
	char *der = c->cert_der ? bytea_text(c->cert_der, c->cert_len) : NULL;
	const char *p[16] = { c->serial, c->ca_id, gen, c->peer_uuid, c->subject, nb, na,
			      c->cert_sha256[0] ? c->cert_sha256 : NULL, c->spki_sha256,
			      c->requester, rq, c->issued_at ? ia : NULL, cert_state_name(c->state),
			      c->revoked_at ? ra : NULL,
			      c->revocation_reason[0] ? c->revocation_reason : NULL, der };
	int r;

	if (c->cert_der && der == NULL)
		return SFTCA_ERR_NOMEM;
	snprintf(gen, sizeof(gen), "%u", c->generation);
	fmt_i64(nb, sizeof(nb), c->not_before);
	fmt_i64(na, sizeof(na), c->not_after);
	fmt_i64(rq, sizeof(rq), c->requested_at);
	fmt_i64(ia, sizeof(ia), c->issued_at);
	fmt_i64(ra, sizeof(ra), c->revoked_at);
	r = pg_do(l, &l->w, "copying a certificate",
		  "INSERT INTO certificates(serial, ca_id, generation, peer_uuid, subject,"
		  " not_before, not_after, cert_sha256, spki_sha256, requester, requested_at,"
		  " issued_at, state, revoked_at, revocation_reason, cert_der) VALUES ($1, $2,"
		  " $3::int, $4, $5, $6::bigint, $7::bigint, $8, $9, $10, $11::bigint, $12::bigint,"
		  " $13, $14::bigint, $15, $16::bytea)",
		  16, p);
	free(der);
	return r;
}

static int pg_import(struct ledger *base, const struct ledger_import *im)
{
	struct pg_ledger *l = (struct pg_ledger *)base;
	PGresult *res;
	int r;

	if ((r = pg_take(l, &l->w)) != 0)
		return r;
	if ((r = pg_do(l, &l->w, "starting", "BEGIN", 0, NULL)) != 0 ||
	    (r = pg_do(l, &l->w, "locking the CA changes",
		       "SELECT pg_advisory_xact_lock(" ADMIN_LOCK_KEY ")", 0, NULL)) != 0)
		goto rollback;
	res = pg_q(l, &l->w, "looking at the database",
		   "SELECT (SELECT count(*) FROM ca_generations) + (SELECT count(*) FROM certificates)",
		   0, NULL, NULL);
	if (res == NULL) {
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	if (col_i64(res, 0, 0) > 0) {
		log_error("ledger %s already holds %s CA generations and certificates: copying "
			  "into it would mix two ledgers; use an empty database",
			  l->base.where, PQgetvalue(res, 0, 0));
		PQclear(res);
		r = SFTCA_ERR_EXISTS;
		goto rollback;
	}
	PQclear(res);
	for (size_t i = 0; i < im->ngens; i++)
		if ((r = gen_row_insert(l, &im->gens[i], im->gens[i].state)) != 0)
			goto rollback;
	for (size_t i = 0; i < im->ncustody; i++) {
		const struct ledger_custody_row *c = &im->custody[i];
		if ((r = custody_insert(l, c->ca_id, c->custody, c->changed_by, c->changed_at)) != 0)
			goto rollback;
	}
	for (size_t i = 0; i < im->ncerts; i++)
		if ((r = import_cert(l, &im->certs[i])) != 0)
			goto rollback;
	for (size_t i = 0; i < im->ncrls; i++) {
		char last[24];
		const char *p[2] = { im->crls[i].ca_id, last };
		snprintf(last, sizeof(last), "%llu", (unsigned long long)im->crls[i].last);
		if ((r = pg_do(l, &l->w, "copying a CRL number",
			       "INSERT INTO crl_numbers(ca_id, last) VALUES ($1, $2::bigint)", 2,
			       p)) != 0)
			goto rollback;
	}
	if ((r = pg_do(l, &l->w, "advancing the epochs", bump_ca, 0, NULL)) != 0 ||
	    (r = pg_do(l, &l->w, "advancing the epochs", bump_rev, 0, NULL)) != 0)
		goto rollback;
	r = pg_commit(l, &l->w);
	goto out;
rollback:
	pg_rollback(l, &l->w);
out:
	pthread_mutex_unlock(&l->w.mu);
	return r;
}

static const struct ledger_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.gen_insert = pg_gen_insert,
	.gens_load = pg_gens_load,
	.gen_set_state = pg_gen_set_state,
	.count_live_retiring = pg_count_live_retiring,
	.count_live_v1 = pg_count_live_v1,
	.custody_set = pg_custody_set,
	.custody_get = pg_custody_get,
	.reserve = pg_reserve,
	.complete = pg_complete,
	.revoke = pg_revoke,
	.revoked_by_key = pg_revoked_by_key,
	.compromised_keys = pg_compromised_keys,
	.list = pg_list,
	.next_crl_number = pg_next_crl_number,
	.crl_last = pg_crl_last,
	.check = pg_check,
	.epochs = pg_epochs,
	.admin_lock = pg_admin_lock,
	.admin_unlock = pg_admin_unlock,
	.import = pg_import,
};
