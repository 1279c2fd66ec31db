/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/memo.c: a fact is computed once per record version, again
 * when the version or times move, per (mesh, name); a sweep drops what was
 * not read since the previous one; the table grows and shrinks. */
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "cp/memo.h"
#include "cp/store/store.h"

struct fact {
	int computed_at; /* the compute counter when this fact was made */
	struct km_str spec;
};

static int computes;

static void compute(struct km_arena *a, const struct km_resource *r, void *out)
{
	struct fact *f = out;
	f->computed_at = ++computes;
	f->spec = (struct km_str){km_arena_strndup(a, r->spec.ptr, r->spec.len), r->spec.len};
}

static struct km_resource rec(const char *mesh, const char *name, uint64_t version, const char *spec)
{
	return (struct km_resource){.mesh = km_str_c(mesh), .name = km_str_c(name), .version = version,
				    .ctime = 1, .mtime = (int64_t)version, .spec = km_str_c(spec)};
}

int main(void)
{
	struct cp_memo *m = cp_memo_new(sizeof(struct fact), compute);
	struct km_resource a1 = rec("default", "a", 1, "{\"x\":1}");
	const struct fact *f = cp_memo_get(m, &a1);
	CHECK(f->computed_at == 1 && km_str_eqc(f->spec, "{\"x\":1}"));
	CHECK(((const struct fact *)cp_memo_get(m, &a1))->computed_at == 1); /* cached */
	struct km_resource a2 = rec("default", "a", 2, "{\"x\":2}");
	f = cp_memo_get(m, &a2);
	CHECK(f->computed_at == 2 && km_str_eqc(f->spec, "{\"x\":2}"));
	/* same name in another mesh is another entry */
	struct km_resource b = rec("other", "a", 2, "{\"y\":1}");
	CHECK(((const struct fact *)cp_memo_get(m, &b))->computed_at == 3);
	CHECK(cp_memo_len(m) == 2);

	/* a sweep keeps what was read since the last one */
	cp_memo_sweep(m);
	CHECK(cp_memo_len(m) == 2);
	cp_memo_get(m, &a2);
	cp_memo_sweep(m);
	CHECK(cp_memo_len(m) == 1);
	CHECK(((const struct fact *)cp_memo_get(m, &a2))->computed_at == 2); /* still the cached one */
	CHECK(((const struct fact *)cp_memo_get(m, &b))->computed_at == 4);    /* computed again */

	/* many records: growth, then a sweep shrinks */
	char name[32];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "dp-%d", i);
		struct km_resource r = rec("default", name, 1, "{}");
		cp_memo_get(m, &r);
	}
	CHECK(cp_memo_len(m) == 5002);
	int before = computes;
	for (int i = 0; i < 5000; i += 2) {
		snprintf(name, sizeof(name), "dp-%d", i);
		struct km_resource r = rec("default", name, 1, "{}");
		cp_memo_get(m, &r);
	}
	CHECK(computes == before);
	cp_memo_sweep(m); /* keeps a2, b and the 5,000 (all read since the last sweep) */
	CHECK(cp_memo_len(m) == 5002);
	cp_memo_sweep(m); /* nothing was read since: all dropped, the table shrinks */
	CHECK(cp_memo_len(m) == 0);
	/* per-mesh marks: unset, set, replaced, kept across sweeps */
	uint64_t fp = 7;
	CHECK(!cp_memo_mark_get(m, "default", &fp) && fp == 7);
	cp_memo_mark_set(m, "default", 42);
	cp_memo_mark_set(m, "other", 0);
	CHECK(cp_memo_mark_get(m, "default", &fp) && fp == 42);
	cp_memo_mark_set(m, "default", 43);
	cp_memo_sweep(m);
	CHECK(cp_memo_mark_get(m, "default", &fp) && fp == 43);
	CHECK(cp_memo_mark_get(m, "other", &fp) && fp == 0);
	cp_memo_free(m);

	/* an index over a store type, read in pages */
	struct cp_store *st = cp_store_memory_new();
	const struct km_rtype *t = km_rtype_by_name(KM_STR("DataplaneInsight"));
	for (int i = 0; i < 2500; i++) {
		snprintf(name, sizeof(name), "dp-%04d", 2499 - i);
		struct km_resource r = rec("default", name, 0, "{}");
		r.type = t;
		CHECK(cp_store_create(st, &r) == 0);
	}
	struct km_resource other = rec("other", "dp-x", 0, "{}");
	other.type = t;
	CHECK(cp_store_create(st, &other) == 0);
	m = cp_memo_new(sizeof(struct fact), compute);
	struct km_arena *a = km_arena_new(0);
	struct cp_memo_index x;
	before = computes;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(x.n == 2500);
	CHECK(computes - before == 2500);
	CHECK(strcmp(x.names[0], "dp-0000") == 0 && strcmp(x.names[2499], "dp-2499") == 0);
	CHECK(cp_memo_index_find(&x, KM_STR("dp-1234")) != NULL);
	CHECK(cp_memo_index_find(&x, KM_STR("dp-x")) == NULL); /* another mesh */
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(computes - before == 2500); /* nothing changed: nothing recomputed */
	CHECK(cp_memo_index(m, st, a, t, KM_STR("empty"), &x) == 0 && x.n == 0); /* no records */
	CHECK(cp_memo_index_find(&x, KM_STR("dp-0001")) == NULL);
	km_arena_free(a);
	cp_memo_free(m);
	cp_store_free(st);
	return test_summary();
}
