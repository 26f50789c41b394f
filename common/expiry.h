/* Expiry arithmetic, the same as the vendor's one-liner in the seed:
 * expired when notAfter <= now; "within N days" when
 * notAfter <= now + N*86400; days are whole days, truncated. */
#ifndef SFTCA_EXPIRY_H
#define SFTCA_EXPIRY_H

#include <stdint.h>

enum expiry_state { EXPIRY_OK = 0, EXPIRY_WARNING = 1, EXPIRY_CRITICAL = 2, EXPIRY_UNKNOWN = 3 };

/* Whole days left (>= 0) while valid; minus whole days since expiry (<= 0,
 * "expired 0 days ago" is 0 with expired set) once expired. */
int64_t expiry_days(int64_t not_after, int64_t now, int *expired);
/* OK, WARNING (within warn_days), CRITICAL (within crit_days or expired). */
enum expiry_state expiry_classify(int64_t not_after, int64_t now, int warn_days, int crit_days);
const char *expiry_state_name(enum expiry_state s);

#endif
