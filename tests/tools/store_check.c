/* SPDX-License-Identifier: Apache-2.0 */
/* Store contract check, run against a real backend: `store_check memory` or
 * `store_check postgres` (connection from KUMA_STORE_POSTGRES_* variables).
 * It exercises CRUD, optimistic concurrency between two handles on the same
 * database (exactly one winner), owner cascade, ordering, filters, paging and
 * change events, and ends with "N passed, N failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cp/config/config.h"
#include "cp/store/store.h"
#include "ev/loop.h"
#include "../unit/test.h"

extern char **environ;

static int events[4];

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

static struct cp_store *open_store(const char *kind, struct cp_config *cfg, struct km_loop *loop)
{
	if (strcmp(kind, "memory") == 0)
		return cp_store_memory_new();
	struct km_buf err = KM_BUF_INIT;
	struct cp_store *s = cp_store_postgres_new(cfg, loop, &err);
	if (!s)
		fprintf(stderr, "store_check: %s\n", km_buf_cstr(&err));
	km_buf_fini(&err);
	return s;
}

static void stop_loop(struct km_loop *loop, void *ctx)
{
	km_loop_stop(loop);
}

/* Lets LISTEN/NOTIFY events arrive (postgres delivers them asynchronously). */
static void settle(struct km_loop *loop, const char *kind)
{
	if (strcmp(kind, "postgres") != 0)
		return;
	struct km_timer t = {0};
	km_loop_timer_start(loop, &t, 300, stop_loop, NULL);
	km_loop_run(loop);
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "memory";
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct km_buf err = KM_BUF_INIT;
	if (cp_config_load(&cfg, NULL, environ, &err)) {
		fprintf(stderr, "config: %s\n", km_buf_cstr(&err));
		return 2;
	}
	km_buf_fini(&err);
	if (strcmp(kind, "postgres") == 0 && cp_store_postgres_migrate(&cfg, &err)) {
		fprintf(stderr, "migrate: %s\n", km_buf_cstr(&err));
		return 2;
	}
	struct km_loop *loop = km_loop_new();
	struct cp_store *s = open_store(kind, &cfg, loop);
	if (!s)
		return 2;
	/* leftovers of an interrupted earlier run */
	cp_store_remove(s, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), KM_STR("m1"), 0);
	cp_store_remove(s, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), KM_STR("m2"), 0);
	s->on_change = on_change;
	s->on_change_ctx = NULL;
	settle(loop, kind);
	memset(events, 0, sizeof(events));
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
	CHECK(km_str_eqc(got.labels, "{\"app\": \"x\"}") || km_str_eqc(got.labels, "{\"app\":\"x\"}"));
	CHECK(cp_store_get(s, a, d1.type, KM_STR("m1"), KM_STR("nope"), &got) == -KM_E_NOT_FOUND);

	/* optimistic concurrency: two handles on the same data, one winner */
	struct cp_store *s2 = strcmp(kind, "postgres") == 0 ? open_store(kind, &cfg, loop) : s;
	struct km_resource h1, h2;
	CHECK(cp_store_get(s, a, d1.type, KM_STR("m1"), KM_STR("dp-b"), &h1) == 0);
	CHECK(cp_store_get(s2, a, d1.type, KM_STR("m1"), KM_STR("dp-b"), &h2) == 0);
	h1.spec = KM_STR("{\"networking\":{\"address\":\"1.1.1.1\"}}");
	h2.spec = KM_STR("{\"networking\":{\"address\":\"2.2.2.2\"}}");
	int r1 = cp_store_update(s, &h1), r2 = cp_store_update(s2, &h2);
	CHECK(r1 == 0 && r2 == -KM_E_CONFLICT);
	struct km_resource again;
	CHECK(cp_store_get(s2, a, d1.type, KM_STR("m1"), KM_STR("dp-b"), &again) == 0);
	CHECK(again.version == 2 && km_str_find(again.spec, KM_STR("1.1.1.1")) >= 0);
	CHECK(again.mtime >= again.ctime);
	struct km_resource missing = mk("Dataplane", "m1", "ghost", "");
	missing.version = 1;
	CHECK(cp_store_update(s, &missing) == -KM_E_NOT_FOUND);
	CHECK(cp_store_remove(s, d1.type, KM_STR("m1"), KM_STR("dp-b"), 1) == -KM_E_CONFLICT);

	/* order (name, mesh), filters and paging */
	struct cp_list_result res;
	struct cp_list_opts all = {0};
	CHECK(cp_store_list(s, a, d1.type, &all, &res) == 0);
	CHECK(res.total == 3 && res.len == 3);
	if (res.len == 3) {
		CHECK(km_str_eqc(res.items[0].name, "dp-a") && km_str_eqc(res.items[0].mesh, "m1"));
		CHECK(km_str_eqc(res.items[1].mesh, "m2") && km_str_eqc(res.items[2].name, "dp-b"));
	}
	struct cp_label_filter lf = {KM_STR("app"), KM_STR("x")};
	struct cp_list_opts byl = {.labels = &lf, .labels_len = 1, .offset = 1, .size = 1};
	CHECK(cp_store_list(s, a, d1.type, &byl, &res) == 0);
	CHECK(res.total == 2 && res.len == 1 && res.len && km_str_eqc(res.items[0].name, "dp-b"));
	struct cp_list_opts bym = {.mesh = KM_STR("m1"), .name_contains = KM_STR("-a")};
	CHECK(cp_store_list(s, a, d1.type, &bym, &res) == 0 && res.total == 1);
	CHECK(cp_store_count(s, d1.type, KM_STR("m1")) == 2);

	/* cascade: a mesh owns everything in it, a dataplane its insight */
	CHECK(cp_store_remove(s, m1.type, KM_STR(""), KM_STR("m1"), 0) == 0);
	CHECK(cp_store_count(s, d1.type, KM_STR("")) == 1);
	CHECK(cp_store_count(s, i1.type, KM_STR("")) == 0);
	CHECK(cp_store_remove(s, m1.type, KM_STR(""), KM_STR("m1"), 0) == -KM_E_NOT_FOUND);
	struct km_resource i3 = mk("DataplaneInsight", "m2", "dp-a", "");
	CHECK(cp_store_create(s, &i3) == 0);
	CHECK(cp_store_remove(s, d3.type, KM_STR("m2"), KM_STR("dp-a"), 0) == 0);
	CHECK(cp_store_count(s, i3.type, KM_STR("m2")) == 0);
	CHECK(cp_store_healthy(s));

	/* every committed write reported once, cascades included */
	settle(loop, kind);
	CHECK(events[CP_STORE_CREATE] == 7);
	CHECK(events[CP_STORE_UPDATE] == 1);
	CHECK(events[CP_STORE_DELETE] == 6);
	if (events[CP_STORE_CREATE] != 7 || events[CP_STORE_DELETE] != 6)
		fprintf(stderr, "events: create=%d update=%d delete=%d\n", events[0], events[1], events[2]);

	/* leave the database empty for the next run */
	cp_store_remove(s, m2.type, KM_STR(""), KM_STR("m2"), 0);
	km_arena_free(a);
	if (s2 != s)
		cp_store_free(s2);
	cp_store_free(s);
	km_loop_free(loop);
	cp_config_fini(&cfg);
	return test_summary();
}
