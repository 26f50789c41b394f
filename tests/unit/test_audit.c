/* Audit log: records chain by hash; an edited byte, a removed or cut line,
 * a missing rotated file or a rewritten record under a signed checkpoint
 * fails verification; rotation and a restart continue the chain. The
 * checkpoint is signed here by a key of the test (no token). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/sha.h>

#include "audit.h"
#include "capture.h"
#include "errors.h"
#include "tmpdir.h"

static char dir[64], log_path[128], head_path[128];

static int setup(void **state)
{
	(void)state;
	tmpdir_make(dir, "audit");
	snprintf(log_path, sizeof(log_path), "%s/audit.log", dir);
	snprintf(head_path, sizeof(head_path), "%s/audit.head", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return tmpdir_remove(dir);
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	if (len)
		*len = n;
	return buf;
}

static void spew(const char *path, const char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Offset of the start of line k (1-based) of buf. */
static size_t line_at(const char *buf, unsigned k)
{
	const char *p = buf;

	while (--k > 0) {
		p = strchr(p, '\n');
		assert_non_null(p);
		p++;
	}
	return (size_t)(p - buf);
}

/* Keep lines 1 .. k-1 of the log. */
static void cut_before_line(unsigned k)
{
	size_t len;
	char *buf = slurp(log_path, &len);

	spew(log_path, buf, line_at(buf, k));
	free(buf);
}

static void write_records(unsigned from, unsigned to)
{
	struct audit *a = NULL;

	assert_int_equal(audit_open(dir, &a), 0);
	for (unsigned i = from; i <= to; i++) {
		char who[32];
		snprintf(who, sizeof(who), "user-%u", i);
		assert_int_equal(audit_log(a, "issue", who, "ca-1", "ok",
					   json_pack("{s:i}", "n", (int)i)),
				 0);
	}
	audit_close(a);
}

static int verify(unsigned long *lines, char *why, size_t whylen)
{
	return audit_verify_file(log_path, NULL, lines, why, whylen);
}

static void chain_verifies_and_continues(void **state)
{
	struct audit *a = NULL;
	unsigned long lines = 0;
	unsigned long long seq = 0;
	char why[512], prev[65], want[65], *buf;
	unsigned char md[SHA256_DIGEST_LENGTH];
	size_t len, last;

	(void)state;
	/* no log at all is not a log that verifies */
	assert_int_not_equal(verify(&lines, why, sizeof(why)), 0);
	write_records(1, 5);
	assert_int_equal(verify(&lines, why, sizeof(why)), 0);
	assert_int_equal(lines, 5);

	/* a restart goes on from the last record: seq 6, prev = hash of line 5 */
	assert_int_equal(audit_open(dir, &a), 0);
	audit_last(a, &seq, prev);
	assert_int_equal(seq, 5);
	buf = slurp(log_path, &len);
	last = line_at(buf, 5);
	SHA256((unsigned char *)buf + last, len - last - 1, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		snprintf(want + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(prev, want);
	free(buf);
	assert_int_equal(audit_log(a, "ca.rotate", "admin", NULL, "ok", NULL), 0);
	audit_close(a);
	assert_int_equal(verify(&lines, why, sizeof(why)), 0);
	assert_int_equal(lines, 6);
	buf = slurp(log_path, NULL);
	assert_non_null(strstr(buf + line_at(buf, 6), "\"seq\":6,"));
	assert_non_null(strstr(buf + line_at(buf, 6), want));
	free(buf);
}

static void edited_byte_detected(void **state)
{
	unsigned long lines;
	char why[512], *buf, *p;
	size_t len;

	(void)state;
	write_records(1, 5);
	buf = slurp(log_path, &len);
	/* user-3 becomes user-8 in line 3: still a well-formed record */
	p = strstr(buf + line_at(buf, 3), "user-3");
	assert_non_null(p);
	p[5] = '8';
	spew(log_path, buf, len);
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "line 4: chain broken"));

	/* the last line has no successor: the head file catches it */
	p[5] = '3';
	p = strstr(buf + line_at(buf, 5), "user-5");
	assert_non_null(p);
	p[5] = '9';
	spew(log_path, buf, len);
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "line 5: does not match"));

	p[5] = '5';
	spew(log_path, buf, len);
	assert_int_equal(verify(&lines, why, sizeof(why)), 0);
	free(buf);
}

