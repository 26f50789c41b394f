#include "config.h"

#include "clientid.h"
#include "errors.h"
#include "fileio.h"
#include "log.h"
#include "uuid.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* inih reads lines into a fixed buffer; a longer line would silently be
 * split in two, so such files are refused before parsing. */
#define INI_LINE_LIMIT 199

struct parse_ctx {
	struct signer_config *cfg;
	int admin_calls_set;      /* 0 is a value for admin_reserved_calls */
	char error[512];
};

const char *role_name(enum role r)
{
	switch (r) {
	case ROLE_ADMIN:
		return "admin";
	case ROLE_ISSUER:
		return "issuer";
	case ROLE_AUDITOR:
		return "auditor";
	default:
		return "none";
	}
}

enum role role_parse(const char *s)
{
	if (strcmp(s, "admin") == 0)
		return ROLE_ADMIN;
	if (strcmp(s, "issuer") == 0)
		return ROLE_ISSUER;
	if (strcmp(s, "auditor") == 0)
		return ROLE_AUDITOR;
	return ROLE_NONE;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst != NULL;
}

static int parse_ulong(struct parse_ctx *c, const char *name, const char *v, unsigned long min,
		       unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (v[0] == '\0' || v[0] == '-' || *end != '\0' || errno != 0 || n < min || n > max) {
		snprintf(c->error, sizeof(c->error), "%s = \"%s\": expected a whole number from %lu to %lu",
			 name, v, min, max);
		return 0;
	}
	*out = n;
	return 1;
}

/* "issuer:ca1,ca2" -> role + CA list. */
static int parse_authz(struct parse_ctx *c, const char *cn, const char *v)
{
	struct signer_config *cfg = c->cfg;
	struct authz_entry *e;
	char buf[4096], *colon, *p;

	if (cfg->nauthz >= CONFIG_MAX_AUTHZ) {
		snprintf(c->error, sizeof(c->error), "more than %d [authz] entries", CONFIG_MAX_AUTHZ);
		return 0;
	}
	for (size_t i = 0; i < cfg->nauthz; i++)
		if (strcmp(cfg->authz[i].cn, cn) == 0) {
			snprintf(c->error, sizeof(c->error), "[authz] names \"%s\" twice", cn);
			return 0;
		}
	snprintf(buf, sizeof(buf), "%s", v);
	e = &cfg->authz[cfg->nauthz];
	if ((e->pin = clientid_parse_pin(cn, e->digest)) < 0) {
		snprintf(c->error, sizeof(c->error),
			 "[authz] %s: expected cert-sha256/ or spki-sha256/ and 64 hex digits", cn);
		e->pin = 0;
		return 0;
	}
	if ((colon = strchr(buf, ':')) != NULL)
		*colon = '\0';
	if ((e->role = role_parse(buf)) == ROLE_NONE) {
		snprintf(c->error, sizeof(c->error),
			 "[authz] %s = \"%s\": role must be admin, issuer or auditor", cn, v);
		return 0;
	}
	if (colon != NULL && e->role != ROLE_ISSUER) {
		snprintf(c->error, sizeof(c->error),
			 "[authz] %s: only the issuer role can be limited to CAs", cn);
		return 0;
	}
	e->cn = strdup(cn);
	if ((e->cas = calloc(CONFIG_MAX_AUTHZ_CAS, sizeof(char *))) == NULL || e->cn == NULL)
		return 0;
	for (p = colon ? colon + 1 : NULL; p != NULL;) {
		char *comma = strchr(p, ','), *s = p;
		if (comma)
			*comma = '\0';
		while (*s == ' ')
			s++;
		for (char *t = s + strlen(s); t > s && t[-1] == ' ';)
			*--t = '\0';
		if (!uuid_is_canonical(s) || e->ncas >= CONFIG_MAX_AUTHZ_CAS) {
			snprintf(c->error, sizeof(c->error),
				 "[authz] %s: \"%s\" is not a CA id (a lowercase UUID)", cn, s);
			cfg->nauthz++; /* so config_free releases it */
			return 0;
		}
		e->cas[e->ncas++] = strdup(s);
		p = comma ? comma + 1 : NULL;
	}
	cfg->nauthz++;
	return 1;
}

