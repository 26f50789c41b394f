/* The SQLite ledger: one signer, state_dir/ledger.db. */
#include "ledger_int.h"

#include "errors.h"
#include "uuid.h"
#include "log.h"
#include "x509util.h"

#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct sq_ledger {
	struct ledger base;
	sqlite3 *db;       /* writer */
	sqlite3 *rdb;      /* reader: listing never blocks issuance (WAL) */
	pthread_mutex_t mu, rmu;
	sqlite3_stmt *ins_pending, *upd_issued, *upd_abandoned;
	char path[4096];
};

static const char *const schema[] = {
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
	"CREATE TABLE IF NOT EXISTS ca_generations ("
	" ca_id TEXT NOT NULL, generation INTEGER NOT NULL,"
	" state TEXT NOT NULL CHECK (state IN ('active','retiring','retired')),"
	" key_label TEXT NOT NULL, key_type TEXT NOT NULL, subject TEXT NOT NULL,"
	" serial TEXT NOT NULL, x509_version INTEGER NOT NULL,"
	" not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	" cert_der BLOB NOT NULL, imported INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL, created_by TEXT NOT NULL,"
	" state_changed_at INTEGER,"
	" PRIMARY KEY (ca_id, generation))",
	"CREATE UNIQUE INDEX IF NOT EXISTS one_active ON ca_generations(ca_id)"
	" WHERE state = 'active'",
	"CREATE TABLE IF NOT EXISTS certificates ("
	" serial TEXT PRIMARY KEY, ca_id TEXT NOT NULL, generation INTEGER NOT NULL,"
	" peer_uuid TEXT NOT NULL, subject TEXT NOT NULL,"
	" not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	" cert_sha256 TEXT, spki_sha256 TEXT NOT NULL,"
	" requester TEXT NOT NULL, requested_at INTEGER NOT NULL, issued_at INTEGER,"
	" state TEXT NOT NULL CHECK (state IN ('pending','issued','revoked','abandoned')),"
	" revoked_at INTEGER, revocation_reason TEXT, cert_der BLOB,"
	" FOREIGN KEY (ca_id, generation) REFERENCES ca_generations(ca_id, generation))",
	"CREATE INDEX IF NOT EXISTS certificates_ca ON certificates(ca_id, generation, state)",
	"CREATE INDEX IF NOT EXISTS certificates_peer ON certificates(peer_uuid)",
	"CREATE INDEX IF NOT EXISTS certificates_state ON certificates(state)",
	/* Keys revoked for keyCompromise are refused at issuance (issue 10). */
	"CREATE INDEX IF NOT EXISTS certificates_compromised ON certificates(spki_sha256)"
	" WHERE state = 'revoked' AND revocation_reason = 'keyCompromise'",
	"CREATE TABLE IF NOT EXISTS crl_numbers (ca_id TEXT PRIMARY KEY, last INTEGER NOT NULL)",
	/* Schema 2: every custody a CA has had; the newest row is the current one. */
	"CREATE TABLE IF NOT EXISTS ca_custody ("
	" ca_id TEXT NOT NULL, custody TEXT NOT NULL CHECK (custody IN ('shared','exclusive')),"
	" changed_at INTEGER NOT NULL, changed_by TEXT NOT NULL)",
	"CREATE INDEX IF NOT EXISTS ca_custody_ca ON ca_custody(ca_id)",
};

/* Schema 1 to 2: a CA without a custody row gets one. An imported CA is
 * 'shared' (the FMC may still hold its key and sign registrations with it:
 * the safe guess), one sftca created is 'exclusive'. */
static const char migrate_1_2[] =
	"INSERT INTO ca_custody(ca_id, custody, changed_at, changed_by)"
	" SELECT ca_id, CASE WHEN MAX(imported) = 1 THEN 'shared' ELSE 'exclusive' END,"
	" strftime('%s','now'), 'ledger migration to schema 2' FROM ca_generations"
	" WHERE ca_id NOT IN (SELECT ca_id FROM ca_custody) GROUP BY ca_id";

static int db_err(sqlite3 *db, const char *what)
{
	log_error("ledger: %s: %s", what, sqlite3_errmsg(db));
	return SFTCA_ERR_LEDGER;
}

static int exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("ledger: %s: %s", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return SFTCA_ERR_LEDGER;
	}
	return 0;
}

