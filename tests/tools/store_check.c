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

/* ---- asynchronous read-modify-writes ---- */

/* An operation that counts: spec {"n": N} becomes {"n": N + 1}. */
struct counter_op {
	struct cp_store_rmw op;
	char name[32];
	int merges, done_calls, rc;
	int done_seq; /* order of done() calls */
	bool skip;                  /* merge() writes nothing */
	struct cp_store *interfere; /* first merge(): this handle writes n = 100 meanwhile */
};

static int rmw_pending, rmw_seq;

static long spec_n(struct km_str spec)
{
	const char *p = memchr(spec.ptr, ':', spec.len);
	return p ? strtol(p + 1, NULL, 10) : 0;
}

static bool counter_merge(struct cp_store_rmw *op, struct km_arena *a, const struct km_resource *cur,
			  struct km_resource *out)
{
	struct counter_op *c = (struct counter_op *)op;
	if (c->merges++ == 0 && c->interfere && cur) {
		struct km_resource r = *cur;
		r.spec = KM_STR("{\"n\":100}");
		CHECK(cp_store_update(c->interfere, &r) == 0);
	}
	if (c->skip)
		return false;
	out->spec = km_str_c(km_arena_printf(a, "{\"n\":%ld}", cur ? spec_n(cur->spec) + 1 : 1));
	return true;
}

static void counter_done(struct cp_store_rmw *op, int rc)
{
	struct counter_op *c = (struct counter_op *)op;
	c->done_calls++;
	c->rc = rc;
	c->done_seq = ++rmw_seq;
	rmw_pending--;
}

static void counter_init(struct counter_op *c, const char *name)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->op.type = km_rtype_by_name(KM_STR("MeshTimeout"));
	c->op.mesh = KM_STR("m2");
	c->op.name = km_str_c(c->name);
	c->op.merge = counter_merge;
	c->op.done = counter_done;
}

static void submit(struct cp_store *s, struct counter_op *c)
{
	rmw_pending++;
	cp_store_rmw(s, &c->op);
}

/* Runs the loop until every submitted operation is done (10 s at most). */
static void drain(struct km_loop *loop)
{
	for (int i = 0; i < 1000 && rmw_pending > 0; i++) {
		struct km_timer t = {0};
		km_loop_timer_start(loop, &t, 10, stop_loop, NULL);
		km_loop_run(loop);
		km_loop_timer_stop(loop, &t);
	}
}

static long stored_n(struct cp_store *s, struct km_arena *a, const char *name, uint64_t *version)
{
	struct km_resource r;
	if (cp_store_get(s, a, km_rtype_by_name(KM_STR("MeshTimeout")), KM_STR("m2"), km_str_c(name), &r))
		return -1;
	if (version)
		*version = r.version;
	return spec_n(r.spec);
}

#define RMW_N 150 /* more than one batch of the PostgreSQL writer */

