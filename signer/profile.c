/* RSA_verify and ECDSA_verify on keys read straight from DER: see
 * profile_check_csr. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "profile.h"

#include "errors.h"
#include "log.h"
#include "msg.h"
#include "x509util.h"

#include <limits.h>
#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ORG "Cisco Systems, Inc" /* the field's: 18 bytes, no final period */
#define OU "Intrusion Management System"

X509_NAME *profile_ca_subject(const char *ca_id)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL ||
	    !X509_NAME_add_entry_by_NID(n, NID_title, MBSTRING_UTF8,
					(const unsigned char *)"InternalCA", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_NID(n, NID_organizationalUnitName, MBSTRING_UTF8,
					(const unsigned char *)OU, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
					(const unsigned char *)ca_id, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_NID(n, NID_organizationName, MBSTRING_UTF8,
					(const unsigned char *)ORG, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

/* Into n, empty: a peer certificate's own subject is filled where it lies
 * (X509_set_subject_name would copy it, encoding and parsing it again). */
static int leaf_subject_into(X509_NAME *n, const X509_NAME *ca_subject, const char *peer_uuid)
{
	int have_cn = 0;

	for (int i = 0; i < X509_NAME_entry_count(ca_subject); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(ca_subject, i);
		int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		int ok;

		if (nid == NID_title)
			continue;
		if (nid == NID_commonName) {
			if (have_cn++)
				continue;
			ok = X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
							(const unsigned char *)peer_uuid, -1, -1, 0);
		} else {
			ok = X509_NAME_add_entry(n, e, -1, 0);
		}
		if (!ok)
			return 0;
	}
	return have_cn || X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
						     (const unsigned char *)peer_uuid, -1, -1, 0);
}

X509_NAME *profile_leaf_subject(const X509_NAME *ca_subject, const char *peer_uuid)
{
	X509_NAME *n = X509_NAME_new();

	if (n != NULL && !leaf_subject_into(n, ca_subject, peer_uuid)) {
		X509_NAME_free(n);
		n = NULL;
	}
	return n;
}

int profile_random_serial(ASN1_INTEGER **serial, char hex[PROFILE_SERIAL_HEX])
{
	unsigned char b[PROFILE_SERIAL_BYTES];
	BIGNUM *bn = NULL;
	int r = SFTCA_ERR_CRYPTO;

	*serial = NULL;
	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			goto out;
		BN_free(bn);
		if ((bn = BN_bin2bn(b, sizeof(b), NULL)) == NULL)
			goto out;
	} while (BN_is_zero(bn));
	if ((*serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL)
		goto out;
	r = asn1_int_hex(*serial, hex, PROFILE_SERIAL_HEX);
out:
	BN_free(bn);
	return r;
}

/* Fetched once: OpenSSL 3.0 would otherwise look the digest up in its
 * provider store, under locks every signing thread contends for, for every
 * certificate. */
static EVP_MD *md_sha256, *md_sha384;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void mds_init(void)
{
	md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_sha384 = EVP_MD_fetch(NULL, "SHA384", NULL);
}

/* 0: SHA-256, 1: SHA-384. */
static const EVP_MD *md_get(int which)
{
	pthread_once(&md_once, mds_init);
	if (which)
		return md_sha384 ? md_sha384 : EVP_sha384();
	return md_sha256 ? md_sha256 : EVP_sha256();
}

const EVP_MD *profile_digest(EVP_PKEY *ca_key)
{
	return md_get(EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_EC && EVP_PKEY_get_bits(ca_key) > 256);
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

static int set_validity(X509 *x, int64_t nb, int64_t na)
{
	return ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) != NULL &&
	       ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL;
}

int profile_ca_cert(const X509_NAME *subject, EVP_PKEY *pub, EVP_PKEY *sign_key, int64_t not_before,
		    unsigned days, X509 **out)
{
	X509 *x = X509_new();
	ASN1_INTEGER *serial = NULL;
	char hex[PROFILE_SERIAL_HEX];
	int r;

	*out = NULL;
	if (x == NULL)
		return SFTCA_ERR_NOMEM;
	if ((r = profile_random_serial(&serial, hex)) != 0)
		goto out;
	r = SFTCA_ERR_CRYPTO;
	if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
	    !X509_set_subject_name(x, subject) || !X509_set_issuer_name(x, subject) ||
	    !set_validity(x, not_before, not_before + (int64_t)days * 86400) ||
	    !X509_set_pubkey(x, pub) || !add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") ||
	    !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(x, x, NID_subject_key_identifier, "hash")) {
		log_crypto("building the CA certificate");
		goto out;
	}
	if (X509_sign(x, sign_key, profile_digest(pub)) <= 0) {
		log_crypto("signing the CA certificate in the token");
		goto out;
	}
	if (X509_verify(x, pub) != 1) {
		log_error("the token's CA signature does not verify with the CA public key");
		r = SFTCA_ERR_VERIFY;
		goto out;
	}
	*out = x;
	x = NULL;
	r = 0;
out:
	ERR_clear_error();
	ASN1_INTEGER_free(serial);
	X509_free(x);
	return r;
}