static int open_db(const char *path, int readonly, sqlite3 **db)
{
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

	if (sqlite3_open_v2(path, db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		log_error("ledger %s cannot be opened: %s", path,
			  *db ? sqlite3_errmsg(*db) : "out of memory");
		sqlite3_close(*db);
		*db = NULL;
		return SFTCA_ERR_LEDGER;
	}
	sqlite3_busy_timeout(*db, 10000);
	sqlite3_extended_result_codes(*db, 1);
	return 0;
}

static int schema_init(struct sq_ledger *l)
{
	sqlite3_stmt *st;
	int r, version = 0;

	if ((r = exec(l->db, "PRAGMA journal_mode=WAL")) != 0 ||
	    (r = exec(l->db, "PRAGMA synchronous=FULL")) != 0 ||
	    (r = exec(l->db, "PRAGMA foreign_keys=ON")) != 0 ||
	    (r = exec(l->db, "BEGIN IMMEDIATE")) != 0)
		return r;
	for (size_t i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
		if ((r = exec(l->db, schema[i])) != 0)
			goto rollback;
	if (sqlite3_prepare_v2(l->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
			       NULL) != SQLITE_OK) {
		r = db_err(l->db, "reading the schema version");
		goto rollback;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > LEDGER_SCHEMA_VERSION) {
		log_error("ledger %s has schema version %d; this signer knows up to %d: refusing "
			  "to touch it",
			  l->path, version, LEDGER_SCHEMA_VERSION);
		r = SFTCA_ERR_LEDGER;
		goto rollback;
	}
	if (version == 0 &&
	    (r = exec(l->db, "INSERT INTO meta(key, value) VALUES ('schema_version', '2')")) != 0)
		goto rollback;
	if (version == 1) {
		int cas;
		if ((r = exec(l->db, migrate_1_2)) != 0)
			goto rollback;
		cas = sqlite3_changes(l->db);
		if ((r = exec(l->db, "UPDATE meta SET value='2' WHERE key='schema_version'")) != 0)
			goto rollback;
		log_info("ledger %s migrated from schema 1 to 2: custody recorded for %d CA%s",
			 l->path, cas, cas == 1 ? "" : "s");
	}
	return exec(l->db, "COMMIT");
rollback:
	exec(l->db, "ROLLBACK");
	return r;
}

static int prepare(struct sq_ledger *l)
{
	if (sqlite3_prepare_v3(l->db,
			       "INSERT INTO certificates(serial, ca_id, generation, peer_uuid, subject,"
			       " not_before, not_after, spki_sha256, requester, requested_at, state)"
			       " VALUES (?,?,?,?,?,?,?,?,?,?,'pending')",
			       -1, SQLITE_PREPARE_PERSISTENT, &l->ins_pending, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(l->db,
			       "UPDATE certificates SET state='issued', cert_der=?, cert_sha256=?,"
			       " issued_at=?, not_before=?, not_after=?"
			       " WHERE serial=? AND state='pending'",
			       -1, SQLITE_PREPARE_PERSISTENT, &l->upd_issued, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v3(l->db,
			       "UPDATE certificates SET state='abandoned'"
			       " WHERE serial=? AND state='pending'",
			       -1, SQLITE_PREPARE_PERSISTENT, &l->upd_abandoned, NULL) != SQLITE_OK)
		return db_err(l->db, "preparing statements");
	return 0;
}

static const struct ledger_ops sq_ops;
static void sq_close(struct ledger *base);

int ledger_sqlite_open(const char *state_dir, struct ledger **out, int *abandoned)
{
	struct sq_ledger *l = calloc(1, sizeof(*l));
	int r;

	*out = NULL;
	if (l == NULL)
		return SFTCA_ERR_NOMEM;
	pthread_mutex_init(&l->mu, NULL);
	pthread_mutex_init(&l->rmu, NULL);
	l->base.ops = &sq_ops;
	snprintf(l->path, sizeof(l->path), "%s/ledger.db", state_dir);
	snprintf(l->base.where, sizeof(l->base.where), "%s", l->path);
	if ((r = uuid_random(l->base.instance)) != 0)
		goto fail;
	umask(077);
	if ((r = open_db(l->path, 0, &l->db)) != 0 || (r = schema_init(l)) != 0 ||
	    (r = prepare(l)) != 0 || (r = open_db(l->path, 1, &l->rdb)) != 0)
		goto fail;
	if ((r = exec(l->db, "UPDATE certificates SET state='abandoned' WHERE state='pending'")) != 0)
		goto fail;
	if (abandoned)
		*abandoned = sqlite3_changes(l->db);
	*out = &l->base;
	return 0;
fail:
	sq_close(&l->base);
	return r;
}

static void sq_close(struct ledger *base)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	if (l == NULL)
		return;
	sqlite3_finalize(l->ins_pending);
	sqlite3_finalize(l->upd_issued);
	sqlite3_finalize(l->upd_abandoned);
	sqlite3_close(l->rdb);
	sqlite3_close(l->db);
	pthread_mutex_destroy(&l->mu);
	pthread_mutex_destroy(&l->rmu);
	free(l);
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

/* Run one prepared statement to completion. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		if ((rc & 0xff) == SQLITE_CONSTRAINT)
			return SFTCA_ERR_EXISTS;
		return db_err(db, what);
	}
	return 0;
}

/* --- custody --------------------------------------------------------------- */

/* One custody row; the caller holds mu (and a transaction, if it wants one). */
static int custody_insert(struct sq_ledger *l, const char *ca_id, enum ca_custody c, const char *by,
			  int64_t at)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (c == CUSTODY_NONE)
		return SFTCA_ERR_INVALID;
	if (sqlite3_prepare_v2(l->db,
			       "INSERT INTO ca_custody(ca_id, custody, changed_at, changed_by)"
			       " VALUES (?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK)
		return db_err(l->db, "preparing");
	bind_text(st, 1, ca_id);
	bind_text(st, 2, custody_name(c));
	sqlite3_bind_int64(st, 3, at);
	bind_text(st, 4, by);
	r = step_done(l->db, st, "recording the CA custody");
	sqlite3_finalize(st);
	return r;
}

static int sq_custody_set(struct ledger *base, const char *ca_id, enum ca_custody c, const char *by,
		       int64_t at)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	int r;

	pthread_mutex_lock(&l->mu);
	r = custody_insert(l, ca_id, c, by, at);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_custody_get(struct ledger *base, const char *ca_id, enum ca_custody *c)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	*c = CUSTODY_NONE;
	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db,
			       "SELECT custody FROM ca_custody WHERE ca_id=? ORDER BY rowid DESC LIMIT 1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	bind_text(st, 1, ca_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((*c = custody_parse((const char *)sqlite3_column_text(st, 0))) == CUSTODY_NONE) {
			log_error("ledger: CA %s has an unknown custody '%s'", ca_id,
				  sqlite3_column_text(st, 0));
			r = SFTCA_ERR_LEDGER;
		}
	} else if (rc != SQLITE_DONE)
		r = db_err(l->db, "reading the CA custody");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

/* --- CA generations -------------------------------------------------------- */

static int sq_gen_insert(struct ledger *base, const struct ledger_gen *g, enum gen_state prev_state)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&l->mu);
	if ((r = exec(l->db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	if (prev_state != GEN_STATE_NONE) {
		if (sqlite3_prepare_v2(l->db,
				       "UPDATE ca_generations SET state=?, state_changed_at=?"
				       " WHERE ca_id=? AND state='active'",
				       -1, &st, NULL) != SQLITE_OK) {
			r = db_err(l->db, "preparing");
			goto rollback;
		}
		bind_text(st, 1, gen_state_name(prev_state));
		sqlite3_bind_int64(st, 2, g->created_at);
		bind_text(st, 3, g->ca_id);
		r = step_done(l->db, st, "retiring the previous generation");
		sqlite3_finalize(st);
		st = NULL;
		if (r != 0)
			goto rollback;
	}
	if (sqlite3_prepare_v2(l->db,
			       "INSERT INTO ca_generations(ca_id, generation, state, key_label, key_type,"
			       " subject, serial, x509_version, not_before, not_after, cert_der,"
			       " imported, created_at, created_by)"
			       " VALUES (?,?,'active',?,?,?,?,?,?,?,?,?,?,?)",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto rollback;
	}
	bind_text(st, 1, g->ca_id);
	sqlite3_bind_int(st, 2, (int)g->generation);
	bind_text(st, 3, g->key_label);
	bind_text(st, 4, g->key_type);
	bind_text(st, 5, g->subject);
	bind_text(st, 6, g->serial);
	sqlite3_bind_int(st, 7, g->x509_version);
	sqlite3_bind_int64(st, 8, g->not_before);
	sqlite3_bind_int64(st, 9, g->not_after);
	sqlite3_bind_blob(st, 10, g->cert_der, (int)g->cert_len, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 11, g->imported);
	sqlite3_bind_int64(st, 12, g->created_at);
	bind_text(st, 13, g->created_by);
	r = step_done(l->db, st, "recording the CA generation");
	sqlite3_finalize(st);
	if (r != 0)
		goto rollback;
	if (g->custody != CUSTODY_NONE &&
	    (r = custody_insert(l, g->ca_id, g->custody, g->created_by, g->created_at)) != 0)
		goto rollback;
	r = exec(l->db, "COMMIT");
	if (r == 0)
		goto out;
rollback:
	exec(l->db, "ROLLBACK");
out:
	pthread_mutex_unlock(&l->mu);
	return r;
}

static void copy_col(sqlite3_stmt *st, int i, char *dst, size_t len)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	snprintf(dst, len, "%s", s ? (const char *)s : "");
}

static int sq_gens_load(struct ledger *base, const char *ca_id, struct ledger_gen **gens, size_t *n)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	struct ledger_gen *v = NULL;
	size_t cap = 0, cnt = 0;
	int rc, r = 0;

	*gens = NULL;
	*n = 0;
	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db,
			       "SELECT ca_id, generation, state, key_label, key_type, subject, serial,"
			       " x509_version, not_before, not_after, cert_der, imported, created_at,"
			       " created_by FROM ca_generations WHERE ?1 IS NULL OR ca_id = ?1"
			       " ORDER BY ca_id, generation",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	if (ca_id)
		bind_text(st, 1, ca_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_gen *g;
		unsigned char *der;
		int dlen = sqlite3_column_bytes(st, 10);

		if (cnt == cap) {
			struct ledger_gen *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			if (nv == NULL) {
				r = SFTCA_ERR_NOMEM;
				goto out;
			}
			v = nv;
		}
		g = &v[cnt];
		memset(g, 0, sizeof(*g));
		copy_col(st, 0, g->ca_id, sizeof(g->ca_id));
		g->generation = (unsigned)sqlite3_column_int(st, 1);
		if ((g->state = gen_state_parse((const char *)sqlite3_column_text(st, 2))) ==
		    GEN_STATE_NONE) {
			log_error("ledger: CA %s generation %u has an unknown state '%s'", g->ca_id,
				  g->generation, sqlite3_column_text(st, 2));
			r = SFTCA_ERR_LEDGER;
			goto out;
		}
		copy_col(st, 3, g->key_label, sizeof(g->key_label));
		copy_col(st, 4, g->key_type, sizeof(g->key_type));
		copy_col(st, 5, g->subject, sizeof(g->subject));
		copy_col(st, 6, g->serial, sizeof(g->serial));
		g->x509_version = sqlite3_column_int(st, 7);
		g->not_before = sqlite3_column_int64(st, 8);
		g->not_after = sqlite3_column_int64(st, 9);
		if ((der = malloc(dlen > 0 ? (size_t)dlen : 1)) == NULL) {
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
		memcpy(der, sqlite3_column_blob(st, 10), (size_t)dlen);
		g->cert_der = der;
		g->cert_len = (size_t)dlen;
		g->imported = sqlite3_column_int(st, 11);
		g->created_at = sqlite3_column_int64(st, 12);
		copy_col(st, 13, g->created_by, sizeof(g->created_by));
		cnt++;
	}
	if (rc != SQLITE_DONE)
		r = db_err(l->db, "reading CA generations");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	if (r != 0) {
		ledger_gens_free(v, cnt);
		return r;
	}
	*gens = v;
	*n = cnt;
	return 0;
}

static int sq_gen_set_state(struct ledger *base, const char *ca_id, enum gen_state from,
			 enum gen_state to, int *changed)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db,
			       "UPDATE ca_generations SET state=?, state_changed_at=strftime('%s','now')"
			       " WHERE ca_id=? AND state=?",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	bind_text(st, 1, gen_state_name(to));
	bind_text(st, 2, ca_id);
	bind_text(st, 3, gen_state_name(from));
	r = step_done(l->db, st, "changing generation state");
	if (changed)
		*changed = sqlite3_changes(l->db);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

/* Peers whose newest certificate is an issued, unexpired leaf of ca_id
 * signed under a generation that `which` (an SQL condition on g, with ?2
 * bound to key_label) selects. */
static int count_live(struct sq_ledger *l, const char *ca_id, const char *which,
		      const char *key_label, int64_t now, uint64_t *count)
{
	sqlite3_stmt *st = NULL;
	char sql[1024];
	int r = 0;

	*count = 0;
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM certificates c JOIN ca_generations g"
		 " ON c.ca_id = g.ca_id AND c.generation = g.generation"
		 " WHERE c.ca_id=?1 AND (%s) AND c.state='issued' AND c.not_after > ?3"
		 /* only a peer's newest certificate counts: an older one it
		  * was already given a replacement for is not what it uses */
		 " AND c.rowid = (SELECT MAX(c2.rowid) FROM certificates c2"
		 "  WHERE c2.ca_id = c.ca_id AND c2.peer_uuid = c.peer_uuid"
		 "  AND c2.state IN ('issued','revoked'))",
		 which);
	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db, sql, -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	bind_text(st, 1, ca_id);
	bind_text(st, 2, key_label);
	sqlite3_bind_int64(st, 3, now);
	if (sqlite3_step(st) == SQLITE_ROW)
		*count = (uint64_t)sqlite3_column_int64(st, 0);
	else
		r = db_err(l->db, "counting live leaves");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_count_live_retiring(struct ledger *base, const char *ca_id, const char *active_key_label,
			       int64_t now, uint64_t *count)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	/* By key, not by generation: a renewal retires the generation it
	 * replaces at once, yet its leaves live on under the same key, which
	 * leaves the bundle only with the retiring generation holding it. */
	return count_live(l, ca_id,
			  "g.key_label IN (SELECT key_label FROM ca_generations"
			  " WHERE ca_id=?1 AND state='retiring') AND g.key_label<>?2",
			  active_key_label, now, count);
}

static int sq_count_live_v1(struct ledger *base, const char *ca_id, const char *key_label, int64_t now,
			 uint64_t *count)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	return count_live(l, ca_id, "g.x509_version=1 AND g.key_label=?2", key_label, now, count);
}

/* --- certificates ---------------------------------------------------------- */

static int sq_reserve(struct ledger *base, const struct ledger_cert *rows, size_t n)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = l->ins_pending;
	int r;

	pthread_mutex_lock(&l->mu);
	if ((r = exec(l->db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct ledger_cert *c = &rows[i];
		bind_text(st, 1, c->serial);
		bind_text(st, 2, c->ca_id);
		sqlite3_bind_int(st, 3, (int)c->generation);
		bind_text(st, 4, c->peer_uuid);
		bind_text(st, 5, c->subject);
		sqlite3_bind_int64(st, 6, c->not_before);
		sqlite3_bind_int64(st, 7, c->not_after);
		bind_text(st, 8, c->spki_sha256);
		bind_text(st, 9, c->requester);
		sqlite3_bind_int64(st, 10, c->requested_at);
		if ((r = step_done(l->db, st, "reserving serials")) != 0) {
			exec(l->db, "ROLLBACK");
			goto out;
		}
	}
	if ((r = exec(l->db, "COMMIT")) != 0)
		exec(l->db, "ROLLBACK");
out:
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_complete(struct ledger *base, const struct ledger_cert *rows, size_t n)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	int r;

	pthread_mutex_lock(&l->mu);
	if ((r = exec(l->db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct ledger_cert *c = &rows[i];
		if (c->cert_der != NULL) {
			sqlite3_stmt *st = l->upd_issued;
			sqlite3_bind_blob(st, 1, c->cert_der, (int)c->cert_len, SQLITE_STATIC);
			bind_text(st, 2, c->cert_sha256);
			sqlite3_bind_int64(st, 3, c->issued_at);
			sqlite3_bind_int64(st, 4, c->not_before);
			sqlite3_bind_int64(st, 5, c->not_after);
			bind_text(st, 6, c->serial);
			r = step_done(l->db, st, "recording issued certificates");
		} else {
			bind_text(l->upd_abandoned, 1, c->serial);
			r = step_done(l->db, l->upd_abandoned, "abandoning serials");
		}
	}
	if (r == 0 && (r = exec(l->db, "COMMIT")) == 0)
		goto out;
	exec(l->db, "ROLLBACK");
out:
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_revoke(struct ledger *base, const char *ca_id, const char *serial, const char *reason,
		  int64_t at, unsigned *generation, int (*before_commit)(void *arg, unsigned gen),
		  void *arg)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	enum cert_state state = CERT_STATE_NONE;
	int rc, r;

	pthread_mutex_lock(&l->mu);
	if ((r = exec(l->db, "BEGIN IMMEDIATE")) != 0)
		goto out;
	if (sqlite3_prepare_v2(l->db,
			       "SELECT state, generation FROM certificates WHERE serial=? AND ca_id=?",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto rollback;
	}
	bind_text(st, 1, serial);
	bind_text(st, 2, ca_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		state = cert_state_parse((const char *)sqlite3_column_text(st, 0));
		*generation = (unsigned)sqlite3_column_int(st, 1);
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_DONE) {
		r = SFTCA_ERR_NOT_FOUND;
		goto rollback;
	}
	if (rc != SQLITE_ROW) {
		r = db_err(l->db, "looking up the serial");
		goto rollback;
	}
	if (state != CERT_ISSUED) {
		r = SFTCA_ERR_PRECONDITION;
		goto rollback;
	}
	if (sqlite3_prepare_v2(l->db,
			       "UPDATE certificates SET state='revoked', revoked_at=?,"
			       " revocation_reason=? WHERE serial=? AND state='issued'",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, at);
	bind_text(st, 2, reason);
	bind_text(st, 3, serial);
	r = step_done(l->db, st, "revoking");
	sqlite3_finalize(st);
	if (r == 0 && before_commit != NULL)
		r = before_commit(arg, *generation);
	if (r == 0 && (r = exec(l->db, "COMMIT")) == 0)
		goto out;
rollback:
	exec(l->db, "ROLLBACK");
out:
	pthread_mutex_unlock(&l->mu);
	return r;
}

static const char row_columns[] =
	"c.rowid, c.serial, c.ca_id, c.generation, c.peer_uuid, c.subject, c.not_before,"
	" c.not_after, c.cert_sha256, c.spki_sha256, c.requester, c.requested_at, c.issued_at,"
	" c.state, c.revoked_at, c.revocation_reason, c.cert_der";

static void row_from_stmt(sqlite3_stmt *st, struct ledger_cert *c, int with_der)
{
	memset(c, 0, sizeof(*c));
	copy_col(st, 1, c->serial, sizeof(c->serial));
	copy_col(st, 2, c->ca_id, sizeof(c->ca_id));
	c->generation = (unsigned)sqlite3_column_int(st, 3);
	copy_col(st, 4, c->peer_uuid, sizeof(c->peer_uuid));
	copy_col(st, 5, c->subject, sizeof(c->subject));
	c->not_before = sqlite3_column_int64(st, 6);
	c->not_after = sqlite3_column_int64(st, 7);
	copy_col(st, 8, c->cert_sha256, sizeof(c->cert_sha256));
	copy_col(st, 9, c->spki_sha256, sizeof(c->spki_sha256));
	copy_col(st, 10, c->requester, sizeof(c->requester));
	c->requested_at = sqlite3_column_int64(st, 11);
	c->issued_at = sqlite3_column_int64(st, 12);
	c->state = cert_state_parse((const char *)sqlite3_column_text(st, 13));
	c->revoked_at = sqlite3_column_int64(st, 14);
	copy_col(st, 15, c->revocation_reason, sizeof(c->revocation_reason));
	if (with_der) {
		c->cert_der = sqlite3_column_blob(st, 16);
		c->cert_len = (size_t)sqlite3_column_bytes(st, 16);
	}
}

static int sq_revoked_by_key(struct ledger *base, const char *ca_id, const char *key_label,
			  ledger_row_fn fn, void *arg)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	char sql[1024];
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM certificates c JOIN ca_generations g"
		 " ON c.ca_id = g.ca_id AND c.generation = g.generation"
		 " WHERE c.ca_id=? AND g.key_label=? AND c.state='revoked' ORDER BY c.rowid",
		 row_columns);
	pthread_mutex_lock(&l->rmu);
	if (sqlite3_prepare_v2(l->rdb, sql, -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->rdb, "preparing");
		goto out;
	}
	bind_text(st, 1, ca_id);
	bind_text(st, 2, key_label);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_cert c;
		row_from_stmt(st, &c, 0);
		r = fn(arg, &c);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(l->rdb, "reading revoked serials");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->rmu);
	return r;
}

static int sq_compromised_keys(struct ledger *base, const char *const *spki, size_t n,
			    ledger_hit_fn fn, void *arg)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	char sql[1024];
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM certificates c WHERE c.spki_sha256 = ? AND c.state = 'revoked'"
		 " AND c.revocation_reason = 'keyCompromise' ORDER BY c.rowid DESC LIMIT 1",
		 row_columns);
	pthread_mutex_lock(&l->rmu);
	if (sqlite3_prepare_v2(l->rdb, sql, -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->rdb, "preparing");
		goto out;
	}
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (spki[i] == NULL)
			continue;
		sqlite3_reset(st);
		bind_text(st, 1, spki[i]);
		if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct ledger_cert c;
			row_from_stmt(st, &c, 0);
			r = fn(arg, i, &c);
		} else if (rc != SQLITE_DONE) {
			r = db_err(l->rdb, "looking up compromised keys");
		}
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->rmu);
	return r;
}

