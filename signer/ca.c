#include "ca.h"

#include "errors.h"
#include "log.h"
#include "profile.h"
#include "token.h"
#include "uuid.h"
#include "x509util.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ca_gen {
	atomic_int refs;
	struct ledger_gen info; /* cert_der owned */
	X509 *cert;
	struct token_key *key;  /* NULL when retired or missing from the token */
	EVP_PKEY *pkey;         /* token-backed signing key */
};

struct ca {
	char id[40];
	char subject[512];
	struct ca_gen **gens;   /* ascending generation */
	size_t n;
	enum ca_custody custody;
};

/* The signer's own CRL of one CA, served to non-admins while fresh. */
struct crl_cache {
	char ca_id[40];
	struct ca_crl_result crl;
	uint64_t epoch;         /* crl_epoch when it was signed */
};

struct ca_registry {
	pthread_rwlock_t lock;  /* the lists and generation states */
	pthread_mutex_t admin;  /* one CA-changing operation at a time */
	int admin_ledger;       /* the ledger's CA-change lock is held too (admin held) */
	pthread_mutex_t sync_mu; /* one reload from the ledger at a time */
	uint64_t ca_seen, rev_seen; /* the ledger's epochs the lists reflect (sync_mu) */
	pthread_mutex_t crl_mu; /* crls, and one scheduled CRL signing at a time */
	struct crl_cache *crls;
	size_t ncrls;
	atomic_uint_fast64_t crl_epoch; /* bumped by every revocation and CA change */
	struct token *token;
	struct ledger *ledger;
	struct ca *cas;
	size_t n, cap;
};

static void gen_free(struct ca_gen *g)
{
	if (g == NULL)
		return;
	EVP_PKEY_free(g->pkey);
	token_key_free(g->key);
	X509_free(g->cert);
	free((void *)g->info.cert_der);
	free(g);
}

void ca_gen_put(struct ca_gen *g)
{
	if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
		gen_free(g);
}

X509 *ca_gen_cert(const struct ca_gen *g)
{
	return g->cert;
}

EVP_PKEY *ca_gen_signer(const struct ca_gen *g, struct token_call *call)
{
	return token_pkey_new(g->key, call);
}

const struct ledger_gen *ca_gen_info(const struct ca_gen *g)
{
	return &g->info;
}

static int in_bundle(const struct ca_gen *g)
{
	return g->info.state == GEN_ACTIVE || g->info.state == GEN_RETIRING;
}

/* Open the token key of a generation (waiting for a session by call's
 * deadline, NULL: the default); logs and leaves key NULL on failure. */
static int gen_open_key(struct ca_registry *r, const struct token_call *call, struct ca_gen *g)
{
	int rc;

	if ((rc = token_key_open(r->token, call, g->info.key_label, &g->key)) != 0) {
		log_error("CA %s generation %u: key '%s' cannot be used: %s", g->info.ca_id,
			  g->info.generation, g->info.key_label, sftca_strerror(rc));
		return rc;
	}
	if (!x509_key_matches(g->cert, token_key_public(g->key))) {
		log_error("CA %s generation %u: the token key '%s' does not match the recorded "
			  "certificate",
			  g->info.ca_id, g->info.generation, g->info.key_label);
		token_key_free(g->key);
		g->key = NULL;
		return SFTCA_ERR_TOKEN;
	}
	if ((g->pkey = token_pkey_new(g->key, NULL)) == NULL) {
		token_key_free(g->key);
		g->key = NULL;
		return SFTCA_ERR_CRYPTO;
	}
	return 0;
}

/* A runtime generation from a ledger row (the DER is copied). */
static int gen_new(struct ca_registry *r, const struct token_call *call,
		   const struct ledger_gen *info, struct ca_gen **out)
{
	struct ca_gen *g = calloc(1, sizeof(*g));
	unsigned char *der;

	*out = NULL;
	if (g == NULL || (der = malloc(info->cert_len)) == NULL) {
		free(g);
		return SFTCA_ERR_NOMEM;
	}
	memcpy(der, info->cert_der, info->cert_len);
	g->info = *info;
	g->info.cert_der = der;
	atomic_init(&g->refs, 1);
	if ((g->cert = x509_from_der(der, info->cert_len)) == NULL) {
		log_error("CA %s generation %u: recorded certificate does not parse", info->ca_id,
			  info->generation);
		gen_free(g);
		return SFTCA_ERR_LEDGER;
	}
	/* Fill OpenSSL's extension cache (SKID, key usage) now, while the
	 * generation is ours alone: OpenSSL 3.0 fills it on first use with a
	 * double-checked lock whose unlocked read races with the writer, and
	 * every handler thread reads the CA's SKID for its leaves' AKI. */
	(void)X509_check_purpose(g->cert, -1, 0);
	if (in_bundle(g))
		(void)gen_open_key(r, call, g); /* a missing key is reported, not fatal */
	*out = g;
	return 0;
}

static struct ca *ca_find(struct ca_registry *r, const char *id)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->cas[i].id, id) == 0)
			return &r->cas[i];
	return NULL;
}

static struct ca_gen *ca_active(const struct ca *c)
{
	for (size_t i = c->n; i-- > 0;)
		if (c->gens[i]->info.state == GEN_ACTIVE)
			return c->gens[i];
	return NULL;
}

/* Append g to CA id (creating the CA entry); caller holds the write lock. */
static int ca_append(struct ca_registry *r, const char *id, struct ca_gen *g)
{
	struct ca *c = ca_find(r, id);
	struct ca_gen **ng;

	if (c == NULL) {
		if (r->n == r->cap) {
			struct ca *nc = realloc(r->cas, (r->cap ? r->cap * 2 : 8) * sizeof(*nc));
			if (nc == NULL)
				return SFTCA_ERR_NOMEM;
			r->cas = nc;
			r->cap = r->cap ? r->cap * 2 : 8;
		}
		c = &r->cas[r->n++];
		memset(c, 0, sizeof(*c));
		snprintf(c->id, sizeof(c->id), "%s", id);
	}
	if ((ng = realloc(c->gens, (c->n + 1) * sizeof(*ng))) == NULL)
		return SFTCA_ERR_NOMEM;
	c->gens = ng;
	c->gens[c->n++] = g;
	snprintf(c->subject, sizeof(c->subject), "%s", g->info.subject);
	return 0;
}

