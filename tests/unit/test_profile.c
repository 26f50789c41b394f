/* The sftunnel profile: CA certificate, peer certificate extensions and
 * subject, serials, CSR acceptance. Keys here are ordinary OpenSSL keys;
 * the profile does not care who signs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "log.h"
#include "msg.h"
#include "profile.h"
#include "x509util.h"

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#define CA_ID "cdb123c8-4347-11ef-aca1-f3aa241412a1"
#define PEER "c8d5d5c6-87c9-11ef-a993-b9831565bc4e"

static EVP_PKEY *ca_key, *peer_key;
static X509_PUBKEY *peer_spki;
static X509 *ca;

static int setup(void **state)
{
	X509_NAME *n = profile_ca_subject(CA_ID);

	(void)state;
	ca_key = EVP_RSA_gen(2048);
	peer_key = EVP_RSA_gen(2048);
	assert_int_equal(X509_PUBKEY_set(&peer_spki, peer_key), 1);
	assert_int_equal(profile_ca_cert(n, ca_key, ca_key, time(NULL), 3650, &ca), 0);
	X509_NAME_free(n);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	X509_free(ca);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(peer_key);
	X509_PUBKEY_free(peer_spki);
	return 0;
}

static void ca_certificate(void **state)
{
	char text[512];
	BASIC_CONSTRAINTS *bc;
	int crit = 0;

	(void)state;
	assert_int_equal(X509_get_version(ca), X509_VERSION_3);
	x509_name_text(X509_get_subject_name(ca), text, sizeof(text));
	assert_string_equal(text, "title=InternalCA, OU=Intrusion Management System, CN=" CA_ID
				  ", O=Cisco Systems\\, Inc");
	{ /* The field's O: UTF8String, 18 bytes (0c 12 ...), no final period. */
		const X509_NAME *n = X509_get_subject_name(ca);
		const ASN1_STRING *o = X509_NAME_ENTRY_get_data(
			X509_NAME_get_entry(n, X509_NAME_get_index_by_NID(n, NID_organizationName, -1)));
		assert_int_equal(ASN1_STRING_type(o), V_ASN1_UTF8STRING);
		assert_int_equal(ASN1_STRING_length(o), 18);
		assert_memory_equal(ASN1_STRING_get0_data(o), "Cisco Systems, Inc", 18);
	}
	bc = X509_get_ext_d2i(ca, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_true(bc->ca);
	assert_int_equal(crit, 1);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_get_key_usage(ca) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
	assert_int_equal(X509_get_ext_by_NID(ca, NID_key_usage, -1) >= 0, 1);
	assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(ca, X509_get_ext_by_NID(ca, NID_key_usage, -1))), 1);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_int_equal(X509_verify(ca, ca_key), 1);
	assert_int_equal(X509_get_ext_count(ca), 3);
	assert_true(x509_not_after(ca) - x509_not_before(ca) == 3650 * 86400LL);
}

static void leaf_profile_exactly(void **state)
{
	ASN1_INTEGER *serial;
	char hex[PROFILE_SERIAL_HEX], text[512];
	X509 *x;
	int64_t now = time(NULL);
	STACK_OF(GENERAL_NAME) *san;
	EXTENDED_KEY_USAGE *eku;
	BASIC_CONSTRAINTS *bc;
	int crit = -1;

	(void)state;
	assert_int_equal(profile_random_serial(&serial, hex), 0);
	assert_int_equal(profile_leaf(ca, PEER, peer_spki, serial, now, 3650, &x), 0);
	assert_int_equal(X509_sign(x, ca_key, EVP_sha256()) > 0, 1);
	{ /* As the peer will see it: through DER (fresh extension cache). */
		unsigned char *der = NULL;
		int dlen = i2d_X509(x, &der);
		X509_free(x);
		x = x509_from_der(der, (size_t)dlen);
		OPENSSL_free(der);
		assert_non_null(x);
	}
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	x509_name_text(X509_get_subject_name(x), text, sizeof(text));
	assert_string_equal(text, "OU=Intrusion Management System, CN=" PEER ", O=Cisco Systems\\, Inc");
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(ca)), 0);
	/* Exactly: basicConstraints, SAN, EKU, SKI, AKI, in that order. */
	assert_int_equal(X509_get_ext_count(x), 5);
	assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 0))), NID_basic_constraints);
	assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 1))), NID_subject_alt_name);
	assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 2))), NID_ext_key_usage);
	assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 3))), NID_subject_key_identifier);
	assert_int_equal(OBJ_obj2nid(X509_EXTENSION_get_object(X509_get_ext(x, 4))), NID_authority_key_identifier);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	assert_false(bc->ca);
	assert_int_equal(crit, 0);
	BASIC_CONSTRAINTS_free(bc);
	san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	assert_int_equal(sk_GENERAL_NAME_value(san, 0)->type, GEN_DNS);
	assert_string_equal((const char *)ASN1_STRING_get0_data(sk_GENERAL_NAME_value(san, 0)->d.dNSName),
			    "localhost");
	GENERAL_NAMES_free(san);
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
	EXTENDED_KEY_USAGE_free(eku);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x), X509_get0_subject_key_id(ca)), 0);
	/* Validity never outlives the CA, starts no earlier than it. */
	assert_true(x509_not_after(x) <= x509_not_after(ca));
	assert_true(x509_not_before(x) >= x509_not_before(ca));
	/* The key is the one asked for, bit for bit. */
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), peer_key), 1);
	X509_free(x);
	ASN1_INTEGER_free(serial);
}