/* to = the key algor/key names, copied without decoding or re-encoding
 * the key (OpenSSL 3.0's X509_PUBKEY_dup would also lose the BIT STRING's
 * unused-bits count). */
static int spki_set(X509_PUBKEY *to, const X509_ALGOR *algor, const unsigned char *key, int keylen)
{
	const ASN1_OBJECT *alg;
	const void *pval;
	int ptype;
	unsigned char *kcopy;
	void *pcopy = NULL;

	X509_ALGOR_get0(&alg, &ptype, &pval, algor);
	if (ptype == V_ASN1_OBJECT)
		pcopy = OBJ_dup(pval);
	else if (ptype == V_ASN1_SEQUENCE)
		pcopy = ASN1_STRING_dup(pval);
	else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
		return 0;
	if ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE) && pcopy == NULL)
		return 0;
	if ((kcopy = OPENSSL_memdup(key, (size_t)keylen)) == NULL) {
		if (ptype == V_ASN1_OBJECT)
			ASN1_OBJECT_free(pcopy);
		else
			ASN1_STRING_free(pcopy);
		return 0;
	}
	return X509_PUBKEY_set0_param(to, OBJ_dup(alg), ptype, pcopy, kcopy, keylen);
}

static int copy_spki(X509_PUBKEY *to, const X509_PUBKEY *from)
{
	const unsigned char *key;
	X509_ALGOR *algor;
	int keylen;

	return X509_PUBKEY_get0_param(NULL, &key, &keylen, &algor, from) &&
	       spki_set(to, algor, key, keylen);
}

/* A PKCS#10 request as ASN.1 templates that leave the key undecoded:
 * d2i_X509_REQ runs OpenSSL 3.0's generic key decoder (OSSL_DECODER) on
 * every request, which costs about half an RSA-2048 signature in the token.
 * Keys the profile accepts, with the usual signature algorithms, are
 * checked directly from their DER; anything else takes the general path. */
typedef struct {
	X509_ALGOR *alg;
	ASN1_BIT_STRING *key;
} CSR_SPKI;

typedef struct {
	ASN1_ENCODING enc; /* the exact bytes the signature covers */
	ASN1_INTEGER *version;
	X509_NAME *subject;
	CSR_SPKI *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} CSR_INFO;

typedef struct {
	CSR_INFO *info;
	X509_ALGOR *sig_alg;
	ASN1_BIT_STRING *sig;
} CSR;

