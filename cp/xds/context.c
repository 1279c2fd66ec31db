/* SPDX-License-Identifier: Apache-2.0 */
/* Mesh context construction (see context.h): one pass over the mesh's
 * Dataplanes and MeshServices; endpoints are resolved here, once per mesh
 * generation, instead of once per proxy. */
#include "cp/xds/context.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "cp/policy/policy.h"

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

static bool selects(const struct km_json *spec, const struct cp_xds_dataplane *dp)
{
	struct km_json *sel = km_json_get(spec, "selector");
	struct km_json *ref = km_json_get(sel, "dataplaneRef");
	if (ref)
		return km_str_eq(km_json_get_string(ref, "name"), dp->res.name);
	struct km_json *dl = km_json_get(sel, "dataplaneLabels");
	if (!dl)
		return false;
	return labels_match(km_json_get(dl, "matchLabels"), dp->labels);
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
	uint64_t h;
	struct km_str k, v; /* label key and value; v empty for a name entry */
	bool name_entry;
	size_t *idx, n, cap;
};

struct dp_index {
	struct dp_bucket *b;
	size_t cap;
};

static uint64_t kv_hash(struct km_str k, struct km_str v, bool name)
{
	uint64_t h = name ? 7 : 1469598103934665603ULL;
	for (size_t i = 0; i < k.len; i++)
		h = (h ^ (unsigned char)k.ptr[i]) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (size_t i = 0; i < v.len; i++)
		h = (h ^ (unsigned char)v.ptr[i]) * 1099511628211ULL;
	return h;
}

static struct dp_bucket *bucket(struct dp_index *x, struct km_str k, struct km_str v, bool name, bool create)
{
	uint64_t h = kv_hash(k, v, name);
	for (size_t i = h & (x->cap - 1);; i = (i + 1) & (x->cap - 1)) {
		struct dp_bucket *b = &x->b[i];
		if (!b->k.ptr && !b->name_entry) {
			if (!create)
				return NULL;
			b->h = h;
			b->k = k;
			b->v = v;
			b->name_entry = name;
			return b;
		}
		if (b->h == h && b->name_entry == name && km_str_eq(b->k, k) && km_str_eq(b->v, v))
			return b;
	}
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

static void index_build(struct km_arena *a, const struct cp_xds_mesh *m, struct dp_index *x)
{
	size_t entries = m->ndataplanes;
	for (size_t i = 0; i < m->ndataplanes; i++)
		entries += m->dataplanes[i].labels->len;
	x->cap = 16;
	while (x->cap < 2 * entries + 16)
		x->cap *= 2;
	x->b = km_arena_alloc(a, x->cap * sizeof(*x->b));
	memset(x->b, 0, x->cap * sizeof(*x->b));
	for (size_t i = 0; i < m->ndataplanes; i++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[i];
		bucket_add(a, bucket(x, dp->res.name, KM_STR(""), true, true), i);
		for (size_t l = 0; l < dp->labels->len; l++) {
			const struct km_json *v = dp->labels->members[l].val;
			if (v->kind == KM_JSON_STRING)
				bucket_add(a, bucket(x, dp->labels->members[l].key, v->s, false, true), i);
		}
	}
}

/* Indexes of the Dataplanes that may match the service's selector (a
 * superset: `selects` decides); NULL with *n = SIZE_MAX means "all". */
static const size_t *candidates(struct dp_index *x, const struct km_json *spec, size_t *n)
{
	struct km_json *sel = km_json_get(spec, "selector");
	struct km_json *ref = km_json_get(sel, "dataplaneRef");
	struct dp_bucket *b = NULL;
	if (ref) {
		b = bucket(x, km_json_get_string(ref, "name"), KM_STR(""), true, false);
	} else {
		struct km_json *ml = km_json_get(km_json_get(sel, "dataplaneLabels"), "matchLabels");
		if (!km_json_get(sel, "dataplaneLabels")) {
			*n = 0;
			return NULL;
		}
		if (!ml || ml->kind != KM_JSON_OBJECT || !ml->len || ml->members[0].val->kind != KM_JSON_STRING) {
			*n = SIZE_MAX; /* empty selector: every Dataplane */
			return NULL;
		}
		b = bucket(x, ml->members[0].key, ml->members[0].val->s, false, false);
	}
	*n = b ? b->n : 0;
	return b ? b->idx : NULL;
}

static void resolve_endpoints(struct cp_xds_mesh *m, struct dp_index *x, struct cp_xds_service *s,
			      struct cp_xds_port *p)
{
	size_t nc;
	const size_t *cand = candidates(x, s->spec, &nc);
	size_t total = nc == SIZE_MAX ? m->ndataplanes : nc;
	p->endpoints = km_arena_alloc(m->a, (total + 1) * sizeof(*p->endpoints));
	for (size_t c = 0; c < total; c++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[cand ? cand[c] : c];
		if (!selects(s->spec, dp))
			continue;
		const struct km_json *in = inbound_for(dp, p);
		if (!in)
			continue;
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
	}
}

static void load_service(struct cp_xds_mesh *m, struct dp_index *x, const struct km_resource *r,
			 struct cp_xds_service *s)
{
	s->store_name = r->name;
	s->labels = parse(m->a, r->labels);
	s->spec = parse(m->a, r->spec);
	s->status = parse(m->a, r->status);
	struct km_str display = km_json_get_string(s->labels, "kuma.io/display-name");
	s->name = display.len ? display : r->name;
	s->zone = km_json_get_string(s->labels, "kuma.io/zone");
	s->ns = km_json_get_string(s->labels, "k8s.kuma.io/namespace");
	struct km_json *ports = km_json_get(s->spec, "ports");
	size_t n = ports && ports->kind == KM_JSON_ARRAY ? ports->len : 0;
	s->ports = km_arena_alloc(m->a, (n + 1) * sizeof(*s->ports));
	for (size_t i = 0; i < n; i++) {
		struct km_json *pj = ports->items[i];
		struct cp_xds_port *p = &s->ports[s->nports++];
		p->port = (uint32_t)num(km_json_get(pj, "port"), 0);
		struct km_str name = km_json_get_string(pj, "name");
		p->section = name.len ? name : km_str_c(km_arena_printf(m->a, "%u", p->port));
		p->app_protocol = km_json_get_string(pj, "appProtocol");
		if (!p->app_protocol.len)
			p->app_protocol = KM_STR("tcp");
		p->target_port = km_json_get(pj, "targetPort");
		resolve_endpoints(m, x, s, p);
	}
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
static int load_policies(struct cp_runtime *rt, struct cp_xds_mesh *m)
{
	struct cp_list_opts o = {.mesh = m->name};
	struct cp_list_result lists[64];
	size_t nlists = 0, total = 0;
	for (size_t t = 0; t < km_rtypes_len && nlists < 64; t++) {
		if (!km_rtype_has(&km_rtypes[t], KM_RT_POLICY) && strcmp(km_rtypes[t].name, "MeshExternalService") != 0 &&
		    strcmp(km_rtypes[t].name, "MeshMultiZoneService") != 0)
			continue;
		if (cp_store_list(rt->store, m->a, &km_rtypes[t], &o, &lists[nlists]))
			return -1;
		total += lists[nlists++].len;
	}
	m->policies = km_arena_alloc(m->a, (total + 1) * sizeof(*m->policies));
	for (size_t l = 0; l < nlists; l++)
		for (size_t i = 0; i < lists[l].len; i++)
			cp_policy_parse(m->a, &lists[l].items[i], &m->policies[m->npolicies++]);
	return 0;
}

struct cp_xds_mesh *cp_xds_mesh_build(struct cp_runtime *rt, struct km_str mesh)
{
	static uint64_t generation;
	struct km_arena *a = km_arena_new(64 * 1024);
	struct km_resource mr;
	if (cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &mr)) {
		km_arena_free(a);
		return NULL;
	}
	struct cp_xds_mesh *m = km_arena_alloc(a, sizeof(*m));
	m->a = a;
	m->name = mr.name;
	m->zone = rt->zone ? rt->zone : "";
	m->generation = ++generation;
	m->internal_cidrs = internal_cidrs(a, rt->cfg);
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result dps, svcs;
	if (cp_store_list(rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), &o, &dps) ||
	    cp_store_list(rt->store, a, km_rtype_by_name(KM_STR("MeshService")), &o, &svcs)) {
		km_arena_free(a);
		return NULL;
	}
	m->dataplanes = km_arena_alloc(a, (dps.len + 1) * sizeof(*m->dataplanes));
	for (size_t i = 0; i < dps.len; i++) {
		struct cp_xds_dataplane *d = &m->dataplanes[m->ndataplanes++];
		d->res = dps.items[i];
		d->spec = parse(a, d->res.spec);
		d->labels = parse(a, d->res.labels);
		if (!d->labels)
			d->labels = km_json_object(a);
	}
	m->services = km_arena_alloc(a, (svcs.len + 1) * sizeof(*m->services));
	struct km_arena *ta = km_arena_new(64 * 1024);
	struct dp_index x;
	index_build(ta, m, &x);
	for (size_t i = 0; i < svcs.len; i++)
		load_service(m, &x, &svcs.items[i], &m->services[m->nservices++]);
	km_arena_free(ta);
	m->mesh_labels = parse(a, mr.labels);
	if (!m->mesh_labels)
		m->mesh_labels = km_json_object(a);
	if (load_policies(rt, m)) {
		km_arena_free(a);
		return NULL;
	}
	return m;
}

