/* Ledger: a fresh ledger in a temp dir (no token). Serials go pending ->
 * issued | abandoned, a restart abandons what was left pending, a serial is
 * never written twice, revocation and the keyCompromise lookup, the CRL
 * number, the integrity check, and the states' names in storage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sqlite3.h>

#include "errors.h"
#include "tmpdir.h"
#include "ledger.h"
#include "x509util.h"

#define CA "3f1e1a52-8d0b-4c41-9b7e-0a4c1f3b2d10"
#define OTHER_CA "9a0c7e7e-2b61-4d7c-8f0e-5d1c2b3a4f59"

static char dir[64];
static EVP_PKEY *key;

struct der {
	unsigned char *p;
	int len;
	char serial[80];
};

/* A certificate with this serial, as the ledger would be given it. */
static struct der make_der(long serial)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);
	struct der d = { NULL, 0, "" };

	assert_non_null(x);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"t", -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	assert_int_equal(x509_serial_hex(x, d.serial, sizeof(d.serial)), 0);
	assert_true((d.len = i2d_X509(x, &d.p)) > 0);
	X509_free(x);
	return d;
}

static int setup(void **state)
{
	(void)state;
	tmpdir_make(dir, "ledger");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static struct ledger *open_fresh(void)
{
	struct ledger *l = NULL;
	int abandoned = -1;

	assert_int_equal(ledger_open(dir, &l, &abandoned), 0);
	assert_non_null(l);
	assert_int_equal(abandoned, 0);
	return l;
}

static void add_gen(struct ledger *l, const char *ca_id, unsigned generation, const char *label)
{
	struct der d = make_der(1);
	struct ledger_gen g = { .generation = generation, .x509_version = 3, .not_before = 1,
				.not_after = 4000000000, .created_at = 1 };

	snprintf(g.ca_id, sizeof(g.ca_id), "%s", ca_id);
	snprintf(g.key_label, sizeof(g.key_label), "%s", label);
	snprintf(g.key_type, sizeof(g.key_type), "ec-p256");
	snprintf(g.subject, sizeof(g.subject), "CN=test CA");
	snprintf(g.serial, sizeof(g.serial), "%s", d.serial);
	snprintf(g.created_by, sizeof(g.created_by), "unit");
	g.cert_der = d.p;
	g.cert_len = (size_t)d.len;
	assert_int_equal(ledger_gen_insert(l, &g, generation > 1 ? GEN_RETIRING : GEN_STATE_NONE), 0);
	OPENSSL_free(d.p);
}

static struct ledger_cert row(const char *serial, const char *peer, const char *spki)
{
	struct ledger_cert c = { .generation = 1, .not_before = 1, .not_after = 4000000000,
				 .requested_at = 100 };

	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.ca_id, sizeof(c.ca_id), CA);
	snprintf(c.peer_uuid, sizeof(c.peer_uuid), "%s", peer);
	snprintf(c.subject, sizeof(c.subject), "CN=%s", peer);
	snprintf(c.spki_sha256, sizeof(c.spki_sha256), "%s", spki);
	snprintf(c.requester, sizeof(c.requester), "unit");
	return c;
}

/* ledger_list collects states by serial. */
struct seen {
	unsigned n;
	char serial[8][80], state[8][12], reason[8][32];
};

static int collect(void *arg, const struct ledger_cert *c)
{
	struct seen *s = arg;

	assert_true(s->n < 8);
	snprintf(s->serial[s->n], sizeof(s->serial[0]), "%s", c->serial);
	snprintf(s->state[s->n], sizeof(s->state[0]), "%s", cert_state_name(c->state));
	snprintf(s->reason[s->n], sizeof(s->reason[0]), "%s", c->revocation_reason);
	s->n++;
	return 0;
}

static struct seen list(struct ledger *l, const char *state)
{
	struct ledger_filter f = { .state = cert_state_parse(state), .limit = 100 };
	struct seen s = { 0 };
	int64_t last;
	unsigned count;

