#include "peerfiles.h"

#include "errors.h"
#include "expiry.h"
#include "log.h"
#include "trust.h"
#include "uuid.h"
#include "x509util.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

const char *peerfiles_verdict_name(enum peerfiles_verdict v)
{
	static const char *const names[] = { "ok", "missing", "key-mismatch", "revoked", "wrong-cn",
					     "expired", "not-chaining", "foreign-ca", "expiring" };
	return (size_t)v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown";
}

/* Keep the verdict of highest precedence (lowest value) seen so far. */
static void found(struct peerfiles_result *res, enum peerfiles_verdict v)
{
	if (res->verdict == PF_OK || v < res->verdict)
		res->verdict = v;
}

enum peerfiles_verdict peerfiles_judge(const struct peerfiles_policy *p,
				       const struct layout_target *t, X509 *cert, EVP_PKEY *key,
				       struct peerfiles_result *res)
{
	char cn[64], why[200], aki_serial[80], ca_serial[80];
	X509 *ca;

#define PROBLEM(v, ...) (found(res, v), msg_append(&res->why, "; ", __VA_ARGS__))
	res->not_after = x509_not_after(cert);
	if (x509_serial_hex(cert, res->serial, sizeof(res->serial)) != 0)
		res->serial[0] = '\0';
	if (key != NULL && !x509_key_matches(cert, key))
		PROBLEM(PF_KEY_MISMATCH, "the key does not belong to the certificate");
	if (x509_name_cn(X509_get_subject_name(cert), cn, sizeof(cn)) != 0)
		PROBLEM(PF_WRONG_CN, "the certificate has no CN");
	else if (strcmp(cn, t->uuid) != 0)
		PROBLEM(PF_WRONG_CN, "CN %s is not the %s %s", cn, t->self ? "CA id" : "directory's UUID",
			t->uuid);
	/* The CA the leaf must chain to: the signer's active one, or else the
	 * bundle's first (verify has only the tree). Same key is not enough: an
	 * AKI naming the old serial (a CA renewed since) never chains. */
	ca = p->active_ca ? p->active_ca
	     : p->trust && sk_X509_num(trust_anchors(p->trust)) > 0
		     ? sk_X509_value(trust_anchors(p->trust), 0)
		     : NULL;
	if (ca && x509_issued_by(cert, ca) &&
	    x509_aki_serial_mismatch(cert, ca, aki_serial, ca_serial, sizeof(aki_serial)))
		PROBLEM(PF_NOT_CHAINING,
			"authority key identifier names issuer serial %s, the CA is serial %s: will "
			"not chain",
			aki_serial, ca_serial);
	/* That says why; OpenSSL's "unable to get local issuer" would not. */
	else if (p->trust && p->chain &&
		 x509_verify_chain(cert, trust_anchors(p->trust), 0, why, sizeof(why)) != 0)
		PROBLEM(PF_NOT_CHAINING, "does not chain to the bundle: %s", why);
	if (p->active_ca && !x509_issued_by(cert, p->active_ca))
		PROBLEM(PF_FOREIGN_CA, "not issued by the active CA key");
	/* A leaf of a legacy v1 CA names no authority key identifier: once the
	 * CA is v3, replace it, or a later rotation's overlap could break it. */
	else if (p->active_ca && X509_get0_subject_key_id(p->active_ca) != NULL &&
		 X509_get0_authority_key_id(cert) == NULL)
		PROBLEM(PF_FOREIGN_CA, "names no authority key identifier (a leaf of the v1 CA)");
	if (res->not_after <= p->now)
		PROBLEM(PF_EXPIRED, "expired %lld days ago",
			(long long)-expiry_days(res->not_after, p->now, NULL));
	/* Enough days left, or as many as the CA allows: reissuing gains nothing. */
	else if (p->active_ca && p->renew_days >= 0 &&
		 expiry_days(res->not_after, p->now, NULL) <= p->renew_days &&
		 res->not_after < x509_not_after(p->active_ca) - 86400)
		PROBLEM(PF_EXPIRING, "%lld days left",
			(long long)expiry_days(res->not_after, p->now, NULL));
	if (p->trust && trust_revoked(p->trust, cert))
		PROBLEM(PF_REVOKED, "revoked by the CRL");
#undef PROBLEM
	ERR_clear_error();
	return res->verdict;
}

enum peerfiles_verdict peerfiles_check(const struct peerfiles_policy *p,
				       const struct layout_target *t, struct peerfiles_result *res)
{
	char path[4300];
	X509 *x = NULL;
	EVP_PKEY *k = NULL;

	memset(res, 0, sizeof(*res));
	if (layout_file(t->dir, LAYOUT_CERT, path, sizeof(path)) != 0) {
		found(res, PF_MISSING);
		msg_set(&res->why, "%s: path too long", t->dir);
		goto out;
	}
	if (access(path, F_OK) != 0 || pem_load_cert(path, &x) != 0) {
		found(res, PF_MISSING);
		msg_set(&res->why, "no readable certificate %s", path);
		goto out;
	}
	if (layout_file(t->dir, LAYOUT_KEY, path, sizeof(path)) != 0 || access(path, F_OK) != 0 ||
	    pem_load_key(path, &k) != 0) {
		found(res, PF_MISSING);
		msg_set(&res->why, "no readable key %s", path);
	}
	peerfiles_judge(p, t, x, k, res);
out:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(k);
	return res->verdict;
}

