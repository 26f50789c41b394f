/* bench_issue: sftca end to end. Pre-generates KEYS CSRs (outside the
 * clock), then sends COUNT certificates to the signer in IssueBatch calls of
 * BATCH items, CONCURRENCY calls in flight, over the same transport a
 * client uses (mutual TLS, or a unix socket), and prints certificates/s.
 * Every item must come back issued.
 *
 *   bench_issue SIGNER CERT KEY CA CA_ID COUNT BATCH CONCURRENCY KEYS
 *   (CERT/KEY/CA may be "-" for a unix: SIGNER)
 */
#include "fileio.h"
#include "log.h"
#include "rpc.h"
#include "sftca/v1/signer.pb-c.h"
#include "uuid.h"

#include <grpc/grpc.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct csr {
	unsigned char *der;
	int len;
};

static struct rpc_client *client;
static struct csr *csrs;
static int ncsrs, batch;
static const char *ca_id;
static atomic_long remaining, issued, failed;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_csr(struct csr *c)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	X509_REQ *req = X509_REQ_new();

	X509_REQ_set_version(req, 0);
	X509_REQ_set_pubkey(req, k);
	X509_REQ_sign(req, k, EVP_sha256());
	c->der = NULL;
	c->len = i2d_X509_REQ(req, &c->der);
	X509_REQ_free(req);
	EVP_PKEY_free(k);
}

static void *caller(void *arg)
{
	Sftca__V1__IssueItem *items = calloc((size_t)batch, sizeof(*items));
	Sftca__V1__IssueItem **ptrs = calloc((size_t)batch, sizeof(*ptrs));
	char (*uuids)[UUID_STR_LEN + 1] = calloc((size_t)batch, sizeof(*uuids));
	unsigned seed = (unsigned)(uintptr_t)arg;

	for (;;) {
		Sftca__V1__IssueBatchRequest q = SFTCA__V1__ISSUE_BATCH_REQUEST__INIT;
		ProtobufCMessage *resp = NULL;
		struct rpc_result res;
		long n = atomic_fetch_sub(&remaining, batch);

		if (n <= 0)
			break;
		if (n > batch)
			n = batch;
		for (long i = 0; i < n; i++) {
			const struct csr *c = &csrs[rand_r(&seed) % ncsrs];
			sftca__v1__issue_item__init(&items[i]);
			if (uuid_random(uuids[i]) != 0)
				abort();
			items[i].peer_uuid = uuids[i];
			items[i].csr_der.data = c->der;
			items[i].csr_der.len = (size_t)c->len;
			ptrs[i] = &items[i];
		}
		q.ca_id = (char *)ca_id;
		q.items = ptrs;
		q.n_items = (size_t)n;
		if (rpc_call(client, "/sftca.v1.Signer/IssueBatch", &q.base,
			     &sftca__v1__issue_batch_response__descriptor, 600000, &resp, &res) != 0) {
			fprintf(stderr, "bench_issue: %s: %s\n", rpc_status_name(res.status), res.details);
			atomic_fetch_add(&failed, n);
			continue;
		}
		{
			const Sftca__V1__IssueBatchResponse *r = (const void *)resp;
			for (size_t i = 0; i < r->n_results; i++) {
				if (r->results[i]->code == 0)
					atomic_fetch_add(&issued, 1);
				else
					atomic_fetch_add(&failed, 1);
			}
		}
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	free(items);
	free(ptrs);
	free(uuids);
	return NULL;
}

static char *slurp(const char *path)
{
	char *b = NULL;
	size_t l;
	if (strcmp(path, "-") == 0)
		return NULL;
	if (file_read_all(path, 1 << 20, &b, &l) != 0)
		exit(2);
	return b;
}

int main(int argc, char **argv)
{
	struct rpc_client_opts o = { 0 };
	long count;
	int conc;
	pthread_t t[64];
	double t0, t1;

	if (argc != 10) {
		fprintf(stderr, "usage: bench_issue SIGNER CERT KEY CA CA_ID COUNT BATCH CONCURRENCY KEYS\n");
		return 2;
	}
	log_init("bench_issue", LOG_STYLE_CLI, LOG_LVL_WARN);
	o.target = argv[1];
	o.cert_pem = slurp(argv[2]);
	o.key_pem = slurp(argv[3]);
	o.ca_pem = slurp(argv[4]);
	ca_id = argv[5];
	count = strtol(argv[6], NULL, 10);
	batch = (int)strtol(argv[7], NULL, 10);
	conc = (int)strtol(argv[8], NULL, 10);
	ncsrs = (int)strtol(argv[9], NULL, 10);
	if (count < 1 || batch < 1 || conc < 1 || conc > 64 || ncsrs < 1)
		return 2;
	csrs = calloc((size_t)ncsrs, sizeof(*csrs));
	for (int i = 0; i < ncsrs; i++)
		make_csr(&csrs[i]);
	grpc_init();
	if ((client = rpc_client_new(&o)) == NULL)
		return 1;
	atomic_store(&remaining, count);
	t0 = now_s();
	for (int i = 0; i < conc; i++)
		pthread_create(&t[i], NULL, caller, (void *)(uintptr_t)(i + 1));
	for (int i = 0; i < conc; i++)
		pthread_join(t[i], NULL);
	t1 = now_s();
	rpc_client_free(client);
	grpc_shutdown_blocking();
	/* Freed for LeakSanitizer: the concurrency test runs this under ASan. */
	for (int i = 0; i < ncsrs; i++)
		OPENSSL_free(csrs[i].der);
	free(csrs);
	free((char *)o.cert_pem);
	free((char *)o.key_pem);
	free((char *)o.ca_pem);
	if (atomic_load(&failed) || atomic_load(&issued) != count) {
		fprintf(stderr, "bench_issue: %ld issued, %ld failed of %ld\n", atomic_load(&issued),
			atomic_load(&failed), count);
		return 1;
	}
	printf("%.1f\n", (double)count / (t1 - t0));
	return 0;
}
