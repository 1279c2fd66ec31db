/* SPDX-License-Identifier: Apache-2.0 */
/* MeshInsight resyncer (see insights.h). State is a small set of dirty mesh
 * names owned by the component; each run works in a fresh arena and writes a
 * MeshInsight only when its content changed, so a quiet mesh causes no
 * writes. */
#include "cp/insights.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "cp/memo.h"

/* A mesh to recount; <structural> unless only DataplaneInsights changed
 * (then the counts can differ only if an insight's facts did). */
struct dirty {
	char *mesh;
	bool structural;
	int64_t since; /* the first event of this batch for the mesh (ns) */
};

/* A mesh's resources counted by type (by index in km_rtypes), kept until
 * a create or delete of a counted type: a count is a query per type on
 * PostgreSQL (28-42 ms a flush at 10,000 proxies), and most flushes follow
 * insight writes, which change no count. */
struct counts {
	char *mesh;
	size_t *n;
	bool valid;
};

struct cp_insights {
	struct cp_runtime *rt;
	struct counts *counts;
	size_t ncounts;
	struct km_timer timer;
	uint64_t min_interval_ms;
	uint64_t last_run_ms;
	uint64_t last_cost_ms; /* how long the last flush took: the next waits 3x that at least */
	struct dirty *dirty;
	size_t ndirty, cap;
	bool running; /* our own writes must not re-mark */
	bool active;  /* leader only */
	struct cp_memo *dps, *insights; /* struct dp_fact, struct cp_insight_fact */
	uint64_t passes, pass_ns;       /* flushes that recomputed something, and their time */
	struct cp_insights_hists h;     /* upstream's insights_resyncer_* (milliseconds) */
	int64_t idle_since;             /* the end of the last flush (ns), 0: none yet */
};

/* What the counts need of a Dataplane... */
struct dp_fact {
	bool gateway;
	size_t inbounds, ready; /* inbounds, and those ready */
};


static void run(struct km_loop *loop, void *ctx);

static void observe_ms(double *sum, uint64_t *counts, int64_t ns)
{
	struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, counts, *sum};
	km_prom_observe(&h, ns > 0 ? (double)ns / 1e6 : 0, 1);
	*sum = h.sum;
}

static void mark(struct cp_insights *ins, struct km_str mesh, bool structural)
{
	for (size_t i = 0; i < ins->ndirty; i++)
		if (km_str_eqc(mesh, ins->dirty[i].mesh)) {
			ins->dirty[i].structural |= structural;
			return;
		}
	if (ins->ndirty == ins->cap) {
		ins->cap = ins->cap ? ins->cap * 2 : 8;
		ins->dirty = km_realloc(ins->dirty, ins->cap * sizeof(*ins->dirty));
	}
	ins->dirty[ins->ndirty++] = (struct dirty){km_strndup(mesh.ptr, mesh.len), structural, km_time_now()};
	if (!ins->timer.armed) {
		/* at least 20 ms: writes come in bursts, and the xDS server's
		 * recompute (due 1 ms after the same event) serves the proxies
		 * before this status record is counted again */
		uint64_t now = km_loop_now_ms(), wait = 20;
		/* a flush reads every Dataplane and insight: at thousands of
		 * proxies (on PostgreSQL, seconds) leave the loop at least 3/4 of
		 * the time for everything else */
		uint64_t gap = ins->min_interval_ms > 3 * ins->last_cost_ms ? ins->min_interval_ms : 3 * ins->last_cost_ms;
		if (ins->last_run_ms && now - ins->last_run_ms + wait < gap)
			wait = gap - (now - ins->last_run_ms);
		km_loop_timer_start(ins->rt->loop, &ins->timer, wait, run, ins);
	}
}

static void mark_all(struct cp_insights *ins)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_list_opts o = {0};
	struct cp_list_result r;
	if (cp_store_list(ins->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), &o, &r) == 0)
		for (size_t i = 0; i < r.len; i++)
			mark(ins, r.items[i].name, true);
	/* insights of meshes that are gone */
	if (cp_store_list(ins->rt->store, a, km_rtype_by_name(KM_STR("MeshInsight")), &o, &r) == 0)
		for (size_t i = 0; i < r.len; i++)
			mark(ins, r.items[i].name, true);
	km_arena_free(a);
}

