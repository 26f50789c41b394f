#include "tlsfiles.h"

#include "errors.h"
#include "fileio.h"
#include "log.h"
#include "x509util.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

static int check_pair(const char *cert_path, const struct tls_files *t, const char *key_path)
{
	STACK_OF(X509) *certs = NULL;
	EVP_PKEY *key = NULL;
	BIO *bio;
	int r;

	if ((r = pem_parse_certs(t->cert_pem, strlen(t->cert_pem), &certs)) != 0) {
		log_error("%s: no readable PEM certificate", cert_path);
		return r;
	}
	if ((bio = BIO_new_mem_buf(t->key_pem, (int)t->key_len)) == NULL) {
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, pem_no_passphrase, NULL);
	BIO_free(bio);
	if (key == NULL) {
		ERR_clear_error();
		log_error("%s: no readable unencrypted PEM private key", key_path);
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	if (!x509_key_matches(sk_X509_value(certs, 0), key)) {
		log_error("%s does not hold the private key of the certificate in %s", key_path,
			  cert_path);
		r = SFTCA_ERR_INVALID;
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(key);
	sk_X509_pop_free(certs, X509_free);
	return r;
}

int tls_files_load(const char *cert, const char *key, const char *ca, struct tls_files *out)
{
	size_t len;
	int r;

	memset(out, 0, sizeof(*out));
	if (cert && (r = file_read_all(cert, X509UTIL_MAX_FILE, &out->cert_pem, &len)) != 0)
		goto fail;
	if (key && (r = secret_read_file(key, &out->key_pem, &out->key_len)) != 0)
		goto fail;
	if (ca) {
		STACK_OF(X509) *anchors;
		if ((r = pem_load_certs(ca, &anchors)) != 0)
			goto fail;
		sk_X509_pop_free(anchors, X509_free);
		if ((r = file_read_all(ca, X509UTIL_MAX_FILE, &out->ca_pem, &len)) != 0)
			goto fail;
	}
	if (cert && key && (r = check_pair(cert, out, key)) != 0)
		goto fail;
	return 0;
fail:
	tls_files_clear(out);
	return r;
}

void tls_files_clear(struct tls_files *t)
{
	free(t->cert_pem);
	secret_free(t->key_pem, t->key_len);
	free(t->ca_pem);
	memset(t, 0, sizeof(*t));
}
