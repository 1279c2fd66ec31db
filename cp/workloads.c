/* SPDX-License-Identifier: Apache-2.0 */
/* MeshService/Workload generator (see workloads.h). Each pass runs in its own
 * arena; it writes only what differs from the store, so a pass triggered by
 * its own writes ends without writing. */
#include "cp/workloads.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/jsonf.h"
#include "cp/insights.h"
#include "cp/memo.h"
#include "cp/pki/spiffe.h"

#define MS_MANAGER "meshservice-generator"
#define WL_MANAGER "workload-generator"
#define GRACE_LABEL "kuma.io/deletion-grace-period-started-at"

/* A mesh to regenerate; <structural> unless only DataplaneInsights changed
 * (then the output can differ only if a proxy went online or offline).
 * Unless <all>, only the workloads named here: <wls> directly (a
 * MeshService or Workload written, a Dataplane's workload before its
 * write) and those of the Dataplanes in <dps> as the pass reads them (a
 * Dataplane written, an insight changed). At 10,000 proxies a pass over
 * every workload took 45-50 ms on PostgreSQL, most of it grouping and
 * reconciling the services nothing had touched; a change that touches a
 * few costs what reading the indexes does. */
struct dirty {
	char *mesh;
	bool structural;
	bool all;
	struct names {
		char **v;
		size_t n, cap;
	} wls, dps;
};

/* Past this many names a pass over every workload costs less. */
#define MAX_DIRTY_NAMES 2048

struct cp_workloads {
	struct cp_runtime *rt;
	struct km_timer timer, grace;
	int64_t grace_ns;
	struct dirty *dirty;
	size_t ndirty, cap;
	bool active, running;
	int64_t quiet_until; /* no pass before (monotonic ns): passes cost O(Dataplanes) */
	uint64_t passes, pass_ns, writes, nworkloads; /* for GET :5680/metrics */
	uint64_t pass_counts[KM_PROM_DEF_NB + 1];
	double pass_sum_ms;
	struct cp_memo *dps; /* struct dp_fact */
	/* struct cp_insight_fact: the MeshInsight resyncer's, kept by its
	 * events (own_insights: this generator's, when there is none) */
	struct cp_memo *insights;
	bool own_insights;
	struct cp_memo *services, *workloads; /* MeshServices, Workloads: struct gen_fact */
	struct gen_write *pending; /* asked of the store, not done */
	/* A pass waits for the previous one's writes (pending): until their
	 * events arrive its memos are behind, and a pass meanwhile would ask
	 * for the same writes again (and again, each pass being short without
	 * them). */
	bool deferred; /* a pass is due once they are done */
};

/* What a pass needs of a Dataplane... */
struct dp_fact {
	struct km_str workload; /* kuma.io/workload, empty when none */
	struct km_json *ports;  /* MeshService ports of its inbounds */
	struct km_str labels;   /* as stored (a group's first Dataplane names its identity) */
	bool healthy;           /* every inbound ready */
};

/* A MeshService or Workload as stored (a pass compares what it would
 * write with it), and who manages it. */
struct gen_fact {
	struct km_resource r;
	struct km_json *labels, *spec, *status; /* r's, parsed (NULL when empty) */
	const char *managed_by; /* kuma.io/managed-by, "" when none */
	int64_t grace_started;  /* the grace label's time, 0 when none */
};

static void run(struct km_loop *loop, void *ctx);
static void grace_ended(struct km_loop *loop, void *ctx);

/* The pass timer, due when the quiet period after the last pass ends (at
 * least 20 ms: writes come in bursts), unless it is due sooner. */
static void arm(struct cp_workloads *w)
{
	int64_t wait_ms = (w->quiet_until - km_time_now()) / 1000000;
	if (wait_ms < 20)
		wait_ms = 20;
	if (w->timer.armed && w->timer.deadline_ms <= km_loop_now_ms() + (uint64_t)wait_ms)
		return;
	km_loop_timer_start(w->rt->loop, &w->timer, (uint64_t)wait_ms, run, w);
}

static void names_clear(struct names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
	memset(ns, 0, sizeof(*ns));
}

static void dirty_fini(struct dirty *d)
{
	free(d->mesh);
	names_clear(&d->wls);
	names_clear(&d->dps);
}

