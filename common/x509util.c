/* d2i_RSAPrivateKey/d2i_ECPrivateKey and legacy key assignment: see
 * pem_load_key. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "x509util.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"

#include <ctype.h>
#include <limits.h>
#include <openssl/bio.h>
#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

int pem_parse_certs(const char *pem, size_t len, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = NULL;
	BIO *bio = NULL;
	X509 *x;
	int r = SFTCA_ERR_INVALID;

	*out = NULL;
	if (len > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL ||
	    (sk = sk_X509_new_null()) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			X509_free(x);
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
	}
	/* Running out of PEM blocks is the normal end; anything else is a
	 * block that would not parse. */
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
	    sk_X509_num(sk) == 0) {
		ERR_clear_error();
		goto out;
	}
	ERR_clear_error();
	*out = sk;
	sk = NULL;
	r = 0;
out:
	sk_X509_pop_free(sk, X509_free);
	BIO_free(bio);
	return r;
}

int pem_load_certs(const char *path, STACK_OF(X509) **out)
{
	char *buf = NULL;
	size_t len;
	int r;

	*out = NULL;
	if ((r = file_read_all(path, X509UTIL_MAX_FILE, &buf, &len)) != 0)
		return r;
	if ((r = pem_parse_certs(buf, len, out)) != 0)
		log_error("%s: no readable PEM certificate", path);
	free(buf);
	return r;
}

int pem_load_cert(const char *path, X509 **out)
{
	STACK_OF(X509) *sk;
	int r;

	*out = NULL;
	if ((r = pem_load_certs(path, &sk)) != 0)
		return r;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

int pem_load_crls(const char *path, STACK_OF(X509_CRL) **out)
{
	STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
	char *buf = NULL;
	size_t len;
	BIO *bio = NULL;
	X509_CRL *c;
	int r;

	*out = NULL;
	if (sk == NULL)
		return SFTCA_ERR_NOMEM;
	if ((r = file_read_all(path, 16 * X509UTIL_MAX_FILE, &buf, &len)) != 0)
		goto out;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	while ((c = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_CRL_push(sk, c)) {
			X509_CRL_free(c);
			r = SFTCA_ERR_NOMEM;
			goto out;
		}
	if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
		log_error("%s: a CRL block does not parse", path);
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	*out = sk;
	sk = NULL;
	r = 0;
out:
	ERR_clear_error();
	BIO_free(bio);
	free(buf);
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	return r;
}

/* RSA and EC private keys in the three PEM forms OpenSSL and the FMC
 * write, decoded by their ASN.1 templates: PEM_read_bio_PrivateKey runs
 * OpenSSL 3.0's generic decoder, which costs more than signing a CSR with
 * the key and made key loading the slowest part of renewing a fleet.
 * NULL for anything else (the caller then takes the general path). */
static EVP_PKEY *fast_key(const char *name, const unsigned char *der, long len)
{
	const unsigned char *p = der, *pk;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	const X509_ALGOR *alg;
	const ASN1_OBJECT *oid;
	const void *pval;
	EVP_PKEY *k = EVP_PKEY_new();
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;
	int pklen, ptype, nid;

	if (k == NULL)
		return NULL;
	if (strcmp(name, PEM_STRING_RSA) == 0) {
		rsa = d2i_RSAPrivateKey(NULL, &p, len);
	} else if (strcmp(name, PEM_STRING_ECPRIVATEKEY) == 0) {
		ec = d2i_ECPrivateKey(NULL, &p, len);
	} else if (strcmp(name, PEM_STRING_PKCS8INF) == 0 &&
		   (p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, len)) != NULL &&
		   PKCS8_pkey_get0(NULL, &pk, &pklen, &alg, p8)) {
		X509_ALGOR_get0(&oid, &ptype, &pval, alg);
		nid = OBJ_obj2nid(oid);
		if (nid == NID_rsaEncryption) {
			rsa = d2i_RSAPrivateKey(NULL, &pk, pklen);
		} else if (nid == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT &&
			   (ec = EC_KEY_new_by_curve_name(OBJ_obj2nid(pval))) != NULL &&
			   d2i_ECPrivateKey(&ec, &pk, pklen) == NULL) {
			/* On failure d2i_ECPrivateKey leaves *a, ours, allocated. */
			EC_KEY_free(ec);
			ec = NULL;
		}
	}
	PKCS8_PRIV_KEY_INFO_free(p8);
	if (p8 == NULL && p != der + len) { /* trailing bytes after a bare key */
		RSA_free(rsa);
		EC_KEY_free(ec);
		rsa = NULL;
		ec = NULL;
	}
	/* Not checked here, like the general path: a broken key makes a CSR
	 * whose signature the signer refuses. */
	if ((rsa && EVP_PKEY_assign_RSA(k, rsa)) || (ec && EVP_PKEY_assign_EC_KEY(k, ec)))
		return k;
	RSA_free(rsa);
	EC_KEY_free(ec);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return NULL;
}

int pem_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

int pem_load_key(const char *path, EVP_PKEY **out)
{
	char *buf = NULL, *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long derlen = 0;
	size_t len;
	BIO *bio;
	int r;

	*out = NULL;
	if ((r = file_read_all(path, X509UTIL_MAX_FILE, &buf, &len)) != 0)
		return r;
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	/* An unencrypted first block (no headers) may take the fast path. */
	if (PEM_read_bio(bio, &name, &header, &der, &derlen) == 1 && header[0] == '\0')
		*out = fast_key(name, der, derlen);
	if (*out == NULL) {
		(void)BIO_reset(bio);
		*out = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL);
	}
	BIO_free(bio);
	if (*out == NULL) {
		ERR_clear_error();
		log_error("%s: no readable unencrypted PEM private key", path);
		r = SFTCA_ERR_INVALID;
	}
out:
	if (der) {
		OPENSSL_cleanse(der, (size_t)derlen);
		OPENSSL_free(der);
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return r;
}

/* Drain a memory BIO into a malloc'd NUL-terminated string. */
static char *bio_to_string(BIO *bio)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

char *x509_to_pem(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_X509(bio, x))
		s = bio_to_string(bio);
	BIO_free(bio);
	return s;
}

