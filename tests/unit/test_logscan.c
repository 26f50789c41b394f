/* The sftunnel log scanner: the seed's FTD and FMC lines, variants, gzip,
 * CRLF, garbage, NULs, long lines and lines split across feeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "errors.h"
#include "logread.h"
#include "logscan.h"
#include "textclean.h"

/* The seed's lines, truncated as the article prints them. */
#define FTD "Sep 20 04:10:47 FTD-hostname SF-IMS[50792]: [51982] sftunnel:sf_ssl "
#define FMC "Sep 20 03:14:23 FMC-hostname SF-IMS[1504]: [4171] sftunnel:sf_ssl "

static const char ftd_seed[] =
	FTD "[INFO] Initiating IPv4 connection\n"
	FTD "[INFO] Wait to connect to 8305 (IP\n"
	FTD "[INFO] Connected to 10.10.200.31 f\n"
	FTD "[ERROR] -Error with certificate at\n"
	FTD "[ERROR] issuer = /title=Intern\n"
	FTD "[ERROR] subject = /title=Intern\n"
	FTD "[ERROR] err 10:certificate has e\n"
	FTD "[ERROR] SSL_renegotiate error: 1:\n"
	FTD "[ERROR] Connect:SSL handshake fail\n"
	FTD "[WARN] SSL Verification status: ce\n";

static const char fmc_seed[] =
	FMC "[INFO] VERIFY ssl_verify_callback_in\n"
	FMC "[ERROR] SSL_renegotiate error: 1: er\n"
	FMC "[WARN] establishConnectionUtil: SSL\n"
	FMC "[WARN] establishConnectionUtil: SSL\n"
	FMC "[WARN] establishConnectionUtil: SSL\n"
	FMC "[INFO] establishConnectionUtil: Fail\n"
	FMC "[ERROR] establishSSLConnection: Unab\n"
	FMC "[ERROR] establishSSLConnection: ret_\n"
	FMC "[ERROR] establishSSLConnection: ired\n"
	FMC "[ERROR] establishSSLConnection: Fail\n";

#define CA "cdb123c8-4347-11ef-aca1-f3aa241412a1"

static struct logscan *scan(const char *text, size_t len)
{
	struct logscan *ls = logscan_new();

	assert_non_null(ls);
	assert_int_equal(logscan_feed(ls, text, len), 0);
	assert_int_equal(logscan_finish(ls), 0);
	return ls;
}

static struct logscan *scan_str(const char *text)
{
	return scan(text, strlen(text));
}

static const struct logscan_finding *by_id(const struct logscan *ls, const char *id)
{
	for (size_t i = 0; i < logscan_count(ls); i++)
		if (strcmp(logscan_finding(ls, i)->id, id) == 0)
			return logscan_finding(ls, i);
	return NULL;
}

static int has_value(const struct logscan_values *v, const char *text, unsigned long count)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->v[i].text, text) == 0)
			return v->v[i].count == count;
	return 0;
}

static int steps_contain(const struct logscan_finding *f, const char *needle)
{
	const struct logscan_remedy *r = logscan_remedy(f);

	for (size_t i = 0; r && r->steps[i]; i++)
		if (strstr(r->steps[i], needle))
			return 1;
	return 0;
}

/* Every finding's text is valid UTF-8 without control characters. */
static void assert_clean(const struct logscan *ls)
{
	for (size_t i = 0; i < logscan_count(ls); i++) {
		const struct logscan_finding *f = logscan_finding(ls, i);
		const struct logscan_values *sets[] = { &f->hosts, &f->peers, &f->issuers,
							&f->subjects, &f->ca_ids, &f->details };
		for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
			for (size_t k = 0; k < sets[s]->n; k++) {
				const char *t = sets[s]->v[k].text;
				char *c = text_clean(t, strlen(t), 0);
				assert_non_null(c);
				assert_string_equal(c, t);
				free(c);
			}
		}
		assert_non_null(logscan_remedy(f));
	}
}

