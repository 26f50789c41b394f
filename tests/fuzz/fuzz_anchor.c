/* sftca-signer verify-audit --key (signer/audit.c): the signed checkpoint
 * audit.anchor, read beside an audit log, both arbitrary bytes. The audit
 * key is an EC P-256 key made at start-up; with bit 0 of byte 0 set the
 * harness signs the checkpoint's first line with it (as signer/anchor.c
 * does), so the checks behind the signature are reached; with bit 1 set it
 * writes audit.head for the log as the signer would (count of lines, hash
 * of the last), so a log can pass. Byte 1 is the length of the checkpoint
 * text that follows; the rest is the log. Files live in a directory under
 * /dev/shm, removed at exit.
 * Checks: 0 or SFTCA_ERR_VERIFY with a reason; a log passes only with a
 * checkpoint the key signed, only when it is whole lines without NULs, one
 * record each, and when the checkpoint names record N >= 1, the log has N
 * records and the hash it names is that of record N. */
#include "fuzz_common.h"

#include "audit.h"
#include "errors.h"

#include <ctype.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <unistd.h>

static EVP_PKEY *key;
static char dir[64], logp[96], anchorp[96], headp[96];

static void cleanup(void)
{
	unlink(logp);
	unlink(anchorp);
	unlink(headp);
	rmdir(dir);
	EVP_PKEY_free(key);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fuzz_log_setup("fuzz_anchor");
	snprintf(dir, sizeof(dir), "/dev/shm/sftca-fuzz-anchor.XXXXXX");
	if (mkdtemp(dir) == NULL || (key = EVP_EC_gen("P-256")) == NULL) {
		perror("fuzz_anchor: set-up");
		abort();
	}
	snprintf(logp, sizeof(logp), "%s/audit.log", dir);
	snprintf(anchorp, sizeof(anchorp), "%s/audit.anchor", dir);
	snprintf(headp, sizeof(headp), "%s/audit.head", dir);
	atexit(cleanup);
	return 0;
}

static void put(const char *path, const void *a, size_t alen, const void *b, size_t blen)
{
	FILE *f = fopen(path, "w");

	if (f == NULL || fwrite(a, 1, alen, f) != alen || fwrite(b, 1, blen, f) != blen ||
	    fclose(f) != 0)
		abort();
}

static void sha256_hex(const void *p, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;

	if (EVP_Digest(p, len, md, &n, EVP_sha256(), NULL) != 1)
		abort();
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* The checkpoint file: line, then its signature by the key, then tail. */
static size_t signed_checkpoint(const char *text, size_t len, char *out, size_t outlen)
{
	const char *nl = memchr(text, '\n', len);
	size_t ll = nl ? (size_t)(nl - text) : len, tail = nl ? len - ll - 1 : 0, o;
	unsigned char der[160];
	size_t dlen = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &dlen, (const unsigned char *)text, ll) != 1)
		abort();
	EVP_MD_CTX_free(md);
	memcpy(out, text, ll);
	o = ll + (size_t)snprintf(out + ll, outlen - ll, "\nsig ");
	o += (size_t)EVP_EncodeBlock((unsigned char *)out + o, der, (int)dlen);
	out[o++] = '\n';
	memcpy(out + o, nl ? nl + 1 : "", tail);
	return o + tail;
}

/* Start and length of line n (1-based) of log, or -1. */
static int log_line(const char *log, size_t len, unsigned long long n, const char **p, size_t *ll)
{
	const char *s = log, *nl;

	for (unsigned long long i = 1;; i++) {
		if ((nl = memchr(s, '\n', (size_t)(log + len - s))) == NULL)
			return -1;
		if (i == n) {
			*p = s;
			*ll = (size_t)(nl - s);
			return 0;
		}
		s = nl + 1;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char cp[600], why[512], hash[65];
	const char *text, *log;
	size_t tlen, loglen, cplen, nl = 0;
	unsigned long lines = 12345;
	const char *paths[1] = { logp };
	int sign, head, r;

	if (size < 2)
		return 0;
	sign = data[0] & 1;
	head = data[0] & 2;
	tlen = data[1] < size - 2 ? data[1] : size - 2;
	text = (const char *)data + 2;
	log = text + tlen;
	loglen = size - 2 - tlen;

	cplen = sign ? signed_checkpoint(text, tlen, cp, sizeof(cp)) : (memcpy(cp, text, tlen), tlen);
	put(anchorp, cp, cplen, "", 0);
	put(logp, log, loglen, "", 0);
	for (size_t i = 0; i < loglen; i++)
		nl += log[i] == '\n';
	if (head) {
		const char *last = log;
		size_t ll = 0;
		char line[96];
		if (nl > 0 && log_line(log, loglen, nl, &last, &ll) != 0)
			abort();
		sha256_hex(last, ll, hash);
		if (nl == 0)
			memset(hash, '0', 64), hash[64] = '\0';
		snprintf(line, sizeof(line), "%zu %s\n", nl, hash);
		put(headp, line, strlen(line), "", 0);
	} else {
		unlink(headp);
	}

	memset(why, 'x', sizeof(why));
	r = audit_verify_signed(paths, 1, headp, key, &lines, why, sizeof(why));
	log_debug("verify-audit --key: %d, %lu lines: %s", r, lines, why);
	FUZZ_CHECK(fuzz_terminated(why, sizeof(why)));
	if (r != 0) {
		FUZZ_CHECK(r == SFTCA_ERR_VERIFY);
		FUZZ_CHECK(why[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(why[0] == '\0');
	/* Only the key's holder makes a checkpoint that passes. */
	FUZZ_CHECK(sign);
	/* Nothing unchecked: the log is whole lines, one record each. */
	FUZZ_CHECK(loglen == 0 || log[loglen - 1] == '\n');
	FUZZ_CHECK(memchr(log, '\0', loglen) == NULL);
	FUZZ_CHECK(lines == nl);
	/* The signed line "SEQ HASH ...": record SEQ is there and has HASH. */
	if (tlen > 0 && isdigit((unsigned char)text[0])) {
		const char *nl1 = memchr(text, '\n', tlen), *end = nl1 ? nl1 : text + tlen;
		char first[256];
		unsigned long long seq;
		const char *h = text, *rec;
		size_t hl = 0, rl;
		char want[65];

		memcpy(first, text, (size_t)(end - text));
		first[end - text] = '\0';
		seq = strtoull(first, NULL, 10);

		while (h < end && isdigit((unsigned char)*h))
			h++;
		while (h < end && isspace((unsigned char)*h))
			h++;
		while (h + hl < end && hl < 64 && h[hl] != '\0' && !isspace((unsigned char)h[hl]))
			hl++;
		if (seq >= 1) {
			FUZZ_CHECK(seq <= lines);
			FUZZ_CHECK(log_line(log, loglen, seq, &rec, &rl) == 0);
			sha256_hex(rec, rl, want);
			FUZZ_CHECK(hl == 64 && memcmp(h, want, 64) == 0);
		}
	}
	return 0;
}
