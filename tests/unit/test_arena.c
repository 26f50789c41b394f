/* Per-call arena: zeroed, aligned memory; strings; adopted objects freed
 * exactly once with the arena; impossible sizes refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static int freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

static void alloc_zeroed_aligned(void **state)
{
	struct arena *a = arena_new();

	(void)state;
	assert_non_null(a);
	for (size_t n = 1; n < 300; n += 37) {
		unsigned char *p = arena_alloc(a, n);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(p[i], 0);
		memset(p, 0xa5, n); /* a later allocation must not overlap it */
	}
	assert_null(arena_alloc(a, (size_t)-1));
	arena_free(a);
	arena_free(NULL);
}

static void strdup_copies(void **state)
{
	struct arena *a = arena_new();
	char src[] = "sftunnel";
	char *s = arena_strdup(a, src);

	(void)state;
	src[0] = 'X';
	assert_string_equal(s, "sftunnel");
	assert_string_equal(arena_strdup(a, ""), "");
	arena_free(a);
}

static void adopted_freed_once(void **state)
{
	struct arena *a = arena_new();

	(void)state;
	freed = 0;
	for (int i = 0; i < 5; i++)
		assert_int_equal(arena_adopt(a, malloc(16), count_free), 0);
	assert_non_null(arena_alloc(a, 8));
	assert_int_equal(freed, 0);
	arena_free(a);
	assert_int_equal(freed, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alloc_zeroed_aligned),
		cmocka_unit_test(strdup_copies),
		cmocka_unit_test(adopted_freed_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
