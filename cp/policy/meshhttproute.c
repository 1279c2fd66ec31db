/* SPDX-License-Identifier: Apache-2.0 */
/* MeshHTTPRoute: the routes of an HTTP outbound listener. The merged rules
 * of the destination (cp/policy/match.c: concatenated, equal matches
 * merged, highest priority first) become one Envoy route per match (two
 * for a path prefix: the exact path and the path with a separator), ordered
 * as the Gateway API orders matches (exact path, longest prefix, longest
 * regex, then method, more headers, more query parameters), followed by
 * the generator's catch-all unless a rule matches everything. A route is
 * named after the rule's origin, kri_mhttpr_<...>_rule_<to index>, which
 * MeshTimeout and MeshRetry look their route confs up by. backendRefs to
 * MeshService ports split the traffic (weighted clusters; the clusters of
 * destinations only routes reach are generated as backend-only outbounds,
 * cp/xds/generate.c); refs that resolve to nothing answer 500 for their
 * share. Filters: request and response header modifiers, redirects, URL
 * rewrites and mirrors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

/* One destination of a route: a cluster and its weight. */
struct split {
	const char *cluster;
	int64_t weight;
};

/* One rule's match, before it becomes Envoy matches. */
struct route {
	const char *name;
	const struct km_json *match;   /* object; NULL: the generator's catch-all */
	const struct km_json *filters; /* array or NULL */
	struct split *splits;
	size_t nsplits;
	int64_t unresolved;  /* weight of backendRefs that resolve to nothing routable */
	bool all_unresolved; /* backendRefs given, none resolves */
	const char **mirrors; /* by filter index: the mirror's cluster, or NULL */
};

const struct cp_xds_port *cp_policy_backend_ref(const struct cp_xds_mesh *m, const struct km_json *ref,
					       const struct cp_xds_service **s)
{
	*s = NULL;
	if (!ref || ref->kind != KM_JSON_OBJECT || !km_str_eqc(km_json_get_string(ref, "kind"), "MeshService"))
		return NULL;
	const struct cp_xds_service *svc = NULL;
	struct km_str name = km_json_get_string(ref, "name");
	struct km_json *labels = km_json_get(ref, "labels");
	if (name.len) {
		svc = cp_xds_mesh_service(m, name);
	} else if (labels && labels->kind == KM_JSON_OBJECT && labels->len) {
		for (size_t k = 0; k < m->nservices && !svc; k++) {
			bool ok = true;
			for (size_t j = 0; ok && j < labels->len; j++) {
				struct km_json *v = km_json_get_str(m->services[k].labels, labels->members[j].key);
				ok = v && v->kind == KM_JSON_STRING && labels->members[j].val->kind == KM_JSON_STRING &&
				     km_str_eq(v->s, labels->members[j].val->s);
			}
			if (ok)
				svc = &m->services[k];
		}
	}
	if (!svc)
		return NULL;
	struct km_json *port = km_json_get(ref, "port");
	struct km_str section = km_json_get_string(ref, "sectionName");
	for (size_t i = 0; i < svc->nports; i++) {
		const struct cp_xds_port *p = &svc->ports[i];
		if (port ? p->port == (uint32_t)km_json_i64_sat(port)
			 : section.len ? km_str_eq(p->section, section) : svc->nports == 1) {
			*s = svc;
			return p;
		}
	}
	return NULL;
}

/* The cluster of <ref> when it is one HTTP traffic can go to, else NULL. */
static const char *ref_cluster(struct km_arena *a, const struct cp_xds_mesh *m, const struct km_json *ref,
			       struct cp_policy_backend *b)
{
	const struct cp_xds_service *s;
	const struct cp_xds_port *p = cp_policy_backend_ref(m, ref, &s);
	if (!p || !cp_xds_is_http(p->app_protocol))
		return NULL;
	const char *kri = cp_xds_service_kri(a, m, s, p);
	if (b)
		*b = (struct cp_policy_backend){s, p, kri};
	return kri;
}

static int64_t ref_weight(const struct km_json *ref)
{
	struct km_json *w = km_json_get(ref, "weight");
	return w ? km_json_i64_sat(w) : 1;
}

/* ---- ordering ---- */

static int path_rank(struct km_str type)
{
	return km_str_eqc(type, "Exact") ? 0 : km_str_eqc(type, "PathPrefix") ? 1 : 2;
}

