/* An EVP_PKEY whose private operations run in the token. OpenSSL 3.0 still
 * routes keys with a non-default RSA_METHOD / EC_KEY_METHOD ("foreign"
 * keys) through the legacy signing path, which is how X509_sign and
 * X509_CRL_sign reach token_sign() without a provider. These methods are
 * deprecated in 3.0 but are the interface libp11 itself uses with 3.0. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "errors.h"
#include "log.h"
#include "token.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <string.h>

static RSA_METHOD *rsa_meth;
static EC_KEY_METHOD *ec_meth;
/* Two borrowed pointers per key: the token key and the call it signs for. */
static int rsa_idx = -1, ec_idx = -1, rsa_call_idx = -1, ec_call_idx = -1;
static pthread_once_t meth_once = PTHREAD_ONCE_INIT;

/* RSA_sign() hands us the DER DigestInfo with PKCS#1 v1.5 padding
 * requested: exactly what CKM_RSA_PKCS signs. */
static int rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa,
			int padding)
{
	struct token_key *k = RSA_get_ex_data(rsa, rsa_idx);
	size_t siglen = (size_t)RSA_size(rsa);

	if (k == NULL || padding != RSA_PKCS1_PADDING || flen < 0)
		return -1;
	if (token_sign(k, RSA_get_ex_data(rsa, rsa_call_idx), TOKEN_MECH_RSA_PKCS, from, (size_t)flen,
		       to, &siglen) != 0)
		return -1;
	return (int)siglen;
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
			      const BIGNUM *rp, EC_KEY *ec)
{
	struct token_key *k = EC_KEY_get_ex_data(ec, ec_idx);
	unsigned char raw[2 * 66];
	size_t rawlen = sizeof(raw);
	ECDSA_SIG *sig;
	BIGNUM *r, *s;

	(void)kinv;
	(void)rp;
	if (k == NULL || dlen < 0 ||
	    token_sign(k, EC_KEY_get_ex_data(ec, ec_call_idx), TOKEN_MECH_ECDSA, dgst, (size_t)dlen, raw,
		       &rawlen) != 0 ||
	    rawlen % 2)
		return NULL;
	r = BN_bin2bn(raw, (int)rawlen / 2, NULL);
	s = BN_bin2bn(raw + rawlen / 2, (int)rawlen / 2, NULL);
	if (r == NULL || s == NULL || (sig = ECDSA_SIG_new()) == NULL) {
		BN_free(r);
		BN_free(s);
		return NULL;
	}
	ECDSA_SIG_set0(sig, r, s);
	return sig;
}

static void methods_init(void)
{
	int (*orig_sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
			 const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;

	rsa_idx = RSA_get_ex_new_index(0, "sftca token key", NULL, NULL, NULL);
	ec_idx = EC_KEY_get_ex_new_index(0, "sftca token key", NULL, NULL, NULL);
	rsa_call_idx = RSA_get_ex_new_index(0, "sftca token call", NULL, NULL, NULL);
	ec_call_idx = EC_KEY_get_ex_new_index(0, "sftca token call", NULL, NULL, NULL);
	if ((rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) != NULL) {
		RSA_meth_set1_name(rsa_meth, "sftca PKCS#11 token");
		RSA_meth_set_priv_enc(rsa_meth, rsa_priv_enc);
		RSA_meth_set_priv_dec(rsa_meth, NULL);
	}
	if ((ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) != NULL) {
		EC_KEY_METHOD_get_sign(ec_meth, &orig_sign, NULL, NULL);
		EC_KEY_METHOD_set_sign(ec_meth, orig_sign, NULL, ec_sign_sig);
	}
}

EVP_PKEY *token_pkey_new(struct token_key *k, struct token_call *call)
{
	EVP_PKEY *pub = token_key_public(k), *pk = NULL;

	pthread_once(&meth_once, methods_init);
	if (rsa_meth == NULL || ec_meth == NULL || (pk = EVP_PKEY_new()) == NULL)
		return NULL;
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
		RSA *rsa = EVP_PKEY_get1_RSA(pub), *copy = RSA_new();
		const BIGNUM *n, *e;

		if (rsa == NULL || copy == NULL)
			goto fail_rsa;
		RSA_get0_key(rsa, &n, &e, NULL);
		if (!RSA_set0_key(copy, BN_dup(n), BN_dup(e), NULL) || !RSA_set_method(copy, rsa_meth) ||
		    !RSA_set_ex_data(copy, rsa_idx, k) || !RSA_set_ex_data(copy, rsa_call_idx, call) ||
		    !EVP_PKEY_assign_RSA(pk, copy))
			goto fail_rsa;
		RSA_free(rsa);
		return pk;
fail_rsa:
		RSA_free(rsa);
		RSA_free(copy);
		goto fail;
	}
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC) {
		EC_KEY *ec = EVP_PKEY_get1_EC_KEY(pub), *copy = NULL;

		if (ec == NULL || (copy = EC_KEY_dup(ec)) == NULL || !EC_KEY_set_method(copy, ec_meth) ||
		    !EC_KEY_set_ex_data(copy, ec_idx, k) || !EC_KEY_set_ex_data(copy, ec_call_idx, call) ||
		    !EVP_PKEY_assign_EC_KEY(pk, copy)) {
			EC_KEY_free(ec);
			EC_KEY_free(copy);
			goto fail;
		}
		EC_KEY_free(ec);
		return pk;
	}
fail:
	log_crypto("building the token-backed key");
	EVP_PKEY_free(pk);
	return NULL;
}
