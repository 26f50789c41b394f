/* rpcprobe: raw calls to the signer for tests (health checks, refusals,
 * hostile request bytes). Not installed.
 *
 *   rpcprobe [--signer ADDR] [--tls-cert F --tls-key F] [--tls-ca F] health
 *   rpcprobe ... call METHOD [HEXBYTES]
 *   rpcprobe ... issue CA_ID OUTDIR UUID=CSR.der...
 *       one IssueBatch; prints "ITEM i STATUS serial message" per item and
 *       writes each certificate to OUTDIR/i.pem
 *
 * Prints "STATUS_NAME details" and, for health, the serving status; exits 0
 * when the call completed with OK, 1 otherwise. */
#include "errors.h"
#include "fileio.h"
#include "grpc/health/v1/health.pb-c.h"
#include "log.h"
#include "rpc.h"
#include "sftca/v1/signer.pb-c.h"

#include <getopt.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <grpc/grpc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path)
{
	char *buf = NULL;
	size_t len;

	if (path == NULL)
		return NULL;
	if (file_read_all(path, 1 << 20, &buf, &len) != 0) {
		fprintf(stderr, "rpcprobe: cannot read %s\n", path);
		exit(2);
	}
	return buf;
}

static unsigned char *unhex(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	unsigned char *b = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "rpcprobe: bad hex\n");
			exit(2);
		}
		b[i] = (unsigned char)v;
	}
	*len = n;
	return b;
}

static int probe_issue(struct rpc_client *c, const char *ca, const char *outdir, int n,
		       char **items, int timeout, ProtobufCMessage **resp, struct rpc_result *res)
{
	Sftca__V1__IssueBatchRequest q = SFTCA__V1__ISSUE_BATCH_REQUEST__INIT;
	Sftca__V1__IssueItem *it = calloc((size_t)n, sizeof(*it));
	Sftca__V1__IssueItem **ptrs = calloc((size_t)n, sizeof(*ptrs));
	const Sftca__V1__IssueBatchResponse *r;
	int rc;

	for (int i = 0; i < n; i++) {
		char *eq = strchr(items[i], '='), *der = NULL;
		size_t len = 0;
		if (eq == NULL) {
			fprintf(stderr, "rpcprobe: item %d is not UUID=FILE\n", i);
			exit(2);
		}
		*eq = '\0';
		if (file_read_all(eq + 1, 1 << 20, &der, &len) != 0)
			exit(2);
		sftca__v1__issue_item__init(&it[i]);
		it[i].peer_uuid = items[i];
		it[i].csr_der.data = (uint8_t *)der;
		it[i].csr_der.len = len;
		ptrs[i] = &it[i];
	}
	q.ca_id = (char *)ca;
	q.items = ptrs;
	q.n_items = (size_t)n;
	rc = rpc_call(c, "/sftca.v1.Signer/IssueBatch", &q.base,
		      &sftca__v1__issue_batch_response__descriptor, timeout, resp, res);
	printf("%s %s\n", rpc_status_name(res->status), res->details);
	if (rc == 0) {
		r = (const void *)*resp;
		for (size_t i = 0; i < r->n_results; i++) {
			const Sftca__V1__IssueResult *ir = r->results[i];
			printf("ITEM %zu %s %s %s\n", i, rpc_status_name((grpc_status_code)ir->code),
			       ir->serial[0] ? ir->serial : "-", ir->message);
			if (ir->cert_der.len) {
				char path[4096];
				const unsigned char *p = ir->cert_der.data;
				X509 *x = d2i_X509(NULL, &p, (long)ir->cert_der.len);
				FILE *f;
				snprintf(path, sizeof(path), "%s/%zu.pem", outdir, i);
				if (x && (f = fopen(path, "w")) != NULL) {
					PEM_write_X509(f, x);
					fclose(f);
				}
				X509_free(x);
			}
		}
	}
	for (int i = 0; i < n; i++)
		free(it[i].csr_der.data);
	free(it);
	free(ptrs);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "signer", required_argument, NULL, 's' }, { "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' }, { "tls-ca", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 },
	};
	const char *cert = NULL, *key = NULL, *ca = NULL;
	struct rpc_client_opts o = { 0 };
	struct rpc_client *c;
	struct rpc_result res;
	ProtobufCMessage *resp = NULL;
	unsigned char *req = NULL;
	size_t reqlen = 0;
	int ch, timeout = 10000, r;

	log_init("rpcprobe", LOG_STYLE_CLI, LOG_LVL_WARN);
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 's': o.target = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 't': timeout = (int)strtol(optarg, NULL, 10) * 1000; break;
		default: return 2;
		}
	}
	if (o.target == NULL || optind >= argc)
		return 2;
	o.cert_pem = slurp(cert);
	o.ca_pem = slurp(ca);
	if (key) { /* tests only: the key's mode is not this tool's business */
		size_t klen;
		char *k = NULL;
		if (file_read_all(key, 1 << 20, &k, &klen) != 0)
			return 2;
		o.key_pem = k;
	}
	grpc_init();
	if ((c = rpc_client_new(&o)) == NULL)
		return 2;
	if (strcmp(argv[optind], "health") == 0) {
		Grpc__Health__V1__HealthCheckRequest q = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		r = rpc_call(c, "/grpc.health.v1.Health/Check", &q.base,
			     &grpc__health__v1__health_check_response__descriptor, timeout, &resp, &res);
		if (r == 0) {
			const Grpc__Health__V1__HealthCheckResponse *h = (const void *)resp;
			printf("%s\n", h->status == 1 ? "SERVING" : h->status == 2 ? "NOT_SERVING"
										  : "UNKNOWN");
		} else {
			printf("%s %s\n", rpc_status_name(res.status), res.details);
		}
	} else if (strcmp(argv[optind], "call") == 0 && optind + 1 < argc) {
		if (optind + 2 < argc)
			req = unhex(argv[optind + 2], &reqlen);
		r = rpc_call_raw(c, argv[optind + 1], req ? req : (const unsigned char *)"", reqlen,
				 &sftca__v1__get_status_response__descriptor, timeout, &resp, &res);
		/* The reply type differs per method; only the status matters here. */
		if (r == SFTCA_ERR_INVALID && res.status == GRPC_STATUS_OK)
			r = 0;
		printf("%s %s\n", rpc_status_name(res.status), res.details);
	} else if (strcmp(argv[optind], "issue") == 0 && optind + 3 < argc) {
		r = probe_issue(c, argv[optind + 1], argv[optind + 2], argc - optind - 3,
				argv + optind + 3, timeout, &resp, &res);
	} else {
		return 2;
	}
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	rpc_client_free(c);
	grpc_shutdown_blocking();
	free(req);
	return r == 0 ? 0 : 1;
}