int ca_registry_load(struct token *t, struct ledger *l, struct ca_registry **out)
{
	struct ca_registry *r = calloc(1, sizeof(*r));
	struct ledger_gen *gens = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (r == NULL)
		return SFTCA_ERR_NOMEM;
	pthread_rwlock_init(&r->lock, NULL);
	pthread_mutex_init(&r->admin, NULL);
	pthread_mutex_init(&r->crl_mu, NULL);
	pthread_mutex_init(&r->sync_mu, NULL);
	r->token = t;
	r->ledger = l;
	/* Read before the lists: a change made meanwhile reloads them once more. */
	if ((rc = ledger_epochs(l, &r->ca_seen, &r->rev_seen)) != 0 ||
	    (rc = ledger_gens_load(l, NULL, &gens, &n)) != 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct ca_gen *g;
		if ((rc = gen_new(r, NULL, &gens[i], &g)) != 0)
			goto fail;
		if ((rc = ca_append(r, gens[i].ca_id, g)) != 0) {
			gen_free(g);
			goto fail;
		}
	}
	ledger_gens_free(gens, n);
	gens = NULL;
	n = 0;
	for (size_t i = 0; i < r->n; i++) {
		struct ca *c = &r->cas[i];
		if ((rc = ledger_custody_get(l, c->id, &c->custody)) != 0)
			goto fail;
		/* Not on record (cannot happen after the migration): the safe guess. */
		if (c->custody == CUSTODY_NONE)
			c->custody = c->gens[0]->info.imported ? CUSTODY_SHARED : CUSTODY_EXCLUSIVE;
	}
	log_info("%zu CA%s loaded from the ledger", r->n, r->n == 1 ? "" : "s");
	*out = r;
	return 0;
fail:
	ledger_gens_free(gens, n);
	ca_registry_free(r);
	return rc;
}

void ca_registry_free(struct ca_registry *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		for (size_t j = 0; j < r->cas[i].n; j++)
			ca_gen_put(r->cas[i].gens[j]);
		free(r->cas[i].gens);
	}
	free(r->cas);
	for (size_t i = 0; i < r->ncrls; i++)
		free(r->crls[i].crl.pem);
	free(r->crls);
	pthread_rwlock_destroy(&r->lock);
	pthread_mutex_destroy(&r->admin);
	pthread_mutex_destroy(&r->crl_mu);
	pthread_mutex_destroy(&r->sync_mu);
	free(r);
}

/* --- several signers on one ledger ------------------------------------------ */

/* Bring the lists up to what the ledger holds: generations another signer
 * made are added (their keys opened in the shared token), states and
 * custody another signer changed are taken over. Nothing is removed: a
 * ledger only ever adds generations. */
static int registry_reload(struct ca_registry *r)
{
	struct ledger_gen *gens = NULL;
	size_t n = 0;
	int rc, added = 0, changed = 0;

	if ((rc = ledger_gens_load(r->ledger, NULL, &gens, &n)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct ca *c;
		struct ca_gen *g = NULL, *ng;

		pthread_rwlock_wrlock(&r->lock);
		if ((c = ca_find(r, gens[i].ca_id)) != NULL)
			for (size_t j = 0; j < c->n; j++)
				if (c->gens[j]->info.generation == gens[i].generation)
					g = c->gens[j];
		if (g != NULL && g->info.state != gens[i].state) {
			g->info.state = gens[i].state;
			changed++;
		}
		pthread_rwlock_unlock(&r->lock);
		if (g != NULL)
			continue;
		/* The token key is opened outside the lock: issuance goes on. */
		if ((rc = gen_new(r, NULL, &gens[i], &ng)) != 0)
			break;
		pthread_rwlock_wrlock(&r->lock);
		if ((rc = ca_append(r, gens[i].ca_id, ng)) != 0)
			gen_free(ng);
		pthread_rwlock_unlock(&r->lock);
		added++;
	}
	ledger_gens_free(gens, n);
	for (size_t i = 0; rc == 0 && i < r->n; i++) {
		enum ca_custody cu;
		char id[40];
		pthread_rwlock_rdlock(&r->lock);
		snprintf(id, sizeof(id), "%s", r->cas[i].id);
		pthread_rwlock_unlock(&r->lock);
		if ((rc = ledger_custody_get(r->ledger, id, &cu)) != 0 || cu == CUSTODY_NONE)
			continue;
		pthread_rwlock_wrlock(&r->lock);
		if (r->cas[i].custody != cu) {
			r->cas[i].custody = cu;
			changed++;
		}
		pthread_rwlock_unlock(&r->lock);
	}
	if (added || changed) {
		atomic_fetch_add(&r->crl_epoch, 1);
		log_info("CAs reloaded from the ledger: %d generation%s added, %d change%s taken "
			 "over from another signer",
			 added, added == 1 ? "" : "s", changed, changed == 1 ? "" : "s");
	}
	return rc;
}

/* Before a call uses the CA lists: has another signer of the ledger changed
 * a CA or revoked since? One read of two counters (nothing under SQLite). */
static int registry_sync(struct ca_registry *r)
{
	uint64_t ca_ep = 0, rev_ep = 0;
	int rc;

	if ((rc = ledger_epochs(r->ledger, &ca_ep, &rev_ep)) != 0)
		return rc;
	pthread_mutex_lock(&r->sync_mu);
	if (rev_ep != r->rev_seen) {
		r->rev_seen = rev_ep;
		atomic_fetch_add(&r->crl_epoch, 1); /* a CRL this signer cached is stale */
	}
	if (ca_ep != r->ca_seen && (rc = registry_reload(r)) == 0)
		r->ca_seen = ca_ep;
	pthread_mutex_unlock(&r->sync_mu);
	return rc;
}

/* One CA change at a time, in this process and across every signer of the
 * ledger, on lists brought up to date first. admin is held on return,
 * also on failure: admin_end always follows. */
static int admin_begin(struct ca_registry *r)
{
	int rc;

	pthread_mutex_lock(&r->admin);
	r->admin_ledger = 0;
	if ((rc = ledger_admin_lock(r->ledger)) != 0)
		return rc;
	r->admin_ledger = 1;
	return registry_sync(r);
}

static void admin_end(struct ca_registry *r)
{
	if (r->admin_ledger)
		ledger_admin_unlock(r->ledger);
	r->admin_ledger = 0;
	pthread_mutex_unlock(&r->admin);
}

int ca_get_active(struct ca_registry *r, const char *ca_id, struct ca_gen **out)
{
	struct ca *c;
	struct ca_gen *g = NULL;
	int rc = 0;

	*out = NULL;
	if ((rc = registry_sync(r)) != 0)
		return rc;
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) == NULL || (g = ca_active(c)) == NULL)
		rc = SFTCA_ERR_NOT_FOUND;
	else if (g->pkey == NULL)
		rc = SFTCA_ERR_PRECONDITION;
	else
		atomic_fetch_add(&g->refs, 1);
	pthread_rwlock_unlock(&r->lock);
	/* A generation another signer made may have reached this signer's
	 * token member later than its ledger row (a replicating HSM): look
	 * for the key again rather than refuse until the next CA change. */
	if (rc == SFTCA_ERR_PRECONDITION && ledger_shared(r->ledger)) {
		pthread_rwlock_wrlock(&r->lock);
		if ((c = ca_find(r, ca_id)) != NULL && (g = ca_active(c)) != NULL) {
			if (g->pkey == NULL)
				(void)gen_open_key(r, NULL, g);
			if (g->pkey != NULL) {
				atomic_fetch_add(&g->refs, 1);
				rc = 0;
			}
		}
		pthread_rwlock_unlock(&r->lock);
	}
	if (rc == 0)
		*out = g;
	return rc;
}