	assert_int_equal(ledger_list(l, &f, collect, &s, &last, &count), 0);
	assert_int_equal(count, s.n);
	return s;
}

static const char *state_of(struct ledger *l, const char *serial)
{
	static char st[12];
	struct seen s = list(l, NULL);

	for (unsigned i = 0; i < s.n; i++)
		if (strcmp(s.serial[i], serial) == 0)
			return memcpy(st, s.state[i], sizeof(st));
	return "(none)";
}

static unsigned problems(struct ledger *l)
{
	unsigned p = 99;

	assert_int_equal(ledger_check(l, &p), 0);
	return p;
}

#define SPKI_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SPKI_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define SPKI_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void mark_issued(struct ledger_cert *c, const struct der *d)
{
	c->cert_der = d->p;
	c->cert_len = (size_t)d->len;
	c->issued_at = 200;
	snprintf(c->cert_sha256, sizeof(c->cert_sha256), SPKI_C);
}

static void pending_issued_abandoned(void **state)
{
	struct ledger *l = open_fresh();
	struct der d1 = make_der(0x1001), d3 = make_der(0x1003);
	struct ledger_cert rows[3] = { row(d1.serial, "peer-1", SPKI_A), row("1002", "peer-2", SPKI_A),
				       row(d3.serial, "peer-3", SPKI_B) };

	(void)state;
	add_gen(l, CA, 1, "key-1");
	assert_int_equal(problems(l), 0);
	assert_int_equal(ledger_reserve(l, rows, 3), 0);
	assert_int_equal(list(l, "pending").n, 3);
	/* pending rows are a problem: a signer stopped in mid-batch */
	assert_int_equal(problems(l), 3);

	mark_issued(&rows[0], &d1);
	assert_int_equal(ledger_complete(l, rows, 2), 0);
	assert_string_equal(state_of(l, d1.serial), "issued");
	assert_string_equal(state_of(l, "1002"), "abandoned");
	assert_string_equal(state_of(l, d3.serial), "pending");
	assert_int_equal(problems(l), 1);

	/* only pending rows change: an abandoned serial is never issued later */
	mark_issued(&rows[1], &d3);
	assert_int_equal(ledger_complete(l, &rows[1], 1), 0);
	assert_string_equal(state_of(l, "1002"), "abandoned");

	mark_issued(&rows[2], &d3);
	assert_int_equal(ledger_complete(l, &rows[2], 1), 0);
	assert_string_equal(state_of(l, d3.serial), "issued");
	assert_int_equal(problems(l), 0);
	assert_int_equal(list(l, "issued").n, 2);
	ledger_close(l);
	OPENSSL_free(d1.p);
	OPENSSL_free(d3.p);
}

static void restart_abandons_pending(void **state)
{
	struct ledger *l = open_fresh();
	struct ledger_cert rows[2] = { row("2001", "peer-1", SPKI_A), row("2002", "peer-2", SPKI_A) };
	int abandoned = -1;

	(void)state;
	add_gen(l, CA, 1, "key-1");
	assert_int_equal(ledger_reserve(l, rows, 2), 0);
	ledger_close(l); /* as a crash would leave it */

	assert_int_equal(ledger_open(dir, &l, &abandoned), 0);
	assert_int_equal(abandoned, 2);
	assert_int_equal(list(l, "pending").n, 0);
	assert_int_equal(list(l, "abandoned").n, 2);
	/* an abandoned serial stays taken */
	assert_int_equal(ledger_reserve(l, rows, 1), SFTCA_ERR_EXISTS);
	ledger_close(l);

	assert_int_equal(ledger_open(dir, &l, &abandoned), 0);
	assert_int_equal(abandoned, 0);
	assert_int_equal(list(l, "abandoned").n, 2);
	ledger_close(l);
}