int peerfiles_name_peer(char (**peers)[40], size_t *n, const char *arg)
{
	char (*grown)[40];

	if (!uuid_is_canonical(arg)) {
		log_error("--peer '%s' is not a canonical lowercase UUID", arg);
		return -1;
	}
	if (*n >= PEERFILES_MAX_NAMED) {
		log_error("--peer '%s': more than %d peers named; leave --peer out to take every "
			  "peer of the tree", arg, PEERFILES_MAX_NAMED);
		return -1;
	}
	/* Doubling from 16: a few peers cost a few bytes. */
	if ((*n & (*n - 1)) == 0 && *n >= 16) {
		if ((grown = realloc(*peers, 2 * *n * sizeof(**peers))) == NULL) {
			log_error("out of memory for %zu peers", *n + 1);
			return -1;
		}
		*peers = grown;
	} else if (*n == 0) {
		if ((*peers = calloc(16, sizeof(**peers))) == NULL) {
			log_error("out of memory for the peer list");
			return -1;
		}
	}
	snprintf((*peers)[(*n)++], sizeof(**peers), "%s", arg);
	return 0;
}

/* dir (the pair directory layout_peer_pair_dir chose) exists, or holds a
 * certificate or a key: the FMC made it for a device it pushes to. */
static int has_pair(const char *dir)
{
	char path[4300];
	struct stat st;

	return lstat(dir, &st) == 0 ||
	       (layout_file(dir, LAYOUT_CERT, path, sizeof(path)) == 0 && lstat(path, &st) == 0) ||
	       (layout_file(dir, LAYOUT_KEY, path, sizeof(path)) == 0 && lstat(path, &st) == 0);
}

int peerfiles_ha_peer(const char *root, const char *uuid, const char (*cas)[40], size_t ncas,
		      char *why, size_t whylen)
{
	STACK_OF(X509) *sk = NULL;
	char path[4300], cn[80];
	int ha = 0;

	for (size_t i = 0; i < ncas; i++)
		if (strcmp(cas[i], uuid) == 0) {
			snprintf(why, whylen, "its UUID is a CA this signer holds");
			return 1;
		}
	/* The vendor copies the peer FMC's InternalCA beside the pair it signed:
	 * a CA named for the directory's own UUID can only be an FMC's. */
	if (snprintf(path, sizeof(path), "%s/var/sf/peers/%s/" LAYOUT_BUNDLE, root, uuid) >=
		    (int)sizeof(path) ||
	    access(path, F_OK) != 0 || pem_load_certs(path, &sk) != 0)
		return 0;
	for (int i = 0; i < sk_X509_num(sk) && !ha; i++) {
		X509 *x = sk_X509_value(sk, i);
		ha = X509_check_ca(x) > 0 && x509_name_cn(X509_get_subject_name(x), cn, sizeof(cn)) == 0 &&
		     strcasecmp(cn, uuid) == 0;
	}
	sk_X509_pop_free(sk, X509_free);
	ERR_clear_error();
	if (ha)
		snprintf(why, whylen, "its cacert.pem is the InternalCA of FMC %s", uuid);
	return ha;
}

int peerfiles_targets(const char *root, const char *ca_id, const char (*cas)[40], size_t ncas,
		      const char (*peers)[40], size_t npeers, int with_self,
		      struct layout_target **out, size_t *n)
{
	char (*all)[40] = NULL;
	const char (*names)[40] = peers;
	struct layout_target *v = NULL;
	size_t cnt = npeers, k = 0;
	int r = 0, listed = 0;

	*out = NULL;
	*n = 0;
	if (npeers == 0) {
		/* It reports its failures itself. */
		if ((r = layout_list_peers(root, &all, &cnt)) != 0 && r != SFTCA_ERR_NOT_FOUND)
			goto out;
		names = (const char (*)[40])all;
		listed = 1;
	}
	if ((v = calloc(cnt + 1, sizeof(*v))) == NULL) {
		log_error("out of memory for %zu targets", cnt + 1);
		r = SFTCA_ERR_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		char why[160];

		/* An HA peer's directory holds what its own FMC's CA signed: renewing
		 * it with this CA would break the link between the two FMCs. */
		if (peerfiles_ha_peer(root, names[i], cas, ncas, why, sizeof(why))) {
			if (!listed) {
				log_error("--peer %s is an FMC HA peer (%s): it is renewed with its own CA, "
					  "sftca issue --ca %s on that FMC's tree; nothing done",
					  names[i], why, names[i]);
				r = SFTCA_ERR_INVALID;
				goto out;
			}
			log_warn("%s/var/sf/peers/%s: an FMC HA peer (%s): left to its own CA "
				 "(sftca issue --ca %s on that FMC's tree)", root, names[i], why, names[i]);
			continue;
		}
		snprintf(v[k].uuid, sizeof(v[k].uuid), "%s", names[i]);
		if (layout_peer_pair_dir(root, names[i], v[k].dir, sizeof(v[k].dir)) != 0) {
			log_error("%s/var/sf/peers/%s: path too long", root, names[i]);
			r = SFTCA_ERR_INVALID;
			goto out;
		}
		/* Listed, not named: a directory without a pair (a stale device,
		 * an HA peer's directory) is not this tree's peer to create. */
		if (listed && !has_pair(v[k].dir)) {
			log_warn("%s/var/sf/peers/%s: no certs_pushed/ and no sftunnel pair in it (a stale "
				 "device, or an FMC HA peer's directory): left alone; --peer %s gives it one",
				 root, names[i], names[i]);
			continue;
		}
		k++;
	}
	if (with_self) {
		snprintf(v[k].uuid, sizeof(v[k].uuid), "%s", ca_id);
		v[k].self = 1;
		if (layout_self_dir(root, v[k].dir, sizeof(v[k].dir)) != 0) {
			log_error("%s/etc/sf/keys: path too long", root);
			r = SFTCA_ERR_INVALID;
			goto out;
		}
		k++;
	}
	*out = v;
	*n = k;
	v = NULL;
out:
	if (listed)
		free(all);
	free(v);
	return r;
}
