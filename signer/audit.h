/* The audit log (state_dir/audit.log): one JSON object per line for every
 * issuance, refusal, CA change, revocation and token recovery. Each line
 * carries the SHA-256 of the line before it ("prev") and a sequence
 * number, and audit.head holds the last line's sequence and hash, so an
 * edited, reordered or truncated log fails audit_verify_file(). */
#ifndef SFTCA_AUDIT_H
#define SFTCA_AUDIT_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stddef.h>

struct audit;

/* Defaults of audit_set_limits. */
#define AUDIT_ROTATE_DEFAULT (64ul << 20)
#define AUDIT_COALESCE_DEFAULT 60

/* Open (create) dir/audit.log and continue its chain, reading only the end
 * of the log (or of the last rotated audit.log.N when audit.log is empty). */
int audit_open(const char *dir, struct audit **out) __attribute__((warn_unused_result));
/* When audit.log would pass rotate_bytes it becomes audit.log.N (N = 1, 2,
 * ...; never renamed again) and the chain goes on in a new audit.log.
 * Denials are coalesced per identity and method over coalesce_seconds
 * (0 = every denial is a record). */
/* Name this signer's instance (its ledger instance id) in every record
 * from now on: signers sharing a ledger keep one audit log each. */
void audit_set_instance(struct audit *a, const char *instance);
void audit_set_limits(struct audit *a, size_t rotate_bytes, unsigned coalesce_seconds);
/* The last record's sequence number and SHA-256 (hex), for the anchor. */
void audit_last(struct audit *a, unsigned long long *seq, char prev[65]);
/* Write whatever denial counts are held, then close. */
void audit_close(struct audit *a);

/* Append one line. detail (may be NULL) is consumed. result: "ok",
 * "refused" or "error". Failures are logged, and returned. */
int audit_log(struct audit *a, const char *event, const char *identity, const char *ca,
	      const char *result, json_t *detail);

/* A refused call: the first of identity+method in an interval is a
 * "refused" record (returns 1); later ones are counted (returns 0)
 * and written as one "refused.repeat" record with the count when the
 * interval has passed (with the next record, or at close). */
int audit_denied(struct audit *a, const char *identity, const char *method, const char *peer,
		 const char *reason);

/* A JSON string of bytes from a caller (a peer UUID, a serial, a reason):
 * jansson refuses invalid UTF-8, which would lose the record, so bytes of
 * such a string above 0x7f are written as \xNN. NULL for NULL (or no memory). */
json_t *audit_text(const char *s);

/* Check the chain of a log file (and its .head file when present, or the
 * head file given). 0 when intact; otherwise SFTCA_ERR_VERIFY and why names
 * the first bad line. */
int audit_verify_file(const char *log_path, const char *head_path, unsigned long *lines,
		      char *why, size_t whylen) __attribute__((warn_unused_result));
/* For DIR/audit.log with rotated siblings: DIR/audit.log.1 ... DIR/audit.log
 * (malloc'd strings in a malloc'd array, *n of them); NULL otherwise. */
char **audit_rotated_set(const char *log_path, size_t *n);
/* The same over a rotated set, oldest first (audit.log.1 ... audit.log):
 * one chain from record 1 across the files; the head file is the last's. */
int audit_verify_set(const char *const *paths, size_t n, const char *head_path,
		     unsigned long *lines, char *why, size_t whylen)
	__attribute__((warn_unused_result));
/* The same and, when key is not NULL (the audit key's public half the
 * signer exports), the checkpoint audit.anchor beside the last file must be
 * signed by it and name a record of the chain (seq and hash) as it is. */
int audit_verify_signed(const char *const *paths, size_t n, const char *head_path,
			EVP_PKEY *key, unsigned long *lines, char *why, size_t whylen)
	__attribute__((warn_unused_result));

#endif
