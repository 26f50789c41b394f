/* What push reads from a device (client/devparse.c): the sha256sum lines
 * and the mode and owner lines of one listing command, each taken only when
 * well formed and naming exactly one of the files; show version's UUID and
 * Model lines as the FTD and FMC CLIs print them; the identity files of
 * --identity-file. */
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

#define U "0a0b0c0d-0000-4000-8000-00000000f3c0"

static const char ftd[] =
	"-------------------[ ftd-01 ]--------------------\r\n"
	"Model                     : Cisco Firepower Threat Defense for VMware (75) Version 7.2.5 (Build 208)\r\n"
	"UUID                      : 0A0B0C0D-0000-4000-8000-00000000F3C0\r\n"
	"VDB version               : 353\r\n"
	"----------------------------------------------------\r\n";

static const char fmc[] =
	"-------------------[ fmc ]--------------------\n"
	"Model                     : Secure Firewall Management Center for VMware (66) Version 7.4.1 (Build 172)  \n"
	"UUID                      : " U "\n";

static void show_version(void **state)
{
	char uuid[40], model[128];

	(void)state;
	assert_int_equal(shell_parse_version_uuid(ftd, uuid, sizeof(uuid)), 0);
	assert_string_equal(uuid, U);
	assert_int_equal(shell_parse_version_model(ftd, model, sizeof(model)), 0);
	assert_string_equal(model, "Cisco Firepower Threat Defense for VMware (75) Version 7.2.5 (Build 208)");
	assert_int_equal(shell_parse_version_model(fmc, model, sizeof(model)), 0);
	assert_string_equal(model, "Secure Firewall Management Center for VMware (66) Version 7.4.1 (Build 172)");
	/* No line, an empty value, one that does not fit: none. */
	assert_int_not_equal(shell_parse_version_model("UUID : " U "\n", model, sizeof(model)), 0);
	assert_int_not_equal(shell_parse_version_model("Model :   \n", model, sizeof(model)), 0);
	assert_int_not_equal(shell_parse_version_model(fmc, model, 20), 0);
	/* "Model number" is another key. */
	assert_int_not_equal(shell_parse_version_model("Model number: 5\n", model, sizeof(model)), 0);
}

static void identity_files(void **state)
{
	char uuid[40], model[128];

	(void)state;
	/* show version's output saved as it is. */
	assert_int_equal(shell_parse_identity_file(fmc, uuid, sizeof(uuid), model, sizeof(model)), 0);
	assert_string_equal(uuid, U);
	assert_non_null(strstr(model, "Management Center"));
	/* The UUID alone, after blank lines, any case, CRLF. */
	assert_int_equal(shell_parse_identity_file("\n \r\n0A0B0C0D-0000-4000-8000-00000000F3C0\r\n", uuid,
						   sizeof(uuid), model, sizeof(model)),
			 0);
	assert_string_equal(uuid, U);
	assert_string_equal(model, "");
	/* A line of its own: no trailing text, no second UUID on it. */
	assert_int_not_equal(shell_parse_identity_file(U " x\n", uuid, sizeof(uuid), model, sizeof(model)), 0);
	assert_int_not_equal(shell_parse_identity_file("uuid=" U "\n", uuid, sizeof(uuid), model, sizeof(model)), 0);
	assert_int_not_equal(shell_parse_identity_file("", uuid, sizeof(uuid), model, sizeof(model)), 0);
	assert_int_not_equal(shell_parse_identity_file("UUID : not-a-uuid\n", uuid, sizeof(uuid), model,
						       sizeof(model)),
			     0);
	/* The UUID line wins over a first line that is something else. */
	assert_int_equal(shell_parse_identity_file("# the FTD in rack 4\nUUID: " U "\n", uuid, sizeof(uuid),
						   model, sizeof(model)),
			 0);
	assert_string_equal(uuid, U);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stats_and_sums),
		cmocka_unit_test(malformed_stats),
		cmocka_unit_test(show_version),
		cmocka_unit_test(identity_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
