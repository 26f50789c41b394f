/* Who a TLS caller is and what it may call, as signer/server.c decides it
 * before reading a request: the client certificate gRPC hands over
 * (client_cert_parse, signer/clientid.c), client_crl (client_crl_revoked),
 * the [authz] lookups (pinned certificate, pinned key, CN), then the
 * method path (server_method_find) and the role check (server_authorized,
 * signer/callauth.c) against the signer's own method table.
 * Byte 0: bit 0 clear = the certificate is the rest of the input as PEM
 * text, set = the rest is DER that the harness wraps in PEM; bits 1-7 pick
 * a method of signer_methods[] (or, past the table, a path that is none).
 * Byte 1: length of a path taken from the input instead (0 = the picked
 * method), cut at a NUL as server.c's "%.*s" copy cuts it.
 * At start-up: a client CA (EC P-256, in memory) and its CRL revoking
 * serials 1-8, both written to a directory under /dev/shm and loaded with
 * client_crl_load; an [authz] section with CN entries and a pin.
 * Checks: the certificate is accepted exactly when OpenSSL reads it and
 * its subject has one CN of 1-127 bytes of UTF-8 without NUL, and then the
 * CN, the certificate's SHA-256 and the serial are as OpenSSL sees them; it
 * counts as revoked exactly when its issuer is the client CA and its serial
 * one of 1-8; the authz entry found names that CN or that digest; the
 * method found has the path asked for, and none is found for any other; a
 * caller is let through only with at least the method's role, an admin
 * always, and a refusal says why. */
#include "fuzz_common.h"

#include "callauth.h"
#include "clientid.h"
#include "config.h"
#include "errors.h"
#include "handlers.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#define CA_NAME "sftca fuzz client CA"

static struct signer_config cfg;
static struct client_crl *crl;
static X509_NAME *ca_name;
static char dir[64], ca_path[96], crlp[96];

static const char conf[] =
	"[signer]\nlisten = unix:/nonexistent/s.sock\nstate_dir = /nonexistent\n"
	"[pkcs11]\nmodule = /nonexistent.so\ntoken_label = t\npin_file = /nonexistent\n"
	"[authz]\nops-admin = admin\nfmc-east = issuer:cdb123c8-4347-11ef-aca1-f3aa241412a1\n"
	"auditor-1 = auditor\n"
	"cert-sha256/0000000000000000000000000000000000000000000000000000000000000001 = admin\n"
	"spki-sha256/00000000000000000000000000000000000000000000000000000000000000ff = auditor\n";

static void cleanup(void)
{
	unlink(ca_path);
	unlink(crlp);
	rmdir(dir);
	client_crl_free(crl);
	config_free(&cfg);
	X509_NAME_free(ca_name);
}

