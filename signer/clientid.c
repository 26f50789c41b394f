#include "clientid.h"

#include "errors.h"
#include "log.h"

#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct client_crl {
	STACK_OF(X509_CRL) *crls;
};

static int sha256_of(const unsigned char *der, int len, unsigned char out[CLIENTID_SHA256_LEN])
{
	unsigned int n = 0;

	return len > 0 && EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 &&
			       n == CLIENTID_SHA256_LEN
		       ? 0
		       : -1;
}

/* The subject's one CN as text, refusing what a string comparison could
 * be fooled by. */
static int one_cn(X509 *x, struct client_cert *out, struct sftca_msg *why)
{
	const X509_NAME *name = X509_get_subject_name(x);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int n, r = SFTCA_ERR_AUTH;

	if (i < 0)
		return msg_fail(why, r, "client certificate has no CN");
	if (X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return msg_fail(why, r, "client certificate has more than one CN");
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n < 0)
		msg_set(why, "client certificate CN is not valid text");
	else if (strlen((const char *)utf8) != (size_t)n)
		msg_set(why, "client certificate CN has an embedded NUL");
	else if ((size_t)n >= sizeof(out->cn) || n == 0)
		msg_set(why, "client certificate CN is empty or longer than %zu bytes",
			sizeof(out->cn) - 1);
	else {
		memcpy(out->cn, utf8, (size_t)n + 1);
		r = 0;
	}
	OPENSSL_free(utf8);
	return r;
}

int client_cert_parse(const char *pem, size_t len, struct client_cert *out, struct sftca_msg *why)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	const ASN1_INTEGER *sn;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int dlen, r = SFTCA_ERR_AUTH;

	memset(out, 0, sizeof(*out));
	BIO_free(bio);
	if (x == NULL) {
		msg_set(why, "client certificate cannot be read");
		ERR_clear_error();
		goto out;
	}
	if ((r = one_cn(x, out, why)) != 0)
		goto out;
	r = SFTCA_ERR_AUTH;
	dlen = i2d_X509(x, &der);
	if (sha256_of(der, dlen, out->cert_sha256) != 0)
		goto digest;
	OPENSSL_free(der);
	der = NULL;
	dlen = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (sha256_of(der, dlen, out->spki_sha256) != 0)
		goto digest;
	sn = X509_get0_serialNumber(x);
	if ((bn = ASN1_INTEGER_to_BN(sn, NULL)) != NULL && (hex = BN_bn2hex(bn)) != NULL)
		snprintf(out->serial, sizeof(out->serial), "%s", hex);
	out->x509 = x;
	x = NULL;
	r = 0;
	goto out;
digest:
	msg_set(why, "client certificate cannot be hashed");
out:
	OPENSSL_free(der);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);
	return r;
}

void client_cert_clear(struct client_cert *c)
{
	X509_free(c->x509);
	memset(c, 0, sizeof(*c));
}

/* The client_ca certificates, for checking the CRLs' signatures. */
static STACK_OF(X509_INFO) *read_cas(const char *path)
{
	BIO *bio = BIO_new_file(path, "r");
	STACK_OF(X509_INFO) *cas = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return cas;
}

static int crl_signed_by_ca(X509_CRL *crl, STACK_OF(X509_INFO) *cas)
{
	for (int i = 0; i < sk_X509_INFO_num(cas); i++) {
		X509 *ca = sk_X509_INFO_value(cas, i)->x509;
		if (ca && X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1)
			return 1;
	}
	return 0;
}

struct client_crl *client_crl_load(const char *path, const char *client_ca)
{
	struct client_crl *c = calloc(1, sizeof(*c));
	STACK_OF(X509_INFO) *cas = read_cas(client_ca);
	BIO *bio = BIO_new_file(path, "r");
	X509_CRL *crl;

	if (c == NULL || (c->crls = sk_X509_CRL_new_null()) == NULL)
		goto fail;
	if (bio == NULL || cas == NULL) {
		log_error("client_crl %s or client_ca %s cannot be read", path, client_ca);
		goto fail;
	}
	while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		if (!crl_signed_by_ca(crl, cas)) {
			char issuer[256];
			X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
			log_error("client_crl %s: the CRL from %s is not signed by a certificate in "
				  "client_ca %s", path, issuer, client_ca);
			X509_CRL_free(crl);
			goto fail;
		}
		if (!sk_X509_CRL_push(c->crls, crl)) {
			X509_CRL_free(crl);
			goto fail;
		}
	}
	ERR_clear_error(); /* the end of the file */
	if (sk_X509_CRL_num(c->crls) == 0) {
		log_error("client_crl %s holds no PEM CRL", path);
		goto fail;
	}
	BIO_free(bio);
	sk_X509_INFO_pop_free(cas, X509_INFO_free);
	return c;
fail:
	ERR_clear_error();
	BIO_free(bio);
	if (cas)
		sk_X509_INFO_pop_free(cas, X509_INFO_free);
	client_crl_free(c);
	return NULL;
}

void client_crl_free(struct client_crl *crl)
{
	if (crl == NULL)
		return;
	sk_X509_CRL_pop_free(crl->crls, X509_CRL_free);
	free(crl);
}

int client_crl_revoked(const struct client_crl *crl, const struct client_cert *c)
{
	X509 *x = c->x509;

	if (crl == NULL || x == NULL)
		return 0;
	for (int i = 0; i < sk_X509_CRL_num(crl->crls); i++) {
		X509_CRL *one = sk_X509_CRL_value(crl->crls, i);
		X509_REVOKED *rev = NULL;
		/* Expired or not: a stale list still names stolen certificates. */
		if (X509_NAME_cmp(X509_CRL_get_issuer(one), X509_get_issuer_name(x)) == 0 &&
		    X509_CRL_get0_by_cert(one, &rev, x) == 1)
			return 1;
	}
	return 0;
}

void client_crl_counts(const struct client_crl *crl, size_t *ncrls, size_t *nrevoked)
{
	*ncrls = *nrevoked = 0;
	for (int i = 0; crl && i < sk_X509_CRL_num(crl->crls); i++) {
		STACK_OF(X509_REVOKED) *r = X509_CRL_get_REVOKED(sk_X509_CRL_value(crl->crls, i));
		(*ncrls)++;
		*nrevoked += r ? (size_t)sk_X509_REVOKED_num(r) : 0;
	}
}

int clientid_parse_pin(const char *s, unsigned char digest[CLIENTID_SHA256_LEN])
{
	int which;

	if (strncmp(s, "cert-sha256/", 12) == 0)
		which = CLIENTID_PIN_CERT;
	else if (strncmp(s, "spki-sha256/", 12) == 0)
		which = CLIENTID_PIN_SPKI;
	else
		return 0;
	s += 12;
	if (strlen(s) != 2 * CLIENTID_SHA256_LEN)
		return -1;
	for (size_t i = 0; i < CLIENTID_SHA256_LEN; i++) {
		unsigned v;
		if (!isxdigit((unsigned char)s[2 * i]) || !isxdigit((unsigned char)s[2 * i + 1]) ||
		    sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		digest[i] = (unsigned char)v;
	}
	return which;
}