static int sq_list(struct ledger *base, const struct ledger_filter *f, ledger_row_fn fn, void *arg,
		int64_t *last_rowid, unsigned *count)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	char sql[1024];
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE, r = 0;

	*count = 0;
	*last_rowid = f->after_rowid;
	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM certificates c WHERE c.rowid > ?1"
		 " AND (?2 IS NULL OR c.ca_id = ?2) AND (?3 IS NULL OR c.peer_uuid = ?3)"
		 " AND (?4 IS NULL OR c.state = ?4)"
		 " AND (?6 IS NULL OR instr(?6, ',' || c.ca_id || ',') > 0)"
		 " ORDER BY c.rowid LIMIT ?5",
		 row_columns);
	pthread_mutex_lock(&l->rmu);
	if (sqlite3_prepare_v2(l->rdb, sql, -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->rdb, "preparing");
		goto out;
	}
	sqlite3_bind_int64(st, 1, f->after_rowid);
	if (f->ca_id && f->ca_id[0])
		bind_text(st, 2, f->ca_id);
	if (f->peer_uuid && f->peer_uuid[0])
		bind_text(st, 3, f->peer_uuid);
	if (f->state != CERT_STATE_NONE)
		bind_text(st, 4, cert_state_name(f->state));
	sqlite3_bind_int(st, 5, (int)f->limit);
	if (f->ca_scope)
		bind_text(st, 6, f->ca_scope);
	while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_cert c;
		row_from_stmt(st, &c, f->with_der);
		*last_rowid = sqlite3_column_int64(st, 0);
		(*count)++;
		r = fn(arg, &c);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = db_err(l->rdb, "listing");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->rmu);
	return r;
}