/* The client CA and its CRL (serials 1-8), as PEM files client_crl_load reads. */
static void make_ca_and_crl(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *ca = X509_new();
	X509_CRL *c = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, time(NULL));
	FILE *f;

	ca_name = X509_NAME_new();
	if (k == NULL || ca == NULL || c == NULL || t == NULL || ca_name == NULL ||
	    !X509_NAME_add_entry_by_txt(ca_name, "CN", MBSTRING_UTF8, (const unsigned char *)CA_NAME,
					-1, -1, 0) ||
	    !X509_set_version(ca, 2) || !ASN1_INTEGER_set(X509_get_serialNumber(ca), 100) ||
	    !X509_set_subject_name(ca, ca_name) || !X509_set_issuer_name(ca, ca_name) ||
	    !X509_gmtime_adj(X509_getm_notBefore(ca), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(ca), 86400) || !X509_set_pubkey(ca, k) ||
	    !X509_sign(ca, k, EVP_sha256()) || !X509_CRL_set_version(c, 1) ||
	    !X509_CRL_set_issuer_name(c, ca_name) || !X509_CRL_set1_lastUpdate(c, t))
		abort();
	for (long s = 1; s <= 8; s++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();
		if (r == NULL || sn == NULL || !ASN1_INTEGER_set(sn, s) ||
		    !X509_REVOKED_set_serialNumber(r, sn) || !X509_REVOKED_set_revocationDate(r, t) ||
		    !X509_CRL_add0_revoked(c, r))
			abort();
		ASN1_INTEGER_free(sn);
	}
	if (!X509_CRL_sort(c) || !X509_CRL_sign(c, k, EVP_sha256()))
		abort();
	if ((f = fopen(ca_path, "w")) == NULL || !PEM_write_X509(f, ca) || fclose(f) != 0 ||
	    (f = fopen(crlp, "w")) == NULL || !PEM_write_X509_CRL(f, c) || fclose(f) != 0)
		abort();
	if ((crl = client_crl_load(crlp, ca_path)) == NULL)
		abort();
	ASN1_TIME_free(t);
	X509_CRL_free(c);
	X509_free(ca);
	EVP_PKEY_free(k);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_clientid");
	snprintf(dir, sizeof(dir), "/dev/shm/sftca-fuzz-clientid.XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(ca_path, sizeof(ca_path), "%s/client-ca.pem", dir);
	snprintf(crlp, sizeof(crlp), "%s/client.crl", dir);
	atexit(cleanup);
	make_ca_and_crl();
	if (config_parse_string("fuzz.conf", conf, sizeof(conf) - 1, &cfg) != 0)
		abort();
	return 0;
}

/* What the certificate must yield, as OpenSSL reads it on its own: 1 and
 * the CN when it is acceptable, 0 when not. */
static int expected(X509 *x, char *cn, size_t cnlen)
{
	const X509_NAME *name;
	unsigned char *u = NULL;
	int i, n, ok;

	if (x == NULL)
		return 0;
	name = X509_get_subject_name(x);
	if ((i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)) < 0 ||
	    X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return 0;
	n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	ok = n > 0 && (size_t)n < cnlen && memchr(u, '\0', (size_t)n) == NULL;
	if (ok)
		memcpy(cn, u, (size_t)n + 1);
	OPENSSL_free(u);
	return ok;
}

static X509 *read_pem(const char *pem, size_t len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	ERR_clear_error();
	return x;
}

static void check_identity(const char *pem, size_t len, struct caller *who)
{
	struct client_cert cc;
	struct sftca_msg why = { 0 };
	X509 *x = read_pem(pem, len);
	char cn[128] = "";
	int r, want = expected(x, cn, sizeof(cn));

	r = client_cert_parse(pem, len, &cc, &why);
	FUZZ_CHECK(fuzz_terminated(why.text, sizeof(why.text)));
	if (r != 0) {
		FUZZ_CHECK(r == SFTCA_ERR_AUTH && why.text[0] != '\0' && !want);
		snprintf(who->identity, sizeof(who->identity), "cn=?");
		X509_free(x);
		return;
	}
	FUZZ_CHECK(want);
	FUZZ_CHECK(strcmp(cc.cn, cn) == 0);
	FUZZ_CHECK(fuzz_terminated(cc.serial, sizeof(cc.serial)));
	{
		unsigned char md[32];
		unsigned int mdlen = 0;
		FUZZ_CHECK(X509_digest(x, EVP_sha256(), md, &mdlen) == 1 && mdlen == 32);
		FUZZ_CHECK(memcmp(md, cc.cert_sha256, 32) == 0);
	}
	/* Revoked: the client CA's name as issuer, serial 1-8. */
	{
		const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		int in_crl = bn != NULL && !BN_is_negative(bn) && BN_num_bits(bn) <= 4 &&
			     BN_get_word(bn) >= 1 && BN_get_word(bn) <= 8 &&
			     X509_NAME_cmp(X509_get_issuer_name(x), ca_name) == 0;
		FUZZ_CHECK(client_crl_revoked(crl, &cc) == in_crl);
		log_debug("client certificate cn=%s serial %s%s", cc.cn, cc.serial,
			  in_crl ? " (revoked)" : "");
		BN_free(bn);
		snprintf(who->identity, sizeof(who->identity), "cn=%s", cc.cn);
		if (in_crl)
			goto out; /* refused: no role looked up */
	}
	/* As identify_tls: pinned certificate, pinned key, then the CN. */
	if ((who->authz = config_authz_find_pin(&cfg, CLIENTID_PIN_CERT, cc.cert_sha256)) != NULL)
		FUZZ_CHECK(memcmp(who->authz->digest, cc.cert_sha256, 32) == 0);
	else if ((who->authz = config_authz_find_pin(&cfg, CLIENTID_PIN_SPKI, cc.spki_sha256)) != NULL)
		FUZZ_CHECK(memcmp(who->authz->digest, cc.spki_sha256, 32) == 0);
	else if ((who->authz = config_authz_find(&cfg, cc.cn)) != NULL)
		FUZZ_CHECK(who->authz->pin == 0 && strcmp(who->authz->cn, cc.cn) == 0);
	who->role = who->authz ? who->authz->role : ROLE_NONE;
out:
	client_cert_clear(&cc);
	FUZZ_CHECK(cc.x509 == NULL);
	X509_free(x);
}

