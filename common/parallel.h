/* Run fn(ctx, i) for every i in [0, n) on up to `threads` threads (the
 * caller's included) and return when all are done. */
#ifndef SFTCA_PARALLEL_H
#define SFTCA_PARALLEL_H

#include <stddef.h>

void parallel_for(int threads, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
