/* Are this peer's files good? The one judgement `sftca verify`, `push` and
 * `issue` share, and the one way they list the peers of an FMC tree. */
#ifndef SFTCA_PEERFILES_H
#define SFTCA_PEERFILES_H

#include "layout.h"
#include "msg.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct trust;

/* The first thing wrong with a pair, in this order of precedence. */
enum peerfiles_verdict {
	PF_OK = 0,
	PF_MISSING,         /* no readable certificate or key */
	PF_KEY_MISMATCH,    /* the key is not the certificate's */
	PF_REVOKED,         /* the tree's CRL lists the certificate */
	PF_WRONG_CN,        /* CN is not the directory's UUID (the CA id for self) */
	PF_EXPIRED,
	PF_NOT_CHAINING,    /* does not verify against the tree's bundle */
	PF_FOREIGN_CA,      /* not issued by the active CA key */
	PF_EXPIRING,        /* renew_days or fewer left, and the CA allows more */
};

/* What to judge against; a NULL / negative field is not checked. */
struct peerfiles_policy {
	const struct trust *trust; /* revocation by its CRL */
	int chain;                 /* with trust: chains to its bundle */
	X509 *active_ca;           /* the leaf must be this CA's (and name its key) */
	int renew_days;            /* with active_ca: EXPIRING at this many days; -1 off */
	int64_t now;
};

struct peerfiles_result {
	enum peerfiles_verdict verdict;
	struct sftca_msg why;      /* every problem found, "; "-separated */
	int64_t not_after;         /* of the certificate; 0 without one */
	char serial[80];           /* of the certificate; "" without one */
};

/* "ok", "missing", "key-mismatch", ... */
const char *peerfiles_verdict_name(enum peerfiles_verdict v);

/* Judge a loaded pair for target t into res (zeroed by the caller, or
 * holding the caller's PF_MISSING for a NULL key: the rest is still
 * checked). */
enum peerfiles_verdict peerfiles_judge(const struct peerfiles_policy *p,
				       const struct layout_target *t, X509 *cert, EVP_PKEY *key,
				       struct peerfiles_result *res);
/* Load t's pair from t->dir and judge it. */
enum peerfiles_verdict peerfiles_check(const struct peerfiles_policy *p,
				       const struct layout_target *t, struct peerfiles_result *res);
/* Most --peer arguments one run takes. */
#define PEERFILES_MAX_NAMED 4096

/* Add a --peer argument to a growing list (free with free()): 0, or -1
 * after saying what is wrong (not a canonical UUID, one too many). */
int peerfiles_name_peer(char (**peers)[40], size_t *n, const char *arg)
	__attribute__((warn_unused_result));

/* Is root's peers/<uuid> an FMC HA peer's directory, left to that FMC's own
 * CA? It is when uuid is one of the CAs the signer holds (cas, ncas: the
 * other CA ids; may be NULL), or when the directory's cacert.pem holds a CA
 * certificate whose CN is uuid (the peer FMC's InternalCA, as the vendor
 * copies it there). 1 with the reason in why, else 0. */
int peerfiles_ha_peer(const char *root, const char *uuid, const char (*cas)[40], size_t ncas,
		      char *why, size_t whylen);

/* The targets of a run: the peers named, or every peer directory of root
 * that has a certs_pushed/ or a pair when none is (sorted; the others are
 * named in a warning and left alone), and with_self the FMC's own identity (CN ca_id)
 * last. FMC HA peers (peerfiles_ha_peer; cas: the signer's other CA ids,
 * or NULL) are never targets: a listed one is named in a warning, a named
 * one refuses the run (SFTCA_ERR_INVALID). Free *out with free(). 0;
 * SFTCA_ERR_NOT_FOUND when root has no peer directory (*out then holds the
 * self target alone, if asked for); another error with *out NULL. Failures
 * are reported on stderr. */
int peerfiles_targets(const char *root, const char *ca_id, const char (*cas)[40], size_t ncas,
		      const char (*peers)[40], size_t npeers, int with_self,
		      struct layout_target **out, size_t *n) __attribute__((warn_unused_result));

#endif
