/* SPDX-License-Identifier: Apache-2.0 */
/* Mesh context construction (see context.h): one pass over the mesh's
 * Dataplanes and MeshServices; endpoints are resolved here, once per mesh
 * generation, instead of once per proxy. */
#include "cp/xds/context.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/mem.h"
#include "cp/policy/policy.h"
#include "cp/xds/generate.h"

static struct km_json *parse(struct km_arena *a, struct km_str s)
{
	struct km_json *v = NULL;
	if (s.len)
		km_json_parse(a, s.ptr, s.len, &v, NULL);
	return v;
}

static bool labels_match(const struct km_json *selector, const struct km_json *labels)
{
	if (!selector || selector->kind != KM_JSON_OBJECT)
		return true;
	for (size_t i = 0; i < selector->len; i++) {
		struct km_json *v = km_json_get_str(labels, selector->members[i].key);
		struct km_json *want = selector->members[i].val;
		if (!v || v->kind != KM_JSON_STRING || want->kind != KM_JSON_STRING ||
		    !km_str_eq(v->s, want->s))
			return false;
	}
	return true;
}

/* A MeshService's selector, read once per resolution. */
struct selector {
	enum { SEL_NONE, SEL_REF, SEL_LABELS } kind;
	struct km_str ref;            /* SEL_REF: the Dataplane's name */
	const struct km_json *labels; /* SEL_LABELS: matchLabels (NULL: every Dataplane) */
};

static struct selector selector_of(const struct km_json *spec)
{
	struct km_json *sel = km_json_get(spec, "selector");
	struct km_json *ref = km_json_get(sel, "dataplaneRef");
	if (ref)
		return (struct selector){.kind = SEL_REF, .ref = km_json_get_string(ref, "name")};
	struct km_json *dl = km_json_get(sel, "dataplaneLabels");
	if (!dl)
		return (struct selector){.kind = SEL_NONE};
	return (struct selector){.kind = SEL_LABELS, .labels = km_json_get(dl, "matchLabels")};
}

static bool selector_matches(const struct selector *sel, struct km_str name, const struct km_json *labels)
{
	switch (sel->kind) {
	case SEL_REF: return km_str_eq(sel->ref, name);
	case SEL_LABELS: return labels_match(sel->labels, labels);
	default: return false;
	}
}

static int64_t num(const struct km_json *v, int64_t dflt)
{
	if (v && v->kind == KM_JSON_NUMBER && v->is_int)
		return v->i;
	if (v && v->kind == KM_JSON_STRING) {
		long long n;
		if (km_str_to_i64(v->s, &n) == 0)
			return n;
	}
	return dflt;
}

/* The inbound of <dp> that serves <port> (targetPort: number = inbound port,
 * string = inbound name). */
static const struct km_json *inbound_for(const struct cp_xds_dataplane *dp, const struct cp_xds_port *p)
{
	struct km_json *inb = km_json_get(km_json_get(dp->spec, "networking"), "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		struct km_json *in = inb->items[i];
		const struct km_json *tp = p->target_port;
		if (tp && tp->kind == KM_JSON_STRING) {
			if (km_str_eq(km_json_get_string(in, "name"), tp->s))
				return in;
		} else if (num(km_json_get(in, "port"), -1) == num(tp, (int64_t)p->port)) {
			return in;
		}
	}
	return NULL;
}

static bool inbound_healthy(const struct km_json *in)
{
	struct km_str state = km_json_get_string(in, "state");
	if (state.len)
		return km_str_eqc(state, "Ready");
	struct km_json *ready = km_json_get(km_json_get(in, "health"), "ready");
	return !(ready && ready->kind == KM_JSON_BOOL && !ready->b);
}

/* Dataplanes by one label (key=value) and by name, built once per context:
 * resolving every service's endpoints by scanning every Dataplane was
 * O(services x dataplanes). */
struct dp_bucket {
	struct km_str k, v; /* label key and value */
	size_t *idx, n, cap;
};

/* Buckets by label pair (a mesh has far fewer distinct pairs than
 * Dataplanes times labels); a selector by Dataplane name goes through the
 * context's name index instead. */
struct dp_index {
	const struct cp_xds_mesh *m;
	struct km_arena *a;
	struct km_ptab buckets; /* struct dp_bucket *, in <a> */
	size_t one;             /* a name selector's single candidate */
};

static uint64_t kv_hash(struct km_str k, struct km_str v)
{
	uint64_t h = km_hash(KM_FNV_INIT, k.ptr, k.len);
	return km_hash(h ^ 0xff, v.ptr, v.len);
}

static struct dp_bucket *bucket(struct dp_index *x, struct km_str k, struct km_str v, bool create)
{
	uint64_t h = kv_hash(k, v);
	size_t it = 0;
	for (struct dp_bucket *b; (b = km_ptab_next(&x->buckets, h, &it));)
		if (km_str_eq(b->k, k) && km_str_eq(b->v, v))
			return b;
	if (!create)
		return NULL;
	struct dp_bucket *b = km_arena_alloc(x->a, sizeof(*b));
	*b = (struct dp_bucket){.k = k, .v = v};
	km_ptab_add(&x->buckets, h, b);
	return b;
}

static void bucket_add(struct km_arena *a, struct dp_bucket *b, size_t i)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4;
		b->idx = km_arena_realloc(a, b->idx, b->cap * sizeof(*b->idx), cap * sizeof(*b->idx));
		b->cap = cap;
	}
	b->idx[b->n++] = i;
}

