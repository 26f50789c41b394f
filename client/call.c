/* Calls to the signer: channels from flags, environment or the client
 * configuration, and one unary call at a time under a timeout. The address
 * may be a list of signers sharing one ledger; a call that finds its signer
 * out of reach moves on to the next one here, the one place the CLI makes
 * calls, so that no command carries its own failover. */
#include "client.h"

#include "log.h"
#include "tlsfiles.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct signer_conn {
	size_t n;
	char *addr[CLIENT_MAX_SIGNERS];
	struct rpc_client *rpc[CLIENT_MAX_SIGNERS];
	pthread_mutex_t mu; /* cur: calls of several threads share it (issue) */
	size_t cur;         /* the address that last worked (first at start) */
};

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

void client_close(struct signer_conn *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		rpc_client_free(c->rpc[i]);
		free(c->addr[i]);
	}
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/* Split "a,b,c" (blanks around an element ignored) into c->addr; refuses an
 * empty element, an address listed twice and more than CLIENT_MAX_SIGNERS,
 * naming where the list came from. */
static int split_list(struct signer_conn *c, const char *list, const char *from)
{
	const char *p = list;

	for (size_t k = 1;; k++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0) {
			log_error("signer list \"%s\" (%s): address %zu is empty (two commas together, "
				  "or a comma at an end)",
				  list, from, k);
			return -1;
		}
		if (c->n == CLIENT_MAX_SIGNERS) {
			log_error("signer list (%s) names more than %d addresses", from,
				  CLIENT_MAX_SIGNERS);
			return -1;
		}
		if ((c->addr[c->n] = strndup(p, len)) == NULL) {
			log_error("out of memory");
			return -1;
		}
		for (size_t i = 0; i < c->n; i++)
			if (strcmp(c->addr[i], c->addr[c->n]) == 0) {
				log_error("signer list (%s) names %s twice", from, c->addr[i]);
				free(c->addr[c->n]);
				c->addr[c->n] = NULL;
				return -1;
			}
		c->n++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

struct signer_conn *client_connect(void)
{
	struct client_conf cf;
	struct tls_files tf = { 0 };
	struct signer_conn *c = NULL;
	const char *list, *from, *cert, *key, *ca;
	char from_buf[300];
	int tcp = 0;

	if (client_conf_load(&cf) != 0)
		return NULL;
	list = pick(g_opts.signer, "SFTCA_SIGNER", cf.signer);
	cert = pick(g_opts.tls_cert, "SFTCA_TLS_CERT", cf.tls_cert);
	key = pick(g_opts.tls_key, "SFTCA_TLS_KEY", cf.tls_key);
	ca = pick(g_opts.tls_ca, "SFTCA_TLS_CA", cf.tls_ca);
	if (list == NULL) {
		log_error("no signer address: use --signer ADDR, SFTCA_SIGNER, or signer = in "
			  "[client] of %s",
			  client_conf_path());
		goto out;
	}
	if (list == g_opts.signer) {
		from = "--signer";
	} else if (list == cf.signer) {
		snprintf(from_buf, sizeof(from_buf), "signer = in [client] of %s",
			 client_conf_path());
		from = from_buf;
	} else {
		from = "SFTCA_SIGNER";
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_error("out of memory");
		goto out;
	}
	pthread_mutex_init(&c->mu, NULL);
	if (split_list(c, list, from) != 0)
		goto fail;
	for (size_t i = 0; i < c->n; i++)
		tcp |= strncmp(c->addr[i], "unix:", 5) != 0;
	/* Every TCP address is reached with the same identity and trust. */
	if (tcp) {
		if (!cert || !key || !ca) {
			log_error("signer %s is a TCP address: mutual TLS needs --tls-cert, "
				  "--tls-key and --tls-ca (or SFTCA_TLS_* or the client config)",
				  list);
			goto fail;
		}
		if (tls_files_load(cert, key, ca, &tf) != 0)
			goto fail;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct rpc_client_opts o = { .target = c->addr[i] };
		if (strncmp(c->addr[i], "unix:", 5) != 0) {
			o.cert_pem = tf.cert_pem;
			o.key_pem = tf.key_pem;
			o.ca_pem = tf.ca_pem;
		}
		/* gRPC connects on the first call, so an address never used costs
		 * nothing. */
		if ((c->rpc[i] = rpc_client_new(&o)) == NULL)
			goto fail;
	}
	goto out;
fail:
	client_close(c);
	c = NULL;
out:
	tls_files_clear(&tf);
	client_conf_free(&cf);
	return c;
}

/* The signer is out of reach, not answering: UNAVAILABLE (refused, reset,
 * handshake failed, gone mid-call), or a deadline that passed while the
 * channel never got connected (an address that swallows packets). Every
 * other status is the signer's answer and is not asked of another. */
static int outage(struct rpc_client *rpc, const struct rpc_result *res)
{
	if (res->status == GRPC_STATUS_UNAVAILABLE)
		return 1;
	return res->status == GRPC_STATUS_DEADLINE_EXCEEDED &&
	       grpc_channel_check_connectivity_state(rpc_client_channel(rpc), 0) !=
		       GRPC_CHANNEL_READY;
}

/* The next address after `from` that this call has not tried (tried is a
 * bit mask); another thread's newer choice first. c->n when none is left. */
static size_t next_untried(struct signer_conn *c, size_t from, unsigned tried)
{
	size_t cur;

	pthread_mutex_lock(&c->mu);
	cur = c->cur;
	pthread_mutex_unlock(&c->mu);
	if (cur != from && !(tried & (1u << cur)))
		return cur;
	for (size_t k = 1; k < c->n; k++) {
		size_t j = (from + k) % c->n;
		if (!(tried & (1u << j)))
			return j;
	}
	return c->n;
}

/* Make c->cur point at `to`, logging the switch from `from` (once). */
static void switch_to(struct signer_conn *c, size_t from, size_t to, const char *why)
{
	pthread_mutex_lock(&c->mu);
	if (c->cur == from && to != from) {
		c->cur = to;
		log_warn("signer %s: %s; switching to %s", c->addr[from], why, c->addr[to]);
	}
	pthread_mutex_unlock(&c->mu);
}

int client_move_on(struct signer_conn *c, size_t from, const char *why)
{
	if (c->n < 2 || from >= c->n)
		return -1;
	switch_to(c, from, (from + 1) % c->n, why);
	return 0;
}

int client_call_res(struct signer_conn *c, const char *method, const ProtobufCMessage *req,
		    const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
		    ProtobufCMessage **resp, struct rpc_result *res, size_t *used)
{
	char why[CLIENT_MAX_SIGNERS][256];
	unsigned tried = 0;
	size_t i;
	int r;

	pthread_mutex_lock(&c->mu);
	i = c->cur;
	pthread_mutex_unlock(&c->mu);
	for (;;) {
		size_t j;

		tried |= 1u << i;
		r = rpc_call(c->rpc[i], method, req, resp_desc, timeout_ms, resp, res);
		if (used)
			*used = i;
		if (r == 0 || !outage(c->rpc[i], res))
			return r;
		if (res->status == GRPC_STATUS_UNAVAILABLE && res->details[0] == '\0')
			snprintf(res->details, sizeof(res->details), "signer not reachable");
		snprintf(why[i], sizeof(why[i]), "%s: %.230s", rpc_status_name(res->status),
			 res->details);
		if ((j = next_untried(c, i, tried)) == c->n)
			break;
		switch_to(c, i, j, why[i]);
		i = j;
	}
	if (used)
		*used = SIZE_MAX;
	if (c->n > 1) {
		/* Every address failed: say what each one did, each in its share
		 * of the space. */
		size_t len, each;

		len = (size_t)snprintf(res->details, sizeof(res->details),
				       "no signer of %zu reachable:", c->n);
		each = (sizeof(res->details) - len) / c->n;
		for (size_t k = 0; k < c->n && len < sizeof(res->details); k++) {
			size_t room = sizeof(res->details) - len, a = strlen(c->addr[k]) + 5;
			int w = each > a ? (int)(each - a) : 0;

			len += (size_t)snprintf(res->details + len, room, " %s (%.*s)%s",
						c->addr[k], w, why[k], k + 1 < c->n ? ";" : "");
		}
	}
	return r;
}

int client_call(struct signer_conn *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
	struct rpc_result res;
	const char *short_name = strrchr(method, '/');
	int r = client_call_res(c, method, req, resp_desc, g_opts.timeout_s * 1000, resp, &res,
				NULL);

	if (r != 0)
		log_error("%s: %s: %s", short_name ? short_name + 1 : method,
			  rpc_status_name(res.status), res.details);
	return r;
}
