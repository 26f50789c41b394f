/* Per-client token buckets (IssueBatch calls per second). */
#ifndef SFTCA_RATELIMIT_H
#define SFTCA_RATELIMIT_H

struct ratelimit;

/* rate tokens per second, burst bucket depth; rate 0 = no limit. */
struct ratelimit *ratelimit_new(double rate, unsigned burst);
void ratelimit_free(struct ratelimit *rl);
/* 1 when key may proceed now (one token taken), 0 when over its rate. */
int ratelimit_take(struct ratelimit *rl, const char *key);

#endif
