/* One peer of `sftca issue`: decide what it needs, prepare its CSR, and
 * write the result into its directory. */
#ifndef SFTCA_ISSUE_PEER_H
#define SFTCA_ISSUE_PEER_H

#include "layout.h"
#include "msg.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>

struct trust;

struct issue_ctx {
	const char *ca_id;
	const char *root;     /* the FMC tree */
	X509 *ca_cert;        /* active generation */
	const struct trust *trust; /* the tree's bundle and CRL; NULL: none readable */
	int ec_family;        /* new keys: EC P-256 for an EC CA, else RSA-2048 */
	int rekey, force, dry_run;
	int renew_days;       /* reissue when fewer days are left */
	char stamp[32];       /* backup suffix shared by the whole run */
};

enum peer_action {
	PEER_CURRENT = 0,     /* nothing to do */
	PEER_RECERTIFY,       /* new certificate for the key already there */
	PEER_NEWKEY,          /* new key pair and certificate */
	PEER_FAILED,
};

struct peer_work {
	struct layout_target t;
	enum peer_action act;
	struct sftca_msg message; /* why (failed), or what (new key) */
	EVP_PKEY *key;
	unsigned char *csr;
	size_t csr_len;
	int64_t not_after;    /* of the certificate now on disk (current) or written */
	int64_t found_not_after; /* of the certificate found on disk; 0 without one */
	char serial[80];
	int done;             /* issued and written */
};

/* Decide, and for a peer that needs a certificate, load or make the key and
 * build the CSR. Never fails the run: problems land in w->act/message. */
void peer_prepare(const struct issue_ctx *c, struct peer_work *w);
/* Write the certificate (and the new key) atomically, with backups. */
void peer_write(const struct issue_ctx *c, struct peer_work *w, const unsigned char *der,
		size_t len, const char *serial);
void peer_clear(struct peer_work *w);
const char *peer_action_name(enum peer_action a);

#endif
