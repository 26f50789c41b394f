/* Token buckets per client: a burst then refusal, clients apart, refill
 * over time, no limit at rate 0, and more clients than slots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <time.h>

#include "ratelimit.h"

static void burst_then_refused(void **state)
{
	/* 0.001/s: no token comes back while the test runs */
	struct ratelimit *rl = ratelimit_new(0.001, 3);

	(void)state;
	assert_non_null(rl);
	for (int i = 0; i < 3; i++)
		assert_int_equal(ratelimit_take(rl, "issuer-a"), 1);
	assert_int_equal(ratelimit_take(rl, "issuer-a"), 0);
	assert_int_equal(ratelimit_take(rl, "issuer-a"), 0);
	/* another client has its own bucket */
	assert_int_equal(ratelimit_take(rl, "issuer-b"), 1);
	ratelimit_free(rl);
}

static void refills_over_time(void **state)
{
	struct ratelimit *rl = ratelimit_new(50, 1); /* one token per 20 ms */
	struct timespec ts = {0, 60 * 1000 * 1000};

	(void)state;
	assert_int_equal(ratelimit_take(rl, "c"), 1);
	assert_int_equal(ratelimit_take(rl, "c"), 0);
	nanosleep(&ts, NULL);
	assert_int_equal(ratelimit_take(rl, "c"), 1);
	/* the bucket never holds more than burst, however long it waited */
	assert_int_equal(ratelimit_take(rl, "c"), 0);
	ratelimit_free(rl);
}

static void rate_zero_is_unlimited(void **state)
{
	struct ratelimit *rl = ratelimit_new(0, 1);

	(void)state;
	for (int i = 0; i < 10000; i++)
		assert_int_equal(ratelimit_take(rl, "c"), 1);
	assert_int_equal(ratelimit_take(NULL, "c"), 1);
	ratelimit_free(rl);
	ratelimit_free(NULL);
}

static void more_clients_than_slots(void **state)
{
	struct ratelimit *rl = ratelimit_new(0.001, 1);
	char key[32];

	(void)state;
	/* 1024 slots: 1500 clients each get their first call; a client whose
	 * slot was reused starts again with a full bucket, never with another's */
	for (int i = 0; i < 1500; i++) {
		snprintf(key, sizeof(key), "client-%d", i);
		assert_int_equal(ratelimit_take(rl, key), 1);
	}
	assert_int_equal(ratelimit_take(rl, "client-1499"), 0);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(burst_then_refused),
		cmocka_unit_test(refills_over_time),
		cmocka_unit_test(rate_zero_is_unlimited),
		cmocka_unit_test(more_clients_than_slots),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
