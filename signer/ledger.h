/* The ledger: every CA generation and every certificate serial, in SQLite
 * (WAL, synchronous=FULL) in the state directory, or in PostgreSQL shared by
 * several signers ([ledger] url). Serials are written as 'pending' before
 * the token signs them and become 'issued' with the certificate after; rows
 * a dead signer left pending (a crash) become 'abandoned' and are never
 * reused: at start-up under SQLite, once the signer's lease has expired
 * under PostgreSQL. */
#ifndef SFTCA_LEDGER_H
#define SFTCA_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* 2: ca_custody (issue 13). Version 1 ledgers are migrated on open. */
#define LEDGER_SCHEMA_VERSION 2

struct ledger;

/* States are enums in the code and text only in the database: the names
 * below are what the ledger stores, and *_parse is the one way back. */
enum gen_state { GEN_STATE_NONE = 0, GEN_ACTIVE, GEN_RETIRING, GEN_RETIRED };
enum cert_state { CERT_STATE_NONE = 0, CERT_PENDING, CERT_ISSUED, CERT_REVOKED, CERT_ABANDONED };

/* The stored name ("active", "retiring", "retired"); "none" for GEN_STATE_NONE. */
const char *gen_state_name(enum gen_state s);
/* GEN_STATE_NONE when s is not a stored name. */
enum gen_state gen_state_parse(const char *s);
/* The stored name ("pending", "issued", "revoked", "abandoned"); "none" for CERT_STATE_NONE. */
const char *cert_state_name(enum cert_state s);
/* CERT_STATE_NONE when s is not a stored name. */
enum cert_state cert_state_parse(const char *s);

/* Who holds a CA's key besides the token (issue 13): 'shared' when the FMC
 * kept its copy after an import (it signs device registrations with it),
 * 'exclusive' when the token holds the only copy. */
enum ca_custody { CUSTODY_NONE = 0, CUSTODY_SHARED, CUSTODY_EXCLUSIVE };
/* "shared", "exclusive"; "none" for CUSTODY_NONE. */
const char *custody_name(enum ca_custody c);
/* CUSTODY_NONE when s is not a stored name. */
enum ca_custody custody_parse(const char *s);

struct ledger_gen {
	char ca_id[40];
	unsigned generation;
	enum gen_state state;
	char key_label[128];
	char key_type[16];
	char subject[512];
	char serial[80];
	int x509_version;
	int64_t not_before, not_after, created_at;
	int imported;
	const unsigned char *cert_der; /* borrowed on insert; owned by the list on read */
	size_t cert_len;
	char created_by[192];
	/* On insert only: when not NONE, the CA's custody is recorded in the
	 * same transaction (a new CA). Not filled on read. */
	enum ca_custody custody;
};

struct ledger_cert {
	char serial[80];
	char ca_id[40];
	unsigned generation;
	char peer_uuid[40];
	char subject[512];
	int64_t not_before, not_after;
	char spki_sha256[65];
	char cert_sha256[65];
	char requester[192];
	int64_t requested_at, issued_at;
	enum cert_state state;
	int64_t revoked_at;
	char revocation_reason[32];
	const unsigned char *cert_der;
	size_t cert_len;
};

struct ledger_opts {
	const char *state_dir;     /* SQLite: state_dir/ledger.db */
	const char *url;           /* a libpq URI: PostgreSQL; NULL: SQLite */
	const char *password_file; /* PostgreSQL: the password, mode-checked like the PIN */
	unsigned lease_seconds;    /* PostgreSQL: a signer silent this long is dead (30) */
};

/* Open (creating or migrating the schema) the ledger o names; turns
 * 'pending' rows of dead signers into 'abandoned' and reports how many. */
int ledger_open_opts(const struct ledger_opts *o, struct ledger **out, int *abandoned)
	__attribute__((warn_unused_result));
/* The SQLite ledger of state_dir. */
int ledger_open(const char *state_dir, struct ledger **out, int *abandoned)
	__attribute__((warn_unused_result));
void ledger_close(struct ledger *l);
/* "sqlite" or "postgresql". */
const char *ledger_backend(const struct ledger *l);
/* The ledger file, or the database (never its password), for messages. */
const char *ledger_where(const struct ledger *l);
/* This signer's instance id: a UUID made at open, on each row it reserves
 * and in each audit record. */
const char *ledger_instance(const struct ledger *l);

/* --- several signers on one ledger --- */
/* 1 when other signers may share l (PostgreSQL), 0 for SQLite. */
int ledger_shared(const struct ledger *l);
/* Counters another signer's CA change (generation, custody) or revocation
 * advances: a signer reloads its CAs when ca_epoch moved. Both 0 on SQLite
 * (one signer per ledger). */
int ledger_epochs(struct ledger *l, uint64_t *ca_epoch, uint64_t *revocation_epoch)
	__attribute__((warn_unused_result));
/* Serialise a CA change across every signer of the ledger (PostgreSQL: an
 * advisory lock; SQLite: nothing, the state directory's lock already
 * makes one signer). */
int ledger_admin_lock(struct ledger *l) __attribute__((warn_unused_result));
void ledger_admin_unlock(struct ledger *l);

/* --- moving a ledger (sftca-signer migrate-ledger) --- */
struct ledger_custody_row {
	char ca_id[40];
	enum ca_custody custody;
	int64_t changed_at;
	char changed_by[192];
};
struct ledger_crl_row {
	char ca_id[40];
	uint64_t last;
};
struct ledger_import {
	struct ledger_gen *gens;      /* with state */
	size_t ngens;
	struct ledger_custody_row *custody;
	size_t ncustody;
	struct ledger_cert *certs;    /* every state, DER owned */
	size_t ncerts;
	struct ledger_crl_row *crls;
	size_t ncrls;
};
/* Everything in l (a whole copy in memory). */
int ledger_dump(struct ledger *l, struct ledger_import *out) __attribute__((warn_unused_result));
void ledger_import_free(struct ledger_import *im);
/* Write im into l, which must hold no CA and no certificate yet
 * (SFTCA_ERR_EXISTS otherwise), in one transaction. */
