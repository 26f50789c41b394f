/* The PEM files of a gRPC TLS identity, loaded and checked together. */
#ifndef SFTCA_TLSFILES_H
#define SFTCA_TLSFILES_H

#include <stddef.h>

struct tls_files {
	char *cert_pem;
	char *key_pem;  /* secret: wiped by tls_files_clear() */
	size_t key_len;
	char *ca_pem;   /* trust anchors for the other side */
};

/* Load cert, key (mode checked like every secret) and CA bundle; checks
 * that each parses and that the key belongs to the certificate. Any path
 * may be NULL to skip that file. Errors are logged naming the file. */
int tls_files_load(const char *cert, const char *key, const char *ca, struct tls_files *out)
	__attribute__((warn_unused_result));
void tls_files_clear(struct tls_files *t);

#endif
