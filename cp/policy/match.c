/* SPDX-License-Identifier: Apache-2.0 */
/* Matching the policies of one type to one Dataplane and building its rules
 * (upstream's matchers.MatchedPolicies and core/rules): top-level targetRef
 * selection, priority sort, per-inbound rules, per-destination `to` rules and
 * the proxy-wide conf. Results live in the caller's arena. */
#include "cp/policy/policy.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"

/* ---- targetRef kinds ---- */

static int kind_rank(struct km_str kind)
{
	static const struct {
		const char *kind;
		int rank;
	} ranks[] = {{"Mesh", 1},
		     {"Dataplane", 2},
		     {"MeshService", 5},
		     {"MeshExternalService", 6},
		     {"MeshMultiZoneService", 7},
		     {"MeshHTTPRoute", 9}};
	for (size_t i = 0; i < sizeof(ranks) / sizeof(ranks[0]); i++)
		if (km_str_eqc(kind, ranks[i].kind))
			return ranks[i].rank;
	return 0;
}

static struct km_str top_kind(const struct cp_policy *p)
{
	if (p->parsed)
		return p->top_kind;
	if (!p->target_ref)
		return KM_STR("Mesh");
	struct km_str k = km_json_get_string(p->target_ref, "kind");
	return k.len ? k : KM_STR("Mesh");
}

static struct km_str top_section(const struct cp_policy *p)
{
	if (p->parsed)
		return p->top_section;
	return km_json_get_string(p->target_ref, "sectionName");
}

/* Upstream's CompareByPolicyAttributes: kind, Dataplane section name,
 * origin, role. */
static int cmp_attrs(const struct cp_policy *x, const struct cp_policy *y)
{
	int c = kind_rank(top_kind(x)) - kind_rank(top_kind(y));
	if (c)
		return c;
	if (km_str_eqc(top_kind(x), "Dataplane") && km_str_eqc(top_kind(y), "Dataplane")) {
		c = (top_section(x).len != 0) - (top_section(y).len != 0);
		if (c)
			return c;
	}
	if ((c = x->origin - y->origin))
		return c;
	return x->role - y->role;
}

/* Descending display name: the smaller name sorts later and wins. */
static int cmp_display(const struct cp_policy *x, const struct cp_policy *y)
{
	return km_str_cmp(y->display, x->display);
}

static int cmp_policies(const struct cp_policy *x, const struct cp_policy *y)
{
	int c = cmp_attrs(x, y);
	return c ? c : cmp_display(x, y);
}

/* ---- the Dataplane's inbounds and listeners ---- */

struct port_desc {
	struct km_str address;
	uint32_t port;
	struct km_str name;
	struct km_str section; /* name, else the port number */
	const char *resource;
	const struct km_json *inbound;
};

static int64_t num(const struct km_json *v)
{
	int64_t n;
	if (v && v->kind == KM_JSON_NUMBER && km_json_as_i64(v, &n))
		return n;
	long long l;
	if (v && v->kind == KM_JSON_STRING && km_str_to_i64(v->s, &l) == 0)
		return l;
	return 0;
}

static size_t port_descs(struct km_arena *a, const struct cp_xds_dataplane *dp,
			 struct port_desc **out)
{
	struct km_json *net = km_json_get(dp->spec, "networking");
	struct km_str addr = km_json_get_string(net, "address");
	struct km_json *inb = km_json_get(net, "inbound"), *lis = km_json_get(net, "listeners");
	size_t ni = inb && inb->kind == KM_JSON_ARRAY ? inb->len : 0;
	size_t nl = lis && lis->kind == KM_JSON_ARRAY ? lis->len : 0;
	struct port_desc *d = km_arena_alloc(a, (ni + nl + 1) * sizeof(*d));
	for (size_t i = 0; i < ni + nl; i++) {
		const struct km_json *j = i < ni ? inb->items[i] : lis->items[i - ni];
		struct port_desc *p = &d[i];
		p->address = km_json_get_string(j, "address");
		if (!p->address.len)
			p->address = addr;
		p->port = (uint32_t)num(km_json_get(j, "port"));
		p->name = km_json_get_string(j, "name");
		if (p->name.len) {
			p->section = p->name;
		} else {
			char digits[16];
			int n = snprintf(digits, sizeof(digits), "%u", p->port);
			p->section = (struct km_str){km_arena_strndup(a, digits, (size_t)n), (size_t)n};
		}
		if (i < ni) {
			static const char prefix[] = "self_inbound_dp_";
			char *r = km_arena_alloc(a, sizeof(prefix) + p->section.len);
			memcpy(r, prefix, sizeof(prefix) - 1);
			memcpy(r + sizeof(prefix) - 1, p->section.ptr, p->section.len);
			p->inbound = j;
			p->resource = r;
		} else {
			p->resource = "";
		}
	}
	*out = d;
	return ni + nl;
}

/* ---- selection (top-level targetRef) ---- */

static struct km_str dp_display(const struct cp_xds_dataplane *dp)
{
	struct km_str d = km_json_get_string(dp->labels, "kuma.io/display-name");
	return d.len ? d : dp->res.name;
}

