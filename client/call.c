/* Calls to the signer: a channel from flags, environment or the client
 * configuration, and one unary call at a time under the global timeout. */
#include "client.h"

#include "log.h"
#include "tlsfiles.h"

#include <stdlib.h>
#include <string.h>

static const char *pick(const char *flag, const char *env, const char *file)
{
	const char *e = getenv(env);
	if (flag)
		return flag;
	if (e && e[0])
		return e;
	return file;
}

int client_signer_named(void)
{
	struct client_conf cf;
	int named;

	if (g_opts.signer || (getenv("SFTCA_SIGNER") && getenv("SFTCA_SIGNER")[0]))
		return 1;
	if (client_conf_load(&cf) != 0)
		return 0;
	named = cf.signer != NULL;
	client_conf_free(&cf);
	return named;
}

struct rpc_client *client_connect(void)
{
	struct client_conf cf;
	struct tls_files tf = { 0 };
	struct rpc_client_opts o = { 0 };
	struct rpc_client *c = NULL;
	const char *cert, *key, *ca;

	if (client_conf_load(&cf) != 0)
		return NULL;
	o.target = pick(g_opts.signer, "SFTCA_SIGNER", cf.signer);
	cert = pick(g_opts.tls_cert, "SFTCA_TLS_CERT", cf.tls_cert);
	key = pick(g_opts.tls_key, "SFTCA_TLS_KEY", cf.tls_key);
	ca = pick(g_opts.tls_ca, "SFTCA_TLS_CA", cf.tls_ca);
	if (o.target == NULL) {
		log_error("no signer address: use --signer ADDR, SFTCA_SIGNER, or signer = in "
			  "[client] of %s",
			  client_conf_path());
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
	client_conf_free(&cf);
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
