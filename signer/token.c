/* PKCS#11 through the module's own function list. libp11 0.4.12 cannot
 * re-login or reopen sessions after the token side restarts and its session
 * pool can block forever when C_OpenSession fails, so sessions, login and
 * recovery are owned here (DESIGN.md 8). */
#include "token.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"

#include <dlfcn.h>
#include <errno.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_WAIT_MS 30000

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

static _Thread_local int64_t tl_deadline;
static _Thread_local int tl_sign_error;

int64_t token_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void token_set_deadline(int64_t monotonic_ms)
{
	tl_deadline = monotonic_ms;
}

int token_last_sign_error(void)
{
	return tl_sign_error;
}

static const char *ckr_name(CK_RV rv)
{
	switch (rv) {
#define C(x) \
	case x: \
		return #x;
		C(CKR_OK) C(CKR_HOST_MEMORY) C(CKR_SLOT_ID_INVALID) C(CKR_GENERAL_ERROR)
		C(CKR_FUNCTION_FAILED) C(CKR_ARGUMENTS_BAD) C(CKR_ATTRIBUTE_READ_ONLY)
		C(CKR_ATTRIBUTE_SENSITIVE) C(CKR_ATTRIBUTE_TYPE_INVALID)
		C(CKR_ATTRIBUTE_VALUE_INVALID) C(CKR_DATA_INVALID) C(CKR_DATA_LEN_RANGE)
		C(CKR_DEVICE_ERROR) C(CKR_DEVICE_MEMORY) C(CKR_DEVICE_REMOVED)
		C(CKR_FUNCTION_NOT_SUPPORTED) C(CKR_KEY_HANDLE_INVALID) C(CKR_KEY_SIZE_RANGE)
		C(CKR_KEY_TYPE_INCONSISTENT) C(CKR_MECHANISM_INVALID)
		C(CKR_MECHANISM_PARAM_INVALID) C(CKR_OBJECT_HANDLE_INVALID)
		C(CKR_OPERATION_ACTIVE) C(CKR_OPERATION_NOT_INITIALIZED) C(CKR_PIN_INCORRECT)
		C(CKR_PIN_INVALID) C(CKR_PIN_LEN_RANGE) C(CKR_PIN_EXPIRED) C(CKR_PIN_LOCKED)
		C(CKR_SESSION_CLOSED) C(CKR_SESSION_COUNT) C(CKR_SESSION_HANDLE_INVALID)
		C(CKR_SESSION_READ_ONLY) C(CKR_TEMPLATE_INCOMPLETE) C(CKR_TEMPLATE_INCONSISTENT)
		C(CKR_TOKEN_NOT_PRESENT) C(CKR_TOKEN_NOT_RECOGNIZED)
		C(CKR_TOKEN_WRITE_PROTECTED) C(CKR_USER_ALREADY_LOGGED_IN)
		C(CKR_USER_NOT_LOGGED_IN) C(CKR_USER_PIN_NOT_INITIALIZED)
		C(CKR_USER_TYPE_INVALID) C(CKR_BUFFER_TOO_SMALL)
		C(CKR_CRYPTOKI_NOT_INITIALIZED) C(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef C
	default:
		return "CKR_(unknown)";
	}
}

/* The codes that mean "the token went away", not "this request was bad". */
static int ckr_is_lost(CK_RV rv)
{
	switch (rv) {
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_TOKEN_NOT_RECOGNIZED:
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return 1;
	default:
		return 0;
	}
}

static int ckr_is_pin(CK_RV rv)
{
	return rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_INVALID ||
	       rv == CKR_PIN_LEN_RANGE || rv == CKR_PIN_EXPIRED;
}

/* Record a failed call; a lost-token code wakes the recovery thread. */
static int fail(struct token *t, const char *what, CK_RV rv)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s (0x%lx)", what, ckr_name(rv), (unsigned long)rv);
	if (ckr_is_lost(rv)) {
		pthread_mutex_lock(&t->state_mu);
		if (t->state == TOKEN_STATE_READY) {
			t->state = TOKEN_STATE_LOST;
			snprintf(t->last_error, sizeof(t->last_error), "%s", msg);
			log_error("token '%s' lost: %s; calls fail with UNAVAILABLE until it is back",
				  t->label, msg);
			pthread_cond_broadcast(&t->state_cv);
		}
		pthread_mutex_unlock(&t->state_mu);
		return SFTCA_ERR_TOKEN_LOST;
	}
	log_error("token '%s': %s", t->label, msg);
	return ckr_is_pin(rv) ? SFTCA_ERR_PIN : SFTCA_ERR_TOKEN;
}

enum token_state token_state(struct token *t, char *msg, size_t msglen)
{
	enum token_state s;

	pthread_mutex_lock(&t->state_mu);
	s = t->state;
	if (msg && msglen)
		snprintf(msg, msglen, "%s", t->last_error);
	pthread_mutex_unlock(&t->state_mu);
	return s;
}