/* The zone labels of a Dataplane, read once per proxy rather than per
 * policy. */
struct dp_zone {
	struct km_str origin, zone;
};

static struct dp_zone dp_zone_of(const struct cp_xds_dataplane *dp)
{
	return (struct dp_zone){km_json_get_string(dp->labels, "kuma.io/origin"),
				km_json_get_string(dp->labels, "kuma.io/zone")};
}

static bool selected_by_zone(const struct cp_policy *p, const struct dp_zone *z)
{
	if (p->role == CP_POLICY_ROLE_PRODUCER || (p->parsed && !p->zoned))
		return true; /* not a zone's policy naming its zone: selects in every zone */
	if (!z->origin.len || km_str_eqc(z->origin, "global"))
		return true;
	if (!km_str_eqc(km_json_get_string(p->labels, "kuma.io/origin"), "zone"))
		return true;
	struct km_json *zone = km_json_get(p->labels, "kuma.io/zone");
	if (!zone || zone->kind != KM_JSON_STRING)
		return true;
	return !z->zone.len || km_str_eq(z->zone, zone->s);
}

static bool selected_by_namespace(const struct cp_policy *p, const struct km_json *labels)
{
	if (p->role != CP_POLICY_ROLE_CONSUMER && p->role != CP_POLICY_ROLE_WORKLOAD_OWNER)
		return true;
	struct km_json *ns = km_json_get(p->labels, "k8s.kuma.io/namespace");
	return ns && ns->kind == KM_JSON_STRING &&
	       km_str_eq(ns->s, km_json_get_string(labels, "k8s.kuma.io/namespace"));
}

static struct km_str label_str(const struct km_json *labels, struct km_str key)
{
	struct km_json *v = km_json_get_str(labels, key);
	return v && v->kind == KM_JSON_STRING ? v->s : KM_STR("");
}

/* Every selector label must match (a missing label reads as ""), and
 * kuma.io/display-name compares with the display name. */
static bool dp_labels_match(const struct km_json *sel, const struct cp_xds_dataplane *dp)
{
	for (size_t i = 0; i < sel->len; i++) {
		struct km_json *want = sel->members[i].val;
		struct km_str w = want->kind == KM_JSON_STRING ? want->s : KM_STR("");
		struct km_str key = sel->members[i].key;
		struct km_str have = km_str_eqc(key, "kuma.io/display-name") ?
					     dp_display(dp) :
					     label_str(dp->labels, key);
		if (!km_str_eq(have, w))
			return false;
	}
	return true;
}

/* Marks in <sel> the ports (inbounds, then listeners) <p> selects; returns
 * how many, or -1 when its top-level kind is not supported. */
static int select_ports(const struct cp_policy *p, const struct cp_xds_dataplane *dp, const struct dp_zone *z,
			const struct port_desc *d, size_t n, bool *sel)
{
	memset(sel, 0, n * sizeof(*sel));
	if (!selected_by_zone(p, z) || !selected_by_namespace(p, dp->labels))
		return 0;
	struct km_str kind = top_kind(p);
	struct km_str section = KM_STR("");
	if (km_str_eqc(kind, "Dataplane")) {
		struct km_json *labels = km_json_get(p->target_ref, "labels");
		if (labels && labels->kind == KM_JSON_OBJECT && !dp_labels_match(labels, dp))
			return 0;
		section = top_section(p);
	} else if (!km_str_eqc(kind, "Mesh")) {
		return -1;
	}
	int count = 0;
	for (size_t i = 0; i < n; i++)
		if (!section.len || km_str_eq(d[i].section, section)) {
			sel[i] = true;
			count++;
		}
	return count;
}

bool cp_policy_may_affect(const struct cp_policy *p, const struct cp_xds_dataplane *dp)
{
	if (!p->type || !km_rtype_has(p->type, KM_RT_POLICY) || p->role == CP_POLICY_ROLE_PRODUCER)
		return true;
	if (!km_str_eqc(top_kind(p), "Dataplane"))
		return true; /* Mesh selects everyone; other kinds: assume so */
	struct dp_zone z = dp_zone_of(dp);
	if (!selected_by_zone(p, &z) || !selected_by_namespace(p, dp->labels))
		return false;
	struct km_json *labels = km_json_get(p->target_ref, "labels");
	return !labels || labels->kind != KM_JSON_OBJECT || dp_labels_match(labels, dp);
}

bool cp_policy_selects(const struct cp_policy *p, const struct cp_xds_dataplane *dp)
{
	struct km_arena *a = km_arena_new(4096);
	struct port_desc *d;
	size_t n = port_descs(a, dp, &d);
	bool *sel = km_arena_alloc(a, n + 1);
	struct dp_zone z = dp_zone_of(dp);
	int c = select_ports(p, dp, &z, d, n, sel);
	km_arena_free(a);
	return c > 0;
}

/* ---- stable sorting of small arrays ---- */

struct entry {
	const struct cp_policy *p;
	int index;
	const struct km_json *item;
	/* to rules: the resolved destination */
	int res_kind; /* 1 Mesh, 2 MeshService, 3 a resource matched whole (route, other
			 destination) */
	const struct cp_xds_service *svc;
	const struct cp_policy
		*route; /* res_kind 3: a MeshHTTPRoute, MeshExternalService, MeshMultiZoneService */
	struct km_str section;
};

