/* SPDX-License-Identifier: Apache-2.0 */
/* Arena allocator: chunks linked newest-first; large requests get a chunk of
 * their own so that a big body never wastes a default-size chunk. */
#include "base/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

struct chunk {
	struct chunk *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

struct km_arena {
	struct chunk *head;
	size_t chunk_size;
	size_t total;
};

struct km_arena *km_arena_new(size_t chunk)
{
	struct km_arena *a = km_calloc(1, sizeof(*a));
	a->chunk_size = chunk ? chunk : 4096;
	return a;
}

void km_arena_free(struct km_arena *a)
{
	if (!a)
		return;
	struct chunk *c = a->head;
	while (c) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	free(a);
}

static struct chunk *add_chunk(struct km_arena *a, size_t need)
{
	size_t size = a->chunk_size;
	if (need > size / 4)
		size = need;
	struct chunk *c = km_malloc(sizeof(*c) + size);
	c->size = size;
	c->used = 0;
	a->total += size;
	if (need == size && a->head) {
		/* dedicated chunk: keep the current head for small allocations */
		c->next = a->head->next;
		a->head->next = c;
	} else {
		c->next = a->head;
		a->head = c;
	}
	return c;
}

void *km_arena_alloc_raw(struct km_arena *a, size_t size)
{
	size = (size + 15) & ~(size_t)15;
	if (size == 0)
		size = 16;
	struct chunk *c = a->head;
	if (!c || c->size - c->used < size)
		c = add_chunk(a, size);
	void *p = c->data + c->used;
	c->used += size;
	return p;
}

void *km_arena_alloc(struct km_arena *a, size_t size)
{
	void *p = km_arena_alloc_raw(a, size);
	memset(p, 0, size);
	return p;
}

void *km_arena_realloc(struct km_arena *a, void *old, size_t old_size, size_t new_size)
{
	if (new_size <= old_size)
		return old;
	struct chunk *c = a->head;
	size_t old_al = (old_size + 15) & ~(size_t)15;
	/* grow in place when <old> is the last allocation of the head chunk */
	if (old && c && (unsigned char *)old + old_al == c->data + c->used) {
		size_t new_al = (new_size + 15) & ~(size_t)15;
		if (c->used - old_al + new_al <= c->size) {
			c->used = c->used - old_al + new_al;
			memset((unsigned char *)old + old_size, 0, new_al - old_size);
			return old;
		}
	}
	void *p = km_arena_alloc(a, new_size);
	if (old && old_size)
		memcpy(p, old, old_size);
	return p;
}

char *km_arena_strndup(struct km_arena *a, const char *s, size_t n)
{
	char *p = km_arena_alloc(a, n + 1);
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *km_arena_strdup(struct km_arena *a, const char *s)
{
	return km_arena_strndup(a, s, strlen(s));
}

char *km_arena_vprintf(struct km_arena *a, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	char small[256];
	int n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		n = 0;
	char *p = km_arena_alloc(a, (size_t)n + 1);
	if ((size_t)n < sizeof(small))
		memcpy(p, small, (size_t)n + 1);
	else
		vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *km_arena_printf(struct km_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = km_arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

size_t km_arena_size(const struct km_arena *a)
{
	return a->total;
}
