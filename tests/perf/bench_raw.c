/* bench_raw: the token's own RSA signing rate through libp11, the way
 * DESIGN.md section 8 measures it: THREADS threads (one session each) sign
 * SHA-256 digests with the key labelled LABEL for SECONDS, and the
 * signatures per second are printed. This is the physical limit sftca's
 * end-to-end rate is compared against.
 *
 *   bench_raw MODULE TOKEN_LABEL PIN_FILE KEY_LABEL THREADS SECONDS
 */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "fileio.h"
#include "log.h"

#include <libp11.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static EVP_PKEY *key;
static atomic_long total;
static atomic_int stop;
static atomic_int failures;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *signer(void *arg)
{
	unsigned char digest[32], sig[1024];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

	(void)arg;
	RAND_bytes(digest, sizeof(digest));
	if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0) {
		atomic_fetch_add(&failures, 1);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		size_t len = sizeof(sig);
		if (EVP_PKEY_sign(ctx, sig, &len, digest, sizeof(digest)) <= 0) {
			atomic_fetch_add(&failures, 1);
			break;
		}
		atomic_fetch_add(&total, 1);
	}
	EVP_PKEY_CTX_free(ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots, *slot = NULL;
	PKCS11_KEY *keys;
	unsigned nslots, nkeys;
	char *pin;
	size_t pinlen;
	int threads, seconds;
	pthread_t t[64];
	double t0, t1;

	if (argc != 7) {
		fprintf(stderr, "usage: bench_raw MODULE TOKEN_LABEL PIN_FILE KEY_LABEL THREADS SECONDS\n");
		return 2;
	}
	log_init("bench_raw", LOG_STYLE_CLI, LOG_LVL_WARN);
	threads = (int)strtol(argv[5], NULL, 10);
	seconds = (int)strtol(argv[6], NULL, 10);
	if (threads < 1 || threads > 64 || seconds < 1)
		return 2;
	ctx = PKCS11_CTX_new();
	if (PKCS11_CTX_load(ctx, argv[1]) != 0 || PKCS11_enumerate_slots(ctx, &slots, &nslots) != 0) {
		fprintf(stderr, "bench_raw: cannot load %s\n", argv[1]);
		return 1;
	}
	for (unsigned i = 0; i < nslots; i++)
		if (slots[i].token && strcmp(slots[i].token->label, argv[2]) == 0)
			slot = &slots[i];
	if (slot == NULL || secret_read_file(argv[3], &pin, &pinlen) != 0 ||
	    PKCS11_open_session(slot, 0) != 0 || PKCS11_login(slot, 0, pin) != 0) {
		fprintf(stderr, "bench_raw: token %s not usable\n", argv[2]);
		return 1;
	}
	secret_free(pin, pinlen);
	if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0)
		return 1;
	for (unsigned i = 0; i < nkeys; i++)
		if (keys[i].label && strcmp(keys[i].label, argv[4]) == 0 && keys[i].isPrivate)
			key = PKCS11_get_private_key(&keys[i]);
	if (key == NULL) {
		fprintf(stderr, "bench_raw: no private key labelled %s\n", argv[4]);
		return 1;
	}
	t0 = now_s();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, signer, NULL);
	while (now_s() - t0 < seconds)
		nanosleep(&(struct timespec){ 0, 50000000 }, NULL);
	atomic_store(&stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	t1 = now_s();
	if (atomic_load(&failures)) {
		fprintf(stderr, "bench_raw: %d signing threads failed\n", atomic_load(&failures));
		return 1;
	}
	printf("%.1f\n", (double)atomic_load(&total) / (t1 - t0));
	EVP_PKEY_free(key);
	PKCS11_logout(slot);
	PKCS11_release_all_slots(ctx, slots, nslots);
	PKCS11_CTX_unload(ctx);
	PKCS11_CTX_free(ctx);
	return 0;
}
