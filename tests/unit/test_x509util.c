/* PEM bundles, serial hex, names and chains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "x509util.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

static X509 *self_signed(const char *cn, EVP_PKEY *k, long serial)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_get_subject_name(x);

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, n);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	{
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, k, EVP_sha256());
	return x;
}

static void bundle_of_two_with_noise(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *a = self_signed("first", k, 1), *b = self_signed("second", k, 2);
	char *pa = x509_to_pem(a), *pb = x509_to_pem(b), *pk = pkey_to_pem(k);
	char bundle[8192], cn[64];
	STACK_OF(X509) *sk = NULL;

	(void)state;
	/* Text around blocks and a private key in between are not certificates. */
	snprintf(bundle, sizeof(bundle), "comment line\n%s\n%s# trailing\n%s", pa, pk, pb);
	assert_int_equal(pem_parse_certs(bundle, strlen(bundle), &sk), 0);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(x509_name_cn(X509_get_subject_name(sk_X509_value(sk, 1)), cn, sizeof(cn)), 0);
	assert_string_equal(cn, "second");
	sk_X509_pop_free(sk, X509_free);

	assert_int_equal(pem_parse_certs("no pem here", 11, &sk), SFTCA_ERR_INVALID);
	assert_null(sk);
	/* A damaged block is an error, not a silently shorter bundle. */
	snprintf(bundle, sizeof(bundle), "%s", pa);
	bundle[100] = '!';
	assert_int_equal(pem_parse_certs(bundle, strlen(bundle), &sk), SFTCA_ERR_INVALID);
	free(pa);
	free(pb);
	free(pk);
	X509_free(a);
	X509_free(b);
	EVP_PKEY_free(k);
}

