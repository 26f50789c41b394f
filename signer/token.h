/* The PKCS#11 token: the only door to the HSM. Loads the module, finds the
 * token by label, logs in exactly once per connection, keeps a pool of
 * sessions, generates and imports non-extractable keys, stores
 * certificates, and signs. A device or session failure marks the token
 * lost; a background thread reconnects (at most one attempt per
 * TOKEN_RETRY_SECONDS, one C_Login each) until it is back, and stops for
 * good on a wrong or locked PIN. */
#ifndef SFTCA_TOKEN_H
#define SFTCA_TOKEN_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_RETRY_SECONDS 3
/* How long recovery waits for calls inside the module before saying so. */
#define TOKEN_WEDGED_SECONDS 10

struct token;
struct token_key;

enum token_state {
	TOKEN_STATE_READY = 1,
	TOKEN_STATE_LOST = 2,
	TOKEN_STATE_RECOVERING = 3,
	TOKEN_STATE_FAILED = 4,
};

enum token_mech {
	TOKEN_MECH_RSA_PKCS = 1, /* input: DER DigestInfo */
	TOKEN_MECH_ECDSA = 2,    /* input: raw digest; output: r || s */
};

struct token_opts {
	const char *module;
	const char *label;
	const char *pin_file;
	int sessions;        /* size of the session pool, >= 1 */
	int recover;         /* 1: start the recovery thread */
};

/* Load, find the token, log in once and open the pool. Errors are
 * logged as one clear line; SFTCA_ERR_PIN means the PIN was refused (and
 * was not retried). */
int token_open(const struct token_opts *o, struct token **out) __attribute__((warn_unused_result));
/* Initialise a fresh token: the first uninitialised slot gets label, the
 * SO PIN and the user PIN from their files (mode-checked, wiped). 0 also
 * when a token with this label already exists (*created = 0 then). */
int token_init(const char *module, const char *label, const char *so_pin_file,
	       const char *pin_file, int *created) __attribute__((warn_unused_result));
/* Stop recovery, close sessions, log out, finalize, unload. NULL is a no-op. */
void token_close(struct token *t);

/* Current state; msg (optional) receives the last error text. */
enum token_state token_state(struct token *t, char *msg, size_t msglen);
/* Counters for tests and status: C_Login calls and completed recoveries. */
void token_counters(struct token *t, uint64_t *logins, uint64_t *recoveries);

/* One caller's use of the token, owned by that caller and never shared
 * between threads: how long to wait for a session (in) and why the last
 * signature failed (out). */
struct token_call {
	int64_t deadline_ms; /* CLOCK_MONOTONIC (clock.h); 0: 30 s from each call */
	int error;           /* SFTCA_ERR_* of the last token_sign(), 0 when it worked */
};

/* Object work waits for a session until call's deadline, like token_sign
 * (call NULL or its deadline 0: 30 s from each wait); call->error is left
 * alone. */

/* Generate a key pair named label inside the token (private half
 * sensitive, never extractable, token object). key_type: "rsa:2048",
 * "rsa:3072", "rsa:4096", "ec:p256", "ec:p384". *pub receives the public key. */
int token_generate_key(struct token *t, const struct token_call *call, const char *label,
		       const char *key_type, EVP_PKEY **pub) __attribute__((warn_unused_result));
/* Import an existing private key as a sensitive, non-extractable object. */
int token_import_key(struct token *t, const struct token_call *call, const char *label,
		     EVP_PKEY *priv) __attribute__((warn_unused_result));
/* Store a certificate object with the key's CKA_ID under cert_label. */
int token_store_cert(struct token *t, const struct token_call *call, const char *key_label,
		     const char *cert_label, X509 *x) __attribute__((warn_unused_result));
/* Destroy every object (keys, certificates) with this label. */
int token_destroy_label(struct token *t, const struct token_call *call, const char *label);
/* SFTCA_ERR_EXISTS when any object carries this label, 0 when none does. */
int token_label_free(struct token *t, const struct token_call *call, const char *label)
	__attribute__((warn_unused_result));

struct token_key_attrs {
	int sensitive, extractable, always_sensitive, never_extractable, local;
};
int token_key_attrs(struct token *t, const struct token_call *call, const char *label,
		    struct token_key_attrs *a) __attribute__((warn_unused_result));

/* A handle on the private key named label; its public key is read from the
 * token. Survives recovery (the object handle is looked up again). */
int token_key_open(struct token *t, const struct token_call *call, const char *label,
		   struct token_key **out) __attribute__((warn_unused_result));
void token_key_free(struct token_key *k);
EVP_PKEY *token_key_public(struct token_key *k);
/* Sign in the token, waiting for a session until call's deadline (call may
 * be NULL: the default wait); the result is also left in call->error.
 * *siglen: in = buffer size, out = signature length. SFTCA_ERR_TOKEN_LOST
 * when the token is (or just became) unavailable, SFTCA_ERR_TIMEOUT when no
 * session came free before the deadline. */
int token_sign(struct token_key *k, struct token_call *call, enum token_mech m,
	       const unsigned char *in, size_t inlen, unsigned char *sig, size_t *siglen)
	__attribute__((warn_unused_result));

/* An EVP_PKEY whose private operations (X509_sign, X509_CRL_sign, ...) run
 * in the token through k, on behalf of call (NULL: the default wait, no
 * error kept). k and call must outlive it. */
EVP_PKEY *token_pkey_new(struct token_key *k, struct token_call *call);

#endif
