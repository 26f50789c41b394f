/* Inside the ledger: the operations each backend (ledger_sqlite.c,
 * ledger_pg.c) provides behind ledger.h. ledger.c dispatches. */
#ifndef SFTCA_LEDGER_INT_H
#define SFTCA_LEDGER_INT_H

#include "ledger.h"

struct ledger_ops {
	const char *name; /* "sqlite", "postgresql" */
	void (*close)(struct ledger *l);
	int (*gen_insert)(struct ledger *l, const struct ledger_gen *g, enum gen_state prev_state);
	int (*gens_load)(struct ledger *l, const char *ca_id, struct ledger_gen **gens, size_t *n);
	int (*gen_set_state)(struct ledger *l, const char *ca_id, enum gen_state from,
			     enum gen_state to, int *changed);
	int (*count_live_retiring)(struct ledger *l, const char *ca_id,
				   const char *active_key_label, int64_t now, uint64_t *count);
	int (*count_live_v1)(struct ledger *l, const char *ca_id, const char *key_label,
			     int64_t now, uint64_t *count);
	int (*custody_set)(struct ledger *l, const char *ca_id, enum ca_custody c, const char *by,
			   int64_t at);
	int (*custody_get)(struct ledger *l, const char *ca_id, enum ca_custody *c);
	int (*reserve)(struct ledger *l, const struct ledger_cert *rows, size_t n);
	int (*complete)(struct ledger *l, const struct ledger_cert *rows, size_t n);
	int (*revoke)(struct ledger *l, const char *ca_id, const char *serial, const char *reason,
		      int64_t at, unsigned *generation,
		      int (*before_commit)(void *arg, unsigned gen), void *arg);
	int (*revoked_by_key)(struct ledger *l, const char *ca_id, const char *key_label,
			      ledger_row_fn fn, void *arg);
	int (*compromised_keys)(struct ledger *l, const char *const *spki, size_t n,
				ledger_hit_fn fn, void *arg);
	int (*list)(struct ledger *l, const struct ledger_filter *f, ledger_row_fn fn, void *arg,
		    int64_t *last_rowid, unsigned *count);
	int (*next_crl_number)(struct ledger *l, const char *ca_id, uint64_t *number);
	int (*crl_last)(struct ledger *l, const char *ca_id, uint64_t *last);
	int (*check)(struct ledger *l, unsigned *problems);
	/* Several signers (NULL in a backend only one signer uses). */
	int (*epochs)(struct ledger *l, uint64_t *ca_epoch, uint64_t *revocation_epoch);
	int (*admin_lock)(struct ledger *l);
	void (*admin_unlock)(struct ledger *l);
	int (*dump)(struct ledger *l, struct ledger_import *out);
	int (*import)(struct ledger *l, const struct ledger_import *im);
};

/* Every backend's handle starts with this. */
struct ledger {
	const struct ledger_ops *ops;
	char instance[40]; /* this signer's instance id (a UUID), in every record it writes */
	char where[4096];  /* for messages: the file, or the database without password */
};

int ledger_sqlite_open(const char *state_dir, struct ledger **out, int *abandoned);
int ledger_pg_open(const struct ledger_opts *o, struct ledger **out, int *abandoned);

#endif