/* What to regenerate in <mesh>: every workload (<wl> and <dp> empty), or
 * workload <wl> and Dataplane <dp>'s (either may be empty). */
static void mark(struct cp_workloads *w, struct km_str mesh, bool structural, struct km_str wl, struct km_str dp)
{
	if (!w->rt->side_effects)
		return; /* after /_test/reset: writes are raw, as in upstream's API tests */
	struct dirty *d = NULL;
	for (size_t i = 0; i < w->ndirty && !d; i++)
		if (km_str_eqc(mesh, w->dirty[i].mesh))
			d = &w->dirty[i];
	if (!d) {
		if (w->ndirty == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 8;
			w->dirty = km_realloc(w->dirty, w->cap * sizeof(*w->dirty));
		}
		d = &w->dirty[w->ndirty++];
		*d = (struct dirty){.mesh = km_strndup(mesh.ptr, mesh.len)};
	}
	d->structural |= structural;
	if (!wl.len && !dp.len)
		d->all = true;
	if (!d->all && d->wls.n + d->dps.n + 2 > MAX_DIRTY_NAMES) {
		d->all = true;
		names_clear(&d->wls);
		names_clear(&d->dps);
	}
	for (int k = 0; k < 2 && !d->all; k++) {
		struct km_str v = k ? dp : wl;
		struct names *ns = k ? &d->dps : &d->wls;
		if (!v.len)
			continue;
		if (ns->n == ns->cap) {
			ns->cap = ns->cap ? ns->cap * 2 : 16;
			ns->v = km_realloc(ns->v, ns->cap * sizeof(*ns->v));
		}
		ns->v[ns->n++] = km_strndup(v.ptr, v.len);
	}
	arm(w);
}

static void mark_all(struct cp_workloads *w)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_list_opts o = {0};
	struct cp_list_result r;
	if (cp_store_list(w->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), &o, &r) == 0)
		for (size_t i = 0; i < r.len; i++)
			mark(w, r.items[i].name, true, KM_STR(""), KM_STR(""));
	km_arena_free(a);
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	struct cp_workloads *w = ctx;
	/* the workload a Dataplane had before this write: it may lose it */
	struct km_str was = KM_STR("");
	char *was_c = NULL;
	if (t && op != CP_STORE_RESYNC && strcmp(t->name, "Dataplane") == 0) {
		const struct dp_fact *f = cp_memo_peek(w->dps, mesh, name);
		if (f && f->workload.len) {
			was_c = km_strndup(f->workload.ptr, f->workload.len);
			was = km_str_c(was_c);
		}
	}
	/* the memos follow every write, active or not (see cp_memo_touch) */
	cp_memo_follow(w->dps, "Dataplane", op, t, mesh, name);
	/* a write that changed no fact (ACK counters): no pass for it; when the
	 * memo is the resyncer's, it followed this event just before */
	bool same = w->own_insights ? cp_memo_follow(w->insights, "DataplaneInsight", op, t, mesh, name)
				    : t && strcmp(t->name, "DataplaneInsight") == 0 && cp_memo_last_same(w->insights);
	cp_memo_follow(w->services, "MeshService", op, t, mesh, name);
	cp_memo_follow(w->workloads, "Workload", op, t, mesh, name);
	if (!w->active || w->running) {
		free(was_c);
		return;
	}
	if (op == CP_STORE_RESYNC) {
		mark_all(w);
	} else if (strcmp(t->name, "DataplaneInsight") == 0) {
		if (!same) /* online or versions changed: see generate() */
			mark(w, mesh, false, KM_STR(""), name);
	} else if (strcmp(t->name, "Dataplane") == 0) {
		mark(w, mesh, true, was, name);
	} else if (strcmp(t->name, "MeshService") == 0 || strcmp(t->name, "Workload") == 0) {
		mark(w, mesh, true, name, KM_STR(""));
	} else if (strcmp(t->name, "MeshIdentity") == 0) {
		mark(w, mesh, true, KM_STR(""), KM_STR("")); /* every group's identity */
	}
	free(was_c);
}

struct group {
	struct km_str name;
	struct km_json *ports;
	const char *spiffe_id; /* identity of its proxies (first Dataplane's), or NULL */
	size_t total, healthy, connected;
};

/* A Dataplane with a kuma.io/workload label, in the order groups are made:
 * by workload, then by name (the group takes its first member's identity). */