void token_counters(struct token *t, uint64_t *logins, uint64_t *recoveries)
{
	if (logins)
		*logins = atomic_load(&t->logins);
	if (recoveries)
		*recoveries = atomic_load(&t->recoveries);
}

/* --- sessions ------------------------------------------------------------ */

static int64_t deadline_ms(void)
{
	return tl_deadline ? tl_deadline : token_monotonic_ms() + DEFAULT_WAIT_MS;
}

/* Shared lock + one pooled session, or TOKEN_LOST/TIMEOUT without waiting
 * on a token that is not ready. */
static int session_get(struct token *t, CK_SESSION_HANDLE *s)
{
	int64_t until = deadline_ms();
	struct timespec ts;
	int r = 0;

	if (token_state(t, NULL, 0) != TOKEN_STATE_READY)
		return SFTCA_ERR_TOKEN_LOST;
	ts.tv_sec = until / 1000;
	ts.tv_nsec = (until % 1000) * 1000000;
	if (pthread_rwlock_clockrdlock(&t->lock, CLOCK_MONOTONIC, &ts) != 0)
		return SFTCA_ERR_TIMEOUT;
	pthread_mutex_lock(&t->pool_mu);
	while (t->pool_free == 0 && r == 0) {
		/* Wake at least every 200 ms to notice a token that went away. */
		int64_t now = token_monotonic_ms(), slice = now + 200 < until ? now + 200 : until;
		struct timespec sts = { slice / 1000, (slice % 1000) * 1000000 };

		if (token_state(t, NULL, 0) != TOKEN_STATE_READY)
			r = SFTCA_ERR_TOKEN_LOST;
		else if (now >= until)
			r = SFTCA_ERR_TIMEOUT;
		else
			pthread_cond_timedwait(&t->pool_cv, &t->pool_mu, &sts);
	}
	if (r == 0)
		*s = t->pool[--t->pool_free];
	pthread_mutex_unlock(&t->pool_mu);
	if (r != 0)
		pthread_rwlock_unlock(&t->lock);
	return r;
}

static void session_put(struct token *t, CK_SESSION_HANDLE s)
{
	pthread_mutex_lock(&t->pool_mu);
	t->pool[t->pool_free++] = s;
	pthread_cond_signal(&t->pool_cv);
	pthread_mutex_unlock(&t->pool_mu);
	pthread_rwlock_unlock(&t->lock);
}

/* --- connect / disconnect (caller holds the lock exclusively) ------------- */

static int module_load(struct token *t)
{
	CK_RV (*get_list)(CK_FUNCTION_LIST_PTR_PTR);
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv;

	if (t->dl == NULL) {
		if ((t->dl = dlopen(t->module, RTLD_NOW | RTLD_LOCAL)) == NULL) {
			log_error("PKCS#11 module %s cannot be loaded: %s", t->module, dlerror());
			return SFTCA_ERR_CONFIG;
		}
		*(void **)&get_list = dlsym(t->dl, "C_GetFunctionList");
		if (get_list == NULL || get_list(&t->f) != CKR_OK || t->f == NULL) {
			log_error("%s is not a PKCS#11 module (no C_GetFunctionList)", t->module);
			dlclose(t->dl);
			t->dl = NULL;
			return SFTCA_ERR_CONFIG;
		}
	}
	rv = t->f->C_Initialize(&args);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		log_error("PKCS#11 module %s: C_Initialize: %s", t->module, ckr_name(rv));
		return ckr_is_lost(rv) ? SFTCA_ERR_TOKEN_LOST : SFTCA_ERR_TOKEN;
	}
	return 0;
}

static int slot_find(struct token *t, int quiet)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;
	char seen[512] = "";
	size_t seenlen = 0;
	CK_RV rv;

	if ((rv = t->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		log_error("PKCS#11 module %s: C_GetSlotList: %s", t->module, ckr_name(rv));
		return ckr_is_lost(rv) || rv == CKR_GENERAL_ERROR ? SFTCA_ERR_TOKEN_LOST
								   : SFTCA_ERR_TOKEN;
	}
	for (CK_ULONG i = 0; i < n; i++) {
		char label[33];
		int len = 32;

		if (t->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		memcpy(label, ti.label, 32);
		while (len > 0 && label[len - 1] == ' ')
			len--;
		label[len] = '\0';
		if (strcmp(label, t->label) == 0) {
			t->slot = slots[i];
			return 0;
		}
		if (seenlen + (size_t)len + 4 < sizeof(seen))
			seenlen += (size_t)snprintf(seen + seenlen, sizeof(seen) - seenlen, "%s'%s'",
						    seenlen ? ", " : "", label);
	}
	if (!quiet)
		log_error("no token labelled '%s' in %s (tokens present: %s)", t->label, t->module,
			  seenlen ? seen : "none");
	return SFTCA_ERR_NOT_FOUND;
}

/* Exactly one C_Login per connection: a PIN is never retried. */
static int login(struct token *t, CK_SESSION_HANDLE s)
{
	char *pin = NULL;
	size_t pinlen = 0;
	CK_RV rv;
	int r;

	if ((r = secret_read_file(t->pin_file, &pin, &pinlen)) != 0)
		return r == SFTCA_ERR_FILE_MODE ? r : SFTCA_ERR_CONFIG;
	atomic_fetch_add(&t->logins, 1);
	rv = t->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, pinlen);
	secret_free(pin, pinlen);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return 0;
	if (ckr_is_pin(rv)) {
		log_error("token '%s' refused the PIN from %s: %s; not retried (a retry could "
			  "lock the token)",
			  t->label, t->pin_file, ckr_name(rv));
		return SFTCA_ERR_PIN;
	}
	log_error("token '%s': C_Login: %s", t->label, ckr_name(rv));
	return ckr_is_lost(rv) ? SFTCA_ERR_TOKEN_LOST : SFTCA_ERR_TOKEN;
}

