/* SPDX-License-Identifier: Apache-2.0 */
/* Policy inspection: a Dataplane's `_rules`, its proxy-wide `_policies`,
 * the policies of one inbound / outbound / route, and the Dataplanes a policy
 * selects (`_resources/dataplanes` and the legacy `dataplanes`). Answers are
 * computed from a mesh context built for the request and freed with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/jsonf.h"
#include "cp/api/api.h"
#include "cp/policy/policy.h"

/* ---- shared steps ---- */

static bool mesh_exists(struct cp_api_ctx *c, struct km_str mesh)
{
	struct km_resource m;
	int rc = cp_store_get(c->rt->store, c->req->a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""),
			      mesh, &m);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
		return false;
	}
	return true;
}

/* The mesh context and <name>'s entry in it, or NULL after writing the error. */
static struct cp_xds_mesh *load_dataplane(struct cp_api_ctx *c, struct km_str mesh,
					  struct km_str name, const struct cp_xds_dataplane **dp)
{
	if (!mesh_exists(c, mesh))
		return NULL;
	struct km_resource r;
	int rc = cp_store_get(c->rt->store, c->req->a, km_rtype_by_name(KM_STR("Dataplane")), mesh,
			      name, &r);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve Dataplane");
		return NULL;
	}
	struct cp_xds_mesh *m = cp_xds_mesh_build(c->rt, mesh, NULL);
	*dp = m ? cp_xds_mesh_dataplane(m, name) : NULL;
	if (!*dp) {
		cp_xds_mesh_free(m);
		cp_api_write_error(c->req, 404, "Could not retrieve Dataplane", "Not found", NULL);
		return NULL;
	}
	return m;
}

static struct km_json *meta(struct km_arena *a, const char *type, struct km_str mesh,
			    struct km_str name, const struct km_json *labels)
{
	return km_json_fmt(a, "{\"labels\":%J,\"mesh\":%S,\"name\":%S,\"type\":%s}",
			   labels ? km_json_clone(a, labels) : km_json_object(a), &mesh, &name,
			   type);
}

static struct km_json *policy_meta(struct km_arena *a, const struct cp_policy *p)
{
	return meta(a, p->type->name, p->mesh, p->name, p->labels);
}

static struct km_json *kri_origin(struct km_arena *a, const struct cp_policy *p)
{
	return km_json_fmt(a, "{\"kri\":%s}", p->kri);
}

/* Upstream's kri.FromString checks; on success <out> is the canonical KRI
 * (section parts joined) and <section> its section name. */
static bool parse_kri(struct cp_api_ctx *c, struct km_str s, const char **out,
		      struct km_str *section)
{
	struct km_arena *a = c->req->a;
	struct km_str parts[64];
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= s.len && n < 64; i++)
		if (i == s.len || s.ptr[i] == '_') {
			parts[n++] = (struct km_str){s.ptr + start, i - start};
			start = i + 1;
		}
	const char *err = NULL;
	if (n < 7)
		err = km_arena_printf(a, "invalid identifier string: \"%.*s\"", KM_STR_FMT(s));
	else if (!km_str_eqc(parts[0], "kri"))
		err = km_arena_printf(a, "identifier must start with 'kri': \"%.*s\"",
				      KM_STR_FMT(s));
	else if (!parts[1].len || !km_rtype_by_short(parts[1]))
		err = km_arena_printf(a, "unknown short name of resource type: \"%.*s\"",
				      KM_STR_FMT(parts[1]));
	if (err) {
		cp_api_write_error(c->req, 400, "Bad Request",
				   km_arena_printf(a, "bad request: %s", err), NULL);
		return false;
	}
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < 6; i++) {
		km_buf_puts(&b, km_arena_strndup(a, parts[i].ptr, parts[i].len));
		km_buf_putc(&b, '_');
	}
	size_t sec_at = b.len;
	for (size_t i = 6; i < n; i++)
		km_buf_puts(&b, km_arena_strndup(a, parts[i].ptr, parts[i].len));
	char *k = km_arena_strndup(a, b.data, b.len);
	km_buf_fini(&b);
	*out = k;
	*section = (struct km_str){k + sec_at, strlen(k + sec_at)};
	return true;
}

/* ---- GET .../dataplanes/{name}/_rules ---- */

static struct km_json *origins_json(struct km_arena *a, const struct cp_policy_origin *o, size_t n)
{
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < n; i++)
		km_json_array_push(a, arr,
				   km_json_fmt(a, "{\"resourceMeta\":%J,\"ruleIndex\":%d}",
					       policy_meta(a, o[i].policy), o[i].rule_index));
	return arr;
}

