/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/memo.c: a fact is computed once per record version, again
 * when the version or times move, per (mesh, name); a sweep drops what was
 * not read since the previous one; the table grows and shrinks; an index
 * of a mesh listed whole reads only the records touched since. */
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

/* the memory store with its reads counted */
static const struct cp_store_ops *real_ops;
static int gets, lists;

static int counted_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t, struct km_str mesh,
		       struct km_str name, struct km_resource *out)
{
	gets++;
	return real_ops->get(s, a, t, mesh, name, out);
}

static int counted_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
			const struct cp_list_opts *o, struct cp_list_result *out)
{
	lists++;
	return real_ops->list(s, a, t, o, out);
}

static struct km_resource rec(const char *mesh, const char *name, uint64_t version, const char *spec)
{
	return (struct km_resource){.mesh = km_str_c(mesh), .name = km_str_c(name), .version = version,
				    .ctime = 1, .mtime = (int64_t)version, .spec = km_str_c(spec)};
}

/* The store's names of type <t> in <mesh>, sorted, joined by spaces. */
static char *store_names(struct cp_store *st, struct km_arena *a, const struct km_rtype *t, const char *mesh)
{
	struct cp_list_opts o = {.mesh = km_str_c(mesh)};
	struct cp_list_result l;
	if (cp_store_list(st, a, t, &o, &l) != 0)
		return NULL;
	const char **v = km_arena_alloc(a, (l.len + 1) * sizeof(*v));
	for (size_t i = 0; i < l.len; i++)
		v[i] = km_arena_strndup(a, l.items[i].name.ptr, l.items[i].name.len);
	for (size_t i = 1; i < l.len; i++) /* insertion sort: a few hundred */
		for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
			const char *x = v[j];
			v[j] = v[j - 1];
			v[j - 1] = x;
		}
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < l.len; i++)
		km_buf_printf(&b, "%s%s", i ? " " : "", v[i]);
	char *out = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return out;
}

static char *index_names(const struct cp_memo_index *x, struct km_arena *a)
{
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < x->n; i++)
		km_buf_printf(&b, "%s%s", i ? " " : "", x->names[i]);
	char *out = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return out;
}

/* The kept index order against the store over random creates, deletes,
 * re-creates and sweeps in two meshes, the writes told by touches: after
 * each round the index lists exactly the store's records, sorted. */
