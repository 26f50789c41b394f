#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct chunk {
	struct chunk *next;
	void (*free_fn)(void *);
	void *adopted;
	max_align_t data[];
};

struct arena {
	struct chunk *head;
};

struct arena *arena_new(void)
{
	return calloc(1, sizeof(struct arena));
}

void arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	for (struct chunk *c = a->head, *n; c; c = n) {
		n = c->next;
		if (c->free_fn)
			c->free_fn(c->adopted);
		free(c);
	}
	free(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct chunk *c;

	if (n > ((size_t)-1) / 2 || (c = calloc(1, sizeof(*c) + n)) == NULL)
		return NULL;
	c->next = a->head;
	a->head = c;
	return c->data;
}

char *arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = arena_alloc(a, n);

	if (p)
		memcpy(p, s, n);
	return p;
}

int arena_adopt(struct arena *a, void *p, void (*free_fn)(void *))
{
	struct chunk *c = arena_alloc(a, 0) ? a->head : NULL;

	if (c == NULL) {
		free_fn(p);
		return -1;
	}
	c->free_fn = free_fn;
	c->adopted = p;
	return 0;
}
