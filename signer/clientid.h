/* Who a TLS client is: its certificate's one CN, the certificate's and its
 * key's SHA-256 (for [authz] entries pinned to them), and whether the
 * client_crl revokes it. */
#ifndef SFTCA_CLIENTID_H
#define SFTCA_CLIENTID_H

#include "msg.h"

#include <stddef.h>

#define CLIENTID_SHA256_LEN 32

struct client_cert {
	char cn[128];
	unsigned char cert_sha256[CLIENTID_SHA256_LEN];
	unsigned char spki_sha256[CLIENTID_SHA256_LEN];
	char serial[80];  /* hex, for messages */
	void *x509;       /* X509 *, for the CRL lookup; client_cert_clear frees it */
};

/* Parse a verified peer certificate (PEM, len bytes). 0, or
 * SFTCA_ERR_AUTH with why saying what is wrong: no CN, more than one, a CN
 * with an embedded NUL (which a C string comparison would cut short), or
 * one too long. */
int client_cert_parse(const char *pem, size_t len, struct client_cert *out, struct sftca_msg *why)
	__attribute__((warn_unused_result));
void client_cert_clear(struct client_cert *c);

struct client_crl;

/* Load the CRLs in path (PEM, one or more), each of which must be signed by
 * a certificate in the client_ca bundle. NULL with the reason logged. */
struct client_crl *client_crl_load(const char *path, const char *client_ca);
void client_crl_free(struct client_crl *crl);
/* 1 when a CRL from c's issuer lists c's serial. */
int client_crl_revoked(const struct client_crl *crl, const struct client_cert *c);
/* CRLs loaded and certificates revoked in all of them, for the log. */
void client_crl_counts(const struct client_crl *crl, size_t *ncrls, size_t *nrevoked);

/* An [authz] key "cert-sha256/HEX" or "spki-sha256/HEX" (64 hex digits,
 * any case): returns CLIENTID_PIN_CERT or CLIENTID_PIN_SPKI and fills
 * digest; 0 when s is not such a key (a CN); -1 when it starts like one but
 * the digest is malformed. */
#define CLIENTID_PIN_CERT 1
#define CLIENTID_PIN_SPKI 2
int clientid_parse_pin(const char *s, unsigned char digest[CLIENTID_SHA256_LEN]);

#endif