/* The types MeshInsight's spec.resources counts. */
static bool counted(const struct km_rtype *t)
{
	return t->scope == KM_SCOPE_MESH && !km_rtype_has(t, KM_RT_READ_ONLY);
}

static struct counts *counts_of(struct cp_insights *ins, struct km_str mesh, bool create)
{
	for (size_t i = 0; i < ins->ncounts; i++)
		if (km_str_eqc(mesh, ins->counts[i].mesh))
			return &ins->counts[i];
	if (!create)
		return NULL;
	ins->counts = km_realloc(ins->counts, (ins->ncounts + 1) * sizeof(*ins->counts));
	struct counts *c = &ins->counts[ins->ncounts++];
	*c = (struct counts){.mesh = km_strndup(mesh.ptr, mesh.len), .n = km_calloc(km_rtypes_len, sizeof(size_t))};
	return c;
}

/* Every change event, active or not: a count may have moved. */
static void counts_follow(struct cp_insights *ins, enum cp_store_op op, const struct km_rtype *t,
			  struct km_str mesh, struct km_str name)
{
	if (op == CP_STORE_RESYNC) {
		for (size_t i = 0; i < ins->ncounts; i++)
			ins->counts[i].valid = false;
		return;
	}
	if (strcmp(t->name, "Mesh") == 0 && op == CP_STORE_DELETE) {
		struct counts *c = counts_of(ins, name, false);
		if (c) {
			free(c->mesh);
			free(c->n);
			*c = ins->counts[--ins->ncounts];
		}
		return;
	}
	if (op == CP_STORE_UPDATE || !counted(t))
		return;
	struct counts *c = counts_of(ins, mesh, false);
	if (c)
		c->valid = false;
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	struct cp_insights *ins = ctx;
	counts_follow(ins, op, t, mesh, name);
	/* the memos follow every write, active or not (see cp_memo_touch) */
	cp_memo_follow(ins->dps, "Dataplane", op, t, mesh, name);
	/* a write that changed no fact (ACK counters): nothing to count again */
	if (cp_memo_follow(ins->insights, "DataplaneInsight", op, t, mesh, name))
		return;
	if (!ins->active || ins->running)
		return;
	if (op == CP_STORE_RESYNC) {
		mark_all(ins);
		return;
	}
	if (strcmp(t->name, "MeshInsight") == 0) {
		if (op == CP_STORE_DELETE)
			mark(ins, name, true); /* deleted by hand: back at once (or gone with its Mesh) */
		return;
	}
	if (strcmp(t->name, "Mesh") == 0)
		mark(ins, name, true);
	else if (t->scope == KM_SCOPE_MESH && mesh.len)
		mark(ins, mesh, strcmp(t->name, "DataplaneInsight") != 0); /* most are ACK counters */
}

struct stat {
	int64_t total, online, offline, degraded;
};

static struct km_json *stat_json(struct km_arena *a, const struct stat *s)
{
	/* proto3 JSON leaves zero values out */
	struct km_json *o = km_json_object(a);
	if (s->total)
		km_json_set(a, o, "total", km_json_int(a, s->total));
	if (s->online)
		km_json_set(a, o, "online", km_json_int(a, s->online));
	if (s->offline)
		km_json_set(a, o, "offline", km_json_int(a, s->offline));
	if (s->degraded)
		km_json_set(a, o, "partiallyDegraded", km_json_int(a, s->degraded));
	return o;
}

enum dp_status { DP_ONLINE, DP_OFFLINE, DP_DEGRADED };

static struct km_json *last_subscription(const struct km_json *insight)
{
	struct km_json *subs = km_json_get(insight, "subscriptions");
	if (!subs || subs->kind != KM_JSON_ARRAY || subs->len == 0)
		return NULL;
	return subs->items[subs->len - 1];
}

