/* The signer's configuration parser (signer/config.c): arbitrary bytes as
 * the text of signer.conf, then the cross-field checks and the lookups the
 * server makes with the result. */
#include "fuzz_common.h"

#include "config.h"
#include "uuid.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_config");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct signer_config cfg;

	if (config_parse_string("fuzz.conf", (const char *)data, size, &cfg) == 0) {
		(void)config_validate(&cfg);
		FUZZ_CHECK(cfg.nlisten <= CONFIG_MAX_LISTEN);
		FUZZ_CHECK(cfg.nauthz <= CONFIG_MAX_AUTHZ);
		FUZZ_CHECK(cfg.sessions >= 1 && cfg.workers >= 1 && cfg.max_batch >= 1);
		FUZZ_CHECK(cfg.unix_role != ROLE_NONE);
		for (size_t i = 0; i < cfg.nauthz; i++) {
			const struct authz_entry *e = &cfg.authz[i];
			FUZZ_CHECK(e->cn != NULL && e->role != ROLE_NONE);
			/* CNs are unique, so the lookup finds this very entry. */
			FUZZ_CHECK(config_authz_find(&cfg, e->cn) == e);
			FUZZ_CHECK(e->ncas == 0 || e->role == ROLE_ISSUER);
			FUZZ_CHECK(e->ncas <= CONFIG_MAX_AUTHZ_CAS);
			for (size_t j = 0; j < e->ncas; j++)
				FUZZ_CHECK(uuid_is_canonical(e->cas[j]));
			FUZZ_CHECK(role_parse(role_name(e->role)) == e->role);
		}
		FUZZ_CHECK(config_authz_find(&cfg, "") == NULL || cfg.nauthz > 0);
	}
	config_free(&cfg);
	return 0;
}