static size_t len_of(const struct km_json *v)
{
	return v && v->kind == KM_JSON_ARRAY ? v->len : 0;
}

/* Upstream's CompareMatch (Gateway API precedence): < 0 when <a> goes first. */
static int compare_match(const struct km_json *a, const struct km_json *b)
{
	const struct km_json *pa = km_json_get(a, "path"), *pb = km_json_get(b, "path");
	if (pa && !pb)
		return -1;
	if (!pa && pb)
		return 1;
	if (pa && pb) {
		struct km_str ta = km_json_get_string(pa, "type"), tb = km_json_get_string(pb, "type");
		int ra = path_rank(ta), rb = path_rank(tb);
		if (ra != rb)
			return ra < rb ? -1 : 1;
		if (ra) { /* a longer prefix or regex is the more specific */
			size_t la = km_json_get_string(pa, "value").len, lb = km_json_get_string(pb, "value").len;
			if (la != lb)
				return la > lb ? -1 : 1;
		}
	}
	bool ma = km_json_get(a, "method") != NULL, mb = km_json_get(b, "method") != NULL;
	if (ma != mb)
		return ma ? -1 : 1;
	size_t ha = len_of(km_json_get(a, "headers")), hb = len_of(km_json_get(b, "headers"));
	if (ha != hb)
		return ha > hb ? -1 : 1;
	size_t qa = len_of(km_json_get(a, "queryParams")), qb = len_of(km_json_get(b, "queryParams"));
	if (qa != qb)
		return qa > qb ? -1 : 1;
	return 0;
}

/* {path: {type: PathPrefix, value: /}} and nothing else. */
static bool is_catch_all(const struct km_json *match)
{
	if (!match || match->kind != KM_JSON_OBJECT || match->len != 1)
		return false;
	const struct km_json *p = km_json_get(match, "path");
	return p && p->kind == KM_JSON_OBJECT && p->len == 2 && km_str_eqc(km_json_get_string(p, "type"), "PathPrefix") &&
	       km_str_eqc(km_json_get_string(p, "value"), "/");
}

/* ---- Envoy matches ---- */

static struct km_json *string_match(struct km_arena *a, const char *kind, struct km_str v)
{
	if (strcmp(kind, "safeRegex") == 0)
		return km_json_fmt(a, "{\"safeRegex\":{\"regex\":%S}}", &v);
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, kind, km_json_string(a, v));
	return o;
}

/* The method, query parameter and header matchers of <match> on <em>. */
static void add_matchers(struct km_arena *a, const struct km_json *match, struct km_json *em)
{
	struct km_json *headers = km_json_array(a);
	struct km_str method = km_json_get_string(match, "method");
	if (method.len)
		km_json_array_push(a, headers,
				   km_json_fmt(a, "{\"name\":\":method\",\"stringMatch\":%T}",
					       string_match(a, "exact", method)));
	const struct km_json *qps = km_json_get(match, "queryParams");
	struct km_json *qout = km_json_array(a);
	for (size_t i = 0; i < len_of(qps); i++) {
		struct km_str name = km_json_get_string(qps->items[i], "name");
		bool dup = false; /* the first matcher of a name counts */
		for (size_t k = 0; k < i && !dup; k++)
			dup = km_str_eq(km_json_get_string(qps->items[k], "name"), name);
		if (dup)
			continue;
		struct km_str v = km_json_get_string(qps->items[i], "value");
		bool re = km_str_eqc(km_json_get_string(qps->items[i], "type"), "RegularExpression");
		km_json_array_push(a, qout,
				   km_json_fmt(a, "{\"name\":%S,\"stringMatch\":%T}", &name,
					       string_match(a, re ? "safeRegex" : "exact", v)));
	}
	if (qout->len)
		km_json_set(a, em, "queryParameters", qout);
	const struct km_json *hs = km_json_get(match, "headers");
	for (size_t i = 0; i < len_of(hs); i++) {
		struct km_str name = km_json_get_string(hs->items[i], "name");
		struct km_str type = km_json_get_string(hs->items[i], "type");
		struct km_str v = km_json_get_string(hs->items[i], "value");
		struct km_json *h = km_json_fmt(a, "{\"name\":%S}", &name);
		if (km_str_eqc(type, "Present") || km_str_eqc(type, "Absent"))
			km_json_set(a, h, "presentMatch", km_json_bool(a, km_str_eqc(type, "Present")));
		else
			km_json_set(a, h, "stringMatch",
				    string_match(a,
						 km_str_eqc(type, "RegularExpression") ? "safeRegex" :
						 km_str_eqc(type, "Prefix")	     ? "prefix" :
											"exact",
						 v));
		km_json_array_push(a, headers, h);
	}
	if (headers->len)
		km_json_set(a, em, "headers", headers);
}

