/* The signer's INI configuration: every key, defaults, and a clear
 * FILE:LINE error for every kind of mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clientid.h"
#include "config.h"
#include "errors.h"
#include "log.h"

static char path[64];

static const char *write_file(const char *text)
{
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/sftca-test-config.XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

/* Load text; return the result and leave stderr output in errbuf. */
static int load(const char *text, struct signer_config *cfg, char *errbuf, size_t len)
{
	int pipefd[2], saved, r;
	ssize_t n;

	assert_int_equal(pipe(pipefd), 0);
	saved = dup(2);
	dup2(pipefd[1], 2);
	r = config_load(write_file(text), cfg);
	if (r == 0)
		r = config_validate(cfg);
	dup2(saved, 2);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], errbuf, len - 1);
	errbuf[n > 0 ? n : 0] = '\0';
	close(pipefd[0]);
	unlink(path);
	return r;
}

static const char full[] =
	"[signer]\n"
	"listen    = 127.0.0.1:7443              ; host:port (mutual TLS); repeatable\n"
	"listen    = unix:/run/sftca/signer.sock ; unix socket, mode 0660\n"
	"state_dir = /var/lib/sftca\n"
	"tls_cert  = /etc/sftca/signer.crt\n"
	"tls_key   = /etc/sftca/signer.key\n"
	"client_ca = /etc/sftca/clients-ca.crt\n"
	"sessions  = 3\n"
	"unix_role = auditor\n"
	"[pkcs11]\n"
	"module      = /usr/lib/softhsm/libsofthsm2.so\n"
	"token_label = sftca\n"
	"pin_file    = /etc/sftca/user.pin\n"
	"[limits]\n"
	"max_batch = 50\n"
	"issue_rate = 2.5\n"
	"[authz]\n"
	"; client certificate CN = role[:CA_ID[,CA_ID...]]\n"
	"ops-admin = admin\n"
	"fmc-east  = issuer:cdb123c8-4347-11ef-aca1-f3aa241412a1, 6bf1143a-8a2e-11ef-92d8-fd927e807d77\n"
	"fmc-west  = issuer\n"
	"auditor-1 = auditor\n";

