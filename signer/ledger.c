/* The ledger's front: state names, the choice of backend, and one call per
 * operation to it (ledger_int.h). */
#include "ledger_int.h"

#include "errors.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

/* The stored names, indexed by the enums; [0] is the NONE state. */
static const char *const gen_names[] = { "none", "active", "retiring", "retired" };
static const char *const cert_names[] = { "none", "pending", "issued", "revoked", "abandoned" };
static const char *const custody_names[] = { "none", "shared", "exclusive" };

#define NNAMES(a) (sizeof(a) / sizeof((a)[0]))

static unsigned name_parse(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 1; s != NULL && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (unsigned)i;
	return 0;
}

const char *gen_state_name(enum gen_state s)
{
	return (unsigned)s < NNAMES(gen_names) ? gen_names[s] : gen_names[0];
}

enum gen_state gen_state_parse(const char *s)
{
	return (enum gen_state)name_parse(gen_names, NNAMES(gen_names), s);
}

const char *cert_state_name(enum cert_state s)
{
	return (unsigned)s < NNAMES(cert_names) ? cert_names[s] : cert_names[0];
}

enum cert_state cert_state_parse(const char *s)
{
	return (enum cert_state)name_parse(cert_names, NNAMES(cert_names), s);
}

const char *custody_name(enum ca_custody c)
{
	return (unsigned)c < NNAMES(custody_names) ? custody_names[c] : custody_names[0];
}

enum ca_custody custody_parse(const char *s)
{
	return (enum ca_custody)name_parse(custody_names, NNAMES(custody_names), s);
}


int ledger_open_opts(const struct ledger_opts *o, struct ledger **out, int *abandoned)
{
	if (o->url != NULL && o->url[0] != '\0')
		return ledger_pg_open(o, out, abandoned);
	return ledger_sqlite_open(o->state_dir, out, abandoned);
}

int ledger_open(const char *state_dir, struct ledger **out, int *abandoned)
{
	return ledger_sqlite_open(state_dir, out, abandoned);
}

void ledger_close(struct ledger *l)
{
	if (l != NULL)
		l->ops->close(l);
}

const char *ledger_backend(const struct ledger *l)
{
	return l->ops->name;
}

const char *ledger_where(const struct ledger *l)
{
	return l->where;
}

const char *ledger_instance(const struct ledger *l)
{
	return l->instance;
}

int ledger_shared(const struct ledger *l)
{
	return l->ops->epochs != NULL;
}

int ledger_epochs(struct ledger *l, uint64_t *ca_epoch, uint64_t *revocation_epoch)
{
	*ca_epoch = *revocation_epoch = 0;
	return l->ops->epochs ? l->ops->epochs(l, ca_epoch, revocation_epoch) : 0;
}

int ledger_admin_lock(struct ledger *l)
{
	return l->ops->admin_lock ? l->ops->admin_lock(l) : 0;
}

void ledger_admin_unlock(struct ledger *l)
{
	if (l->ops->admin_unlock)
		l->ops->admin_unlock(l);
}

int ledger_dump(struct ledger *l, struct ledger_import *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (l->ops->dump == NULL) {
		log_error("ledger %s: copying out of a %s ledger is not supported", l->where,
			  l->ops->name);
		return SFTCA_ERR_INVALID;
	}
	if ((r = l->ops->dump(l, out)) != 0)
		ledger_import_free(out);
	return r;
}

void ledger_import_free(struct ledger_import *im)
{
	ledger_gens_free(im->gens, im->ngens);
	for (size_t i = 0; i < im->ncerts; i++)
		free((void *)im->certs[i].cert_der);
	free(im->certs);
	free(im->custody);
	free(im->crls);
	memset(im, 0, sizeof(*im));
}

int ledger_import(struct ledger *l, const struct ledger_import *im)
{
	if (l->ops->import == NULL) {
		log_error("ledger %s: copying into a %s ledger is not supported", l->where,
			  l->ops->name);
		return SFTCA_ERR_INVALID;
	}
	return l->ops->import(l, im);
}

void ledger_gens_free(struct ledger_gen *gens, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)gens[i].cert_der);
	free(gens);
}

int ledger_gen_insert(struct ledger *l, const struct ledger_gen *g, enum gen_state prev_state)
{
	return l->ops->gen_insert(l, g, prev_state);
}

int ledger_gens_load(struct ledger *l, const char *ca_id, struct ledger_gen **gens, size_t *n)
{
	return l->ops->gens_load(l, ca_id, gens, n);
}

int ledger_gen_set_state(struct ledger *l, const char *ca_id, enum gen_state from,
			 enum gen_state to, int *changed)
{
	return l->ops->gen_set_state(l, ca_id, from, to, changed);
}

int ledger_count_live_retiring(struct ledger *l, const char *ca_id, const char *active_key_label,
			       int64_t now, uint64_t *count)
{
	return l->ops->count_live_retiring(l, ca_id, active_key_label, now, count);
}

int ledger_count_live_v1(struct ledger *l, const char *ca_id, const char *key_label, int64_t now,
			 uint64_t *count)
{
	return l->ops->count_live_v1(l, ca_id, key_label, now, count);
}

int ledger_custody_set(struct ledger *l, const char *ca_id, enum ca_custody c, const char *by,
		       int64_t at)
{
	return l->ops->custody_set(l, ca_id, c, by, at);
}

int ledger_custody_get(struct ledger *l, const char *ca_id, enum ca_custody *c)
{
	return l->ops->custody_get(l, ca_id, c);
}

int ledger_reserve(struct ledger *l, const struct ledger_cert *rows, size_t n)
{
	return l->ops->reserve(l, rows, n);
}

int ledger_complete(struct ledger *l, const struct ledger_cert *rows, size_t n)
{
	return l->ops->complete(l, rows, n);
}

int ledger_revoke(struct ledger *l, const char *ca_id, const char *serial, const char *reason,
		  int64_t at, unsigned *generation, int (*before_commit)(void *arg, unsigned gen),
		  void *arg)
{
	return l->ops->revoke(l, ca_id, serial, reason, at, generation, before_commit, arg);
}

int ledger_revoked_by_key(struct ledger *l, const char *ca_id, const char *key_label,
			  ledger_row_fn fn, void *arg)
{
	return l->ops->revoked_by_key(l, ca_id, key_label, fn, arg);
}

int ledger_compromised_keys(struct ledger *l, const char *const *spki, size_t n,
			    ledger_hit_fn fn, void *arg)
{
	return l->ops->compromised_keys(l, spki, n, fn, arg);
}

int ledger_list(struct ledger *l, const struct ledger_filter *f, ledger_row_fn fn, void *arg,
		int64_t *last_rowid, unsigned *count)
{
	return l->ops->list(l, f, fn, arg, last_rowid, count);
}

int ledger_next_crl_number(struct ledger *l, const char *ca_id, uint64_t *number)
{
	return l->ops->next_crl_number(l, ca_id, number);
}

int ledger_crl_last(struct ledger *l, const char *ca_id, uint64_t *last)
{
	return l->ops->crl_last(l, ca_id, last);
}

int ledger_check(struct ledger *l, unsigned *problems)
{
	return l->ops->check(l, problems);
}
