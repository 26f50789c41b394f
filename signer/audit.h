/* The audit log (state_dir/audit.log): one JSON object per line for every
 * issuance, refusal, CA change, revocation and token recovery. Each line
 * carries the SHA-256 of the line before it ("prev") and a sequence
 * number, and audit.head holds the last line's sequence and hash, so an
 * edited, reordered or truncated log fails audit_verify_file(). */
#ifndef SFTCA_AUDIT_H
#define SFTCA_AUDIT_H

#include <jansson.h>
#include <stddef.h>

struct audit;

/* Open (create) dir/audit.log and continue its chain. */
int audit_open(const char *dir, struct audit **out) __attribute__((warn_unused_result));
void audit_close(struct audit *a);

/* Append one line. detail (may be NULL) is consumed. result: "ok",
 * "refused" or "error". Failures are logged, and returned. */
int audit_log(struct audit *a, const char *event, const char *identity, const char *ca,
	      const char *result, json_t *detail);

/* A JSON string of bytes from a caller (a peer UUID, a serial, a reason):
 * jansson refuses invalid UTF-8, which would lose the record, so bytes of
 * such a string above 0x7f are written as \xNN. NULL for NULL (or no memory). */
json_t *audit_text(const char *s);

/* Check the chain of a log file (and its .head file when present, or the
 * head file given). 0 when intact; otherwise SFTCA_ERR_VERIFY and why names
 * the first bad line. */
int audit_verify_file(const char *log_path, const char *head_path, unsigned long *lines,
		      char *why, size_t whylen) __attribute__((warn_unused_result));

#endif