ASN1_SEQUENCE(CSR_SPKI) = {
	ASN1_SIMPLE(CSR_SPKI, alg, X509_ALGOR),
	ASN1_SIMPLE(CSR_SPKI, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_SPKI)

ASN1_SEQUENCE_enc(CSR_INFO, enc, 0) = {
	ASN1_SIMPLE(CSR_INFO, version, ASN1_INTEGER),
	ASN1_SIMPLE(CSR_INFO, subject, X509_NAME),
	ASN1_SIMPLE(CSR_INFO, spki, CSR_SPKI),
	ASN1_IMP_SET_OF_OPT(CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CSR_INFO, CSR_INFO)

ASN1_SEQUENCE(CSR) = {
	ASN1_SIMPLE(CSR, info, CSR_INFO),
	ASN1_SIMPLE(CSR, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(CSR, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR)

enum { FAST_OK, FAST_REFUSED, FAST_GENERAL };

/* The signature algorithm's digest, for the algorithms the fast path
 * knows (NULL parameters or absent, as RFC 4055/5758 say). */
static const EVP_MD *fast_sig_md(const X509_ALGOR *a, int *is_ec)
{
	const ASN1_OBJECT *oid;
	int ptype;

	X509_ALGOR_get0(&oid, &ptype, NULL, a);
	*is_ec = 0;
	switch (OBJ_obj2nid(oid)) {
	case NID_sha256WithRSAEncryption:
		return ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF ? md_get(0) : NULL;
	case NID_sha384WithRSAEncryption:
		return ptype == V_ASN1_NULL || ptype == V_ASN1_UNDEF ? md_get(1) : NULL;
	case NID_ecdsa_with_SHA256:
		*is_ec = 1;
		return ptype == V_ASN1_UNDEF ? md_get(0) : NULL;
	case NID_ecdsa_with_SHA384:
		*is_ec = 1;
		return ptype == V_ASN1_UNDEF ? md_get(1) : NULL;
	default:
		return NULL;
	}
}

static int fast_check(const CSR *c, struct sftca_msg *why)
{
	const ASN1_OBJECT *koid;
	const void *kparam;
	const unsigned char *k = c->info->spki->key->data, *tbs = (const unsigned char *)c->info->enc.enc;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	const EVP_MD *dig;
	int ktype, is_ec, r = FAST_GENERAL;
	long klen = c->info->spki->key->length;

	/* Key and signature BIT STRINGs with unused bits are for the general path. */
	if ((c->info->spki->key->flags & 7) || (c->sig->flags & 7) || c->info->enc.enc == NULL ||
	    (dig = fast_sig_md(c->sig_alg, &is_ec)) == NULL)
		return FAST_GENERAL;
	X509_ALGOR_get0(&koid, &ktype, &kparam, c->info->spki->alg);
	if (!EVP_Digest(tbs, c->info->enc.len, md, &mdlen, dig, NULL))
		return FAST_GENERAL;
	if (!is_ec && OBJ_obj2nid(koid) == NID_rsaEncryption && ktype == V_ASN1_NULL) {
		RSA *rsa = d2i_RSAPublicKey(NULL, &k, klen);
		if (rsa == NULL || k != c->info->spki->key->data + klen) {
			RSA_free(rsa);
			return FAST_GENERAL;
		}
		if (RSA_bits(rsa) < 2048 || RSA_bits(rsa) > 8192) {
			msg_set(why, "RSA key of %d bits refused (2048 to 8192 allowed)",
				 RSA_bits(rsa));
			r = FAST_REFUSED;
		} else if (RSA_verify(EVP_MD_get_type(dig), md, mdlen, c->sig->data,
				      (unsigned)c->sig->length, rsa) != 1) {
			r = FAST_GENERAL; /* let the general path have the last word */
		} else {
			r = FAST_OK;
		}
		RSA_free(rsa);
	} else if (is_ec && OBJ_obj2nid(koid) == NID_X9_62_id_ecPublicKey &&
		   ktype == V_ASN1_OBJECT) {
		int curve = OBJ_obj2nid(kparam);
		EC_KEY *ec;
		if (curve != NID_X9_62_prime256v1 && curve != NID_secp384r1)
			return FAST_GENERAL;
		if ((ec = EC_KEY_new_by_curve_name(curve)) == NULL)
			return FAST_GENERAL;
		if (o2i_ECPublicKey(&ec, &k, klen) != NULL && k == c->info->spki->key->data + klen &&
		    ECDSA_verify(0, md, (int)mdlen, c->sig->data, c->sig->length, ec) == 1)
			r = FAST_OK;
		EC_KEY_free(ec);
	}
	return r;
}

/* The key as the certificate will carry it, without decoding it. */
static X509_PUBKEY *fast_spki(const CSR_SPKI *s)
{
	X509_PUBKEY *pub = X509_PUBKEY_new();

	if (pub != NULL && !spki_set(pub, s->alg, s->key->data, s->key->length)) {
		X509_PUBKEY_free(pub);
		return NULL;
	}
	return pub;
}

/* The general path: any key and algorithm OpenSSL knows, decoded. */
static int general_check(const unsigned char *der, size_t len, X509_PUBKEY **out,
			 struct sftca_msg *why)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	EVP_PKEY *k;
	int r = SFTCA_ERR_INVALID;

	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL || p != der + len) {
		msg_set(why, "CSR is not a DER PKCS#10 request");
		goto out;
	}
	if ((k = X509_REQ_get0_pubkey(req)) == NULL) {
		msg_set(why, "CSR public key cannot be read");
		goto out;
	}
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(k) < 2048 || EVP_PKEY_get_bits(k) > 8192) {
			msg_set(why, "RSA key of %d bits refused (2048 to 8192 allowed)",
				 EVP_PKEY_get_bits(k));
			goto out;
		}
		break;
	case EVP_PKEY_EC: {
		char type[32];
		pkey_type_text(k, type, sizeof(type));
		if (strcmp(type, "ec:p256") != 0 && strcmp(type, "ec:p384") != 0) {
			msg_set(why, "EC key on curve %s refused (P-256 or P-384 allowed)",
				 type + 3);
			goto out;
		}
		break;
	}
	default:
		msg_set(why, "key type %s refused (RSA or EC P-256/P-384 allowed)",
			 OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		goto out;
	}
	if (X509_REQ_verify(req, k) != 1) {
		msg_set(why, "CSR signature does not verify (no proof of possession)");
		goto out;
	}
	if ((*out = X509_PUBKEY_new()) == NULL || !copy_spki(*out, X509_REQ_get_X509_PUBKEY(req))) {
		X509_PUBKEY_free(*out);
		*out = NULL;
		msg_set(why, "out of memory");
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	r = 0;
out:
	X509_REQ_free(req);
	return r;
}

int profile_check_csr(const unsigned char *der, size_t len, size_t max_len, X509_PUBKEY **out,
		      struct sftca_msg *why)
{
	const unsigned char *p = der;
	CSR *c = NULL;
	int r = SFTCA_ERR_INVALID;

	*out = NULL;
	msg_clear(why);
	if (len == 0) {
		msg_set(why, "CSR is empty");
		return r;
	}
	if (len > max_len) {
		msg_set(why, "CSR is %zu bytes, more than the %zu allowed", len, max_len);
		return r;
	}
	c = (CSR *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CSR));
	if (c != NULL && p == der + len) {
		switch (fast_check(c, why)) {
		case FAST_OK:
			r = (*out = fast_spki(c->info->spki)) ? 0 : SFTCA_ERR_NOMEM;
			if (r != 0)
				msg_set(why, "out of memory");
			goto out;
		case FAST_REFUSED:
			goto out;
		default:
			break;
		}
	}
	r = general_check(der, len, out, why);
out:
	ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(CSR));
	ERR_clear_error();
	return r;
}

