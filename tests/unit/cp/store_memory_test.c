/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/store/memory.c: CRUD, optimistic concurrency, cascade,
 * ordering, filters, pagination and change events. */
#include "base/err.h"
#include "cp/store/store.h"
#include "../test.h"

static int events[3];

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	events[op]++;
}

static struct km_resource mk(const char *type, const char *mesh, const char *name,
			     const char *labels)
{
	struct km_resource r = {0};
	r.type = km_rtype_by_name(km_str_c(type));
	r.mesh = km_str_c(mesh);
	r.name = km_str_c(name);
	r.labels = km_str_c(labels);
	r.spec = KM_STR("{}");
	return r;
}

/* The names of mesh <mesh>'s Dataplanes read <page> at a time, joined by
 * commas; <between> runs after the first page (writes that must not
 * confuse the continuation). */
static const char *paged(struct cp_store *s, struct km_arena *a, const char *mesh, size_t page,
			 void (*between)(struct cp_store *s))
{
	struct km_buf b = KM_BUF_INIT;
	const struct km_rtype *t = km_rtype_by_name(KM_STR("Dataplane"));
	for (size_t off = 0;;) {
		struct cp_list_opts o = {.mesh = km_str_c(mesh), .offset = off, .size = page};
		struct cp_list_result r;
		CHECK(cp_store_list(s, a, t, &o, &r) == 0);
		for (size_t i = 0; i < r.len; i++)
			km_buf_printf(&b, "%s%.*s", b.len ? "," : "", KM_STR_FMT(r.items[i].name));
		if (!off && between)
			between(s);
		off += r.len;
		if (!r.len || off >= r.total)
			break;
	}
	const char *out = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return out;
}

static void add_p0(struct cp_store *s)
{
	struct km_resource r = mk("Dataplane", "p", "p0", "");
	CHECK(cp_store_create(s, &r) == 0);
}

static void drop_p1(struct cp_store *s)
{
	CHECK(cp_store_remove(s, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("p"), KM_STR("p1"), 0) == 0);
}

static void drop_p3(struct cp_store *s)
{
	CHECK(cp_store_remove(s, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("p"), KM_STR("p3"), 0) == 0);
}

/* Paging continues where the previous page ended (the store remembers
 * where that was) and stays right when records come and go between pages:
 * each page is what offset/size say at the time it is read. */
static void test_paging(void)
{
	struct cp_store *s = cp_store_memory_new();
	struct km_arena *a = km_arena_new(0);
	struct km_resource mp = mk("Mesh", "", "p", ""), mq = mk("Mesh", "", "q", "");
	CHECK(cp_store_create(s, &mp) == 0 && cp_store_create(s, &mq) == 0);
	const char *names[] = {"p1", "p2", "p3", "p4", "p5", "p6", "p7"};
	for (size_t i = 0; i < 7; i++) {
		struct km_resource r = mk("Dataplane", "p", names[i], "");
		CHECK(cp_store_create(s, &r) == 0);
		struct km_resource q = mk("Dataplane", "q", names[i], ""); /* interleaved by name */
		CHECK(cp_store_create(s, &q) == 0);
	}
	CHECK_STREQ(paged(s, a, "p", 2, NULL), "p1,p2,p3,p4,p5,p6,p7");
	CHECK_STREQ(paged(s, a, "q", 3, NULL), "p1,p2,p3,p4,p5,p6,p7");
	CHECK_STREQ(paged(s, a, "p", 1, NULL), "p1,p2,p3,p4,p5,p6,p7");
	/* a record added before the position reached: the next page starts one
	 * later by offset, as a fresh listing would */
	CHECK_STREQ(paged(s, a, "p", 2, add_p0), "p1,p2,p2,p3,p4,p5,p6,p7");
	/* one removed after the position reached */
	CHECK_STREQ(paged(s, a, "p", 2, drop_p3), "p0,p1,p2,p4,p5,p6,p7");
	/* one removed before it: the rest moves up by one */
	CHECK_STREQ(paged(s, a, "p", 2, drop_p1), "p0,p1,p4,p5,p6,p7");
	/* another listing in between (other mesh) does not disturb a third */
	CHECK_STREQ(paged(s, a, "q", 4, NULL), "p1,p2,p3,p4,p5,p6,p7");
	km_arena_free(a);
	cp_store_free(s);
}

