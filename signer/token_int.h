/* The token's insides, shared by its files and by no one else (libp11's
 * libp11-int.h): token.c owns the connection, sessions, recovery and the
 * signing hot path; token_obj.c provisions and looks up objects;
 * token_init.c initialises a fresh token (admin only). */
#ifndef SFTCA_TOKEN_INT_H
#define SFTCA_TOKEN_INT_H

#include "token.h"

#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdatomic.h>

struct token {
	char *module, *label, *pin_file;
	int nsessions;
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SLOT_ID slot;

	/* Held shared by every operation that uses the module, exclusively by
	 * connect/disconnect: the module is never finalized under a caller. */
	pthread_rwlock_t lock;

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	CK_SESSION_HANDLE *pool;
	int pool_free;   /* sessions available in pool[0..pool_free) */
	int pool_open;   /* sessions opened in this connection */

	pthread_mutex_t state_mu;
	pthread_cond_t state_cv;
	enum token_state state;
	char last_error[256];
	int stopping;
	int recover;
	pthread_t recovery;
	int recovery_started;

	atomic_uint epoch;  /* bumped per connection: object handles go stale */
	atomic_ullong logins, recoveries;
	pthread_mutex_t keygen_mu; /* SoftHSM2 2.6.1 races on concurrent keygen */
};

struct token_key {
	struct token *t;
	char label[128];
	pthread_mutex_t mu;
	CK_OBJECT_HANDLE handle;
	unsigned epoch;
	EVP_PKEY *pub;
};
/* --- token.c ------------------------------------------------------------- */

const char *token_ckr_name(CK_RV rv);
/* Record a failed call and return its SFTCA_ERR_* code; a lost-token code
 * marks the token lost and wakes the recovery thread. */
int token_fail(struct token *t, const char *what, CK_RV rv);
/* Shared lock + one pooled session by call's deadline (NULL or deadline 0:
 * 30 s from now), or TOKEN_LOST/TIMEOUT without waiting on a token that is
 * not ready. Every session_get is paired with a put. */
int token_session_get(struct token *t, const struct token_call *call, CK_SESSION_HANDLE *s);
void token_session_put(struct token *t, CK_SESSION_HANDLE s);
/* dlopen the module (once) and C_Initialize it. */
int token_module_load(struct token *t);
/* Set t->slot to the slot whose token carries t->label; quiet: no log
 * line when there is none. */
int token_slot_find(struct token *t, int quiet);

/* --- token_obj.c --------------------------------------------------------- */

/* The one object of class cls named label (SFTCA_ERR_NOT_FOUND if none). */
int token_find_one(struct token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
		   CK_OBJECT_HANDLE *h);
/* Public key of the key pair named label, from its public key object. */
int token_read_public(struct token *t, CK_SESSION_HANDLE s, const char *label, EVP_PKEY **out);

#endif