static void leaf_clamped_to_ca_and_refused_after_expiry(void **state)
{
	ASN1_INTEGER *serial;
	char hex[PROFILE_SERIAL_HEX];
	X509 *x = NULL;
	int64_t now = time(NULL);

	(void)state;
	assert_int_equal(profile_random_serial(&serial, hex), 0);
	/* Asking for 20 years gets the CA's notAfter. */
	assert_int_equal(profile_leaf(ca, PEER, peer_spki, serial, now, 7300, &x), 0);
	assert_true(x509_not_after(x) == x509_not_after(ca));
	X509_free(x);
	x = NULL;
	/* 10 days asked: 10 days given. */
	assert_int_equal(profile_leaf(ca, PEER, peer_spki, serial, now, 10, &x), 0);
	assert_true(x509_not_after(x) == now + 10 * 86400);
	assert_true(x509_not_before(x) >= now - PROFILE_BACKDATE_SECONDS);
	X509_free(x);
	x = NULL;
	/* After the CA's end nothing is issued. */
	assert_int_equal(profile_leaf(ca, PEER, peer_spki, serial, x509_not_after(ca), 10, &x),
			 SFTCA_ERR_PRECONDITION);
	assert_null(x);
	ASN1_INTEGER_free(serial);
}

static void serials_positive_128_bit_distinct(void **state)
{
	char prev[PROFILE_SERIAL_HEX] = "";

	(void)state;
	for (int i = 0; i < 200; i++) {
		ASN1_INTEGER *s;
		char hex[PROFILE_SERIAL_HEX];
		BIGNUM *bn;
		assert_int_equal(profile_random_serial(&s, hex), 0);
		bn = ASN1_INTEGER_to_BN(s, NULL);
		assert_false(BN_is_negative(bn));
		assert_false(BN_is_zero(bn));
		assert_true(BN_num_bits(bn) <= 128);
		assert_string_not_equal(hex, prev);
		memcpy(prev, hex, sizeof(prev));
		BN_free(bn);
		ASN1_INTEGER_free(s);
	}
}

static void leaf_subject_keeps_locality_drops_title(void **state)
{
	X509_NAME *ca_name = X509_NAME_new(), *leaf;
	char text[512];

	(void)state;
	X509_NAME_add_entry_by_txt(ca_name, "title", MBSTRING_ASC, (const unsigned char *)"InternalCA", -1, -1, 0);
	X509_NAME_add_entry_by_txt(ca_name, "OU", MBSTRING_ASC, (const unsigned char *)"IMS", -1, -1, 0);
	X509_NAME_add_entry_by_txt(ca_name, "CN", MBSTRING_ASC, (const unsigned char *)CA_ID, -1, -1, 0);
	X509_NAME_add_entry_by_txt(ca_name, "L", MBSTRING_ASC, (const unsigned char *)"Rennes", -1, -1, 0);
	leaf = profile_leaf_subject(ca_name, PEER);
	x509_name_text(leaf, text, sizeof(text));
	assert_string_equal(text, "OU=IMS, CN=" PEER ", L=Rennes");
	X509_NAME_free(leaf);
	X509_NAME_free(ca_name);
}

static unsigned char *csr_der(EVP_PKEY *k, const char *ext_name, const char *ext_value, int *len)
	__attribute__((unused));
static unsigned char *csr_der_md(EVP_PKEY *k, const EVP_MD *md, int *len)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;

	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	assert_true(X509_REQ_sign(req, k, md) > 0);
	*len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	return der;
}

