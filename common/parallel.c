#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct pf {
	void (*fn)(void *, size_t);
	void *ctx;
	size_t n;
	atomic_size_t next;
};

static void *pf_run(void *arg)
{
	struct pf *p = arg;
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < p->n)
		p->fn(p->ctx, i);
	return NULL;
}

void parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct pf p = { .fn = fn, .ctx = ctx, .n = n };
	pthread_t *t;
	int started = 0;

	atomic_init(&p.next, 0);
	if (threads > 1 && n > 1) {
		if ((size_t)threads > n)
			threads = (int)n;
		if ((t = calloc((size_t)threads - 1, sizeof(*t))) != NULL) {
			for (int i = 0; i < threads - 1; i++)
				if (pthread_create(&t[started], NULL, pf_run, &p) == 0)
					started++;
			pf_run(&p);
			for (int i = 0; i < started; i++)
				pthread_join(t[i], NULL);
			free(t);
			return;
		}
	}
	pf_run(&p); /* one thread, or no memory for more: still finish */
}