static void disconnect(struct token *t)
{
	if (t->f == NULL)
		return;
	/* Sessions may already be dead; errors here change nothing. */
	for (int i = 0; i < t->pool_open; i++)
		t->f->C_CloseSession(t->pool[i]);
	t->pool_open = t->pool_free = 0;
	t->f->C_Finalize(NULL);
}

static int connect_token(struct token *t)
{
	CK_RV rv;
	int r;

	if ((r = module_load(t)) != 0)
		return r;
	if ((r = slot_find(t, 0)) != 0)
		goto fail;
	for (int i = 0; i < t->nsessions; i++) {
		rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					 &t->pool[i]);
		if (rv != CKR_OK) {
			log_error("token '%s': C_OpenSession: %s", t->label, ckr_name(rv));
			r = ckr_is_lost(rv) || rv == CKR_GENERAL_ERROR ? SFTCA_ERR_TOKEN_LOST
								       : SFTCA_ERR_TOKEN;
			goto fail;
		}
		t->pool_open = i + 1;
	}
	if ((r = login(t, t->pool[0])) != 0)
		goto fail;
	t->pool_free = t->pool_open;
	atomic_fetch_add(&t->epoch, 1);
	return 0;
fail:
	disconnect(t);
	return r;
}

static void *recovery_main(void *arg)
{
	struct token *t = arg;

	pthread_mutex_lock(&t->state_mu);
	for (;;) {
		struct timespec ts;
		int r;

		while (!t->stopping && t->state != TOKEN_STATE_LOST)
			pthread_cond_wait(&t->state_cv, &t->state_mu);
		if (t->stopping)
			break;
		t->state = TOKEN_STATE_RECOVERING;
		pthread_mutex_unlock(&t->state_mu);

		/* Callers see RECOVERING and fail fast; the exclusive lock waits
		 * only for operations already inside the module. */
		pthread_mutex_lock(&t->pool_mu);
		pthread_cond_broadcast(&t->pool_cv);
		pthread_mutex_unlock(&t->pool_mu);
		{
			struct timespec wts;
			clock_gettime(CLOCK_MONOTONIC, &wts);
			wts.tv_sec += TOKEN_WEDGED_SECONDS;
			if (pthread_rwlock_clockwrlock(&t->lock, CLOCK_MONOTONIC, &wts) != 0) {
				log_error("token '%s': a call into %s has not returned for %d s; "
					  "recovery waits for it (a module that never returns "
					  "needs a restart of the signer)",
					  t->label, t->module, TOKEN_WEDGED_SECONDS);
				pthread_rwlock_wrlock(&t->lock);
			}
		}
		disconnect(t);
		r = connect_token(t);
		pthread_rwlock_unlock(&t->lock);

		pthread_mutex_lock(&t->state_mu);
		if (r == 0) {
			t->state = TOKEN_STATE_READY;
			t->last_error[0] = '\0';
			atomic_fetch_add(&t->recoveries, 1);
			log_info("token '%s' is back: logged in again, signing resumes", t->label);
			pthread_cond_broadcast(&t->state_cv);
			continue;
		}
		if (r == SFTCA_ERR_PIN || r == SFTCA_ERR_FILE_MODE || r == SFTCA_ERR_CONFIG) {
			t->state = TOKEN_STATE_FAILED;
			snprintf(t->last_error, sizeof(t->last_error),
				 "recovery stopped: %s; fix it and restart the signer",
				 sftca_strerror(r));
			log_error("token '%s': %s", t->label, t->last_error);
			pthread_cond_broadcast(&t->state_cv);
			continue;
		}
		t->state = TOKEN_STATE_LOST;
		snprintf(t->last_error, sizeof(t->last_error), "reconnect failed: %s; retrying",
			 sftca_strerror(r));
		log_warn("token '%s': %s in %d s", t->label, t->last_error, TOKEN_RETRY_SECONDS);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += TOKEN_RETRY_SECONDS;
		while (!t->stopping &&
		       pthread_cond_clockwait(&t->state_cv, &t->state_mu, CLOCK_MONOTONIC, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&t->state_mu);
	return NULL;
}

int token_open(const struct token_opts *o, struct token **out)
{
	struct token *t = calloc(1, sizeof(*t));
	pthread_condattr_t ca;
	int r;

	*out = NULL;
	if (t == NULL)
		return SFTCA_ERR_NOMEM;
	t->nsessions = o->sessions > 0 ? o->sessions : 1;
	t->module = strdup(o->module);
	t->label = strdup(o->label);
	t->pin_file = strdup(o->pin_file);
	t->pool = calloc((size_t)t->nsessions, sizeof(*t->pool));
	t->recover = o->recover;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->pool_mu, NULL);
	pthread_mutex_init(&t->state_mu, NULL);
	pthread_mutex_init(&t->keygen_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->pool_cv, &ca);
	pthread_cond_init(&t->state_cv, &ca);
	pthread_condattr_destroy(&ca);
	if (!t->module || !t->label || !t->pin_file || !t->pool) {
		token_close(t);
		return SFTCA_ERR_NOMEM;
	}
	{
		const char *base = strrchr(t->module, '/');
		base = base ? base + 1 : t->module;
		/* p11-kit 0.24's RPC client can leave a caller waiting for ever
		 * when the connection drops while two calls share it (a reader's
		 * error does not wake the other reader), and recovery then waits
		 * for that caller. */
		if (strncmp(base, "p11-kit-client", 14) == 0 && t->nsessions > 1)
			log_warn("%s with %d sessions: if the remote side drops while two calls are "
				 "in flight, p11-kit's client can leave one waiting for ever and "
				 "recovery with it; set sessions = 1 for this module",
				 t->module, t->nsessions);
	}
	if ((r = connect_token(t)) != 0) {
		token_close(t);
		return r;
	}
	t->state = TOKEN_STATE_READY;
	if (t->recover) {
		if (pthread_create(&t->recovery, NULL, recovery_main, t) != 0) {
			token_close(t);
			return SFTCA_ERR_INTERNAL;
		}
		t->recovery_started = 1;
	}
	log_info("token '%s' ready: %d session%s, logged in", t->label, t->nsessions,
		 t->nsessions == 1 ? "" : "s");
	*out = t;
	return 0;
}

/* The first slot whose token is not initialised yet. */
static int free_slot(struct token *t, CK_SLOT_ID *slot)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;

	if (t->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
		return SFTCA_ERR_TOKEN;
	for (CK_ULONG i = 0; i < n; i++)
		if (t->f->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    !(ti.flags & CKF_TOKEN_INITIALIZED)) {
			*slot = slots[i];
			return 0;
		}
	log_error("%s has no free slot for a new token", t->module);
	return SFTCA_ERR_NOT_FOUND;
}

int token_init(const char *module, const char *label, const char *so_pin_file,
	       const char *pin_file, int *created)
{
	struct token t = { .module = (char *)module, .label = (char *)label };
	char *so = NULL, *pin = NULL, padded[32];
	size_t solen = 0, pinlen = 0;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	CK_SLOT_ID slot;
	CK_RV rv;
	int r;

	*created = 0;
	if (strlen(label) > 32) {
		log_error("token label '%s' is longer than 32 characters", label);
		return SFTCA_ERR_INVALID;
	}
	if ((r = module_load(&t)) != 0)
		return r;
	if (slot_find(&t, 1) == 0) {
		r = 0; /* already there: idempotent */
		goto out;
	}
	if ((r = free_slot(&t, &slot)) != 0 ||
	    (r = secret_read_file(so_pin_file, &so, &solen)) != 0 ||
	    (r = secret_read_file(pin_file, &pin, &pinlen)) != 0)
		goto out;
	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, strlen(label));
	r = SFTCA_ERR_TOKEN;
	if ((rv = t.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so, solen, (CK_UTF8CHAR_PTR)padded)) !=
	    CKR_OK) {
		log_error("C_InitToken: %s", ckr_name(rv));
		goto out;
	}
	/* SoftHSM moves a new token to a new slot: look it up by label. */
	if (slot_find(&t, 0) != 0)
		goto out;
	if ((rv = t.f->C_OpenSession(t.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) !=
		    CKR_OK ||
	    (rv = t.f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so, solen)) != CKR_OK ||
	    (rv = t.f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, pinlen)) != CKR_OK) {
		log_error("initialising the user PIN of token '%s': %s", label, ckr_name(rv));
		goto out;
	}
	t.f->C_Logout(s);
	*created = 1;
	r = 0;
