/* What push reads from a device's listing (client/devparse.c): the
 * sha256sum lines and the mode and owner lines of the same command, each
 * taken only when well formed and naming exactly one of the files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "devparse.h"

static const char *const names[] = { "cacert.pem", "sftunnel-cert.pem", "sftunnel-key.pem" };
#define H64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A listing as the device prints it: sums, modes and owners, the pending mark. */
static void stats_and_sums(void **state)
{
	struct shell_stat st[3];
	char sums[3][65];
	const char *out = H64 "  cacert.pem\n"
			  "SFTCA-STAT 644 0 0 cacert.pem\n"
			  H64 "  sftunnel-key.pem\n"
			  "SFTCA-STAT 640 1 2 sftunnel-key.pem\n"
			  "SFTCA-RESTART-PENDING\n";

	(void)state;
	shell_parse_sums(out, names, 3, sums);
	assert_string_equal(sums[0], H64);
	assert_string_equal(sums[1], "");
	assert_string_equal(sums[2], H64);
	shell_parse_stats(out, names, 3, st);
	assert_true(st[0].present);
	assert_int_equal(st[0].mode, 0644);
	assert_int_equal(st[0].uid, 0);
	assert_int_equal(st[0].gid, 0);
	assert_false(st[1].present);
	assert_true(st[2].present);
	assert_int_equal(st[2].mode, 0640);
	assert_int_equal(st[2].uid, 1);
	assert_int_equal(st[2].gid, 2);
	/* Special bits, the largest ids, no final newline. */
	shell_parse_stats("SFTCA-STAT 4755 4294967295 65534 sftunnel-cert.pem", names, 3, st);
	assert_true(st[1].present);
	assert_int_equal(st[1].mode, 04755);
	assert_int_equal(st[1].uid, 4294967295UL);
	assert_int_equal(st[1].gid, 65534);
}

/* Anything else is no listing: the file counts as absent (push then
 * follows a sibling or its defaults, never a half-read mode). */
static void malformed_stats(void **state)
{
	static const char *const bad[] = {
		"SFTCA-STAT 644 0 0 cacert.pem.backup\n",  /* another file */
		"SFTCA-STAT 644 0 0 acert.pem\n",
		"SFTCA-STAT 644 0 0  cacert.pem\n",         /* two spaces */
		"SFTCA-STAT 648 0 0 cacert.pem\n",          /* not octal */
		"SFTCA-STAT 17777 0 0 cacert.pem\n",        /* more than 07777 */
		"SFTCA-STAT 644 4294967296 0 cacert.pem\n", /* uid past 32 bits */
		"SFTCA-STAT 644 0 99999999999999999999999 cacert.pem\n",
		"SFTCA-STAT 644 -1 0 cacert.pem\n",
		"SFTCA-STAT 644 0 cacert.pem\n",
		"SFTCA-STAT  644 0 0 cacert.pem\n",
		" SFTCA-STAT 644 0 0 cacert.pem\n",
		"XSFTCA-STAT 644 0 0 cacert.pem\n",
		"SFTCA-STAT 644 0 0 cacert.pem \n",
		"SFTCA-STAT 644 0 0\n",
		"SFTCA-STAT ",
		"",
	};
	struct shell_stat st[3];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		shell_parse_stats(bad[i], names, 3, st);
		for (int k = 0; k < 3; k++)
			if (st[k].present)
				fail_msg("\"%s\" taken for %s", bad[i], names[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stats_and_sums),
		cmocka_unit_test(malformed_stats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