static void ftd_seed_lines(void **state)
{
	struct logscan *ls = scan_str(ftd_seed);
	const struct logscan_finding *f;

	(void)state;
	assert_int_equal(logscan_lines(ls), 10);
	assert_int_equal(logscan_count(ls), 3);
	f = by_id(ls, "cert_expired");
	assert_non_null(f);
	assert_int_equal(f->kind, LOGSCAN_VERIFY_ERROR);
	assert_int_equal(f->code, 10);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->first, "Sep 20 04:10:47");
	assert_string_equal(f->last, "Sep 20 04:10:47");
	assert_true(strstr(f->title, "certificate has expired") != NULL);
	assert_true(has_value(&f->hosts, "FTD-hostname", 1));
	assert_true(has_value(&f->peers, "10.10.200.31", 1));
	assert_true(has_value(&f->issuers, "/title=Intern", 1));
	assert_true(has_value(&f->subjects, "/title=Intern", 1));
	assert_true(has_value(&f->details, "certificate has e", 1));
	assert_true(f->subject_is_ca); /* "subject = /title=Intern": the InternalCA */
	assert_true(steps_contain(f, "sftca ca renew --ca <FMC-UUID>"));
	assert_true(steps_contain(f, "sftca issue"));
	assert_true(steps_contain(f, "sftca push"));

	f = by_id(ls, "ssl_handshake_failed");
	assert_non_null(f);
	assert_int_equal(f->count, 1);
	assert_true(has_value(&f->peers, "10.10.200.31", 1));

	f = by_id(ls, "ssl_verification_failed");
	assert_non_null(f);
	assert_int_equal(f->count, 1);
	assert_true(has_value(&f->details, "ce", 1));
	assert_clean(ls);
	logscan_free(ls);
}

static void fmc_seed_lines_are_one_event(void **state)
{
	struct logscan *ls = scan_str(fmc_seed);
	const struct logscan_finding *f;

	(void)state;
	assert_int_equal(logscan_count(ls), 1);
	f = by_id(ls, "fmc_connect_failed");
	assert_non_null(f);
	/* Four establishSSLConnection lines of one process in one second. */
	assert_int_equal(f->count, 1);
	assert_string_equal(f->first, "Sep 20 03:14:23");
	assert_true(has_value(&f->hosts, "FMC-hostname", 1));
	assert_true(steps_contain(f, "--live"));
	logscan_free(ls);
}

/* The FMC's side of an expired CA, with the OpenSSL reason the seed's lines
 * cut off: the device's alert, on the SSL_renegotiate line (OpenSSL 1.1
 * wording) and on an establishSSLConnection line of the same second; then
 * another device that does not trust the FMC's CA (OpenSSL 3 wording). */
static void fmc_tls_alerts(void **state)
{
	static const char text[] =
		FMC "[ERROR] SSL_renegotiate error: 1: error:14094415:SSL routines:ssl3_read_bytes:sslv3 alert certificate expired\n"
		FMC "[ERROR] establishSSLConnection: Unable to connect to 10.10.200.41:8305\n"
		FMC "[ERROR] establishSSLConnection: ret_code -1 reason certificate expired\n"
		"Sep 20 03:16:02 FMC-hostname SF-IMS[1504]: [4172] sftunnel:sf_ssl [ERROR] SSL_renegotiate error: 1: error:0A000418:SSL routines::tlsv1 alert unknown ca\n"
		"Sep 20 03:16:02 FMC-hostname SF-IMS[1504]: [4172] sftunnel:sf_ssl [ERROR] establishSSLConnection: Unable to connect to 10.10.200.42:8305\n"
		/* Not an alert, not an SSL error line: the words alone are not a finding. */
		"Sep 20 03:17:00 FMC-hostname SF-IMS[1504]: [4173] sftunnel:sf_ssl [INFO] watching for certificate expired peers\n";
	struct logscan *ls = scan_str(text);
	const struct logscan_finding *f;

	(void)state;
	f = by_id(ls, "tls_alert_certificate_expired");
	assert_non_null(f);
	assert_int_equal(f->kind, LOGSCAN_TLS_ALERT);
	assert_int_equal(f->code, 45);
	assert_int_equal(f->count, 1); /* two lines of one process in one second */
	assert_true(strstr(f->title, "certificate expired") != NULL);
	assert_true(has_value(&f->hosts, "FMC-hostname", 1));
	assert_true(has_value(&f->details, "certificate expired", 1));
	assert_true(steps_contain(f, "sftca ca renew --ca <FMC-UUID>"));

	f = by_id(ls, "tls_alert_unknown_ca");
	assert_non_null(f);
	assert_int_equal(f->code, 48);
	assert_int_equal(f->count, 1);
	assert_string_equal(f->first, "Sep 20 03:16:02");
	assert_true(steps_contain(f, "--bundle"));
	assert_false(steps_contain(f, "ca renew"));

	f = by_id(ls, "fmc_connect_failed");
	assert_non_null(f);
	assert_int_equal(f->count, 2);
	assert_true(has_value(&f->peers, "10.10.200.41", 1));
	assert_int_equal(logscan_count(ls), 3);
	logscan_free(ls);
}

