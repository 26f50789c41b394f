/* The signer's configuration file (INI, DESIGN.md section 7). */
#ifndef SFTCA_SIGNER_CONFIG_H
#define SFTCA_SIGNER_CONFIG_H

#include <stddef.h>

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_AUTHZ 256
#define CONFIG_MAX_AUTHZ_CAS 64

enum role { ROLE_NONE = 0, ROLE_AUDITOR = 1, ROLE_ISSUER = 2, ROLE_ADMIN = 3 };

struct authz_entry {
	char *cn;     /* the [authz] key: a CN, or cert-sha256/HEX, spki-sha256/HEX */
	int pin;      /* 0: by CN; CLIENTID_PIN_CERT / _SPKI: by digest */
	unsigned char digest[32];
	enum role role;
	char **cas;   /* issuer limited to these CA ids; none = all */
	size_t ncas;
};

struct signer_config {
	char *path;
	/* [signer] */
	char *listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	char *state_dir;
	char *tls_cert, *tls_key, *client_ca;
	char *client_crl;        /* CRLs against client certificates (optional; SIGHUP reloads) */
	int sessions;            /* token sessions; default = online CPUs */
	enum role unix_role;     /* every caller on a unix socket */
	char *user;              /* drop to this user after binding (optional) */
	/* [pkcs11] */
	char *module, *token_label, *pin_file;
	/* [ledger] (absent: SQLite in state_dir) */
	char *ledger_url;           /* a libpq URI: PostgreSQL, shared by several signers */
	char *ledger_password_file; /* its password, mode-checked like the PIN file */
	unsigned ledger_lease;      /* seconds; 0 = 30 */
	/* [limits] */
	unsigned max_batch;      /* items per IssueBatch (1000) */
	size_t max_message;      /* bytes per gRPC message (16 MiB) */
	size_t max_csr;          /* bytes per CSR (16 KiB) */
	size_t max_request;      /* bytes per request, every method but IssueBatch (4 KiB) */
	size_t max_batch_request; /* bytes per IssueBatch request (max_message) */
	unsigned max_calls;      /* calls in flight before RESOURCE_EXHAUSTED (64) */
	unsigned max_calls_per_client; /* of those, from one identity (16) */
	unsigned admin_calls;    /* of those, kept for admins (4; never all) */
	unsigned request_timeout; /* seconds from a call's headers to its whole body (30) */
	unsigned workers;        /* handler threads (sessions + 4) */
	double issue_rate;       /* IssueBatch calls per second per client, 0 = unlimited */
	unsigned issue_burst;    /* token-bucket depth for issue_rate */
	unsigned leaf_days;      /* default leaf validity (3650) */
	/* [audit] */
	size_t audit_rotate_bytes;      /* rotate audit.log past this size (64 MiB) */
	unsigned audit_coalesce_seconds; /* denials per identity+method: one record per interval (60; 0 = each) */
	int audit_coalesce_set;
	/* [authz] */
	struct authz_entry authz[CONFIG_MAX_AUTHZ];
	size_t nauthz;
};

/* Parse path into cfg (zeroed first). Every error is logged as
 * "FILE:LINE: what is wrong"; returns SFTCA_ERR_CONFIG. */
int config_load(const char *path, struct signer_config *cfg) __attribute__((warn_unused_result));
/* Same from len bytes of text (not necessarily NUL-terminated; parsing
 * stops at a NUL as it does for a file); name is used in messages and kept
 * as cfg->path. */
int config_parse_string(const char *name, const char *text, size_t len, struct signer_config *cfg)
	__attribute__((warn_unused_result));
/* Check cross-field rules (listeners need TLS files, unix_role, ...). */
int config_validate(const struct signer_config *cfg) __attribute__((warn_unused_result));
void config_free(struct signer_config *cfg);

const char *role_name(enum role r);
/* Role parsed from "admin" / "issuer" / "auditor"; ROLE_NONE if unknown. */
enum role role_parse(const char *s);
/* The [authz] entry for a client certificate CN, or NULL. */
const struct authz_entry *config_authz_find(const struct signer_config *cfg, const char *cn);
/* The entry pinned (CLIENTID_PIN_CERT or _SPKI) to this SHA-256, or NULL. */
const struct authz_entry *config_authz_find_pin(const struct signer_config *cfg, int pin,
						const unsigned char digest[32]);

#endif
