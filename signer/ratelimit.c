#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RL_SLOTS 1024 /* distinct clients tracked; the least recently seen is reused */

struct bucket {
	char key[192];
	double tokens;
	double last;   /* seconds, CLOCK_MONOTONIC */
};

struct ratelimit {
	pthread_mutex_t mu;
	double rate;
	unsigned burst;
	struct bucket b[RL_SLOTS];
	size_t n;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct ratelimit *ratelimit_new(double rate, unsigned burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (rl == NULL)
		return NULL;
	pthread_mutex_init(&rl->mu, NULL);
	rl->rate = rate;
	rl->burst = burst ? burst : 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	pthread_mutex_destroy(&rl->mu);
	free(rl);
}

int ratelimit_take(struct ratelimit *rl, const char *key)
{
	struct bucket *b = NULL;
	double now;
	int ok;

	if (rl == NULL || rl->rate <= 0)
		return 1;
	now = now_s();
	pthread_mutex_lock(&rl->mu);
	for (size_t i = 0; i < rl->n; i++)
		if (strcmp(rl->b[i].key, key) == 0)
			b = &rl->b[i];
	if (b == NULL) {
		if (rl->n < RL_SLOTS) {
			b = &rl->b[rl->n++];
		} else {
			b = &rl->b[0];
			for (size_t i = 1; i < rl->n; i++)
				if (rl->b[i].last < b->last)
					b = &rl->b[i];
		}
		snprintf(b->key, sizeof(b->key), "%s", key);
		b->tokens = rl->burst;
		b->last = now;
	}
	b->tokens += (now - b->last) * rl->rate;
	if (b->tokens > rl->burst)
		b->tokens = rl->burst;
	b->last = now;
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	pthread_mutex_unlock(&rl->mu);
	return ok;
}
