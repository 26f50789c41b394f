/* The sftunnel certificate profile (DESIGN.md section 4): what a CA
 * certificate and a peer certificate contain, and which CSRs are accepted.
 * Pure OpenSSL; signing is done by the caller with a token-backed key. */
#ifndef SFTCA_PROFILE_H
#define SFTCA_PROFILE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>
#include <stdint.h>

struct sftca_msg;

#define PROFILE_BACKDATE_SECONDS 3600 /* leaves start an hour early: device clock skew */
#define PROFILE_SERIAL_BYTES 16       /* 128-bit random serials */
#define PROFILE_SERIAL_HEX 80

/* title=InternalCA, OU=Intrusion Management System, CN=<ca_id>, O=Cisco Systems, Inc (no period, as the field) */
X509_NAME *profile_ca_subject(const char *ca_id);
/* The CA's subject without title and with CN = peer_uuid, order kept. */
X509_NAME *profile_leaf_subject(const X509_NAME *ca_subject, const char *peer_uuid);

/* A fresh positive serial of 128 random bits (never zero) and its hex. */
int profile_random_serial(ASN1_INTEGER **serial, char hex[PROFILE_SERIAL_HEX])
	__attribute__((warn_unused_result));

/* Digest used with a CA key: SHA-256, or SHA-384 for P-384. */
const EVP_MD *profile_digest(EVP_PKEY *ca_key);

/* A self-signed v3 CA certificate: subject, key pub, random serial,
 * validity [not_before, not_before + days), basicConstraints CA:TRUE and
 * keyUsage keyCertSign,cRLSign (both critical), SKI. Signed with sign_key
 * (the token key of pub). */
int profile_ca_cert(const X509_NAME *subject, EVP_PKEY *pub, EVP_PKEY *sign_key, int64_t not_before,
		    unsigned days, X509 **out) __attribute__((warn_unused_result));

/* Check a CSR: size, DER, signature (proof of possession), key type and
 * size. why is cleared first; on refusal returns SFTCA_ERR_INVALID and why
 * says what is wrong; on success *spki is the request's key as the
 * certificate will carry it (not decoded: X509_PUBKEY_get0 gives NULL; i2d
 * and d2i_PUBKEY decode it). */
int profile_check_csr(const unsigned char *der, size_t len, size_t max_len, X509_PUBKEY **spki,
		      struct sftca_msg *why) __attribute__((warn_unused_result));

/* An unsigned peer certificate for peer_uuid and the key in spki (copied
 * field by field: OpenSSL 3.0's key encoder/decoder round trip costs more
 * than the rest of the certificate), issued by ca:
 * validity [max(now - backdate, CA notBefore), min(now + days, CA notAfter)],
 * extensions basicConstraints CA:FALSE, subjectAltName DNS:localhost,
 * extendedKeyUsage serverAuth,clientAuth, and SKI/AKI when ca is v3.
 * SFTCA_ERR_PRECONDITION if the CA has expired. */
int profile_leaf(X509 *ca, const char *peer_uuid, const X509_PUBKEY *spki,
		 const ASN1_INTEGER *serial, int64_t now, unsigned days, X509 **out)
	__attribute__((warn_unused_result));
/* Lowercase hex SHA-256 of a DER SubjectPublicKeyInfo. */
int profile_spki_sha256(const X509_PUBKEY *spki, char out[65]);

#endif