static void serial_reused_refused(void **state)
{
	struct ledger *l = open_fresh();
	struct ledger_cert a = row("3001", "peer-1", SPKI_A);
	struct ledger_cert batch[2] = { row("3002", "peer-2", SPKI_A), row("3001", "peer-3", SPKI_B) };

	(void)state;
	add_gen(l, CA, 1, "key-1");
	assert_int_equal(ledger_reserve(l, &a, 1), 0);
	/* one taken serial refuses the whole batch: 3002 is not written either */
	assert_int_equal(ledger_reserve(l, batch, 2), SFTCA_ERR_EXISTS);
	assert_int_equal(list(l, NULL).n, 1);
	assert_string_equal(state_of(l, "3002"), "(none)");
	/* and the ledger still takes the next batch */
	assert_int_equal(ledger_reserve(l, batch, 1), 0);
	assert_int_equal(list(l, "pending").n, 2);
	ledger_close(l);
}

static int refuse_commit(void *arg, unsigned gen)
{
	*(unsigned *)arg = gen;
	return SFTCA_ERR_IO;
}

static int count_rows(void *arg, const struct ledger_cert *c)
{
	(void)c;
	(*(unsigned *)arg)++;
	return 0;
}

static void revoke(void **state)
{
	struct ledger *l = open_fresh();
	struct der d = make_der(0x4001);
	struct ledger_cert rows[2] = { row(d.serial, "peer-1", SPKI_A), row("4002", "peer-2", SPKI_A) };
	unsigned gen = 0, seen = 0, n = 0;

	(void)state;
	add_gen(l, CA, 1, "key-1");
	add_gen(l, CA, 2, "key-2");
	rows[0].generation = rows[1].generation = 2;
	assert_int_equal(ledger_reserve(l, rows, 2), 0);
	mark_issued(&rows[0], &d);
	assert_int_equal(ledger_complete(l, rows, 2), 0);

	assert_int_equal(ledger_revoke(l, CA, "FFFF", "superseded", 300, &gen, NULL, NULL),
			 SFTCA_ERR_NOT_FOUND);
	assert_int_equal(ledger_revoke(l, OTHER_CA, d.serial, "superseded", 300, &gen, NULL, NULL),
			 SFTCA_ERR_NOT_FOUND);
	assert_int_equal(ledger_revoke(l, CA, "4002", "superseded", 300, &gen, NULL, NULL),
			 SFTCA_ERR_PRECONDITION);
	/* the CRL could not be written: nothing is revoked */
	assert_int_equal(ledger_revoke(l, CA, d.serial, "superseded", 300, &gen, refuse_commit, &seen),
			 SFTCA_ERR_IO);
	assert_int_equal(seen, 2);
	assert_string_equal(state_of(l, d.serial), "issued");

	assert_int_equal(ledger_revoke(l, CA, d.serial, "superseded", 300, &gen, NULL, NULL), 0);
	assert_int_equal(gen, 2);
	assert_string_equal(state_of(l, d.serial), "revoked");
	assert_string_equal(list(l, "revoked").reason[0], "superseded");
	assert_int_equal(ledger_revoke(l, CA, d.serial, "superseded", 301, &gen, NULL, NULL),
			 SFTCA_ERR_PRECONDITION);

	assert_int_equal(ledger_revoked_by_key(l, CA, "key-2", count_rows, &n), 0);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(ledger_revoked_by_key(l, CA, "key-1", count_rows, &n), 0);
	assert_int_equal(n, 0);
	/* a revoked row with its certificate is sound */
	assert_int_equal(problems(l), 0);
	ledger_close(l);
	OPENSSL_free(d.p);
}

struct hits {
	unsigned n;
	size_t i[4];
	char serial[4][80];
};