/* Concatenate the PEM of bundle generations: active first, then retiring. */
static char *bundle_of(const struct ca *c)
{
	char *out = NULL;
	size_t len = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = c->n; i-- > 0;) {
			enum gen_state want = pass == 0 ? GEN_ACTIVE : GEN_RETIRING;
			char *pem, *grown;
			if (c->gens[i]->info.state != want)
				continue;
			if ((pem = x509_to_pem(c->gens[i]->cert)) == NULL ||
			    (grown = realloc(out, len + strlen(pem) + 1)) == NULL) {
				free(pem);
				free(out);
				return NULL;
			}
			out = grown;
			memcpy(out + len, pem, strlen(pem) + 1);
			len += strlen(pem);
			free(pem);
		}
	}
	return out;
}

int ca_bundle_pem(struct ca_registry *r, const char *ca_id, char **pem)
{
	struct ca *c;
	int rc = 0;

	*pem = NULL;
	if ((rc = registry_sync(r)) != 0)
		return rc;
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) == NULL)
		rc = SFTCA_ERR_NOT_FOUND;
	else if ((*pem = bundle_of(c)) == NULL)
		rc = SFTCA_ERR_NOMEM;
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

int ca_cert_pem(struct ca_registry *r, const char *ca_id, unsigned generation, unsigned *gen_out,
		char **pem)
{
	struct ca *c;
	struct ca_gen *g = NULL;
	int rc = 0;

	*pem = NULL;
	if ((rc = registry_sync(r)) != 0)
		return rc;
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) == NULL) {
		rc = SFTCA_ERR_NOT_FOUND;
	} else if (generation == 0) {
		g = ca_active(c);
	} else {
		for (size_t i = 0; i < c->n; i++)
			if (c->gens[i]->info.generation == generation)
				g = c->gens[i];
	}
	if (rc == 0 && g == NULL)
		rc = SFTCA_ERR_NOT_FOUND;
	if (rc == 0) {
		*gen_out = g->info.generation;
		if ((*pem = x509_to_pem(g->cert)) == NULL)
			rc = SFTCA_ERR_NOMEM;
	}
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

int ca_foreach(struct ca_registry *r, const char *ca_id, ca_visit_fn fn, void *arg)
{
	int rc = 0, found = 0;

	if ((rc = registry_sync(r)) != 0)
		return rc;
	pthread_rwlock_rdlock(&r->lock);
	for (size_t i = 0; i < r->n && rc == 0; i++) {
		struct ca *c = &r->cas[i];
		const struct ledger_gen **v;
		struct ca_gen *a;

		if (ca_id && strcmp(c->id, ca_id) != 0)
			continue;
		found = 1;
		if ((v = calloc(c->n ? c->n : 1, sizeof(*v))) == NULL) {
			rc = SFTCA_ERR_NOMEM;
			break;
		}
		for (size_t j = 0; j < c->n; j++)
			v[j] = &c->gens[j]->info;
		a = ca_active(c);
		rc = fn(arg, c->id, c->subject, v, c->n, a ? a->info.generation : 0, c->custody);
		free(v);
	}
	pthread_rwlock_unlock(&r->lock);
	if (rc == 0 && ca_id && !found)
		rc = SFTCA_ERR_NOT_FOUND;
	return rc;
}

/* --- CA-changing operations ------------------------------------------------ */

static int check_days(unsigned *days, struct ca_change *res)
{
	if (*days == 0)
		*days = CA_DEFAULT_DAYS;
	if (*days > CA_MAX_DAYS) {
		msg_set(&res->message, "days must be 1 to %d", CA_MAX_DAYS);
		return SFTCA_ERR_INVALID;
	}
	return 0;
}