out:
	if (s != CK_INVALID_HANDLE)
		t.f->C_CloseSession(s);
	secret_free(so, solen);
	secret_free(pin, pinlen);
	t.f->C_Finalize(NULL);
	dlclose(t.dl);
	return r;
}

void token_close(struct token *t)
{
	if (t == NULL)
		return;
	if (t->recovery_started) {
		pthread_mutex_lock(&t->state_mu);
		t->stopping = 1;
		pthread_cond_broadcast(&t->state_cv);
		pthread_mutex_unlock(&t->state_mu);
		pthread_join(t->recovery, NULL);
	}
	pthread_rwlock_wrlock(&t->lock);
	if (t->f != NULL && t->pool_open > 0)
		t->f->C_Logout(t->pool[0]);
	disconnect(t);
	pthread_rwlock_unlock(&t->lock);
	if (t->dl)
		dlclose(t->dl);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->pool_mu);
	pthread_mutex_destroy(&t->state_mu);
	pthread_mutex_destroy(&t->keygen_mu);
	pthread_cond_destroy(&t->pool_cv);
	pthread_cond_destroy(&t->state_cv);
	free(t->module);
	free(t->label);
	free(t->pin_file);
	free(t->pool);
	free(t);
}

/* --- objects ------------------------------------------------------------- */

