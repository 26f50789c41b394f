/* What an FMC tree trusts: the bundle DIR/etc/sf/ca_root/cacert.pem and the
 * CRL beside it. The one place that judges "is this leaf revoked", so that
 * verify, push and issue agree on it. */
#ifndef SFTCA_TRUST_H
#define SFTCA_TRUST_H

#include "msg.h"

#include <openssl/x509.h>

struct trust;

/* Load the tree's bundle (required) and CRL (optional: no file, nothing
 * revoked). NULL with m set when the bundle or a present CRL cannot be
 * read. */
struct trust *trust_load(const char *root, struct sftca_msg *m);
void trust_free(struct trust *t);

/* The bundle's certificates (owned by t), the first the active CA. */
STACK_OF(X509) *trust_anchors(const struct trust *t);
/* 1 when a CRL that one of the anchors signed lists x's serial for x's
 * issuer. */
int trust_revoked(const struct trust *t, X509 *x);
/* 1 when dir/crl.pem lists the same revocations for the same issuers as
 * the CRL text fresh and is far from its nextUpdate: leave it, so reruns
 * change nothing. */
int trust_crl_unchanged(const char *dir, const char *fresh);

#endif
