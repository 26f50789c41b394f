#include "trust.h"

#include "errors.h"
#include "fileio.h"
#include "layout.h"
#include "x509util.h"

#include <errno.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
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
	if (layout_ca_root(root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_BUNDLE, path, sizeof(path)) != 0) {
		msg_set(m, "%s/etc/sf/ca_root: path too long", root);
		goto fail;
	}
	if ((r = pem_load_certs(path, &t->anchors)) != 0 || sk_X509_num(t->anchors) == 0) {
		msg_set(m, "no trust bundle at %s: %s (sftca issue writes it)", path,
			r ? sftca_strerror(r) : "no certificate in it");
		goto fail;
	}
	if (layout_file(dir, LAYOUT_CRL, path, sizeof(path)) != 0) {
		msg_set(m, "%s/" LAYOUT_CRL ": path too long", dir);
		goto fail;
	}
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

/* Append a line to a growing string; 0 on out-of-memory. */
static int append(char **out, size_t *len, const char *line)
{
	char *grown = realloc(*out, *len + strlen(line) + 1);

	if (grown == NULL)
		return 0;
	memcpy(grown + *len, line, strlen(line) + 1);
	*out = grown;
	*len += strlen(line);
	return 1;
}

/* What a CRL file says: one line per CRL issuer and per revoked serial,
 * and the earliest nextUpdate. NULL if nothing parses. */
static char *crl_digest(const char *pem, int64_t *next)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_CRL *crl;
	char *out = NULL, line[128];
	size_t len = 0;
	int n = 0, ok = 1;

	*next = INT64_MAX;
	while (ok && bio && (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
		STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED(crl);
		unsigned long h = X509_NAME_hash_ex(X509_CRL_get_issuer(crl), NULL, NULL, NULL);
		int64_t nu;

		n++;
		if (asn1_time_unix(X509_CRL_get0_nextUpdate(crl), &nu) == 0 && nu < *next)
			*next = nu;
		snprintf(line, sizeof(line), "issuer %08lx\n", h);
		ok = append(&out, &len, line);
		for (int i = 0; ok && i < sk_X509_REVOKED_num(revs); i++) {
			char hex[80];
			if (asn1_int_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i)),
					 hex, sizeof(hex)) != 0)
				continue;
			snprintf(line, sizeof(line), "%08lx:%s\n", h, hex);
			ok = append(&out, &len, line);
		}
		X509_CRL_free(crl);
	}
	ERR_clear_error();
	BIO_free(bio);
	if (n == 0 || !ok) {
		free(out);
		return NULL;
	}
	return out;
}

int trust_crl_unchanged(const char *dir, const char *fresh)
{
	char path[4300], *old = NULL, *a = NULL, *b = NULL;
	size_t len;
	int64_t next_old, next_new;
	int same = 0;

	if (layout_file(dir, LAYOUT_CRL, path, sizeof(path)) != 0 || access(path, F_OK) != 0 ||
	    file_read_all(path, 16 << 20, &old, &len) != 0)
		return 0;
	a = crl_digest(old, &next_old);
	b = crl_digest(fresh, &next_new);
	if (a && b && strcmp(a, b) == 0 && next_old - time(NULL) > (next_new - time(NULL)) / 2)
		same = 1;
	free(old);
	free(a);
	free(b);
	return same;
}
