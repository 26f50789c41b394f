/* The crl.pem of an FMC tree judged for verify and status, by the code
 * `sftca check` uses (certscan.c). */
#ifndef SFTCA_TREECRL_H
#define SFTCA_TREECRL_H

#include "certscan.h"

#include <jansson.h>
#include <stdio.h>

/* The crl.pem of an FMC tree (root/etc/sf/ca_root/crl.pem, what
 * sftunnel.conf's proxy_crl names), judged as `sftca check` judges it with
 * the default thresholds (90/30 days), for verify and status. */
struct tree_crl {
	char path[4200];
	int present;          /* the file exists */
	int64_t next_update;  /* of the first CRL in it */
	int64_t days;         /* expiry_days() of next_update */
	int expired;          /* nextUpdate has passed */
	enum expiry_state state; /* UNKNOWN: missing, or it holds no readable CRL (why) */
	char why[256];
};
#define CERTSCAN_WARN_DAYS 90
#define CERTSCAN_CRIT_DAYS 30
void tree_crl_judge(const char *root, int64_t now, struct tree_crl *out);
json_t *tree_crl_json(const struct tree_crl *c);
/* One line: "crl.pem  STATE  nextUpdate <date> (N days left)" or why not. */
void tree_crl_print(FILE *f, const struct tree_crl *c);

#endif
