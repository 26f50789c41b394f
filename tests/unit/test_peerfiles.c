/* peerfiles: the verdict on a peer's pair, and the target list, on a
 * temporary FMC tree whose certificates and CRL are made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "errors.h"
#include "fileio.h"
#include "layout.h"
#include "log.h"
#include "peerfiles.h"
#include "tmpdir.h"
#include "trust.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define U1 "11111111-2222-4333-8444-555555555555"
#define U2 "22222222-2222-4333-8444-555555555555"
#define FMC "cdb123c8-4347-11ef-aca1-f3aa241412a1"

static EVP_PKEY *ca_key, *other_key, *leaf_key, *stray_key;
static X509 *ca, *other_ca;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
}

/* A certificate for key k named cn, valid from..to seconds from now,
 * signed by issuer (NULL: self-signed CA). */
static X509 *cert(const char *cn, EVP_PKEY *k, long serial, X509 *issuer, EVP_PKEY *ik, long from,
		  long to)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_gmtime_adj(X509_getm_notBefore(x), from);
	X509_gmtime_adj(X509_getm_notAfter(x), to);
	X509_set_pubkey(x, k);
	add_ext(x, issuer ? issuer : x, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid");
	else
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
	X509_sign(x, ik ? ik : k, EVP_sha256());
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (x)
		assert_int_equal(PEM_write_X509(f, x), 1);
	if (k)
		assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

/* root/var/sf/peers/uuid/certs_pushed with x and k (either may be NULL). */
static void peer(const char *root, const char *uuid, X509 *x, EVP_PKEY *k, struct layout_target *t)
{
	char path[4300];

	memset(t, 0, sizeof(*t));
	snprintf(t->uuid, sizeof(t->uuid), "%s", uuid);
	snprintf(path, sizeof(path), "%s/var/sf/peers/%s/certs_pushed", root, uuid);
	assert_int_equal(mkdir_p(path, 0755), 0);
	assert_int_equal(layout_peer_pair_dir(root, uuid, t->dir, sizeof(t->dir)), 0);
	snprintf(path, sizeof(path), "%s/" LAYOUT_CERT, t->dir);
	remove(path);
	if (x)
		write_pem(path, x, NULL);
	snprintf(path, sizeof(path), "%s/" LAYOUT_KEY, t->dir);
	remove(path);
	if (k)
		write_pem(path, NULL, k);
}

static int setup(void **state)
{
	(void)state;
	ca_key = EVP_EC_gen("P-256");
	other_key = EVP_EC_gen("P-256");
	leaf_key = EVP_EC_gen("P-256");
	stray_key = EVP_EC_gen("P-256");
	ca = cert(FMC, ca_key, 1, NULL, NULL, -86400, 3650L * 86400);
	other_ca = cert(FMC, other_key, 1, NULL, NULL, -86400, 3650L * 86400);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(stray_key);
	X509_free(ca);
	X509_free(other_ca);
	return 0;
}

/* A tree with the bundle; crl_serial > 0: a CRL of ca revoking it. */
static struct trust *tree(const char *root, long crl_serial)
{
	char path[4300];
	struct sftca_msg m = { { 0 } };
	struct trust *t;

	snprintf(path, sizeof(path), "%s/etc/sf/ca_root", root);
	assert_int_equal(mkdir_p(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/etc/sf/ca_root/" LAYOUT_BUNDLE, root);
	write_pem(path, ca, NULL);
	if (crl_serial > 0) {
		X509_CRL *crl = X509_CRL_new();
		X509_REVOKED *rev = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();
		ASN1_TIME *now = ASN1_TIME_adj(NULL, time(NULL), 0, 0);
		FILE *f;

		ASN1_INTEGER_set(sn, crl_serial);
		X509_REVOKED_set_serialNumber(rev, sn);
		X509_REVOKED_set_revocationDate(rev, now);
		X509_CRL_set_version(crl, 1);
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
		X509_CRL_set1_lastUpdate(crl, now);
		X509_CRL_add0_revoked(crl, rev);
		X509_CRL_sign(crl, ca_key, EVP_sha256());
		snprintf(path, sizeof(path), "%s/etc/sf/ca_root/" LAYOUT_CRL, root);
		assert_non_null(f = fopen(path, "w"));
		PEM_write_X509_CRL(f, crl);
		fclose(f);
		ASN1_INTEGER_free(sn);
		ASN1_TIME_free(now);
		X509_CRL_free(crl);
	}
	t = trust_load(root, &m);
	assert_non_null(t);
	return t;
}

/* Check U1's pair x (with leaf_key unless k) as verify does. */
static enum peerfiles_verdict verify_one(const char *root, struct trust *tr, X509 *x, EVP_PKEY *k,
					 struct peerfiles_result *res)
{
	struct peerfiles_policy p = { .trust = tr, .chain = 1, .renew_days = -1, .now = time(NULL) };
	struct layout_target t;

	peer(root, U1, x, k, &t);
	return peerfiles_check(&p, &t, res);
}

static void every_verdict(void **state)
{
	char root[64];
	struct peerfiles_result res;
	struct trust *tr;
	X509 *x;

	(void)state;
	tmpdir_make(root, "peerfiles");
	tr = tree(root, 0);

	x = cert(U1, leaf_key, 10, ca, ca_key, -60, 365L * 86400);
	assert_int_equal(verify_one(root, tr, x, leaf_key, &res), PF_OK);
	assert_string_equal(res.why.text, "");
	assert_string_equal(res.serial, "0A");
	assert_int_equal(verify_one(root, tr, x, stray_key, &res), PF_KEY_MISMATCH);
	assert_string_equal(res.why.text, "the key does not belong to the certificate");
	assert_int_equal(verify_one(root, tr, x, NULL, &res), PF_MISSING);
	assert_non_null(strstr(res.why.text, "no readable key "));
	assert_int_equal(verify_one(root, tr, NULL, leaf_key, &res), PF_MISSING);
	assert_non_null(strstr(res.why.text, "no readable certificate "));
	X509_free(x);

	x = cert(U2, leaf_key, 11, ca, ca_key, -60, 365L * 86400);
	assert_int_equal(verify_one(root, tr, x, leaf_key, &res), PF_WRONG_CN);
	assert_string_equal(res.why.text, "CN " U2 " is not the directory's UUID " U1);
	X509_free(x);

	x = cert(U1, leaf_key, 12, other_ca, other_key, -60, 365L * 86400);
	assert_int_equal(verify_one(root, tr, x, leaf_key, &res), PF_NOT_CHAINING);
	assert_non_null(strstr(res.why.text, "does not chain to the bundle: "));
	X509_free(x);

	x = cert(U1, leaf_key, 13, ca, ca_key, -10L * 86400, -3L * 86400);
	assert_int_equal(verify_one(root, tr, x, leaf_key, &res), PF_EXPIRED);
	assert_non_null(strstr(res.why.text, "expired 3 days ago"));
	X509_free(x);
	trust_free(tr);

	/* Revoked outranks a wrong CN; a key mismatch outranks revoked. */
	tr = tree(root, 14);
	x = cert(U2, leaf_key, 14, ca, ca_key, -60, 365L * 86400);
	assert_int_equal(verify_one(root, tr, x, leaf_key, &res), PF_REVOKED);
	assert_non_null(strstr(res.why.text, "revoked by the CRL"));
	assert_non_null(strstr(res.why.text, "CN " U2));
	assert_int_equal(verify_one(root, tr, x, stray_key, &res), PF_KEY_MISMATCH);
	X509_free(x);
	trust_free(tr);
	assert_int_equal(tmpdir_remove(root), 0);
}

/* What issue judges: the active CA and the days left. */
static void issue_policy(void **state)
{
	struct peerfiles_policy p = { .active_ca = ca, .renew_days = 90, .now = time(NULL) };
	struct peerfiles_result res;
	struct layout_target t = { .uuid = U1 };
	X509 *x;

	(void)state;
	x = cert(U1, leaf_key, 20, ca, ca_key, -60, 365L * 86400);
	memset(&res, 0, sizeof(res));
	assert_int_equal(peerfiles_judge(&p, &t, x, leaf_key, &res), PF_OK);
	X509_free(x);

	x = cert(U1, leaf_key, 21, ca, ca_key, -60, 30L * 86400);
	memset(&res, 0, sizeof(res));
	assert_int_equal(peerfiles_judge(&p, &t, x, leaf_key, &res), PF_EXPIRING);
	p.renew_days = 20;
	memset(&res, 0, sizeof(res));
	assert_int_equal(peerfiles_judge(&p, &t, x, leaf_key, &res), PF_OK);
	X509_free(x);

	x = cert(U1, leaf_key, 22, other_ca, other_key, -60, 365L * 86400);
	memset(&res, 0, sizeof(res));
	assert_int_equal(peerfiles_judge(&p, &t, x, leaf_key, &res), PF_FOREIGN_CA);
	X509_free(x);

	assert_string_equal(peerfiles_verdict_name(PF_FOREIGN_CA), "foreign-ca");
	assert_string_equal(peerfiles_verdict_name(PF_EXPIRING), "expiring");
	assert_string_equal(peerfiles_verdict_name((enum peerfiles_verdict)99), "unknown");
}

static void targets_and_paths(void **state)
{
	char root[64], buf[32], (*named)[40] = NULL, *long_root;
	struct layout_target *t = NULL, dummy;
	size_t n = 0;

	(void)state;
	tmpdir_make(root, "peerfiles");
	/* No peers directory: the FMC alone, said as NOT_FOUND. */
	assert_int_equal(peerfiles_targets(root, FMC, NULL, 0, NULL, 0, 1, &t, &n), SFTCA_ERR_NOT_FOUND);
	assert_int_equal(n, 1);
	assert_int_equal(t[0].self, 1);
	assert_string_equal(t[0].uuid, FMC);
	free(t);

	peer(root, U2, NULL, NULL, &dummy);
	peer(root, U1, NULL, NULL, &dummy);
	assert_int_equal(peerfiles_targets(root, FMC, NULL, 0, NULL, 0, 1, &t, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(t[0].uuid, U1); /* sorted */
	assert_string_equal(t[1].uuid, U2);
	assert_string_equal(t[2].uuid, FMC);
	assert_non_null(strstr(t[1].dir, "/var/sf/peers/" U2 "/certs_pushed"));
	free(t);

	/* Named peers: exactly those, no FMC unless asked; the limit. */
	n = 0;
	for (size_t i = 0; i < PEERFILES_MAX_NAMED; i++)
		assert_int_equal(peerfiles_name_peer(&named, &n, U2), 0);
	assert_int_equal(peerfiles_name_peer(&named, &n, U1), -1);
	assert_int_equal(n, PEERFILES_MAX_NAMED);
	assert_int_equal(peerfiles_targets(root, FMC, NULL, 0, (const char (*)[40])named, 1, 0, &t, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(t[0].uuid, U2);
	free(t);
	free(named);
	named = NULL;
	n = 0;
	assert_int_equal(peerfiles_name_peer(&named, &n, "11111111-2222-4333-8444-55555555555A"), -1);
	free(named);

	/* A path that does not fit is an error, not a cut path. */
	assert_int_equal(layout_ca_root(root, buf, sizeof(buf)), SFTCA_ERR_INVALID);
	long_root = malloc(4200);
	memset(long_root, 'a', 4199);
	long_root[0] = '/';
	long_root[4199] = '\0';
	assert_int_equal(peerfiles_targets(long_root, FMC, NULL, 0, NULL, 0, 1, &t, &n), SFTCA_ERR_INVALID);
	assert_null(t);
	named = NULL;
	n = 0;
	assert_int_equal(peerfiles_name_peer(&named, &n, U1), 0);
	assert_int_equal(peerfiles_targets(long_root, FMC, NULL, 0, (const char (*)[40])named, 1, 0, &t, &n),
			 SFTCA_ERR_INVALID);
	assert_null(t);
	free(named);
	free(long_root);
	assert_int_equal(tmpdir_remove(root), 0);
}

/* FAILED_PUSH names files as the FMC does, whatever copy of the tree this
 * host holds. */
/* An HA peer's directory: named for one of the signer's CAs, or holding a
 * CA certificate named for it; never a target, refused when named. */
static void ha_peers(void **state)
{
	char root[64], path[4300], why[160], (*named)[40] = NULL;
	const char cas[2][40] = { U2, FMC };
	struct layout_target *t = NULL, dummy;
	X509 *u1_ca = cert(U1, other_key, 5, NULL, NULL, -86400, 86400);
	X509 *u1_leaf = cert(U1, leaf_key, 6, ca, ca_key, -86400, 86400);
	size_t n = 0;

	(void)state;
	tmpdir_make(root, "peerfiles-ha");
	peer(root, U1, u1_leaf, leaf_key, &dummy);
	peer(root, U2, u1_leaf, leaf_key, &dummy);
	assert_int_equal(peerfiles_ha_peer(root, U1, cas, 2, why, sizeof(why)), 0);
	assert_int_equal(peerfiles_ha_peer(root, U2, cas, 2, why, sizeof(why)), 1);
	assert_string_equal(why, "its UUID is a CA this signer holds");
	assert_int_equal(peerfiles_ha_peer(root, U2, NULL, 0, why, sizeof(why)), 0);
	/* A leaf named for the directory, or a CA named for another, is no sign. */
	snprintf(path, sizeof(path), "%s/var/sf/peers/" U1 "/" LAYOUT_BUNDLE, root);
	write_pem(path, u1_leaf, NULL);
	assert_int_equal(peerfiles_ha_peer(root, U1, NULL, 0, why, sizeof(why)), 0);
	write_pem(path, ca, NULL);
	assert_int_equal(peerfiles_ha_peer(root, U1, NULL, 0, why, sizeof(why)), 0);
	write_pem(path, u1_ca, NULL);
	assert_int_equal(peerfiles_ha_peer(root, U1, NULL, 0, why, sizeof(why)), 1);
	assert_string_equal(why, "its cacert.pem is the InternalCA of FMC " U1);

	/* Listed: both left out, the FMC itself still a target. */
	assert_int_equal(peerfiles_targets(root, FMC, cas, 2, NULL, 0, 1, &t, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(t[0].self, 1);
	free(t);
	/* Named: the run is refused. */
	n = 0;
	assert_int_equal(peerfiles_name_peer(&named, &n, U2), 0);
	assert_int_equal(peerfiles_targets(root, FMC, cas, 2, (const char (*)[40])named, 1, 0, &t, &n),
			 SFTCA_ERR_INVALID);
	assert_null(t);
	free(named);
	X509_free(u1_ca);
	X509_free(u1_leaf);
	assert_int_equal(tmpdir_remove(root), 0);
}

static void paths_on_fmc(void **state)
{
	(void)state;
	assert_string_equal(layout_on_fmc("/", "//etc/sf/ca_root/cacert.pem"),
			    "/etc/sf/ca_root/cacert.pem");
	assert_string_equal(layout_on_fmc("/srv/fmc1", "/srv/fmc1/var/sf/peers/x/certs_pushed"),
			    "/var/sf/peers/x/certs_pushed");
	assert_string_equal(layout_on_fmc("/srv/fmc1/", "/srv/fmc1//etc/sf/ca_root"), "/etc/sf/ca_root");
	/* a sibling whose name starts like root is not under it */
	assert_string_equal(layout_on_fmc("/srv/fmc1", "/srv/fmc10/etc/sf/ca_root"),
			    "/srv/fmc10/etc/sf/ca_root");
	assert_string_equal(layout_on_fmc("", "/etc/sf/keys"), "/etc/sf/keys");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_verdict),
		cmocka_unit_test(issue_policy),
		cmocka_unit_test(targets_and_paths),
		cmocka_unit_test(ha_peers),
		cmocka_unit_test(paths_on_fmc),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_QUIET);
	return cmocka_run_group_tests(tests, setup, teardown);
}