static void dp_names_build(struct cp_xds_mesh *m);

static void index_build(struct km_arena *a, const struct cp_xds_mesh *m, struct dp_index *x)
{
	*x = (struct dp_index){.m = m, .a = a};
	for (size_t i = 0; i < m->ndataplanes; i++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[i];
		for (size_t l = 0; l < dp->labels->len; l++) {
			const struct km_json *v = dp->labels->members[l].val;
			if (v->kind == KM_JSON_STRING)
				bucket_add(a, bucket(x, dp->labels->members[l].key, v->s, true), i);
		}
	}
}

/* Indexes of the Dataplanes that may match <sel> (a superset:
 * selector_matches decides); NULL with *n = SIZE_MAX means "all". */
static const size_t *candidates(struct dp_index *x, const struct selector *sel, size_t *n)
{
	struct dp_bucket *b = NULL;
	if (sel->kind == SEL_REF) {
		const struct cp_xds_dataplane *d = cp_xds_mesh_dataplane(x->m, sel->ref);
		*n = d ? 1 : 0;
		x->one = d ? (size_t)(d - x->m->dataplanes) : 0;
		return d ? &x->one : NULL;
	} else if (sel->kind == SEL_NONE) {
		*n = 0;
		return NULL;
	} else {
		const struct km_json *ml = sel->labels;
		if (!ml || ml->kind != KM_JSON_OBJECT || !ml->len || ml->members[0].val->kind != KM_JSON_STRING) {
			*n = SIZE_MAX; /* empty selector: every Dataplane */
			return NULL;
		}
		b = bucket(x, ml->members[0].key, ml->members[0].val->s, false);
	}
	*n = b ? b->n : 0;
	return b ? b->idx : NULL;
}

/* Resolves the endpoints of one service port (in <a>) and folds them into
 * <fp>. <x> NULL: every Dataplane is a candidate (a few services to
 * resolve cost less than indexing every Dataplane). */
static uint64_t resolve_endpoints(struct km_arena *a, const struct cp_xds_mesh *m, struct dp_index *x,
				  const struct selector *sel, struct cp_xds_port *p, uint64_t fp)
{
	size_t nc = SIZE_MAX;
	const size_t *cand = x ? candidates(x, sel, &nc) : NULL;
	size_t total = nc == SIZE_MAX ? m->ndataplanes : nc;
	size_t cap = x ? total : 4;
	p->endpoints = km_arena_alloc(a, (cap + 1) * sizeof(*p->endpoints));
	for (size_t c = 0; c < total; c++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[cand ? cand[c] : c];
		if (!selector_matches(sel, dp->res.name, dp->labels))
			continue;
		const struct km_json *in = inbound_for(dp, p);
		if (!in)
			continue;
		if (p->nendpoints == cap) {
			p->endpoints = km_arena_realloc(a, p->endpoints, (cap + 1) * sizeof(*p->endpoints),
							(2 * cap + 1) * sizeof(*p->endpoints));
			cap *= 2;
		}
		struct cp_xds_endpoint *e = &p->endpoints[p->nendpoints++];
		struct km_str addr = km_json_get_string(in, "address");
		if (!addr.len)
			addr = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
		e->address = addr;
		e->port = (uint32_t)num(km_json_get(in, "port"), 0);
		e->labels = dp->labels;
		e->zone = km_json_get_string(dp->labels, "kuma.io/zone");
		if (!e->zone.len)
			e->zone = km_str_c(m->zone);
		e->healthy = inbound_healthy(in);
		fp = km_fnv_sep(km_fnv(fp, e->address.ptr, e->address.len), '|');
		fp = km_fnv(fp, &e->port, sizeof(e->port));
		fp = km_fnv_sep(km_fnv(fp, e->zone.ptr, e->zone.len), '|');
		fp = km_fnv(fp, &e->healthy, sizeof(e->healthy));
		fp = km_fnv(fp, &dp->labels_fp, sizeof(dp->labels_fp));
	}
	return fp;
}

/* ---- the cache of parsed Dataplanes and MeshServices ---- */

/* A MeshService's ports with their endpoints resolved, and its
 * fingerprint: kept with the service's cache entry and taken as it is by
 * the next context unless the service or a Dataplane it may select
 * changed. Its strings point into the entries it was made from, which the
 * contexts using it hold as well. */
struct svc_resolution {
	unsigned refs; /* the entry's, plus one per context using it */
	struct km_arena *a;
	struct cp_xds_port *ports;
	size_t nports;
	uint64_t fp;
};

static void resolution_unref(struct svc_resolution *r)
{
	if (r && --r->refs == 0) {
		km_arena_free(r->a);
		free(r);
	}
}

struct cp_xds_cached {
	unsigned refs;       /* the cache's own, plus one per context holding it */
	struct km_arena *a;  /* everything below */
	struct km_resource res;
	struct km_json *spec, *labels, *status;
	uint64_t fp;         /* Dataplane: store identity; MeshService: content */
	uint64_t labels_fp;
	struct svc_resolution *resolved; /* MeshService: the latest, or NULL */
	/* MeshService: its display name, zone and namespace labels, read once
	 * (every context build names every service) */
	struct km_str display, zone, ns;
	struct selector sel; /* MeshService: its Dataplane selector (every build tests it) */
};

