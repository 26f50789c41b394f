/* A fixed pool of threads that run the token-bound part of a batch: one
 * thread per token session, so every session signs while the handler
 * threads validate, build and record other batches. */
#ifndef SFTCA_SIGNPOOL_H
#define SFTCA_SIGNPOOL_H

#include <stddef.h>
#include <stdint.h>

struct signpool;

/* Run fn(ctx, i) for i in [0, n) on the pool and wait for all of them.
 * Pool threads call token_set_deadline(deadline_ms) first. */
typedef void (*signpool_fn)(void *ctx, size_t i);

struct signpool *signpool_new(int threads);
void signpool_free(struct signpool *p);
void signpool_run(struct signpool *p, signpool_fn fn, void *ctx, size_t n, int64_t deadline_ms);

#endif