/* The Envoy matches of <match> into out[0..1]; *<prefix> says whether
 * they come from a path prefix (rewrites treat them apart). */
static size_t envoy_matches(struct km_arena *a, const struct km_json *match, struct km_json **out, bool *prefix)
{
	const struct km_json *path = km_json_get(match, "path");
	struct km_str type = path ? km_json_get_string(path, "type") : KM_STR("PathPrefix");
	struct km_str v = path ? km_json_get_string(path, "value") : KM_STR("/");
	size_t n = 1;
	*prefix = km_str_eqc(type, "PathPrefix");
	if (km_str_eqc(type, "Exact")) {
		out[0] = km_json_fmt(a, "{\"path\":%S}", &v);
	} else if (km_str_eqc(type, "RegularExpression")) {
		out[0] = km_json_fmt(a, "{\"safeRegex\":{\"regex\":%S}}", &v);
	} else if (km_str_eqc(v, "/")) {
		out[0] = km_json_fmt(a, "{\"prefix\":\"/\"}");
	} else {
		/* path-separated prefix: /p and /p/ (not Envoy's
		 * path_separated_prefix, whose rewrite of /p/x to / gives //x) */
		struct km_str t = v;
		if (t.len && t.ptr[t.len - 1] == '/')
			t.len--;
		out[0] = km_json_fmt(a, "{\"path\":%S}", &t);
		out[1] = km_json_object(a);
		km_json_set(a, out[1], "prefix", km_json_cstring(a, km_arena_printf(a, "%.*s/", KM_STR_FMT(t))));
		n = 2;
	}
	for (size_t i = 0; i < n; i++)
		add_matchers(a, match, out[i]);
	return n;
}

/* ---- filters ---- */

static void header_mods(struct km_arena *a, const struct km_json *mod, struct km_json *route, const char *add_key,
			const char *remove_key)
{
	struct km_json *adds = km_json_get(route, add_key);
	if (!adds) {
		adds = km_json_array(a);
		km_json_set(a, route, add_key, adds);
	}
	static const char *const kinds[] = {"set", "add"};
	for (size_t k = 0; k < 2; k++) {
		const struct km_json *list = km_json_get(mod, kinds[k]);
		for (size_t i = 0; i < len_of(list); i++) {
			struct km_str name = km_json_get_string(list->items[i], "name");
			struct km_str value = km_json_get_string(list->items[i], "value");
			struct km_json *o = km_json_fmt(a, "{\"header\":{\"key\":%S,\"value\":%S}}", &name, &value);
			if (k == 0)
				km_json_set(a, o, "appendAction", km_json_cstring(a, "OVERWRITE_IF_EXISTS_OR_ADD"));
			km_json_array_push(a, adds, o);
		}
	}
	if (!adds->len)
		km_json_del(route, add_key);
	const struct km_json *rm = km_json_get(mod, "remove");
	if (!len_of(rm))
		return;
	struct km_json *removes = km_json_get(route, remove_key);
	if (!removes) {
		removes = km_json_array(a);
		km_json_set(a, route, remove_key, removes);
	}
	for (size_t i = 0; i < rm->len; i++)
		km_json_array_push(a, removes, km_json_clone(a, rm->items[i]));
}

static struct km_json *regex_rewrite(struct km_arena *a, struct km_str to)
{
	return km_json_fmt(a, "{\"pattern\":{\"regex\":\".*\"},\"substitution\":%S}", &to);
}

/* A path rewrite of <path> ({type, replaceFullPath | replacePrefixMatch})
 * into <obj> (a route action or a redirect) for Envoy match <em>. */
