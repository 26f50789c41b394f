#include "profile.h"

#include "errors.h"
#include "log.h"
#include "x509util.h"

#include <limits.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define ORG "Cisco Systems, Inc."
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

X509_NAME *profile_leaf_subject(const X509_NAME *ca_subject, const char *peer_uuid)
{
	X509_NAME *n = X509_NAME_new();
	int have_cn = 0;

	if (n == NULL)
		return NULL;
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
		if (!ok) {
			X509_NAME_free(n);
			return NULL;
		}
	}
	if (!have_cn && !X509_NAME_add_entry_by_NID(n, NID_commonName, MBSTRING_UTF8,
						    (const unsigned char *)peer_uuid, -1, -1, 0)) {
		X509_NAME_free(n);
		return NULL;
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

const EVP_MD *profile_digest(EVP_PKEY *ca_key)
{
	int big = EVP_PKEY_get_base_id(ca_key) == EVP_PKEY_EC && EVP_PKEY_get_bits(ca_key) > 256;

	pthread_once(&md_once, mds_init);
	if (big)
		return md_sha384 ? md_sha384 : EVP_sha384();
	return md_sha256 ? md_sha256 : EVP_sha256();
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

int profile_check_csr(const unsigned char *der, size_t len, size_t max_len, X509_REQ **out,
		      char *why, size_t whylen)
{
	const unsigned char *p = der;
	X509_REQ *req = NULL;
	EVP_PKEY *k;
	int r = SFTCA_ERR_INVALID;

	*out = NULL;
	if (len == 0) {
		snprintf(why, whylen, "CSR is empty");
		return r;
	}
	if (len > max_len) {
		snprintf(why, whylen, "CSR is %zu bytes, more than the %zu allowed", len, max_len);
		return r;
	}
	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL || p != der + len) {
		snprintf(why, whylen, "CSR is not a DER PKCS#10 request");
		goto out;
	}
	if ((k = X509_REQ_get0_pubkey(req)) == NULL) {
		snprintf(why, whylen, "CSR public key cannot be read");
		goto out;
	}
	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(k) < 2048 || EVP_PKEY_get_bits(k) > 8192) {
			snprintf(why, whylen, "RSA key of %d bits refused (2048 to 8192 allowed)",
				 EVP_PKEY_get_bits(k));
			goto out;
		}
		break;
	case EVP_PKEY_EC: {
		char type[32];
		pkey_type_text(k, type, sizeof(type));
		if (strcmp(type, "ec:p256") != 0 && strcmp(type, "ec:p384") != 0) {
			snprintf(why, whylen, "EC key on curve %s refused (P-256 or P-384 allowed)",
				 type + 3);
			goto out;
		}
		break;
	}
	default:
		snprintf(why, whylen, "key type %s refused (RSA or EC P-256/P-384 allowed)",
			 OBJ_nid2sn(EVP_PKEY_get_base_id(k)));
		goto out;
	}
	if (X509_REQ_verify(req, k) != 1) {
		snprintf(why, whylen, "CSR signature does not verify (no proof of possession)");
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
out:
	ERR_clear_error();
	X509_REQ_free(req);
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

/* The certificate's key = the CSR's, copied without re-encoding. */
static int copy_spki(X509 *x, const X509_PUBKEY *from)
{
	ASN1_OBJECT *alg = NULL;
	const unsigned char *key;
	const X509_ALGOR *algor;
	const void *pval;
	int keylen, ptype;
	unsigned char *kcopy;
	void *pcopy = NULL;

	if (!X509_PUBKEY_get0_param(&alg, &key, &keylen, (X509_ALGOR **)&algor, from))
		return 0;
	X509_ALGOR_get0((const ASN1_OBJECT **)&alg, &ptype, &pval, algor);
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
	return X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), OBJ_dup(alg), ptype, pcopy, kcopy,
				      keylen);
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
	X509_NAME *subject = NULL;
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
	    (subject = profile_leaf_subject(X509_get_subject_name(ca), peer_uuid)) == NULL)
		goto out;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !X509_set_serialNumber(x, (ASN1_INTEGER *)serial) || /* copied, not kept */
	    !X509_set_subject_name(x, subject) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca)) || !set_validity(x, nb, na) ||
	    !copy_spki(x, spki) || !X509_add_ext(x, ext_bc, -1) || !X509_add_ext(x, ext_san, -1) ||
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
	X509_NAME_free(subject);
	X509_free(x);
	return r;
}