static void dp_fact(struct km_arena *a, const struct km_resource *r, void *out)
{
	struct dp_fact *f = out;
	struct km_arena *t = km_arena_new(4096);
	struct km_json *dp = NULL;
	km_json_parse(t, r->spec.ptr, r->spec.len, &dp, NULL);
	f->gateway = km_json_get(km_json_get(dp, "networking"), "gateway") != NULL;
	struct km_json *inb = km_json_get(km_json_get(dp, "networking"), "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		f->inbounds++;
		struct km_str state = km_json_get_string(inb->items[i], "state");
		struct km_json *ready = km_json_get(km_json_get(inb->items[i], "health"), "ready");
		bool ok = state.len ? km_str_eqc(state, "Ready")
				    : !(ready && ready->kind == KM_JSON_BOOL && !ready->b);
		f->ready += ok;
	}
	km_arena_free(t);
}

static void keep(char *out, size_t cap, struct km_str s)
{
	size_t n = s.len < cap - 1 ? s.len : cap - 1;
	memcpy(out, s.ptr ? s.ptr : "", n);
	out[n] = 0;
}

void cp_insight_fact_of(const struct km_json *spec, struct cp_insight_fact *f)
{
	memset(f, 0, sizeof(*f));
	struct km_json *sub = last_subscription(spec);
	f->online = sub && km_json_get(sub, "connectTime") && !km_json_get(sub, "disconnectTime");
	struct km_json *ver = km_json_get(sub, "version");
	keep(f->kuma_dp, sizeof(f->kuma_dp), km_json_get_string(km_json_get(ver, "kumaDp"), "version"));
	keep(f->envoy, sizeof(f->envoy), km_json_get_string(km_json_get(ver, "envoy"), "version"));
}

void cp_insight_fact(struct km_arena *a, const struct km_resource *r, void *out)
{
	struct km_arena *t = km_arena_new(4096);
	struct km_json *insight = NULL;
	km_json_parse(t, r->spec.ptr, r->spec.len, &insight, NULL);
	cp_insight_fact_of(insight, out);
	km_arena_free(t);
}

static enum dp_status dp_status(const struct dp_fact *dp, const struct cp_insight_fact *insight)
{
	if (!insight || !insight->online)
		return DP_OFFLINE;
	if (dp->ready == dp->inbounds)
		return DP_ONLINE;
	return dp->ready ? DP_DEGRADED : DP_OFFLINE;
}

static void count(struct stat *s, enum dp_status st)
{
	s->total++;
	if (st == DP_ONLINE)
		s->online++;
	else if (st == DP_DEGRADED)
		s->degraded++;
	else
		s->offline++;
}

/* versions[v] += status, keeping first-seen order */
static void count_version(struct km_arena *a, struct km_json *map, struct km_str version,
			  enum dp_status st, struct stat **stats, size_t *nstats)
{
	if (!version.len)
		version = KM_STR("unknown");
	for (size_t i = 0; i < map->len; i++)
		if (km_str_eq(map->members[i].key, version)) {
			count(stats[i], st);
			return;
		}
	km_json_set_str(a, map, version, km_json_null(a));
	stats[*nstats] = km_arena_alloc(a, sizeof(struct stat));
	count(stats[(*nstats)++], st);
}

/* Recounts <mesh>'s MeshInsight. When only insights changed (<structural>
 * false) and their facts (online, versions) are those of the last full
 * count, nothing can differ: returns without reading the Dataplanes
 * (*skipped). */
