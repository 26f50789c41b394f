#include "cainfo.h"

#include "client.h"
#include "expiry.h"
#include "log.h"

#include <stdlib.h>

const char *generation_state_name(Sftca__V1__GenerationState s)
{
	switch (s) {
	case SFTCA__V1__GENERATION_STATE__GENERATION_ACTIVE:
		return "active";
	case SFTCA__V1__GENERATION_STATE__GENERATION_RETIRING:
		return "retiring";
	case SFTCA__V1__GENERATION_STATE__GENERATION_RETIRED:
		return "retired";
	default:
		return "unknown";
	}
}

const char *custody_wire_name(Sftca__V1__Custody c)
{
	switch (c) {
	case SFTCA__V1__CUSTODY__CUSTODY_SHARED:
		return "shared";
	case SFTCA__V1__CUSTODY__CUSTODY_EXCLUSIVE:
		return "exclusive";
	default:
		return "unknown";
	}
}

void cainfo_print(FILE *f, const Sftca__V1__CAInfo *ci, int64_t now)
{
	fprintf(f, "CA %s  (%s)\n", ci->ca_id, ci->subject);
	fprintf(f, "  custody: %s%s\n", custody_wire_name(ci->custody),
		ci->custody == SFTCA__V1__CUSTODY__CUSTODY_SHARED
			? " (the FMC keeps its copy of the key and signs registrations with it: "
			  "renew, do not rotate)"
		: ci->custody == SFTCA__V1__CUSTODY__CUSTODY_EXCLUSIVE
			? " (the token holds the only copy: certify new registrations with "
			  "sftca issue --peer UUID)"
			: "");
	fprintf(f, "  %-4s %-9s %-9s %-3s %-25s %8s  %s\n", "gen", "state", "key", "v", "notAfter",
		"days", "serial");
	for (size_t i = 0; i < ci->n_generations; i++) {
		const Sftca__V1__Generation *g = ci->generations[i];
		char na[40];
		int expired;
		long long days = (long long)expiry_days(g->not_after, now, &expired);

		fmt_time(g->not_after, na, sizeof(na));
		fprintf(f, "  %-4u %-9s %-9s v%-2u %-25s %8lld  %s%s\n", g->generation,
			generation_state_name(g->state), g->key_type, g->x509_version, na, days,
			g->serial, g->imported ? "  (imported)" : "");
	}
}

json_t *cainfo_json(const Sftca__V1__CAInfo *ci, int64_t now)
{
	json_t *gens = json_array();

	for (size_t i = 0; i < ci->n_generations; i++) {
		const Sftca__V1__Generation *g = ci->generations[i];
		int expired;
		json_int_t days = (json_int_t)expiry_days(g->not_after, now, &expired);
		json_array_append_new(
			gens, json_pack("{s:i, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:b, s:s}",
					"generation", (int)g->generation, "state",
					generation_state_name(g->state), "key_type", g->key_type,
					"key_label", g->key_label, "serial", g->serial, "x509_version",
					(int)g->x509_version, "not_before", (json_int_t)g->not_before,
					"not_after", (json_int_t)g->not_after, "days_left", days,
					"imported", g->imported, "expiry",
					g->state == SFTCA__V1__GENERATION_STATE__GENERATION_RETIRED
						? "n/a"
						: expiry_state_name(expiry_classify(g->not_after, now, 90,
										    30))));
	}
	return json_pack("{s:s, s:s, s:s, s:i, s:o}", "ca_id", ci->ca_id, "subject", ci->subject,
			 "custody", custody_wire_name(ci->custody), "active_generation",
			 (int)ci->active_generation, "generations", gens);
}

int cainfo_warn(const Sftca__V1__CAInfo *ci, int64_t now)
{
	for (size_t i = 0; i < ci->n_generations; i++) {
		const Sftca__V1__Generation *g = ci->generations[i];
		int expired;
		long long days;
		enum expiry_state st;

		if (g->state != SFTCA__V1__GENERATION_STATE__GENERATION_ACTIVE)
			continue;
		days = (long long)expiry_days(g->not_after, now, &expired);
		st = expiry_classify(g->not_after, now, 90, 30);
		if (st == EXPIRY_CRITICAL && expired)
			log_error("CRITICAL: CA %s expired %lld days ago: tunnels that reconnect will "
				  "fail. Renew now: sftca ca renew --ca %s",
				  ci->ca_id, -days, ci->ca_id);
		else if (st == EXPIRY_CRITICAL)
			log_error("CRITICAL: CA %s expires in %lld days. Renew now: sftca ca renew "
				  "--ca %s",
				  ci->ca_id, days, ci->ca_id);
		else if (st == EXPIRY_WARNING)
			log_warn("CA %s expires in %lld days (under 90): plan its renewal (README: "
				 "\"My CA expires in N days\")",
				 ci->ca_id, days);
		return st;
	}
	return EXPIRY_OK;
}

int cainfo_rules_apply(const Sftca__V1__CAInfo *ci, int64_t now)
{
	for (size_t i = 0; i < ci->n_generations; i++)
		if (ci->generations[i]->state == SFTCA__V1__GENERATION_STATE__GENERATION_ACTIVE)
			return expiry_rules_apply(ci->generations[i]->not_after, now);
	return 0;
}

json_t *expiry_rules_json(void)
{
	json_t *a = json_array();

	for (size_t i = 0; expiry_rules[i]; i++)
		json_array_append_new(a, json_string(expiry_rules[i]));
	return a;
}

void json_print(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(j);
}
