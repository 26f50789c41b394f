#include "signpool.h"

#include <pthread.h>
#include <stdlib.h>

/* One batch: workers claim item indices until none are left. */
struct task {
	signpool_fn fn;
	void *ctx;
	size_t n, next, done;
	pthread_cond_t done_cv;
	struct task *qnext;
};

struct signpool {
	pthread_mutex_t mu;
	pthread_cond_t work_cv;
	struct task *head, *tail;
	int stopping;
	int nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	struct signpool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct task *t;
		size_t i;

		while (!p->stopping && p->head == NULL)
			pthread_cond_wait(&p->work_cv, &p->mu);
		if (p->head == NULL)
			break;
		t = p->head;
		i = t->next++;
		if (t->next == t->n) { /* last index claimed: the next batch may start */
			p->head = t->qnext;
			if (p->head == NULL)
				p->tail = NULL;
		}
		pthread_mutex_unlock(&p->mu);
		t->fn(t->ctx, i);
		pthread_mutex_lock(&p->mu);
		if (++t->done == t->n)
			pthread_cond_signal(&t->done_cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct signpool *signpool_new(int threads)
{
	struct signpool *p = calloc(1, sizeof(*p));

	if (p == NULL || (p->threads = calloc((size_t)threads, sizeof(pthread_t))) == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work_cv, NULL);
	for (int i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			p->nthreads = i;
			signpool_free(p);
			return NULL;
		}
	}
	p->nthreads = threads;
	return p;
}

void signpool_free(struct signpool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work_cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work_cv);
	free(p->threads);
	free(p);
}

void signpool_run(struct signpool *p, signpool_fn fn, void *ctx, size_t n)
{
	struct task t = { .fn = fn, .ctx = ctx, .n = n };

	if (n == 0)
		return;
	pthread_cond_init(&t.done_cv, NULL);
	pthread_mutex_lock(&p->mu);
	if (p->tail)
		p->tail->qnext = &t;
	else
		p->head = &t;
	p->tail = &t;
	pthread_cond_broadcast(&p->work_cv);
	while (t.done < t.n)
		pthread_cond_wait(&t.done_cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
	pthread_cond_destroy(&t.done_cv);
}