static void full_config_parses(void **state)
{
	struct signer_config cfg;
	char err[1024];
	const struct authz_entry *e;

	(void)state;
	assert_int_equal(load(full, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.nlisten, 2);
	assert_string_equal(cfg.listen[0], "127.0.0.1:7443");
	assert_string_equal(cfg.listen[1], "unix:/run/sftca/signer.sock");
	assert_string_equal(cfg.state_dir, "/var/lib/sftca");
	assert_int_equal(cfg.sessions, 3);
	assert_int_equal(cfg.unix_role, ROLE_AUDITOR);
	assert_string_equal(cfg.token_label, "sftca");
	assert_int_equal(cfg.max_batch, 50);
	assert_true(cfg.issue_rate > 2.4 && cfg.issue_rate < 2.6);
	assert_int_equal(cfg.workers, 7); /* sessions + 4 */
	assert_int_equal(cfg.leaf_days, 3650);
	e = config_authz_find(&cfg, "fmc-east");
	assert_non_null(e);
	assert_int_equal(e->role, ROLE_ISSUER);
	assert_int_equal(e->ncas, 2);
	assert_string_equal(e->cas[1], "6bf1143a-8a2e-11ef-92d8-fd927e807d77");
	e = config_authz_find(&cfg, "fmc-west");
	assert_int_equal(e->role, ROLE_ISSUER);
	assert_int_equal(e->ncas, 0);
	assert_int_equal(config_authz_find(&cfg, "auditor-1")->role, ROLE_AUDITOR);
	assert_null(config_authz_find(&cfg, "nobody"));
	config_free(&cfg);
}

static void defaults(void **state)
{
	struct signer_config cfg;
	char err[1024];

	(void)state;
	assert_int_equal(load("[signer]\nlisten = unix:/tmp/s.sock\nstate_dir = /tmp/x\n"
			      "[pkcs11]\nmodule = m\ntoken_label = t\npin_file = p\n",
			      &cfg, err, sizeof(err)),
			 0);
	assert_int_equal(cfg.unix_role, ROLE_ADMIN);
	assert_int_equal(cfg.max_batch, 1000);
	assert_true(cfg.sessions >= 1);
	assert_int_equal(cfg.max_calls, 64);
	assert_int_equal(cfg.max_request, 4096);
	assert_int_equal(cfg.max_batch_request, cfg.max_message);
	assert_int_equal(cfg.max_calls_per_client, 16);
	assert_int_equal(cfg.admin_calls, 4);
	assert_int_equal(cfg.request_timeout, 30);
	assert_true(cfg.issue_rate == 0);
	config_free(&cfg);
}

/* [authz] keys pinned to a digest match only by digest, never as a CN. */
static void pinned_authz_entries(void **state)
{
	static const char hex[] = "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff";
	unsigned char d[32];
	struct signer_config cfg;
	char text[1024], err[1024];

	(void)state;
	snprintf(text, sizeof(text),
		 "[signer]\nlisten = unix:/tmp/s.sock\nstate_dir = /tmp/x\n"
		 "[pkcs11]\nmodule = m\ntoken_label = t\npin_file = p\n"
		 "[authz]\ncert-sha256/%s = admin\nspki-sha256/%s = auditor\nalice = issuer\n",
		 hex, hex);
	assert_int_equal(load(text, &cfg, err, sizeof(err)), 0);
	for (int i = 0; i < 32; i++)
		d[i] = (unsigned char)(i % 16 * 0x11);
	assert_int_equal(config_authz_find_pin(&cfg, CLIENTID_PIN_CERT, d)->role, ROLE_ADMIN);
	assert_int_equal(config_authz_find_pin(&cfg, CLIENTID_PIN_SPKI, d)->role, ROLE_AUDITOR);
	d[0] ^= 1;
	assert_null(config_authz_find_pin(&cfg, CLIENTID_PIN_CERT, d));
	snprintf(text, sizeof(text), "cert-sha256/%s", hex);
	assert_null(config_authz_find(&cfg, text));
	assert_int_equal(config_authz_find(&cfg, "alice")->role, ROLE_ISSUER);
	config_free(&cfg);
}

struct bad {
	const char *text, *message;
};

static void errors_name_file_line_and_problem(void **state)
{
	static const struct bad cases[] = {
		{ "[signer]\nstat_dir = /x\n", ":2: unknown key \"stat_dir\" in [signer]" },
		{ "[signr]\nlisten = x\n", ":2: unknown section [signr]" },
		{ "[signer]\nsessions = 2x\n", ":2: sessions = \"2x\": expected a whole number" },
		{ "[signer]\nsessions = 0\n", "from 1 to 256" },
		{ "[signer]\nunix_role = root\n", "unix_role = \"root\": must be admin" },
		{ "[authz]\na = superuser\n", "role must be admin, issuer or auditor" },
		{ "[authz]\na = issuer:not-a-uuid\n", "\"not-a-uuid\" is not a CA id" },
		{ "[authz]\na = admin:cdb123c8-4347-11ef-aca1-f3aa241412a1\n",
		  "only the issuer role can be limited" },
		{ "[authz]\na = admin\na = auditor\n", ":3: [authz] names \"a\" twice" },
		{ "[authz]\ncert-sha256/abcd = admin\n",
		  "[authz] cert-sha256/abcd: expected cert-sha256/ or spki-sha256/ and 64 hex digits" },
		{ "[limits]\nissue_rate = fast\n", "issue_rate = \"fast\"" },
		{ "[limits]\nmax_batch = 0\n", "max_batch = \"0\"" },
		{ "just text\n", ":1: syntax error" },
		{ "[signer]\nlisten = unix:/tmp/s.sock\nstate_dir = /x\n[pkcs11]\nmodule = m\n"
		  "token_label = t\n",
		  "[pkcs11] pin_file is required" },
		{ "[signer]\nlisten = 127.0.0.1:1\nstate_dir = /x\n[pkcs11]\nmodule = m\n"
		  "token_label = t\npin_file = p\n",
		  "a TCP listener needs tls_cert, tls_key and client_ca" },
		{ "[signer]\nlisten = unix:relative.sock\nstate_dir = /x\n[pkcs11]\nmodule = m\n"
		  "token_label = t\npin_file = p\n",
		  "a unix socket needs an absolute path" },
		{ "[ledger]\nuri = postgresql://x/y\n", ":2: unknown key \"uri\" in [ledger]" },
		{ "[ledger]\nlease_seconds = 2\n", "lease_seconds = \"2\"" },
		{ "[ledger]\nlease_seconds = 3601\n", "lease_seconds = \"3601\"" },
		{ "[signer]\nlisten = unix:/s.sock\nstate_dir = /x\n[pkcs11]\nmodule = m\n"
		  "token_label = t\npin_file = p\n[ledger]\npassword_file = /p\n",
		  "[ledger] password_file and lease_seconds need url" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct signer_config cfg;
		char err[2048];
		int r = load(cases[i].text, &cfg, err, sizeof(err));
		if (r != SFTCA_ERR_CONFIG || strstr(err, cases[i].message) == NULL)
			fail_msg("case %zu: r=%d, wanted '%s' in: %s", i, r, cases[i].message, err);
		config_free(&cfg);
	}
}

static void ledger_section(void **state)
{
	struct signer_config cfg;
	char err[1024];
	(void)state;
	assert_int_equal(load("[signer]\nlisten = unix:/s.sock\nstate_dir = /x\n[pkcs11]\n"
			      "module = m\ntoken_label = t\npin_file = p\n[ledger]\n"
			      "url = postgresql://sftca@db1,db2/sftca?target_session_attrs=read-write\n"
			      "password_file = /etc/sftca/ledger.pw\nlease_seconds = 10\n",
			      &cfg, err, sizeof(err)),
			 0);
	assert_string_equal(cfg.ledger_url,
			    "postgresql://sftca@db1,db2/sftca?target_session_attrs=read-write");
	assert_string_equal(cfg.ledger_password_file, "/etc/sftca/ledger.pw");
	assert_int_equal(cfg.ledger_lease, 10);
	config_free(&cfg);
	/* Without [ledger]: SQLite in state_dir. */
	assert_int_equal(load("[signer]\nlisten = unix:/s.sock\nstate_dir = /x\n[pkcs11]\n"
			      "module = m\ntoken_label = t\npin_file = p\n",
			      &cfg, err, sizeof(err)),
			 0);
	assert_null(cfg.ledger_url);
	config_free(&cfg);
}

static void long_lines_are_refused_not_split(void **state)
{
	char text[600], err[1024];
	struct signer_config cfg;

	(void)state;
	snprintf(text, sizeof(text), "[signer]\nstate_dir = /%0250d\n", 0);
	assert_int_equal(load(text, &cfg, err, sizeof(err)), SFTCA_ERR_CONFIG);
	assert_non_null(strstr(err, ":2: line longer than"));
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_config_parses),
		cmocka_unit_test(defaults),
		cmocka_unit_test(pinned_authz_entries),
		cmocka_unit_test(errors_name_file_line_and_problem),
		cmocka_unit_test(long_lines_are_refused_not_split),
		cmocka_unit_test(ledger_section),
	};
	log_init("test", LOG_STYLE_CLI, LOG_LVL_INFO);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
