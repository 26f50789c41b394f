#include "issue_peer.h"

#include "atomicfile.h"
#include "errors.h"
#include "expiry.h"
#include "fileio.h"
#include "log.h"
#include "peerfiles.h"
#include "trust.h"
#include "x509util.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const char *peer_action_name(enum peer_action a)
{
	static const char *const names[] = { "current", "recertify", "new-key", "failed" };
	return names[a];
}

/* The peer failed, and why (a struct sftca_msg format). */
#define PEER_FAIL(w, ...) (ERR_clear_error(), (w)->act = PEER_FAILED, msg_set(&(w)->message, __VA_ARGS__))

/* 1 when dir/name exists, its path in path; -1 when the path does not fit. */
static int file_exists(const char *dir, const char *name, char *path, size_t len)
{
	struct stat st;

	if (layout_file(dir, name, path, len) != 0)
		return -1;
	return stat(path, &st) == 0;
}

static EVP_PKEY *new_key(int ec)
{
	EVP_PKEY *k = ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048);
	if (k == NULL)
		log_crypto("generating a key");
	return k;
}

static int make_csr(struct peer_work *w)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int len = -1;

	/* The signer builds the subject itself; the CN here only helps people
	 * reading the CSR. */
	if (req && name &&
	    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
				       (const unsigned char *)w->t.uuid, -1, -1, 0) &&
	    X509_REQ_set_version(req, 0) && X509_REQ_set_subject_name(req, name) &&
	    X509_REQ_set_pubkey(req, w->key) && X509_REQ_sign(req, w->key, EVP_sha256()) > 0)
		len = i2d_X509_REQ(req, &der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	if (len <= 0) {
		OPENSSL_free(der);
		return SFTCA_ERR_CRYPTO;
	}
	w->csr = der;
	w->csr_len = (size_t)len;
	return 0;
}

void peer_prepare(const struct issue_ctx *c, struct peer_work *w)
{
	char kpath[4200], cpath[4200];
	struct sftca_msg m = { { 0 } };
	struct peerfiles_policy pol = { .trust = c->trust, .active_ca = c->ca_cert,
					.renew_days = c->renew_days, .now = time(NULL) };
	struct peerfiles_result res = { 0 };
	enum peerfiles_verdict verdict = PF_MISSING;
	X509 *cert = NULL;
	int have_key, have_cert;

	if (!w->t.self && layout_check_peer(c->root, w->t.uuid, &m) != 0) {
		PEER_FAIL(w, "%s", m.text);
		return;
	}
	have_key = file_exists(w->t.dir, LAYOUT_KEY, kpath, sizeof(kpath));
	have_cert = file_exists(w->t.dir, LAYOUT_CERT, cpath, sizeof(cpath));
	if (have_key < 0 || have_cert < 0) {
		PEER_FAIL(w, "%s: path too long", w->t.dir);
		return;
	}
	if (have_key && !c->rekey && pem_load_key(kpath, &w->key) != 0) {
		PEER_FAIL(w, "%s cannot be read; --rekey replaces it with a new key", kpath);
		return;
	}
	if (have_cert && pem_load_cert(cpath, &cert) != 0)
		cert = NULL; /* unreadable: it gets replaced */
	if (cert)
		w->found_not_after = x509_not_after(cert);
	/* The certificate on disk may be one this run need not replace. */
	if (w->key && cert)
		verdict = peerfiles_judge(&pol, &w->t, cert, w->key, &res);
	/* A revoked certificate's key is not certified again, whatever the
	 * reason (the signer refuses keyCompromise keys anyway): a new key. */
	if (verdict == PF_REVOKED) {
		msg_set(&w->message, "certificate serial %s of the old key is revoked: new key",
			res.serial[0] ? res.serial : "?");
		log_warn("%s: certificate serial %s in %s is revoked by the CRL: its key is replaced "
			 "by a new one", w->t.uuid, res.serial[0] ? res.serial : "?", w->t.dir);
		EVP_PKEY_free(w->key);
		w->key = NULL;
	} else if (verdict == PF_OK && !c->force) {
		w->act = PEER_CURRENT;
		w->not_after = res.not_after;
		X509_free(cert);
		return;
	}
	X509_free(cert);
	w->act = w->key ? PEER_RECERTIFY : PEER_NEWKEY;
	if (c->dry_run)
		return;
	if (w->key == NULL && (w->key = new_key(c->ec_family)) == NULL) {
		PEER_FAIL(w, "key generation failed");
		return;
	}
	if (make_csr(w) != 0)
		PEER_FAIL(w, "CSR could not be built");
}