static void serial_hex_forms(void **state)
{
	ASN1_INTEGER *ai = NULL;
	char buf[80];

	(void)state;
	assert_int_equal(serial_canonical("0x00:0f:AB", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "0FAB");
	assert_int_equal(serial_canonical("95aa693dda8872d65b212f74aeb1195f", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "95AA693DDA8872D65B212F74AEB1195F");
	assert_int_equal(serial_canonical("0", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "00"); /* the legacy InternalCA's serial, as openssl prints it */
	assert_int_equal(serial_canonical("xyz", buf, sizeof(buf)), SFTCA_ERR_INVALID);
	assert_int_equal(serial_canonical("", buf, sizeof(buf)), SFTCA_ERR_INVALID);
	assert_int_equal(serial_from_hex("-5", &ai), SFTCA_ERR_INVALID);
}

static void chain_and_issuer(void **state)
{
	EVP_PKEY *ka = EVP_EC_gen("P-256"), *kb = EVP_EC_gen("P-256");
	X509 *ca = self_signed("ca", ka, 1), *other = self_signed("ca", kb, 2);
	X509 *leaf = X509_new();
	STACK_OF(X509) *anchors = sk_X509_new_null();
	char why[200];

	(void)state;
	X509_set_version(leaf, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(leaf), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(leaf), "CN", MBSTRING_ASC, (const unsigned char *)"leaf", -1, -1, 0);
	X509_set_issuer_name(leaf, X509_get_subject_name(ca));
	X509_gmtime_adj(X509_getm_notBefore(leaf), 0);
	X509_gmtime_adj(X509_getm_notAfter(leaf), 3600);
	X509_set_pubkey(leaf, kb);
	X509_sign(leaf, ka, EVP_sha256());
	assert_true(x509_issued_by(leaf, ca));
	assert_false(x509_issued_by(leaf, other)); /* same name, other key */
	sk_X509_push(anchors, ca);
	assert_int_equal(x509_verify_chain(leaf, anchors, 0, why, sizeof(why)), 0);
	assert_int_equal(x509_verify_chain(leaf, anchors, time(NULL) + 7200, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_string_equal(why, "certificate has expired");
	sk_X509_free(anchors);
	X509_free(leaf);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}

/* write_key PATH KEY FORMAT: "pkcs8", "traditional" (PKCS#1 / SEC1) or
 * "encrypted" PEM. */
static void write_key(const char *path, EVP_PKEY *k, const char *format)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	if (strcmp(format, "pkcs8") == 0)
		assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	else if (strcmp(format, "traditional") == 0) {
		BIO *b = BIO_new_fp(f, BIO_NOCLOSE);
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL), 1);
		BIO_free(b);
	}
	else
		assert_int_equal(PEM_write_PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL,
						      (void *)"secret"), 1);
	fclose(f);
}

/* Keys load the same through the template path (RSA, EC; PKCS#8 and
 * traditional PEM) and the general one (Ed25519), and sign what their
 * public half verifies; an encrypted key is refused. */
static void keys_in_every_form(void **state)
{
	EVP_PKEY *keys[] = { EVP_RSA_gen(2048), EVP_EC_gen("P-256"), EVP_EC_gen("P-384"),
			     EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") };
	const char *forms[] = { "pkcs8", "traditional" };
	char path[] = "/tmp/sftca-test-key.XXXXXX";
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		for (size_t j = 0; j < 2; j++) {
			EVP_PKEY *back = NULL;
			X509_REQ *req;
			const EVP_MD *md = EVP_PKEY_get_base_id(keys[i]) == EVP_PKEY_ED25519 ? NULL : EVP_sha256();

			if (EVP_PKEY_get_base_id(keys[i]) == EVP_PKEY_ED25519 && j == 1)
				continue; /* Ed25519 has no traditional form */
			req = X509_REQ_new();
			write_key(path, keys[i], forms[j]);
			assert_int_equal(pem_load_key(path, &back), 0);
			assert_int_equal(EVP_PKEY_eq(back, keys[i]), 1);
			/* A CSR signed with the loaded key verifies with the original. */
			assert_int_equal(X509_REQ_set_pubkey(req, back), 1);
			assert_true(X509_REQ_sign(req, back, md) > 0);
			assert_int_equal(X509_REQ_verify(req, keys[i]), 1);
			X509_REQ_free(req);
			EVP_PKEY_free(back);
		}
	}
	{
		EVP_PKEY *back = NULL;
		write_key(path, keys[0], "encrypted");
		assert_int_equal(pem_load_key(path, &back), SFTCA_ERR_INVALID);
		assert_null(back);
		/* Garbage inside a well-formed PEM block. */
		FILE *f = fopen(path, "w");
		fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
		fclose(f);
		assert_int_equal(pem_load_key(path, &back), SFTCA_ERR_INVALID);
		assert_null(back);
	}
	unlink(path);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		EVP_PKEY_free(keys[i]);
}

/* What the client reads from a certificate the signer returned. */
static void der_peek(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	EVP_PKEY *keys[] = { rsa, ec };

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		X509 *x = self_signed("peer", keys[i], 7);
		unsigned char *der = NULL;
		int n = i2d_X509(x, &der);
		int64_t na = 0;
		char *pem, *want = x509_to_pem(x);

		assert_true(n > 0);
		assert_int_equal(x509_der_peek(der, (size_t)n, keys[i], &na), 0);
		assert_true(na == x509_not_after(x) && na > 0);
		/* Another key, a cut or a longer buffer, garbage: refused. */
		assert_int_equal(x509_der_peek(der, (size_t)n, other, &na), SFTCA_ERR_VERIFY);
		assert_int_equal(x509_der_peek(der, (size_t)n - 1, keys[i], &na), SFTCA_ERR_INVALID);
		assert_int_equal(x509_der_peek(der, (size_t)n + 1, keys[i], &na), SFTCA_ERR_INVALID);
		assert_int_equal(x509_der_peek((const unsigned char *)"\x30\x03\x02\x01\x01", 5, keys[i], &na),
				 SFTCA_ERR_INVALID);
		/* The PEM of the bytes is the PEM OpenSSL writes for the certificate. */
		pem = der_to_pem(PEM_STRING_X509, der, (size_t)n);
		assert_non_null(pem);
		assert_string_equal(pem, want);
		free(pem);
		free(want);
		OPENSSL_free(der);
		X509_free(x);
	}
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bundle_of_two_with_noise),
		cmocka_unit_test(serial_hex_forms),
		cmocka_unit_test(chain_and_issuer),
		cmocka_unit_test(keys_in_every_form),
		cmocka_unit_test(der_peek),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_QUIET);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