static void label_id(const char *label, unsigned char id[SHA_DIGEST_LENGTH])
{
	/* CKA_ID ties a key pair and its certificates together; derived from
	 * the key label so that it is stable and needs no second write. */
	SHA1((const unsigned char *)label, strlen(label), id);
}

static int find_objects(struct token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
			const char *label, CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *n)
{
	CK_ATTRIBUTE tmpl[2] = {
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_CLASS, &cls, sizeof(cls) },
	};
	CK_RV rv;

	*n = 0;
	if ((rv = t->f->C_FindObjectsInit(s, tmpl, cls == (CK_OBJECT_CLASS)-1 ? 1 : 2)) != CKR_OK)
		return fail(t, "C_FindObjectsInit", rv);
	rv = t->f->C_FindObjects(s, found, max, n);
	t->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return fail(t, "C_FindObjects", rv);
	return 0;
}

static int find_one(struct token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
		    CK_OBJECT_HANDLE *h)
{
	CK_ULONG n;
	int r;

	if ((r = find_objects(t, s, cls, label, h, 1, &n)) != 0)
		return r;
	return n == 1 ? 0 : SFTCA_ERR_NOT_FOUND;
}

int token_label_free(struct token *t, const char *label)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	int r;

	if ((r = session_get(t, &s)) != 0)
		return r;
	r = find_objects(t, s, (CK_OBJECT_CLASS)-1, label, &h, 1, &n);
	session_put(t, s);
	if (r != 0)
		return r;
	return n == 0 ? 0 : SFTCA_ERR_EXISTS;
}

int token_destroy_label(struct token *t, const char *label)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h[16];
	CK_ULONG n;
	int r;

	if ((r = session_get(t, &s)) != 0)
		return r;
	if ((r = find_objects(t, s, (CK_OBJECT_CLASS)-1, label, h, 16, &n)) == 0)
		for (CK_ULONG i = 0; i < n; i++)
			t->f->C_DestroyObject(s, h[i]);
	session_put(t, s);
	return r;
}

/* Read one attribute into a malloc'd buffer. */
static int get_attr(struct token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
		    CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	CK_RV rv;

	*val = NULL;
	if ((rv = t->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		return fail(t, "C_GetAttributeValue", rv);
	if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rv = t->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return fail(t, "C_GetAttributeValue", rv);
	}
	*val = a.pValue;
	*len = a.ulValueLen;
	return 0;
}

static const unsigned char OID_P256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
					  0x3d, 0x03, 0x01, 0x07 };
static const unsigned char OID_P384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };

static EVP_PKEY *pub_from_rsa(const unsigned char *n, CK_ULONG nlen, const unsigned char *e,
			      CK_ULONG elen)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *bn_n = BN_bin2bn(n, (int)nlen, NULL), *bn_e = BN_bin2bn(e, (int)elen, NULL);
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	EVP_PKEY *pk = NULL;

	if (bld && bn_n && bn_e && ctx && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) &&
	    (params = OSSL_PARAM_BLD_to_param(bld)) != NULL && EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

static EVP_PKEY *pub_from_ec(const unsigned char *params_der, CK_ULONG plen,
			     const unsigned char *point_attr, CK_ULONG ptlen)
{
	const char *group;
	const unsigned char *p = point_attr;
	ASN1_OCTET_STRING *os = NULL;
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk = NULL;

	if (plen == sizeof(OID_P256) && memcmp(params_der, OID_P256, plen) == 0)
		group = "prime256v1";
	else if (plen == sizeof(OID_P384) && memcmp(params_der, OID_P384, plen) == 0)
		group = "secp384r1";
	else
		return NULL;
	/* CKA_EC_POINT is a DER OCTET STRING around the uncompressed point. */
	if ((os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)ptlen)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(
		OSSL_PKEY_PARAM_PUB_KEY, (void *)ASN1_STRING_get0_data(os),
		(size_t)ASN1_STRING_length(os));
	params[2] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) != NULL &&
	    EVP_PKEY_fromdata_init(ctx) == 1)
		EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params);
out:
	ERR_clear_error();
	ASN1_OCTET_STRING_free(os);
	EVP_PKEY_CTX_free(ctx);
	return pk;
}