static int check_key_type(const char *kt, struct ca_change *res)
{
	static const char *const ok[] = { "rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(kt, ok[i]) == 0)
			return 0;
	msg_set(&res->message,
		"key type '%s' unknown (rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384)", kt);
	return SFTCA_ERR_INVALID;
}

/* Unique per key: a crash between key generation and the ledger write
 * leaves an orphan that no later operation can mistake for its own key. */
static void make_label(char *buf, size_t len, const char *ca_id, unsigned gen)
{
	unsigned char rnd[4] = { 0 };
	(void)RAND_bytes(rnd, sizeof(rnd));
	snprintf(buf, len, "sftca/%s/g%u-%02x%02x%02x%02x", ca_id, gen, rnd[0], rnd[1], rnd[2],
		 rnd[3]);
}

static unsigned next_generation(const struct ca *c)
{
	return c && c->n ? c->gens[c->n - 1]->info.generation + 1 : 1;
}

/* A new generation to record, and what becomes of the active one. */
struct gen_commit {
	const char *ca_id;
	unsigned generation;
	const char *key_label;
	const char *destroy_label; /* token objects removed on failure; NULL: none */
	X509 *cert;
	EVP_PKEY *pub;
	int imported;
	enum ca_custody custody;   /* a new CA's; NONE: the CA exists */
	enum gen_state prev_state; /* of the active generation; NONE: there is none */
	const char *requester;
};

/* Fill the ledger record of a new generation from its certificate. */
static int gen_info_fill(struct ledger_gen *g, const struct gen_commit *gc, unsigned char **der)
{
	X509 *cert = gc->cert;
	int len;

	memset(g, 0, sizeof(*g));
	*der = NULL;
	snprintf(g->ca_id, sizeof(g->ca_id), "%s", gc->ca_id);
	g->generation = gc->generation;
	g->state = GEN_ACTIVE;
	snprintf(g->key_label, sizeof(g->key_label), "%s", gc->key_label);
	pkey_type_text(gc->pub, g->key_type, sizeof(g->key_type));
	x509_name_text(X509_get_subject_name(cert), g->subject, sizeof(g->subject));
	if (x509_serial_hex(cert, g->serial, sizeof(g->serial)) != 0)
		return SFTCA_ERR_INVALID;
	g->x509_version = (int)X509_get_version(cert) + 1;
	g->not_before = x509_not_before(cert);
	g->not_after = x509_not_after(cert);
	g->created_at = time(NULL);
	g->imported = gc->imported;
	g->custody = gc->custody;
	snprintf(g->created_by, sizeof(g->created_by), "%s", gc->requester);
	if ((len = i2d_X509(cert, der)) <= 0)
		return SFTCA_ERR_CRYPTO;
	g->cert_der = *der;
	g->cert_len = (size_t)len;
	return 0;
}

/* Record gc->cert as the new active generation (the old active one becomes
 * gc->prev_state) in the ledger, then in memory, waiting for the token by
 * call's deadline. On failure the token objects under gc->destroy_label (if
 * any) and the certificate's label are removed. */
static int commit_generation(struct ca_registry *r, const struct token_call *call,
			     const struct gen_commit *gc)
{
	const char *ca_id = gc->ca_id;
	char cert_label[160];
	struct ledger_gen info;
	unsigned char *der = NULL;
	struct ca_gen *g = NULL;
	struct ca *c;
	int rc;

	snprintf(cert_label, sizeof(cert_label), "%s/cert-g%u", gc->key_label, gc->generation);
	if ((rc = gen_info_fill(&info, gc, &der)) != 0)
		goto fail;
	if ((rc = token_store_cert(r->token, call, gc->key_label, cert_label, gc->cert)) != 0)
		goto fail;
	if ((rc = gen_new(r, call, &info, &g)) != 0 || g->pkey == NULL) {
		rc = rc ? rc : SFTCA_ERR_TOKEN;
		goto fail;
	}
	if ((rc = ledger_gen_insert(r->ledger, &info, gc->prev_state)) != 0)
		goto fail;
	pthread_rwlock_wrlock(&r->lock);
	if ((c = ca_find(r, ca_id)) != NULL && gc->prev_state != GEN_STATE_NONE) {
		struct ca_gen *a = ca_active(c);
		if (a != NULL)
			a->info.state = gc->prev_state;
	}
	rc = ca_append(r, ca_id, g);
	if (rc == 0 && gc->custody != CUSTODY_NONE && (c = ca_find(r, ca_id)) != NULL)
		c->custody = gc->custody;
	pthread_rwlock_unlock(&r->lock);
	atomic_fetch_add(&r->crl_epoch, 1); /* the bundle, so the CRL set, changed */
	if (rc != 0) {
		/* Recorded but not in memory: a restart reloads it. */
		log_error("CA %s generation %u recorded, but memory ran out: restart the signer",
			  ca_id, gc->generation);
		gen_free(g);
	}
	OPENSSL_free(der);
	return rc;
fail:
	/* Cleanup waits the default time, not the call's deadline, which may
	 * be what just failed: nothing is to be left behind. */
	gen_free(g);
	token_destroy_label(r->token, NULL, cert_label);
	if (gc->destroy_label)
		token_destroy_label(r->token, NULL, gc->destroy_label);
	OPENSSL_free(der);
	return rc;
}

/* A CA certificate signed in the token by key on behalf of call: a token
 * failure (a session not free by the deadline) is returned as such. */
static int sign_ca_cert(struct token_key *key, struct token_call *call, const X509_NAME *subject,
			EVP_PKEY *pub, unsigned days, X509 **cert)
{
	EVP_PKEY *signer = token_pkey_new(key, call);
	int rc;

	*cert = NULL;
	if (signer == NULL)
		return SFTCA_ERR_CRYPTO;
	if (call)
		call->error = 0;
	if ((rc = profile_ca_cert(subject, pub, signer, time(NULL), days, cert)) != 0 && call &&
	    call->error)
		rc = call->error;
	EVP_PKEY_free(signer);
	return rc;
}

/* New key in the token and a self-signed certificate for it. */
static int new_key_and_cert(struct ca_registry *r, struct token_call *call, const char *label,
			    const char *key_type, const X509_NAME *subject, unsigned days,
			    X509 **cert, EVP_PKEY **pub)
{
	struct token_key *k = NULL;
	int rc;

	*cert = NULL;
	if ((rc = token_generate_key(r->token, call, label, key_type, pub)) != 0)
		return rc;
	if ((rc = token_key_open(r->token, call, label, &k)) == 0)
		rc = sign_ca_cert(k, call, subject, *pub, days, cert);
	token_key_free(k);
	if (rc != 0) {
		/* The default wait: see commit_generation. */
		token_destroy_label(r->token, NULL, label);
		EVP_PKEY_free(*pub);
		*pub = NULL;
	}
	return rc;
}

int ca_create(struct ca_registry *r, const char *ca_id, const char *key_type, unsigned days,
	      const char *requester, struct token_call *call, struct ca_change *res)
{
	struct gen_commit gc;
	char label[128];
	X509_NAME *subject = NULL;
	X509 *cert = NULL;
	EVP_PKEY *pub = NULL;
	int rc, exists;

	memset(res, 0, sizeof(*res));
	if (!uuid_is_canonical(ca_id)) {
		msg_set(&res->message,
			"CA id '%s' is not a canonical lowercase UUID (the FMC's UUID)", ca_id);
		return SFTCA_ERR_INVALID;
	}
	if (!key_type || !key_type[0])
		key_type = "rsa:2048";
	if ((rc = check_key_type(key_type, res)) != 0 || (rc = check_days(&days, res)) != 0)
		return rc;
	if ((rc = admin_begin(r)) != 0)
		goto out;
	pthread_rwlock_rdlock(&r->lock);
	exists = ca_find(r, ca_id) != NULL;
	pthread_rwlock_unlock(&r->lock);
	if (exists) {
		msg_set(&res->message, "CA %s already exists", ca_id);
		rc = SFTCA_ERR_EXISTS;
		goto out;
	}
	make_label(label, sizeof(label), ca_id, 1);
	if ((subject = profile_ca_subject(ca_id)) == NULL) {
		rc = SFTCA_ERR_NOMEM;
		goto out;
	}
	if ((rc = new_key_and_cert(r, call, label, key_type, subject, days, &cert, &pub)) != 0)
		goto out;
	gc = (struct gen_commit){ .ca_id = ca_id, .generation = 1, .key_label = label,
				   .destroy_label = label, .cert = cert, .pub = pub,
				   .custody = CUSTODY_EXCLUSIVE, .requester = requester };
	if ((rc = commit_generation(r, call, &gc)) == 0)
		res->generation = 1;
out:
	admin_end(r);
	X509_NAME_free(subject);
	X509_free(cert);
	EVP_PKEY_free(pub);
	return rc;
}

/* The active generation of ca_id, referenced, with the admin lock held by caller. */
static int admin_active(struct ca_registry *r, const char *ca_id, struct ca_change *res,
			struct ca_gen **out, unsigned *next_gen, int *has_retiring)
{
	struct ca *c;
	int rc = 0;

	*out = NULL;
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) == NULL || (*out = ca_active(c)) == NULL) {
		msg_set(&res->message, "no CA %s", ca_id);
		rc = SFTCA_ERR_NOT_FOUND;
	} else if ((*out)->pkey == NULL) {
		msg_set(&res->message,
			"CA %s: the key of generation %u is not usable in the token", ca_id,
			(*out)->info.generation);
		rc = SFTCA_ERR_PRECONDITION;
	} else {
		atomic_fetch_add(&(*out)->refs, 1);
		*next_gen = next_generation(c);
		if (has_retiring) {
			*has_retiring = 0;
			for (size_t i = 0; i < c->n; i++)
				if (c->gens[i]->info.state == GEN_RETIRING)
					*has_retiring = 1;
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (rc != 0)
		*out = NULL;
	return rc;
}

int ca_renew(struct ca_registry *r, const char *ca_id, unsigned days, const char *requester,
	     struct token_call *call, struct ca_change *res)
{
	struct gen_commit gc;
	struct ca_gen *a = NULL;
	X509 *cert = NULL;
	unsigned gen = 0;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = check_days(&days, res)) != 0)
		return rc;
	if ((rc = admin_begin(r)) != 0)
		goto out;
	if ((rc = admin_active(r, ca_id, res, &a, &gen, NULL)) != 0)
		goto out;
	/* Same key, same subject: every leaf the old certificate signed verifies
	 * against the new one. A legacy v1 certificate is renewed as v3. */
	if ((rc = sign_ca_cert(a->key, call, X509_get_subject_name(a->cert),
			       token_key_public(a->key), days, &cert)) != 0)
		goto out;
	gc = (struct gen_commit){ .ca_id = ca_id, .generation = gen, .key_label = a->info.key_label,
				   .cert = cert, .pub = token_key_public(a->key),
				   .prev_state = GEN_RETIRED, .requester = requester };
	if ((rc = commit_generation(r, call, &gc)) == 0)
		res->generation = gen;