int main(void)
{
	test_paging();
	struct cp_store *s = cp_store_memory_new();
	s->on_change = on_change;
	struct km_arena *a = km_arena_new(0);
	struct km_resource m1 = mk("Mesh", "", "m1", ""), m2 = mk("Mesh", "", "m2", "");
	CHECK(cp_store_create(s, &m1) == 0);
	CHECK(cp_store_create(s, &m2) == 0);
	CHECK(cp_store_create(s, &m1) == -KM_E_EXISTS);
	struct km_resource d1 = mk("Dataplane", "m1", "dp-b", "{\"app\":\"x\"}");
	struct km_resource d2 = mk("Dataplane", "m1", "dp-a", "{\"app\":\"y\"}");
	struct km_resource d3 = mk("Dataplane", "m2", "dp-a", "{\"app\":\"x\"}");
	struct km_resource i1 = mk("DataplaneInsight", "m1", "dp-b", "");
	CHECK(cp_store_create(s, &d1) == 0);
	CHECK(cp_store_create(s, &d2) == 0);
	CHECK(cp_store_create(s, &d3) == 0);
	CHECK(cp_store_create(s, &i1) == 0);

	struct km_resource got;
	CHECK(cp_store_get(s, a, d1.type, KM_STR("m1"), KM_STR("dp-b"), &got) == 0);
	CHECK(got.version == 1 && got.ctime > 0 && got.mtime == got.ctime);
	CHECK(km_str_eqc(got.labels, "{\"app\":\"x\"}"));

	/* optimistic concurrency */
	got.version = 1;
	got.spec = KM_STR("{\"networking\":{}}");
	CHECK(cp_store_update(s, &got) == 0);
	CHECK(cp_store_update(s, &got) == -KM_E_CONFLICT);
	struct km_resource again;
	CHECK(cp_store_get(s, a, d1.type, KM_STR("m1"), KM_STR("dp-b"), &again) == 0);
	CHECK(again.version == 2 && km_str_eqc(again.spec, "{\"networking\":{}}"));

	/* list order (name, mesh), filters and paging */
	struct cp_list_result res;
	struct cp_list_opts all = {0};
	CHECK(cp_store_list(s, a, d1.type, &all, &res) == 0);
	CHECK(res.total == 3 && res.len == 3);
	CHECK(km_str_eqc(res.items[0].name, "dp-a") && km_str_eqc(res.items[0].mesh, "m1"));
	CHECK(km_str_eqc(res.items[1].mesh, "m2") && km_str_eqc(res.items[2].name, "dp-b"));
	struct cp_label_filter lf = {KM_STR("app"), KM_STR("x")};
	struct cp_list_opts byl = {.labels = &lf, .labels_len = 1, .offset = 1, .size = 1};
	CHECK(cp_store_list(s, a, d1.type, &byl, &res) == 0);
	CHECK(res.total == 2 && res.len == 1 && km_str_eqc(res.items[0].name, "dp-b"));
	struct cp_list_opts bym = {.mesh = KM_STR("m1"), .name_contains = KM_STR("-a")};
	CHECK(cp_store_list(s, a, d1.type, &bym, &res) == 0 && res.total == 1);

	/* cascade: deleting mesh m1 removes its dataplanes and their insights */
	CHECK(cp_store_remove(s, m1.type, KM_STR(""), KM_STR("m1"), 0) == 0);
	CHECK(cp_store_count(s, d1.type, KM_STR("")) == 1);
	CHECK(cp_store_count(s, i1.type, KM_STR("")) == 0);
	CHECK(cp_store_remove(s, m1.type, KM_STR(""), KM_STR("m1"), 0) == -KM_E_NOT_FOUND);
	CHECK(events[CP_STORE_CREATE] == 6 && events[CP_STORE_UPDATE] == 1 &&
	      events[CP_STORE_DELETE] == 4);

	/* insight cascade from its dataplane */
	struct km_resource i3 = mk("DataplaneInsight", "m2", "dp-a", "");
	CHECK(cp_store_create(s, &i3) == 0);
	CHECK(cp_store_remove(s, d3.type, KM_STR("m2"), KM_STR("dp-a"), 0) == 0);
	CHECK(cp_store_count(s, i3.type, KM_STR("m2")) == 0);

	km_arena_free(a);
	cp_store_free(s);
	return test_summary();
}