static int sq_next_crl_number(struct ledger *base, const char *ca_id, uint64_t *number)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int r;

	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db,
			       "INSERT INTO crl_numbers(ca_id, last) VALUES (?, 1)"
			       " ON CONFLICT(ca_id) DO UPDATE SET last = last + 1 RETURNING last",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	bind_text(st, 1, ca_id);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*number = (uint64_t)sqlite3_column_int64(st, 0);
		r = sqlite3_step(st) == SQLITE_DONE ? 0 : db_err(l->db, "advancing the CRL number");
	} else {
		r = db_err(l->db, "advancing the CRL number");
	}
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_check(struct ledger *base, unsigned *problems)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	*problems = 0;
	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		r = db_err(l->db, "integrity_check");
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		log_error("ledger: integrity_check: %s", sqlite3_column_text(st, 0));
		(*problems)++;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(l->db,
			       "SELECT serial, COUNT(*) FROM certificates GROUP BY serial"
			       " HAVING COUNT(*) > 1",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		log_error("ledger: serial %s appears %d times", sqlite3_column_text(st, 0),
			  sqlite3_column_int(st, 1));
		(*problems)++;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(l->db,
			       "SELECT serial, state, cert_der FROM certificates"
			       " WHERE state IN ('issued','revoked','pending')",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *serial = (const char *)sqlite3_column_text(st, 0);
		const char *state = (const char *)sqlite3_column_text(st, 1);
		X509 *x;
		char hex[80];

		if (cert_state_parse(state) == CERT_PENDING) {
			log_error("ledger: serial %s is still pending", serial);
			(*problems)++;
			continue;
		}
		x = x509_from_der(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
		if (x == NULL || x509_serial_hex(x, hex, sizeof(hex)) != 0 ||
		    strcmp(hex, serial) != 0) {
			log_error("ledger: serial %s (%s): certificate missing, unreadable or "
				  "carrying another serial",
				  serial, state);
			(*problems)++;
		}
		X509_free(x);
	}
	if (rc != SQLITE_DONE)
		r = db_err(l->db, "scanning certificates");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

/* --- moving to another ledger ---------------------------------------------- */

/* Grow *v (elements of size sz) to hold one more; NULL when out of memory. */
static void *grow(void **v, size_t *cap, size_t n, size_t sz)
{
	if (n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		void *nv = realloc(*v, nc * sz);
		if (nv == NULL)
			return NULL;
		*v = nv;
		*cap = nc;
	}
	return (char *)*v + n * sz;
}

static int dump_row(void *arg, const struct ledger_cert *row)
{
	struct { struct ledger_import *im; size_t cap; } *d = arg;
	struct ledger_cert *c = grow((void **)&d->im->certs, &d->cap, d->im->ncerts, sizeof(*c));
	unsigned char *der = NULL;

	if (c == NULL || (row->cert_len > 0 && (der = malloc(row->cert_len)) == NULL))
		return SFTCA_ERR_NOMEM;
	*c = *row;
	if (der != NULL)
		memcpy(der, row->cert_der, row->cert_len);
	c->cert_der = der;
	d->im->ncerts++;
	return 0;
}

static int sq_dump(struct ledger *base, struct ledger_import *im)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	struct { struct ledger_import *im; size_t cap; } d = { im, 0 };
	struct ledger_filter f = { .limit = 1000, .with_der = 1 };
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	unsigned count;
	int rc, r;

	memset(im, 0, sizeof(*im));
	if ((r = sq_gens_load(base, NULL, &im->gens, &im->ngens)) != 0)
		return r;
	do {
		if ((r = sq_list(base, &f, dump_row, &d, &f.after_rowid, &count)) != 0)
			return r;
	} while (count == f.limit);
	pthread_mutex_lock(&l->mu);
	if (sqlite3_prepare_v2(l->db,
			       "SELECT ca_id, custody, changed_at, changed_by FROM ca_custody"
			       " ORDER BY rowid",
			       -1, &st, NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_custody_row *c =
			grow((void **)&im->custody, &cap, im->ncustody, sizeof(*c));
		if (c == NULL) {
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
		copy_col(st, 0, c->ca_id, sizeof(c->ca_id));
		c->custody = custody_parse((const char *)sqlite3_column_text(st, 1));
		c->changed_at = sqlite3_column_int64(st, 2);
		copy_col(st, 3, c->changed_by, sizeof(c->changed_by));
		im->ncustody++;
	}
	if (rc != SQLITE_DONE) {
		r = db_err(l->db, "reading custody");
		goto out;
	}
	sqlite3_finalize(st);
	cap = 0;
	if (sqlite3_prepare_v2(l->db, "SELECT ca_id, last FROM crl_numbers ORDER BY ca_id", -1, &st,
			       NULL) != SQLITE_OK) {
		r = db_err(l->db, "preparing");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ledger_crl_row *c = grow((void **)&im->crls, &cap, im->ncrls, sizeof(*c));
		if (c == NULL) {
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
		copy_col(st, 0, c->ca_id, sizeof(c->ca_id));
		c->last = (uint64_t)sqlite3_column_int64(st, 1);
		im->ncrls++;
	}
	if (rc != SQLITE_DONE)
		r = db_err(l->db, "reading CRL numbers");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->mu);
	return r;
}

static int sq_crl_last(struct ledger *base, const char *ca_id, uint64_t *last)
{
	struct sq_ledger *l = (struct sq_ledger *)base;
	sqlite3_stmt *st = NULL;
	int rc, r = 0;

	*last = 0;
	pthread_mutex_lock(&l->rmu);
	if (sqlite3_prepare_v2(l->rdb, "SELECT last FROM crl_numbers WHERE ca_id = ?", -1, &st,
			       NULL) != SQLITE_OK) {
		r = db_err(l->rdb, "preparing");
		goto out;
	}
	bind_text(st, 1, ca_id);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*last = (uint64_t)sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		r = db_err(l->rdb, "reading the CRL number");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&l->rmu);
	return r;
}

static const struct ledger_ops sq_ops = {
	.name = "sqlite",
	.close = sq_close,
	.gen_insert = sq_gen_insert,
	.gens_load = sq_gens_load,
	.gen_set_state = sq_gen_set_state,
	.count_live_retiring = sq_count_live_retiring,
	.count_live_v1 = sq_count_live_v1,
	.custody_set = sq_custody_set,
	.custody_get = sq_custody_get,
	.reserve = sq_reserve,
	.complete = sq_complete,
	.revoke = sq_revoke,
	.revoked_by_key = sq_revoked_by_key,
	.compromised_keys = sq_compromised_keys,
	.list = sq_list,
	.next_crl_number = sq_next_crl_number,
	.crl_last = sq_crl_last,
	.check = sq_check,
	.dump = sq_dump,
};