static void path_rewrite(struct km_arena *a, const struct km_json *path, bool prefix, const struct km_json *em,
			 struct km_json *obj)
{
	struct km_str type = km_json_get_string(path, "type");
	if (km_str_eqc(type, "ReplaceFullPath")) {
		km_json_set(a, obj, "regexRewrite", regex_rewrite(a, km_json_get_string(path, "replaceFullPath")));
	} else if (km_str_eqc(type, "ReplacePrefixMatch") && prefix) {
		struct km_str to = km_json_get_string(path, "replacePrefixMatch");
		if (km_json_get(em, "path")) /* the exact /prefix of a prefix */
			km_json_set(a, obj, "regexRewrite", regex_rewrite(a, to));
		else if (km_json_get(em, "prefix"))
			km_json_set(a, obj, "prefixRewrite", km_json_string(a, to));
	}
}

/* What a redirect or URL rewrite <src> says of the host (into <obj>'s
 * <host_key>) and of the path. */
static void host_and_path(struct km_arena *a, const struct km_json *src, const char *host_key, bool prefix,
			  const struct km_json *em, struct km_json *obj)
{
	struct km_str host = km_json_get_string(src, "hostname");
	if (host.len)
		km_json_set(a, obj, host_key, km_json_string(a, host));
	const struct km_json *path = km_json_get(src, "path");
	if (path)
		path_rewrite(a, path, prefix, em, obj);
}

static struct km_json *redirect(struct km_arena *a, const struct km_json *rr, bool prefix, const struct km_json *em)
{
	struct km_json *o = km_json_object(a);
	host_and_path(a, rr, "hostRedirect", prefix, em, o);
	struct km_json *port = km_json_get(rr, "port");
	if (port)
		km_json_set(a, o, "portRedirect", km_json_int(a, km_json_i64_sat(port)));
	struct km_str scheme = km_json_get_string(rr, "scheme");
	if (scheme.len)
		km_json_set(a, o, "schemeRedirect", km_json_string(a, scheme));
	int64_t code = km_json_i64_sat(km_json_get(rr, "statusCode"));
	const char *rc = code == 303 ? "SEE_OTHER" : code == 307 ? "TEMPORARY_REDIRECT" : code == 308 ? "PERMANENT_REDIRECT"
		       : code == 301 ? NULL /* MOVED_PERMANENTLY, the enum's zero */ : "FOUND";
	if (rc)
		km_json_set(a, o, "responseCode", km_json_cstring(a, rc));
	return o;
}

/* <num>/<den> as a FractionalPercent, as upstream writes it. */
static struct km_json *fraction(struct km_arena *a, uint64_t num, uint64_t den)
{
	static const struct {
		uint64_t scale;
		const char *name;
	} dens[] = {{100, NULL}, {10000, "TEN_THOUSAND"}, {1000000, "MILLION"}};
	for (size_t i = 0; i < 3; i++)
		if ((num * dens[i].scale) % den == 0) {
			struct km_json *o = km_json_fmt(a, "{\"numerator\":%u}", (unsigned)(num * dens[i].scale / den));
			if (dens[i].name)
				km_json_set(a, o, "denominator", km_json_cstring(a, dens[i].name));
			return o;
		}
	double pct = round((double)num * 100.0 / (double)den * 10000.0) / 10000.0;
	return km_json_fmt(a, "{\"numerator\":%u,\"denominator\":\"MILLION\"}", (unsigned)llround(pct * 10000.0));
}

/* ---- routes ---- */

/* The route action to <r>'s splits, from the generator's (<tmpl>: its
 * timeouts) with the cluster replaced. */
static struct km_json *action(struct km_arena *a, const struct route *r, const struct km_json *tmpl)
{
	struct km_json *act = tmpl ? km_json_clone(a, tmpl) : km_json_object(a);
	km_json_del(act, "cluster");
	if (r->nsplits == 1) {
		km_json_set(a, act, "cluster", km_json_cstring(a, r->splits[0].cluster));
	} else {
		struct km_json *cl = km_json_array(a);
		for (size_t i = 0; i < r->nsplits; i++)
			km_json_array_push(a, cl,
					   km_json_fmt(a, "{\"name\":%s,\"weight\":%D}", r->splits[i].cluster,
						       r->splits[i].weight));
		km_json_set(a, act, "weightedClusters", km_json_fmt(a, "{\"clusters\":%T}", cl));
	}
	return act;
}

static bool has_redirect(const struct route *r)
{
	for (size_t i = 0; i < len_of(r->filters); i++)
		if (km_str_eqc(km_json_get_string(r->filters->items[i], "type"), "RequestRedirect"))
			return true;
	return false;
}

/* One Envoy route of <r> for Envoy match <em>: to its splits, or a 500
 * (<direct>). */