struct cache_set {
	struct cp_xds_cached **items; /* sorted by name */
	size_t n, cap;
	char **stale; /* names to re-read at the next build */
	size_t nstale, capstale;
	bool all;     /* re-list the whole type at the next build */
	/* what the syncs since the last build changed: the old and the new
	 * versions of the entries re-read (each holding a reference until the
	 * build is done), or everything (a re-list) */
	struct cp_xds_cached **changed;
	size_t nchanged, capchanged;
	bool changed_all;
	/* since the last build, a re-read entry's fingerprint moved, or one
	 * came or went */
	bool moved;
};

/* The records of one type a context parses as policies (policy types,
 * MeshExternalService, MeshMultiZoneService), as last listed: listed again
 * only once an event names the type. On PostgreSQL each listing is a
 * query, and these were 30-40 ms of every context at 10,000 proxies. */
struct policy_list {
	const struct km_rtype *t;
	struct km_arena *a; /* the listing (NULL: none yet) */
	struct cp_list_result r;
	bool valid;
};

struct cp_xds_cache {
	struct cache_set dps, svcs;
	struct policy_list *pl;
	size_t npl;
};

/* Whether a context parses the records of <t> as policies. */
static bool policy_like(const struct km_rtype *t)
{
	return km_rtype_has(t, KM_RT_POLICY) || strcmp(t->name, "MeshExternalService") == 0 ||
	       strcmp(t->name, "MeshMultiZoneService") == 0 || strcmp(t->name, "MeshOpenTelemetryBackend") == 0;
}

static void entry_unref(struct cp_xds_cached *e)
{
	if (e && --e->refs == 0) {
		resolution_unref(e->resolved);
		km_arena_free(e->a);
		free(e);
	}
}

static void changed_add(struct cache_set *set, struct cp_xds_cached *e)
{
	if (!e)
		return;
	if (set->nchanged == set->capchanged) {
		set->capchanged = set->capchanged ? set->capchanged * 2 : 16;
		set->changed = km_realloc(set->changed, set->capchanged * sizeof(*set->changed));
	}
	e->refs++;
	set->changed[set->nchanged++] = e;
}

static void changed_clear(struct cache_set *set)
{
	for (size_t i = 0; i < set->nchanged; i++)
		entry_unref(set->changed[i]);
	set->nchanged = 0;
	set->changed_all = false;
	set->moved = false;
}

static struct km_str dup_str(struct km_arena *a, struct km_str s)
{
	return s.len ? (struct km_str){km_arena_strndup(a, s.ptr, s.len), s.len} : KM_STR("");
}

/* <r> with its strings copied into <a>. */
static struct km_resource res_copy(struct km_arena *a, const struct km_resource *r)
{
	struct km_resource c = *r;
	c.mesh = dup_str(a, r->mesh);
	c.name = dup_str(a, r->name);
	c.labels = dup_str(a, r->labels);
	c.spec = dup_str(a, r->spec);
	c.status = dup_str(a, r->status);
	c.owner_type = dup_str(a, r->owner_type);
	c.owner_mesh = dup_str(a, r->owner_mesh);
	c.owner_name = dup_str(a, r->owner_name);
	return c;
}

static uint64_t text_fp(uint64_t h, struct km_str s)
{
	return km_fnv_sep(km_fnv(h, s.ptr, s.len), '|');
}

static struct cp_xds_cached *entry_new(const struct km_resource *r, bool service)
{
	struct cp_xds_cached *e = km_calloc(1, sizeof(*e));
	e->refs = 1;
	e->a = km_arena_new(service ? 2048 : 4096);
	e->res = res_copy(e->a, r);
	e->spec = parse(e->a, e->res.spec);
	e->labels = parse(e->a, e->res.labels);
	if (!e->labels)
		e->labels = km_json_object(e->a);
	e->labels_fp = text_fp(KM_FNV_INIT, e->res.labels);
	if (!service) {
		/* what generation reads of it: a write that leaves name, labels
		 * and spec as they were (an identical PUT, which bumps the
		 * version) changes no proxy, its own included */
		uint64_t h = text_fp(KM_FNV_INIT, e->res.name);
		h = km_fnv(h, &e->labels_fp, sizeof(e->labels_fp));
		e->fp = text_fp(h, e->res.spec);
		return e;
	}
	e->status = parse(e->a, e->res.status);
	e->display = km_json_get_string(e->labels, "kuma.io/display-name");
	if (!e->display.len)
		e->display = e->res.name;
	e->zone = km_json_get_string(e->labels, "kuma.io/zone");
	e->ns = km_json_get_string(e->labels, "k8s.kuma.io/namespace");
	e->sel = selector_of(e->spec);
	struct km_buf tmp = KM_BUF_INIT;
	uint64_t h = text_fp(KM_FNV_INIT, e->res.name);
	h = km_fnv(h, &e->labels_fp, sizeof(e->labels_fp));
	/* the spec minus state (Available/Unavailable: the generator flips it
	 * as the first proxy of a service comes and goes; no generator reads
	 * it, endpoints carry their own health) */
	for (size_t k = 0; e->spec && e->spec->kind == KM_JSON_OBJECT && k < e->spec->len; k++) {
		if (km_str_eqc(e->spec->members[k].key, "state"))
			continue;
		h = text_fp(h, e->spec->members[k].key);
		h = km_json_fnv(h, &tmp, e->spec->members[k].val);
	}
	/* the status minus dataplaneProxies (connected/healthy counts the
	 * workload generator rewrites; no generator reads them) */
	for (size_t k = 0; e->status && e->status->kind == KM_JSON_OBJECT && k < e->status->len; k++) {
		if (km_str_eqc(e->status->members[k].key, "dataplaneProxies"))
			continue;
		h = text_fp(h, e->status->members[k].key);
		h = km_json_fnv(h, &tmp, e->status->members[k].val);
	}
	km_buf_fini(&tmp);
	e->fp = h;
	return e;
}

