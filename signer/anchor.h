/* The audit anchor: a sign-only EC P-256 key in the token (label
 * ANCHOR_KEY_LABEL, generated on first start) signs a checkpoint of the
 * audit chain (last record's sequence and hash) into state_dir/audit.anchor
 * within a second of each record, from its own thread, so a log rewritten
 * by whoever holds the state directory but not the token's key fails
 * `verify-audit --key`. Its public half is written to
 * state_dir/audit-key.pem at every start, to be copied off the host. */
#ifndef SFTCA_ANCHOR_H
#define SFTCA_ANCHOR_H

#define ANCHOR_KEY_LABEL "sftca/audit"

struct signer;

/* Open (or make) the key and hand the audit log its signer. */
int anchor_open(struct signer *s) __attribute__((warn_unused_result));
/* Stop the thread, sign a last checkpoint, free the key (before the audit
 * log is closed and the token logged out). */
void anchor_close(struct signer *s);

#endif