static struct km_json *envoy_route(struct km_arena *a, const struct route *r, struct km_json *em, bool prefix,
				   bool direct, const struct km_json *tmpl)
{
	struct km_json *route = km_json_fmt(a, "{\"match\":%T,\"name\":%s}", em, r->name);
	struct km_json *act = NULL;
	if (direct)
		km_json_set(a, route, "directResponse",
			    km_json_fmt(a, "{\"status\":500,\"body\":{\"inlineString\":\"\"}}"));
	else
		km_json_set(a, route, "route", act = action(a, r, tmpl));
	for (size_t i = 0; i < len_of(r->filters); i++) {
		const struct km_json *f = r->filters->items[i];
		struct km_str type = km_json_get_string(f, "type");
		if (km_str_eqc(type, "RequestHeaderModifier")) {
			header_mods(a, km_json_get(f, "requestHeaderModifier"), route, "requestHeadersToAdd",
				    "requestHeadersToRemove");
		} else if (km_str_eqc(type, "ResponseHeaderModifier")) {
			header_mods(a, km_json_get(f, "responseHeaderModifier"), route, "responseHeadersToAdd",
				    "responseHeadersToRemove");
		} else if (km_str_eqc(type, "RequestRedirect")) {
			km_json_del(route, "route");
			km_json_del(route, "directResponse");
			act = NULL;
			km_json_set(a, route, "redirect", redirect(a, km_json_get(f, "requestRedirect"), prefix, em));
		} else if (km_str_eqc(type, "URLRewrite") && act) {
			host_and_path(a, km_json_get(f, "urlRewrite"), "hostRewriteLiteral", prefix, em, act);
		} else if (km_str_eqc(type, "RequestMirror") && act && r->mirrors[i]) {
			struct km_json *mps = km_json_get(act, "requestMirrorPolicies");
			if (!mps) {
				mps = km_json_array(a);
				km_json_set(a, act, "requestMirrorPolicies", mps);
			}
			struct km_json *mp = km_json_fmt(a, "{\"cluster\":%s}", r->mirrors[i]);
			struct km_json *fr = cp_policy_percentage(a, km_json_get(km_json_get(f, "requestMirror"), "percentage"));
			if (fr)
				km_json_set(a, mp, "runtimeFraction", km_json_fmt(a, "{\"defaultValue\":%T}", fr));
			km_json_array_push(a, mps, mp);
		}
	}
	return route;
}

/* The routes of destination <kri> from merged rule <r>, sorted, into
 * <*out>; returns how many (the catch-all not counted: <*catch_all> says
 * whether a rule has one). */
static size_t plan(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_policy_to_rule *r,
		   const char *kri, struct route **out, bool *catch_all)
{
	const struct km_json *rules = km_json_get(r->conf, "rules");
	size_t total = 0;
	for (size_t i = 0; i < len_of(rules); i++)
		total += len_of(km_json_get(rules->items[i], "matches"));
	struct route *rs = km_arena_alloc(a, (total + 1) * sizeof(*rs));
	size_t n = 0;
	*catch_all = false;
	for (size_t i = 0; i < len_of(rules); i++) {
		const struct km_json *rule = rules->items[i];
		const struct km_json *matches = km_json_get(rule, "matches");
		const struct km_json *dflt = km_json_get(rule, "default");
		const struct km_json *filters = km_json_get(dflt, "filters");
		const struct km_json *refs = km_json_get(dflt, "backendRefs");
		struct cp_policy_origin o;
		const char *name = cp_policy_route_origin(r, matches, &o) && o.policy->kri
					   ? km_arena_printf(a, "%srule_%d", o.policy->kri, o.rule_index)
					   : cp_xds_catch_all_route_name();
		struct split *splits = km_arena_alloc(a, (len_of(refs) + 1) * sizeof(*splits));
		size_t ns = 0;
		int64_t unresolved = 0;
		for (size_t k = 0; k < len_of(refs); k++) {
			int64_t w = ref_weight(refs->items[k]);
			const char *cl = ref_cluster(a, m, refs->items[k], NULL);
			if (cl && w > 0)
				splits[ns++] = (struct split){cl, w};
			else if (!cl)
				unresolved += w;
		}
		bool all_unresolved = len_of(refs) && !ns;
		if (!ns && !all_unresolved)
			splits[ns++] = (struct split){kri, 1};
		const char **mirrors = km_arena_alloc(a, (len_of(filters) + 1) * sizeof(*mirrors));
		for (size_t k = 0; k < len_of(filters); k++) {
			const struct km_json *f = filters->items[k];
			mirrors[k] = km_str_eqc(km_json_get_string(f, "type"), "RequestMirror")
					     ? ref_cluster(a, m, km_json_get(km_json_get(f, "requestMirror"), "backendRef"),
							   NULL)
					     : NULL;
		}
		for (size_t k = 0; k < len_of(matches); k++) {
			rs[n++] = (struct route){name, matches->items[k], filters, splits, ns, unresolved, all_unresolved,
						 mirrors};
			*catch_all |= is_catch_all(matches->items[k]);
		}
	}
	/* stable: equal matches keep the rules' order */
	for (size_t i = 1; i < n; i++) {
		struct route x = rs[i];
		size_t j = i;
		while (j && compare_match(rs[j - 1].match, x.match) > 0) {
			rs[j] = rs[j - 1];
			j--;
		}
		rs[j] = x;
	}
	*out = rs;
	return n;
}

