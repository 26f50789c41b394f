/* Where the signer is and how to prove who we are: flags, then
 * SFTCA_* environment, then --config FILE or /etc/sftca/client.conf. */
#include "client.h"

#include "atomicfile.h"
#include "errors.h"
#include "log.h"
#include "tlsfiles.h"

#include <errno.h>
#include <ini.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CLIENT_CONF "/etc/sftca/client.conf"

struct global_opts g_opts = { .timeout_s = 120 };

struct file_conf {
	char *signer, *tls_cert, *tls_key, *tls_ca, *known_hosts;
	char error[256];
};

static int conf_handler(void *user, const char *section, const char *name, const char *value)
{
	struct file_conf *fc = user;
	char **dst = NULL;

	if (strcmp(section, "client") != 0) {
		snprintf(fc->error, sizeof(fc->error), "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(name, "signer") == 0)
		dst = &fc->signer;
	else if (strcmp(name, "tls_cert") == 0)
		dst = &fc->tls_cert;
	else if (strcmp(name, "tls_key") == 0)
		dst = &fc->tls_key;
	else if (strcmp(name, "tls_ca") == 0)
		dst = &fc->tls_ca;
	else if (strcmp(name, "known_hosts") == 0)
		dst = &fc->known_hosts;
	if (dst == NULL) {
		snprintf(fc->error, sizeof(fc->error), "unknown key \"%s\" in [client]", name);
		return 0;
	}
	free(*dst);
	*dst = strdup(value);
	return *dst != NULL;
}

static void file_conf_free(struct file_conf *fc)
{
	free(fc->signer);
	free(fc->tls_cert);
	free(fc->tls_key);
	free(fc->tls_ca);
	free(fc->known_hosts);
}

/* Load the client config file; a missing default file is not an error. */
static int load_file_conf(struct file_conf *fc)
{
	const char *path = g_opts.config ? g_opts.config : DEFAULT_CLIENT_CONF;
	int line;

	memset(fc, 0, sizeof(*fc));
	if (g_opts.config == NULL && access(path, F_OK) != 0)
		return 0;
	if ((line = ini_parse(path, conf_handler, fc)) != 0) {
		if (line < 0)
			log_error("client configuration %s cannot be read: %s", path,
				  strerror(errno));
		else
			log_error("%s:%d: %s", path, line, fc->error[0] ? fc->error : "syntax error");
		file_conf_free(fc);
		return -1;
	}
	return 0;
}

static const char *pick(const char *flag, const char *env, const char *file)
{
	const char *e = getenv(env);
	if (flag)
		return flag;
	if (e && e[0])
		return e;
	return file;
}

int client_known_hosts(const char *flag, char *buf, size_t len, char *source, size_t srclen)
{
	struct file_conf fc;
	struct passwd *pw;

	if (flag) {
		snprintf(buf, len, "%s", flag);
		snprintf(source, srclen, "--known-hosts");
		return 0;
	}
	if (load_file_conf(&fc) != 0)
		return -1;
	if (fc.known_hosts) {
		snprintf(buf, len, "%s", fc.known_hosts);
		snprintf(source, srclen, "known_hosts in [client] of %s",
			 g_opts.config ? g_opts.config : DEFAULT_CLIENT_CONF);
		file_conf_free(&fc);
		return 0;
	}
	file_conf_free(&fc);
	/* Not $HOME: under sudo -E it still names the invoking user's home,
	 * whose known_hosts that user can write. */
	if ((pw = getpwuid(getuid())) == NULL || pw->pw_dir == NULL || pw->pw_dir[0] != '/') {
		log_error("no home directory for uid %ld in the password database: name the "
			  "known_hosts file with --known-hosts or known_hosts = in [client] of %s",
			  (long)getuid(), g_opts.config ? g_opts.config : DEFAULT_CLIENT_CONF);
		return -1;
	}
	snprintf(buf, len, "%s/.ssh/known_hosts", strcmp(pw->pw_dir, "/") == 0 ? "" : pw->pw_dir);
	snprintf(source, srclen, "the home of %s (uid %ld) in the password database",
		 pw->pw_name ? pw->pw_name : "?", (long)getuid());
	return 0;
}

struct rpc_client *client_connect(void)
{
	struct file_conf fc;
	struct tls_files tf = { 0 };
	struct rpc_client_opts o = { 0 };
	struct rpc_client *c = NULL;
	const char *cert, *key, *ca;

	if (load_file_conf(&fc) != 0)
		return NULL;
	o.target = pick(g_opts.signer, "SFTCA_SIGNER", fc.signer);
	cert = pick(g_opts.tls_cert, "SFTCA_TLS_CERT", fc.tls_cert);
	key = pick(g_opts.tls_key, "SFTCA_TLS_KEY", fc.tls_key);
	ca = pick(g_opts.tls_ca, "SFTCA_TLS_CA", fc.tls_ca);
	if (o.target == NULL) {
		log_error("no signer address: use --signer ADDR, SFTCA_SIGNER, or signer = in "
			  "[client] of %s",
			  g_opts.config ? g_opts.config : DEFAULT_CLIENT_CONF);
		goto out;
	}
	if (strncmp(o.target, "unix:", 5) != 0) {
		if (!cert || !key || !ca) {
			log_error("signer %s is a TCP address: mutual TLS needs --tls-cert, "
				  "--tls-key and --tls-ca (or SFTCA_TLS_* or the client config)",
				  o.target);
			goto out;
		}
		if (tls_files_load(cert, key, ca, &tf) != 0)
			goto out;
		o.cert_pem = tf.cert_pem;
		o.key_pem = tf.key_pem;
		o.ca_pem = tf.ca_pem;
	}
	c = rpc_client_new(&o);
out:
	tls_files_clear(&tf);
	file_conf_free(&fc);
	return c;
}

int client_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
	struct rpc_result res;
	const char *short_name = strrchr(method, '/');
	int r = rpc_call(c, method, req, resp_desc, g_opts.timeout_s * 1000, resp, &res);

	if (r != 0) {
		if (res.status == GRPC_STATUS_UNAVAILABLE && res.details[0] == '\0')
			snprintf(res.details, sizeof(res.details), "signer not reachable");
		log_error("%s: %s: %s", short_name ? short_name + 1 : method,
			  rpc_status_name(res.status), res.details);
	}
	return r;
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

void fmt_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

int write_output_file(const char *path, const void *data, size_t len)
{
	char dir[4096], name[4096];
	struct af_file f;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir) ||
	    (size_t)snprintf(name, sizeof(name), "%s", path) >= sizeof(name)) {
		log_error("%s: path too long", path);
		return -1;
	}
	f.name = basename(name);
	f.data = data;
	f.len = len;
	f.mode = 0644;
	if (af_write(dirname(dir), &f, NULL) != 0) {
		log_error("%s could not be written", path);
		return -1;
	}
	return 0;
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
		"  --signer ADDR      unix:/path or host:port (mutual TLS)\n"
		"  --tls-cert FILE    client certificate   --tls-key FILE   its key (mode 0600)\n"
		"  --tls-ca FILE      CA of the signer's TLS certificate\n"
		"  --config FILE      client configuration file\n"
		"  --timeout SECONDS  per call (default 120)\n"
		"  --json             machine-readable output where a command reports\n"
		"  -v, --verbose      debug logging\n");
}
