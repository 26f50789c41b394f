/* token_init: the admin-only first step, a fresh token with its label and
 * PINs. Not used by the running signer. */
#include "token_int.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"

#include <dlfcn.h>
#include <string.h>

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
	if ((r = token_module_load(&t)) != 0)
		return r;
	if (token_slot_find(&t, 1) == 0) {
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
		log_error("C_InitToken: %s", token_ckr_name(rv));
		goto out;
	}
	/* SoftHSM moves a new token to a new slot: look it up by label. */
	if (token_slot_find(&t, 0) != 0)
		goto out;
	if ((rv = t.f->C_OpenSession(t.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) !=
		    CKR_OK ||
	    (rv = t.f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)so, solen)) != CKR_OK ||
	    (rv = t.f->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, pinlen)) != CKR_OK) {
		log_error("initialising the user PIN of token '%s': %s", label, token_ckr_name(rv));
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
