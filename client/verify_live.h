/* sftca verify --live: a TLS 1.2 handshake with every device of a
 * devices.csv, made the way the FMC's sftunnel makes it: the FMC identity
 * presented, only the FMC's bundle trusted, the device's certificate CN
 * checked against the row's UUID. */
#ifndef SFTCA_VERIFY_LIVE_H
#define SFTCA_VERIFY_LIVE_H

#include <jansson.h>
#include <stddef.h>

struct live_opts {
	const char *root;    /* FMC tree: etc/sf/keys identity, etc/sf/ca_root bundle */
	const char *devices; /* devices.csv */
	int jobs;            /* handshakes at once */
	int timeout_s;       /* connect + handshake, per device */
};

/* Check every device. Prints one line per device and a summary to stdout,
 * or, when json is not NULL, sets *json to {"devices": [...], "ok": N,
 * "failed": N} instead. *failed counts the devices that failed. Returns 0,
 * or a negative SFTCA_ERR_* (reported) when the check could not run: bad
 * devices file, FMC identity or bundle missing. */
int verify_live(const struct live_opts *o, json_t **json, size_t *failed)
	__attribute__((warn_unused_result));

#endif
