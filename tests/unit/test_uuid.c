/* Canonical lowercase UUIDs only: what FMC and FTD directories use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "uuid.h"

static void canonical(void **state)
{
	(void)state;
	assert_true(uuid_is_canonical("cdb123c8-4347-11ef-aca1-f3aa241412a1"));
	assert_true(uuid_is_canonical("00000000-0000-0000-0000-000000000000"));
	assert_false(uuid_is_canonical("CDB123C8-4347-11EF-ACA1-F3AA241412A1"));
	assert_false(uuid_is_canonical("cdb123c8-4347-11ef-aca1-f3aa241412a"));
	assert_false(uuid_is_canonical("cdb123c8-4347-11ef-aca1-f3aa241412a11"));
	assert_false(uuid_is_canonical("cdb123c8x4347-11ef-aca1-f3aa241412a1"));
	assert_false(uuid_is_canonical("cdb123c8-4347-11ef-aca1-f3aa241412ag"));
	assert_false(uuid_is_canonical("{cdb123c8-4347-11ef-aca1-f3aa241412a}"));
	assert_false(uuid_is_canonical("cdb123c84347-11ef-aca1-f3aa241412a1-"));
	assert_false(uuid_is_canonical("../../etc/passwd-000000000000000000"));
	assert_false(uuid_is_canonical(""));
	assert_false(uuid_is_canonical(NULL));
}

static void random_ones_are_canonical_v4(void **state)
{
	char a[UUID_STR_LEN + 1], b[UUID_STR_LEN + 1];

	(void)state;
	assert_int_equal(uuid_random(a), 0);
	assert_int_equal(uuid_random(b), 0);
	assert_true(uuid_is_canonical(a));
	assert_int_equal(a[14], '4');
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(canonical),
		cmocka_unit_test(random_ones_are_canonical_v4),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