void cp_xds_mesh_free(struct cp_xds_mesh *m)
{
	if (m)
		km_arena_free(m->a);
}

const struct cp_xds_service *cp_xds_mesh_service(const struct cp_xds_mesh *m, struct km_str name)
{
	for (size_t i = 0; i < m->nservices; i++)
		if (km_str_eq(m->services[i].store_name, name) || km_str_eq(m->services[i].name, name))
			return &m->services[i];
	return NULL;
}

const struct cp_xds_dataplane *cp_xds_mesh_dataplane(const struct cp_xds_mesh *m, struct km_str name)
{
	for (size_t i = 0; i < m->ndataplanes; i++)
		if (km_str_eq(m->dataplanes[i].res.name, name))
			return &m->dataplanes[i];
	return NULL;
}

const char *cp_xds_service_kri(struct km_arena *a, const struct cp_xds_mesh *m,
			       const struct cp_xds_service *s, const struct cp_xds_port *p)
{
	return km_arena_printf(a, "kri_msvc_%.*s_%.*s_%.*s_%.*s_%.*s", KM_STR_FMT(m->name),
			       KM_STR_FMT(s->zone), KM_STR_FMT(s->ns), KM_STR_FMT(s->name),
			       KM_STR_FMT(p->section));
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
	out->workdir = km_json_get_string(md, "workdir");
	out->features = km_json_get(md, "features");
}

void cp_xds_metadata_node(struct km_arena *a, const struct km_json *node_md, struct cp_xds_metadata *out)
{
	cp_xds_metadata_parse(a, node_md, out);
	/* kuma-dp's bootstrap always names the proxy type */
	out->proxyless = !km_json_get(node_md, "dataplane.proxyType");
}
