/* A fixed pool of threads that run the token-bound part of a batch: one
 * thread per token session, so every session signs while the handler
 * threads validate, build and record other batches. */
#ifndef SFTCA_SIGNPOOL_H
#define SFTCA_SIGNPOOL_H

#include <stddef.h>

struct signpool;

/* Run fn(ctx, i) for i in [0, n) on the pool and wait for all of them.
 * Whatever fn needs (the call's deadline, where to put its errors)
 * travels in ctx: pool threads keep no per-call state. */
typedef void (*signpool_fn)(void *ctx, size_t i);

struct signpool *signpool_new(int threads);
void signpool_free(struct signpool *p);
void signpool_run(struct signpool *p, signpool_fn fn, void *ctx, size_t n);

#endif