static int compute(struct cp_insights *ins, struct km_arena *a, const char *mesh_c, bool structural,
		   bool *skipped, bool *wrote)
{
	struct cp_store *s = ins->rt->store;
	struct km_str mesh = km_str_c(mesh_c);
	const struct km_rtype *mi_t = km_rtype_by_name(KM_STR("MeshInsight"));
	struct km_resource m, cur;
	bool have_cur = cp_store_get(s, a, mi_t, KM_STR(""), mesh, &cur) == 0;
	if (cp_store_get(s, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &m) != 0)
		return have_cur ? cp_store_remove(s, mi_t, KM_STR(""), mesh, 0) : 0;

	/* Dataplanes and insights in pages through the memos (see memo.h) */
	const struct km_rtype *dpi_t = km_rtype_by_name(KM_STR("DataplaneInsight"));
	struct cp_memo_index insights;
	int rc = cp_memo_index(ins->insights, s, a, dpi_t, mesh, &insights);
	if (rc)
		return rc;
	uint64_t h = cp_memo_index_fp(&insights, sizeof(struct cp_insight_fact)); /* zeroed, then filled */
	uint64_t last;
	if (!structural && have_cur && cp_memo_mark_get(ins->insights, mesh_c, &last) && last == h) {
		*skipped = true;
		return 0;
	}
	struct cp_memo_index dps;
	rc = cp_memo_index(ins->dps, s, a, km_rtype_by_name(KM_STR("Dataplane")), mesh, &dps);
	if (rc)
		return rc;
	struct stat all = {0}, standard = {0}, delegated = {0};
	struct km_json *kdp = km_json_object(a), *envoy = km_json_object(a);
	struct stat **kdp_stats = km_arena_alloc(a, (dps.n + 1) * sizeof(*kdp_stats));
	struct stat **envoy_stats = km_arena_alloc(a, (dps.n + 1) * sizeof(*envoy_stats));
	size_t nk = 0, ne = 0;
	for (size_t i = 0; i < dps.n; i++) {
		const struct dp_fact *dp = dps.facts[i];
		const struct cp_insight_fact *insight = cp_memo_index_find(&insights, km_str_c(dps.names[i]));
		enum dp_status st = dp_status(dp, insight);
		count(&all, st);
		count(dp->gateway ? &delegated : &standard, st);
		count_version(a, kdp, km_str_c(insight ? insight->kuma_dp : ""), st, kdp_stats, &nk);
		count_version(a, envoy, km_str_c(insight ? insight->envoy : ""), st, envoy_stats, &ne);
	}
	for (size_t i = 0; i < nk; i++)
		kdp->members[i].val = stat_json(a, kdp_stats[i]);
	for (size_t i = 0; i < ne; i++)
		envoy->members[i].val = stat_json(a, envoy_stats[i]);

	struct km_json *spec = km_json_object(a);
	km_json_set(a, spec, "dataplanes", stat_json(a, &all));
	struct km_json *versions = km_json_object(a);
	if (kdp->len)
		km_json_set(a, versions, "kumaDp", kdp);
	if (envoy->len)
		km_json_set(a, versions, "envoy", envoy);
	km_json_set(a, spec, "dpVersions", versions);
	km_json_set(a, spec, "mTLS", km_json_object(a));
	struct km_json *by_type = km_json_object(a);
	km_json_set(a, by_type, "standard", stat_json(a, &standard));
	km_json_set(a, by_type, "gateway", stat_json(a, &delegated));
	km_json_set(a, by_type, "gatewayDelegated", stat_json(a, &delegated));
	km_json_set(a, spec, "dataplanesByType", by_type);
	struct counts *c = counts_of(ins, mesh, true);
	if (!c->valid) {
		if ((rc = cp_store_count_types(s, mesh, c->n)))
			return rc;
		for (size_t t = 0; t < km_rtypes_len; t++)
			if (!counted(&km_rtypes[t]))
				c->n[t] = 0;
		c->valid = true;
	}
	struct km_json *res = km_json_object(a);
	for (size_t t = 0; t < km_rtypes_len; t++) {
		if (!c->n[t])
			continue;
		struct km_json *e = km_json_object(a);
		km_json_set(a, e, "total", km_json_int(a, (int64_t)c->n[t]));
		km_json_set(a, res, km_rtypes[t].name, e);
	}
	if (res->len)
		km_json_set(a, spec, "resources", res);

	struct km_resource_doc d = {.type = mi_t, .name = mesh, .mesh = KM_STR(""), .spec = spec};
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	if (have_cur && km_str_eq(cur.spec, r.spec)) {
		rc = 0; /* nothing changed: no write */
	} else if (have_cur) {
		r.version = cur.version;
		rc = cp_store_update(s, &r);
		*wrote = rc == 0;
	} else {
		rc = cp_store_create(s, &r);
		*wrote = rc == 0;
	}
	if (rc == 0)
		cp_memo_mark_set(ins->insights, mesh_c, h); /* the facts this count is from */
	return rc;
}