/* Public key of the key pair named label, from its public key object. */
static int read_public(struct token *t, CK_SESSION_HANDLE s, const char *label, EVP_PKEY **out)
{
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	unsigned char *v1 = NULL, *v2 = NULL;
	CK_ULONG l1 = 0, l2 = 0;
	CK_RV rv;
	int r;

	*out = NULL;
	if ((r = find_one(t, s, CKO_PUBLIC_KEY, label, &h)) != 0)
		return r;
	if ((rv = t->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		return fail(t, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
	if (kt == CKK_RSA) {
		if ((r = get_attr(t, s, h, CKA_MODULUS, &v1, &l1)) == 0 &&
		    (r = get_attr(t, s, h, CKA_PUBLIC_EXPONENT, &v2, &l2)) == 0)
			*out = pub_from_rsa(v1, l1, v2, l2);
	} else if (kt == CKK_EC) {
		if ((r = get_attr(t, s, h, CKA_EC_PARAMS, &v1, &l1)) == 0 &&
		    (r = get_attr(t, s, h, CKA_EC_POINT, &v2, &l2)) == 0)
			*out = pub_from_ec(v1, l1, v2, l2);
	}
	free(v1);
	free(v2);
	if (r == 0 && *out == NULL) {
		log_error("token '%s': public key '%s' has an unsupported type or encoding",
			  t->label, label);
		r = SFTCA_ERR_TOKEN;
	}
	return r;
}

static int parse_key_type(const char *kt, CK_KEY_TYPE *type, CK_ULONG *bits,
			  const unsigned char **oid, CK_ULONG *oidlen)
{
	if (kt == NULL || kt[0] == '\0' || strcmp(kt, "rsa:2048") == 0)
		*type = CKK_RSA, *bits = 2048;
	else if (strcmp(kt, "rsa:3072") == 0)
		*type = CKK_RSA, *bits = 3072;
	else if (strcmp(kt, "rsa:4096") == 0)
		*type = CKK_RSA, *bits = 4096;
	else if (strcmp(kt, "ec:p256") == 0)
		*type = CKK_EC, *oid = OID_P256, *oidlen = sizeof(OID_P256);
	else if (strcmp(kt, "ec:p384") == 0)
		*type = CKK_EC, *oid = OID_P384, *oidlen = sizeof(OID_P384);
	else
		return SFTCA_ERR_INVALID;
	return 0;
}

int token_generate_key(struct token *t, const char *label, const char *key_type, EVP_PKEY **pub)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	CK_KEY_TYPE kt;
	CK_ULONG bits = 0, oidlen = 0;
	const unsigned char *oid = NULL;
	unsigned char id[SHA_DIGEST_LENGTH];
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int r;

	*pub = NULL;
	if (parse_key_type(key_type, &kt, &bits, &oid, &oidlen) != 0) {
		log_error("unknown key type '%s' (rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384)",
			  key_type);
		return SFTCA_ERR_INVALID;
	}
	label_id(label, id);
	CK_ATTRIBUTE pubt[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ kt == CKK_RSA ? CKA_MODULUS_BITS : CKA_EC_PARAMS,
		  kt == CKK_RSA ? (void *)&bits : (void *)oid,
		  kt == CKK_RSA ? sizeof(bits) : oidlen },
		{ CKA_PUBLIC_EXPONENT, f4, sizeof(f4) },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, id, sizeof(id) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
	};
	mech.mechanism = kt == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;

	if ((r = session_get(t, &s)) != 0)
		return r;
	pthread_mutex_lock(&t->keygen_mu);
	rv = t->f->C_GenerateKeyPair(s, &mech, pubt, kt == CKK_RSA ? 9 : 8, privt,
				     sizeof(privt) / sizeof(privt[0]), &hpub, &hpriv);
	pthread_mutex_unlock(&t->keygen_mu);
	if (rv != CKR_OK) {
		r = fail(t, "C_GenerateKeyPair", rv);
		goto out;
	}
	if ((r = read_public(t, s, label, pub)) != 0) {
		t->f->C_DestroyObject(s, hpriv);
		t->f->C_DestroyObject(s, hpub);
	}
out:
	session_put(t, s);
	return r;
}

/* Append one BIGNUM parameter of k as a big-endian attribute. */
static int bn_attr(EVP_PKEY *k, const char *name, CK_ATTRIBUTE *a, CK_ATTRIBUTE_TYPE type)
{
	BIGNUM *bn = NULL;
	int n;

	a->type = type;
	a->pValue = NULL;
	a->ulValueLen = 0;
	if (!EVP_PKEY_get_bn_param(k, name, &bn))
		return SFTCA_ERR_CRYPTO;
	n = BN_num_bytes(bn);
	if ((a->pValue = OPENSSL_secure_malloc((size_t)(n ? n : 1))) == NULL) {
		BN_clear_free(bn);
		return SFTCA_ERR_NOMEM;
	}
	a->ulValueLen = (CK_ULONG)BN_bn2bin(bn, a->pValue);
	BN_clear_free(bn);
	return 0;
}

int token_import_key(struct token *t, const char *label, EVP_PKEY *priv)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static CK_OBJECT_CLASS cpriv = CKO_PRIVATE_KEY;
	static CK_KEY_TYPE krsa = CKK_RSA;
	unsigned char id[SHA_DIGEST_LENGTH];
	CK_ATTRIBUTE a[20];
	CK_ATTRIBUTE comp[8];
	CK_ULONG n = 0, ncomp = 0;
	CK_OBJECT_HANDLE h;
	CK_SESSION_HANDLE s;
	EVP_PKEY *pub = NULL;
	CK_RV rv;
	int r = 0;

	if (EVP_PKEY_get_base_id(priv) != EVP_PKEY_RSA) {
		log_error("import: only RSA InternalCA keys are supported");
		return SFTCA_ERR_INVALID;
	}
	label_id(label, id);
	static const struct {
		const char *name;
		CK_ATTRIBUTE_TYPE type;
	} parts[] = {
		{ OSSL_PKEY_PARAM_RSA_N, CKA_MODULUS },
		{ OSSL_PKEY_PARAM_RSA_E, CKA_PUBLIC_EXPONENT },
		{ OSSL_PKEY_PARAM_RSA_D, CKA_PRIVATE_EXPONENT },
		{ OSSL_PKEY_PARAM_RSA_FACTOR1, CKA_PRIME_1 },
		{ OSSL_PKEY_PARAM_RSA_FACTOR2, CKA_PRIME_2 },
		{ OSSL_PKEY_PARAM_RSA_EXPONENT1, CKA_EXPONENT_1 },
		{ OSSL_PKEY_PARAM_RSA_EXPONENT2, CKA_EXPONENT_2 },
		{ OSSL_PKEY_PARAM_RSA_COEFFICIENT1, CKA_COEFFICIENT },
	};
	for (ncomp = 0; ncomp < 8; ncomp++)
		if ((r = bn_attr(priv, parts[ncomp].name, &comp[ncomp], parts[ncomp].type)) != 0) {
			log_error("import: the RSA key lacks its CRT components");
			goto wipe;
		}
	a[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cpriv, sizeof(cpriv) };
	a[n++] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &krsa, sizeof(krsa) };
	a[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	a[n++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &yes, sizeof(yes) };
	a[n++] = (CK_ATTRIBUTE){ CKA_SENSITIVE, &yes, sizeof(yes) };
	a[n++] = (CK_ATTRIBUTE){ CKA_EXTRACTABLE, &no, sizeof(no) };
	a[n++] = (CK_ATTRIBUTE){ CKA_SIGN, &yes, sizeof(yes) };
	a[n++] = (CK_ATTRIBUTE){ CKA_DECRYPT, &no, sizeof(no) };
	a[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	a[n++] = (CK_ATTRIBUTE){ CKA_ID, id, sizeof(id) };
	for (CK_ULONG i = 0; i < 8; i++)
		a[n++] = comp[i];

	if ((r = session_get(t, &s)) != 0)
		goto wipe;
	rv = t->f->C_CreateObject(s, a, n, &h);
	if (rv != CKR_OK) {
		r = fail(t, "C_CreateObject(private key)", rv);
	} else {
		/* The public half as its own object, as generated keys have. */
		static CK_OBJECT_CLASS cpub = CKO_PUBLIC_KEY;
		CK_ATTRIBUTE pa[] = {
			{ CKA_CLASS, &cpub, sizeof(cpub) },
			{ CKA_KEY_TYPE, &krsa, sizeof(krsa) },
			{ CKA_TOKEN, &yes, sizeof(yes) },
			{ CKA_PRIVATE, &no, sizeof(no) },
			{ CKA_VERIFY, &yes, sizeof(yes) },
			{ CKA_LABEL, (void *)label, strlen(label) },
			{ CKA_ID, id, sizeof(id) },
			comp[0],
			comp[1],
		};
		CK_OBJECT_HANDLE hp;
		rv = t->f->C_CreateObject(s, pa, sizeof(pa) / sizeof(pa[0]), &hp);
		if (rv != CKR_OK) {
			r = fail(t, "C_CreateObject(public key)", rv);
			t->f->C_DestroyObject(s, h);
		} else if ((r = read_public(t, s, label, &pub)) == 0 && EVP_PKEY_eq(pub, priv) != 1) {
			log_error("import: the token's copy of the key does not match the input");
			t->f->C_DestroyObject(s, h);
			t->f->C_DestroyObject(s, hp);
			r = SFTCA_ERR_TOKEN;
		}
	}
	session_put(t, s);
wipe:
	for (CK_ULONG i = 0; i < ncomp; i++)
		OPENSSL_secure_clear_free(comp[i].pValue, comp[i].ulValueLen);
	EVP_PKEY_free(pub);
	return r;
}

int token_store_cert(struct token *t, const char *key_label, const char *cert_label, X509 *x)
{
	static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	static CK_OBJECT_CLASS ccert = CKO_CERTIFICATE;
	static CK_CERTIFICATE_TYPE x509 = CKC_X_509;
	unsigned char id[SHA_DIGEST_LENGTH];
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	int dlen = i2d_X509(x, &der), slen = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	int ilen = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	int serlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &ser);
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r = SFTCA_ERR_CRYPTO;

	label_id(key_label, id);
	if (dlen <= 0 || slen <= 0 || ilen <= 0 || serlen <= 0)
		goto out;
	CK_ATTRIBUTE a[] = {
		{ CKA_CLASS, &ccert, sizeof(ccert) },
		{ CKA_CERTIFICATE_TYPE, &x509, sizeof(x509) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)cert_label, strlen(cert_label) },
		{ CKA_ID, id, sizeof(id) },
		{ CKA_SUBJECT, subj, (CK_ULONG)slen },
		{ CKA_ISSUER, iss, (CK_ULONG)ilen },
		{ CKA_SERIAL_NUMBER, ser, (CK_ULONG)serlen },
		{ CKA_VALUE, der, (CK_ULONG)dlen },
	};
	if ((r = session_get(t, &s)) != 0)
		goto out;
	rv = t->f->C_CreateObject(s, a, sizeof(a) / sizeof(a[0]), &h);
	r = rv == CKR_OK ? 0 : fail(t, "C_CreateObject(certificate)", rv);
	session_put(t, s);