out:
	admin_end(r);
	ca_gen_put(a);
	X509_free(cert);
	return rc;
}

/* The generation of ca_id, if any, that holds key_label as a legacy v1
 * certificate (only an import makes one); 0 if none. */
static unsigned v1_generation_of_key(struct ca_registry *r, const char *ca_id,
				     const char *key_label)
{
	struct ca *c;
	unsigned g = 0;

	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) != NULL)
		for (size_t i = 0; i < c->n && g == 0; i++)
			if (c->gens[i]->info.x509_version == 1 &&
			    strcmp(c->gens[i]->info.key_label, key_label) == 0)
				g = c->gens[i]->info.generation;
	pthread_rwlock_unlock(&r->lock);
	return g;
}

/* Leaves of a v1 CA carry no authority key identifier: with two CA
 * certificates of the same name trusted (the overlap), a verifier may pick
 * the new one for an old leaf and fail. Renewing the key as v3 does not
 * change the leaves it signed as v1, and those the vendor issued before the
 * import are not on record, so only the operator can say they are gone. */
static int v1_rotate_guard(struct ca_registry *r, const char *ca_id, const struct ca_gen *a,
			   struct ca_change *res)
{
	unsigned v1 = X509_get_version(a->cert) != X509_VERSION_3
			      ? a->info.generation
			      : v1_generation_of_key(r, ca_id, a->info.key_label);
	uint64_t live = 0;
	int rc;

	if (v1 == 0)
		return 0;
	if (v1 == a->info.generation) {
		msg_set(&res->message,
			"generation %u is a legacy v1 certificate; its leaves have no authority "
			"key identifier, so an overlap could break them. Renew it first (same "
			"key), reissue every peer (sftca issue), push, then rotate with --force",
			v1);
		return SFTCA_ERR_PRECONDITION;
	}
	if ((rc = ledger_count_live_v1(r->ledger, ca_id, a->info.key_label, time(NULL), &live)) != 0)
		return rc;
	msg_set(&res->message,
		"generation %u (the same key) was a legacy v1 certificate: leaves it signed have "
		"no authority key identifier, so an overlap could break them (%llu on record "
		"still in use; the vendor's, issued before the import, are not on record). "
		"Reissue every peer (sftca issue replaces leaves without one), push, then "
		"rotate with --force",
		v1, (unsigned long long)live);
	return SFTCA_ERR_PRECONDITION;
}

/* The FMC signs each device registration with its own copy of the CA key.
 * While it keeps that copy (custody 'shared'), a new key would leave it
 * signing registrations with the old one, which the bundle drops at
 * finalize: renewal (same key) is the way. */
static int shared_rotate_guard(struct ca_registry *r, const char *ca_id, struct ca_change *res)
{
	struct ca *c;
	enum ca_custody cu = CUSTODY_NONE;

	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) != NULL)
		cu = c->custody;
	pthread_rwlock_unlock(&r->lock);
	if (cu != CUSTODY_SHARED)
		return 0;
	msg_set(&res->message,
		"CA %s is in shared custody: the FMC keeps its copy of the key and would keep "
		"signing device registrations with the old key, which the bundle drops at "
		"finalize. Renew instead (sftca ca renew, same key), or destroy the FMC's copy, "
		"set 'sftca ca custody --ca %s exclusive' and rotate; --force rotates anyway",
		ca_id, ca_id);
	return SFTCA_ERR_PRECONDITION;
}

