/* IssueBatch's CSR check and the leaf built from it (signer/profile.c):
 * arbitrary bytes as a DER PKCS#10 request.
 *
 * profile_check_csr has its own ASN.1 templates and a fast path that checks
 * common keys straight from their DER, falling back to OpenSSL's general
 * decoder. So the check is differential: it must accept exactly what the
 * reference accepts (d2i_X509_REQ consuming every byte, an RSA 2048-8192 or
 * EC P-256/P-384 key, X509_REQ_verify), and the key it hands back must be
 * the request's key, encoded the same. The certificate profile_leaf builds
 * from it must carry that key bit for bit, verify with the CA key and parse
 * back to the same public key.
 *
 * The CA is an in-memory EC P-256 key made once at start-up (no token):
 * the profile code is the same for a token key. Time, serial and peer are
 * fixed so a run is reproducible. */
#include "fuzz_common.h"

#include "msg.h"
#include "profile.h"
#include "x509util.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define FUZZ_CA_ID "cdb123c8-4347-11ef-aca1-f3aa241412a1"
#define FUZZ_PEER "c8d5d5c6-87c9-11ef-a993-b9831565bc4e"
#define FUZZ_CA_NOT_BEFORE 1728915794 /* the seed's FAILED_PUSH stamp */

static EVP_PKEY *ca_key;
static X509 *ca_cert;
static ASN1_INTEGER *serial;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	X509_NAME *subject;

	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_csr");
	ca_key = EVP_EC_gen("P-256");
	subject = profile_ca_subject(FUZZ_CA_ID);
	serial = ASN1_INTEGER_new();
	if (ca_key == NULL || subject == NULL || serial == NULL ||
	    !ASN1_INTEGER_set_int64(serial, 0x0123456789abcdefLL) ||
	    profile_ca_cert(subject, ca_key, ca_key, FUZZ_CA_NOT_BEFORE, 3650, &ca_cert) != 0) {
		fprintf(stderr, "fuzz_csr: cannot make the test CA\n");
		abort();
	}
	X509_NAME_free(subject);
	return 0;
}

/* DER of a SubjectPublicKeyInfo (OPENSSL_free it). */
static int spki_der(const X509_PUBKEY *k, unsigned char **der)
{
	*der = NULL;
	return i2d_X509_PUBKEY(k, der);
}

/* OpenSSL's own reading of the rules profile_check_csr enforces. */
static X509_REQ *reference(const uint8_t *data, size_t size)
{
	const unsigned char *p = data;
	X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)size);
	EVP_PKEY *k;
	char type[32];
	int ok = 0;

	if (req != NULL && p == data + size && size <= 16384 &&
	    (k = X509_REQ_get0_pubkey(req)) != NULL) {
		pkey_type_text(k, type, sizeof(type));
		if (EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA)
			ok = EVP_PKEY_get_bits(k) >= 2048 && EVP_PKEY_get_bits(k) <= 8192;
		else if (EVP_PKEY_get_base_id(k) == EVP_PKEY_EC)
			ok = strcmp(type, "ec:p256") == 0 || strcmp(type, "ec:p384") == 0;
		ok = ok && X509_REQ_verify(req, k) == 1;
	}
	ERR_clear_error();
	if (!ok) {
		X509_REQ_free(req);
		return NULL;
	}
	return req;
}

static void check_leaf(X509_REQ *req, const X509_PUBKEY *spki, size_t size)
{
	int64_t now = FUZZ_CA_NOT_BEFORE + 86400;
	unsigned days = 1 + (unsigned)(size % 4000); /* some past the CA's end */
	unsigned char *a = NULL, *b = NULL, *c = NULL, *der = NULL;
	const unsigned char *p;
	char ha[65], hb[65];
	X509 *leaf = NULL, *back = NULL;
	int na, nb, nc, n;

	/* The key handed back is the request's, encoded the same. */
	na = spki_der(X509_REQ_get_X509_PUBKEY(req), &a);
	nb = spki_der(spki, &b);
	FUZZ_CHECK(na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0);

	FUZZ_CHECK(profile_leaf(ca_cert, FUZZ_PEER, spki, serial, now, days, &leaf) == 0);
	FUZZ_CHECK(X509_sign(leaf, ca_key, profile_digest(ca_key)) > 0);
	FUZZ_CHECK(X509_verify(leaf, ca_key) == 1);
	/* The certificate carries it bit for bit. */
	nc = spki_der(X509_get_X509_PUBKEY(leaf), &c);
	FUZZ_CHECK(nc == na && memcmp(a, c, (size_t)na) == 0);
	FUZZ_CHECK(profile_spki_sha256(spki, ha) == 0);
	FUZZ_CHECK(profile_spki_sha256(X509_get_X509_PUBKEY(leaf), hb) == 0);
	FUZZ_CHECK(strlen(ha) == 64 && strcmp(ha, hb) == 0);
	/* And it survives the encoding a device will parse. */
	n = i2d_X509(leaf, &der);
	FUZZ_CHECK(n > 0);
	p = der;
	FUZZ_CHECK((back = d2i_X509(NULL, &p, n)) != NULL && p == der + n);
	FUZZ_CHECK(EVP_PKEY_eq(X509_get0_pubkey(back), X509_REQ_get0_pubkey(req)) == 1);
	FUZZ_CHECK(X509_check_issued(ca_cert, back) == X509_V_OK);
	OPENSSL_free(a);
	OPENSSL_free(b);
	OPENSSL_free(c);
	OPENSSL_free(der);
	X509_free(leaf);
	X509_free(back);
	ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509_PUBKEY *spki = NULL;
	X509_REQ *req;
	struct sftca_msg why;
	int r = profile_check_csr(data, size, 16384, &spki, &why);

	req = reference(data, size);
	if (r != 0) {
		FUZZ_CHECK(spki == NULL && msg_isset(&why) &&
			   fuzz_terminated(why.text, sizeof(why.text)));
		/* Refused: the reference refuses it too. */
		FUZZ_CHECK(req == NULL);
		ERR_clear_error();
		return 0;
	}
	/* Accepted: the reference accepts it too. */
	FUZZ_CHECK(spki != NULL && size <= 16384);
	FUZZ_CHECK(req != NULL);
	check_leaf(req, spki, size);
	X509_PUBKEY_free(spki);
	X509_REQ_free(req);
	return 0;
}