static struct km_str to_kind(const struct entry *e)
{
	return km_json_get_string(km_json_get(e->item, "targetRef"), "kind");
}

static int cmp_to_entries(const struct entry *x, const struct entry *y)
{
	int c = cmp_attrs(x->p, y->p);
	if (c)
		return c;
	struct km_str kx = to_kind(x), ky = to_kind(y);
	if ((c = kind_rank(kx) - kind_rank(ky)))
		return c;
	if (km_str_eqc(kx, "MeshService")) {
		bool sx =
			km_json_get_string(km_json_get(x->item, "targetRef"), "sectionName").len !=
			0;
		bool sy =
			km_json_get_string(km_json_get(y->item, "targetRef"), "sectionName").len !=
			0;
		if ((c = (int)sx - (int)sy))
			return c;
	}
	return cmp_display(x->p, y->p);
}

static int cmp_rule_entries(const struct entry *x, const struct entry *y)
{
	return cmp_policies(x->p, y->p);
}

static void sort_entries(struct entry *e, size_t n,
			 int (*cmp)(const struct entry *, const struct entry *))
{
	for (size_t i = 1; i < n; i++) {
		struct entry t = e[i];
		size_t j = i;
		while (j > 0 && cmp(&e[j - 1], &t) > 0) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = t;
	}
}

/* ---- inbound rules ---- */

static int match_score(const struct km_json *match)
{
	const struct km_json *sp = km_json_get(match, "spiffeID");
	if (sp) {
		struct km_str t = km_json_get_string(sp, "type");
		return 10 + (km_str_eqc(t, "Exact") ? 2 : km_str_eqc(t, "Prefix") ? 1 : 0);
	}
	return km_json_get(match, "sni") ? 1 : 0;
}

/* Rules with a spiffeID match first (Exact before Prefix), then SNI, then
 * the catch-all ones; otherwise priority order is kept. */
static int cmp_rules(const struct cp_policy_rule *x, const struct cp_policy_rule *y)
{
	const struct km_json *sx = km_json_get(x->match, "spiffeID"),
			     *sy = km_json_get(y->match, "spiffeID");
	if (sx && !sy)
		return -1;
	if (!sx && sy)
		return 1;
	if (sx && sy) {
		int c = match_score(y->match) - match_score(x->match);
		if (c)
			return c;
	}
	bool nx = km_json_get(x->match, "sni") != NULL, ny = km_json_get(y->match, "sni") != NULL;
	if (nx && !ny)
		return -1;
	if (!nx && ny)
		return 1;
	return 0;
}

static void build_inbound(struct km_arena *a, const struct cp_policy **ps, size_t np,
			  struct cp_policy_inbound *in)
{
	size_t ne = 0;
	for (size_t i = 0; i < np; i++) {
		struct km_json *rules = km_json_get(ps[i]->spec, "rules");
		if (rules && rules->kind == KM_JSON_ARRAY)
			ne += rules->len;
	}
	struct entry *e = km_arena_alloc(a, (ne + 1) * sizeof(*e));
	size_t k = 0, nrules = 0;
	for (size_t i = 0; i < np; i++) {
		struct km_json *rules = km_json_get(ps[i]->spec, "rules");
		for (size_t j = 0; rules && rules->kind == KM_JSON_ARRAY && j < rules->len; j++) {
			e[k++] = (struct entry){
				.p = ps[i], .index = (int)j, .item = rules->items[j]};
			struct km_json *m = km_json_get(rules->items[j], "matches");
			nrules += m && m->kind == KM_JSON_ARRAY && m->len ? m->len : 1;
		}
	}
	sort_entries(e, k, cmp_rule_entries);
	in->rules = km_arena_alloc(a, (nrules + 1) * sizeof(*in->rules));
	for (size_t i = 0; i < k; i++) {
		struct km_json *conf = km_json_get(e[i].item, "default");
		if (!conf)
			conf = km_json_object(a);
		struct km_json *m = km_json_get(e[i].item, "matches");
		struct cp_policy_origin o = {e[i].p, e[i].index};
		if (!m || m->kind != KM_JSON_ARRAY || !m->len) {
			in->rules[in->nrules++] = (struct cp_policy_rule){NULL, conf, o};
			continue;
		}
		for (size_t j = 0; j < m->len; j++)
			in->rules[in->nrules++] = (struct cp_policy_rule){m->items[j], conf, o};
	}
	for (size_t i = 1; i < in->nrules; i++) {
		struct cp_policy_rule t = in->rules[i];
		size_t j = i;
		while (j > 0 && cmp_rules(&in->rules[j - 1], &t) > 0) {
			in->rules[j] = in->rules[j - 1];
			j--;
		}
		in->rules[j] = t;
	}
}

struct km_json *cp_policy_inbound_conf(struct km_arena *a, const struct cp_policy_inbound *in)
{
	struct km_json **confs = km_arena_alloc(a, (in->nrules + 1) * sizeof(*confs));
	size_t n = 0;
	for (size_t i = 0; i < in->nrules; i++)
		if (!in->rules[i].match)
			confs[n++] = in->rules[i].conf;
	return n ? cp_policy_merge(a, confs, n) : NULL;
}