int ca_rotate(struct ca_registry *r, const char *ca_id, const char *key_type, unsigned days,
	      int force, const char *requester, struct token_call *call, struct ca_change *res)
{
	struct gen_commit gc;
	struct ca_gen *a = NULL;
	char label[128];
	X509 *cert = NULL;
	EVP_PKEY *pub = NULL;
	unsigned gen = 0;
	int rc, retiring = 0;

	memset(res, 0, sizeof(*res));
	if ((rc = check_days(&days, res)) != 0)
		return rc;
	if ((rc = admin_begin(r)) != 0)
		goto out;
	if ((rc = admin_active(r, ca_id, res, &a, &gen, &retiring)) != 0)
		goto out;
	if (!key_type || !key_type[0])
		key_type = a->info.key_type;
	if ((rc = check_key_type(key_type, res)) != 0)
		goto out;
	if (retiring) {
		msg_set(&res->message,
			"CA %s is still in an overlap: finalize the previous rotation first", ca_id);
		rc = SFTCA_ERR_PRECONDITION;
		goto out;
	}
	/* The v1 refusal first: its advice (renew) comes before custody's. */
	if (!force && (rc = v1_rotate_guard(r, ca_id, a, res)) != 0)
		goto out;
	if (!force && (rc = shared_rotate_guard(r, ca_id, res)) != 0)
		goto out;
	make_label(label, sizeof(label), ca_id, gen);
	if ((rc = new_key_and_cert(r, call, label, key_type, X509_get_subject_name(a->cert), days,
				   &cert, &pub)) != 0)
		goto out;
	gc = (struct gen_commit){ .ca_id = ca_id, .generation = gen, .key_label = label,
				   .destroy_label = label, .cert = cert, .pub = pub,
				   .prev_state = GEN_RETIRING, .requester = requester };
	if ((rc = commit_generation(r, call, &gc)) == 0)
		res->generation = gen;
out:
	admin_end(r);
	ca_gen_put(a);
	X509_free(cert);
	EVP_PKEY_free(pub);
	return rc;
}

int ca_finalize(struct ca_registry *r, const char *ca_id, int force, const char *requester,
		struct ca_change *res)
{
	struct ca_gen *a = NULL;
	unsigned gen;
	int rc, retiring = 0, changed = 0;

	memset(res, 0, sizeof(*res));
	if ((rc = admin_begin(r)) != 0)
		goto out;
	if ((rc = admin_active(r, ca_id, res, &a, &gen, &retiring)) != 0)
		goto out;
	if (!retiring) {
		msg_set(&res->message, "CA %s has no retiring generation to finalize", ca_id);
		rc = SFTCA_ERR_PRECONDITION;
		goto out;
	}
	if ((rc = ledger_count_live_retiring(r->ledger, ca_id, a->info.key_label, time(NULL),
					     &res->live_leaves)) != 0)
		goto out;
	if (res->live_leaves > 0 && !force) {
		msg_set(&res->message,
			"%llu peers still hold only an unexpired, unrevoked leaf of the retiring "
			"generation; reissue and push them (sftca issue, sftca push) or force",
			(unsigned long long)res->live_leaves);
		rc = SFTCA_ERR_PRECONDITION;
		goto out;
	}
	if ((rc = ledger_gen_set_state(r->ledger, ca_id, GEN_RETIRING, GEN_RETIRED, &changed)) != 0)
		goto out;
	pthread_rwlock_wrlock(&r->lock);
	{
		struct ca *c = ca_find(r, ca_id);
		for (size_t i = 0; c && i < c->n; i++)
			if (c->gens[i]->info.state == GEN_RETIRING)
				c->gens[i]->info.state = GEN_RETIRED;
	}
	pthread_rwlock_unlock(&r->lock);
	atomic_fetch_add(&r->crl_epoch, 1);
	res->retired = (unsigned)changed;
	log_info("CA %s: %d retiring generation%s finalized by %s", ca_id, changed,
		 changed == 1 ? "" : "s", requester);
out:
	admin_end(r);
	ca_gen_put(a);
	return rc;
}

/* A certificate that can act as the InternalCA: self-issued and self-signed,
 * and either v1 (the field's legacy form) or marked CA:TRUE. */
static int check_import_cert(const char *ca_id, X509 *cert, EVP_PKEY *key, struct ca_change *res)
{
	char cn[128];

	if (!x509_key_matches(cert, key)) {
		msg_set(&res->message, "the private key does not belong to the certificate");
		return SFTCA_ERR_INVALID;
	}
	if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0 ||
	    X509_verify(cert, X509_get0_pubkey(cert)) != 1) {
		ERR_clear_error();
		msg_set(&res->message,
			"the certificate is not self-signed, so it is not an InternalCA");
		return SFTCA_ERR_INVALID;
	}
	if (X509_get_version(cert) == X509_VERSION_3 && X509_check_ca(cert) < 1) {
		msg_set(&res->message, "the certificate is not a CA (no basicConstraints CA:TRUE)");
		return SFTCA_ERR_INVALID;
	}
	if (x509_name_cn(X509_get_subject_name(cert), cn, sizeof(cn)) != 0 ||
	    strcmp(cn, ca_id) != 0) {
		msg_set(&res->message,
			"the certificate's CN is not %s (the InternalCA's CN is the FMC UUID)",
			ca_id);
		return SFTCA_ERR_INVALID;
	}
	if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
		msg_set(&res->message, "only RSA InternalCA keys can be imported");
		return SFTCA_ERR_INVALID;
	}
	return 0;
}

int ca_import(struct ca_registry *r, const char *ca_id, X509 *cert, EVP_PKEY *key,
	      enum ca_custody custody, const char *requester, struct token_call *call,
	      struct ca_change *res)
{
	struct gen_commit gc;
	char label[128];
	int rc, exists;

