/* The CAs the signer holds: one per FMC UUID, each a list of generations
 * (one CA certificate each). The ledger is the record; the token holds the
 * keys. CA-changing operations are serialized; issuing takes a reference on
 * the active generation so a concurrent rotation never pulls a key from
 * under a batch. */
#ifndef SFTCA_CA_H
#define SFTCA_CA_H

#include "ledger.h"
#include "msg.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>

struct token;
struct token_call;
struct ca_registry;
struct ca_gen;

#define CA_DEFAULT_DAYS 3650
#define CA_MAX_DAYS 36500

/* Load every CA from the ledger and open the keys of generations still in
 * the bundle. A key missing from the token is logged; that CA then refuses
 * to sign until it is fixed. */
int ca_registry_load(struct token *t, struct ledger *l, struct ca_registry **out)
	__attribute__((warn_unused_result));
void ca_registry_free(struct ca_registry *r);

/* The active generation of ca_id, referenced; release with ca_gen_put().
 * SFTCA_ERR_NOT_FOUND for an unknown CA, SFTCA_ERR_PRECONDITION when its
 * key is not usable. */
int ca_get_active(struct ca_registry *r, const char *ca_id, struct ca_gen **out)
	__attribute__((warn_unused_result));
void ca_gen_put(struct ca_gen *g);
X509 *ca_gen_cert(const struct ca_gen *g);
/* A new token-backed key of g that signs on behalf of call (its deadline, its
 * error); free with EVP_PKEY_free before call goes. NULL when out of memory. */
EVP_PKEY *ca_gen_signer(const struct ca_gen *g, struct token_call *call);
const struct ledger_gen *ca_gen_info(const struct ca_gen *g);

/* Trust bundle PEM (active, then retiring) as a malloc'd string. */
int ca_bundle_pem(struct ca_registry *r, const char *ca_id, char **pem)
	__attribute__((warn_unused_result));
/* PEM of one generation (0 = active). */
int ca_cert_pem(struct ca_registry *r, const char *ca_id, unsigned generation, unsigned *gen_out,
		char **pem) __attribute__((warn_unused_result));

/* Call fn for each CA (or only ca_id) with its generations, under the read lock. */
typedef int (*ca_visit_fn)(void *arg, const char *ca_id, const char *subject,
			   const struct ledger_gen *const *gens, size_t n, unsigned active,
			   enum ca_custody custody);
int ca_foreach(struct ca_registry *r, const char *ca_id, ca_visit_fn fn, void *arg)
	__attribute__((warn_unused_result));

struct ca_change {
	unsigned generation;   /* created by the operation */
	uint64_t live_leaves;  /* finalize: live leaves of retiring generations */
	unsigned retired;      /* finalize: generations moved to retired */
	struct sftca_msg message; /* why a refusal happened, for the caller */
};

/* Every operation validates its inputs, writes the ledger in one
 * transaction, and leaves no token objects behind when it fails. Each token
 * wait (a session for key generation, import, storing, lookups, the CA
 * signature) ends at call's deadline (SFTCA_ERR_TIMEOUT; NULL: 30 s each);
 * call->error is scratch. Finalizing uses no token. */
int ca_create(struct ca_registry *r, const char *ca_id, const char *key_type, unsigned days,
	      const char *requester, struct token_call *call, struct ca_change *res)
	__attribute__((warn_unused_result));
int ca_renew(struct ca_registry *r, const char *ca_id, unsigned days, const char *requester,
	     struct token_call *call, struct ca_change *res) __attribute__((warn_unused_result));
/* Refused (SFTCA_ERR_PRECONDITION) for a CA in 'shared' custody unless
 * force: the FMC would keep signing registrations with the old key. */
int ca_rotate(struct ca_registry *r, const char *ca_id, const char *key_type, unsigned days,
	      int force, const char *requester, struct token_call *call, struct ca_change *res)
	__attribute__((warn_unused_result));
int ca_finalize(struct ca_registry *r, const char *ca_id, int force, const char *requester,
		struct ca_change *res) __attribute__((warn_unused_result));
/* Move an existing CA (certificate + private key) into the token, with its
 * custody (CUSTODY_SHARED when the FMC keeps its copy). */
int ca_import(struct ca_registry *r, const char *ca_id, X509 *cert, EVP_PKEY *key,
	      enum ca_custody custody, const char *requester, struct token_call *call,
	      struct ca_change *res) __attribute__((warn_unused_result));
/* Record ca_id's custody (the ledger first, then memory); *previous = what
 * it was. An unchanged custody writes nothing. */
int ca_set_custody(struct ca_registry *r, const char *ca_id, enum ca_custody custody,
		   const char *requester, enum ca_custody *previous, struct ca_change *res)
	__attribute__((warn_unused_result));

/* Revoke serial (issued by any generation of ca_id). */
int ca_revoke(struct ca_registry *r, const char *ca_id, const char *serial, const char *reason,
	      unsigned *generation, int64_t *at, char *canonical, size_t canonlen,
	      int (*before_commit)(void *arg, unsigned gen), void *arg)
	__attribute__((warn_unused_result));
/* 1 when reason is a revocation reason this CA accepts. */
int ca_reason_valid(const char *reason);

struct ca_crl_result {
	char *pem;             /* one CRL per bundle generation, active first */
	uint64_t number;
	int64_t this_update, next_update;
	unsigned revoked;
	int signed_now;        /* signed in the token by this call (else served from memory) */
};
/* A new CRL set for ca_id valid for days (0 = until the latest notAfter of
 * the bundle's CA certificates), signed now by call's deadline (a token
 * failure is left in call->error): the admin's call. */
int ca_crl(struct ca_registry *r, const char *ca_id, unsigned days, struct token_call *call,
	   struct ca_crl_result *out) __attribute__((warn_unused_result));
/* The signer's own CRL set for ca_id, valid until the CA certificates
 * expire: the last one it signed while fresh (no revocation or CA change
 * since), else a new one, signed now. For everyone but admins. */
int ca_crl_current(struct ca_registry *r, const char *ca_id, struct token_call *call,
		   struct ca_crl_result *out) __attribute__((warn_unused_result));

#endif