/* The virtual host of the HTTP connection manager of outbound listener
 * <l>, or NULL (a TCP outbound). */
static struct km_json *vhost_of(struct km_json *l)
{
	struct km_json *chains = km_json_get(l, "filterChains");
	for (size_t i = 0; i < len_of(chains); i++) {
		struct km_json *filters = km_json_get(chains->items[i], "filters");
		for (size_t f = 0; f < len_of(filters); f++) {
			if (!km_str_eqc(km_json_get_string(filters->items[f], "name"),
					"envoy.filters.network.http_connection_manager"))
				continue;
			struct km_json *vhs = km_json_get(
			    km_json_get(km_json_get(filters->items[f], "typedConfig"), "routeConfig"), "virtualHosts");
			if (len_of(vhs))
				return vhs->items[0];
		}
	}
	return NULL;
}

void cp_policy_meshhttproute_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *l;
	size_t i = 0;
	for (const char *kri; mp->nto && (kri = cp_policy_next_outbound(c, &i, &l));) {
		const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, kri);
		if (!r || !len_of(km_json_get(r->conf, "rules")))
			continue;
		struct km_json *vh = vhost_of(l);
		struct km_json *old = km_json_get(vh, "routes");
		if (!old || old->kind != KM_JSON_ARRAY || old->len != 1)
			continue;
		struct km_json *dflt = old->items[0];
		const struct km_json *tmpl = km_json_get(dflt, "route");
		struct route *rs;
		bool catch_all;
		size_t n = plan(a, c->m, r, kri, &rs, &catch_all);
		struct km_json *routes = km_json_array(a);
		km_json_set(a, vh, "routes", routes);
		for (size_t k = 0; k < n; k++) {
			struct km_json *ems[2];
			bool prefix;
			size_t ne = envoy_matches(a, rs[k].match, ems, &prefix);
			bool direct_ok = !has_redirect(&rs[k]);
			for (size_t e = 0; e < ne; e++) {
				if (rs[k].all_unresolved && direct_ok) {
					km_json_array_push(a, routes, envoy_route(a, &rs[k], ems[e], prefix, true, tmpl));
					continue;
				}
				if (rs[k].unresolved > 0 && direct_ok) {
					uint64_t tot = (uint64_t)rs[k].unresolved;
					for (size_t s = 0; s < rs[k].nsplits; s++)
						tot += (uint64_t)rs[k].splits[s].weight;
					struct km_json *um = km_json_clone(a, ems[e]);
					km_json_set(a, um, "runtimeFraction",
						    km_json_fmt(a, "{\"defaultValue\":%T}",
								fraction(a, (uint64_t)rs[k].unresolved, tot)));
					km_json_array_push(a, routes, envoy_route(a, &rs[k], um, prefix, true, tmpl));
				}
				km_json_array_push(a, routes, envoy_route(a, &rs[k], ems[e], prefix, false, tmpl));
			}
		}
		if (!catch_all)
			km_json_array_push(a, routes, dflt);
	}
}