int profile_spki_sha256(const X509_PUBKEY *spki, char out[65])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_X509_PUBKEY(spki, &der);
	int r = SFTCA_ERR_CRYPTO;

	if (n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
		for (int i = 0; i < 32; i++)
			snprintf(out + 2 * i, 3, "%02x", md[i]);
		r = 0;
	}
	OPENSSL_free(der);
	return r;
}

/* The extensions every peer certificate carries, built once: parsing
 * their text per certificate would cost more than the rest of it. */
static X509_EXTENSION *ext_bc, *ext_san, *ext_eku;
static pthread_once_t ext_once = PTHREAD_ONCE_INIT;

static void exts_init(void)
{
	ext_bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "CA:FALSE");
	ext_san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:localhost");
	ext_eku = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth,clientAuth");
}

/* SKI (SHA-1 of the key bits, RFC 5280 method 1) and the AKI naming the
 * CA's SKI. */
static int add_key_ids(X509 *x, X509 *ca)
{
	const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
	const ASN1_OCTET_STRING *ca_ski = X509_get0_subject_key_id(ca);
	unsigned char md[SHA_DIGEST_LENGTH];
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	AUTHORITY_KEYID *akid = NULL;
	int ok = 0;

	if (ski == NULL || bits == NULL ||
	    !EVP_Digest(bits->data, (size_t)bits->length, md, NULL, EVP_sha1(), NULL) ||
	    !ASN1_OCTET_STRING_set(ski, md, sizeof(md)) ||
	    !X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT))
		goto out;
	if (ca_ski != NULL) {
		if ((akid = AUTHORITY_KEYID_new()) == NULL ||
		    (akid->keyid = ASN1_OCTET_STRING_dup(ca_ski)) == NULL ||
		    !X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT))
			goto out;
	}
	ok = 1;
out:
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	return ok;
}

int profile_leaf(X509 *ca, const char *peer_uuid, const X509_PUBKEY *spki,
		 const ASN1_INTEGER *serial, int64_t now, unsigned days, X509 **out)
{
	int64_t ca_nb = x509_not_before(ca), ca_na = x509_not_after(ca);
	int64_t nb = now - PROFILE_BACKDATE_SECONDS, na = now + (int64_t)days * 86400;
	X509 *x = NULL;
	int r = SFTCA_ERR_CRYPTO;

	*out = NULL;
	pthread_once(&ext_once, exts_init);
	if (nb < ca_nb)
		nb = ca_nb;
	if (na > ca_na)
		na = ca_na;
	if (na <= now) {
		log_error("the CA certificate expired; renew it before issuing");
		return SFTCA_ERR_PRECONDITION;
	}
	if (!ext_bc || !ext_san || !ext_eku || (x = X509_new()) == NULL ||
	    !leaf_subject_into(X509_get_subject_name(x), X509_get_subject_name(ca), peer_uuid))
		goto out;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_serialNumber(x, (ASN1_INTEGER *)serial) || /* copied, not kept */
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) || !set_validity(x, nb, na) ||
	    !copy_spki(X509_get_X509_PUBKEY(x), spki) || !X509_add_ext(x, ext_bc, -1) || !X509_add_ext(x, ext_san, -1) ||
	    !X509_add_ext(x, ext_eku, -1))
		goto out;
	/* A legacy v1 CA has no SKI to point at: no SKI/AKI then, like the field. */
	if (X509_get_version(ca) == X509_VERSION_3 && !add_key_ids(x, ca))
		goto out;
	*out = x;
	x = NULL;
	r = 0;
out:
	if (r != 0)
		log_crypto("building a peer certificate");
	ERR_clear_error();
	X509_free(x);
	return r;
}
