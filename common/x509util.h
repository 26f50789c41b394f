/* PEM/DER and X.509 helpers both binaries use (OpenSSL only, no token). */
#ifndef SFTCA_X509UTIL_H
#define SFTCA_X509UTIL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Longest PEM/DER input any sftca file reader accepts. */
#define X509UTIL_MAX_FILE (1u << 20)

/* Every certificate in a PEM buffer, in order; SFTCA_ERR_INVALID when there
 * is none or a block does not parse. Free with sk_X509_pop_free(.., X509_free). */
int pem_parse_certs(const char *pem, size_t len, STACK_OF(X509) **out)
	__attribute__((warn_unused_result));
int pem_load_certs(const char *path, STACK_OF(X509) **out) __attribute__((warn_unused_result));
/* Exactly one certificate: the first one of the file. */
int pem_load_cert(const char *path, X509 **out) __attribute__((warn_unused_result));
/* Every CRL in a PEM file (possibly none). */
int pem_load_crls(const char *path, STACK_OF(X509_CRL) **out) __attribute__((warn_unused_result));
/* A private key (PKCS#8 or traditional, unencrypted). */
int pem_load_key(const char *path, EVP_PKEY **out) __attribute__((warn_unused_result));
/* pem_password_cb that refuses: encrypted keys fail instead of prompting
 * on the terminal. */
int pem_no_passphrase(char *buf, int size, int rwflag, void *u);

/* PEM text of a certificate / key / CRL as a malloc'd NUL-terminated string. */
char *x509_to_pem(X509 *x);
char *pkey_to_pem(EVP_PKEY *k);
char *crl_to_pem(X509_CRL *c);
/* Decode one DER certificate; NULL if it does not parse exactly. */
X509 *x509_from_der(const unsigned char *der, size_t len);

/* For a certificate the signer returned for key k: 0 and its notAfter when
 * it parses exactly and its SubjectPublicKeyInfo is k's, byte for byte;
 * SFTCA_ERR_VERIFY when the key differs (the caller may still compare
 * the keys by value); SFTCA_ERR_INVALID when it does not parse. */
int x509_der_peek(const unsigned char *der, size_t len, EVP_PKEY *k, int64_t *not_after)
	__attribute__((warn_unused_result));
/* PEM block of DER bytes as they are ("CERTIFICATE", ...). */
char *der_to_pem(const char *type, const unsigned char *der, size_t len);

/* Uppercase hex of an ASN.1 integer without separators ("0" for zero),
 * as `openssl x509 -serial` prints it. SFTCA_ERR_INVALID if negative. */
int asn1_int_hex(const ASN1_INTEGER *ai, char *buf, size_t len);
int x509_serial_hex(const X509 *x, char *buf, size_t len);
/* Parse hex (any case, optional "0x", ':' separators) into an ASN.1 integer. */
int serial_from_hex(const char *hex, ASN1_INTEGER **out) __attribute__((warn_unused_result));
/* Canonical form (uppercase, no separators, no leading zeros) of a hex serial. */
int serial_canonical(const char *hex, char *buf, size_t len) __attribute__((warn_unused_result));

/* The subject's commonName, or SFTCA_ERR_NOT_FOUND (or _INVALID: not UTF-8, NUL, too
 * long); buf is then "". */
int x509_name_cn(const X509_NAME *n, char *buf, size_t len);
/* One-line rendering of a name in certificate order, RFC 2253 escaping:
 * "title=InternalCA, OU=..., CN=..., O=Cisco Systems\, Inc." */
void x509_name_text(const X509_NAME *n, char *buf, size_t len);

/* Lowercase hex SHA-256 of the DER certificate / SubjectPublicKeyInfo. */
int x509_sha256_hex(X509 *x, char out[65]);
/* SHA-256 of len bytes, lowercase hex (what sha256sum prints). */
void sha256_hex(const void *data, size_t len, char out[65]);
int pkey_spki_sha256_hex(EVP_PKEY *k, char out[65]);

/* 1 when the key pair's public half equals the certificate's key. */
int x509_key_matches(X509 *x, EVP_PKEY *k);
/* "rsa:2048", "ec:p256", "ec:p384" or "unknown". */
void pkey_type_text(const EVP_PKEY *k, char *buf, size_t len);

/* Unix time of an ASN.1 time; 0 and SFTCA_ERR_INVALID if it will not convert. */
int asn1_time_unix(const ASN1_TIME *t, int64_t *out);
int64_t x509_not_after(const X509 *x);
int64_t x509_not_before(const X509 *x);

/* 1 when issuer's key verifies x's signature and x names issuer as its
 * issuer; 0 otherwise. */
int x509_issued_by(X509 *x, X509 *issuer);
/* 1 when x's authority key identifier names its issuer by serial
 * (authorityCertSerialNumber, which OpenSSL 3's default "keyid,issuer"
 * adds) and that is not ca's serial: OpenSSL will not chain x to ca, even
 * with ca's key (a CA renewed with a new serial). The two serials go to
 * aki_serial and ca_serial (hex) when non-NULL. 0 otherwise. */
int x509_aki_serial_mismatch(X509 *x, const X509 *ca, char *aki_serial, char *ca_serial,
			     size_t len);

/* Verify x against trust anchors (all of 'anchors' trusted), at 'at'
 * (0 = now). Returns 0, or SFTCA_ERR_VERIFY with the reason in why. */
int x509_verify_chain(X509 *x, STACK_OF(X509) *anchors, time_t at, char *why, size_t whylen);

#endif