const struct km_json *cp_policy_meshhttproute_outbound_conf(struct cp_policy_apply_ctx *c,
							    const struct cp_policy_matched *mp, const char *kri)
{
	const struct cp_policy_to_rule *r = mp->nto ? cp_policy_to_lookup(mp, kri) : NULL;
	const struct km_json *rules = r ? km_json_get(r->conf, "rules") : NULL;
	if (!len_of(rules))
		return NULL;
	struct km_arena *a = c->a;
	struct route *rs;
	bool catch_all;
	size_t n = plan(a, c->m, r, kri, &rs, &catch_all);
	/* the rules, then per route its name and where it goes */
	struct km_json *out = km_json_fmt(a, "{\"rules\":%J,\"routes\":[]}", rules);
	struct km_json *list = km_json_get(out, "routes");
	for (size_t k = 0; k < n; k++) {
		struct km_json *to = km_json_array(a);
		for (size_t s = 0; s < rs[k].nsplits; s++)
			km_json_array_push(a, to, km_json_cstring(a, rs[k].splits[s].cluster));
		for (size_t f = 0; f < len_of(rs[k].filters); f++)
			km_json_array_push(a, to, km_json_cstring(a, rs[k].mirrors[f] ? rs[k].mirrors[f] : ""));
		km_json_array_push(a, list, km_json_fmt(a, "{\"n\":%s,\"u\":%D,\"to\":%T}", rs[k].name, rs[k].unresolved, to));
	}
	return out;
}

size_t cp_policy_route_backends(struct cp_policy_prepared *pp, const char *kri, struct cp_policy_backend **out)
{
	*out = NULL;
	const struct cp_policy_matched *mp = NULL;
	bool tcp_routes = false;
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		if (cp_policy_plugins[i].apply == cp_policy_meshhttproute_apply && pp->run[i])
			mp = &pp->mp[i];
		if (cp_policy_plugins[i].apply == cp_policy_meshtcproute_apply && pp->run[i])
			tcp_routes = pp->mp[i].nto > 0;
	}
	const struct cp_policy_to_rule *r = mp && mp->nto ? cp_policy_to_lookup(mp, kri) : NULL;
	const struct km_json *rules = r ? km_json_get(r->conf, "rules") : NULL;
	if (!len_of(rules) && !tcp_routes)
		return 0; /* most proxies: no route of either kind */
	struct km_arena *a = pp->c.a;
	size_t cap = 0;
	for (size_t i = 0; i < len_of(rules); i++) {
		const struct km_json *d = km_json_get(rules->items[i], "default");
		cap += len_of(km_json_get(d, "backendRefs")) + len_of(km_json_get(d, "filters"));
	}
	const struct km_json *tcp =
		tcp_routes ? cp_policy_tcp_route_refs(
				     &pp->c, kri, cp_xds_is_http(cp_policy_outbound_protocol(a, pp->c.m, km_str_c(kri))))
			   : NULL;
	cap += len_of(tcp);
	struct cp_policy_backend *bs = km_arena_alloc(a, (cap + 1) * sizeof(*bs));
	size_t n = 0;
	for (size_t k = 0; k < len_of(tcp); k++) { /* a TCP route: any protocol */
		const struct cp_xds_service *s;
		const struct cp_xds_port *p = cp_policy_backend_ref(pp->c.m, tcp->items[k], &s);
		if (p && ref_weight(tcp->items[k]) > 0) {
			bs[n] = (struct cp_policy_backend){s, p, cp_xds_service_kri(a, pp->c.m, s, p)};
			n += strcmp(bs[n].kri, kri) != 0;
		}
	}
	for (size_t i = 0; i < len_of(rules); i++) {
		const struct km_json *d = km_json_get(rules->items[i], "default");
		const struct km_json *refs = km_json_get(d, "backendRefs");
		for (size_t k = 0; k < len_of(refs); k++)
			if (ref_weight(refs->items[k]) > 0 && ref_cluster(a, pp->c.m, refs->items[k], &bs[n]) &&
			    strcmp(bs[n].kri, kri) != 0)
				n++;
		const struct km_json *filters = km_json_get(d, "filters");
		for (size_t k = 0; k < len_of(filters); k++) {
			const struct km_json *f = filters->items[k];
			if (km_str_eqc(km_json_get_string(f, "type"), "RequestMirror") &&
			    ref_cluster(a, pp->c.m, km_json_get(km_json_get(f, "requestMirror"), "backendRef"), &bs[n]) &&
			    strcmp(bs[n].kri, kri) != 0)
				n++;
		}
	}
	*out = bs;
	return n;
}
