/* Every error code has its own text; unknown codes say so. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "errors.h"

static void every_code_has_distinct_text(void **state)
{
	(void)state;
	for (int a = 0; a > SFTCA_ERR_MAX_; a--) {
		const char *ta = sftca_strerror(a);
		assert_non_null(ta);
		assert_string_not_equal(ta, "unknown error");
		for (int b = a - 1; b > SFTCA_ERR_MAX_; b--)
			assert_string_not_equal(ta, sftca_strerror(b));
	}
}

static void out_of_range_is_unknown(void **state)
{
	(void)state;
	assert_string_equal(sftca_strerror(1), "unknown error");
	assert_string_equal(sftca_strerror(SFTCA_ERR_MAX_), "unknown error");
	assert_string_equal(sftca_strerror(-1000), "unknown error");
	assert_string_equal(sftca_strerror(SFTCA_ERR_PIN), "PIN incorrect or locked");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_code_has_distinct_text),
		cmocka_unit_test(out_of_range_is_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