int ledger_import(struct ledger *l, const struct ledger_import *im)
	__attribute__((warn_unused_result));

/* --- CA generations --- */
/* Insert g as the new active generation; the previous active generation
 * (if any) becomes prev_state (GEN_RETIRING or GEN_RETIRED; GEN_STATE_NONE
 * when there is none). One transaction. */
int ledger_gen_insert(struct ledger *l, const struct ledger_gen *g, enum gen_state prev_state)
	__attribute__((warn_unused_result));
/* Every generation of every CA (ca_id, generation order); free with ledger_gens_free. */
int ledger_gens_load(struct ledger *l, const char *ca_id, struct ledger_gen **gens, size_t *n)
	__attribute__((warn_unused_result));
void ledger_gens_free(struct ledger_gen *gens, size_t n);
/* Move every generation of ca_id in state 'from' to 'to'; *changed = rows. */
int ledger_gen_set_state(struct ledger *l, const char *ca_id, enum gen_state from,
			 enum gen_state to, int *changed) __attribute__((warn_unused_result));
/* Peers whose newest certificate is an issued, unrevoked, unexpired leaf of
 * ca_id signed by the key of a retiring generation other than the active
 * key (whichever generation of that key issued it): the devices a finalize
 * would cut off. */
int ledger_count_live_retiring(struct ledger *l, const char *ca_id, const char *active_key_label,
			       int64_t now, uint64_t *count) __attribute__((warn_unused_result));
/* The same for leaves issued under a legacy v1 generation of key_label:
 * they carry no authority key identifier. */
int ledger_count_live_v1(struct ledger *l, const char *ca_id, const char *key_label, int64_t now,
			 uint64_t *count) __attribute__((warn_unused_result));

/* --- custody --- */
/* Record that ca_id's custody is now c (a history row: who, when). */
int ledger_custody_set(struct ledger *l, const char *ca_id, enum ca_custody c, const char *by,
		       int64_t at) __attribute__((warn_unused_result));
/* The current custody of ca_id: CUSTODY_NONE when nothing is recorded. */
int ledger_custody_get(struct ledger *l, const char *ca_id, enum ca_custody *c)
	__attribute__((warn_unused_result));

/* --- certificates --- */
/* Insert n rows as 'pending' in one transaction. SFTCA_ERR_EXISTS (and
 * nothing written) if a serial is already in the ledger. */
int ledger_reserve(struct ledger *l, const struct ledger_cert *rows, size_t n)
	__attribute__((warn_unused_result));
/* Mark rows issued (cert_der set) or abandoned (cert_der NULL), one
 * transaction. Only rows still 'pending' change. */
int ledger_complete(struct ledger *l, const struct ledger_cert *rows, size_t n)
	__attribute__((warn_unused_result));
/* Revoke an issued serial of ca_id. SFTCA_ERR_NOT_FOUND when the CA never
 * issued it; SFTCA_ERR_PRECONDITION when it is not in state 'issued'.
 * before_commit (may be NULL) runs once the change is made but not
 * committed; when it fails nothing is revoked and its code is returned. */
int ledger_revoke(struct ledger *l, const char *ca_id, const char *serial, const char *reason,
		  int64_t at, unsigned *generation, int (*before_commit)(void *arg, unsigned gen),
		  void *arg) __attribute__((warn_unused_result));

typedef int (*ledger_row_fn)(void *arg, const struct ledger_cert *row);
/* Revoked leaves signed by key_label (any generation of ca_id using it). */
int ledger_revoked_by_key(struct ledger *l, const char *ca_id, const char *key_label,
			  ledger_row_fn fn, void *arg) __attribute__((warn_unused_result));

typedef int (*ledger_hit_fn)(void *arg, size_t i, const struct ledger_cert *row);
/* For each spki[i] (SHA-256 hex, NULL = skip) some certificate with that key
 * has been revoked for keyCompromise, under any CA: fn(arg, i, newest such row). */
int ledger_compromised_keys(struct ledger *l, const char *const *spki, size_t n,
			    ledger_hit_fn fn, void *arg) __attribute__((warn_unused_result));

struct ledger_filter {
	const char *ca_id, *peer_uuid;         /* NULL or "" = any */
	enum cert_state state;                 /* CERT_STATE_NONE = any */
	const char *ca_scope;                  /* NULL = any, else ",id1,id2,": only those */
	int64_t after_rowid;                   /* paging cursor */
	unsigned limit;
	int with_der;
};
/* Rows matching f in rowid order; *last_rowid = rowid of the last row given. */
int ledger_list(struct ledger *l, const struct ledger_filter *f, ledger_row_fn fn, void *arg,
		int64_t *last_rowid, unsigned *count) __attribute__((warn_unused_result));

/* Next CRL number for ca_id (starts at 1), persisted before it is used. */
int ledger_next_crl_number(struct ledger *l, const char *ca_id, uint64_t *number)
	__attribute__((warn_unused_result));

/* The last CRL number handed out for ca_id (0: none yet). */
int ledger_crl_last(struct ledger *l, const char *ca_id, uint64_t *last)
	__attribute__((warn_unused_result));

/* Integrity check: no duplicate serials, every issued row's DER parses and
 * carries its serial, no pending rows. Problems are logged; *problems counts them. */
int ledger_check(struct ledger *l, unsigned *problems) __attribute__((warn_unused_result));

#endif
