/* Expiry arithmetic, the same as the vendor's one-liner in the seed:
 * expired when notAfter <= now; "within N days" when
 * notAfter <= now + N*86400; days are whole days, truncated. */
#ifndef SFTCA_EXPIRY_H
#define SFTCA_EXPIRY_H

#include <stdint.h>
#include <stdio.h>

enum expiry_state { EXPIRY_OK = 0, EXPIRY_WARNING = 1, EXPIRY_CRITICAL = 2, EXPIRY_UNKNOWN = 3 };

/* Whole days left (>= 0) while valid; minus whole days since expiry (<= 0,
 * "expired 0 days ago" is 0 with expired set) once expired. */
int64_t expiry_days(int64_t not_after, int64_t now, int *expired);
/* OK, WARNING (within warn_days), CRITICAL (within crit_days or expired). */
enum expiry_state expiry_classify(int64_t not_after, int64_t now, int warn_days, int crit_days);
const char *expiry_state_name(enum expiry_state s);

/* The seed's rules for an expired or nearly expired InternalCA, shown by
 * status, check and issue when the CA or a leaf is within
 * EXPIRY_RULES_DAYS days of its notAfter or past it. NULL-terminated
 * sentences; the block printed in text output starts with the title. */
#define EXPIRY_RULES_DAYS 30
extern const char *const expiry_rules[];
extern const char expiry_rules_title[];
/* 1 when not_after is within EXPIRY_RULES_DAYS days of now, or passed. */
int expiry_rules_apply(int64_t not_after, int64_t now);
/* The title and the rules, one "  - " line each, wrapped at 78 columns. */
void expiry_rules_print(FILE *f);

#endif