static int handle_signer(struct parse_ctx *c, const char *name, const char *v)
{
	struct signer_config *cfg = c->cfg;
	unsigned long n;

	if (strcmp(name, "listen") == 0) {
		if (cfg->nlisten >= CONFIG_MAX_LISTEN) {
			snprintf(c->error, sizeof(c->error), "more than %d listen lines",
				 CONFIG_MAX_LISTEN);
			return 0;
		}
		return (cfg->listen[cfg->nlisten++] = strdup(v)) != NULL;
	}
	if (strcmp(name, "state_dir") == 0)
		return set_str(&cfg->state_dir, v);
	if (strcmp(name, "tls_cert") == 0)
		return set_str(&cfg->tls_cert, v);
	if (strcmp(name, "tls_key") == 0)
		return set_str(&cfg->tls_key, v);
	if (strcmp(name, "client_ca") == 0)
		return set_str(&cfg->client_ca, v);
	if (strcmp(name, "user") == 0)
		return set_str(&cfg->user, v);
	if (strcmp(name, "client_crl") == 0)
		return set_str(&cfg->client_crl, v);
	if (strcmp(name, "sessions") == 0) {
		if (!parse_ulong(c, name, v, 1, 256, &n))
			return 0;
		cfg->sessions = (int)n;
		return 1;
	}
	if (strcmp(name, "unix_role") == 0) {
		if ((cfg->unix_role = role_parse(v)) == ROLE_NONE) {
			snprintf(c->error, sizeof(c->error),
				 "unix_role = \"%s\": must be admin, issuer or auditor", v);
			return 0;
		}
		return 1;
	}
	snprintf(c->error, sizeof(c->error), "unknown key \"%s\" in [signer]", name);
	return 0;
}

static int handle_limits(struct parse_ctx *c, const char *name, const char *v)
{
	struct signer_config *cfg = c->cfg;
	unsigned long n;

	if (strcmp(name, "max_batch") == 0 && parse_ulong(c, name, v, 1, 100000, &n))
		return cfg->max_batch = (unsigned)n, 1;
	if (strcmp(name, "max_message_bytes") == 0 &&
	    parse_ulong(c, name, v, 4096, 256ul << 20, &n))
		return cfg->max_message = n, 1;
	if (strcmp(name, "max_csr_bytes") == 0 && parse_ulong(c, name, v, 256, 1ul << 20, &n))
		return cfg->max_csr = n, 1;
	if (strcmp(name, "max_request_bytes") == 0 && parse_ulong(c, name, v, 256, 1ul << 20, &n))
		return cfg->max_request = n, 1;
	if (strcmp(name, "max_batch_request_bytes") == 0 &&
	    parse_ulong(c, name, v, 4096, 256ul << 20, &n))
		return cfg->max_batch_request = n, 1;
	if (strcmp(name, "max_calls") == 0 && parse_ulong(c, name, v, 1, 100000, &n))
		return cfg->max_calls = (unsigned)n, 1;
	if (strcmp(name, "max_calls_per_client") == 0 && parse_ulong(c, name, v, 1, 100000, &n))
		return cfg->max_calls_per_client = (unsigned)n, 1;
	if (strcmp(name, "admin_reserved_calls") == 0 && parse_ulong(c, name, v, 0, 100000, &n))
		return cfg->admin_calls = (unsigned)n, c->admin_calls_set = 1;
	if (strcmp(name, "request_timeout") == 0 && parse_ulong(c, name, v, 1, 3600, &n))
		return cfg->request_timeout = (unsigned)n, 1;
	if (strcmp(name, "workers") == 0 && parse_ulong(c, name, v, 1, 1024, &n))
		return cfg->workers = (unsigned)n, 1;
	if (strcmp(name, "issue_rate") == 0) {
		char *end;
		double d = strtod(v, &end);
		if (v[0] == '\0' || *end != '\0' || !(d >= 0 && d <= 1e6)) {
			snprintf(c->error, sizeof(c->error),
				 "issue_rate = \"%s\": expected calls per second (0 = unlimited)", v);
			return 0;
		}
		cfg->issue_rate = d;
		return 1;
	}
	if (strcmp(name, "issue_burst") == 0 && parse_ulong(c, name, v, 1, 100000, &n))
		return cfg->issue_burst = (unsigned)n, 1;
	if (strcmp(name, "leaf_days") == 0 && parse_ulong(c, name, v, 1, 36500, &n))
		return cfg->leaf_days = (unsigned)n, 1;
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "unknown key \"%s\" in [limits]", name);
	return 0;
}