struct member {
	struct km_str wl;
	size_t idx; /* in the name-sorted Dataplane index */
	const struct dp_fact *fact;
};

static int cmp_member(const void *x, const void *y)
{
	const struct member *a = x, *b = y;
	int c = km_str_cmp(a->wl, b->wl);
	return c ? c : (a->idx > b->idx) - (a->idx < b->idx);
}

static int group_by_name(const void *key, const void *elt)
{
	return km_str_cmp(*(const struct km_str *)key, ((const struct group *)elt)->name);
}

static bool group_wanted(const struct group *groups, size_t n, struct km_str name)
{
	return n && bsearch(&name, groups, n, sizeof(*groups), group_by_name);
}

static struct km_json *ports_of(struct km_arena *a, const struct km_json *spec)
{
	struct km_json *ports = km_json_array(a);
	struct km_json *inb = km_json_get(km_json_get(spec, "networking"), "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		struct km_json *in = inb->items[i];
		int64_t port = km_json_i64_sat(km_json_get(in, "port"));
		struct km_str name = km_json_get_string(in, "name");
		struct km_str proto = km_json_get_string(in, "protocol");
		bool known = km_str_eqc(proto, "http") || km_str_eqc(proto, "http2") ||
			     km_str_eqc(proto, "grpc") || km_str_eqc(proto, "tcp");
		struct km_json *p = km_json_fmt(a, "{\"name\":%s,\"port\":%D,\"targetPort\":%D,\"appProtocol\":%s}",
						name.len ? km_arena_strndup(a, name.ptr, name.len)
							 : km_arena_printf(a, "%lld", (long long)port),
						port, port,
						known ? km_arena_strndup(a, proto.ptr, proto.len) : "tcp");
		km_json_array_push(a, ports, p);
	}
	return ports;
}

static bool inbounds_healthy(const struct km_json *spec)
{
	struct km_json *inb = km_json_get(km_json_get(spec, "networking"), "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		struct km_str st = km_json_get_string(inb->items[i], "state");
		struct km_json *ready = km_json_get(km_json_get(inb->items[i], "health"), "ready");
		if ((st.len && !km_str_eqc(st, "Ready")) || (ready && ready->kind == KM_JSON_BOOL && !ready->b))
			return false;
	}
	return true;
}

static void dp_fact(struct km_arena *a, const struct km_resource *r, void *out)
{
	struct dp_fact *f = out;
	struct km_arena *t = km_arena_new(4096);
	struct km_json *labels = NULL, *spec = NULL;
	km_json_parse(t, r->labels.ptr, r->labels.len, &labels, NULL);
	struct km_str wl = km_json_get_string(labels, "kuma.io/workload");
	if (wl.len) {
		f->workload = (struct km_str){km_arena_strndup(a, wl.ptr, wl.len), wl.len};
		f->labels = (struct km_str){km_arena_strndup(a, r->labels.ptr, r->labels.len), r->labels.len};
		km_json_parse(t, r->spec.ptr, r->spec.len, &spec, NULL);
		f->ports = km_json_clone(a, ports_of(t, spec));
		f->healthy = inbounds_healthy(spec);
	}
	km_arena_free(t);
}

static struct km_json *labels_for(struct cp_workloads *w, struct km_arena *a, struct km_str mesh,
				  struct km_str name, const char *manager)
{
	return km_json_fmt(a,
			   "{\"kuma.io/display-name\":%S,\"kuma.io/env\":\"universal\",\"kuma.io/managed-by\":%s,"
			   "\"kuma.io/mesh\":%S,\"kuma.io/origin\":\"zone\",\"kuma.io/zone\":%s}",
			   &name, manager, &mesh, w->rt->zone ? w->rt->zone : "default");
}

/* Whether stored JSON (<stored>, parsed as <tree>) says what <mine>
 * (serialized as <text>) does. PostgreSQL keeps labels and status as
 * jsonb, which gives them back with its own key order and spacing:
 * compared as text, every generated record differed on every pass, so each
 * pass rewrote them all and their events started the next one. */
static bool same_json(struct km_str text, struct km_str stored, const struct km_json *tree,
		      const struct km_json *mine)
{
	if (km_str_eq(text, stored))
		return true;
	if (!stored.len)
		return mine && mine->kind == KM_JSON_OBJECT && mine->len == 0;
	return tree && km_json_equal(tree, mine);
}