	memset(res, 0, sizeof(*res));
	if (!uuid_is_canonical(ca_id)) {
		msg_set(&res->message, "CA id '%s' is not a canonical lowercase UUID", ca_id);
		return SFTCA_ERR_INVALID;
	}
	if (custody == CUSTODY_NONE) {
		msg_set(&res->message, "custody must be shared or exclusive");
		return SFTCA_ERR_INVALID;
	}
	if ((rc = check_import_cert(ca_id, cert, key, res)) != 0)
		return rc;
	if ((rc = admin_begin(r)) != 0)
		goto out;
	pthread_rwlock_rdlock(&r->lock);
	exists = ca_find(r, ca_id) != NULL;
	pthread_rwlock_unlock(&r->lock);
	if (exists) {
		msg_set(&res->message, "CA %s already exists", ca_id);
		rc = SFTCA_ERR_EXISTS;
		goto out;
	}
	make_label(label, sizeof(label), ca_id, 1);
	if ((rc = token_import_key(r->token, call, label, key)) != 0)
		goto out;
	gc = (struct gen_commit){ .ca_id = ca_id, .generation = 1, .key_label = label,
				   .destroy_label = label, .cert = cert, .pub = X509_get0_pubkey(cert),
				   .imported = 1, .custody = custody, .requester = requester };
	if ((rc = commit_generation(r, call, &gc)) == 0)
		res->generation = 1;
out:
	admin_end(r);
	return rc;
}

int ca_set_custody(struct ca_registry *r, const char *ca_id, enum ca_custody custody,
		   const char *requester, enum ca_custody *previous, struct ca_change *res)
{
	struct ca *c;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	*previous = CUSTODY_NONE;
	if (custody == CUSTODY_NONE) {
		msg_set(&res->message, "custody must be shared or exclusive");
		return SFTCA_ERR_INVALID;
	}
	if ((rc = admin_begin(r)) != 0)
		goto out;
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) != NULL)
		*previous = c->custody;
	pthread_rwlock_unlock(&r->lock);
	if (c == NULL) {
		msg_set(&res->message, "no CA %s", ca_id);
		rc = SFTCA_ERR_NOT_FOUND;
		goto out;
	}
	if (*previous == custody)
		goto out;
	/* The admin lock keeps the CA list (so c) where it is. */
	if ((rc = ledger_custody_set(r->ledger, ca_id, custody, requester, time(NULL))) != 0) {
		msg_set(&res->message, "the ledger could not record it: %s", sftca_strerror(rc));
		goto out;
	}
	pthread_rwlock_wrlock(&r->lock);
	c->custody = custody;
	pthread_rwlock_unlock(&r->lock);
	log_info("CA %s custody %s -> %s by %s", ca_id, custody_name(*previous),
		 custody_name(custody), requester);
out:
	admin_end(r);
	return rc;
}

/* --- revocation and CRLs --------------------------------------------------- */

static const char *const reasons[] = {
	[0] = "unspecified",       [1] = "keyCompromise",         [2] = "cACompromise",
	[3] = "affiliationChanged", [4] = "superseded",           [5] = "cessationOfOperation",
	[9] = "privilegeWithdrawn", [10] = "aACompromise",
};

static int reason_code(const char *reason)
{
	if (reason == NULL || reason[0] == '\0')
		return 0;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i] && strcmp(reasons[i], reason) == 0)
			return (int)i;
	return -1;
}

int ca_reason_valid(const char *reason)
{
	return reason_code(reason) >= 0;
}

int ca_revoke(struct ca_registry *r, const char *ca_id, const char *serial, const char *reason,
	      unsigned *generation, int64_t *at, char *canonical, size_t canonlen,
	      int (*before_commit)(void *arg, unsigned gen), void *arg)
{
	int rc;

	if (reason_code(reason) < 0)
		return SFTCA_ERR_INVALID;
	if (serial_canonical(serial, canonical, canonlen) != 0)
		return SFTCA_ERR_INVALID;
	*at = time(NULL);
	if ((rc = admin_begin(r)) == 0)
		rc = ledger_revoke(r->ledger, ca_id, canonical,
				   reason && reason[0] ? reason : "unspecified", *at, generation,
				   before_commit, arg);
	if (rc == 0)
		atomic_fetch_add(&r->crl_epoch, 1);
	admin_end(r);
	return rc;
}

struct crl_fill {
	X509_CRL *crl;
	unsigned count;
};

static int crl_add_row(void *arg, const struct ledger_cert *row)
{
	struct crl_fill *f = arg;
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int code = reason_code(row->revocation_reason), ok = 0;

	if (rev == NULL || serial_from_hex(row->serial, &serial) != 0 ||
	    (when = ASN1_TIME_set(NULL, (time_t)row->revoked_at)) == NULL)
		goto out;
	if (!X509_REVOKED_set_serialNumber(rev, serial) || !X509_REVOKED_set_revocationDate(rev, when))
		goto out;
	if (code > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL || !ASN1_ENUMERATED_set(reason, code) ||
		    !X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0))
			goto out;
	}
	if (!X509_CRL_add0_revoked(f->crl, rev))
		goto out;
	rev = NULL;
	f->count++;
	ok = 1;
out:
	X509_REVOKED_free(rev);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	return ok ? 0 : SFTCA_ERR_CRYPTO;
}

/* One CRL for generation g, signed by its key in the token on behalf of call. */
static int crl_for(struct ca_registry *r, struct ca_gen *g, struct token_call *call,
		   uint64_t number, int64_t now, int64_t next, unsigned *count, char **pem)
{
	EVP_PKEY *signer = NULL;
	struct crl_fill f = { X509_CRL_new(), 0 };
	ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)now), *nu = ASN1_TIME_set(NULL, (time_t)next);
	ASN1_INTEGER *num = ASN1_INTEGER_new();
	int rc = SFTCA_ERR_CRYPTO;

	*pem = NULL;
	if (!f.crl || !tu || !nu || !num || !ASN1_INTEGER_set_uint64(num, number) ||
	    !X509_CRL_set_version(f.crl, X509_CRL_VERSION_2) ||
	    !X509_CRL_set_issuer_name(f.crl, X509_get_subject_name(g->cert)) ||
	    !X509_CRL_set1_lastUpdate(f.crl, tu) || !X509_CRL_set1_nextUpdate(f.crl, nu) ||
	    !X509_CRL_add1_ext_i2d(f.crl, NID_crl_number, num, 0, 0))
		goto out;
	if (X509_get0_subject_key_id(g->cert) != NULL) {
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		int ok = akid != NULL &&
			 (akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(g->cert))) &&
			 X509_CRL_add1_ext_i2d(f.crl, NID_authority_key_identifier, akid, 0, 0);
		AUTHORITY_KEYID_free(akid);
		if (!ok)
			goto out;
	}
	if ((rc = ledger_revoked_by_key(r->ledger, g->info.ca_id, g->info.key_label, crl_add_row,
					&f)) != 0)
		goto out;
	rc = SFTCA_ERR_CRYPTO;
	X509_CRL_sort(f.crl);
	if ((signer = token_pkey_new(g->key, call)) == NULL)
		goto out;
	call->error = 0;
	if (X509_CRL_sign(f.crl, signer, profile_digest(token_key_public(g->key))) <= 0) {
		log_crypto("signing the CRL in the token");
		rc = call->error ? call->error : SFTCA_ERR_CRYPTO;
		goto out;
	}
	if (X509_CRL_verify(f.crl, token_key_public(g->key)) != 1) {
		log_error("CRL signature from the token does not verify");
		rc = SFTCA_ERR_VERIFY;
		goto out;
	}
	if ((*pem = crl_to_pem(f.crl)) == NULL)
		goto out;
	*count = f.count;
	rc = 0;
