/* Per-call memory: everything a handler builds for its reply comes from
 * here and is released at once after the reply is packed. */
#ifndef SFTCA_ARENA_H
#define SFTCA_ARENA_H

#include <stddef.h>

struct arena;

struct arena *arena_new(void);
void arena_free(struct arena *a);
/* Zeroed memory; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
/* Take ownership of p: free_fn(p) runs when the arena is freed. */
int arena_adopt(struct arena *a, void *p, void (*free_fn)(void *));

#endif