/* One generated record to write (cp_store_rmw): what the pass computed,
 * as JSON text, written unless the store already holds the same (read when
 * the write runs: the pass compared with its memo, which events may not
 * have caught up with) or holds a record of that name the generator does
 * not manage (a user's wins). On PostgreSQL the writes of a pass are
 * pipelined off the loop: a pass that updates hundreds of statuses (proxies
 * coming online) does not hold the loop for a round trip each. */
struct gen_write {
	struct cp_store_rmw op;
	struct cp_workloads *w;
	struct gen_write *prev, *next; /* the generator's, until done */
	const char *manager;
	char *labels, *spec, *status; /* NULL: empty */
	bool update_only; /* the memo had it: gone since (deleted), not made again */
	bool wrote;
};

static struct km_json *parse_or_null(struct km_arena *a, struct km_str text)
{
	struct km_json *v = NULL;
	if (text.len)
		km_json_parse(a, text.ptr, text.len, &v, NULL);
	return v;
}

static bool gen_merge(struct cp_store_rmw *op, struct km_arena *a, const struct km_resource *cur,
		      struct km_resource *out)
{
	struct gen_write *g = (struct gen_write *)op;
	struct km_str labels = km_str_c(g->labels ? g->labels : ""), spec = km_str_c(g->spec ? g->spec : ""),
		      status = km_str_c(g->status ? g->status : "");
	if (!cur && g->update_only)
		return false;
	if (cur) {
		struct km_json *cl = parse_or_null(a, cur->labels);
		if (!km_str_eqc(km_json_get_string(cl, "kuma.io/managed-by"), g->manager))
			return false;
		if (same_json(spec, cur->spec, parse_or_null(a, cur->spec), parse_or_null(a, spec)) &&
		    same_json(labels, cur->labels, cl, parse_or_null(a, labels)) &&
		    same_json(status, cur->status, parse_or_null(a, cur->status), parse_or_null(a, status)))
			return false; /* nothing changed: no write, no event */
	}
	out->labels = labels;
	out->spec = spec;
	out->status = status;
	g->wrote = true;
	return true;
}

static void gen_done(struct cp_store_rmw *op, int rc)
{
	struct gen_write *g = (struct gen_write *)op;
	struct cp_workloads *w = g->w;
	if (rc)
		km_warn("workloads", "cannot write generated %s mesh=%.*s name=%.*s error=%s", op->type->name,
			KM_STR_FMT(op->mesh), KM_STR_FMT(op->name), km_strerror(rc));
	else if (g->wrote)
		w->writes++;
	if (g->prev)
		g->prev->next = g->next;
	else
		w->pending = g->next;
	if (g->next)
		g->next->prev = g->prev;
	free(g);
	if (!w->pending && w->deferred) {
		w->deferred = false;
		arm(w);
	}
}

/* Writes the record unless <cur> (the memo's view of it) says the same
 * already. */
static void write(struct cp_workloads *w, struct km_arena *a, const struct km_rtype *t, struct km_str mesh,
		  struct km_str name, struct km_json *labels, struct km_json *spec, struct km_json *status,
		  const struct gen_fact *cur)
{
	struct km_resource_doc d = {.type = t, .mesh = mesh, .name = name, .labels = labels,
				    .spec = spec, .status = status};
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	if (cur && same_json(r.spec, cur->r.spec, cur->spec, spec) &&
	    same_json(r.labels, cur->r.labels, cur->labels, labels) &&
	    same_json(r.status, cur->r.status, cur->status, status))
		return; /* nothing changed: no write, no event */
	/* the struct, then the strings it names */
	struct km_buf b = KM_BUF_INIT;
	km_buf_extend(&b, sizeof(struct gen_write));
	size_t mesh_at = km_buf_put_strz(&b, mesh), name_at = km_buf_put_strz(&b, name);
	size_t labels_at = km_buf_put_strz(&b, r.labels), spec_at = km_buf_put_strz(&b, r.spec);
	size_t status_at = km_buf_put_strz(&b, r.status);
	char *base = km_buf_steal(&b);
	struct gen_write *g = (struct gen_write *)(void *)base;
	memset(g, 0, sizeof(*g));
	g->w = w;
	g->manager = strcmp(t->name, "MeshService") == 0 ? MS_MANAGER : WL_MANAGER;
	g->update_only = cur != NULL;
	g->labels = r.labels.len ? base + labels_at : NULL;
	g->spec = r.spec.len ? base + spec_at : NULL;
	g->status = r.status.len ? base + status_at : NULL;
	g->op.type = t;
	g->op.mesh = km_str_c(base + mesh_at);
	g->op.name = km_str_c(base + name_at);
	g->op.urgent = true; /* MeshServices shape proxies; insights wait */
	g->op.merge = gen_merge;
	g->op.done = gen_done;
	g->next = w->pending;
	if (g->next)
		g->next->prev = g;
	w->pending = g;
	cp_store_rmw(w->rt->store, &g->op);
}