char *pkey_to_pem(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL))
		s = bio_to_string(bio);
	BIO_free(bio);
	return s;
}

char *crl_to_pem(X509_CRL *c)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_X509_CRL(bio, c))
		s = bio_to_string(bio);
	BIO_free(bio);
	return s;
}

X509 *x509_from_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x;

	if (len == 0 || len > LONG_MAX)
		return NULL;
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != der + len) {
		X509_free(x); /* trailing garbage */
		x = NULL;
	}
	if (x == NULL)
		ERR_clear_error();
	return x;
}

/* A certificate read by templates that keep its SubjectPublicKeyInfo as
 * the bytes it was sent in: d2i_X509 would decode the key through OpenSSL
 * 3.0's generic decoder, which cost a seventh of renewing a fleet. */
typedef struct {
	ASN1_TIME *not_before;
	ASN1_TIME *not_after;
} PEEK_VALIDITY;

typedef struct {
	ASN1_INTEGER *version;
	ASN1_INTEGER *serial;
	X509_ALGOR *sig_alg;
	ASN1_TYPE *issuer;
	PEEK_VALIDITY *validity;
	ASN1_TYPE *subject;
	ASN1_TYPE *spki;
	ASN1_BIT_STRING *issuer_uid;
	ASN1_BIT_STRING *subject_uid;
	STACK_OF(ASN1_TYPE) *exts;
} PEEK_TBS;

typedef struct {
	PEEK_TBS *tbs;
	X509_ALGOR *sig_alg;
	ASN1_BIT_STRING *sig;
} PEEK_CERT;

ASN1_SEQUENCE(PEEK_VALIDITY) = {
	ASN1_SIMPLE(PEEK_VALIDITY, not_before, ASN1_TIME),
	ASN1_SIMPLE(PEEK_VALIDITY, not_after, ASN1_TIME),
} static_ASN1_SEQUENCE_END(PEEK_VALIDITY)

