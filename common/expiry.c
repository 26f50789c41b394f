#include "expiry.h"

#include <string.h>

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

const char expiry_rules_title[] =
	"The InternalCA or a certificate it signed has expired or expires within 30 days. "
	"Until the renewed files are in place:";

const char *const expiry_rules[] = {
	"Tunnels that are still up stay up until they reconnect: do not reboot or upgrade the "
	"FMC or any FTD, and do not restart sftunnel, until the renewed files are in place "
	"on both sides.",
	"FMC first, then the devices: renew and install the FMC's files (sftca ca renew, sftca "
	"issue), then the devices' (sftca push), then sftca verify --live.",
	"An FMC upgrade is acceptable only when every device is already down (no tunnel up): "
	"an upgrade closes every tunnel, and with expired certificates they do not come back.",
	NULL
};

int expiry_rules_apply(int64_t not_after, int64_t now)
{
	return not_after <= now + (int64_t)EXPIRY_RULES_DAYS * DAY;
}

/* Word-wrapped at 78 columns, continuation lines indented under the text. */
static void print_wrapped(FILE *f, const char *first, int indent, const char *text)
{
	int col = fprintf(f, "%s", first);

	while (*text) {
		size_t w = strcspn(text, " ");

		if (col > indent && col + 1 + (int)w > 78)
			col = fprintf(f, "\n%*s", indent, "") - 1;
		else if (col > indent)
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)w, text);
		text += w;
		while (*text == ' ')
			text++;
	}
	fprintf(f, "\n");
}

void expiry_rules_print(FILE *f)
{
	print_wrapped(f, "", 0, expiry_rules_title);
	for (size_t i = 0; expiry_rules[i]; i++)
		print_wrapped(f, "  - ", 4, expiry_rules[i]);
}