static int open_and_close(void *arg)
{
	struct audit *a = NULL;
	int r = audit_open(dir, &a);

	*(int *)arg = a == NULL;
	audit_close(a);
	return r;
}

static void truncation_detected(void **state)
{
	unsigned long lines;
	char why[512], msg[4096], *buf;
	size_t len;
	int none = 0;

	(void)state;
	write_records(1, 5);
	buf = slurp(log_path, &len);

	/* whole records cut from the end */
	spew(log_path, buf, line_at(buf, 4));
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "records were removed from the end"));

	/* cut in mid-line: verification and start-up both refuse */
	spew(log_path, buf, len - 10);
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "line 5: partial line at the end"));
	assert_int_equal(capture_stderr(open_and_close, &none, msg, sizeof(msg)), SFTCA_ERR_VERIFY);
	assert_true(none);
	assert_non_null(strstr(msg, "audit.log ends in a partial line"));

	/* a record removed from the middle */
	memmove(buf + line_at(buf, 2), buf + line_at(buf, 3), len - line_at(buf, 3) + 1);
	spew(log_path, buf, strlen(buf));
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "line 2: not a record in sequence"));
	free(buf);
}

static void free_set(char **set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(set[i]);
	free(set);
}

static void rotation_continues_chain(void **state)
{
	struct audit *a = NULL;
	unsigned long lines;
	char why[512], p[160], **set;
	size_t n;

	(void)state;
	assert_null(audit_rotated_set(log_path, &n));
	assert_int_equal(audit_open(dir, &a), 0);
	audit_set_limits(a, 400, 0); /* about two records a file */
	for (int i = 0; i < 10; i++)
		assert_int_equal(audit_log(a, "issue", "user", "ca-1", "ok", NULL), 0);
	audit_close(a);

	set = audit_rotated_set(log_path, &n);
	assert_non_null(set);
	assert_true(n >= 4);
	snprintf(p, sizeof(p), "%s.1", log_path);
	assert_string_equal(set[0], p);
	assert_string_equal(set[n - 1], log_path);
	assert_int_equal(audit_verify_set((const char *const *)set, n, NULL, &lines, why,
					  sizeof(why)),
			 0);
	assert_int_equal(lines, 10);
	/* audit.log alone does not start the chain */
	assert_int_equal(verify(&lines, why, sizeof(why)), SFTCA_ERR_VERIFY);
	/* a rotated file left out of the set */
	assert_int_equal(audit_verify_set((const char *const *)set + 1, n - 1, NULL, &lines, why,
					  sizeof(why)),
			 SFTCA_ERR_VERIFY);
	assert_int_equal(audit_verify_set((const char *const *)set, 1, head_path, &lines, why,
					  sizeof(why)),
			 SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "records were removed from the end"));

	/* a stop right after a rotation leaves audit.log empty: the chain
	 * goes on from the last rotated file */
	snprintf(p, sizeof(p), "%s.%zu", log_path, n);
	assert_int_equal(rename(log_path, p), 0);
	spew(log_path, "", 0);
	free_set(set, n);
	assert_int_equal(audit_open(dir, &a), 0);
	assert_int_equal(audit_log(a, "issue", "user", "ca-1", "ok", NULL), 0);
	audit_close(a);
	set = audit_rotated_set(log_path, &n);
	assert_int_equal(audit_verify_set((const char *const *)set, n, NULL, &lines, why,
					  sizeof(why)),
			 0);
	assert_int_equal(lines, 11);
	free_set(set, n);
}