static struct km_str inbound_name_for_port(const struct cp_xds_dataplane *dp, uint32_t port)
{
	struct km_json *inb = km_json_get(km_json_get(dp->spec, "networking"), "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++)
		if (km_json_i64_sat(km_json_get(inb->items[i], "port")) == (int64_t)port)
			return km_json_get_string(inb->items[i], "name");
	return KM_STR("");
}

static int cmp_inbound_port(const void *x, const void *y)
{
	const struct cp_policy_inbound *a = *(const struct cp_policy_inbound *const *)x;
	const struct cp_policy_inbound *b = *(const struct cp_policy_inbound *const *)y;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	return a < b ? -1 : a > b;
}

static struct km_json *rules_entry(struct km_arena *a, const struct cp_xds_dataplane *dp,
				   const struct cp_policy_matched *mp)
{
	struct km_json *inbound_rules = km_json_array(a);
	const struct cp_policy_inbound **sorted =
		km_arena_alloc(a, (mp->ninbounds + 1) * sizeof(*sorted));
	for (size_t i = 0; i < mp->ninbounds; i++)
		sorted[i] = &mp->inbounds[i];
	qsort(sorted, mp->ninbounds, sizeof(*sorted), cmp_inbound_port);
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = sorted[i];
		struct km_json *inbound = km_json_fmt(a, "{\"port\":%u,\"tags\":null}", in->port);
		struct km_str name = inbound_name_for_port(dp, in->port);
		if (name.len)
			km_json_set(a, inbound, "name", km_json_string(a, name));
		struct km_json *rules = km_json_array(a);
		for (size_t r = 0; r < in->nrules; r++) {
			const struct cp_policy_rule *rule = &in->rules[r];
			struct km_json *o = km_json_fmt(a, "{\"conf\":[%J],\"origin\":%J}",
							km_json_clone(a, rule->conf),
							origins_json(a, &rule->origin, 1));
			if (rule->match)
				km_json_set(a, o, "match", km_json_clone(a, rule->match));
			km_json_array_push(a, rules, o);
		}
		km_json_array_push(a, inbound_rules,
				   km_json_fmt(a, "{\"inbound\":%J,\"rules\":%J}", inbound, rules));
	}
	struct km_json *to = km_json_array(a);
	for (size_t i = 0; i < mp->nto; i++) {
		const struct cp_policy_to_rule *r = &mp->to[i];
		km_json_array_push(
			a, to,
			km_json_fmt(
				a,
				"{\"conf\":[%J],\"origin\":%J,\"resourceMeta\":%J,\"resourceSectionName\":%S}",
				km_json_clone(a, r->conf), origins_json(a, r->origins, r->norigins),
				meta(a, r->rtype, r->rmesh, r->rname, r->rlabels), &r->section));
	}
	struct km_json *e = km_json_fmt(
		a, "{\"inboundRules\":%J,\"toResourceRules\":%J,\"type\":%s,\"warnings\":%J}",
		inbound_rules, to, mp->type->name, mp->warnings);
	if (mp->proxy_conf) {
		struct km_json *origin = km_json_array(a);
		for (size_t i = 0; i < mp->nproxy_origins; i++)
			km_json_array_push(a, origin, policy_meta(a, mp->proxy_origins[i]));
		km_json_set(a, e, "proxyRule",
			    km_json_fmt(a, "{\"conf\":%J,\"origin\":%J}",
					km_json_clone(a, mp->proxy_conf), origin));
	}
	return e;
}

/* Runs <fn> over the matched policies of every plugin type, in plugin order. */
static void each_type(struct km_arena *a, const struct cp_xds_mesh *m,
		      const struct cp_xds_dataplane *dp,
		      void (*fn)(void *ctx, const struct cp_policy_matched *mp), void *ctx)
{
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		const struct km_rtype *t = km_rtype_by_name(km_str_c(cp_policy_plugins[i].type));
		if (!t)
			continue;
		struct cp_policy_matched mp;
		cp_policy_match(a, m, dp, t, false, &mp);
		fn(ctx, &mp);
	}
}

struct collect {
	struct km_arena *a;
	const struct cp_xds_dataplane *dp;
	struct km_json *out;
	const char *kri, *route_kri;
	const struct cp_policy_inbound *want; /* inbound key: address + port */
};