static void test_order_random(void)
{
	struct cp_store *st = cp_store_memory_new();
	const struct km_rtype *t = km_rtype_by_name(KM_STR("DataplaneInsight"));
	struct cp_memo *m = cp_memo_new(sizeof(struct fact), compute);
	const char *meshes[2] = {"default", "other"};
	bool live[2][300] = {{false}};
	unsigned seed = 12345;
	int bad = 0, rounds = 0;
	for (int round = 0; round < 150; round++) {
		int writes = (int)((seed = seed * 1103515245u + 12345u) >> 16) % 40;
		for (int w = 0; w < writes; w++) {
			seed = seed * 1103515245u + 12345u;
			int mi = (int)(seed >> 8) & 1, k = (int)(seed >> 12) % 300;
			char name[32];
			snprintf(name, sizeof(name), "dp-%03d", k);
			struct km_resource r = {.type = t, .mesh = km_str_c(meshes[mi]), .name = km_str_c(name),
						.spec = KM_STR("{}")};
			if (live[mi][k])
				live[mi][k] = cp_store_remove(st, t, km_str_c(meshes[mi]), km_str_c(name), 0) != 0;
			else
				live[mi][k] = cp_store_create(st, &r) == 0;
			cp_memo_touch(m, km_str_c(meshes[mi]), km_str_c(name));
		}
		if ((seed >> 20) % 7 == 0)
			cp_memo_sweep(m);
		for (int mi = 0; mi < 2; mi++) {
			if (mi == 1 && round % 3)
				continue; /* the other mesh indexed less often */
			struct km_arena *a = km_arena_new(0);
			struct cp_memo_index x;
			if (cp_memo_index(m, st, a, t, km_str_c(meshes[mi]), &x) != 0) {
				bad++;
			} else {
				char *want = store_names(st, a, t, meshes[mi]), *got = index_names(&x, a);
				if (!want || strcmp(want, got) != 0) {
					if (!bad)
						fprintf(stderr, "round %d mesh %s:\nwant %s\ngot  %s\n", round, meshes[mi],
							want ? want : "(none)", got);
					bad++;
				}
			}
			rounds++;
			km_arena_free(a);
		}
	}
	CHECK(bad == 0);
	CHECK(rounds == 200);
	cp_memo_free(m);
	cp_store_free(st);
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
	/* peek: the fact last computed, no read, no compute */
	f = cp_memo_peek(m, KM_STR("default"), KM_STR("a"));
	CHECK(f && f->computed_at == 2);
	CHECK(cp_memo_peek(m, KM_STR("default"), KM_STR("none")) == NULL);
	CHECK(cp_memo_peek(m, KM_STR("third"), KM_STR("a")) == NULL);
	CHECK(computes == 3);

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

	/* kept whole by touches: an index reads only the records touched */
	static struct cp_store_ops counting;
	real_ops = st->ops;
	counting = *st->ops;
	counting.get = counted_get;
	counting.list = counted_list;
	st->ops = &counting;
	struct km_resource cur;
	CHECK(cp_store_get(st, a, t, KM_STR("default"), KM_STR("dp-0007"), &cur) == 0);
	struct km_resource up = rec("default", "dp-0007", cur.version, "{\"v\":2}");
	up.type = t;
	up.ctime = cur.ctime;
	CHECK(cp_store_update(st, &up) == 0);
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0007"));
	CHECK(cp_store_remove(st, t, KM_STR("default"), KM_STR("dp-0008"), 0) == 0);
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0008"));
	struct km_resource nw = rec("default", "dp-9999", 0, "{}");
	nw.type = t;
	CHECK(cp_store_create(st, &nw) == 0);
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-9999"));
	cp_memo_touch(m, KM_STR("other"), KM_STR("dp-x")); /* never indexed: nothing kept */
	gets = lists = 0;
	before = computes;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 3 && lists == 0);
	CHECK(computes - before == 2); /* dp-0007 and dp-9999 */
	CHECK(x.n == 2500);
	CHECK(cp_memo_index_find(&x, KM_STR("dp-0008")) == NULL);
	CHECK(cp_memo_index_find(&x, KM_STR("dp-9999")) != NULL);
	f = cp_memo_index_find(&x, KM_STR("dp-0007"));
	CHECK(f && km_str_eqc(f->spec, "{\"v\":2}"));
	CHECK(strcmp(x.names[2499], "dp-9999") == 0);
	/* a write nobody touched is not seen (the owner's contract) */
	CHECK(cp_store_get(st, a, t, KM_STR("default"), KM_STR("dp-0010"), &cur) == 0);
	up = rec("default", "dp-0010", cur.version, "{\"v\":3}");
	up.type = t;
	up.ctime = cur.ctime;
	CHECK(cp_store_update(st, &up) == 0);
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 0 && lists == 0);
	f = cp_memo_index_find(&x, KM_STR("dp-0010"));
	CHECK(f && km_str_eqc(f->spec, "{}"));
	/* a deleted record comes back: computed again */
	CHECK(cp_store_create(st, &(struct km_resource){.type = t, .mesh = KM_STR("default"),
							 .name = KM_STR("dp-0008"), .spec = KM_STR("{\"back\":1}")}) == 0);
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0008"));
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && x.n == 2501);
	f = cp_memo_index_find(&x, KM_STR("dp-0008"));
	CHECK(f && km_str_eqc(f->spec, "{\"back\":1}"));
	/* too many touched: the mesh is listed again, and the untouched write is seen */
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "dp-%04d", i);
		cp_memo_touch(m, KM_STR("default"), km_str_c(name));
	}
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 0 && lists == 3 && x.n == 2501);
	f = cp_memo_index_find(&x, KM_STR("dp-0010"));
	CHECK(f && km_str_eqc(f->spec, "{\"v\":3}"));
	/* a write its writer says changes no fact: its touch reads nothing */
	cp_memo_same(m, KM_STR("default"), KM_STR("dp-0012"));
	CHECK(cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0012")));
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && gets == 0 && lists == 0);
	CHECK(!cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0012"))); /* the next one is read */
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && gets == 1);
	/* following events says so, and keeps it for the memo's other readers */
	cp_memo_same(m, KM_STR("default"), KM_STR("dp-0012"));
	CHECK(cp_memo_follow(m, t->name, CP_STORE_UPDATE, t, KM_STR("default"), KM_STR("dp-0012")));
	CHECK(cp_memo_last_same(m));
	CHECK(!cp_memo_follow(m, t->name, CP_STORE_UPDATE, t, KM_STR("default"), KM_STR("dp-0012")));
	CHECK(!cp_memo_last_same(m));
	cp_memo_same(m, KM_STR("default"), KM_STR("dp-0012"));
	CHECK(!cp_memo_follow(m, "Mesh", CP_STORE_UPDATE, t, KM_STR("default"), KM_STR("dp-0012"))); /* not its type */
	CHECK(cp_memo_follow(m, t->name, CP_STORE_UPDATE, t, KM_STR("default"), KM_STR("dp-0012")));
	gets = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && gets == 1);
	/* ...unless its write failed */
	cp_memo_same(m, KM_STR("default"), KM_STR("dp-0012"));
	cp_memo_same_cancel(m, KM_STR("default"), KM_STR("dp-0012"));
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0012"));
	gets = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && gets == 1);
	/* a resync forgets what was announced (those events may be the lost ones) */
	cp_memo_same(m, KM_STR("default"), KM_STR("dp-0012"));
	cp_memo_forget(m);
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	cp_memo_touch(m, KM_STR("default"), KM_STR("dp-0012"));
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0 && gets == 1 && lists == 0);
	/* events lost: listed again */
	cp_memo_forget(m);
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 0 && lists == 3 && x.n == 2501);
	/* a sweep keeps the meshes indexed since the last one whole... */
	cp_memo_sweep(m);
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 0 && lists == 0 && x.n == 2501);
	/* ...and drops the others: their next index lists them */
	cp_memo_sweep(m);
	cp_memo_sweep(m);
	CHECK(cp_memo_len(m) == 0);
	gets = lists = 0;
	CHECK(cp_memo_index(m, st, a, t, KM_STR("default"), &x) == 0);
	CHECK(gets == 0 && lists == 3 && x.n == 2501);
	st->ops = real_ops;
	km_arena_free(a);
	cp_memo_free(m);
	cp_store_free(st);
	test_order_random();
	return test_summary();
}