out:
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return r;
}

int token_key_attrs(struct token *t, const char *label, struct token_key_attrs *out)
{
	CK_BBOOL v[5];
	CK_ATTRIBUTE a[] = {
		{ CKA_SENSITIVE, &v[0], 1 },
		{ CKA_EXTRACTABLE, &v[1], 1 },
		{ CKA_ALWAYS_SENSITIVE, &v[2], 1 },
		{ CKA_NEVER_EXTRACTABLE, &v[3], 1 },
		{ CKA_LOCAL, &v[4], 1 },
	};
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r;

	if ((r = session_get(t, &s)) != 0)
		return r;
	if ((r = find_one(t, s, CKO_PRIVATE_KEY, label, &h)) == 0) {
		rv = t->f->C_GetAttributeValue(s, h, a, 5);
		if (rv != CKR_OK)
			r = fail(t, "C_GetAttributeValue", rv);
	}
	session_put(t, s);
	if (r == 0) {
		out->sensitive = v[0];
		out->extractable = v[1];
		out->always_sensitive = v[2];
		out->never_extractable = v[3];
		out->local = v[4];
	}
	return r;
}

/* --- keys and signing ---------------------------------------------------- */

int token_key_open(struct token *t, const char *label, struct token_key **out)
{
	struct token_key *k;
	CK_SESSION_HANDLE s;
	int r;

	*out = NULL;
	if (strlen(label) >= sizeof(k->label) || (k = calloc(1, sizeof(*k))) == NULL)
		return SFTCA_ERR_INVALID;
	k->t = t;
	memcpy(k->label, label, strlen(label) + 1);
	pthread_mutex_init(&k->mu, NULL);
	if ((r = session_get(t, &s)) != 0)
		goto fail;
	if ((r = find_one(t, s, CKO_PRIVATE_KEY, label, &k->handle)) == 0)
		r = read_public(t, s, label, &k->pub);
	else if (r == SFTCA_ERR_NOT_FOUND)
		log_error("token '%s' has no private key labelled '%s'", t->label, label);
	session_put(t, s);
	if (r != 0)
		goto fail;
	k->epoch = atomic_load(&t->epoch);
	*out = k;
	return 0;
fail:
	token_key_free(k);
	return r;
}