static bool same_record(const struct cp_xds_cached *e, const struct km_resource *r)
{
	return e->res.version == r->version && e->res.ctime == r->ctime && e->res.mtime == r->mtime;
}

/* The entry named <name>, or NULL; *at is where it is or would go. */
static struct cp_xds_cached *set_find(const struct cache_set *set, struct km_str name, size_t *at)
{
	size_t lo = 0, hi = set->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = km_str_cmp(set->items[mid]->res.name, name);
		if (c == 0) {
			*at = mid;
			return set->items[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*at = lo;
	return NULL;
}

static void stale_clear(struct cache_set *set)
{
	for (size_t i = 0; i < set->nstale; i++)
		free(set->stale[i]);
	set->nstale = 0;
}

static int by_name(const void *x, const void *y)
{
	const struct cp_xds_cached *a = *(struct cp_xds_cached *const *)x, *b = *(struct cp_xds_cached *const *)y;
	return km_str_cmp(a->res.name, b->res.name);
}

static int relist(struct cp_runtime *rt, struct km_arena *tmp, struct km_str mesh, const struct km_rtype *t,
		  struct cache_set *set, bool service)
{
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result l;
	if (cp_store_list(rt->store, tmp, t, &o, &l))
		return -1;
	struct cp_xds_cached **items = km_calloc(l.len + 1, sizeof(*items));
	for (size_t i = 0; i < l.len; i++) {
		size_t at;
		struct cp_xds_cached *e = set_find(set, l.items[i].name, &at);
		if (e && same_record(e, &l.items[i])) {
			e->refs++;
			items[i] = e;
		} else {
			items[i] = entry_new(&l.items[i], service);
		}
	}
	qsort(items, l.len, sizeof(*items), by_name); /* PostgreSQL's collation may order otherwise */
	for (size_t i = 0; i < set->n; i++)
		entry_unref(set->items[i]);
	free(set->items);
	set->items = items;
	set->n = set->cap = l.len;
	set->all = false;
	set->changed_all = true;
	stale_clear(set);
	return 0;
}

/* Brings one type of the cache up to date with the store. */
static int cache_sync(struct cp_runtime *rt, struct km_arena *tmp, struct km_str mesh, const struct km_rtype *t,
		      struct cache_set *set, bool service)
{
	if (set->all)
		return relist(rt, tmp, mesh, t, set, service);
	/* every stale name in one store call (one query on PostgreSQL) */
	struct km_str *names = km_arena_alloc(tmp, (set->nstale + 1) * sizeof(*names));
	struct km_resource *rs = km_arena_alloc(tmp, (set->nstale + 1) * sizeof(*rs));
	int *rcs = km_arena_alloc(tmp, (set->nstale + 1) * sizeof(*rcs));
	for (size_t i = 0; i < set->nstale; i++)
		names[i] = km_str_c(set->stale[i]);
	int all_rc = set->nstale ? cp_store_get_many(rt->store, tmp, t, mesh, names, set->nstale, rs, rcs) : 0;
	for (size_t i = 0; i < set->nstale; i++) {
		struct km_str name = names[i];
		const struct km_resource *r = &rs[i]; /* read only when rc is 0 */
		int rc = all_rc ? all_rc : rcs[i];
		size_t at;
		struct cp_xds_cached *e = set_find(set, name, &at);
		if (rc == -KM_E_NOT_FOUND) {
			if (e) {
				set->moved = true;
				changed_add(set, e);
				memmove(&set->items[at], &set->items[at + 1], (set->n - at - 1) * sizeof(*set->items));
				set->n--;
				entry_unref(e);
			}
			continue;
		}
		if (rc) {
			set->all = true; /* the store failed: start over next time */
			set->changed_all = true;
			stale_clear(set);
			return -1;
		}
		if (e && same_record(e, r))
			continue;
		struct cp_xds_cached *ne = entry_new(r, service);
		if (!e || e->fp != ne->fp)
			set->moved = true;
		changed_add(set, e);
		changed_add(set, ne);
		if (e) {
			set->items[at] = ne;
			entry_unref(e);
			continue;
		}
		if (set->n == set->cap) {
			set->cap = set->cap ? set->cap * 2 : 64;
			set->items = km_realloc(set->items, set->cap * sizeof(*set->items));
		}
		memmove(&set->items[at + 1], &set->items[at], (set->n - at) * sizeof(*set->items));
		set->items[at] = ne;
		set->n++;
	}
	stale_clear(set);
	return 0;
}

bool cp_xds_cache_services_moved(struct cp_runtime *rt, struct km_str mesh, struct cp_xds_cache *cache)
{
	struct cache_set *set = &cache->svcs;
	if (set->all || set->changed_all || set->moved)
		return true;
	struct km_arena *tmp = km_arena_new(16384);
	int rc = cache_sync(rt, tmp, mesh, km_rtype_by_name(KM_STR("MeshService")), set, true);
	km_arena_free(tmp);
	if (rc || set->moved)
		return true;
	/* the replaced entries are held for no build (only the Dataplanes'
	 * changes are read by one): a run of status rewrites with no build
	 * between them keeps none of them alive */
	changed_clear(set);
	return false;
}

struct cp_xds_cache *cp_xds_cache_new(void)
{
	struct cp_xds_cache *c = km_calloc(1, sizeof(*c));
	c->dps.all = c->svcs.all = true;
	return c;
}

static void set_fini(struct cache_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		entry_unref(set->items[i]);
	stale_clear(set);
	changed_clear(set);
	free(set->items);
	free(set->stale);
	free(set->changed);
}

void cp_xds_cache_free(struct cp_xds_cache *c)
{
	if (!c)
		return;
	set_fini(&c->dps);
	set_fini(&c->svcs);
	for (size_t i = 0; i < c->npl; i++)
		km_arena_free(c->pl[i].a);
	free(c->pl);
	free(c);
}

static void set_stale(struct cache_set *set, struct km_str name)
{
	if (set->all)
		return;
	/* a burst of changes (a mass registration) re-lists once instead of
	 * queueing a read per name; this also bounds the queue of a mesh
	 * whose context nobody builds */
	if (set->nstale >= 256 && set->nstale >= set->n / 2) {
		set->all = true;
		stale_clear(set);
		return;
	}
	if (set->nstale == set->capstale) {
		set->capstale = set->capstale ? set->capstale * 2 : 16;
		set->stale = km_realloc(set->stale, set->capstale * sizeof(*set->stale));
	}
	set->stale[set->nstale++] = km_strndup(name.ptr, name.len);
}

void cp_xds_cache_stale(struct cp_xds_cache *c, const struct km_rtype *t, struct km_str name)
{
	if (!c || !t)
		return;
	if (strcmp(t->name, "Dataplane") == 0)
		set_stale(&c->dps, name);
	else if (strcmp(t->name, "MeshService") == 0)
		set_stale(&c->svcs, name);
	else
		for (size_t i = 0; i < c->npl; i++)
			if (c->pl[i].t == t)
				c->pl[i].valid = false;
}

void cp_xds_cache_reset(struct cp_xds_cache *c)
{
	if (!c)
		return;
	c->dps.all = c->svcs.all = true;
	stale_clear(&c->dps);
	stale_clear(&c->svcs);
	for (size_t i = 0; i < c->npl; i++)
		c->pl[i].valid = false;
}

size_t cp_xds_cache_len(const struct cp_xds_cache *c)
{
	return c ? c->dps.n + c->svcs.n : 0;
}

/* ---- building a context ---- */

static int alias_cmp(const void *x, const void *y)
{
	const struct cp_xds_service *a = *(const struct cp_xds_service *const *)x;
	const struct cp_xds_service *b = *(const struct cp_xds_service *const *)y;
	int c = km_str_cmp(a->name, b->name);
	return c ? c : (a < b ? -1 : a > b); /* services are in store-name order */
}

/* m->aliases of the sorted services (a missing service, such as a
 * destination not generated yet, is otherwise a scan of them all). */
static void aliases_build(struct cp_xds_mesh *m)
{
	m->naliases = 0;
	m->aliases = km_arena_alloc(m->a, (m->nservices + 1) * sizeof(*m->aliases));
	for (size_t i = 0; i < m->nservices; i++)
		if (!km_str_eq(m->services[i].name, m->services[i].store_name))
			m->aliases[m->naliases++] = &m->services[i];
	qsort(m->aliases, m->naliases, sizeof(*m->aliases), alias_cmp);
}

/* The service of entry <e>, its names and documents (no ports). */
static void service_names(const struct cp_xds_cached *e, struct cp_xds_service *s)
{
	s->store_name = e->res.name;
	s->labels = e->labels;
	s->spec = e->spec;
	s->status = e->status;
	s->name = e->display;
	s->zone = e->zone;
	s->ns = e->ns;
}

/* Resolves the ports and endpoints of service entry <e> against the
 * Dataplanes of <m> (through <x> when not NULL). */
static struct svc_resolution *resolve_service(const struct cp_xds_mesh *m, struct dp_index *x,
					      const struct cp_xds_cached *e)
{
	struct svc_resolution *r = km_calloc(1, sizeof(*r));
	r->refs = 1;
	r->a = km_arena_new(1024);
	struct cp_xds_service s = {0};
	service_names(e, &s); /* for the kri */
	const struct selector sel = e->sel;
	uint64_t fp = e->fp;
	struct km_json *ports = km_json_get(e->spec, "ports");
	size_t n = ports && ports->kind == KM_JSON_ARRAY ? ports->len : 0;
	r->ports = km_arena_alloc(r->a, (n + 1) * sizeof(*r->ports));
	for (size_t i = 0; i < n; i++) {
		struct km_json *pj = ports->items[i];
		struct cp_xds_port *p = &r->ports[r->nports++];
		p->port = (uint32_t)num(km_json_get(pj, "port"), 0);
		struct km_str name = km_json_get_string(pj, "name");
		p->section = name.len ? name : km_str_c(km_arena_printf(r->a, "%u", p->port));
		p->app_protocol = km_json_get_string(pj, "appProtocol");
		if (!p->app_protocol.len)
			p->app_protocol = KM_STR("tcp");
		p->target_port = km_json_get(pj, "targetPort");
		p->kri = cp_xds_service_kri(r->a, m, &s, p);
		p->sni = cp_xds_service_sni(r->a, m->name, &s, p);
		fp = km_fnv_sep(fp, '#');
		fp = resolve_endpoints(r->a, m, x, &sel, p, fp);
	}
	r->fp = fp;
	return r;
}

/* Changed Dataplane versions (old and new) tested one by one against each
 * service; above that, every service is resolved again. */
#define MAX_CHANGED_TESTED 64

/* Whether the Dataplane changes recorded in <dps> (old and new versions)
 * may change what service entry <e> resolves to. */
static bool service_touched(const struct cp_xds_cached *e, const struct cache_set *dps)
{
	if (!dps->nchanged || e->sel.kind == SEL_NONE)
		return false;
	for (size_t i = 0; i < dps->nchanged; i++)
		if (selector_matches(&e->sel, dps->changed[i]->res.name, dps->changed[i]->labels))
			return true;
	return false;
}

static struct km_json *internal_cidrs(struct km_arena *a, const struct cp_config *cfg)
{
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; cfg && i < cfg->ipam.known_internal_cidrs.n; i++) {
		const char *cidr = cfg->ipam.known_internal_cidrs.items[i];
		const char *slash = strchr(cidr, '/');
		if (!slash)
			continue;
		struct km_json *e = km_json_object(a);
		km_json_set(a, e, "addressPrefix",
			    km_json_string(a, (struct km_str){cidr, (size_t)(slash - cidr)}));
		km_json_set(a, e, "prefixLen", km_json_int(a, strtol(slash + 1, NULL, 10)));
		km_json_array_push(a, arr, e);
	}
	return arr;
}

/* Every targetRef policy of the mesh, parsed once for all its proxies, plus
 * the destinations policies' `to` entries name besides MeshServices
 * (MeshExternalService, MeshMultiZoneService) in the same form. */
/* <t>'s records in <cache>'s mesh <mesh>, listed from the store unless the
 * cache holds them and no event named the type since. */
static int policy_list(struct cp_runtime *rt, struct cp_xds_cache *cache, const struct km_rtype *t,
		       struct km_str mesh, const struct cp_list_result **out)
{
	struct policy_list *pl = NULL;
	for (size_t i = 0; i < cache->npl && !pl; i++)
		if (cache->pl[i].t == t)
			pl = &cache->pl[i];
	if (!pl) {
		cache->pl = km_realloc(cache->pl, (cache->npl + 1) * sizeof(*cache->pl));
		pl = &cache->pl[cache->npl++];
		*pl = (struct policy_list){.t = t};
	}
	if (!pl->valid) {
		km_arena_free(pl->a);
		pl->a = km_arena_new(4096);
		struct cp_list_opts o = {.mesh = mesh};
		if (cp_store_list(rt->store, pl->a, t, &o, &pl->r))
			return -1;
		pl->valid = true;
	}
	*out = &pl->r;
	return 0;
}

static int load_policies(struct cp_runtime *rt, struct cp_xds_mesh *m, struct cp_xds_cache *cache)
{
	struct cp_list_result lists[64];
	size_t nlists = 0, total = 0;
	for (size_t t = 0; t < km_rtypes_len && nlists < 64; t++) {
		if (!policy_like(&km_rtypes[t]))
			continue;
		const struct cp_list_result *l;
		if (policy_list(rt, cache, &km_rtypes[t], m->name, &l))
			return -1;
		/* copied: the context may outlive the cache's listing */
		struct cp_list_result *c = &lists[nlists++];
		*c = (struct cp_list_result){.len = l->len, .total = l->total};
		c->items = km_arena_alloc(m->a, (l->len + 1) * sizeof(*c->items));
		for (size_t i = 0; i < l->len; i++)
			c->items[i] = res_copy(m->a, &l->items[i]);
		total += c->len;
	}
	m->policies = km_arena_alloc(m->a, (total + 1) * sizeof(*m->policies));
	struct km_buf tmp = KM_BUF_INIT;
	for (size_t l = 0; l < nlists; l++)
		for (size_t i = 0; i < lists[l].len; i++) {
			struct cp_policy *p = &m->policies[m->npolicies++];
			cp_policy_parse(m->a, &lists[l].items[i], p);
			uint64_t h = text_fp(KM_FNV_INIT, km_str_c(p->type ? p->type->name : ""));
			h = text_fp(h, p->name);
			h = km_json_fnv(h, &tmp, p->labels);
			p->fp = km_json_fnv(h, &tmp, p->spec);
		}
	km_buf_fini(&tmp);
	return 0;
}

/* What every proxy depends on besides its policies: the Mesh's labels, the
 * CIDRs, and the MeshOpenTelemetryBackends (tracing's backendRefs resolve
 * to them; changed, they regenerate everything, which is rare). */
static uint64_t rest_fp(const struct cp_xds_mesh *m, struct km_str mesh_labels)
{
	struct km_buf tmp = KM_BUF_INIT;
	uint64_t h = km_json_fnv(KM_FNV_INIT, &tmp, m->internal_cidrs);
	km_buf_fini(&tmp);
	for (size_t i = 0; i < m->npolicies; i++)
		if (strcmp(m->policies[i].type->name, "MeshOpenTelemetryBackend") == 0) {
			h = km_fnv(h, &m->policies[i].fp, sizeof(m->policies[i].fp));
			h = km_fnv(h, &m->policies[i].ctime, sizeof(m->policies[i].ctime));
		}
	return text_fp(h, mesh_labels);
}

struct cp_xds_mesh *cp_xds_mesh_build(struct cp_runtime *rt, struct km_str mesh, struct cp_xds_cache *cache)
{
	static uint64_t generation;
	struct km_arena *a = km_arena_new(64 * 1024);
	struct km_resource mr;
	if (cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &mr)) {
		km_arena_free(a);
		return NULL;
	}
	struct cp_xds_cache *own = cache ? NULL : cp_xds_cache_new();
	if (own)
		cache = own;
	struct cp_xds_mesh *m = km_arena_alloc(a, sizeof(*m));
	m->a = a;
	m->name = mr.name;
	m->zone = rt->zone ? rt->zone : "";
	m->generation = ++generation;
	m->internal_cidrs = internal_cidrs(a, rt->cfg);
	struct km_arena *tmp = km_arena_new(64 * 1024);
	if (cache_sync(rt, tmp, mesh, km_rtype_by_name(KM_STR("Dataplane")), &cache->dps, false) ||
	    cache_sync(rt, tmp, mesh, km_rtype_by_name(KM_STR("MeshService")), &cache->svcs, true)) {
		km_arena_free(tmp);
		cp_xds_cache_free(own);
		km_arena_free(a);
		return NULL;
	}
	km_arena_free(tmp);
	m->held = km_malloc((cache->dps.n + cache->svcs.n + 1) * sizeof(*m->held)); /* filled in order */
	/* every member set below: not zeroed first (2 MB at 10,000) */
	m->dataplanes = km_arena_alloc_raw(a, (cache->dps.n + 1) * sizeof(*m->dataplanes));
	for (size_t i = 0; i < cache->dps.n; i++) {
		struct cp_xds_cached *e = cache->dps.items[i];
		e->refs++;
		m->held[m->nheld++] = e;
		struct cp_xds_dataplane *d = &m->dataplanes[m->ndataplanes++];
		d->res = e->res;
		d->spec = e->spec;
		d->labels = e->labels;
		d->fp = e->fp;
		d->labels_fp = e->labels_fp;
	}
	dp_names_build(m); /* before the services: name selectors look Dataplanes up */
	/* services: a service keeps its resolution unless it changed or a
	 * Dataplane it may select changed (old or new version); the others
	 * are resolved again, through an index of the Dataplanes when there
	 * are more than a few */
	m->services = km_arena_alloc_raw(a, (cache->svcs.n + 1) * sizeof(*m->services));
	m->resolutions = km_malloc((cache->svcs.n + 1) * sizeof(*m->resolutions));
	bool *redo = km_arena_alloc(a, cache->svcs.n + 1);
	size_t nredo = 0;
	/* testing every service against every changed Dataplane costs more
	 * than resolving everything once many changed (a registration burst) */
	bool all = cache->dps.changed_all || cache->dps.nchanged > MAX_CHANGED_TESTED;
	for (size_t i = 0; i < cache->svcs.n; i++) {
		const struct cp_xds_cached *e = cache->svcs.items[i];
		redo[i] = !e->resolved || all || service_touched(e, &cache->dps);
		nredo += redo[i];
	}
	struct km_arena *ta = NULL;
	struct dp_index x;
	if (nredo > 4) {
		ta = km_arena_new(64 * 1024);
		index_build(ta, m, &x);
	}
	for (size_t i = 0; i < cache->svcs.n; i++) {
		struct cp_xds_cached *e = cache->svcs.items[i];
		e->refs++;
		m->held[m->nheld++] = e;
		if (redo[i]) {
			struct svc_resolution *old = e->resolved;
			e->resolved = resolve_service(m, ta ? &x : NULL, e);
			resolution_unref(old);
		}
		e->resolved->refs++;
		m->resolutions[m->nresolutions++] = e->resolved;
		struct cp_xds_service *sv = &m->services[m->nservices++];
		service_names(e, sv);
		sv->ports = e->resolved->ports;
		sv->nports = e->resolved->nports;
		sv->fp = e->resolved->fp;
	}
	if (ta)
		km_ptab_fini(&x.buckets);
	km_arena_free(ta);
	aliases_build(m);
	m->services_resolved = nredo;
	changed_clear(&cache->dps);
	changed_clear(&cache->svcs);
	m->sorted = true;
	m->mesh_labels = parse(a, mr.labels);
	if (!m->mesh_labels)
		m->mesh_labels = km_json_object(a);
	int prc = load_policies(rt, m, cache);
	cp_xds_cache_free(own);
	if (prc) {
		cp_xds_mesh_free(m);
		return NULL;
	}
	m->fp_rest = rest_fp(m, mr.labels);
	m->policy_cache = cp_policy_cache_new();
	return m;
}