static void collect_rules(void *ctx, const struct cp_policy_matched *mp)
{
	struct collect *c = ctx;
	if (!mp->nto && !mp->ninbounds && !mp->proxy_conf && !mp->warnings->len)
		return;
	km_json_array_push(c->a, c->out, rules_entry(c->a, c->dp, mp));
}

void cp_api_dataplane_rules(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_mesh *m = load_dataplane(c, mesh, name, &dp);
	if (!m)
		return;
	struct collect col = {.a = a, .dp = dp, .out = km_json_array(a)};
	each_type(a, m, dp, collect_rules, &col);
	struct km_json *out =
		km_json_fmt(a, "{\"httpMatches\":[],\"resource\":%J,\"rules\":%J}",
			    meta(a, "Dataplane", dp->res.mesh, dp->res.name, dp->labels), col.out);
	cp_api_write_json(c->req, 200, out);
	cp_xds_mesh_free(m);
}

/* ---- GET .../dataplanes/{name}/_policies ---- */

static void collect_proxy(void *ctx, const struct cp_policy_matched *mp)
{
	struct collect *c = ctx;
	if (!mp->proxy_conf)
		return;
	struct km_json *origins = km_json_array(c->a);
	for (size_t i = 0; i < mp->nproxy_origins; i++)
		km_json_array_push(c->a, origins, kri_origin(c->a, mp->proxy_origins[i]));
	km_json_array_push(c->a, c->out,
			   km_json_fmt(c->a, "{\"conf\":%J,\"kind\":%s,\"origins\":%J}",
				       km_json_clone(c->a, mp->proxy_conf), mp->type->name,
				       origins));
}

void cp_api_dataplane_policies(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_mesh *m = load_dataplane(c, mesh, name, &dp);
	if (!m)
		return;
	struct collect col = {.a = a, .dp = dp, .out = km_json_array(a)};
	each_type(a, m, dp, collect_proxy, &col);
	cp_api_write_json(c->req, 200, km_json_fmt(a, "{\"policies\":%J}", col.out));
	cp_xds_mesh_free(m);
}

/* ---- GET .../_inbounds/{kri}/_policies ---- */

static void collect_inbound(void *ctx, const struct cp_policy_matched *mp)
{
	struct collect *c = ctx;
	const struct cp_policy_inbound *in = NULL;
	for (size_t i = 0; i < mp->ninbounds && !in; i++)
		if (mp->inbounds[i].port == c->want->port &&
		    km_str_eq(mp->inbounds[i].address, c->want->address))
			in = &mp->inbounds[i];
	if (!in || !in->nrules)
		return;
	struct km_json *rules = km_json_array(c->a), *origins = km_json_array(c->a);
	for (size_t r = 0; r < in->nrules; r++) {
		const struct cp_policy *p = in->rules[r].origin.policy;
		km_json_array_push(c->a, rules,
				   km_json_fmt(c->a, "{\"conf\":%J,\"kri\":%s}",
					       km_json_clone(c->a, in->rules[r].conf), p->kri));
		bool seen = false;
		for (size_t k = 0; k < r && !seen; k++)
			seen = in->rules[k].origin.policy == p;
		if (!seen)
			km_json_array_push(c->a, origins, kri_origin(c->a, p));
	}
	km_json_array_push(c->a, c->out,
			   km_json_fmt(c->a, "{\"kind\":%s,\"origins\":%J,\"rules\":%J}",
				       mp->type->name, origins, rules));
}

/* The inbound (then listener) of <dp> whose section name is <section>. */
static bool find_inbound(const struct cp_xds_dataplane *dp, struct km_str section,
			 struct cp_policy_inbound *out)
{
	struct km_json *net = km_json_get(dp->spec, "networking");
	const char *lists[2] = {"inbound", "listeners"};
	for (int l = 0; l < 2; l++) {
		struct km_json *arr = km_json_get(net, lists[l]);
		for (size_t i = 0; arr && arr->kind == KM_JSON_ARRAY && i < arr->len; i++) {
			struct km_json *in = arr->items[i];
			int64_t port = km_json_i64_sat(km_json_get(in, "port"));
			struct km_str name = km_json_get_string(in, "name");
			char buf[24];
			snprintf(buf, sizeof(buf), "%lld", (long long)port);
			if (name.len ? !km_str_eq(name, section) : !km_str_eqc(section, buf))
				continue;
			out->port = (uint32_t)port;
			out->address = km_json_get_string(in, "address");
			if (!out->address.len)
				out->address = km_json_get_string(net, "address");
			return true;
		}
	}
	return false;
}