static struct km_str dup_str(struct km_arena *a, struct km_str v)
{
	return (struct km_str){v.len ? km_arena_strndup(a, v.ptr, v.len) : "", v.len};
}

static void gen_fact(struct km_arena *a, const struct km_resource *r, void *out)
{
	struct gen_fact *f = out;
	f->r = *r;
	f->r.mesh = dup_str(a, r->mesh);
	f->r.name = dup_str(a, r->name);
	f->r.labels = dup_str(a, r->labels);
	f->r.spec = dup_str(a, r->spec);
	f->r.status = dup_str(a, r->status);
	f->r.owner_type = f->r.owner_mesh = f->r.owner_name = (struct km_str){"", 0};
	/* parsed once per version, not on every pass that compares it */
	if (r->labels.len)
		km_json_parse(a, r->labels.ptr, r->labels.len, &f->labels, NULL);
	if (r->spec.len)
		km_json_parse(a, r->spec.ptr, r->spec.len, &f->spec, NULL);
	if (r->status.len)
		km_json_parse(a, r->status.ptr, r->status.len, &f->status, NULL);
	f->managed_by = dup_str(a, km_json_get_string(f->labels, "kuma.io/managed-by")).ptr;
	struct km_str ts = km_json_get_string(f->labels, GRACE_LABEL);
	int64_t ns;
	f->grace_started = ts.len && km_time_parse(ts, &ns) == 0 ? ns : 0;
}

/* The workloads a pass looks at (sorted, unique), when not all. */
struct wanted {
	struct km_str *v;
	size_t n;
};

static int cmp_km_str(const void *x, const void *y)
{
	return km_str_cmp(*(const struct km_str *)x, *(const struct km_str *)y);
}

static bool wanted_has(const struct wanted *only, struct km_str name)
{
	return only->n && bsearch(&name, only->v, only->n, sizeof(*only->v), cmp_km_str);
}

/* <d>'s workloads: those it names and those of its Dataplanes as <dps>
 * (just indexed) has them. */
static void wanted_of(struct km_arena *a, const struct dirty *d, const struct cp_memo_index *dps,
		      struct wanted *out)
{
	out->v = km_arena_alloc(a, (d->wls.n + d->dps.n + 1) * sizeof(*out->v));
	out->n = 0;
	for (size_t i = 0; i < d->wls.n; i++)
		out->v[out->n++] = km_str_c(d->wls.v[i]);
	for (size_t i = 0; i < d->dps.n; i++) {
		const struct dp_fact *f = cp_memo_index_find(dps, km_str_c(d->dps.v[i]));
		if (f && f->workload.len)
			out->v[out->n++] = f->workload;
	}
	qsort(out->v, out->n, sizeof(*out->v), cmp_km_str);
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++)
		if (!k || !km_str_eq(out->v[k - 1], out->v[i]))
			out->v[k++] = out->v[i];
	out->n = k;
}

/* Reconciles one type (MeshService or Workload) of one mesh against <groups>.
 * Returns the earliest grace-period expiry still pending (0 = none). */