/* Three reconnects, the way a device retries: count, first, last. */
static void repeated_attempts(void **state)
{
	static const char *const stamps[] = { "Sep 20 04:10:47", "Sep 20 04:11:17",
					      "Sep 21 00:00:05" };
	char buf[8192];
	size_t off = 0;
	struct logscan *ls;
	const struct logscan_finding *f;

	(void)state;
	for (size_t i = 0; i < 3; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off,
					"%s ftd-1 SF-IMS[50792]: [51982] sftunnel:sf_ssl [ERROR] err "
					"10:certificate has expired\n"
					"%s ftd-1 SF-IMS[50792]: [51982] sftunnel:sf_ssl [ERROR] "
					"Connect:SSL handshake failed\n",
					stamps[i], stamps[i]);
	ls = scan(buf, off);
	f = by_id(ls, "cert_expired");
	assert_non_null(f);
	assert_int_equal(f->count, 3);
	assert_string_equal(f->first, "Sep 20 04:10:47");
	assert_string_equal(f->last, "Sep 21 00:00:05");
	assert_true(has_value(&f->hosts, "ftd-1", 3));
	assert_true(has_value(&f->details, "certificate has expired", 3));
	assert_int_equal(by_id(ls, "ssl_handshake_failed")->count, 3);
	logscan_free(ls);
}

/* Full (untruncated) lines: other verify errors, the CA's UUID, peers. */
#define FTD2 "Oct  2 10:00:01 ftd-2 SF-IMS[7]: [8] sftunnel:sf_ssl "
#define FTD3 "ftd-3 SF-IMS[9]: [9] sftunnel:sf_ssl "
#define FMC2 "fmc SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] "
#define PEER "6bf1143a-8a2e-11ef-92d8-fd927e807d77"

static void full_lines_and_other_errors(void **state)
{
	static const char text[] =
		FTD2 "[INFO] Wait to connect to 8305 (IP address: 192.0.2.10)\n"
		FTD2 "[ERROR] -Error with certificate at depth: 1\n"
		FTD2 "[ERROR] issuer = /title=InternalCA/OU=Intrusion Management System/CN=" CA
		     "/O=Cisco Systems, Inc.\n"
		FTD2 "[ERROR] subject = /OU=Intrusion Management System/CN=" PEER
		     "/O=Cisco Systems, Inc.\n"
		FTD2 "[ERROR] err 20:unable to get local issuer certificate\n"
		"Oct  2 10:00:02 " FTD3 "[ERROR] err 7:certificate signature failure\n"
		"Oct  2 10:00:03 " FTD3 "[ERROR] err 19:self signed certificate in certificate chain\n"
		"Oct  2 10:00:04 " FTD3 "[ERROR] err 9:certificate is not yet valid\n"
		"Oct  2 10:00:05 " FTD3 "[ERROR] err 24:invalid CA certificate\n"
		"Oct  2 10:00:06 " FMC2 "establishSSLConnection: Unable to connect to 198.51.100.7:8305\n"
		"Oct  2 10:00:06 " FMC2 "establishSSLConnection: Failed\n"
		"Oct  2 10:00:09 " FMC2 "establishSSLConnection: Failed\n";
	struct logscan *ls = scan_str(text);
	const struct logscan_finding *f;

	(void)state;
	f = by_id(ls, "unable_to_get_local_issuer");
	assert_non_null(f);
	assert_int_equal(f->code, 20);
	assert_true(has_value(&f->peers, "192.0.2.10", 1));
	assert_true(has_value(&f->ca_ids, CA, 1));
	assert_true(has_value(&f->subjects,
			      "/OU=Intrusion Management System/CN=" PEER "/O=Cisco Systems, Inc.", 1));
	assert_true(steps_contain(f, "sftca push"));
	assert_false(f->subject_is_ca); /* a peer certificate */
	assert_non_null(by_id(ls, "signature_failure"));
	assert_non_null(by_id(ls, "self_signed_in_chain"));
	assert_non_null(by_id(ls, "cert_not_yet_valid"));
	f = by_id(ls, "verify_error_24");
	assert_non_null(f);
	assert_non_null(logscan_remedy(f));
	/* The names of ftd-2's error do not leak to ftd-3's. */
	assert_int_equal(by_id(ls, "signature_failure")->issuers.n, 0);
	f = by_id(ls, "fmc_connect_failed");
	assert_non_null(f);
	assert_int_equal(f->count, 2);
	assert_string_equal(f->first, "Oct  2 10:00:06");
	assert_string_equal(f->last, "Oct  2 10:00:09");
	assert_true(has_value(&f->peers, "198.51.100.7", 1));
	assert_clean(ls);
	logscan_free(ls);
}

