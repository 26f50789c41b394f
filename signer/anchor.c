#include "anchor.h"

#include "atomicfile.h"
#include "audit.h"
#include "clock.h"
#include "errors.h"
#include "log.h"
#include "signer.h"
#include "token.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct anchor {
	struct signer *s;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	unsigned long long signed_seq; /* on disk in audit.anchor */
	unsigned long long text_seq;   /* text holds its signed checkpoint */
	char text[1024];
	size_t len;
};

/* ECDSA-SHA256 in the token, DER, base64 into sig. */
static int anchor_sign(EVP_PKEY *k, const char *text, size_t len, char *sig, size_t siglen)
{
	unsigned char der[160];
	size_t dlen = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
		 EVP_DigestSign(md, der, &dlen, (const unsigned char *)text, len) == 1 &&
		 siglen > 4 * ((dlen + 2) / 3);

	EVP_MD_CTX_free(md);
	ERR_clear_error();
	if (!ok)
		return SFTCA_ERR_CRYPTO;
	EVP_EncodeBlock((unsigned char *)sig, der, (int)dlen);
	return 0;
}

/* audit.anchor: the last record, signed by the audit key. A checkpoint
 * signed but not written (a full disk) is written later, not signed again. */
static void checkpoint(struct anchor *an)
{
	struct signer *s = an->s;
	unsigned long long seq;
	char prev[65], sig[800];
	struct af_file f = { "audit.anchor", an->text, 0, 0600 };
	int n;

	audit_last(s->audit, &seq, prev);
	if (seq == 0 || seq == an->signed_seq)
		return;
	if (seq != an->text_seq) {
		n = snprintf(an->text, sizeof(an->text), "%llu %s %lld", seq, prev,
			     (long long)time(NULL));
		if (anchor_sign(s->audit_pkey, an->text, (size_t)n, sig, sizeof(sig)) != 0) {
			log_warn("audit checkpoint for record %llu not signed: the token did not "
				 "sign (tried again within a second)",
				 seq);
			return;
		}
		n += snprintf(an->text + n, sizeof(an->text) - (size_t)n, "\nsig %s\n", sig);
		an->len = (size_t)n;
		an->text_seq = seq;
	}
	f.len = an->len;
	if (af_write(s->cfg->state_dir, &f, NULL) == 0)
		an->signed_seq = seq;
}

/* Signs the latest record at most once a second, off the audit lock: a
 * token call that hangs delays the checkpoint, never an audit write. */
static void *anchor_main(void *arg)
{
	struct anchor *an = arg;

	pthread_mutex_lock(&an->mu);
	while (!an->stop) {
		struct timespec ts;
		pthread_mutex_unlock(&an->mu);
		checkpoint(an);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_mutex_lock(&an->mu);
		if (!an->stop)
			pthread_cond_timedwait(&an->cv, &an->mu, &ts);
	}
	pthread_mutex_unlock(&an->mu);
	return NULL;
}

/* state_dir/audit-key.pem: the public half, for verify-audit --key. */
static int export_public(const char *dir, EVP_PKEY *pub)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long n;
	int r = SFTCA_ERR_CRYPTO;

	if (bio != NULL && PEM_write_bio_PUBKEY(bio, pub) && (n = BIO_get_mem_data(bio, &data)) > 0) {
		struct af_file f = { "audit-key.pem", data, (size_t)n, 0600 };
		r = af_write(dir, &f, NULL);
	}
	BIO_free(bio);
	return r;
}

int anchor_open(struct signer *s)
{
	EVP_PKEY *pub = NULL;
	struct anchor *an;
	int r;

	if (token_label_free(s->token, NULL, ANCHOR_KEY_LABEL) == 0) {
		if ((r = token_generate_key(s->token, NULL, ANCHOR_KEY_LABEL, "ec:p256", &pub)) != 0) {
			log_error("the audit key '%s' cannot be generated in the token: %s",
				  ANCHOR_KEY_LABEL, sftca_strerror(r));
			return r;
		}
		EVP_PKEY_free(pub);
		log_info("audit key '%s' generated in the token (EC P-256, sign only)",
			 ANCHOR_KEY_LABEL);
	}
	if ((r = token_key_open(s->token, NULL, ANCHOR_KEY_LABEL, &s->audit_key)) != 0)
		return r;
	if ((s->audit_pkey = token_pkey_new(s->audit_key, NULL)) == NULL ||
	    (an = calloc(1, sizeof(*an))) == NULL) {
		anchor_close(s);
		return SFTCA_ERR_NOMEM;
	}
	if ((r = export_public(s->cfg->state_dir, token_key_public(s->audit_key))) != 0) {
		log_error("%s/audit-key.pem cannot be written", s->cfg->state_dir);
		free(an);
		anchor_close(s);
		return r;
	}
	an->s = s;
	pthread_mutex_init(&an->mu, NULL);
	pthread_cond_init(&an->cv, NULL);
	if (pthread_create(&an->thread, NULL, anchor_main, an) != 0) {
		free(an);
		anchor_close(s);
		return SFTCA_ERR_NOMEM;
	}
	s->anchor = an;
	return 0;
}

void anchor_close(struct signer *s)
{
	struct anchor *an = s->anchor;

	if (an != NULL) {
		pthread_mutex_lock(&an->mu);
		an->stop = 1;
		pthread_cond_signal(&an->cv);
		pthread_mutex_unlock(&an->mu);
		pthread_join(an->thread, NULL);
		checkpoint(an); /* the records up to now, signer.stop included */
		pthread_cond_destroy(&an->cv);
		pthread_mutex_destroy(&an->mu);
		free(an);
		s->anchor = NULL;
	}
	EVP_PKEY_free(s->audit_pkey);
	token_key_free(s->audit_key);
	s->audit_pkey = NULL;
	s->audit_key = NULL;
}
