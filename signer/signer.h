/* The running signer: everything a request handler may use. */
#ifndef SFTCA_SIGNER_H
#define SFTCA_SIGNER_H

#include "config.h"
#include "msg.h"
#include "token.h"

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

struct token;
struct ledger;
struct ca_registry;
struct signpool;
struct audit;
struct ratelimit;

struct signer {
	const struct signer_config *cfg;
	struct token *token;
	struct ledger *ledger;
	struct ca_registry *cas;
	struct signpool *pool;
	struct audit *audit;
	struct ratelimit *issue_rl;
	struct token_key *audit_key; /* the audit anchor (anchor.h) */
	EVP_PKEY *audit_pkey;
	struct anchor *anchor;
};

/* Who is calling, as the server established it. */
struct caller {
	char identity[192];   /* "cn=<CN>" or "unix" */
	enum role role;
	const struct authz_entry *authz; /* NULL for unix callers */
	char peer[128];       /* transport address, for logs */
};

/* One call, owned by whoever answers it and passed down explicitly (no
 * thread-locals): the deadline goes down to the token's sign calls, the
 * token's error and the message for the caller come back up. */
struct signer_call {
	struct token_call token; /* deadline_ms in (CLOCK_MONOTONIC), error out */
	struct sftca_msg msg;    /* for the caller; empty: sftca_strerror(r) */
};

struct issue_in {
	const char *peer_uuid;
	const unsigned char *csr;
	size_t csr_len;
};

struct issue_out {
	int code;             /* grpc status code; 0 = issued */
	struct sftca_msg message;
	unsigned char *der;   /* OPENSSL_malloc'd; free with OPENSSL_free */
	size_t der_len;
	char serial[80];
};

/* Validate, reserve in the ledger, sign in the token (in parallel, by
 * call's deadline), verify, record. Per-item failures are in out[i]; a
 * non-zero return means the whole batch failed (call->msg says why) and
 * nothing was released. */
int issue_batch(struct signer *s, const struct caller *who, struct signer_call *call,
		const char *ca_id, unsigned days, const struct issue_in *in, size_t n,
		struct issue_out *out, unsigned *generation) __attribute__((warn_unused_result));
void issue_out_clear(struct issue_out *out, size_t n);

#endif