bool cp_policy_inbound_has_catch_all(const struct cp_policy_inbound *in)
{
	for (size_t i = 0; i < in->nrules; i++)
		if (!in->rules[i].match)
			return true;
	return false;
}

/* ---- to rules ---- */

static const char *mesh_kri(struct km_arena *a, const struct cp_xds_mesh *m)
{
	return km_arena_printf(a, "kri_m____%.*s_", KM_STR_FMT(m->name));
}

static const char *entry_kri(struct km_arena *a, const struct cp_xds_mesh *m, const struct entry *e)
{
	if (e->res_kind == 1)
		return mesh_kri(a, m);
	if (e->res_kind == 3)
		return e->route->kri;
	const struct cp_xds_service *s = e->svc;
	return km_arena_printf(a, "kri_msvc_%.*s_%.*s_%.*s_%.*s_%.*s", KM_STR_FMT(m->name),
			       KM_STR_FMT(s->zone), KM_STR_FMT(s->ns), KM_STR_FMT(s->name),
			       KM_STR_FMT(e->section));
}

static bool labels_subset(const struct km_json *sel, const struct km_json *labels)
{
	for (size_t i = 0; i < sel->len; i++) {
		struct km_json *want = sel->members[i].val;
		struct km_json *have = km_json_get_str(labels, sel->members[i].key);
		if (!have || have->kind != KM_JSON_STRING || want->kind != KM_JSON_STRING ||
		    !km_str_eq(have->s, want->s))
			return false;
	}
	return true;
}

/* Resolves to[].targetRef of <e> into destinations appended to <out>. */
struct entry_vec {
	struct km_arena *a;
	struct entry *v;
	size_t n, cap;
};

/* Appends <e> to <out>; returns the copy. */
static struct entry *vec_push(struct entry_vec *out, const struct entry *e)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		out->v = km_arena_realloc(out->a, out->v, out->cap * sizeof(*out->v), cap * sizeof(*out->v));
		out->cap = cap;
	}
	out->v[out->n] = *e;
	return &out->v[out->n++];
}

static void resolve_to(const struct cp_xds_mesh *m, const struct entry *e, struct entry_vec *out)
{
	const struct km_json *tr = km_json_get(e->item, "targetRef");
	struct km_str kind = km_json_get_string(tr, "kind");
	if (km_str_eqc(kind, "Mesh")) {
		vec_push(out, e)->res_kind = 1;
		return;
	}
	if (km_str_eqc(kind, "MeshHTTPRoute")) {
		struct km_json *labels = km_json_get(tr, "labels");
		if (!labels || labels->kind != KM_JSON_OBJECT || !labels->len)
			return;
		for (size_t i = 0; i < m->npolicies; i++) {
			const struct cp_policy *route = &m->policies[i];
			if (strcmp(route->type->name, "MeshHTTPRoute") != 0 ||
			    !labels_subset(labels, route->labels) ||
			    !selected_by_namespace(e->p, route->labels))
				continue;
			struct entry *r = vec_push(out, e);
			r->res_kind = 3;
			r->route = route;
		}
		return;
	}
	if (km_str_eqc(kind, "MeshExternalService") || km_str_eqc(kind, "MeshMultiZoneService")) {
		struct km_json *labels = km_json_get(tr, "labels");
		if (!labels || labels->kind != KM_JSON_OBJECT)
			return;
		for (size_t i = 0; i < m->npolicies; i++) {
			const struct cp_policy *d = &m->policies[i];
			if (!km_str_eqc(kind, d->type->name) || !labels_subset(labels, d->labels) ||
			    !selected_by_namespace(e->p, d->labels))
				continue;
			struct entry *r = vec_push(out, e);
			r->res_kind = 3;
			r->route = d;
		}
		return;
	}
	if (!km_str_eqc(kind, "MeshService"))
		return;
	struct km_json *labels = km_json_get(tr, "labels");
	if (!labels || labels->kind != KM_JSON_OBJECT)
		return;
	struct km_str section = km_json_get_string(tr, "sectionName");
	for (size_t i = 0; i < m->nservices; i++) {
		const struct cp_xds_service *s = &m->services[i];
		if (!labels_subset(labels, s->labels))
			continue;
		if (!selected_by_namespace(e->p, s->labels))
			continue;
		struct km_str sec = KM_STR("");
		if (section.len) {
			bool found = false;
			for (size_t k = 0; k < s->nports && !found; k++)
				if (km_str_eq(s->ports[k].section, section)) {
					sec = s->ports[k].section;
					found = true;
				}
			if (!found)
				continue;
		}
		struct entry *r = vec_push(out, e);
		r->res_kind = 2;
		r->svc = s;
		r->section = sec;
	}
}

/* Is resolved item <r> relevant for destination <u>? */
static bool relevant(const struct entry *r, const struct entry *u)
{
	if (r->res_kind == 1)
		return true; /* every destination lives in the policy's mesh */
	if (r->res_kind == 3)
		return u->res_kind == 3 && r->route == u->route;
	if (u->res_kind != 2 || r->svc != u->svc)
		return false;
	return km_str_eq(r->section, u->section) || (!r->section.len && u->section.len);
}

