/* PKCS#11 through the module's own function list. libp11 0.4.12 cannot
 * re-login or reopen sessions after the token side restarts and its session
 * pool can block forever when C_OpenSession fails, so sessions, login and
 * recovery are owned here (DESIGN.md 8). This file: the connection, its
 * sessions, recovery and signing; objects are in token_obj.c. */
#include "token_int.h"

#include "clock.h"
#include "errors.h"
#include "fileio.h"
#include "log.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_WAIT_MS 30000

const char *token_ckr_name(CK_RV rv)
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

int token_fail(struct token *t, const char *what, CK_RV rv)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s: %s (0x%lx)", what, token_ckr_name(rv), (unsigned long)rv);
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

int token_session_get(struct token *t, const struct token_call *call, CK_SESSION_HANDLE *s)
{
	int64_t until = call && call->deadline_ms ? call->deadline_ms
						  : clock_monotonic_ms() + DEFAULT_WAIT_MS;
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
		int64_t now = clock_monotonic_ms(), slice = now + 200 < until ? now + 200 : until;
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

void token_session_put(struct token *t, CK_SESSION_HANDLE s)
{
	pthread_mutex_lock(&t->pool_mu);
	t->pool[t->pool_free++] = s;
	pthread_cond_signal(&t->pool_cv);
	pthread_mutex_unlock(&t->pool_mu);
	pthread_rwlock_unlock(&t->lock);
}

/* --- connect / disconnect (caller holds the lock exclusively) ------------- */

int token_module_load(struct token *t)
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
		log_error("PKCS#11 module %s: C_Initialize: %s", t->module, token_ckr_name(rv));
		return ckr_is_lost(rv) ? SFTCA_ERR_TOKEN_LOST : SFTCA_ERR_TOKEN;
	}
	return 0;
}

int token_slot_find(struct token *t, int quiet)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_TOKEN_INFO ti;
	char seen[512] = "";
	size_t seenlen = 0;
	CK_RV rv;

	if ((rv = t->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		log_error("PKCS#11 module %s: C_GetSlotList: %s", t->module, token_ckr_name(rv));
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
			  t->label, t->pin_file, token_ckr_name(rv));
		return SFTCA_ERR_PIN;
	}
	log_error("token '%s': C_Login: %s", t->label, token_ckr_name(rv));
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

	if ((r = token_module_load(t)) != 0)
		return r;
	if ((r = token_slot_find(t, 0)) != 0)
		goto fail;
	for (int i = 0; i < t->nsessions; i++) {
		rv = t->f->C_OpenSession(t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					 &t->pool[i]);
		if (rv != CKR_OK) {
			log_error("token '%s': C_OpenSession: %s", t->label, token_ckr_name(rv));
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
			/* timedwrlock (CLOCK_REALTIME), not clockwrlock: ThreadSanitizer
			 * does not intercept clockwrlock, so it could not see this lock
			 * and reported the disconnect as racing with signers. A clock
			 * step only moves when the warning below is logged. */
			clock_gettime(CLOCK_REALTIME, &wts);
			wts.tv_sec += TOKEN_WEDGED_SECONDS;
			if (pthread_rwlock_timedwrlock(&t->lock, &wts) != 0) {
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

/* --- keys and signing ---------------------------------------------------- */

int token_key_open(struct token *t, const struct token_call *call, const char *label,
		   struct token_key **out)
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
	if ((r = token_session_get(t, call, &s)) != 0)
		goto fail;
	if ((r = token_find_one(t, s, CKO_PRIVATE_KEY, label, &k->handle)) == 0)
		r = token_read_public(t, s, label, &k->pub);
	else if (r == SFTCA_ERR_NOT_FOUND)
		log_error("token '%s' has no private key labelled '%s'", t->label, label);
	token_session_put(t, s);
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
		if ((r = token_find_one(k->t, s, CKO_PRIVATE_KEY, k->label, &k->handle)) == 0)
			k->epoch = epoch;
	}
	*h = k->handle;
	pthread_mutex_unlock(&k->mu);
	return r;
}

int token_sign(struct token_key *k, struct token_call *call, enum token_mech m,
	       const unsigned char *in, size_t inlen, unsigned char *sig, size_t *siglen)
{
	struct token *t = k->t;
	CK_MECHANISM mech = { m == TOKEN_MECH_RSA_PKCS ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ULONG outlen = *siglen;
	CK_RV rv;
	int r;

	if ((r = token_session_get(t, call, &s)) != 0)
		goto out;
	if ((r = key_handle(k, s, &h)) == 0) {
		if ((rv = t->f->C_SignInit(s, &mech, h)) != CKR_OK)
			r = token_fail(t, "C_SignInit", rv);
		else if ((rv = t->f->C_Sign(s, (CK_BYTE_PTR)in, inlen, sig, &outlen)) != CKR_OK)
			r = token_fail(t, "C_Sign", rv);
		else
			*siglen = outlen;
	}
	token_session_put(t, s);
out:
	if (call)
		call->error = r;
	return r;
}
