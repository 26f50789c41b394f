#include "trust.h"

#include "errors.h"
#include "layout.h"
#include "x509util.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

struct trust {
	STACK_OF(X509) *anchors;
	STACK_OF(X509_CRL) *crls;
};

struct trust *trust_load(const char *root, struct sftca_msg *m)
{
	char dir[4200], path[4300];
	struct trust *t = calloc(1, sizeof(*t));
	struct stat st;
	int r;

	if (t == NULL) {
		msg_set(m, "out of memory");
		return NULL;
	}
	layout_ca_root(root, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/" LAYOUT_BUNDLE, dir);
	if ((r = pem_load_certs(path, &t->anchors)) != 0 || sk_X509_num(t->anchors) == 0) {
		msg_set(m, "no trust bundle at %s: %s (sftca issue writes it)", path,
			r ? sftca_strerror(r) : "no certificate in it");
		goto fail;
	}
	snprintf(path, sizeof(path), "%s/" LAYOUT_CRL, dir);
	if (stat(path, &st) != 0 && errno == ENOENT)
		return t;
	if ((r = pem_load_crls(path, &t->crls)) != 0) {
		msg_set(m, "%s cannot be read as CRLs: %s", path, sftca_strerror(r));
		goto fail;
	}
	return t;
fail:
	trust_free(t);
	return NULL;
}

void trust_free(struct trust *t)
{
	if (t == NULL)
		return;
	sk_X509_pop_free(t->anchors, X509_free);
	sk_X509_CRL_pop_free(t->crls, X509_CRL_free);
	free(t);
}

STACK_OF(X509) *trust_anchors(const struct trust *t)
{
	return t->anchors;
}

int trust_revoked(const struct trust *t, X509 *x)
{
	for (int i = 0; i < sk_X509_CRL_num(t->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(t->crls, i);
		X509_REVOKED *rev = NULL;
		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(x)) != 0 ||
		    X509_CRL_get0_by_serial(crl, &rev, (ASN1_INTEGER *)X509_get0_serialNumber(x)) != 1)
			continue;
		/* Only a CRL the tree's own CAs signed counts. */
		for (int j = 0; j < sk_X509_num(t->anchors); j++)
			if (X509_CRL_verify(crl, X509_get0_pubkey(sk_X509_value(t->anchors, j))) == 1) {
				ERR_clear_error();
				return 1;
			}
		ERR_clear_error();
	}
	return 0;
}
