/* Finding sftunnel certificate failures in FMC/FTD /var/log/messages text.
 * Takes arbitrary bytes in pieces of any size (a line may span feeds, NULs,
 * CRLF, binary garbage and very long lines are all fine); never opens a
 * file itself, so it can be fuzzed as it is. */
#ifndef SFTCA_LOGSCAN_H
#define SFTCA_LOGSCAN_H

#include <stddef.h>

#define LOGSCAN_MAX_LINE 8192   /* bytes of a line looked at; the rest is skipped */
#define LOGSCAN_MAX_VALUES 32   /* distinct hosts (peers, ...) kept per finding */
#define LOGSCAN_MAX_FINDINGS 64 /* distinct kinds of finding kept */

enum logscan_kind {
	LOGSCAN_VERIFY_ERROR,   /* "err N:reason": OpenSSL verify error N on a certificate */
	LOGSCAN_HANDSHAKE_FAIL, /* "SSL handshake fail..." */
	LOGSCAN_VERIFY_STATUS,  /* "SSL Verification status: ..." other than ok */
	LOGSCAN_FMC_CONNECT,    /* "establishSSLConnection: ..." errors on the FMC */
	LOGSCAN_TLS_ALERT,      /* "sslv3 alert certificate expired", "tlsv1 alert unknown ca":
				 * the peer rejected this side's certificate; code is the
				 * TLS alert number (45, 48, ...) */
};

/* A distinct value (host, peer address, certificate name) and how many
 * times it came with the finding. */
struct logscan_value {
	char *text;
	unsigned long count;
};

struct logscan_values {
	struct logscan_value *v;
	size_t n;
	unsigned long dropped; /* occurrences of values beyond LOGSCAN_MAX_VALUES */
};

/* All text is valid UTF-8 with control characters replaced by '?'. */
struct logscan_finding {
	enum logscan_kind kind;
	int code;                 /* the verify error number, the TLS alert number; -1 for
				   other kinds */
	char id[40];              /* "cert_expired", "verify_error_24", "ssl_handshake_failed" */
	char title[128];
	unsigned long count;
	char first[40], last[40]; /* timestamps as logged ("Sep 20 04:10:47"); "" if none */
	struct logscan_values hosts;    /* syslog hostname field */
	struct logscan_values peers;    /* addresses from "Connected to", "connect to 8305 (IP" */
	struct logscan_values issuers;  /* "issuer = " lines of the failing certificate */
	struct logscan_values subjects; /* "subject = " lines */
	struct logscan_values ca_ids;   /* UUIDs in the CN of those issuers (the FMC's CA) */
	struct logscan_values details;  /* the logged reason text ("certificate has expired") */
	int subject_is_ca;              /* a failing certificate was the InternalCA itself */
};

/* What to do about a finding: why it happens and the sftca commands that
 * fix it, in order; "<FMC-UUID>" stands for the CA id (see ca_ids). */
struct logscan_remedy {
	const char *why;
	const char *const *steps; /* NULL-terminated */
};

struct logscan;

struct logscan *logscan_new(void);
void logscan_free(struct logscan *ls);

/* Scan len bytes; lines end at '\n'. 0, or SFTCA_ERR_NOMEM. */
int logscan_feed(struct logscan *ls, const char *buf, size_t len)
	__attribute__((warn_unused_result));
/* End of one input (file): scan a last line without '\n' and forget the
 * per-process context. Feeding afterwards starts a new input; findings
 * accumulate across inputs. 0, or SFTCA_ERR_NOMEM. */
int logscan_finish(struct logscan *ls) __attribute__((warn_unused_result));

size_t logscan_count(const struct logscan *ls);
const struct logscan_finding *logscan_finding(const struct logscan *ls, size_t i);
/* Lines seen, and lines longer than LOGSCAN_MAX_LINE (cut). */
unsigned long logscan_lines(const struct logscan *ls);
unsigned long logscan_long_lines(const struct logscan *ls);

const struct logscan_remedy *logscan_remedy(const struct logscan_finding *f);

#endif