out:
	ERR_clear_error();
	EVP_PKEY_free(signer);
	X509_CRL_free(f.crl);
	ASN1_TIME_free(tu);
	ASN1_TIME_free(nu);
	ASN1_INTEGER_free(num);
	return rc;
}

static int crl_sign(struct ca_registry *r, const char *ca_id, unsigned days,
		    struct token_call *call, struct ca_crl_result *out)
{
	struct ca_gen *gens[16];
	size_t ng = 0;
	struct ca *c;
	char *all = NULL;
	size_t len = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (days > 3650)
		return SFTCA_ERR_INVALID;
	/* Reference the bundle generations, active first, then sign outside the lock. */
	pthread_rwlock_rdlock(&r->lock);
	if ((c = ca_find(r, ca_id)) == NULL) {
		rc = SFTCA_ERR_NOT_FOUND;
	} else {
		struct ca_gen *a = ca_active(c);
		if (a)
			gens[ng++] = a;
		for (size_t i = c->n; i-- > 0 && ng < 16;)
			if (c->gens[i]->info.state == GEN_RETIRING)
				gens[ng++] = c->gens[i];
		for (size_t i = 0; i < ng; i++) {
			if (gens[i]->pkey == NULL)
				rc = SFTCA_ERR_PRECONDITION;
			atomic_fetch_add(&gens[i]->refs, 1);
		}
	}
	pthread_rwlock_unlock(&r->lock);
	if (rc == 0 && ng == 0)
		rc = SFTCA_ERR_NOT_FOUND;
	if (rc == 0)
		rc = ledger_next_crl_number(r->ledger, ca_id, &out->number);
	out->this_update = time(NULL);
	if (days > 0) {
		out->next_update = out->this_update + (int64_t)days * 86400;
	} else {
		/* Until the newest CA certificate of the bundle expires: a CRL that
		 * ran out first would drop every tunnel whose sftunnel checks
		 * nextUpdate, the very outage renewal prevents. A day at least, for
		 * a CA already past its end. */
		out->next_update = out->this_update + 86400;
		for (size_t i = 0; i < ng; i++)
			if (x509_not_after(gens[i]->cert) > out->next_update)
				out->next_update = x509_not_after(gens[i]->cert);
	}
	for (size_t i = 0; i < ng && rc == 0; i++) {
		char *pem, *grown;
		unsigned count = 0;
		if ((rc = crl_for(r, gens[i], call, out->number, out->this_update, out->next_update,
				  &count, &pem)) != 0)
			break;
		if ((grown = realloc(all, len + strlen(pem) + 1)) == NULL) {
			free(pem);
			rc = SFTCA_ERR_NOMEM;
			break;
		}
		all = grown;
		memcpy(all + len, pem, strlen(pem) + 1);
		len += strlen(pem);
		free(pem);
		out->revoked += count;
	}
	for (size_t i = 0; i < ng; i++)
		ca_gen_put(gens[i]);
	if (rc != 0) {
		free(all);
		return rc;
	}
	out->pem = all;
	return 0;
}

int ca_crl(struct ca_registry *r, const char *ca_id, unsigned days, struct token_call *call,
	   struct ca_crl_result *out)
{
	int rc = crl_sign(r, ca_id, days, call, out);

	out->signed_now = rc == 0;
	return rc;
}

static struct crl_cache *crl_cached(struct ca_registry *r, const char *ca_id)
{
	struct crl_cache *grown;

	for (size_t i = 0; i < r->ncrls; i++)
		if (strcmp(r->crls[i].ca_id, ca_id) == 0)
			return &r->crls[i];
	if ((grown = realloc(r->crls, (r->ncrls + 1) * sizeof(*grown))) == NULL)
		return NULL;
	r->crls = grown;
	memset(&grown[r->ncrls], 0, sizeof(*grown));
	snprintf(grown[r->ncrls].ca_id, sizeof(grown[r->ncrls].ca_id), "%s", ca_id);
	return &grown[r->ncrls++];
}

int ca_crl_current(struct ca_registry *r, const char *ca_id, struct token_call *call,
		   struct ca_crl_result *out)
{
	int64_t now = time(NULL);
	uint64_t epoch, last = 0;
	struct crl_cache *c;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if ((rc = registry_sync(r)) != 0)
		return rc;
	pthread_mutex_lock(&r->crl_mu);
	if ((c = crl_cached(r, ca_id)) == NULL) {
		rc = SFTCA_ERR_NOMEM;
		goto out;
	}
	/* Another signer of the ledger may have published a later number:
	 * serving ours after it would make the numbers go back. */
	if ((rc = ledger_crl_last(r->ledger, ca_id, &last)) != 0)
		goto out;
	/* Fresh: nothing revoked and no CA changed since (a renewal moves the
	 * nextUpdate it must reach), and not yet past it. */
	epoch = atomic_load(&r->crl_epoch);
	if (c->crl.pem == NULL || c->epoch != epoch || c->crl.next_update <= now ||
	    last > c->crl.number) {
		struct ca_crl_result fresh;
		if ((rc = crl_sign(r, ca_id, 0, call, &fresh)) != 0)
			goto out;
		free(c->crl.pem);
		c->crl = fresh;
		c->epoch = epoch;
		out->signed_now = 1;
	}
	out->number = c->crl.number;
	out->this_update = c->crl.this_update;
	out->next_update = c->crl.next_update;
	out->revoked = c->crl.revoked;
	if ((out->pem = strdup(c->crl.pem)) == NULL)
		rc = SFTCA_ERR_NOMEM;
out:
	pthread_mutex_unlock(&r->crl_mu);
	return rc;
}
