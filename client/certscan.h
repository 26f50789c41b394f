/* Finding certificates in files and directory trees and classifying their
 * expiry, for `sftca check`. Offline: OpenSSL and the filesystem only. */
#ifndef SFTCA_CERTSCAN_H
#define SFTCA_CERTSCAN_H

#include "expiry.h"

#include <stddef.h>
#include <stdint.h>

/* Deepest directory nesting walked below a path given by the user. */
#define CERTSCAN_MAX_DEPTH 32

struct certscan_opts {
	int warn_days, crit_days;
	int include_backups; /* also check NAME.backup and NAME.backup.* met in a walk */
	int64_t now;
};

/* One certificate or CRL, or one thing that could not be checked (state
 * UNKNOWN, error set). A CRL (crl set) is judged by its nextUpdate, with the
 * certificates' thresholds: one that runs out drops every tunnel whose
 * sftunnel checks it (sftunnel.conf's proxy_crl). All text is valid UTF-8 without control characters except
 * path, which keeps them (output formats escape it). */
struct cert_result {
	char *path;
	int index;            /* among the file's certificate (or CRL) blocks; -1: the file as a whole */
	int crl;              /* a CRL: subject and issuer are its issuer, serial its CRL number,
			       * not_before/not_after its thisUpdate/nextUpdate */
	char *subject, *issuer; /* RFC 2253 one-line text; NULL for errors */
	char serial[80];      /* uppercase hex */
	int64_t not_before, not_after;
	int64_t days;         /* expiry_days(): >= 0 left, or -(days since expiry) */
	int expired;
	enum expiry_state state;
	char *error;          /* why the state is UNKNOWN; NULL otherwise */
};

struct certscan;

struct certscan *certscan_new(const struct certscan_opts *o);
void certscan_free(struct certscan *cs);

/* Check a path the user named: a file must hold at least one certificate
 * or CRL (PEM, or a DER certificate when nothing PEM is in it); a directory is walked
 * recursively, following symbolic links, each directory and file visited
 * once. What cannot be checked becomes an UNKNOWN result. Returns 0, or
 * SFTCA_ERR_NOMEM. */
int certscan_path(struct certscan *cs, const char *path) __attribute__((warn_unused_result));

size_t certscan_count(const struct certscan *cs);
const struct cert_result *certscan_result(const struct certscan *cs, size_t i);
/* Files in which at least one certificate or CRL was found. */
size_t certscan_files(const struct certscan *cs);
/* Backup files passed over in walks (without include_backups). */
size_t certscan_skipped_backups(const struct certscan *cs);
/* The worst state of all results; UNKNOWN when there is none at all. */
enum expiry_state certscan_worst(const struct certscan *cs);

/* The more severe of two states, in the order monitoring plugins use:
 * OK < UNKNOWN < WARNING < CRITICAL. */
enum expiry_state certscan_worse(enum expiry_state a, enum expiry_state b);

#endif
