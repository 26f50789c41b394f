/* The caller-facing message: set, prefix, fallback text, and a long text
 * marked as cut instead of being cut silently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "errors.h"
#include "msg.h"

static void set_and_fallback(void **state)
{
	struct sftca_msg m;

	(void)state;
	msg_clear(&m);
	assert_false(msg_isset(&m));
	assert_string_equal(msg_text(&m, SFTCA_ERR_PIN), sftca_strerror(SFTCA_ERR_PIN));
	assert_int_equal(msg_fail(&m, SFTCA_ERR_INVALID, "line %d: bad", 7), SFTCA_ERR_INVALID);
	assert_true(msg_isset(&m));
	assert_string_equal(msg_text(&m, SFTCA_ERR_PIN), "line 7: bad");
}

static void prefix(void **state)
{
	struct sftca_msg m;

	(void)state;
	msg_clear(&m);
	msg_prefix(&m, "devices.csv");
	assert_string_equal(m.text, "devices.csv");
	msg_set(&m, "port \"80a\" is not a number");
	msg_prefix(&m, "devices.csv line %d", 7);
	assert_string_equal(m.text, "devices.csv line 7: port \"80a\" is not a number");
}

static void long_text_is_marked(void **state)
{
	struct sftca_msg m;
	char big[2 * SFTCA_MSG_MAX];

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	msg_set(&m, "%s", big);
	assert_int_equal(strlen(m.text), SFTCA_MSG_MAX - 1);
	assert_string_equal(m.text + SFTCA_MSG_MAX - 4, "...");
	msg_set(&m, "%.*s", SFTCA_MSG_MAX - 1, big); /* exactly fits: not marked */
	assert_int_equal(m.text[SFTCA_MSG_MAX - 2], 'x');
}

static void append_list(void **state)
{
	struct sftca_msg m;

	(void)state;
	msg_clear(&m);
	msg_append(&m, "; ", "no key %s", "k.pem");
	assert_string_equal(m.text, "no key k.pem");
	msg_append(&m, "; ", "expired %d days ago", 3);
	assert_string_equal(m.text, "no key k.pem; expired 3 days ago");
	/* a list longer than the buffer ends in "..." */
	for (int i = 0; i < 100; i++)
		msg_append(&m, "; ", "problem number %d", i);
	assert_int_equal(strlen(m.text), SFTCA_MSG_MAX - 1);
	assert_string_equal(m.text + SFTCA_MSG_MAX - 4, "...");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(set_and_fallback),
		cmocka_unit_test(prefix),
		cmocka_unit_test(append_list),
		cmocka_unit_test(long_text_is_marked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