/* The conf of a to[] entry: its `default`; for routes what upstream's
 * GetDefault returns (MeshTCPRoute: the first rule; MeshHTTPRoute: the
 * rules, reversed so that the final reversal puts them back in order). */
static struct km_json *entry_conf(struct km_arena *a, const struct km_rtype *t,
				  const struct km_json *item)
{
	struct km_json *d = km_json_get(item, "default");
	if (d)
		return d;
	struct km_json *rules = km_json_get(item, "rules");
	if (strcmp(t->name, "MeshTCPRoute") == 0)
		return rules && rules->kind == KM_JSON_ARRAY && rules->len ? rules->items[0] :
									     km_json_object(a);
	struct km_json *o = km_json_object(a);
	if (rules && rules->kind == KM_JSON_ARRAY) {
		struct km_json *rev = km_json_array(a);
		for (size_t i = rules->len; i > 0; i--)
			km_json_array_push(a, rev, rules->items[i - 1]);
		km_json_set(a, o, "rules", rev);
	}
	return o;
}

/* MeshHTTPRoute: rules concatenated in priority order, rules with equal
 * matches merged (placed where the last one was), then reversed so the
 * highest-priority policy's rules come first. */
static struct km_json *merge_http_rules(struct km_arena *a, struct km_json *const *confs, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		struct km_json *r = km_json_get(confs[i], "rules");
		total += r && r->kind == KM_JSON_ARRAY ? r->len : 0;
	}
	struct km_json **rules = km_arena_alloc(a, (total + 1) * sizeof(*rules));
	struct km_json ***defaults = km_arena_alloc(a, (total + 1) * sizeof(*defaults));
	size_t *ndefaults = km_arena_alloc(a, (total + 1) * sizeof(*ndefaults));
	bool *skip = km_arena_alloc(a, total + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct km_json *r = km_json_get(confs[i], "rules");
		for (size_t j = 0; r && r->kind == KM_JSON_ARRAY && j < r->len; j++, k++) {
			rules[k] = r->items[j];
			defaults[k] = km_arena_alloc(a, (total + 1) * sizeof(**defaults));
			struct km_json *matches = km_json_get(rules[k], "matches");
			for (size_t p = 0; p < k; p++) {
				if (skip[p] ||
				    !km_json_equal(km_json_get(rules[p], "matches"), matches))
					continue;
				for (size_t q = 0; q < ndefaults[p]; q++)
					defaults[k][ndefaults[k]++] = defaults[p][q];
				skip[p] = true;
			}
			struct km_json *d = km_json_get(rules[k], "default");
			defaults[k][ndefaults[k]++] = d ? d : km_json_object(a);
		}
	}
	struct km_json *out = km_json_array(a);
	for (size_t i = k; i > 0; i--) {
		if (skip[i - 1])
			continue;
		struct km_json *rule = km_json_object(a);
		struct km_json *matches = km_json_get(rules[i - 1], "matches");
		km_json_set(a, rule, "matches",
			    matches ? km_json_clone(a, matches) : km_json_null(a));
		km_json_set(a, rule, "default",
			    cp_policy_merge(a, defaults[i - 1], ndefaults[i - 1]));
		km_json_array_push(a, out, rule);
	}
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "rules", out);
	return o;
}

static int cmp_to_rules(const void *x, const void *y)
{
	const struct cp_policy_to_rule *a = x, *b = y;
	int c = km_str_cmp(a->rname, b->rname);
	return c ? c : km_str_cmp(a->section, b->section);
}