static int hit(void *arg, size_t i, const struct ledger_cert *c)
{
	struct hits *h = arg;

	assert_true(h->n < 4);
	h->i[h->n] = i;
	snprintf(h->serial[h->n], sizeof(h->serial[0]), "%s", c->serial);
	h->n++;
	return 0;
}

static void compromised_keys(void **state)
{
	struct ledger *l = open_fresh();
	struct der d[3] = { make_der(0x5001), make_der(0x5002), make_der(0x5003) };
	struct ledger_cert rows[3] = { row(d[0].serial, "peer-1", SPKI_A),
				       row(d[1].serial, "peer-1", SPKI_A),
				       row(d[2].serial, "peer-2", SPKI_B) };
	const char *ask[4] = { SPKI_A, NULL, SPKI_B, SPKI_C };
	struct hits h = { 0 };
	unsigned gen;

	(void)state;
	add_gen(l, CA, 1, "key-1");
	add_gen(l, OTHER_CA, 1, "key-o");
	snprintf(rows[1].ca_id, sizeof(rows[1].ca_id), OTHER_CA);
	assert_int_equal(ledger_reserve(l, rows, 3), 0);
	for (int i = 0; i < 3; i++)
		mark_issued(&rows[i], &d[i]);
	assert_int_equal(ledger_complete(l, rows, 3), 0);

	assert_int_equal(ledger_compromised_keys(l, ask, 4, hit, &h), 0);
	assert_int_equal(h.n, 0);

	/* B revoked for another reason does not count; A under any CA does,
	 * and the newest such row is the one named */
	assert_int_equal(ledger_revoke(l, CA, d[2].serial, "superseded", 1, &gen, NULL, NULL), 0);
	assert_int_equal(ledger_revoke(l, CA, d[0].serial, "keyCompromise", 1, &gen, NULL, NULL), 0);
	assert_int_equal(ledger_revoke(l, OTHER_CA, d[1].serial, "keyCompromise", 1, &gen, NULL, NULL),
			 0);
	assert_int_equal(ledger_compromised_keys(l, ask, 4, hit, &h), 0);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.i[0], 0);
	assert_string_equal(h.serial[0], d[1].serial);
	ledger_close(l);
	for (int i = 0; i < 3; i++)
		OPENSSL_free(d[i].p);
}

static void check_finds_wrong_certificate(void **state)
{
	struct ledger *l = open_fresh();
	struct der d = make_der(0x6001), other = make_der(0x6999);
	struct ledger_cert rows[2] = { row(d.serial, "peer-1", SPKI_A), row("6002", "peer-2", SPKI_A) };
	unsigned char junk[] = { 0x30, 0x03, 0x02, 0x01, 0x01 };

	(void)state;
	add_gen(l, CA, 1, "key-1");
	assert_int_equal(ledger_reserve(l, rows, 2), 0);
	mark_issued(&rows[0], &other); /* the DER of another serial */
	rows[1].cert_der = junk;
	rows[1].cert_len = sizeof(junk);
	assert_int_equal(ledger_complete(l, rows, 2), 0);
	assert_int_equal(problems(l), 2);
	ledger_close(l);
	OPENSSL_free(d.p);
	OPENSSL_free(other.p);
}