static int64_t reconcile(struct cp_workloads *w, struct km_arena *a, struct km_str mesh,
			 struct group *groups, size_t ngroups, const struct wanted *only, bool meshservice)
{
	const struct km_rtype *t = km_rtype_by_name(meshservice ? KM_STR("MeshService") : KM_STR("Workload"));
	const char *manager = meshservice ? MS_MANAGER : WL_MANAGER;
	/* as stored: only those written since the last pass are read again */
	struct cp_memo_index cur;
	if (cp_memo_index(meshservice ? w->services : w->workloads, w->rt->store, a, t, mesh, &cur))
		return 0;
	int64_t now = km_time_now(), next = 0;
	for (size_t g = 0; g < ngroups; g++) {
		struct group *gr = &groups[g];
		const struct gen_fact *ef = cp_memo_index_find(&cur, gr->name);
		if (ef && strcmp(ef->managed_by, manager) != 0)
			continue; /* a user-authored resource of that name wins */
		struct km_json *proxies = km_json_fmt(a, "{\"connected\":%D,\"healthy\":%D,\"total\":%D}",
						      (int64_t)gr->connected, (int64_t)gr->healthy, (int64_t)gr->total);
		struct km_json *spec, *status;
		if (meshservice) {
			spec = km_json_fmt(a,
					   "{\"state\":%s,\"selector\":{\"dataplaneLabels\":{\"matchLabels\":"
					   "{\"kuma.io/workload\":%S}}},\"ports\":%J}",
					   gr->healthy ? "Available" : "Unavailable", &gr->name, gr->ports);
			/* the identity its proxies present: clients match it as the SAN */
			if (gr->spiffe_id)
				km_json_set(a, spec, "identities",
					    km_json_fmt(a, "[{\"type\":\"SpiffeID\",\"value\":%s}]", gr->spiffe_id));
			status = km_json_fmt(a, "{\"tls\":%J,\"dataplaneProxies\":%J}",
					     gr->spiffe_id ? km_json_fmt(a, "{\"status\":\"Ready\"}") : km_json_object(a),
					     proxies);
		} else {
			spec = km_json_object(a);
			status = km_json_fmt(a, "{\"dataplaneProxies\":%J}", proxies);
		}
		write(w, a, t, mesh, gr->name, labels_for(w, a, mesh, gr->name, manager), spec, status, ef);
	}
	/* generated resources whose workload is gone: grace period, then delete */
	for (size_t i = 0; i < cur.n; i++) {
		const struct gen_fact *ef = cur.facts[i];
		const struct km_resource *r = &ef->r;
		if (strcmp(ef->managed_by, manager) != 0)
			continue;
		if (only && !wanted_has(only, r->name))
			continue; /* not looked at in this pass */
		if (group_wanted(groups, ngroups, r->name))
			continue;
		int64_t started = ef->grace_started;
		if (!started) {
			/* copies: the memo's trees are shared with later passes */
			struct km_json *labels = ef->labels ? km_json_clone(a, ef->labels) : km_json_object(a);
			struct km_json *spec = ef->spec ? km_json_clone(a, ef->spec) : km_json_object(a);
			struct km_json *status = ef->status ? km_json_clone(a, ef->status) : NULL;
			km_json_set(a, labels, GRACE_LABEL, km_json_cstring(a, km_time_format(a, now / 1000000000 * 1000000000)));
			km_json_sort_keys(labels);
			write(w, a, t, mesh, r->name, labels, spec, status, ef);
			started = now;
		}
		if (now - started >= w->grace_ns) {
			cp_store_remove(w->rt->store, t, mesh, r->name, 0);
			km_info("workloads", "deleted generated %s after its grace period mesh=%.*s name=%.*s",
				t->name, KM_STR_FMT(mesh), KM_STR_FMT(r->name));
		} else if (!next || started + w->grace_ns < next) {
			next = started + w->grace_ns;
		}
	}
	return next;
}

/* Regenerates <mesh>'s MeshServices and Workloads. When only insights
 * changed (<structural> false) and every proxy is as online as in the last
 * full pass, nothing can differ: returns without reading the Dataplanes
 * (*skipped). */