void cp_xds_mesh_free(struct cp_xds_mesh *m)
{
	if (!m)
		return;
	cp_policy_cache_free(m->policy_cache);
	for (size_t i = 0; i < m->nresolutions; i++)
		resolution_unref(m->resolutions[i]);
	free(m->resolutions);
	for (size_t i = 0; i < m->nheld; i++)
		entry_unref(m->held[i]);
	free(m->held);
	km_ptab_fini(&m->dp_names);
	km_arena_free(m->a);
}

/* bsearch keys: the name, against a service's store name or a Dataplane's name */
static int svc_by_name(const void *key, const void *elt)
{
	return km_str_cmp(*(const struct km_str *)key, ((const struct cp_xds_service *)elt)->store_name);
}

static uint64_t dp_name_hash(struct km_str name)
{
	return km_hash(KM_FNV_INIT, name.ptr, name.len);
}

/* The name index of <m>'s Dataplanes. */
static void dp_names_build(struct cp_xds_mesh *m)
{
	km_ptab_reserve(&m->dp_names, m->ndataplanes);
	for (size_t i = 0; i < m->ndataplanes; i++)
		km_ptab_add(&m->dp_names, dp_name_hash(m->dataplanes[i].res.name), &m->dataplanes[i]);
}

static int dp_by_name(const void *key, const void *elt)
{
	return km_str_cmp(*(const struct km_str *)key, ((const struct cp_xds_dataplane *)elt)->res.name);
}

