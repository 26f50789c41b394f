/* Expiry arithmetic at its edges, exactly as the vendor's one-liner:
 * expired when notAfter <= now; within N days when notAfter <= now + N*86400;
 * days truncated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "expiry.h"

#define DAY 86400
/* An arbitrary instant that is not midnight: 2024-09-20 04:10:47 UTC. */
#define NOW ((int64_t)1726805447)

static enum expiry_state classify(int64_t not_after)
{
	return expiry_classify(not_after, NOW, 90, 30);
}

static void expired_at_the_very_second(void **state)
{
	int expired = -1;

	(void)state;
	/* notAfter == now is already expired ("-le" in the one-liner). */
	assert_int_equal(expiry_days(NOW, NOW, &expired), 0);
	assert_int_equal(expired, 1);
	assert_int_equal(classify(NOW), EXPIRY_CRITICAL);
}

static void expired_one_second_ago(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(expiry_days(NOW - 1, NOW, &expired), 0);
	assert_int_equal(expired, 1);
	assert_int_equal(classify(NOW - 1), EXPIRY_CRITICAL);
}

static void one_second_left_is_valid_zero_days(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(expiry_days(NOW + 1, NOW, &expired), 0);
	assert_int_equal(expired, 0);
	assert_int_equal(classify(NOW + 1), EXPIRY_CRITICAL);
}

static void days_since_expiry_truncate(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(expiry_days(NOW - DAY + 1, NOW, &expired), 0);
	assert_int_equal(expired, 1);
	assert_int_equal(expiry_days(NOW - DAY, NOW, &expired), -1);
	assert_int_equal(expiry_days(NOW - 2 * DAY + 1, NOW, &expired), -1);
	assert_int_equal(expiry_days(NOW - 400 * DAY - 3600, NOW, &expired), -400);
	assert_int_equal(expired, 1);
	assert_int_equal(classify(NOW - 400 * DAY), EXPIRY_CRITICAL);
}

static void exactly_30_days_is_critical(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(classify(NOW + 30 * DAY), EXPIRY_CRITICAL);
	assert_int_equal(expiry_days(NOW + 30 * DAY, NOW, &expired), 30);
	assert_int_equal(expired, 0);
}

static void thirty_days_and_a_second_is_warning(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(classify(NOW + 30 * DAY + 1), EXPIRY_WARNING);
	assert_int_equal(expiry_days(NOW + 30 * DAY + 1, NOW, &expired), 30);
	assert_int_equal(expired, 0);
}

static void exactly_90_days_is_warning(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(classify(NOW + 90 * DAY), EXPIRY_WARNING);
	assert_int_equal(expiry_days(NOW + 90 * DAY, NOW, &expired), 90);
}

static void ninety_days_and_a_second_is_ok(void **state)
{
	int expired = -1;

	(void)state;
	assert_int_equal(classify(NOW + 90 * DAY + 1), EXPIRY_OK);
	assert_int_equal(expiry_days(NOW + 90 * DAY + 1, NOW, &expired), 90);
	assert_int_equal(expired, 0);
}

static void partial_days_truncate(void **state)
{
	int expired = -1;

	(void)state;
	/* 29 days 23:59:59 left: 29 days, as the one-liner's $(( / )) says. */
	assert_int_equal(expiry_days(NOW + 30 * DAY - 1, NOW, &expired), 29);
	assert_int_equal(expiry_days(NOW + DAY - 1, NOW, &expired), 0);
	assert_int_equal(expiry_days(NOW + DAY, NOW, &expired), 1);
	/* The seed's example: valid for 3649 more days. */
	assert_int_equal(expiry_days(NOW + 3650 * DAY - 60, NOW, &expired), 3649);
	assert_int_equal(expired, 0);
	assert_int_equal(classify(NOW + 3650 * DAY - 60), EXPIRY_OK);
}

static void other_thresholds(void **state)
{
	(void)state;
	/* crit 0: only expired certificates are CRITICAL. */
	assert_int_equal(expiry_classify(NOW + 1, NOW, 10, 0), EXPIRY_WARNING);
	assert_int_equal(expiry_classify(NOW, NOW, 10, 0), EXPIRY_CRITICAL);
	/* warn == crit: no WARNING band at all. */
	assert_int_equal(expiry_classify(NOW + 7 * DAY, NOW, 7, 7), EXPIRY_CRITICAL);
	assert_int_equal(expiry_classify(NOW + 7 * DAY + 1, NOW, 7, 7), EXPIRY_OK);
	/* Large thresholds do not overflow. */
	assert_int_equal(expiry_classify(NOW + 36500LL * DAY, NOW, 36500, 36500), EXPIRY_CRITICAL);
}

static void expired_flag_is_optional(void **state)
{
	(void)state;
	assert_int_equal(expiry_days(NOW - 3 * DAY, NOW, NULL), -3);
	assert_int_equal(expiry_days(NOW + 3 * DAY, NOW, NULL), 3);
}

static void state_names(void **state)
{
	(void)state;
	assert_string_equal(expiry_state_name(EXPIRY_OK), "OK");
	assert_string_equal(expiry_state_name(EXPIRY_WARNING), "WARNING");
	assert_string_equal(expiry_state_name(EXPIRY_CRITICAL), "CRITICAL");
	assert_string_equal(expiry_state_name(EXPIRY_UNKNOWN), "UNKNOWN");
	assert_string_equal(expiry_state_name((enum expiry_state)17), "UNKNOWN");
	/* The states are the monitoring exit codes. */
	assert_int_equal(EXPIRY_OK, 0);
	assert_int_equal(EXPIRY_WARNING, 1);
	assert_int_equal(EXPIRY_CRITICAL, 2);
	assert_int_equal(EXPIRY_UNKNOWN, 3);
}

/* The seed's rules: at 30 days exactly and once expired, not a second later
 * than 30 days; the text names the three rules. */
static void rules_within_30_days(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	assert_true(expiry_rules_apply(NOW + 30 * DAY, NOW));
	assert_true(expiry_rules_apply(NOW - 400 * DAY, NOW));
	assert_false(expiry_rules_apply(NOW + 30 * DAY + 1, NOW));
	assert_false(expiry_rules_apply(NOW + 91 * DAY, NOW));
	assert_non_null(f = open_memstream(&buf, &len));
	expiry_rules_print(f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(buf, "stay up until they reconnect"));
	assert_non_null(strstr(buf, "FMC first, then the devices"));
	assert_non_null(strstr(buf, "every device is already down"));
	for (char *line = buf, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		assert_true(nl - line <= 78);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(expired_at_the_very_second),
		cmocka_unit_test(expired_one_second_ago),
		cmocka_unit_test(one_second_left_is_valid_zero_days),
		cmocka_unit_test(days_since_expiry_truncate),
		cmocka_unit_test(exactly_30_days_is_critical),
		cmocka_unit_test(thirty_days_and_a_second_is_warning),
		cmocka_unit_test(exactly_90_days_is_warning),
		cmocka_unit_test(ninety_days_and_a_second_is_ok),
		cmocka_unit_test(partial_days_truncate),
		cmocka_unit_test(other_thresholds),
		cmocka_unit_test(expired_flag_is_optional),
		cmocka_unit_test(state_names),
		cmocka_unit_test(rules_within_30_days),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