static unsigned char *csr_der(EVP_PKEY *k, const char *ext_name, const char *ext_value, int *len)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;

	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	if (ext_name) {
		STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
		sk_X509_EXTENSION_push(exts, X509V3_EXT_conf(NULL, NULL, ext_name, ext_value));
		X509_REQ_add_extensions(req, exts);
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	}
	X509_REQ_sign(req, k, EVP_sha256());
	*len = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	return der;
}

/* The key profile_check_csr hands on is the CSR's, byte for byte. */
static void assert_same_key(X509_PUBKEY *got, EVP_PKEY *want)
{
	unsigned char *a = NULL, *b = NULL;
	int na = i2d_X509_PUBKEY(got, &a), nb = i2d_PUBKEY(want, &b);
	const unsigned char *p = a;
	EVP_PKEY *back;

	assert_true(na > 0);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, (size_t)na);
	assert_non_null(back = d2i_PUBKEY(NULL, &p, na));
	assert_int_equal(EVP_PKEY_eq(back, want), 1);
	EVP_PKEY_free(back);
	OPENSSL_free(a);
	OPENSSL_free(b);
}

/* accept(KEY, MD): a CSR signed with MD is accepted with KEY's key. */
static void accept(EVP_PKEY *k, const EVP_MD *md)
{
	X509_PUBKEY *pub = NULL;
	struct sftca_msg why;
	int len;
	unsigned char *der = csr_der_md(k, md, &len);

	msg_set(&why, "left from an earlier call");
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), 0);
	assert_false(msg_isset(&why)); /* accepted: no reason left behind */
	assert_same_key(pub, k);
	X509_PUBKEY_free(pub);
	/* One flipped bit in the signature: no proof of possession. */
	der[len - 3] ^= 1;
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "signature does not verify"));
	assert_null(pub);
	OPENSSL_free(der);
}

static void csr_checks(void **state)
{
	EVP_PKEY *small = EVP_RSA_gen(1024), *ec = EVP_EC_gen("P-256"), *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *p384 = EVP_EC_gen("P-384"), *p521 = EVP_EC_gen("P-521");
	X509_PUBKEY *pub = NULL;
	struct sftca_msg why;
	int len;
	unsigned char *der;

	(void)state;
	der = csr_der(peer_key, "basicConstraints", "critical,CA:TRUE", &len);
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), 0);
	assert_same_key(pub, peer_key);
	X509_PUBKEY_free(pub);
	/* Trailing bytes after the request. */
	der = OPENSSL_realloc(der, (size_t)len + 1);
	der[len] = 0;
	assert_int_equal(profile_check_csr(der, (size_t)len + 1, 16384, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "not a DER PKCS#10"));
	OPENSSL_free(der);

	/* The fast path (RSA and EC with SHA-256/384) and the general one
	 * (SHA-512) agree. */
	accept(peer_key, EVP_sha256());
	accept(peer_key, EVP_sha384());
	accept(peer_key, EVP_sha512());
	accept(ec, EVP_sha256());
	accept(p384, EVP_sha384());
	accept(ec, EVP_sha512());

	der = csr_der(small, NULL, NULL, &len);
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "RSA key of 1024 bits refused"));
	assert_int_equal(profile_check_csr(der, (size_t)len, 100, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "more than the 100 allowed"));
	OPENSSL_free(der);

	der = csr_der_md(p521, EVP_sha512(), &len);
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "EC key on curve secp521r1 refused"));
	OPENSSL_free(der);

	der = csr_der_md(ed, NULL, &len); /* Ed25519 signs without a separate digest */
	assert_int_equal(profile_check_csr(der, (size_t)len, 16384, &pub, &why), SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "key type"));
	OPENSSL_free(der);

	assert_int_equal(profile_check_csr((const unsigned char *)"garbage", 7, 16384, &pub, &why),
			 SFTCA_ERR_INVALID);
	assert_non_null(strstr(why.text, "not a DER PKCS#10"));
	assert_int_equal(profile_check_csr((const unsigned char *)"", 0, 16384, &pub, &why),
			 SFTCA_ERR_INVALID);
	assert_null(pub);
	EVP_PKEY_free(small);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p521);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ca_certificate),
		cmocka_unit_test(leaf_profile_exactly),
		cmocka_unit_test(leaf_clamped_to_ca_and_refused_after_expiry),
		cmocka_unit_test(serials_positive_128_bit_distinct),
		cmocka_unit_test(leaf_subject_keeps_locality_drops_title),
		cmocka_unit_test(csr_checks),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_QUIET);
	return cmocka_run_group_tests(tests, setup, teardown);
}