void token_key_free(struct token_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pub);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

EVP_PKEY *token_key_public(struct token_key *k)
{
	return k->pub;
}

/* The private key's handle in the current connection. */
static int key_handle(struct token_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
	unsigned epoch = atomic_load(&k->t->epoch);
	int r = 0;

	pthread_mutex_lock(&k->mu);
	if (k->epoch != epoch) {
		if ((r = find_one(k->t, s, CKO_PRIVATE_KEY, k->label, &k->handle)) == 0)
			k->epoch = epoch;
	}
	*h = k->handle;
	pthread_mutex_unlock(&k->mu);
	return r;
}

int token_sign(struct token_key *k, enum token_mech m, const unsigned char *in, size_t inlen,
	       unsigned char *sig, size_t *siglen)
{
	struct token *t = k->t;
	CK_MECHANISM mech = { m == TOKEN_MECH_RSA_PKCS ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ULONG outlen = *siglen;
	CK_RV rv;
	int r;

	if ((r = session_get(t, &s)) != 0)
		goto out;
	if ((r = key_handle(k, s, &h)) == 0) {
		if ((rv = t->f->C_SignInit(s, &mech, h)) != CKR_OK)
			r = fail(t, "C_SignInit", rv);
		else if ((rv = t->f->C_Sign(s, (CK_BYTE_PTR)in, inlen, sig, &outlen)) != CKR_OK)
			r = fail(t, "C_Sign", rv);
		else
			*siglen = outlen;
	}
	session_put(t, s);
out:
	tl_sign_error = r;
	return r;
}
