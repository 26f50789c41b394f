/* Sign pool: every index of every batch runs exactly once, on the pool's
 * threads, also with several batches queued at once from several callers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "signpool.h"

struct batch {
	atomic_int *hits;
	pthread_t caller;
	atomic_int on_caller; /* indices run on the calling thread (must be 0) */
};

static void hit(void *ctx, size_t i)
{
	struct batch *b = ctx;

	atomic_fetch_add(&b->hits[i], 1);
	if (pthread_equal(pthread_self(), b->caller))
		atomic_fetch_add(&b->on_caller, 1);
}

static void run_and_check(struct signpool *p, size_t n)
{
	struct batch b = { .hits = calloc(n ? n : 1, sizeof(atomic_int)), .caller = pthread_self() };

	assert_non_null(b.hits);
	signpool_run(p, hit, &b, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(atomic_load(&b.hits[i]), 1);
	assert_int_equal(atomic_load(&b.on_caller), 0);
	free(b.hits);
}

static void each_index_once(void **state)
{
	struct signpool *p = signpool_new(4);

	(void)state;
	assert_non_null(p);
	run_and_check(p, 0);
	run_and_check(p, 1);
	run_and_check(p, 3);
	run_and_check(p, 10000);
	signpool_free(p);
	signpool_free(NULL);
}

static struct signpool *shared;

static void *caller(void *arg)
{
	(void)arg;
	for (int r = 0; r < 50; r++)
		run_and_check(shared, 257);
	return NULL;
}

static void concurrent_callers(void **state)
{
	pthread_t t[6];

	(void)state;
	shared = signpool_new(2);
	assert_non_null(shared);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, caller, NULL), 0);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	signpool_free(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_index_once),
		cmocka_unit_test(concurrent_callers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