const struct cp_xds_service *cp_xds_mesh_service(const struct cp_xds_mesh *m, struct km_str name)
{
	const struct cp_xds_service *s =
	    m->sorted && m->nservices ? bsearch(&name, m->services, m->nservices, sizeof(*m->services), svc_by_name)
				      : NULL;
	if (s)
		return s;
	if (m->sorted) {
		/* by display name (kuma.io/display-name): the first of that name */
		size_t lo = 0, hi = m->naliases;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (km_str_cmp(m->aliases[mid]->name, name) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < m->naliases && km_str_eq(m->aliases[lo]->name, name) ? m->aliases[lo] : NULL;
	}
	/* an unsorted context */
	for (size_t i = 0; i < m->nservices; i++)
		if (km_str_eq(m->services[i].store_name, name) || km_str_eq(m->services[i].name, name))
			return &m->services[i];
	return NULL;
}

const struct cp_xds_dataplane *cp_xds_mesh_dataplane(const struct cp_xds_mesh *m, struct km_str name)
{
	if (m->dp_names.n) {
		uint64_t h = dp_name_hash(name);
		size_t it = 0;
		for (const struct cp_xds_dataplane *d; (d = km_ptab_next(&m->dp_names, h, &it));)
			if (km_str_eq(d->res.name, name))
				return d;
		return NULL;
	}
	if (m->sorted)
		return m->ndataplanes ? bsearch(&name, m->dataplanes, m->ndataplanes, sizeof(*m->dataplanes), dp_by_name)
				      : NULL;
	for (size_t i = 0; i < m->ndataplanes; i++)
		if (km_str_eq(m->dataplanes[i].res.name, name))
			return &m->dataplanes[i];
	return NULL;
}

const char *cp_xds_service_kri(struct km_arena *a, const struct cp_xds_mesh *m,
			       const struct cp_xds_service *s, const struct cp_xds_port *p)
{
	if (p->kri)
		return p->kri;
	return km_arena_printf(a, "kri_msvc_%.*s_%.*s_%.*s_%.*s_%.*s", KM_STR_FMT(m->name),
			       KM_STR_FMT(s->zone), KM_STR_FMT(s->ns), KM_STR_FMT(s->name),
			       KM_STR_FMT(p->section));
}

const struct cp_xds_port *cp_xds_mesh_port_by_kri(struct km_arena *a, const struct cp_xds_mesh *m,
						 struct km_str kri)
{
	if (kri.len < 9 || memcmp(kri.ptr, "kri_msvc_", 9) != 0)
		return NULL;
	/* ..._<name>_<section>: names and sections are DNS labels (no '_'), so
	 * the service is found by name; a mismatch falls back to every port */
	size_t last = kri.len;
	while (last > 9 && kri.ptr[last - 1] != '_')
		last--;
	size_t prev = last > 10 ? last - 1 : last;
	while (prev > 9 && kri.ptr[prev - 1] != '_')
		prev--;
	if (last > prev + 1) {
		const struct cp_xds_service *s =
			cp_xds_mesh_service(m, (struct km_str){kri.ptr + prev, last - 1 - prev});
		for (size_t k = 0; s && k < s->nports; k++)
			if (km_str_eqc(kri, cp_xds_service_kri(a, m, s, &s->ports[k])))
				return &s->ports[k];
	}
	for (size_t i = 0; i < m->nservices; i++)
		for (size_t k = 0; k < m->services[i].nports; k++)
			if (km_str_eqc(kri, cp_xds_service_kri(a, m, &m->services[i], &m->services[i].ports[k])))
				return &m->services[i].ports[k];
	return NULL;
}

static uint32_t meta_u32(const struct km_json *md, const char *key)
{
	return (uint32_t)num(km_json_get(md, key), 0);
}

void cp_xds_metadata_parse(struct km_arena *a, const struct km_json *obj, struct cp_xds_metadata *out)
{
	memset(out, 0, sizeof(*out));
	struct km_json *md = km_json_get(obj, "metadata");
	if (!md)
		md = (struct km_json *)obj;
	if (!md || md->kind != KM_JSON_OBJECT)
		return;
	out->raw = md;
	out->admin_port = meta_u32(md, "dataplane.admin.port");
	out->readiness_port = meta_u32(md, "dataplane.readinessReporter.port");
	out->admin_address = km_json_get_string(md, "dataplane.admin.address");
	out->admin_socket = km_json_get_string(md, "dataplane.admin.socketPath");
	out->workdir = km_json_get_string(md, "workdir");
	out->metrics_cert = km_json_get_string(md, "metricsCertPath");
	out->metrics_key = km_json_get_string(md, "metricsKeyPath");
	out->host_ip = km_json_get_string(km_json_get(md, "dynamicMetadata"), "HOST_IP");
	const struct km_json *v6 = km_json_get(md, "ipv6Enabled");
	out->ipv6 = v6 && v6->kind == KM_JSON_BOOL && v6->b;
	out->features = km_json_get(md, "features");
}

void cp_xds_metadata_node(struct km_arena *a, const struct km_json *node_md, struct cp_xds_metadata *out)
{
	cp_xds_metadata_parse(a, node_md, out);
	/* kuma-dp's bootstrap always names the proxy type */
	out->proxyless = !km_json_get(node_md, "dataplane.proxyType");
}