/* issuer/subject logged after the error rather than before it. */
static void names_after_the_error(void **state)
{
	static const char text[] =
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 10:certificate has expired\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] issuer = /CN=" CA "\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] subject = /CN=leaf\n";
	struct logscan *ls = scan_str(text);
	const struct logscan_finding *f = by_id(ls, "cert_expired");

	(void)state;
	assert_non_null(f);
	assert_true(has_value(&f->issuers, "/CN=" CA, 1));
	assert_true(has_value(&f->subjects, "/CN=leaf", 1));
	assert_true(has_value(&f->ca_ids, CA, 1));
	logscan_free(ls);
}

/* An expired CRL: the remedy writes one that lasts a year, like sftca
 * issue does, not the week `sftca crl` gives by default. */
static void crl_expired_remedy(void **state)
{
	static const char text[] =
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 12:CRL has expired\n";
	struct logscan *ls = scan_str(text);
	const struct logscan_finding *f = by_id(ls, "crl_expired");

	(void)state;
	assert_non_null(f);
	assert_true(steps_contain(f, "sftca crl --ca <FMC-UUID> --days 365 --out /etc/sf/ca_root/crl.pem"));
	logscan_free(ls);
}

static void unrelated_and_healthy_lines(void **state)
{
	static const char text[] =
		"Sep 20 04:10:47 ftd sshd[1]: err 10:certificate has expired\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [INFO] SSL Verification status: OK\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [INFO] Connected to 10.0.0.1 from 10.0.0.2\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] SSL_renegotiate error: 1: error\n"
		"Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [INFO] establishSSLConnection: connected\n";
	struct logscan *ls = scan_str(text);

	(void)state;
	assert_int_equal(logscan_lines(ls), 5);
	assert_int_equal(logscan_count(ls), 0);
	logscan_free(ls);
}

static void crlf_lines(void **state)
{
	char buf[4096];
	size_t o = 0;
	struct logscan *ls;
	const struct logscan_finding *f;

	(void)state;
	for (const char *p = ftd_seed; *p; p++) {
		if (*p == '\n')
			buf[o++] = '\r';
		buf[o++] = *p;
	}
	ls = scan(buf, o);
	f = by_id(ls, "cert_expired");
	assert_non_null(f);
	assert_int_equal(f->count, 1);
	assert_true(has_value(&f->details, "certificate has e", 1));
	assert_true(has_value(&f->peers, "10.10.200.31", 1));
	assert_int_equal(logscan_count(ls), 3);
	logscan_free(ls);
}

