/* What the command line and the client configuration say: the options
 * every subcommand accepts (flags, then SFTCA_* environment, then --config
 * FILE or /etc/sftca/client.conf) and the known_hosts file for devices. */
#include "client.h"

#include "log.h"

#include <errno.h>
#include <ini.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CLIENT_CONF "/etc/sftca/client.conf"

struct global_opts g_opts = { .timeout_s = 120 };

/* The ini parser's context: the keys, and why a line was refused. */
struct conf_parse {
	struct client_conf *cf;
	char error[256];
};

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = user;
	struct client_conf *cf = p->cf;
	char **dst = NULL;

	if (strcmp(section, "client") != 0) {
		snprintf(p->error, sizeof(p->error), "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(name, "signer") == 0)
		dst = &cf->signer;
	else if (strcmp(name, "tls_cert") == 0)
		dst = &cf->tls_cert;
	else if (strcmp(name, "tls_key") == 0)
		dst = &cf->tls_key;
	else if (strcmp(name, "tls_ca") == 0)
		dst = &cf->tls_ca;
	else if (strcmp(name, "known_hosts") == 0)
		dst = &cf->known_hosts;
	if (dst == NULL) {
		snprintf(p->error, sizeof(p->error), "unknown key \"%s\" in [client]", name);
		return 0;
	}
	free(*dst);
	*dst = strdup(value);
	return *dst != NULL;
}

const char *client_conf_path(void)
{
	return g_opts.config ? g_opts.config : DEFAULT_CLIENT_CONF;
}

void client_conf_free(struct client_conf *cf)
{
	free(cf->signer);
	free(cf->tls_cert);
	free(cf->tls_key);
	free(cf->tls_ca);
	free(cf->known_hosts);
	memset(cf, 0, sizeof(*cf));
}

int client_conf_load(struct client_conf *cf)
{
	struct conf_parse p = { .cf = cf };
	const char *path = client_conf_path();
	int line;

	memset(cf, 0, sizeof(*cf));
	if (g_opts.config == NULL && access(path, F_OK) != 0)
		return 0;
	if ((line = ini_parse(path, conf_handler, &p)) != 0) {
		if (line < 0)
			log_error("client configuration %s cannot be read: %s", path,
				  strerror(errno));
		else
			log_error("%s:%d: %s", path, line, p.error[0] ? p.error : "syntax error");
		client_conf_free(cf);
		return -1;
	}
	return 0;
}

int client_known_hosts(const char *flag, char *buf, size_t len, char *source, size_t srclen)
{
	struct client_conf cf;
	struct passwd *pw;

	if (flag) {
		snprintf(buf, len, "%s", flag);
		snprintf(source, srclen, "--known-hosts");
		return 0;
	}
	if (client_conf_load(&cf) != 0)
		return -1;
	if (cf.known_hosts) {
		snprintf(buf, len, "%s", cf.known_hosts);
		snprintf(source, srclen, "known_hosts in [client] of %s", client_conf_path());
		client_conf_free(&cf);
		return 0;
	}
	client_conf_free(&cf);
	/* Not $HOME: under sudo -E it still names the invoking user's home,
	 * whose known_hosts that user can write. */
	if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL || pw->pw_dir[0] != '/') {
		log_error("no home directory for uid %ld in the password database: name the "
			  "known_hosts file with --known-hosts or known_hosts = in [client] of %s",
			  (long)getuid(), client_conf_path());
		return -1;
	}
	snprintf(buf, len, "%s/.ssh/known_hosts", strcmp(pw->pw_dir, "/") == 0 ? "" : pw->pw_dir);
	snprintf(source, srclen, "the home of %s (uid %ld) in the password database",
		 pw->pw_name ? pw->pw_name : "?", (long)getuid());
	return 0;
}

long parse_count(const char *opt, const char *v, long min, long max)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (v[0] == '\0' || *end != '\0' || errno != 0 || n < min || n > max) {
		log_error("%s \"%s\": expected a whole number from %ld to %ld", opt, v, min, max);
		return -1;
	}
	return n;
}

int global_opt(int c, const char *arg)
{
	long n;

	switch (c) {
	case 0x100: g_opts.signer = arg; return 1;
	case 0x101: g_opts.tls_cert = arg; return 1;
	case 0x102: g_opts.tls_key = arg; return 1;
	case 0x103: g_opts.tls_ca = arg; return 1;
	case 0x104: g_opts.config = arg; return 1;
	case 0x105: g_opts.json = 1; return 1;
	case 0x106:
		if ((n = parse_count("--timeout", arg, 1, 86400)) < 0)
			return -1;
		g_opts.timeout_s = (int)n;
		return 1;
	case 'v':
		g_opts.verbose = 1;
		log_set_level(LOG_LVL_DEBUG);
		return 1;
	default:
		return 0;
	}
}

void global_help(FILE *f)
{
	fprintf(f,
		"\nconnection (flags, else SFTCA_SIGNER/SFTCA_TLS_CERT/SFTCA_TLS_KEY/SFTCA_TLS_CA,\n"
		"else [client] in --config FILE or " DEFAULT_CLIENT_CONF "):\n"
		"  --signer ADDR[,ADDR]...  unix:/path or host:port (mutual TLS); a list (at most\n"
		"                     16) names signers sharing one ledger: a call that cannot\n"
		"                     reach one moves on to the next\n"
		"  --tls-cert FILE    client certificate   --tls-key FILE   its key (mode 0600)\n"
		"  --tls-ca FILE      CA of the signer's TLS certificate\n"
		"  --config FILE      client configuration file\n"
		"  --timeout SECONDS  per call (default 120)\n"
		"  --json             machine-readable output where a command reports\n"
		"  -v, --verbose      debug logging\n");
}