static int64_t generate(struct cp_workloads *w, struct km_arena *a, const struct dirty *d, bool *skipped)
{
	const char *mesh_c = d->mesh;
	bool structural = d->structural;
	struct km_str mesh = km_str_c(mesh_c);
	/* Dataplanes and insights in pages through the memos: no copy of every
	 * record held for the pass, no read per Dataplane (a query each on
	 * PostgreSQL); both sorted by name */
	struct cp_memo_index dps, online;
	if (cp_memo_index(w->insights, w->rt->store, a, km_rtype_by_name(KM_STR("DataplaneInsight")), mesh,
			  &online))
		return 0;
	uint64_t h = cp_memo_index_fp(&online, sizeof(struct cp_insight_fact));
	/* the insight memo may be shared: this generator's marks are its own */
	const char *mark_key = km_arena_printf(a, "workloads/%s", mesh_c);
	uint64_t last;
	if (!structural && cp_memo_mark_get(w->insights, mark_key, &last) && last == h) {
		*skipped = true;
		return 0;
	}
	if (cp_memo_index(w->dps, w->rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), mesh, &dps))
		return 0;
	struct wanted only;
	if (!d->all)
		wanted_of(a, d, &dps, &only);
	struct member *mb = km_arena_alloc(a, (dps.n + 1) * sizeof(*mb));
	size_t nmb = 0;
	for (size_t i = 0; i < dps.n; i++) {
		const struct dp_fact *f = dps.facts[i];
		if (f->workload.len && (d->all || wanted_has(&only, f->workload)))
			mb[nmb++] = (struct member){.wl = f->workload, .idx = i, .fact = f};
	}
	qsort(mb, nmb, sizeof(*mb), cmp_member);
	struct group *groups = km_arena_alloc(a, (nmb + 1) * sizeof(*groups));
	size_t ngroups = 0;
	/* the mesh's identities, read once for every group */
	struct cp_pki_identities ids;
	bool have_ids = nmb && cp_pki_identities_read(w->rt->store, a, mesh, &ids) == 0;
	for (size_t i = 0; i < nmb; i++) {
		struct km_str dp_name = km_str_c(dps.names[mb[i].idx]);
		struct km_json *ports = mb[i].fact->ports;
		struct group *g = ngroups && km_str_eq(groups[ngroups - 1].name, mb[i].wl) ? &groups[ngroups - 1] : NULL;
		if (!g) {
			g = &groups[ngroups++];
			g->name = mb[i].wl;
			g->ports = ports;
			/* the group's identity: its first Dataplane's labels */
			struct km_json *labels = NULL;
			km_json_parse(a, mb[i].fact->labels.ptr, mb[i].fact->labels.len, &labels, NULL);
			g->spiffe_id = have_ids ? cp_pki_spiffe_from(&ids, a, w->rt->zone, labels) : NULL;
		} else if (!km_json_equal(g->ports, ports)) {
			/* every pass sees it again: keep it out of the default log */
			km_debug("workloads", "port conflict, ports must be identical across Dataplane inbounds "
					     "grouped into a single MeshService mesh=%s workload=%.*s dataplane=%.*s",
				mesh_c, KM_STR_FMT(mb[i].wl), KM_STR_FMT(dp_name));
		}
		g->total++;
		const struct cp_insight_fact *inf = cp_memo_index_find(&online, dp_name);
		bool on = inf && inf->online;
		g->connected += on;
		g->healthy += on && mb[i].fact->healthy;
	}
	for (size_t g = 0; g < ngroups; g++)
		if (groups[g].ports->len == 0)
			groups[g].ports = km_json_array(a);
	w->nworkloads += ngroups;
	int64_t n1 = reconcile(w, a, mesh, groups, ngroups, d->all ? NULL : &only, true);
	int64_t n2 = reconcile(w, a, mesh, groups, ngroups, d->all ? NULL : &only, false);
	cp_memo_mark_set(w->insights, mark_key, h); /* after the writes: what they were computed from */
	return !n1 ? n2 : !n2 ? n1 : n1 < n2 ? n1 : n2;
}