static void crl_numbers(void **state)
{
	struct ledger *l = open_fresh();
	uint64_t n = 0;

	(void)state;
	assert_int_equal(ledger_next_crl_number(l, CA, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ledger_next_crl_number(l, CA, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ledger_next_crl_number(l, OTHER_CA, &n), 0);
	assert_int_equal(n, 1);
	ledger_close(l);
	/* persisted: a restart never hands out a number twice */
	assert_int_equal(ledger_open(dir, &l, NULL), 0);
	assert_int_equal(ledger_next_crl_number(l, CA, &n), 0);
	assert_int_equal(n, 3);
	ledger_close(l);
}

/* What a column of the ledger holds, straight from SQLite: the text the
 * enums stand for must stay what older signers wrote. */
static const char *raw(const char *sql)
{
	static char out[256];
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return out;
}

static void state_names(void **state)
{
	static const char *const gens[] = { "active", "retiring", "retired" };
	static const char *const certs[] = { "pending", "issued", "revoked", "abandoned" };
	struct ledger *l = open_fresh();
	struct ledger_cert c = row("5001", "peer-1", SPKI_A);
	struct ledger_gen *g = NULL;
	size_t n = 0;
	int changed = 0;

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		assert_string_equal(gen_state_name(gen_state_parse(gens[i])), gens[i]);
		assert_int_equal(gen_state_parse(gens[i]), GEN_ACTIVE + i);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_string_equal(cert_state_name(cert_state_parse(certs[i])), certs[i]);
		assert_int_equal(cert_state_parse(certs[i]), CERT_PENDING + i);
	}
	assert_int_equal(gen_state_parse("Active"), GEN_STATE_NONE);
	assert_int_equal(gen_state_parse("none"), GEN_STATE_NONE);
	assert_int_equal(gen_state_parse(NULL), GEN_STATE_NONE);
	assert_int_equal(cert_state_parse("issued "), CERT_STATE_NONE);
	assert_int_equal(cert_state_parse(""), CERT_STATE_NONE);
	assert_string_equal(gen_state_name((enum gen_state)99), "none");
	assert_string_equal(cert_state_name((enum cert_state)99), "none");

	add_gen(l, CA, 1, "key-1");
	add_gen(l, CA, 2, "key-2");
	assert_string_equal(raw("SELECT group_concat(state) FROM (SELECT state FROM ca_generations"
				" ORDER BY generation)"),
			    "retiring,active");
	assert_int_equal(ledger_gen_set_state(l, CA, GEN_RETIRING, GEN_RETIRED, &changed), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(ledger_gen_set_state(l, CA, GEN_RETIRING, GEN_RETIRED, &changed), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(raw("SELECT state FROM ca_generations WHERE generation = 1"), "retired");
	assert_int_equal(ledger_gens_load(l, CA, &g, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(g[0].state, GEN_RETIRED);
	assert_int_equal(g[1].state, GEN_ACTIVE);
	ledger_gens_free(g, n);

	assert_int_equal(ledger_reserve(l, &c, 1), 0);
	assert_string_equal(raw("SELECT state FROM certificates WHERE serial = '5001'"), "pending");
	assert_int_equal(list(l, "pending").n, 1);
	assert_int_equal(list(l, "issued").n, 0);
	ledger_close(l);
}

/* Run sql on the ledger file directly, as an older signer or an operator would. */
static void raw_exec(const char *sql)
{
	char path[128];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/ledger.db", dir);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A schema 1 ledger (before custody) opened by this signer: each CA gets
 * the custody its origin implies, the version becomes 2, and a second open
 * adds nothing. */
static void custody_migration(void **state)
{
	struct ledger *l = open_fresh();
	enum ca_custody c = CUSTODY_NONE;

	(void)state;
	add_gen(l, CA, 1, "key-1");
	add_gen(l, OTHER_CA, 1, "key-o");
	ledger_close(l);
	/* What schema 1 was: no ca_custody table, version 1; CA was imported. */
	raw_exec("DROP TABLE ca_custody; UPDATE meta SET value='1' WHERE key='schema_version';"
		 "UPDATE ca_generations SET imported=1 WHERE ca_id='" CA "'");
	assert_string_equal(raw("SELECT count(*) FROM sqlite_master WHERE name='ca_custody'"), "0");

	l = open_fresh();
	assert_string_equal(raw("SELECT value FROM meta WHERE key='schema_version'"), "2");
	assert_int_equal(ledger_custody_get(l, CA, &c), 0);
	assert_int_equal(c, CUSTODY_SHARED);
	assert_int_equal(ledger_custody_get(l, OTHER_CA, &c), 0);
	assert_int_equal(c, CUSTODY_EXCLUSIVE);
	assert_string_equal(raw("SELECT changed_by FROM ca_custody WHERE ca_id='" CA "'"),
			    "ledger migration to schema 2");
	ledger_close(l);
	l = open_fresh();
	assert_string_equal(raw("SELECT count(*) FROM ca_custody"), "2");
	ledger_close(l);

	/* A ledger from a newer signer is left alone. */
	raw_exec("UPDATE meta SET value='3' WHERE key='schema_version'");
	l = NULL;
	assert_int_equal(ledger_open(dir, &l, NULL), SFTCA_ERR_LEDGER);
	assert_null(l);
}

/* A new CA's custody is written with its first generation; each change is a
 * row (who, when), the newest one counts. */
static void custody_history(void **state)
{
	struct ledger *l = open_fresh();
	struct der d = make_der(7);
	struct ledger_gen g = { .generation = 1, .x509_version = 3, .not_before = 1,
				.not_after = 4000000000, .created_at = 10,
				.custody = CUSTODY_EXCLUSIVE };
	enum ca_custody c = CUSTODY_SHARED;

	(void)state;
	assert_string_equal(custody_name(custody_parse("shared")), "shared");
	assert_int_equal(custody_parse("exclusive"), CUSTODY_EXCLUSIVE);
	assert_int_equal(custody_parse("Shared"), CUSTODY_NONE);
	assert_int_equal(custody_parse(NULL), CUSTODY_NONE);
	assert_string_equal(custody_name((enum ca_custody)9), "none");

	assert_int_equal(ledger_custody_get(l, CA, &c), 0);
	assert_int_equal(c, CUSTODY_NONE);
	snprintf(g.ca_id, sizeof(g.ca_id), CA);
	snprintf(g.key_label, sizeof(g.key_label), "key-1");
	snprintf(g.key_type, sizeof(g.key_type), "ec-p256");
	snprintf(g.subject, sizeof(g.subject), "CN=test CA");
	snprintf(g.serial, sizeof(g.serial), "%s", d.serial);
	snprintf(g.created_by, sizeof(g.created_by), "cn=ops-admin");
	g.cert_der = d.p;
	g.cert_len = (size_t)d.len;
	assert_int_equal(ledger_gen_insert(l, &g, GEN_STATE_NONE), 0);
	OPENSSL_free(d.p);
	assert_int_equal(ledger_custody_get(l, CA, &c), 0);
	assert_int_equal(c, CUSTODY_EXCLUSIVE);
	assert_string_equal(raw("SELECT changed_by || ' ' || changed_at FROM ca_custody"),
			    "cn=ops-admin 10");

	assert_int_equal(ledger_custody_set(l, CA, CUSTODY_SHARED, "cn=other-admin", 20), 0);
	assert_int_equal(ledger_custody_get(l, CA, &c), 0);
	assert_int_equal(c, CUSTODY_SHARED);
	assert_int_equal(ledger_custody_set(l, CA, CUSTODY_NONE, "cn=other-admin", 30),
			 SFTCA_ERR_INVALID);
	assert_string_equal(raw("SELECT group_concat(custody || ':' || changed_by) FROM"
				" (SELECT * FROM ca_custody ORDER BY rowid)"),
			    "exclusive:cn=ops-admin,shared:cn=other-admin");
	ledger_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(pending_issued_abandoned, setup, teardown),
		cmocka_unit_test_setup_teardown(restart_abandons_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(serial_reused_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(compromised_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(check_finds_wrong_certificate, setup, teardown),
		cmocka_unit_test_setup_teardown(crl_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(state_names, setup, teardown),
		cmocka_unit_test_setup_teardown(custody_migration, setup, teardown),
		cmocka_unit_test_setup_teardown(custody_history, setup, teardown),
	};
	int r;

	key = EVP_EC_gen("P-256");
	if (key == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(key);
	return r;
}