ASN1_SEQUENCE(PEEK_TBS) = {
	ASN1_EXP_OPT(PEEK_TBS, version, ASN1_INTEGER, 0),
	ASN1_SIMPLE(PEEK_TBS, serial, ASN1_INTEGER),
	ASN1_SIMPLE(PEEK_TBS, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(PEEK_TBS, issuer, ASN1_ANY),
	ASN1_SIMPLE(PEEK_TBS, validity, PEEK_VALIDITY),
	ASN1_SIMPLE(PEEK_TBS, subject, ASN1_ANY),
	ASN1_SIMPLE(PEEK_TBS, spki, ASN1_ANY),
	ASN1_IMP_OPT(PEEK_TBS, issuer_uid, ASN1_BIT_STRING, 1),
	ASN1_IMP_OPT(PEEK_TBS, subject_uid, ASN1_BIT_STRING, 2),
	ASN1_EXP_SEQUENCE_OF_OPT(PEEK_TBS, exts, ASN1_ANY, 3),
} static_ASN1_SEQUENCE_END(PEEK_TBS)

ASN1_SEQUENCE(PEEK_CERT) = {
	ASN1_SIMPLE(PEEK_CERT, tbs, PEEK_TBS),
	ASN1_SIMPLE(PEEK_CERT, sig_alg, X509_ALGOR),
	ASN1_SIMPLE(PEEK_CERT, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(PEEK_CERT)

int x509_der_peek(const unsigned char *der, size_t len, EVP_PKEY *k, int64_t *not_after)
{
	const unsigned char *p = der;
	unsigned char *spki = NULL;
	PEEK_CERT *c = NULL;
	const ASN1_STRING *s;
	int n, r = SFTCA_ERR_INVALID;

	if (len == 0 || len > LONG_MAX ||
	    (c = (PEEK_CERT *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(PEEK_CERT))) == NULL ||
	    p != der + len || c->tbs->spki->type != V_ASN1_SEQUENCE)
		goto out;
	s = c->tbs->spki->value.sequence; /* the whole encoding, tag and length included */
	if ((n = i2d_PUBKEY(k, &spki)) <= 0) {
		r = SFTCA_ERR_CRYPTO;
		goto out;
	}
	if (n != s->length || memcmp(spki, s->data, (size_t)n) != 0) {
		r = SFTCA_ERR_VERIFY;
		goto out;
	}
	r = asn1_time_unix(c->tbs->validity->not_after, not_after);
out:
	ERR_clear_error();
	OPENSSL_free(spki);
	ASN1_item_free((ASN1_VALUE *)c, ASN1_ITEM_rptr(PEEK_CERT));
	return r;
}

char *der_to_pem(const char *type, const unsigned char *der, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && len <= LONG_MAX && PEM_write_bio(bio, type, "", der, (long)len) > 0)
		s = bio_to_string(bio);
	BIO_free(bio);
	return s;
}

int asn1_int_hex(const ASN1_INTEGER *ai, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
	char *hex;
	int r = SFTCA_ERR_INVALID;

	if (bn == NULL)
		return SFTCA_ERR_NOMEM;
	if (BN_is_zero(bn) && len > 2) {
		memcpy(buf, "00", 3); /* as openssl x509 -serial prints a zero serial */
		r = 0;
	} else if (!BN_is_negative(bn) && (hex = BN_bn2hex(bn)) != NULL) {
		/* BN_bn2hex pads to whole bytes ("0F"); openssl x509 -serial does too. */
		if (strlen(hex) < len) {
			memcpy(buf, hex, strlen(hex) + 1);
			r = 0;
		}
		OPENSSL_free(hex);
	}
	BN_free(bn);
	return r;
}

int x509_serial_hex(const X509 *x, char *buf, size_t len)
{
	return asn1_int_hex(X509_get0_serialNumber(x), buf, len);
}

int serial_from_hex(const char *hex, ASN1_INTEGER **out)
{
	char clean[130];
	size_t n = 0;
	BIGNUM *bn = NULL;

	*out = NULL;
	if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0)
		hex += 2;
	for (; *hex; hex++) {
		if (*hex == ':')
			continue;
		if (!isxdigit((unsigned char)*hex) || n + 1 >= sizeof(clean))
			return SFTCA_ERR_INVALID;
		clean[n++] = (char)toupper((unsigned char)*hex);
	}
	clean[n] = '\0';
	if (n == 0 || !BN_hex2bn(&bn, clean))
		return SFTCA_ERR_INVALID;
	*out = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return *out ? 0 : SFTCA_ERR_NOMEM;
}

int serial_canonical(const char *hex, char *buf, size_t len)
{
	ASN1_INTEGER *ai;
	int r;

	if ((r = serial_from_hex(hex, &ai)) != 0)
		return r;
	r = asn1_int_hex(ai, buf, len);
	ASN1_INTEGER_free(ai);
	return r;
}

int x509_name_cn(const X509_NAME *n, char *buf, size_t len)
{
	int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
	const ASN1_STRING *s;
	unsigned char *utf8 = NULL;
	int ulen;

	if (len > 0)
		buf[0] = '\0'; /* callers print it in their refusals even when absent */
	if (i < 0)
		return SFTCA_ERR_NOT_FOUND;
	s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
	if ((ulen = ASN1_STRING_to_UTF8(&utf8, s)) < 0)
		return SFTCA_ERR_INVALID;
	if ((size_t)ulen >= len || memchr(utf8, '\0', (size_t)ulen) != NULL) {
		OPENSSL_free(utf8);
		return SFTCA_ERR_INVALID;
	}
	memcpy(buf, utf8, (size_t)ulen);
	buf[ulen] = '\0';
	OPENSSL_free(utf8);
	return 0;
}

void x509_name_text(const X509_NAME *n, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s;

	buf[0] = '\0';
	if (bio == NULL)
		return;
	if (X509_NAME_print_ex(bio, n, 0,
			       (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) |
				       XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN) >= 0 &&
	    (s = bio_to_string(bio)) != NULL) {
		snprintf(buf, len, "%s", s);
		free(s);
	}
	BIO_free(bio);
}

static void hex_lower(const unsigned char *d, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[d[i] >> 4];
		out[2 * i + 1] = digits[d[i] & 15];
	}
	out[2 * n] = '\0';
}

void sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];

	SHA256(data, len, md);
	hex_lower(md, 32, out);
}

int x509_sha256_hex(X509 *x, char out[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (!X509_digest(x, EVP_sha256(), md, &n) || n != 32)
		return SFTCA_ERR_CRYPTO;
	hex_lower(md, 32, out);
	return 0;
}

int pkey_spki_sha256_hex(EVP_PKEY *k, char out[65])
{
	unsigned char *der = NULL, md[32];
	int n = i2d_PUBKEY(k, &der);
	int r = SFTCA_ERR_CRYPTO;

	if (n > 0 && EVP_Digest(der, (size_t)n, md, NULL, EVP_sha256(), NULL)) {
		hex_lower(md, 32, out);
		r = 0;
	}
	OPENSSL_free(der);
	return r;
}

int x509_key_matches(X509 *x, EVP_PKEY *k)
{
	EVP_PKEY *pub = X509_get0_pubkey(x);
	return pub != NULL && k != NULL && EVP_PKEY_eq(pub, k) == 1;
}

void pkey_type_text(const EVP_PKEY *k, char *buf, size_t len)
{
	char group[64] = "";
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_RSA:
		snprintf(buf, len, "rsa:%d", EVP_PKEY_get_bits(k));
		return;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), &glen)) {
			if (strcmp(group, "prime256v1") == 0) {
				snprintf(buf, len, "ec:p256");
				return;
			}
			if (strcmp(group, "secp384r1") == 0) {
				snprintf(buf, len, "ec:p384");
				return;
			}
		}
		snprintf(buf, len, "ec:%s", group[0] ? group : "unknown");
		return;
	default:
		snprintf(buf, len, "unknown");
	}
}

int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	*out = 0;
	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return SFTCA_ERR_INVALID;
	*out = (int64_t)timegm(&tm);
	return 0;
}

int64_t x509_not_after(const X509 *x)
{
	int64_t t;
	return asn1_time_unix(X509_get0_notAfter(x), &t) == 0 ? t : 0;
}

int64_t x509_not_before(const X509 *x)
{
	int64_t t;
	return asn1_time_unix(X509_get0_notBefore(x), &t) == 0 ? t : 0;
}

int x509_issued_by(X509 *x, X509 *issuer)
{
	EVP_PKEY *pub = X509_get0_pubkey(issuer);
	int ok;

	if (pub == NULL || X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(issuer)) != 0)
		return 0;
	ok = X509_verify(x, pub) == 1;
	ERR_clear_error();
	return ok;
}

int x509_aki_serial_mismatch(X509 *x, const X509 *ca, char *aki_serial, char *ca_serial,
			     size_t len)
{
	const ASN1_INTEGER *named = X509_get0_authority_serial(x);

	if (named == NULL || ASN1_INTEGER_cmp(named, X509_get0_serialNumber(ca)) == 0)
		return 0;
	if (aki_serial && asn1_int_hex(named, aki_serial, len) != 0)
		snprintf(aki_serial, len, "?");
	if (ca_serial && x509_serial_hex(ca, ca_serial, len) != 0)
		snprintf(ca_serial, len, "?");
	return 1;
}

int x509_verify_chain(X509 *x, STACK_OF(X509) *anchors, time_t at, char *why, size_t whylen)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int r = SFTCA_ERR_NOMEM;

	if (why && whylen)
		why[0] = '\0';
	if (store == NULL || ctx == NULL)
		goto out;
	for (int i = 0; i < sk_X509_num(anchors); i++)
		if (!X509_STORE_add_cert(store, sk_X509_value(anchors, i)))
			goto out;
	if (!X509_STORE_CTX_init(ctx, store, x, NULL))
		goto out;
	/* No X509_V_FLAG_X509_STRICT: a legacy v1 InternalCA (no
	 * basicConstraints) must stay usable as a trust anchor, as in
	 * `openssl verify`. */
	if (at != 0)
		X509_STORE_CTX_set_time(ctx, 0, at);
	if (X509_verify_cert(ctx) == 1) {
		r = 0;
	} else {
		int e = X509_STORE_CTX_get_error(ctx);
		if (why && whylen)
			snprintf(why, whylen, "%s", X509_verify_cert_error_string(e));
		r = SFTCA_ERR_VERIFY;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return r;
}