static void build_to(struct km_arena *a, const struct cp_xds_mesh *m, struct cp_policy_matched *out)
{
	size_t ne = 0;
	for (size_t i = 0; i < out->npolicies; i++) {
		struct km_json *to = km_json_get(out->policies[i]->spec, "to");
		if (to && to->kind == KM_JSON_ARRAY)
			ne += to->len;
	}
	if (!ne)
		return;
	struct entry *e = km_arena_alloc(a, ne * sizeof(*e));
	size_t k = 0;
	for (size_t i = 0; i < out->npolicies; i++) {
		const struct cp_policy *p = out->policies[i];
		if (km_str_eqc(top_kind(p), "MeshHTTPRoute"))
			continue;
		struct km_json *to = km_json_get(p->spec, "to");
		for (size_t j = 0; to && to->kind == KM_JSON_ARRAY && j < to->len; j++)
			e[k++] = (struct entry){.p = p, .index = (int)j, .item = to->items[j]};
	}
	sort_entries(e, k, cmp_to_entries);
	struct entry_vec rv = {.a = a};
	for (size_t i = 0; i < k; i++)
		resolve_to(m, &e[i], &rv);
	struct entry *r = rv.v;
	size_t nr = rv.n;
	/* one rule per distinct destination */
	const char **kris = km_arena_alloc(a, (nr + 1) * sizeof(*kris));
	for (size_t i = 0; i < nr; i++)
		kris[i] = entry_kri(a, m, &r[i]);
	out->to = km_arena_alloc(a, (nr + 1) * sizeof(*out->to));
	struct km_json **confs = km_arena_alloc(a, (nr + 1) * sizeof(*confs));
	for (size_t u = 0; u < nr; u++) {
		bool seen = false;
		for (size_t v = 0; v < u && !seen; v++)
			seen = strcmp(kris[u], kris[v]) == 0;
		if (seen)
			continue;
		struct cp_policy_to_rule *tr = &out->to[out->nto++];
		tr->kri = kris[u];
		tr->kri_len = strlen(kris[u]);
		tr->origins = km_arena_alloc(a, (nr + 1) * sizeof(*tr->origins));
		size_t nc = 0;
		char *inputs = km_arena_alloc(a, (nr + 1) * 12);
		for (size_t i = 0; i < nr; i++) {
			if (!relevant(&r[i], &r[u]))
				continue;
			uint32_t index = (uint32_t)r[i].index;
			memcpy(inputs + nc * 12, &r[i].p->fp, 8);
			memcpy(inputs + nc * 12 + 8, &index, 4);
			confs[nc++] = entry_conf(a, out->type, r[i].item);
			bool dup = false;
			for (size_t o = 0; o < tr->norigins && !dup; o++)
				dup = tr->origins[o].policy == r[i].p &&
				      tr->origins[o].rule_index == r[i].index;
			if (!dup)
				tr->origins[tr->norigins++] =
					(struct cp_policy_origin){r[i].p, r[i].index};
		}
		tr->inputs = inputs;
		tr->inputs_len = nc * 12;
		tr->conf = strcmp(out->type->name, "MeshHTTPRoute") == 0 ?
				   merge_http_rules(a, confs, nc) :
				   cp_policy_merge(a, confs, nc);
		if (r[u].res_kind == 1) {
			tr->rtype = "Mesh";
			tr->rmesh = KM_STR("");
			tr->rname = m->name;
			tr->rlabels = m->mesh_labels;
		} else if (r[u].res_kind == 3) {
			tr->rtype = r[u].route->type->name;
			tr->rmesh = r[u].route->mesh;
			tr->rname = r[u].route->name;
			tr->rlabels = r[u].route->labels;
		} else {
			tr->rtype = "MeshService";
			tr->rmesh = m->name;
			tr->rname = r[u].svc->store_name;
			tr->rlabels = r[u].svc->labels;
			tr->section = r[u].section;
		}
	}
	qsort(out->to, out->nto, sizeof(*out->to), cmp_to_rules);
}

/* ---- `to` rules kept with the context ---- */

enum { CACHE_BUCKETS = 64, CACHE_MAX = 256 };

struct cache_entry {
	struct cache_entry *next;
	uint64_t h;
	const struct km_rtype *type;
	const struct cp_policy **policies;
	size_t npolicies;
	struct cp_policy_to_rule *to;
	size_t nto;
};

/* Entries are only ever added, at the head of their bucket, complete
 * before they are published: lookups read without the lock (two builds
 * at once would otherwise pass its cache line back and forth for every
 * proxy and plugin); <mu> orders the writers. */
struct cp_policy_cache {
	pthread_mutex_t mu;
	struct km_arena *a; /* entries and their rules (under mu) */
	_Atomic(struct cache_entry *) buckets[CACHE_BUCKETS];
	size_t n; /* under mu */
};

struct cp_policy_cache *cp_policy_cache_new(void)
{
	struct cp_policy_cache *c = km_calloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	c->a = km_arena_new(16 * 1024);
	return c;
}

void cp_policy_cache_free(struct cp_policy_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->mu);
	km_arena_free(c->a);
	free(c);
}

/* build_to() through the context's cache: the rules of the same type and
 * selecting policies (same order) are the same. */
static const struct cache_entry *cache_find(struct cache_entry *e, uint64_t h, const struct cp_policy_matched *out,
					    size_t bytes)
{
	for (; e; e = e->next)
		if (e->h == h && e->type == out->type && e->npolicies == out->npolicies &&
		    memcmp(e->policies, out->policies, bytes) == 0)
			return e;
	return NULL;
}

static void build_to_cached(struct km_arena *a, const struct cp_xds_mesh *m, struct cp_policy_matched *out)
{
	struct cp_policy_cache *c = m->policy_cache;
	if (!c) {
		build_to(a, m, out);
		return;
	}
	size_t bytes = out->npolicies * sizeof(*out->policies);
	uint64_t h = km_hash((uint64_t)(uintptr_t)out->type, out->policies, bytes);
	_Atomic(struct cache_entry *) *b = &c->buckets[h % CACHE_BUCKETS];
	const struct cache_entry *e = cache_find(atomic_load_explicit(b, memory_order_acquire), h, out, bytes);
	if (e) {
		out->to = e->to;
		out->nto = e->nto;
		return;
	}
	pthread_mutex_lock(&c->mu);
	/* another build may have added it meanwhile */
	struct cache_entry *head = atomic_load_explicit(b, memory_order_relaxed);
	if ((e = cache_find(head, h, out, bytes))) {
		out->to = e->to;
		out->nto = e->nto;
		pthread_mutex_unlock(&c->mu);
		return;
	}
	if (c->n == CACHE_MAX) {
		pthread_mutex_unlock(&c->mu);
		build_to(a, m, out);
		return;
	}
	build_to(c->a, m, out);
	struct cache_entry *ne = km_arena_alloc(c->a, sizeof(*ne));
	*ne = (struct cache_entry){.next = head, .h = h, .type = out->type, .npolicies = out->npolicies,
				   .to = out->to, .nto = out->nto};
	ne->policies = km_arena_alloc(c->a, bytes + 1);
	memcpy(ne->policies, out->policies, bytes);
	atomic_store_explicit(b, ne, memory_order_release);
	c->n++;
	pthread_mutex_unlock(&c->mu);
}