static int handle_audit(struct parse_ctx *c, const char *name, const char *v)
{
	struct signer_config *cfg = c->cfg;
	unsigned long n;

	if (strcmp(name, "rotate_bytes") == 0 && parse_ulong(c, name, v, 4096, 1ul << 30, &n))
		return cfg->audit_rotate_bytes = n, 1;
	if (strcmp(name, "coalesce_seconds") == 0 && parse_ulong(c, name, v, 0, 86400, &n)) {
		cfg->audit_coalesce_set = 1;
		return cfg->audit_coalesce_seconds = (unsigned)n, 1;
	}
	if (c->error[0] == '\0')
		snprintf(c->error, sizeof(c->error), "unknown key \"%s\" in [audit]", name);
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *c = user;
	struct signer_config *cfg = c->cfg;

	if (c->error[0] != '\0')
		return 0;
	if (strcmp(section, "signer") == 0)
		return handle_signer(c, name, value);
	if (strcmp(section, "pkcs11") == 0) {
		if (strcmp(name, "module") == 0)
			return set_str(&cfg->module, value);
		if (strcmp(name, "token_label") == 0)
			return set_str(&cfg->token_label, value);
		if (strcmp(name, "pin_file") == 0)
			return set_str(&cfg->pin_file, value);
		snprintf(c->error, sizeof(c->error), "unknown key \"%s\" in [pkcs11]", name);
		return 0;
	}
	if (strcmp(section, "ledger") == 0) {
		unsigned long n;
		if (strcmp(name, "url") == 0)
			return set_str(&cfg->ledger_url, value);
		if (strcmp(name, "password_file") == 0)
			return set_str(&cfg->ledger_password_file, value);
		if (strcmp(name, "lease_seconds") == 0 &&
		    parse_ulong(c, name, value, 3, 3600, &n))
			return cfg->ledger_lease = (unsigned)n, 1;
		if (c->error[0] == '\0')
			snprintf(c->error, sizeof(c->error), "unknown key \"%s\" in [ledger]", name);
		return 0;
	}
	if (strcmp(section, "limits") == 0)
		return handle_limits(c, name, value);
	if (strcmp(section, "authz") == 0)
		return parse_authz(c, name, value);
	if (strcmp(section, "audit") == 0)
		return handle_audit(c, name, value);
	snprintf(c->error, sizeof(c->error), "unknown section [%s]", section);
	return 0;
}

static long online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

int config_parse_string(const char *name, const char *text, size_t len, struct signer_config *cfg)
{
	struct parse_ctx c = { .cfg = cfg };
	char *copy;
	size_t line = 1, col = 0;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = strdup(name);
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\n') {
			line++;
			col = 0;
		} else if (++col > INI_LINE_LIMIT) {
			log_error("%s:%zu: line longer than %d characters", name, line,
				  INI_LINE_LIMIT);
			return SFTCA_ERR_CONFIG;
		}
	}
	/* inih wants a NUL-terminated string; text need not be one. */
	if ((copy = malloc(len + 1)) == NULL) {
		log_error("configuration %s: out of memory", name);
		return SFTCA_ERR_CONFIG;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	r = ini_parse_string(copy, handler, &c);
	free(copy);
	if (r != 0) {
		log_error("%s:%d: %s", name, r,
			  c.error[0] ? c.error : "syntax error (expected [section] or key = value)");
		return SFTCA_ERR_CONFIG;
	}
	if (cfg->sessions == 0)
		cfg->sessions = (int)online_cpus();
	if (cfg->unix_role == ROLE_NONE)
		cfg->unix_role = ROLE_ADMIN;
	if (cfg->max_batch == 0)
		cfg->max_batch = 1000;
	if (cfg->max_message == 0)
		cfg->max_message = 16u << 20;
	if (cfg->max_csr == 0)
		cfg->max_csr = 16u << 10;
	if (cfg->max_request == 0)
		cfg->max_request = 4u << 10;
	/* More than max_message could never arrive. */
	if (cfg->max_batch_request == 0 || cfg->max_batch_request > cfg->max_message)
		cfg->max_batch_request = cfg->max_message;
	if (cfg->max_calls == 0)
		cfg->max_calls = 64;
	if (cfg->max_calls_per_client == 0)
		cfg->max_calls_per_client = 16;
	if (!c.admin_calls_set)
		cfg->admin_calls = 4;
	if (cfg->request_timeout == 0)
		cfg->request_timeout = 30;
	if (cfg->workers == 0)
		cfg->workers = (unsigned)cfg->sessions + 4;
	if (cfg->issue_burst == 0)
		cfg->issue_burst = 10;
	if (cfg->leaf_days == 0)
		cfg->leaf_days = 3650;
	if (cfg->audit_rotate_bytes == 0)
		cfg->audit_rotate_bytes = 64u << 20;
	if (!cfg->audit_coalesce_set)
		cfg->audit_coalesce_seconds = 60;
	return 0;
}

