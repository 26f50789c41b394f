/* Token objects: key pairs generated or imported, certificates stored,
 * objects found by label, destroyed, and their attributes read. */
#include "token_int.h"

#include "errors.h"
#include "log.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <stdlib.h>
#include <string.h>

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
		return token_fail(t, "C_FindObjectsInit", rv);
	rv = t->f->C_FindObjects(s, found, max, n);
	t->f->C_FindObjectsFinal(s);
	if (rv != CKR_OK)
		return token_fail(t, "C_FindObjects", rv);
	return 0;
}

int token_find_one(struct token *t, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label,
		    CK_OBJECT_HANDLE *h)
{
	CK_ULONG n;
	int r;

	if ((r = find_objects(t, s, cls, label, h, 1, &n)) != 0)
		return r;
	return n == 1 ? 0 : SFTCA_ERR_NOT_FOUND;
}

int token_label_free(struct token *t, const struct token_call *call, const char *label)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	int r;

	if ((r = token_session_get(t, call, &s)) != 0)
		return r;
	r = find_objects(t, s, (CK_OBJECT_CLASS)-1, label, &h, 1, &n);
	token_session_put(t, s);
	if (r != 0)
		return r;
	return n == 0 ? 0 : SFTCA_ERR_EXISTS;
}

int token_destroy_label(struct token *t, const struct token_call *call, const char *label)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h[16];
	CK_ULONG n;
	int r;

	if ((r = token_session_get(t, call, &s)) != 0)
		return r;
	if ((r = find_objects(t, s, (CK_OBJECT_CLASS)-1, label, h, 16, &n)) == 0)
		for (CK_ULONG i = 0; i < n; i++)
			t->f->C_DestroyObject(s, h[i]);
	token_session_put(t, s);
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
		return token_fail(t, "C_GetAttributeValue", rv);
	if ((a.pValue = malloc(a.ulValueLen ? a.ulValueLen : 1)) == NULL)
		return SFTCA_ERR_NOMEM;
	if ((rv = t->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK) {
		free(a.pValue);
		return token_fail(t, "C_GetAttributeValue", rv);
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

int token_read_public(struct token *t, CK_SESSION_HANDLE s, const char *label, EVP_PKEY **out)
{
	CK_OBJECT_HANDLE h;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	unsigned char *v1 = NULL, *v2 = NULL;
	CK_ULONG l1 = 0, l2 = 0;
	CK_RV rv;
	int r;

	*out = NULL;
	if ((r = token_find_one(t, s, CKO_PUBLIC_KEY, label, &h)) != 0)
		return r;
	if ((rv = t->f->C_GetAttributeValue(s, h, &a, 1)) != CKR_OK)
		return token_fail(t, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
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

/* A bounded template built by appending: values of CK_BBOOL and CK_ULONG
 * attributes are kept in the builder itself, so it must not be copied once
 * filled. Appending past the end is remembered and refused by attrs_full(). */
#define ATTRS_MAX 24

struct attrs {
	CK_ATTRIBUTE a[ATTRS_MAX];
	CK_ULONG n;
	CK_BBOOL bools[ATTRS_MAX];
	CK_ULONG ulongs[ATTRS_MAX];
	int overflow;
};

static void attrs_add(struct attrs *t, CK_ATTRIBUTE_TYPE type, const void *val, CK_ULONG len)
{
	if (t->n == ATTRS_MAX) {
		t->overflow = 1;
		return;
	}
	/* PKCS#11 templates are not const, but C_CreateObject and
	 * C_GenerateKeyPair only read them. */
	t->a[t->n++] = (CK_ATTRIBUTE){ type, (void *)val, len };
}

static void attrs_bool(struct attrs *t, CK_ATTRIBUTE_TYPE type, CK_BBOOL v)
{
	if (t->n < ATTRS_MAX)
		t->bools[t->n] = v;
	attrs_add(t, type, &t->bools[t->n], sizeof(CK_BBOOL));
}

static void attrs_ulong(struct attrs *t, CK_ATTRIBUTE_TYPE type, CK_ULONG v)
{
	if (t->n < ATTRS_MAX)
		t->ulongs[t->n] = v;
	attrs_add(t, type, &t->ulongs[t->n], sizeof(CK_ULONG));
}

static void attrs_label_id(struct attrs *t, const char *label, const unsigned char *id)
{
	attrs_add(t, CKA_LABEL, label, strlen(label));
	attrs_add(t, CKA_ID, id, SHA_DIGEST_LENGTH);
}

/* 1 (and logged) when a template outgrew the builder: a programming error. */
static int attrs_full(const struct attrs *t, const char *what)
{
	if (t->overflow)
		log_error("%s: more than %d attributes in one template", what, ATTRS_MAX);
	return t->overflow;
}

int token_generate_key(struct token *t, const struct token_call *call, const char *label,
		       const char *key_type, EVP_PKEY **pub)
{
	static const CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	CK_KEY_TYPE kt;
	CK_ULONG bits = 0, oidlen = 0;
	const unsigned char *oid = NULL;
	unsigned char id[SHA_DIGEST_LENGTH];
	CK_MECHANISM mech = { 0, NULL, 0 };
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_SESSION_HANDLE s;
	struct attrs pubt = { .n = 0 }, privt = { .n = 0 };
	CK_RV rv;
	int r;

	*pub = NULL;
	if (parse_key_type(key_type, &kt, &bits, &oid, &oidlen) != 0) {
		log_error("unknown key type '%s' (rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384)",
			  key_type);
		return SFTCA_ERR_INVALID;
	}
	label_id(label, id);
	attrs_bool(&pubt, CKA_TOKEN, CK_TRUE);
	attrs_bool(&pubt, CKA_PRIVATE, CK_FALSE);
	attrs_label_id(&pubt, label, id);
	attrs_bool(&pubt, CKA_VERIFY, CK_TRUE);
	attrs_bool(&pubt, CKA_ENCRYPT, CK_FALSE);
	attrs_bool(&pubt, CKA_WRAP, CK_FALSE);
	if (kt == CKK_RSA) {
		attrs_ulong(&pubt, CKA_MODULUS_BITS, bits);
		attrs_add(&pubt, CKA_PUBLIC_EXPONENT, f4, sizeof(f4));
	} else {
		attrs_add(&pubt, CKA_EC_PARAMS, oid, oidlen);
	}
	attrs_bool(&privt, CKA_TOKEN, CK_TRUE);
	attrs_bool(&privt, CKA_PRIVATE, CK_TRUE);
	attrs_bool(&privt, CKA_SENSITIVE, CK_TRUE);
	attrs_bool(&privt, CKA_EXTRACTABLE, CK_FALSE);
	attrs_label_id(&privt, label, id);
	attrs_bool(&privt, CKA_SIGN, CK_TRUE);
	attrs_bool(&privt, CKA_DECRYPT, CK_FALSE);
	attrs_bool(&privt, CKA_UNWRAP, CK_FALSE);
	attrs_bool(&privt, CKA_DERIVE, CK_FALSE);
	if (attrs_full(&pubt, "key generation") || attrs_full(&privt, "key generation"))
		return SFTCA_ERR_INTERNAL;
	mech.mechanism = kt == CKK_RSA ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN;

	if ((r = token_session_get(t, call, &s)) != 0)
		return r;
	pthread_mutex_lock(&t->keygen_mu);
	rv = t->f->C_GenerateKeyPair(s, &mech, pubt.a, pubt.n, privt.a, privt.n, &hpub, &hpriv);
	pthread_mutex_unlock(&t->keygen_mu);
	if (rv != CKR_OK) {
		r = token_fail(t, "C_GenerateKeyPair", rv);
		goto out;
	}
	if ((r = token_read_public(t, s, label, pub)) != 0) {
		t->f->C_DestroyObject(s, hpriv);
		t->f->C_DestroyObject(s, hpub);
	}
out:
	token_session_put(t, s);
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

int token_import_key(struct token *t, const struct token_call *call, const char *label,
		     EVP_PKEY *priv)
{
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
	unsigned char id[SHA_DIGEST_LENGTH];
	CK_ATTRIBUTE comp[8];
	CK_ULONG ncomp = 0;
	struct attrs a = { .n = 0 }, pa = { .n = 0 };
	CK_OBJECT_HANDLE h, hp;
	CK_SESSION_HANDLE s;
	EVP_PKEY *pub = NULL;
	CK_RV rv;
	int r = 0;

	if (EVP_PKEY_get_base_id(priv) != EVP_PKEY_RSA) {
		log_error("import: only RSA InternalCA keys are supported");
		return SFTCA_ERR_INVALID;
	}
	label_id(label, id);
	for (ncomp = 0; ncomp < 8; ncomp++)
		if ((r = bn_attr(priv, parts[ncomp].name, &comp[ncomp], parts[ncomp].type)) != 0) {
			log_error("import: the RSA key lacks its CRT components");
			goto wipe;
		}
	attrs_ulong(&a, CKA_CLASS, CKO_PRIVATE_KEY);
	attrs_ulong(&a, CKA_KEY_TYPE, CKK_RSA);
	attrs_bool(&a, CKA_TOKEN, CK_TRUE);
	attrs_bool(&a, CKA_PRIVATE, CK_TRUE);
	attrs_bool(&a, CKA_SENSITIVE, CK_TRUE);
	attrs_bool(&a, CKA_EXTRACTABLE, CK_FALSE);
	attrs_bool(&a, CKA_SIGN, CK_TRUE);
	attrs_bool(&a, CKA_DECRYPT, CK_FALSE);
	attrs_label_id(&a, label, id);
	for (CK_ULONG i = 0; i < 8; i++)
		attrs_add(&a, comp[i].type, comp[i].pValue, comp[i].ulValueLen);
	/* The public half as its own object, as generated keys have. */
	attrs_ulong(&pa, CKA_CLASS, CKO_PUBLIC_KEY);
	attrs_ulong(&pa, CKA_KEY_TYPE, CKK_RSA);
	attrs_bool(&pa, CKA_TOKEN, CK_TRUE);
	attrs_bool(&pa, CKA_PRIVATE, CK_FALSE);
	attrs_bool(&pa, CKA_VERIFY, CK_TRUE);
	attrs_label_id(&pa, label, id);
	attrs_add(&pa, comp[0].type, comp[0].pValue, comp[0].ulValueLen);
	attrs_add(&pa, comp[1].type, comp[1].pValue, comp[1].ulValueLen);
	if (attrs_full(&a, "key import") || attrs_full(&pa, "key import")) {
		r = SFTCA_ERR_INTERNAL;
		goto wipe;
	}

	if ((r = token_session_get(t, call, &s)) != 0)
		goto wipe;
	rv = t->f->C_CreateObject(s, a.a, a.n, &h);
	if (rv != CKR_OK) {
		r = token_fail(t, "C_CreateObject(private key)", rv);
	} else if ((rv = t->f->C_CreateObject(s, pa.a, pa.n, &hp)) != CKR_OK) {
		r = token_fail(t, "C_CreateObject(public key)", rv);
		t->f->C_DestroyObject(s, h);
	} else if ((r = token_read_public(t, s, label, &pub)) == 0 && EVP_PKEY_eq(pub, priv) != 1) {
		log_error("import: the token's copy of the key does not match the input");
		t->f->C_DestroyObject(s, h);
		t->f->C_DestroyObject(s, hp);
		r = SFTCA_ERR_TOKEN;
	}
	token_session_put(t, s);
wipe:
	for (CK_ULONG i = 0; i < ncomp; i++)
		OPENSSL_secure_clear_free(comp[i].pValue, comp[i].ulValueLen);
	EVP_PKEY_free(pub);
	return r;
}

int token_store_cert(struct token *t, const struct token_call *call, const char *key_label,
		     const char *cert_label, X509 *x)
{
	unsigned char id[SHA_DIGEST_LENGTH];
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	int dlen = i2d_X509(x, &der), slen = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	int ilen = i2d_X509_NAME(X509_get_issuer_name(x), &iss);
	int serlen = i2d_ASN1_INTEGER(X509_get0_serialNumber(x), &ser);
	struct attrs a = { .n = 0 };
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int r = SFTCA_ERR_CRYPTO;

	label_id(key_label, id);
	if (dlen <= 0 || slen <= 0 || ilen <= 0 || serlen <= 0)
		goto out;
	attrs_ulong(&a, CKA_CLASS, CKO_CERTIFICATE);
	attrs_ulong(&a, CKA_CERTIFICATE_TYPE, CKC_X_509);
	attrs_bool(&a, CKA_TOKEN, CK_TRUE);
	attrs_bool(&a, CKA_PRIVATE, CK_FALSE);
	attrs_add(&a, CKA_LABEL, cert_label, strlen(cert_label));
	attrs_add(&a, CKA_ID, id, sizeof(id));
	attrs_add(&a, CKA_SUBJECT, subj, (CK_ULONG)slen);
	attrs_add(&a, CKA_ISSUER, iss, (CK_ULONG)ilen);
	attrs_add(&a, CKA_SERIAL_NUMBER, ser, (CK_ULONG)serlen);
	attrs_add(&a, CKA_VALUE, der, (CK_ULONG)dlen);
	if (attrs_full(&a, "certificate object")) {
		r = SFTCA_ERR_INTERNAL;
		goto out;
	}
	if ((r = token_session_get(t, call, &s)) != 0)
		goto out;
	rv = t->f->C_CreateObject(s, a.a, a.n, &h);
	r = rv == CKR_OK ? 0 : token_fail(t, "C_CreateObject(certificate)", rv);
	token_session_put(t, s);
out:
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	return r;
}

int token_key_attrs(struct token *t, const struct token_call *call, const char *label,
		    struct token_key_attrs *out)
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

	if ((r = token_session_get(t, call, &s)) != 0)
		return r;
	if ((r = token_find_one(t, s, CKO_PRIVATE_KEY, label, &h)) == 0) {
		rv = t->f->C_GetAttributeValue(s, h, a, 5);
		if (rv != CKR_OK)
			r = token_fail(t, "C_GetAttributeValue", rv);
	}
	token_session_put(t, s);
	if (r == 0) {
		out->sensitive = v[0];
		out->extractable = v[1];
		out->always_sensitive = v[2];
		out->never_extractable = v[3];
		out->local = v[4];
	}
	return r;
}