void cp_insights_flush(struct cp_insights *ins)
{
	km_loop_timer_stop(ins->rt->loop, &ins->timer);
	ins->running = true;
	int64_t started = km_time_now();
	struct km_arena *a = km_arena_new(0);
	cp_store_relaxed(ins->rt->store, true); /* MeshInsights are recomputed: no commit waits for the disk */
	bool skipped = false;
	size_t n = ins->ndirty;
	if (n && ins->idle_since)
		observe_ms(&ins->h.idle, ins->h.idle_counts, started - ins->idle_since);
	for (size_t i = 0; i < ins->ndirty; i++) {
		int64_t t0 = km_time_now();
		observe_ms(&ins->h.to_process, ins->h.to_process_counts, t0 - ins->dirty[i].since);
		bool wrote = false;
		int rc = compute(ins, a, ins->dirty[i].mesh, ins->dirty[i].structural, &skipped, &wrote);
		/* every batch here follows events (upstream's "force"; there is no
		 * periodic full resync) */
		observe_ms(&ins->h.processing[wrote], ins->h.processing_counts[wrote], km_time_now() - t0);
		if (rc)
			km_warn("insights", "mesh insight update failed mesh=%s error=%s", ins->dirty[i].mesh,
				km_strerror(rc));
		free(ins->dirty[i].mesh);
	}
	if (ins->ndirty) {
		/* drop what this flush did not read (deleted records, meshes not
		 * dirty this time: recomputed when next read); a skipped mesh
		 * read no Dataplanes, so they stay */
		if (!skipped)
			cp_memo_sweep(ins->dps);
		cp_memo_sweep(ins->insights);
	}
	cp_store_relaxed(ins->rt->store, false);
	ins->ndirty = 0;
	km_arena_free(a);
	ins->running = false;
	ins->last_run_ms = km_loop_now_ms();
	ins->last_cost_ms = (uint64_t)((km_time_now() - started) / 1000000);
	if (n) {
		ins->passes++;
		ins->pass_ns += (uint64_t)(km_time_now() - started);
		ins->idle_since = km_time_now();
	}
}

void cp_insights_stats(const struct cp_insights *ins, uint64_t *passes, double *seconds)
{
	*passes = ins ? ins->passes : 0;
	*seconds = ins ? (double)ins->pass_ns / 1e9 : 0;
}

void cp_insights_hists(const struct cp_insights *ins, struct cp_insights_hists *out)
{
	*out = ins ? ins->h : (struct cp_insights_hists){0};
}

static void run(struct km_loop *loop, void *ctx)
{
	cp_insights_flush(ctx);
}

struct cp_memo *cp_insights_memo(struct cp_insights *ins)
{
	return ins->insights;
}

struct cp_insights *cp_insights_start(struct cp_runtime *rt, struct cp_events *bus,
				      uint64_t min_interval_ms)
{
	struct cp_insights *ins = km_calloc(1, sizeof(*ins));
	ins->rt = rt;
	ins->min_interval_ms = min_interval_ms;
	if (cp_events_subscribe(bus, on_change, ins)) {
		free(ins);
		return NULL;
	}
	ins->dps = cp_memo_new(sizeof(struct dp_fact), dp_fact);
	ins->insights = cp_memo_new(sizeof(struct cp_insight_fact), cp_insight_fact);
	return ins;
}

void cp_insights_set_active(struct cp_insights *ins, bool active)
{
	ins->active = active;
	if (active)
		mark_all(ins);
	else
		km_loop_timer_stop(ins->rt->loop, &ins->timer);
}

void cp_insights_stop(struct cp_insights *ins)
{
	if (!ins)
		return;
	km_loop_timer_stop(ins->rt->loop, &ins->timer);
	for (size_t i = 0; i < ins->ndirty; i++)
		free(ins->dirty[i].mesh);
	free(ins->dirty);
	for (size_t i = 0; i < ins->ncounts; i++) {
		free(ins->counts[i].mesh);
		free(ins->counts[i].n);
	}
	free(ins->counts);
	cp_memo_free(ins->dps);
	cp_memo_free(ins->insights);
	free(ins);
}