/* ---- the whole match ---- */

static bool is_single_item(const struct km_rtype *t)
{
	const struct cp_policy_plugin *pl = cp_policy_plugin_of(t);
	return pl && pl->single_item;
}

static void match(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		  const struct dp_zone *z, const struct port_desc *d, size_t nports, const struct km_rtype *type,
		  bool shadow, struct cp_policy_matched *out)
{
	memset(out, 0, sizeof(*out));
	out->type = type;
	out->warnings = km_json_array(a);
	size_t cand = 0;
	for (size_t i = 0; i < m->npolicies; i++)
		if (m->policies[i].type == type)
			cand++;
	out->policies = km_arena_alloc(a, (cand + 1) * sizeof(*out->policies));
	bool **sel = km_arena_alloc(a, (cand + 1) * sizeof(*sel));
	for (size_t i = 0; i < m->npolicies; i++) {
		const struct cp_policy *p = &m->policies[i];
		if (p->type != type || (p->shadow && !shadow))
			continue;
		bool *s = km_arena_alloc(a, nports + 1);
		int c = select_ports(p, dp, z, d, nports, s);
		if (c < 0)
			km_json_array_push(
				a, out->warnings,
				km_json_cstring(
					a,
					km_arena_printf(
						a,
						"unable to resolve TargetRef on policy: mesh:%.*s "
						"name:%.*s error:\"unsupported targetRef kind '%.*s'\"",
						KM_STR_FMT(p->mesh), KM_STR_FMT(p->name),
						KM_STR_FMT(top_kind(p)))));
		if (c <= 0)
			continue;
		/* insert sorted, keeping the per-policy selection alongside */
		size_t j = out->npolicies++;
		while (j > 0 && cmp_policies(out->policies[j - 1], p) > 0) {
			out->policies[j] = out->policies[j - 1];
			sel[j] = sel[j - 1];
			j--;
		}
		out->policies[j] = p;
		sel[j] = s;
	}
	if (!out->npolicies)
		return;
	/* inbound rules */
	out->inbounds = km_arena_alloc(a, (nports + 1) * sizeof(*out->inbounds));
	const struct cp_policy **ps = km_arena_alloc(a, (out->npolicies + 1) * sizeof(*ps));
	for (size_t i = 0; i < nports; i++) {
		size_t np = 0;
		for (size_t k = 0; k < out->npolicies; k++)
			if (sel[k][i])
				ps[np++] = out->policies[k];
		if (!np)
			continue;
		struct cp_policy_inbound in = {.address = d[i].address,
					       .port = d[i].port,
					       .name = d[i].name,
					       .resource = d[i].resource,
					       .inbound = d[i].inbound};
		build_inbound(a, ps, np, &in);
		if (in.nrules)
			out->inbounds[out->ninbounds++] = in;
	}
	build_to_cached(a, m, out);
	if (is_single_item(type)) {
		struct km_json **confs = km_arena_alloc(a, (out->npolicies + 1) * sizeof(*confs));
		out->proxy_origins =
			km_arena_alloc(a, (out->npolicies + 1) * sizeof(*out->proxy_origins));
		for (size_t i = 0; i < out->npolicies; i++) {
			struct km_json *dflt = km_json_get(out->policies[i]->spec, "default");
			confs[i] = dflt ? dflt : km_json_object(a);
			out->proxy_origins[out->nproxy_origins++] = out->policies[i];
		}
		out->proxy_conf = cp_policy_merge(a, confs, out->npolicies);
	}
}

void cp_policy_match(struct km_arena *a, const struct cp_xds_mesh *m,
		     const struct cp_xds_dataplane *dp, const struct km_rtype *type, bool shadow,
		     struct cp_policy_matched *out)
{
	struct port_desc *d;
	size_t nports = port_descs(a, dp, &d);
	struct dp_zone z = dp_zone_of(dp);
	match(a, m, dp, &z, d, nports, type, shadow, out);
}

void cp_policy_match_each(struct km_arena *a, const struct cp_xds_mesh *m,
			  const struct cp_xds_dataplane *dp, const struct km_rtype *const *types, size_t n,
			  bool shadow, struct cp_policy_matched *out)
{
	struct port_desc *d;
	size_t nports = port_descs(a, dp, &d);
	struct dp_zone z = dp_zone_of(dp);
	for (size_t i = 0; i < n; i++)
		if (types[i])
			match(a, m, dp, &z, d, nports, types[i], shadow, &out[i]);
		else
			memset(&out[i], 0, sizeof(out[i]));
}