void peer_write(const struct issue_ctx *c, struct peer_work *w, const unsigned char *der,
		size_t len, const char *serial)
{
	char *cert_pem = NULL, *key_pem = NULL, made[128];
	int64_t not_after = 0;
	int r = x509_der_peek(der, len, w->key, &not_after);

	/* Keys equal by value but encoded otherwise take the general path. */
	if (r == SFTCA_ERR_VERIFY) {
		X509 *x = x509_from_der(der, len);
		r = x != NULL && x509_key_matches(x, w->key) ? 0 : SFTCA_ERR_VERIFY;
		not_after = x != NULL ? x509_not_after(x) : 0;
		X509_free(x);
	}
	if (r != 0) {
		PEER_FAIL(w, "the signer returned a certificate that %s",
			  r == SFTCA_ERR_VERIFY ? "does not match the key" : "does not parse");
		goto out;
	}
	/* The bytes the signer signed, as they are. */
	if ((cert_pem = der_to_pem(PEM_STRING_X509, der, len)) == NULL) {
		PEER_FAIL(w, "out of memory");
		goto out;
	}
	/* The files stay as the tree had them (mode, owner); a new one
	 * follows its sibling, and 0644/0600 only where there is none. */
	if (w->act == PEER_NEWKEY) {
		struct af_file files[3] = {
			{ LAYOUT_KEY, NULL, 0, 0600 },
			{ LAYOUT_CERT, cert_pem, strlen(cert_pem), 0644 },
			{ LAYOUT_KEY_MADE, made, 0, 0644 },
		};
		const struct af_keep keep[3] = { { { LAYOUT_CERT } }, { { LAYOUT_KEY } },
						 { { LAYOUT_CERT } } };
		if ((key_pem = pkey_to_pem(w->key)) == NULL) {
			PEER_FAIL(w, "out of memory");
			goto out;
		}
		files[0].data = key_pem;
		files[0].len = strlen(key_pem);
		sha256_hex(key_pem, files[0].len, made);
		snprintf(made + 64, sizeof(made) - 64, "  " LAYOUT_KEY "\n");
		files[2].len = strlen(made);
		/* Key, certificate and the record that sftca made the key change
		 * together: all old or all new. */
		r = af_write_set_keep(w->t.dir, files, keep, 3, c->stamp);
	} else {
		struct af_file f = { LAYOUT_CERT, cert_pem, strlen(cert_pem), 0644 };
		const struct af_keep keep = { { LAYOUT_KEY } };
		r = af_write_keep(w->t.dir, &f, &keep, c->stamp);
	}
	if (r != 0) {
		PEER_FAIL(w, "writing %s failed: %s", w->t.dir, sftca_strerror(r));
		goto out;
	}
	w->done = 1;
	w->not_after = not_after;
	snprintf(w->serial, sizeof(w->serial), "%s", serial);
out:
	if (key_pem) {
		OPENSSL_cleanse(key_pem, strlen(key_pem));
		free(key_pem);
	}
	free(cert_pem);
}

void peer_clear(struct peer_work *w)
{
	EVP_PKEY_free(w->key);
	w->key = NULL;
	OPENSSL_free(w->csr);
	w->csr = NULL;
}
