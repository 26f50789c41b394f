/* What devices print about themselves (client/devparse.c): show version's
 * UUID and Model lines as the FTD and FMC CLIs print them, and the identity
 * files of --identity-file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "devparse.h"

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
		cmocka_unit_test(show_version),
		cmocka_unit_test(identity_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