void cp_api_dataplane_inbound_policies(struct cp_api_ctx *c, struct km_str mesh, struct km_str name,
				       struct km_str inbound_kri)
{
	struct km_arena *a = c->req->a;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_mesh *m = load_dataplane(c, mesh, name, &dp);
	if (!m)
		return;
	const char *kri;
	struct km_str section;
	struct cp_policy_inbound want = {0};
	if (!parse_kri(c, inbound_kri, &kri, &section)) {
		cp_xds_mesh_free(m);
		return;
	}
	if (!find_inbound(dp, section, &want)) {
		cp_api_write_error(c->req, 500, "Failed building response", "Internal Server Error",
				   NULL);
		cp_xds_mesh_free(m);
		return;
	}
	struct collect col = {.a = a, .dp = dp, .out = km_json_array(a), .want = &want};
	each_type(a, m, dp, collect_inbound, &col);
	cp_api_write_json(c->req, 200, km_json_fmt(a, "{\"policies\":%J}", col.out));
	cp_xds_mesh_free(m);
}

/* ---- GET .../_outbounds/{kri}/_policies and .../_routes/{kri}/_policies ---- */

static bool is_route_type(const struct cp_policy_matched *mp)
{
	return strcmp(mp->type->name, "MeshHTTPRoute") == 0 ||
	       strcmp(mp->type->name, "MeshTCPRoute") == 0;
}

static void collect_outbound(void *ctx, const struct cp_policy_matched *mp)
{
	struct collect *c = ctx;
	const struct cp_policy_to_rule *r = NULL;
	if (is_route_type(mp))
		return; /* routes are listed by .../_routes */
	if (c->route_kri)
		for (size_t i = 0; i < mp->nto && !r; i++)
			if (strcmp(mp->to[i].kri, c->route_kri) == 0)
				r = &mp->to[i];
	if (!r)
		r = cp_policy_to_lookup(mp, c->kri);
	if (!r)
		return;
	/* one origin per contributing to[] entry, as upstream lists them */
	struct km_json *origins = km_json_array(c->a);
	for (size_t i = 0; i < r->norigins; i++)
		km_json_array_push(c->a, origins, kri_origin(c->a, r->origins[i].policy));
	km_json_array_push(c->a, c->out,
			   km_json_fmt(c->a, "{\"conf\":[%J],\"kind\":%s,\"origins\":%J}",
				       km_json_clone(c->a, r->conf), mp->type->name, origins));
}

void cp_api_dataplane_outbound_policies(struct cp_api_ctx *c, struct km_str mesh,
					struct km_str name, struct km_str outbound_kri,
					const struct km_str *route_kri)
{
	struct km_arena *a = c->req->a;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_mesh *m = load_dataplane(c, mesh, name, &dp);
	if (!m)
		return;
	struct collect col = {.a = a, .dp = dp, .out = km_json_array(a)};
	struct km_str section;
	if (!parse_kri(c, outbound_kri, &col.kri, &section) ||
	    (route_kri && !parse_kri(c, *route_kri, &col.route_kri, &section))) {
		cp_xds_mesh_free(m);
		return;
	}
	each_type(a, m, dp, collect_outbound, &col);
	cp_api_write_json(c->req, 200, km_json_fmt(a, "{\"policies\":%J}", col.out));
	cp_xds_mesh_free(m);
}

/* ---- GET /meshes/{mesh}/{policies}/{name}/_resources/dataplanes ---- */