static void run(struct km_loop *loop, void *ctx)
{
	struct cp_workloads *w = ctx;
	if (!w->active)
		return;
	if (w->pending) {
		w->deferred = true;
		return;
	}
	w->running = true;
	int64_t started = km_time_now();
	struct km_arena *a = km_arena_new(0);
	int64_t next = 0;
	struct dirty *dirty = w->dirty;
	size_t n = w->ndirty;
	w->dirty = NULL;
	w->ndirty = w->cap = 0;
	bool skipped = false;
	cp_store_relaxed(w->rt->store, true); /* generated records: no commit waits for the disk */
	for (size_t i = 0; i < n; i++) {
		int64_t nx = generate(w, a, &dirty[i], &skipped);
		if (nx && (!next || nx < next))
			next = nx;
		dirty_fini(&dirty[i]);
	}
	cp_store_relaxed(w->rt->store, false);
	free(dirty);
	km_arena_free(a);
	if (n) {
		/* forget what this run did not read: deleted Dataplanes (and the
		 * meshes not dirty this time, recomputed when next read); a
		 * skipped mesh read no Dataplanes, so they stay */
		if (!skipped) {
			cp_memo_sweep(w->dps);
			cp_memo_sweep(w->services);
			cp_memo_sweep(w->workloads);
		}
		cp_memo_sweep(w->insights);
	}
	w->running = false;
	/* a pass reads every Dataplane and insight of its meshes: at scale,
	 * leave the loop at least 3/4 of the time for everything else */
	w->quiet_until = km_time_now() + 3 * (km_time_now() - started);
	if (n) {
		int64_t took = km_time_now() - started;
		w->passes++;
		w->pass_ns += (uint64_t)took;
		struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, w->pass_counts, w->pass_sum_ms};
		km_prom_observe(&h, (double)took / 1e6, 1);
		w->pass_sum_ms = h.sum;
	}
	if (next) {
		/* come back when a grace period ends (a timer of its own: the
		 * passes that writes ask for meanwhile do not wait for it). A
		 * pass looks at some meshes, or some workloads, only: it brings
		 * the timer forward, never back (a grace period it did not look
		 * at may end sooner; one that no longer does costs a pass) */
		int64_t wait_ms = (next - km_time_now()) / 1000000 + 10;
		uint64_t wait = (uint64_t)(wait_ms > 10 ? wait_ms : 10);
		if (!w->grace.armed || km_loop_now_ms() + wait < w->grace.deadline_ms)
			km_loop_timer_start(loop, &w->grace, wait, grace_ended, w);
	}
}

static void grace_ended(struct km_loop *loop, void *ctx)
{
	struct cp_workloads *w = ctx;
	if (w->active)
		mark_all(w);
}

struct cp_workloads *cp_workloads_start(struct cp_runtime *rt, struct cp_events *bus, int64_t grace_period_ns)
{
	struct cp_memo *insights = rt->insight_memo;
	struct cp_workloads *w = km_calloc(1, sizeof(*w));
	w->rt = rt;
	w->grace_ns = grace_period_ns;
	w->dps = cp_memo_new(sizeof(struct dp_fact), dp_fact);
	w->own_insights = !insights;
	w->insights = insights ? insights : cp_memo_new(sizeof(struct cp_insight_fact), cp_insight_fact);
	w->services = cp_memo_new(sizeof(struct gen_fact), gen_fact);
	w->workloads = cp_memo_new(sizeof(struct gen_fact), gen_fact);
	cp_events_subscribe(bus, on_change, w);
	return w;
}

void cp_workloads_set_active(struct cp_workloads *w, bool active)
{
	w->active = active;
	if (active) {
		mark_all(w);
	} else {
		km_loop_timer_stop(w->rt->loop, &w->timer);
		km_loop_timer_stop(w->rt->loop, &w->grace);
	}
}

void cp_workloads_stop(struct cp_workloads *w)
{
	if (!w)
		return;
	km_loop_timer_stop(w->rt->loop, &w->timer);
	km_loop_timer_stop(w->rt->loop, &w->grace);
	/* the last pass's writes, then whatever is left */
	cp_store_rmw_drain(w->rt->store, 2000);
	while (w->pending) {
		struct gen_write *g = w->pending;
		w->pending = g->next;
		cp_store_rmw_cancel(w->rt->store, &g->op);
		free(g);
	}
	for (size_t i = 0; i < w->ndirty; i++)
		dirty_fini(&w->dirty[i]);
	free(w->dirty);
	cp_memo_free(w->dps);
	if (w->own_insights)
		cp_memo_free(w->insights);
	cp_memo_free(w->services);
	cp_memo_free(w->workloads);
	free(w);
}

void cp_workloads_stats(const struct cp_workloads *w, struct cp_workloads_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!w)
		return;
	out->passes = w->passes;
	out->seconds = (double)w->pass_ns / 1e9;
	out->writes = w->writes;
	out->workloads = w->nworkloads;
	memcpy(out->pass_counts, w->pass_counts, sizeof(out->pass_counts));
	out->pass_sum_ms = w->pass_sum_ms;
}