/* What a lookup by kri reads of it. */
struct kri_parts {
	size_t len;
	size_t nosection; /* the length of the kri without its section name, or 0 */
	struct km_str mesh;
	bool destination; /* a MeshService, MeshExternalService, MeshMultiZoneService or route kri */
};

static void kri_parse(const char *kri, struct kri_parts *k)
{
	memset(k, 0, sizeof(*k));
	k->len = strlen(kri);
	/* kri_<short>_<mesh>_<zone>_<ns>_<name>_<section> */
	if (k->len < 4 || memcmp(kri, "kri_", 4) != 0)
		return;
	const char *us[7];
	int n = 0;
	for (const char *p = kri + 3; *p && n < 7; p++)
		if (*p == '_')
			us[n++] = p;
	if (n != 6)
		return;
	struct km_str shortn = {kri + 4, (size_t)(us[1] - kri - 4)};
	if (!km_str_eqc(shortn, "msvc") && !km_str_eqc(shortn, "extsvc") && !km_str_eqc(shortn, "mzsvc") &&
	    !km_str_eqc(shortn, "mhttpr"))
		return;
	k->destination = true;
	if (us[5][1])
		k->nosection = (size_t)(us[5] - kri) + 1;
	k->mesh = (struct km_str){us[1] + 1, (size_t)(us[2] - us[1] - 1)};
}

static const struct cp_policy_to_rule *lookup_parsed(const struct cp_policy_matched *mp, const char *kri,
						     const struct kri_parts *k)
{
	for (size_t i = 0; i < mp->nto; i++)
		if (mp->to[i].kri_len == k->len && memcmp(mp->to[i].kri, kri, k->len) == 0)
			return &mp->to[i];
	if (!k->destination)
		return NULL;
	/* the destination without its section, then the Mesh (kri_m____<mesh>_) */
	for (size_t i = 0; k->nosection && i < mp->nto; i++)
		if (mp->to[i].kri_len == k->nosection && memcmp(mp->to[i].kri, kri, k->nosection) == 0)
			return &mp->to[i];
	for (size_t i = 0; i < mp->nto; i++)
		if (strcmp(mp->to[i].rtype, "Mesh") == 0 && km_str_eq(mp->to[i].rname, k->mesh))
			return &mp->to[i];
	return NULL;
}

const struct cp_policy_to_rule *cp_policy_to_lookup(const struct cp_policy_matched *mp,
						    const char *kri)
{
	struct kri_parts k;
	kri_parse(kri, &k);
	return lookup_parsed(mp, kri, &k);
}

void cp_policy_to_lookup_n(const struct cp_policy_matched *const *mps, size_t n, const char *kri,
			   const struct cp_policy_to_rule **out)
{
	struct kri_parts k;
	kri_parse(kri, &k);
	for (size_t i = 0; i < n; i++)
		out[i] = mps[i] ? lookup_parsed(mps[i], kri, &k) : NULL;
}

const struct cp_policy_to_rule *cp_policy_route_lookup(const struct cp_policy_matched *mp, struct km_str route)
{
	if (!mp->nto || route.len < 11 || memcmp(route.ptr, "kri_mhttpr_", 11) != 0)
		return NULL;
	for (size_t i = 0; i < mp->nto; i++)
		if (mp->to[i].kri_len == route.len && memcmp(mp->to[i].kri, route.ptr, route.len) == 0)
			return &mp->to[i];
	/* without the section name (which has '_' of its own, rule_<n>): up
	 * to and with the sixth '_' (kri_<short>_<mesh>_<zone>_<ns>_<name>_) */
	size_t nosection = 0;
	for (int seen = 0; nosection < route.len && seen < 6; nosection++)
		seen += route.ptr[nosection] == '_';
	for (size_t i = 0; nosection < route.len && i < mp->nto; i++)
		if (mp->to[i].kri_len == nosection && memcmp(mp->to[i].kri, route.ptr, nosection) == 0)
			return &mp->to[i];
	return NULL;
}

bool cp_policy_has_route_rules(const struct cp_policy_matched *mp)
{
	for (size_t i = 0; i < mp->nto; i++)
		if (strcmp(mp->to[i].rtype, "MeshHTTPRoute") == 0)
			return true;
	return false;
}

bool cp_policy_route_origin(const struct cp_policy_to_rule *r, const struct km_json *matches,
			    struct cp_policy_origin *out)
{
	bool found = false;
	for (size_t i = 0; i < r->norigins; i++) {
		const struct km_json *to = km_json_get(r->origins[i].policy->spec, "to");
		if (!to || to->kind != KM_JSON_ARRAY || (size_t)r->origins[i].rule_index >= to->len)
			continue;
		const struct km_json *rules = km_json_get(to->items[r->origins[i].rule_index], "rules");
		for (size_t k = 0; rules && rules->kind == KM_JSON_ARRAY && k < rules->len; k++) {
			const struct km_json *m = km_json_get(rules->items[k], "matches");
			if (km_json_equal(m, matches) || (!m && matches && matches->kind == KM_JSON_NULL)) {
				*out = r->origins[i];
				found = true;
			}
		}
	}
	return found;
}