/* Byte by byte, and in every two-piece split: the same result as whole. */
static void lines_split_across_feeds(void **state)
{
	size_t len = strlen(ftd_seed);
	struct logscan *ls = logscan_new();

	(void)state;
	for (size_t i = 0; i < len; i++)
		assert_int_equal(logscan_feed(ls, ftd_seed + i, 1), 0);
	assert_int_equal(logscan_finish(ls), 0);
	assert_int_equal(logscan_count(ls), 3);
	assert_true(has_value(&by_id(ls, "cert_expired")->issuers, "/title=Intern", 1));
	logscan_free(ls);

	for (size_t cut = 0; cut <= len; cut += 7) {
		ls = logscan_new();
		assert_int_equal(logscan_feed(ls, ftd_seed, cut), 0);
		assert_int_equal(logscan_feed(ls, ftd_seed + cut, len - cut), 0);
		assert_int_equal(logscan_finish(ls), 0);
		assert_int_equal(logscan_count(ls), 3);
		assert_int_equal(by_id(ls, "cert_expired")->count, 1);
		logscan_free(ls);
	}
}

static void last_line_without_newline(void **state)
{
	static const char text[] = "Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 10:x";
	struct logscan *ls = logscan_new();

	(void)state;
	assert_int_equal(logscan_feed(ls, text, strlen(text)), 0);
	assert_int_equal(logscan_count(ls), 0); /* not complete yet */
	assert_int_equal(logscan_finish(ls), 0);
	assert_int_equal(logscan_count(ls), 1);
	/* A second input after finish starts afresh and adds up. */
	assert_int_equal(logscan_feed(ls, text, strlen(text)), 0);
	assert_int_equal(logscan_finish(ls), 0);
	assert_int_equal(by_id(ls, "cert_expired")->count, 2);
	assert_int_equal(logscan_lines(ls), 2);
	logscan_free(ls);
}

static void nuls_and_bad_utf8(void **state)
{
	static const char text[] =
		"Sep 20 04:10:47 ftd\xff\x1b[31m SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] "
		"err 10:cert\0ificate \xc3\x28 has\x07 expired\n";
	struct logscan *ls = scan(text, sizeof(text) - 1);
	const struct logscan_finding *f = by_id(ls, "cert_expired");

	(void)state;
	assert_non_null(f);
	assert_true(has_value(&f->details, "cert?ificate ?( has? expired", 1));
	assert_true(has_value(&f->hosts, "ftd??[31m", 1));
	assert_clean(ls);
	logscan_free(ls);
}

static void long_lines(void **state)
{
	size_t big = 3 * LOGSCAN_MAX_LINE + 17;
	char *buf = malloc(big + 512);
	struct logscan *ls = logscan_new();
	const char *tail = "\nSep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 20:x\n";
	const char *head = "Sep 20 04:10:47 ftd SF-IMS[1]: [2] sftunnel:sf_ssl [ERROR] err 10:";
	size_t n;

	(void)state;
	assert_non_null(buf);
	/* A long line that starts with an error: its start still counts. */
	n = strlen(head);
	memcpy(buf, head, n);
	memset(buf + n, 'A', big - n);
	memcpy(buf + big, tail, strlen(tail));
	n = big + strlen(tail);
	assert_int_equal(logscan_feed(ls, buf, n / 2), 0);
	assert_int_equal(logscan_feed(ls, buf + n / 2, n - n / 2), 0);
	assert_int_equal(logscan_finish(ls), 0);
	assert_int_equal(logscan_lines(ls), 2);
	assert_int_equal(logscan_long_lines(ls), 1);
	assert_int_equal(by_id(ls, "cert_expired")->count, 1);
	assert_int_equal(by_id(ls, "unable_to_get_local_issuer")->count, 1);
	assert_true(by_id(ls, "cert_expired")->details.v[0].text[0] == 'A');
	logscan_free(ls);
	free(buf);
}

/* Deterministic garbage with NULs and newlines, with and without sftunnel
 * markers sprinkled in: no crash, no overrun (run under ASan in CI). */
