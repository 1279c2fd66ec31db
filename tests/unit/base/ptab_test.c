/* SPDX-License-Identifier: Apache-2.0 */
/* km_ptab: lookups by hash (colliding ones included), every entry once,
 * filters that drop and shrink, growth, checked against a plain array. */
#include <stdlib.h>

#include "base/mem.h"
#include "base/ptab.h"
#include "../test.h"

struct item {
	uint64_t h;
	int key;
	bool live;
};

static struct item *find(const struct km_ptab *t, uint64_t h, int key)
{
	size_t it = 0;
	for (struct item *e; (e = km_ptab_next(t, h, &it));)
		if (e->key == key)
			return e;
	return NULL;
}

static bool keep_even(void *e, void *arg)
{
	struct item *x = e;
	int *dropped = arg;
	if (x->key % 2 == 0)
		return true;
	x->live = false;
	(*dropped)++;
	return false;
}

static bool keep_none(void *e, void *arg)
{
	(void)arg;
	((struct item *)e)->live = false;
	return false;
}

static void test_empty(void)
{
	struct km_ptab t = {0};
	size_t it = 0;
	CHECK(km_ptab_next(&t, 7, &it) == NULL);
	it = 0;
	CHECK(km_ptab_each(&t, &it) == NULL);
	km_ptab_filter(&t, keep_none, NULL);
	CHECK(t.n == 0);
	km_ptab_fini(&t);
	CHECK(t.slot == NULL && t.cap == 0);
}

/* 2,000 items under 50 hashes (40 each): every probe run crosses others */
static void test_collisions(void)
{
	enum { N = 2000 };
	struct item *items = km_calloc(N, sizeof(*items));
	struct km_ptab t = {0};
	for (int i = 0; i < N; i++) {
		items[i] = (struct item){.h = (uint64_t)(i % 50) * 0x9E3779B97F4A7C15ULL, .key = i, .live = true};
		km_ptab_add(&t, items[i].h, &items[i]);
	}
	CHECK(t.n == N);
	CHECK(t.cap >= 2 * N && (t.cap & (t.cap - 1)) == 0);
	int found = 0, wrong = 0;
	for (int i = 0; i < N; i++) {
		struct item *e = find(&t, items[i].h, i);
		found += e == &items[i];
		/* all 40 under the hash, none under another */
		size_t it = 0;
		int under = 0;
		for (struct item *x; (x = km_ptab_next(&t, items[i].h, &it));)
			under++, wrong += x->h != items[i].h;
		if (i < 50)
			CHECK(under == N / 50);
	}
	CHECK(found == N);
	CHECK(wrong == 0);
	CHECK(find(&t, 12345, 3) == NULL);
	/* each sees every entry once */
	int *seen = km_calloc(N, sizeof(*seen));
	size_t it = 0;
	for (struct item *x; (x = km_ptab_each(&t, &it));)
		seen[x->key]++;
	int once = 0;
	for (int i = 0; i < N; i++)
		once += seen[i] == 1;
	CHECK(once == N);
	free(seen);

	/* drop the odd ones: the rest are still found, the dropped are not */
	size_t cap = t.cap;
	int dropped = 0;
	km_ptab_filter(&t, keep_even, &dropped);
	CHECK(dropped == N / 2);
	CHECK(t.n == N / 2);
	CHECK(t.cap == cap / 2); /* 1,000 of 4,096 slots: under a quarter, halved */
	CHECK(t.n * 2 <= t.cap);
	found = 0;
	int gone = 0;
	for (int i = 0; i < N; i++) {
		struct item *e = find(&t, items[i].h, i);
		if (i % 2 == 0)
			found += e == &items[i];
		else
			gone += e == NULL && !items[i].live;
	}
	CHECK(found == N / 2);
	CHECK(gone == N / 2);
	/* again: nothing more goes */
	dropped = 0;
	km_ptab_filter(&t, keep_even, &dropped);
	CHECK(dropped == 0 && t.n == N / 2);

	/* everything goes: the slots shrink to the first size */
	km_ptab_filter(&t, keep_none, NULL);
	CHECK(t.n == 0);
	CHECK(t.cap == 64);
	it = 0;
	CHECK(km_ptab_each(&t, &it) == NULL);
	CHECK(find(&t, items[0].h, 0) == NULL);
	/* and takes entries again */
	km_ptab_add(&t, items[4].h, &items[4]);
	CHECK(find(&t, items[4].h, 4) == &items[4]);
	km_ptab_fini(&t);
	free(items);
}

/* random adds and filters against a plain array */
static void test_random(void)
{
	enum { N = 5000 };
	struct item *items = km_calloc(N, sizeof(*items));
	struct km_ptab t = {0};
	srand(7);
	int added = 0, bad = 0;
	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < 250; k++, added++) {
			items[added] = (struct item){.h = (uint64_t)rand() % 300, .key = added, .live = true};
			km_ptab_add(&t, items[added].h, &items[added]);
		}
		if (round % 3 == 2) {
			int dropped = 0;
			km_ptab_filter(&t, keep_even, &dropped);
			bad += dropped == 0;
		}
		size_t live = 0;
		for (int i = 0; i < added; i++) {
			struct item *e = find(&t, items[i].h, items[i].key);
			live += items[i].live;
			bad += items[i].live ? e != &items[i] : e != NULL;
		}
		bad += live != t.n;
		bad += t.n * 2 > t.cap;
	}
	CHECK(added == N);
	CHECK(bad == 0);
	km_ptab_filter(&t, keep_none, NULL);
	km_ptab_fini(&t);
	free(items);
}

/* room made first: adding that many grows nothing, and all are found */
static void test_reserve(void)
{
	enum { N = 1000 };
	struct item *items = km_calloc(N, sizeof(*items));
	struct km_ptab t = {0};
	km_ptab_reserve(&t, N);
	size_t cap = t.cap;
	CHECK(cap >= 2 * N && (cap & (cap - 1)) == 0);
	for (int i = 0; i < N; i++) {
		items[i] = (struct item){.h = (uint64_t)i * 0x9E3779B97F4A7C15ULL, .key = i, .live = true};
		km_ptab_add(&t, items[i].h, &items[i]);
	}
	CHECK(t.cap == cap);
	int found = 0;
	for (int i = 0; i < N; i++)
		found += find(&t, items[i].h, i) == &items[i];
	CHECK(found == N);
	km_ptab_reserve(&t, 10); /* never shrinks */
	CHECK(t.cap == cap);
	km_ptab_fini(&t);
	free(items);
}

int main(void)
{
	test_empty();
	test_reserve();
	test_collisions();
	test_random();
	return test_summary();
}