static void denials_coalesced(void **state)
{
	struct audit *a = NULL;
	unsigned long lines;
	char why[512], *buf;

	(void)state;
	assert_int_equal(audit_open(dir, &a), 0);
	assert_int_equal(audit_denied(a, "mallory", "Issue", "10.0.0.1", "no role"), 1);
	assert_int_equal(audit_denied(a, "mallory", "Issue", "10.0.0.2", "no role"), 0);
	assert_int_equal(audit_denied(a, "mallory", "Issue", "10.0.0.3", "no role"), 0);
	assert_int_equal(audit_denied(a, "mallory", "Revoke", "10.0.0.3", "no role"), 1);
	audit_close(a); /* writes the held count */
	assert_int_equal(verify(&lines, why, sizeof(why)), 0);
	assert_int_equal(lines, 3);
	buf = slurp(log_path, NULL);
	assert_non_null(strstr(buf + line_at(buf, 3), "\"event\":\"refused.repeat\""));
	assert_non_null(strstr(buf + line_at(buf, 3), "\"count\":2,"));
	assert_non_null(strstr(buf + line_at(buf, 3), "\"last_peer\":\"10.0.0.3\""));
	free(buf);
}

static void text_kept_as_utf8(void **state)
{
	json_t *j = audit_text("peer-\xff\xfe");

	(void)state;
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "peer-\\xff\\xfe");
	json_decref(j);
	j = audit_text("plain");
	assert_string_equal(json_string_value(j), "plain");
	json_decref(j);
	assert_null(audit_text(NULL));
}

/* Write DIR/audit.anchor for record seq with hash, signed by k. */
static void write_anchor(EVP_PKEY *k, unsigned long long seq, const char *hash)
{
	char first[128], path[128], out[1024];
	unsigned char sig[256], b64[400];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int n;

	snprintf(first, sizeof(first), "%llu %s 1700000000", seq, hash);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, (unsigned char *)first, strlen(first)), 1);
	EVP_MD_CTX_free(md);
	n = EVP_EncodeBlock(b64, sig, (int)siglen);
	snprintf(path, sizeof(path), "%s/audit.anchor", dir);
	n = snprintf(out, sizeof(out), "%s\nsig %.*s\n", first, n, (char *)b64);
	spew(path, out, (size_t)n);
}

static void signed_checkpoint(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	struct audit *a = NULL;
	unsigned long long seq;
	unsigned long lines;
	char why[512], prev[65];
	const char *set[1] = { log_path };

	(void)state;
	assert_non_null(k);
	assert_non_null(other);
	write_records(1, 3);
	assert_int_equal(audit_open(dir, &a), 0);
	audit_last(a, &seq, prev);
	audit_close(a);
	write_anchor(k, seq, prev);
	write_records(4, 5);

	assert_int_equal(audit_verify_signed(set, 1, NULL, k, &lines, why, sizeof(why)), 0);
	assert_int_equal(lines, 5);
	assert_int_equal(audit_verify_signed(set, 1, NULL, other, &lines, why, sizeof(why)),
			 SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "does not verify with the audit key"));

	/* the log rewritten from record 3 on, chain and head recomputed (as
	 * one with write access but not the token could): only the
	 * checkpoint tells */
	cut_before_line(3);
	assert_int_equal(audit_open(dir, &a), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_log(a, "issue", "forger", "ca-1", "ok", NULL), 0);
	audit_close(a);
	assert_int_equal(audit_verify_file(log_path, NULL, &lines, why, sizeof(why)), 0);
	assert_int_equal(audit_verify_signed(set, 1, NULL, k, &lines, why, sizeof(why)),
			 SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "line 3: differs from the record the audit key signed"));

	/* records removed to before the checkpoint */
	cut_before_line(3);
	assert_int_equal(audit_verify_signed(set, 1, NULL, k, &lines, why, sizeof(why)),
			 SFTCA_ERR_VERIFY);
	assert_non_null(strstr(why, "the audit key signed record 3"));
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(chain_verifies_and_continues, setup, teardown),
		cmocka_unit_test_setup_teardown(edited_byte_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(truncation_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(rotation_continues_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(denials_coalesced, setup, teardown),
		cmocka_unit_test(text_kept_as_utf8),
		cmocka_unit_test_setup_teardown(signed_checkpoint, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