void cp_api_policy_dataplanes(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh,
			      struct km_str name, bool legacy)
{
	struct km_arena *a = c->req->a;
	if (!mesh_exists(c, mesh))
		return;
	size_t size = 100, offset = 0;
	const struct km_str *qs = cp_http_query(c->req, "size"),
			    *qo = cp_http_query(c->req, "offset");
	long long v;
	if (qs && qs->len) {
		if (km_str_to_i64(*qs, &v) || v < 1 || v > 1000) {
			cp_api_write_error(c->req, 400, "Could not retrieve policy",
					   "Invalid page size", NULL);
			return;
		}
		size = (size_t)v;
	}
	if (qo && qo->len) {
		if (km_str_to_i64(*qo, &v) || v < 0) {
			cp_api_write_error(c->req, 400, "Could not retrieve policy",
					   "Invalid offset", NULL);
			return;
		}
		offset = (size_t)v;
	}
	struct km_resource pr;
	int rc = cp_store_get(c->rt->store, a, t, mesh, name, &pr);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve policy");
		return;
	}
	struct cp_xds_mesh *m = cp_xds_mesh_build(c->rt, mesh, NULL);
	if (!m) {
		cp_api_write_error(c->req, 404, "Failed to retrieve Mesh", "Not found", NULL);
		return;
	}
	struct cp_policy p;
	cp_policy_parse(a, &pr, &p);
	const struct km_str *qn = cp_http_query(c->req, "name");
	struct km_json *items = km_json_array(a);
	size_t total = 0;
	for (size_t i = 0; i < m->ndataplanes; i++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[i];
		if (qn && qn->len && km_str_find(dp->res.name, *qn) < 0)
			continue;
		if (!cp_policy_selects(&p, dp))
			continue;
		if (legacy && p.shadow)
			continue;
		total++;
		if (!legacy && (total <= offset || items->len >= size))
			continue;
		if (legacy)
			km_json_array_push(
				a, items,
				km_json_fmt(
					a,
					"{\"kind\":\"SidecarDataplane\",\"dataplane\":{\"mesh\":%S,\"name\":%S},"
					"\"attachments\":[{\"type\":\"dataplane\"}]}",
					&dp->res.mesh, &dp->res.name));
		else
			km_json_array_push(
				a, items,
				meta(a, "Dataplane", dp->res.mesh, dp->res.name, dp->labels));
	}
	struct km_json *out = km_json_fmt(a, "{\"total\":%u,\"items\":%J}", (unsigned)total, items);
	if (!legacy && offset + items->len < total)
		km_json_set(a, out, "next",
			    km_json_cstring(a, cp_api_next_link(c, offset + items->len)));
	cp_api_write_json(c->req, 200, out);
	cp_xds_mesh_free(m);
}

/* ---- GET .../_outbounds/{kri}/_routes ---- */

static void collect_routes(void *ctx, const struct cp_policy_matched *mp)
{
	struct collect *c = ctx;
	struct km_arena *a = c->a;
	if (!is_route_type(mp))
		return;
	const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, c->kri);
	if (!r)
		return;
	struct km_json *rules = km_json_array(a), *origins = km_json_array(a);
	if (strcmp(mp->type->name, "MeshHTTPRoute") == 0) {
		struct km_json *rs = km_json_get(r->conf, "rules");
		for (size_t i = 0; rs && rs->kind == KM_JSON_ARRAY && i < rs->len; i++) {
			struct km_json *matches = km_json_get(rs->items[i], "matches");
			struct cp_policy_origin origin;
			const struct cp_policy *o = cp_policy_route_origin(r, matches, &origin) ? origin.policy : NULL;
			struct km_json *d = km_json_get(rs->items[i], "default");
			km_json_array_push(a, rules,
					   km_json_fmt(a, "{\"conf\":%J,\"kri\":%s,\"matches\":%J}",
						       d ? km_json_clone(a, d) : km_json_object(a),
						       o ? o->kri : "",
						       matches ? km_json_clone(a, matches) : NULL));
		}
	} else {
		struct km_json *d = km_json_get(r->conf, "default");
		km_json_array_push(a, rules,
				   km_json_fmt(a, "{\"conf\":%J,\"kri\":\"\",\"matches\":null}",
					       d ? km_json_clone(a, d) : km_json_object(a)));
	}
	for (size_t i = 0; i < r->norigins; i++)
		km_json_array_push(a, origins, kri_origin(a, r->origins[i].policy));
	km_json_array_push(a, c->out,
			   km_json_fmt(a, "{\"kind\":%s,\"origins\":%J,\"rules\":%J}",
				       mp->type->name, origins, rules));
}

void cp_api_dataplane_routes(struct cp_api_ctx *c, struct km_str mesh, struct km_str name,
			     struct km_str outbound_kri)
{
	struct km_arena *a = c->req->a;
	const struct cp_xds_dataplane *dp;
	struct cp_xds_mesh *m = load_dataplane(c, mesh, name, &dp);
	if (!m)
		return;
	struct collect col = {.a = a, .dp = dp, .out = km_json_array(a)};
	struct km_str section;
	if (!parse_kri(c, outbound_kri, &col.kri, &section)) {
		cp_xds_mesh_free(m);
		return;
	}
	each_type(a, m, dp, collect_routes, &col);
	cp_api_write_json(c->req, 200, km_json_fmt(a, "{\"routes\":%J}", col.out));
	cp_xds_mesh_free(m);
}