static void check_rmw(struct cp_store *s, struct cp_store *other, struct km_loop *loop, struct km_arena *a,
		      bool async)
{
	static struct counter_op ops[RMW_N * 3];
	char name[32];
	/* creates, then three rounds on every record, submitted back to back */
	for (int i = 0; i < RMW_N; i++) {
		snprintf(name, sizeof(name), "rmw-%d", i);
		counter_init(&ops[i], name);
		submit(s, &ops[i]);
	}
	drain(loop);
	CHECK(rmw_pending == 0);
	int bad = 0;
	for (int i = 0; i < RMW_N; i++)
		bad += ops[i].done_calls != 1 || ops[i].rc != 0 || ops[i].merges != 1;
	CHECK(bad == 0);
	CHECK(stored_n(s, a, "rmw-0", NULL) == 1 && stored_n(s, a, "rmw-149", NULL) == 1);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < RMW_N; i++) {
			snprintf(name, sizeof(name), "rmw-%d", i);
			counter_init(&ops[round * RMW_N + i], name);
			submit(s, &ops[round * RMW_N + i]);
		}
	drain(loop);
	CHECK(rmw_pending == 0);
	bad = 0;
	for (int i = 0; i < RMW_N * 3; i++)
		bad += ops[i].done_calls != 1 || ops[i].rc != 0;
	CHECK(bad == 0);
	bad = 0;
	for (int i = 0; i < RMW_N; i++) {
		snprintf(name, sizeof(name), "rmw-%d", i);
		uint64_t v = 0;
		bad += stored_n(s, a, name, &v) != 4 || v != 4;
	}
	CHECK(bad == 0);

	/* another writer between the read and the write: read and merged again */
	struct counter_op c;
	counter_init(&c, "rmw-0");
	c.interfere = other;
	submit(s, &c);
	drain(loop);
	CHECK(c.done_calls == 1 && c.rc == 0 && c.merges == 2);
	CHECK(stored_n(s, a, "rmw-0", NULL) == 101);

	/* merge() declining writes nothing */
	uint64_t before = 0, after = 0;
	stored_n(s, a, "rmw-1", &before);
	counter_init(&c, "rmw-1");
	c.skip = true;
	submit(s, &c);
	drain(loop);
	CHECK(c.done_calls == 1 && c.rc == 0 && c.merges == 1);
	CHECK(stored_n(s, a, "rmw-1", &after) == 4 && after == before);

	if (async) {
		/* a missing mesh (the owner key): the error reaches done() */
		counter_init(&c, "rmw-x");
		c.op.mesh = KM_STR("no-such-mesh");
		submit(s, &c);
		drain(loop);
		CHECK(c.done_calls == 1 && c.rc == -KM_E_MESH_NOT_FOUND);

		/* withdrawn before it ran: neither merge() nor done() */
		counter_init(&c, "rmw-2");
		submit(s, &c);
		cp_store_rmw_cancel(s, &c.op);
		rmw_pending--;
		struct counter_op d;
		counter_init(&d, "rmw-3");
		submit(s, &d);
		drain(loop);
		CHECK(c.done_calls == 0 && c.merges == 0 && d.done_calls == 1 && d.rc == 0);
		CHECK(stored_n(s, a, "rmw-2", NULL) == 4 && stored_n(s, a, "rmw-3", NULL) == 5);

		/* urgent operations overtake the others still waiting */
		for (int i = 0; i < RMW_N; i++) {
			snprintf(name, sizeof(name), "rmw-%d", i);
			counter_init(&ops[i], name);
			submit(s, &ops[i]);
		}
		counter_init(&d, "rmw-0");
		d.op.urgent = true;
		submit(s, &d);
		drain(loop);
		CHECK(rmw_pending == 0 && d.done_calls == 1 && d.rc == 0);
		CHECK(d.done_seq < ops[RMW_N - 1].done_seq);
		CHECK(stored_n(s, a, "rmw-0", NULL) == 103 && stored_n(s, a, "rmw-149", NULL) == 5);

		/* at shutdown: run to the end without the loop */
		for (int i = 0; i < RMW_N; i++) {
			snprintf(name, sizeof(name), "rmw-%d", i);
			counter_init(&ops[i], name);
			submit(s, &ops[i]);
		}
		cp_store_rmw_drain(s, 10000);
		CHECK(rmw_pending == 0);
		CHECK(stored_n(s, a, "rmw-149", NULL) == 6 && stored_n(s, a, "rmw-4", NULL) == 6);
	}
}

/* Several names of one mesh in one call: found, missing, repeated, and a
 * name that needs quoting in a PostgreSQL array literal. */
static void check_get_many(struct cp_store *s, struct km_arena *a)
{
	const struct km_rtype *t = km_rtype_by_name(KM_STR("MeshTimeout"));
	struct km_str names[] = {KM_STR("rmw-1"), KM_STR("nope"), KM_STR("rmw-2"), KM_STR("rmw-1"),
				 KM_STR("we\"i\\rd,{x}"), KM_STR("rmw-149")};
	size_t n = sizeof(names) / sizeof(*names);
	struct km_resource out[6];
	int rcs[6];
	CHECK(cp_store_get_many(s, a, t, KM_STR("m2"), names, n, out, rcs) == 0);
	CHECK(rcs[0] == 0 && rcs[1] == -KM_E_NOT_FOUND && rcs[2] == 0 && rcs[3] == 0 &&
	      rcs[4] == -KM_E_NOT_FOUND && rcs[5] == 0);
	CHECK(!rcs[0] && km_str_eqc(out[0].name, "rmw-1") && spec_n(out[0].spec) == stored_n(s, a, "rmw-1", NULL));
	CHECK(!rcs[3] && km_str_eqc(out[3].name, "rmw-1") && out[3].version == out[0].version);
	CHECK(!rcs[5] && km_str_eqc(out[5].name, "rmw-149") && km_str_eqc(out[5].mesh, "m2"));
	/* another mesh holds none of them */
	CHECK(cp_store_get_many(s, a, t, KM_STR("m1"), names, n, out, rcs) == 0 && rcs[0] == -KM_E_NOT_FOUND &&
	      rcs[5] == -KM_E_NOT_FOUND);
}

/* Every type's count of a mesh at once equals the counts one by one. */
static void check_count_types(struct cp_store *s, const char *mesh, bool some)
{
	size_t *n = calloc(km_rtypes_len, sizeof(*n));
	CHECK(cp_store_count_types(s, km_str_c(mesh), n) == 0);
	size_t total = 0;
	for (size_t i = 0; i < km_rtypes_len; i++) {
		CHECK(n[i] == cp_store_count(s, &km_rtypes[i], km_str_c(mesh)));
		total += n[i];
	}
	CHECK(some == (total > 0));
	free(n);
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

	check_rmw(s, s2, loop, a, strcmp(kind, "postgres") == 0);
	check_get_many(s, a);
	check_count_types(s, "m1", false);
	check_count_types(s, "m2", true);
	check_count_types(s, "no-such-mesh", false);

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