static void check_method(const char *path, const struct caller *who)
{
	const struct server_method *m = server_method_find(signer_methods, signer_nmethods, path);
	struct sftca_msg why = { 0 };
	size_t i;

	for (i = 0; i < signer_nmethods && strcmp(signer_methods[i].path, path) != 0; i++)
		;
	FUZZ_CHECK(m == (i < signer_nmethods ? &signer_methods[i] : NULL));
	if (m == NULL)
		return;
	log_debug("%s as %s (%s)", path, who->identity, role_name(who->role));
	if (server_authorized(who, m, path, &why)) {
		FUZZ_CHECK(who->role >= m->min_role);
		FUZZ_CHECK(m->min_role == ROLE_NONE || who->role != ROLE_NONE);
		FUZZ_CHECK(strcmp(who->identity, "unauthenticated") != 0);
	} else {
		FUZZ_CHECK(who->role != ROLE_ADMIN);
		FUZZ_CHECK(why.text[0] != '\0' && fuzz_terminated(why.text, sizeof(why.text)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct caller who;
	char path[256], *pem = NULL;
	const char *cert;
	size_t plen, clen, pick;

	if (size < 2)
		return 0;
	plen = data[1] < size - 2 ? data[1] : size - 2;
	cert = (const char *)data + 2 + plen;
	clen = size - 2 - plen;
	pick = (size_t)(data[0] >> 1);
	if (plen > 0)
		snprintf(path, sizeof(path), "%.*s", (int)plen, (const char *)data + 2);
	else
		snprintf(path, sizeof(path), "%s",
			 pick < signer_nmethods ? signer_methods[pick].path : "/sftca.v1.Signer/Nothing");

	memset(&who, 0, sizeof(who));
	if (data[0] & 1) {
		/* DER: base64 in lines of 64, between the PEM armour. */
		size_t room = 64 + 4 * (clen / 3 + 1) + clen / 48 + 64, o;
		if ((pem = malloc(room)) == NULL)
			return 0;
		o = (size_t)snprintf(pem, room, "-----BEGIN CERTIFICATE-----\n");
		for (size_t off = 0; off < clen; off += 48) {
			size_t k = clen - off < 48 ? clen - off : 48;
			o += (size_t)EVP_EncodeBlock((unsigned char *)pem + o,
						     (const unsigned char *)cert + off, (int)k);
			pem[o++] = '\n';
		}
		o += (size_t)snprintf(pem + o, room - o, "-----END CERTIFICATE-----\n");
		check_identity(pem, o, &who);
		free(pem);
	} else {
		check_identity(cert, clen, &who);
	}
	check_method(path, &who);
	/* The admin of the [authz] section may call every method. */
	who.role = ROLE_ADMIN;
	snprintf(who.identity, sizeof(who.identity), "cn=ops-admin");
	check_method(path, &who);
	return 0;
}