static void garbage_does_not_crash(void **state)
{
	static const char *const bits[] = { "sftunnel", "err ", "10:", "issuer = ", "subject=",
					    "Connected to ", "connect to 8305", "::", "1.2.3.4",
					    "Sep 20 04:10:47 ", "SSL Verification status:",
					    "establishSSLConnection", "SSL handshake fail", "\n",
					    "-Error with certificate", "CN=", "num=99:", "[" };
	size_t len = 1 << 20;
	char *buf = malloc(len);
	uint32_t x = 2463534242u;
	struct logscan *ls = logscan_new();

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < len;) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		if (x % 7 == 0) {
			const char *b = bits[(x >> 8) % (sizeof(bits) / sizeof(bits[0]))];
			size_t bl = strlen(b);
			if (i + bl > len)
				break;
			memcpy(buf + i, b, bl);
			i += bl;
		} else {
			buf[i++] = (char)(x >> 16);
		}
	}
	for (size_t off = 0; off < len;) {
		size_t piece = 1 + (off * 2654435761u) % 5000;
		if (piece > len - off)
			piece = len - off;
		assert_int_equal(logscan_feed(ls, buf + off, piece), 0);
		off += piece;
	}
	assert_int_equal(logscan_finish(ls), 0);
	assert_true(logscan_count(ls) <= LOGSCAN_MAX_FINDINGS);
	assert_clean(ls);
	logscan_free(ls);
	free(buf);
}

/* ---- gzip through logread ---- */

static size_t gzip_mem(const char *in, size_t len, unsigned char *out, size_t cap)
{
	z_stream z;

	memset(&z, 0, sizeof(z));
	assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	deflateEnd(&z);
	return cap - z.avail_out;
}

static int sink(void *arg, const char *buf, size_t len)
{
	return logscan_feed(arg, buf, len);
}

/* Read bytes through a temporary file as the CLI does; the scanner's result. */
static int read_through_file(const unsigned char *data, size_t len, struct logscan *ls,
			     int *gz)
{
	char path[] = "/tmp/test_logscan.XXXXXX";
	int fd = mkstemp(path), r;

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	r = logread_fd(fd, "test", sink, ls, gz);
	assert_int_equal(logscan_finish(ls), 0);
	close(fd);
	return r;
}

static void gzip_input(void **state)
{
	size_t cap = 1 << 16, n1, n2;
	unsigned char *gz = malloc(2 * cap);
	struct logscan *ls = logscan_new();
	int gzipped = 0;

	(void)state;
	assert_non_null(gz);
	/* Two gzip members back to back (as `cat a.gz b.gz`). */
	n1 = gzip_mem(ftd_seed, strlen(ftd_seed), gz, cap);
	n2 = gzip_mem(fmc_seed, strlen(fmc_seed), gz + n1, cap);
	assert_int_equal(read_through_file(gz, n1 + n2, ls, &gzipped), 0);
	assert_int_equal(gzipped, 1);
	assert_int_equal(logscan_lines(ls), 20);
	assert_int_equal(by_id(ls, "cert_expired")->count, 1);
	assert_int_equal(by_id(ls, "fmc_connect_failed")->count, 1);
	logscan_free(ls);

	/* Plain text is passed through unchanged. */
	ls = logscan_new();
	assert_int_equal(read_through_file((const unsigned char *)ftd_seed, strlen(ftd_seed), ls,
					   &gzipped),
			 0);
	assert_int_equal(gzipped, 0);
	assert_int_equal(logscan_count(ls), 3);
	logscan_free(ls);

	/* Truncated: an error, and what came before it is still scanned. */
	ls = logscan_new();
	assert_int_equal(read_through_file(gz, n1 - 10, ls, &gzipped), SFTCA_ERR_INVALID);
	assert_int_equal(gzipped, 1);
	logscan_free(ls);

	/* Corrupt: an error, no crash. */
	memset(gz + 12, 0xa5, n1 - 20);
	ls = logscan_new();
	assert_int_equal(read_through_file(gz, n1, ls, &gzipped), SFTCA_ERR_INVALID);
	logscan_free(ls);
	free(gz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ftd_seed_lines),
		cmocka_unit_test(fmc_seed_lines_are_one_event),
		cmocka_unit_test(fmc_tls_alerts),
		cmocka_unit_test(repeated_attempts),
		cmocka_unit_test(full_lines_and_other_errors),
		cmocka_unit_test(names_after_the_error),
		cmocka_unit_test(unrelated_and_healthy_lines),
		cmocka_unit_test(crlf_lines),
		cmocka_unit_test(crl_expired_remedy),
		cmocka_unit_test(lines_split_across_feeds),
		cmocka_unit_test(last_line_without_newline),
		cmocka_unit_test(nuls_and_bad_utf8),
		cmocka_unit_test(long_lines),
		cmocka_unit_test(garbage_does_not_crash),
		cmocka_unit_test(gzip_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
