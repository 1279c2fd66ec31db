/* SPDX-License-Identifier: Apache-2.0 */
/* Linear probing over a power-of-two array of {hash, pointer} slots; a
 * rebuild (growing, filtering) places every kept entry again. */
#include "base/ptab.h"

#include <stdlib.h>

#include "base/mem.h"

#define MIN_CAP 64

void *km_ptab_next(const struct km_ptab *t, uint64_t h, size_t *it)
{
	/* *it counts the probes done; fewer than cap, as a slot is free */
	for (size_t k = *it; k < t->cap; k++) {
		const struct km_ptab_slot *s = &t->slot[(h + k) & (t->cap - 1)];
		if (!s->e)
			break;
		if (s->h == h) {
			*it = k + 1;
			return s->e;
		}
	}
	*it = t->cap;
	return NULL;
}

void *km_ptab_each(const struct km_ptab *t, size_t *it)
{
	while (*it < t->cap) {
		void *e = t->slot[(*it)++].e;
		if (e)
			return e;
	}
	return NULL;
}

static void place(struct km_ptab_slot *slot, size_t cap, uint64_t h, void *e)
{
	size_t i = (size_t)h & (cap - 1);
	while (slot[i].e)
		i = (i + 1) & (cap - 1);
	slot[i] = (struct km_ptab_slot){h, e};
}

/* Moves every entry to <cap> slots. */
static void resize(struct km_ptab *t, size_t cap)
{
	struct km_ptab_slot *slot = km_calloc(cap, sizeof(*slot));
	for (size_t i = 0; i < t->cap; i++)
		if (t->slot[i].e)
			place(slot, cap, t->slot[i].h, t->slot[i].e);
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
}

void km_ptab_reserve(struct km_ptab *t, size_t n)
{
	size_t cap = t->cap ? t->cap : MIN_CAP;
	while (n * 2 > cap)
		cap *= 2;
	if (cap != t->cap)
		resize(t, cap);
}

void km_ptab_add(struct km_ptab *t, uint64_t h, void *e)
{
	if ((t->n + 1) * 2 > t->cap)
		resize(t, t->cap ? t->cap * 2 : MIN_CAP);
	place(t->slot, t->cap, h, e);
	t->n++;
}

void km_ptab_filter(struct km_ptab *t, bool (*keep)(void *e, void *arg), void *arg)
{
	/* the kept ones first gather at the front of the old slots */
	size_t n = 0;
	for (size_t i = 0; i < t->cap; i++) {
		struct km_ptab_slot s = t->slot[i];
		t->slot[i].e = NULL;
		if (s.e && keep(s.e, arg))
			t->slot[n++] = s;
	}
	size_t cap = t->cap;
	while (cap > MIN_CAP && n * 4 < cap)
		cap /= 2;
	struct km_ptab_slot *slot = cap ? km_calloc(cap, sizeof(*slot)) : NULL;
	for (size_t i = 0; i < n; i++)
		place(slot, cap, t->slot[i].h, t->slot[i].e);
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	t->n = n;
}

void km_ptab_fini(struct km_ptab *t)
{
	free(t->slot);
	*t = (struct km_ptab){0};
}
