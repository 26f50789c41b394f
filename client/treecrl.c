#include "treecrl.h"

#include "client.h"
#include "layout.h"

#include <string.h>
#include <sys/stat.h>

void tree_crl_judge(const char *root, int64_t now, struct tree_crl *out)
{
	struct certscan_opts o = { .warn_days = CERTSCAN_WARN_DAYS, .crit_days = CERTSCAN_CRIT_DAYS,
				   .now = now };
	struct certscan *cs = NULL;
	char dir[4200];
	struct stat st;

	memset(out, 0, sizeof(*out));
	out->state = EXPIRY_UNKNOWN;
	if (layout_ca_root(root, dir, sizeof(dir)) != 0 ||
	    layout_file(dir, LAYOUT_CRL, out->path, sizeof(out->path)) != 0) {
		snprintf(out->why, sizeof(out->why), "path too long");
		return;
	}
	if (stat(out->path, &st) != 0) {
		snprintf(out->why, sizeof(out->why), "none (sftunnel.conf's proxy_crl names it; "
			 "sftca issue writes it)");
		return;
	}
	out->present = 1;
	if ((cs = certscan_new(&o)) == NULL || certscan_path(cs, out->path) != 0) {
		snprintf(out->why, sizeof(out->why), "out of memory");
		goto out;
	}
	for (size_t i = 0; i < certscan_count(cs); i++) {
		const struct cert_result *r = certscan_result(cs, i);
		if (r->crl && r->error == NULL) {
			out->next_update = r->not_after;
			out->days = r->days;
			out->expired = r->expired;
			out->state = r->state;
			goto out;
		}
	}
	snprintf(out->why, sizeof(out->why), "holds no readable CRL");
out:
	certscan_free(cs);
}

json_t *tree_crl_json(const struct tree_crl *c)
{
	char na[40] = "";

	if (!c->present || c->why[0])
		return json_pack("{s:s, s:b, s:s, s:s}", "path", c->path, "present", c->present,
				 "state", expiry_state_name(c->state), "problem", c->why);
	fmt_time(c->next_update, na, sizeof(na));
	return json_pack("{s:s, s:b, s:s, s:s, s:I, s:I, s:b}", "path", c->path, "present", 1,
			 "state", expiry_state_name(c->state), "next_update", na,
			 "next_update_unix", (json_int_t)c->next_update, "days_left",
			 (json_int_t)c->days, "expired", c->expired);
}

void tree_crl_print(FILE *f, const struct tree_crl *c)
{
	char na[40] = "";

	if (!c->present || c->why[0]) {
		fprintf(f, "crl.pem  %s  %s\n", c->present ? "UNKNOWN" : "none", c->why);
		return;
	}
	fmt_time(c->next_update, na, sizeof(na));
	if (c->expired)
		fprintf(f, "crl.pem  %s  nextUpdate %s passed %lld days ago: sftunnel may refuse every "
			"peer (sftca issue writes a new one)\n",
			expiry_state_name(c->state), na, (long long)-c->days);
	else
		fprintf(f, "crl.pem  %s  nextUpdate %s (%lld days left)\n", expiry_state_name(c->state),
			na, (long long)c->days);
}