int config_load(const char *path, struct signer_config *cfg)
{
	char *text = NULL;
	size_t len;
	int r;

	if (file_read_all(path, 1 << 20, &text, &len) != 0) {
		memset(cfg, 0, sizeof(*cfg));
		cfg->path = strdup(path);
		log_error("configuration %s cannot be read", path);
		return SFTCA_ERR_CONFIG;
	}
	r = config_parse_string(path, text, len, cfg);
	free(text);
	return r;
}

int config_validate(const struct signer_config *cfg)
{
	int tcp = 0, bad = 0;

#define NEED(field, key, section) \
	if (cfg->field == NULL || cfg->field[0] == '\0') { \
		log_error("%s: [" section "] " key " is required", cfg->path); \
		bad = 1; \
	}
	NEED(state_dir, "state_dir", "signer")
	NEED(module, "module", "pkcs11")
	NEED(token_label, "token_label", "pkcs11")
	NEED(pin_file, "pin_file", "pkcs11")
#undef NEED
	if (cfg->nlisten == 0) {
		log_error("%s: [signer] needs at least one listen line", cfg->path);
		bad = 1;
	}
	for (size_t i = 0; i < cfg->nlisten; i++) {
		if (strncmp(cfg->listen[i], "unix:", 5) == 0) {
			if (cfg->listen[i][5] != '/') {
				log_error("%s: listen = %s: a unix socket needs an absolute path",
					  cfg->path, cfg->listen[i]);
				bad = 1;
			}
		} else if (strchr(cfg->listen[i], ':') == NULL) {
			log_error("%s: listen = %s: expected host:port or unix:/path", cfg->path,
				  cfg->listen[i]);
			bad = 1;
		} else {
			tcp = 1;
		}
	}
	if (tcp && (!cfg->tls_cert || !cfg->tls_key || !cfg->client_ca)) {
		log_error("%s: a TCP listener needs tls_cert, tls_key and client_ca in [signer] "
			  "(mutual TLS only)",
			  cfg->path);
		bad = 1;
	}
	if ((cfg->ledger_password_file || cfg->ledger_lease) &&
	    (cfg->ledger_url == NULL || cfg->ledger_url[0] == '\0')) {
		log_error("%s: [ledger] password_file and lease_seconds need url (a PostgreSQL "
			  "ledger); without url the ledger is SQLite in state_dir",
			  cfg->path);
		bad = 1;
	}
	if (cfg->client_crl && !cfg->client_ca) {
		log_error("%s: client_crl needs client_ca in [signer] (its CRLs are checked against it)",
			  cfg->path);
		bad = 1;
	}
	return bad ? SFTCA_ERR_CONFIG : 0;
}

const struct authz_entry *config_authz_find(const struct signer_config *cfg, const char *cn)
{
	for (size_t i = 0; i < cfg->nauthz; i++)
		if (cfg->authz[i].cn && cfg->authz[i].pin == 0 && strcmp(cfg->authz[i].cn, cn) == 0)
			return &cfg->authz[i];
	return NULL;
}

const struct authz_entry *config_authz_find_pin(const struct signer_config *cfg, int pin,
						const unsigned char digest[32])
{
	for (size_t i = 0; i < cfg->nauthz; i++)
		if (cfg->authz[i].pin == pin && memcmp(cfg->authz[i].digest, digest, 32) == 0)
			return &cfg->authz[i];
	return NULL;
}

void config_free(struct signer_config *cfg)
{
	free(cfg->path);
	for (size_t i = 0; i < cfg->nlisten; i++)
		free(cfg->listen[i]);
	free(cfg->state_dir);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->client_ca);
	free(cfg->client_crl);
	free(cfg->user);
	free(cfg->module);
	free(cfg->token_label);
	free(cfg->pin_file);
	free(cfg->ledger_url);
	free(cfg->ledger_password_file);
	for (size_t i = 0; i < cfg->nauthz; i++) {
		free(cfg->authz[i].cn);
		for (size_t j = 0; j < cfg->authz[i].ncas; j++)
			free(cfg->authz[i].cas[j]);
		free(cfg->authz[i].cas);
	}
	memset(cfg, 0, sizeof(*cfg));
}
