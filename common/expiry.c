#include "expiry.h"

#define DAY 86400

int64_t expiry_days(int64_t not_after, int64_t now, int *expired)
{
	if (not_after <= now) {
		if (expired)
			*expired = 1;
		return -((now - not_after) / DAY);
	}
	if (expired)
		*expired = 0;
	return (not_after - now) / DAY;
}

enum expiry_state expiry_classify(int64_t not_after, int64_t now, int warn_days, int crit_days)
{
	if (not_after <= now || not_after <= now + (int64_t)crit_days * DAY)
		return EXPIRY_CRITICAL;
	if (not_after <= now + (int64_t)warn_days * DAY)
		return EXPIRY_WARNING;
	return EXPIRY_OK;
}

const char *expiry_state_name(enum expiry_state s)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL", "UNKNOWN" };
	return (unsigned)s <= EXPIRY_UNKNOWN ? names[s] : "UNKNOWN";
}
