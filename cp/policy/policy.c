/* SPDX-License-Identifier: Apache-2.0 */
/* Policy parsing, the JSON merge of confs, the static plugin table and the
 * hook the xDS generator calls. Parsed policies live in the mesh context's
 * arena; merge and apply results live in the caller's arena. */
#include "codec/jsonf.h"
#include "cp/policy/policy.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "base/ptab.h"
#include "pb/shape.h"
#include "resource/validate.h"

/* Upstream's plugins in +kuma:policy:order order. */
enum { MAX_PLUGINS = 32 };
#define CL (1u << CP_XDS_CLUSTER)
#define LI (1u << CP_XDS_LISTENER)
#define EN (1u << CP_XDS_ENDPOINT)
const struct cp_policy_plugin cp_policy_plugins[] = {
	{"MeshHTTPRoute", 100, false, cp_policy_meshhttproute_apply, false, cp_policy_meshhttproute_outbound_conf, LI,
	 NULL, NULL},
	{"MeshTCPRoute", 200, false, cp_policy_meshtcproute_apply, false, cp_policy_meshtcproute_outbound_conf, LI, NULL,
	 NULL},
	{"MeshTLS", 300, false, cp_policy_meshtls_apply, false, cp_policy_meshtls_outbound_conf, CL, NULL, NULL},
	{"MeshLoadBalancingStrategy", 400, false, cp_policy_meshloadbalancingstrategy_apply, false, cp_policy_to_conf,
	 CL | EN | LI, NULL, cp_policy_meshloadbalancingstrategy_key},
	{"MeshPassthrough", 500, true, NULL, false, NULL, 0, NULL, NULL},
	{"MeshAccessLog", 600, false, cp_policy_meshaccesslog_apply, false, cp_policy_to_conf, LI, NULL,
	 cp_policy_meshaccesslog_key},
	{"MeshTrace", 700, true, cp_policy_meshtrace_apply, false, cp_policy_meshtrace_outbound_conf, LI, NULL, NULL},
	{"MeshFaultInjection", 800, false, cp_policy_meshfaultinjection_apply, false, cp_policy_no_outbound_conf, 0,
	 NULL, NULL},
	{"MeshRateLimit", 900, false, cp_policy_meshratelimit_apply, false, cp_policy_no_outbound_conf, 0, NULL, NULL},
	{"MeshTimeout", 1000, false, cp_policy_meshtimeout_apply, false, cp_policy_to_conf, CL | LI,
	 cp_policy_meshtimeout_conf_vars, NULL},
	{"MeshTrafficPermission", 1100, false, cp_policy_meshtrafficpermission_apply, true,
	 cp_policy_no_outbound_conf, 0, NULL, NULL},
	{"MeshHealthCheck", 1200, false, cp_policy_meshhealthcheck_apply, false, cp_policy_to_conf, CL, NULL,
	 cp_policy_meshhealthcheck_key},
	{"MeshCircuitBreaker", 1300, false, cp_policy_meshcircuitbreaker_apply, false, cp_policy_to_conf, CL,
	 cp_policy_meshcircuitbreaker_conf_vars, NULL},
	{"MeshRetry", 1400, false, cp_policy_meshretry_apply, false, cp_policy_to_conf, LI,
	 cp_policy_meshretry_conf_vars, NULL},
	{"MeshMetric", 1500, true, cp_policy_meshmetric_apply, false, cp_policy_no_outbound_conf, 0, NULL, NULL},
	{"MeshProxyPatch", 9999, true, cp_policy_meshproxypatch_apply, false, cp_policy_meshproxypatch_outbound_conf,
	 CL | LI, NULL, NULL},
};
#undef CL
#undef LI
#undef EN
const size_t cp_policy_nplugins = sizeof(cp_policy_plugins) / sizeof(cp_policy_plugins[0]);
_Static_assert(sizeof(cp_policy_plugins) / sizeof(cp_policy_plugins[0]) <= MAX_PLUGINS, "MAX_PLUGINS");

/* ---- parsing ---- */

/* Conf fields typed as k8s Durations upstream: Go re-prints them with
 * time.Duration.String() ("60s" -> "1m0s") when the policy is decoded. */
static bool duration_key(struct km_str k)
{
	static const char *const suffixes[] = {"Timeout",  "timeout",      "Interval", "interval",
					       "Duration", "EjectionTime", "Jitter"};
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (km_str_has_suffix(k, suffixes[i]))
			return true;
	return false;
}

static void normalize_durations(struct km_arena *a, struct km_json *v)
{
	if (!v)
		return;
	if (v->kind == KM_JSON_ARRAY) {
		for (size_t i = 0; i < v->len; i++)
			normalize_durations(a, v->items[i]);
		return;
	}
	if (v->kind != KM_JSON_OBJECT)
		return;
	for (size_t i = 0; i < v->len; i++) {
		struct km_json *m = v->members[i].val;
		int64_t ns;
		if (m->kind == KM_JSON_STRING && duration_key(v->members[i].key) &&
		    km_duration_parse(m->s, &ns) == 0)
			v->members[i].val = km_json_cstring(a, km_duration_format(a, ns));
		else
			normalize_durations(a, m);
	}
}

/* Defaults the Go types fill in when a policy is decoded. */
static void route_defaults(struct km_arena *a, struct cp_policy *p)
{
	struct km_json *to = km_json_get(p->spec, "to");
	for (size_t i = 0; to && to->kind == KM_JSON_ARRAY && i < to->len; i++) {
		struct km_json *rules = km_json_get(to->items[i], "rules");
		for (size_t r = 0; rules && rules->kind == KM_JSON_ARRAY && r < rules->len; r++) {
			struct km_json *refs =
				km_json_get(km_json_get(rules->items[r], "default"), "backendRefs");
			for (size_t b = 0; refs && refs->kind == KM_JSON_ARRAY && b < refs->len;
			     b++)
				if (refs->items[b]->kind == KM_JSON_OBJECT &&
				    !km_json_get(refs->items[b], "weight"))
					km_json_set(a, refs->items[b], "weight", km_json_int(a, 1));
		}
	}
}

static void apply_type_defaults(struct km_arena *a, struct cp_policy *p)
{
	if (strcmp(p->type->name, "MeshHTTPRoute") == 0 ||
	    strcmp(p->type->name, "MeshTCPRoute") == 0)
		route_defaults(a, p);
	if (strcmp(p->type->name, "MeshTrace") != 0)
		return;
	struct km_json *backends = km_json_get(km_json_get(p->spec, "default"), "backends");
	for (size_t i = 0; backends && backends->kind == KM_JSON_ARRAY && i < backends->len; i++) {
		struct km_json *dd = km_json_get(backends->items[i], "datadog");
		if (dd && dd->kind == KM_JSON_OBJECT && !km_json_get(dd, "splitService"))
			km_json_set(a, dd, "splitService", km_json_bool(a, false));
		struct km_json *z = km_json_get(backends->items[i], "zipkin");
		if (!z || z->kind != KM_JSON_OBJECT)
			continue;
		if (!km_json_get(z, "traceId128bit"))
			km_json_set(a, z, "traceId128bit", km_json_bool(a, false));
		if (!km_json_get(z, "apiVersion"))
			km_json_set(a, z, "apiVersion", km_json_cstring(a, "httpJson"));
		if (!km_json_get(z, "sharedSpanContext"))
			km_json_set(a, z, "sharedSpanContext", km_json_bool(a, true));
	}
}

static struct km_json *parse_obj(struct km_arena *a, struct km_str text)
{
	struct km_json *v = NULL;
	if (text.len)
		km_json_parse(a, text.ptr, text.len, &v, NULL);
	return v && v->kind == KM_JSON_OBJECT ? v : km_json_object(a);
}

void cp_policy_parse(struct km_arena *a, const struct km_resource *r, struct cp_policy *out)
{
	memset(out, 0, sizeof(*out));
	out->type = r->type;
	out->mesh = r->mesh;
	out->name = r->name;
	out->ctime = r->ctime;
	out->labels = parse_obj(a, r->labels);
	out->spec = parse_obj(a, r->spec);
	normalize_durations(a, out->spec);
	apply_type_defaults(a, out);
	struct km_str display = km_json_get_string(out->labels, "kuma.io/display-name");
	out->display = display.len ? display : r->name;
	struct km_json *tr = km_json_get(out->spec, "targetRef");
	out->target_ref = tr && tr->kind == KM_JSON_OBJECT ? tr : NULL;
	out->kri = km_resource_kri(a, r);
	struct km_str origin = km_json_get_string(out->labels, "kuma.io/origin");
	out->origin = km_str_eqc(origin, "global") ? CP_POLICY_ORIGIN_GLOBAL :
		      km_str_eqc(origin, "zone")   ? CP_POLICY_ORIGIN_ZONE :
						     CP_POLICY_ORIGIN_UNKNOWN;
	/* an unknown origin value ranks 0, as a missing map entry does in Go */
	if (origin.len && !km_str_eqc(origin, "global") && !km_str_eqc(origin, "zone"))
		out->origin = 0;
	struct km_str role = km_json_get_string(out->labels, "kuma.io/policy-role");
	out->role = !role.len || km_str_eqc(role, "system") ? CP_POLICY_ROLE_SYSTEM :
		    km_str_eqc(role, "producer")            ? CP_POLICY_ROLE_PRODUCER :
		    km_str_eqc(role, "consumer")            ? CP_POLICY_ROLE_CONSUMER :
		    km_str_eqc(role, "workload-owner")      ? CP_POLICY_ROLE_WORKLOAD_OWNER :
							      0;
	out->shadow = km_str_eqc(km_json_get_string(out->labels, "kuma.io/effect"), "shadow");
	out->top_kind = km_json_get_string(out->target_ref, "kind");
	if (!out->top_kind.len)
		out->top_kind = KM_STR("Mesh");
	out->top_section = km_json_get_string(out->target_ref, "sectionName");
	struct km_json *zone = km_json_get(out->labels, "kuma.io/zone");
	out->zoned = km_str_eqc(origin, "zone") && zone && zone->kind == KM_JSON_STRING;
	out->parsed = true;
}

/* ---- merge ---- */

/* RFC 7396: <patch> merged into <target> (modified in place when it is an
 * object); returns the result. */
static struct km_json *merge_patch(struct km_arena *a, struct km_json *target,
				   const struct km_json *patch)
{
	if (!patch || patch->kind != KM_JSON_OBJECT)
		return km_json_clone(a, patch);
	if (!target || target->kind != KM_JSON_OBJECT)
		target = km_json_object(a);
	for (size_t i = 0; i < patch->len; i++) {
		const struct km_json_member *pm = &patch->members[i];
		if (pm->val->kind == KM_JSON_NULL) {
			char *k = km_arena_strndup(a, pm->key.ptr, pm->key.len);
			km_json_del(target, k);
			continue;
		}
		km_json_set_str(a, target, pm->key,
				merge_patch(a, km_json_get_str(target, pm->key), pm->val));
	}
	return target;
}

/* Lists under "append*" keys collect the entries of every conf, in order. */
static void append_lists(struct km_arena *a, struct km_json *dst, struct km_json *const *confs,
			 size_t n)
{
	if (!dst || dst->kind != KM_JSON_OBJECT)
		return;
	for (size_t i = 0; i < dst->len; i++) {
		struct km_json_member *m = &dst->members[i];
		struct km_json **sub = km_arena_alloc(a, (n + 1) * sizeof(*sub));
		for (size_t k = 0; k < n; k++)
			sub[k] = km_json_get_str(confs[k], m->key);
		if (m->val->kind == KM_JSON_ARRAY && km_str_has_prefix(m->key, "append")) {
			struct km_json *all = km_json_array(a);
			for (size_t k = 0; k < n; k++)
				for (size_t j = 0;
				     sub[k] && sub[k]->kind == KM_JSON_ARRAY && j < sub[k]->len;
				     j++)
					km_json_array_push(a, all,
							   km_json_clone(a, sub[k]->items[j]));
			m->val = all;
		} else if (m->val->kind == KM_JSON_OBJECT) {
			append_lists(a, m->val, sub, n);
		}
	}
}

struct km_json *cp_policy_merge(struct km_arena *a, struct km_json *const *confs, size_t n)
{
	struct km_json *out = km_json_object(a);
	for (size_t i = 0; i < n; i++)
		out = merge_patch(a, out, confs[i] ? confs[i] : km_json_object(a));
	append_lists(a, out, confs, n);
	return out;
}

/* ---- plugin helpers ---- */

/* Appends the decimal digits of <v> to <p>; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
	char t[20];
	size_t n = 0;
	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = t[--n];
	return p;
}

struct km_json *cp_policy_duration(struct km_arena *a, const struct km_json *v)
{
	int64_t ns;
	if (!v || v->kind != KM_JSON_STRING || km_duration_parse(v->s, &ns))
		return NULL;
	/* protobuf JSON: seconds, then 3, 6 or 9 fractional digits when any
	 * (written by hand: this runs for every outbound a plugin shapes) */
	uint64_t mag = ns < 0 ? -(uint64_t)ns : (uint64_t)ns;
	uint64_t sec = mag / 1000000000, frac = mag % 1000000000;
	char buf[40], *p = buf;
	if (ns < 0)
		*p++ = '-';
	p = put_u64(p, sec);
	if (frac) {
		int digits = frac % 1000000 == 0 ? 3 : frac % 1000 == 0 ? 6 : 9;
		uint64_t f = digits == 3 ? frac / 1000000 : digits == 6 ? frac / 1000 : frac;
		*p++ = '.';
		for (int i = digits - 1; i >= 0; i--, f /= 10)
			p[i] = (char)('0' + f % 10);
		p += digits;
	}
	*p++ = 's';
	return km_json_string(a, (struct km_str){buf, (size_t)(p - buf)});
}

/* The tag of the conf var of <vars> at <prefix><path>, or 0 (none). */
static uint16_t conf_var_tag(const struct cp_policy_conf_var *vars, const char *prefix, const char *path)
{
	size_t plen = strlen(prefix);
	for (const struct cp_policy_conf_var *v = vars; v && v->path; v++)
		if (strncmp(v->path, prefix, plen) == 0 && strcmp(v->path + plen, path) == 0)
			return v->tag;
	return 0;
}

struct km_json *cp_policy_conf_duration(struct km_arena *a, const struct km_json *conf, const char *path,
					const struct cp_policy_conf_var *vars, const char *prefix)
{
	struct km_json *d = cp_policy_duration(a, cp_policy_conf_get(conf, path));
	if (d)
		d->tag = conf_var_tag(vars, prefix, path);
	return d;
}

struct km_json *cp_policy_conf_get(const struct km_json *conf, const char *path)
{
	const struct km_json *v = conf;
	const char *p = path;
	while (v && *p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		v = km_json_get_str(v, (struct km_str){p, n});
		p += n + (dot ? 1 : 0);
	}
	return (struct km_json *)v;
}

/* ---- matchers and filters shared by plugins ---- */

static struct km_json *single(struct km_arena *a, const char *input, const char *type,
			      const char *how, struct km_str value)
{
	struct km_json *vm = km_json_object(a);
	km_json_set(a, vm, how, km_json_string(a, value));
	return km_json_fmt(a,
			   "{\"singlePredicate\":{\"input\":{\"name\":%s,\"typedConfig\":{\"@type\":%s}},"
			   "\"valueMatch\":%J}}",
			   input, type, vm);
}

struct km_json *cp_policy_predicates(struct km_arena *a, struct km_json *preds, const char *op)
{
	if (preds->len == 1)
		return preds->items[0];
	struct km_json *p = km_json_object(a);
	km_json_set(a, p, op, km_json_fmt(a, "{\"predicate\":%J}", preds));
	return p;
}

struct km_json *cp_policy_match_predicate(struct km_arena *a, const struct km_json *m)
{
	struct km_json *preds = km_json_array(a);
	const struct km_json *sp = km_json_get(m, "spiffeID");
	if (sp && sp->kind == KM_JSON_OBJECT) {
		bool prefix = km_str_eqc(km_json_get_string(sp, "type"), "Prefix");
		km_json_array_push(
		    a, preds,
		    single(a, "envoy.matching.inputs.uri_san",
			   "type.googleapis.com/envoy.extensions.matching.common_inputs.ssl.v3.UriSanInput",
			   prefix ? "prefix" : "exact", km_json_get_string(sp, "value")));
	}
	const struct km_json *sni = km_json_get(m, "sni");
	if (sni && sni->kind == KM_JSON_OBJECT)
		km_json_array_push(
		    a, preds,
		    single(a, "envoy.matching.inputs.server_name",
			   "type.googleapis.com/envoy.extensions.matching.common_inputs.network.v3.ServerNameInput",
			   "exact", km_json_get_string(sni, "value")));
	return preds->len ? cp_policy_predicates(a, preds, "andMatcher") : NULL;
}

bool cp_policy_decimal(struct km_arena *a, const struct km_json *v, double *out)
{
	if (v && v->kind == KM_JSON_STRING) {
		char *end;
		const char *text = km_arena_strndup(a, v->s.ptr, v->s.len);
		*out = strtod(text, &end);
		return end != text;
	}
	if (v && v->kind == KM_JSON_NUMBER) {
		*out = v->is_int ? (double)v->i : v->d;
		return true;
	}
	return false;
}

struct km_json *cp_policy_percentage(struct km_arena *a, const struct km_json *pct)
{
	double v;
	if (!cp_policy_decimal(a, pct, &v))
		return NULL;
	if (floor(v) == v)
		return km_json_fmt(a, "{\"numerator\":%u}", (unsigned)v);
	if (floor(v * 100) == v * 100)
		return km_json_fmt(a, "{\"numerator\":%u,\"denominator\":\"TEN_THOUSAND\"}", (unsigned)(v * 100));
	return km_json_fmt(a, "{\"numerator\":%u,\"denominator\":\"MILLION\"}", (unsigned)llround(v * 10000));
}

const char *cp_policy_next_outbound(struct cp_policy_apply_ctx *c, size_t *i, struct km_json **l)
{
	const struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	while (listeners && *i < listeners->len) {
		const struct km_json_member *mem = &listeners->members[(*i)++];
		if (!km_str_has_prefix(mem->key, "kri_msvc_"))
			continue;
		*l = mem->val;
		return km_arena_strndup(c->a, mem->key.ptr, mem->key.len);
	}
	return NULL;
}

struct km_json *cp_policy_chain_hcm(const struct km_json *chain)
{
	const struct km_json *filters = km_json_get(chain, "filters");
	for (size_t i = 0; filters && filters->kind == KM_JSON_ARRAY && i < filters->len; i++)
		if (km_str_eqc(km_json_get_string(filters->items[i], "name"),
			       "envoy.filters.network.http_connection_manager"))
			return km_json_get(filters->items[i], "typedConfig");
	return NULL;
}

void cp_policy_insert_http_filter(struct km_arena *a, struct km_json *hcm, struct km_json *filter, bool upsert)
{
	struct km_json *hf = km_json_get(hcm, "httpFilters");
	if (!hf || hf->kind != KM_JSON_ARRAY) {
		hf = km_json_array(a);
		km_json_set(a, hcm, "httpFilters", hf);
	}
	struct km_str name = km_json_get_string(filter, "name");
	size_t at = hf->len;
	for (size_t i = 0; i < hf->len; i++) {
		struct km_str n = km_json_get_string(hf->items[i], "name");
		if (upsert && km_str_eq(n, name)) {
			hf->items[i] = filter;
			return;
		}
		if (at == hf->len && km_str_eqc(n, "envoy.filters.http.router"))
			at = i;
	}
	km_json_array_push(a, hf, filter); /* grows the array; then moved into place */
	memmove(hf->items + at + 1, hf->items + at, (hf->len - 1 - at) * sizeof(*hf->items));
	hf->items[at] = filter;
}

struct km_json *cp_policy_obj(struct km_arena *a, struct km_json *obj, const char *key)
{
	struct km_json *v = km_json_get(obj, key);
	if (!v || v->kind != KM_JSON_OBJECT) {
		v = km_json_object(a);
		km_json_set(a, obj, key, v);
	}
	return v;
}

/* Adds the TLS inspector listener filter to <listener> unless it has one. */
struct km_str cp_policy_outbound_protocol(struct km_arena *a, const struct cp_xds_mesh *m, struct km_str name)
{
	const struct cp_xds_port *p = cp_xds_mesh_port_by_kri(a, m, name);
	return p ? p->app_protocol : KM_STR("tcp");
}

void cp_policy_ensure_tls_inspector(struct km_arena *a, struct km_json *listener)
{
	struct km_json *lf = km_json_get(listener, "listenerFilters");
	if (!lf || lf->kind != KM_JSON_ARRAY) {
		lf = km_json_array(a);
		km_json_set(a, listener, "listenerFilters", lf);
	}
	for (size_t i = 0; i < lf->len; i++)
		if (km_str_eqc(km_json_get_string(lf->items[i], "name"), "envoy.filters.listener.tls_inspector"))
			return;
	km_json_array_push(
	    a, lf,
	    km_json_fmt(a, "{\"name\":\"envoy.filters.listener.tls_inspector\",\"typedConfig\":{\"@type\":"
			   "\"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}"));
}

/* ---- apply ---- */

static const struct km_rtype *plugin_types[MAX_PLUGINS];
static pthread_once_t plugin_types_once = PTHREAD_ONCE_INIT;

static void find_plugin_types(void)
{
	for (size_t i = 0; i < cp_policy_nplugins; i++)
		plugin_types[i] = km_rtype_by_name(km_str_c(cp_policy_plugins[i].type));
}

const struct cp_policy_plugin *cp_policy_plugin_of(const struct km_rtype *t)
{
	pthread_once(&plugin_types_once, find_plugin_types);
	for (size_t i = 0; t && i < cp_policy_nplugins; i++)
		if (plugin_types[i] == t)
			return &cp_policy_plugins[i];
	return NULL;
}

void cp_policy_prepare(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		       const struct cp_xds_metadata *md, struct cp_policy_prepared *out)
{
	bool shadow = md && md->shadow;
	*out = (struct cp_policy_prepared){.c = {.a = a, .m = m, .dp = dp, .md = md}};
	out->mp = km_arena_alloc(a, cp_policy_nplugins * sizeof(*out->mp));
	out->run = km_arena_alloc(a, cp_policy_nplugins * sizeof(*out->run));
	out->c.mps = out->mp;
	pthread_once(&plugin_types_once, find_plugin_types);
	const struct km_rtype *types[MAX_PLUGINS] = {0};
	/* only the types the mesh has policies of (a match of the others
	 * finds nothing, at the cost of a walk per type and proxy) */
	bool present[MAX_PLUGINS] = {0};
	for (size_t k = 0; m && k < m->npolicies; k++)
		for (size_t i = 0; i < cp_policy_nplugins; i++)
			if (m->policies[k].type == plugin_types[i])
				present[i] = true;
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		const struct cp_policy_plugin *pl = &cp_policy_plugins[i];
		if (m && dp && pl->apply && (present[i] || pl->without_policies))
			types[i] = plugin_types[i];
	}
	if (m && dp)
		cp_policy_match_each(a, m, dp, types, cp_policy_nplugins, shadow, out->mp);
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		out->run[i] = types[i] && (out->mp[i].npolicies || cp_policy_plugins[i].without_policies);
		if (out->run[i] && cp_policy_has_route_rules(&out->mp[i]))
			out->route_rules |= 1u << i;
		if (out->run[i] && (cp_policy_plugins[i].outbound_types & (1u << CP_XDS_ENDPOINT)))
			out->endpoint_plugins = true;
	}
}

void cp_policy_apply_prepared(struct cp_policy_prepared *pp, struct cp_xds_resources *rs)
{
	pp->c.rs = rs;
	for (size_t i = 0; i < cp_policy_nplugins; i++)
		if (pp->run[i])
			cp_policy_plugins[i].apply(&pp->c, &pp->mp[i]);
}

/* pp->last_rules for <kri>: each key of an outbound (one per resource
 * type) reads the same rules, looked up once */
static void rules_for(struct cp_policy_prepared *pp, const char *kri)
{
	if (pp->last_kri && (kri == pp->last_kri || strcmp(kri, pp->last_kri) == 0))
		return;
	if (!pp->last_rules)
		pp->last_rules = km_arena_alloc(pp->c.a, cp_policy_nplugins * sizeof(*pp->last_rules));
	const struct cp_policy_matched *mps[MAX_PLUGINS];
	for (size_t i = 0; i < cp_policy_nplugins; i++)
		mps[i] = pp->run[i] && cp_policy_plugins[i].outbound_conf == cp_policy_to_conf && pp->mp[i].nto ?
				 &pp->mp[i] :
				 NULL;
	cp_policy_to_lookup_n(mps, cp_policy_nplugins, kri, pp->last_rules);
	pp->last_kri = kri;
}

/* What plugin <i> reads to shape <kri>'s outbound resources. */
static void plugin_key(struct cp_policy_prepared *pp, size_t i, const char *kri, struct km_buf *key)
{
	const struct cp_policy_plugin *pl = &cp_policy_plugins[i];
	char tag[4] = {'|', (char)i, ':', 'R'}; /* fewer than 256 plugins */
	if (pl->outbound_conf == cp_policy_to_conf) {
		/* the merged rule: what it was merged from stands for it
		 * (no serialising of the same conf for every proxy) */
		const struct cp_policy_to_rule *r = pp->last_rules[i];
		km_buf_add(key, tag, r ? 4 : 3);
		if (r)
			km_buf_add(key, r->inputs, r->inputs_len);
		if (pl->key_extra && (r || (pp->route_rules >> i & 1u)))
			pl->key_extra(pp, r, key);
		/* the rules of routes: which of them an outbound's routes
		 * use is the MeshHTTPRoute plugin's key, their confs are here */
		const struct cp_policy_matched *mp = &pp->mp[i];
		for (size_t k = 0; (pp->route_rules >> i & 1u) && k < mp->nto; k++) {
			if (strcmp(mp->to[k].rtype, "MeshHTTPRoute") != 0)
				continue;
			km_buf_add(key, "|r", 2);
			km_buf_add(key, mp->to[k].kri, mp->to[k].kri_len);
			km_buf_add(key, mp->to[k].inputs, mp->to[k].inputs_len);
		}
		return;
	}
	km_buf_add(key, tag, 3);
	const struct km_json *conf = pl->outbound_conf(&pp->c, &pp->mp[i], kri);
	if (!conf)
		return;
	size_t k = 0;
	while (k < pp->ntexts && pp->texts[k].conf != conf)
		k++;
	if (k == pp->ntexts) {
		if (pp->ntexts == pp->captexts) {
			size_t ncap = pp->captexts ? pp->captexts * 2 : 8;
			pp->texts = km_arena_realloc(pp->c.a, pp->texts, pp->captexts * sizeof(*pp->texts),
						     ncap * sizeof(*pp->texts));
			pp->captexts = ncap;
		}
		struct km_buf b = KM_BUF_INIT;
		km_json_write(&b, conf, 0, 0);
		pp->texts[k] = (struct cp_policy_conf_text){conf, km_arena_strndup(pp->c.a, km_buf_cstr(&b), b.len), b.len};
		pp->ntexts++;
		km_buf_fini(&b);
	}
	km_buf_add(key, pp->texts[k].text, pp->texts[k].len);
}

/* A rule's conf split for shapes: its text with the conf_vars' values
 * left out, and those values. */
struct cp_policy_rule_shape {
	char *text;
	size_t len;
	struct km_str *vars;
	uint16_t *tags;
	size_t nvars;
};


/* The encoded Duration body of conf value <v> into <body> (when given:
 * KM_PB_DURATION_BODY_MAX bytes), or -1 when it is no duration a Duration
 * can hold: then the value stays in the key and the node is no hole. */
static int var_body(struct km_arena *a, const struct km_json *v, uint8_t *body)
{
	uint8_t tmp[KM_PB_DURATION_BODY_MAX];
	struct km_json *d = cp_policy_duration(a, v);
	return d ? km_pb_duration_body(d->s, body ? body : tmp) : -1;
}

/* <conf> written into <out> as JSON but a valid duration at a conf_var's
 * path, written as a byte no JSON text holds (\x01), its path kept in
 * <path> (the dotted path of <conf>; <paths> false below a key holding a
 * dot, which is no path component: validation refuses such keys, and
 * their values stay in the key). */
static void write_split(const struct cp_policy_plugin *pl, const struct km_json *conf, struct km_buf *path,
			bool paths, struct km_arena *a, struct km_buf *out)
{
	if (conf->kind != KM_JSON_OBJECT) {
		km_json_write(out, conf, 0, 0);
		return;
	}
	km_buf_add(out, "{", 1);
	size_t plen = path->len;
	for (size_t i = 0; i < conf->len; i++) {
		const struct km_json_member *mem = &conf->members[i];
		if (i)
			km_buf_add(out, ",", 1);
		km_json_write(out, &(struct km_json){.kind = KM_JSON_STRING, .s = mem->key}, 0, 0);
		km_buf_add(out, ":", 1);
		path->len = plen;
		if (plen)
			km_buf_add(path, ".", 1);
		km_buf_add(path, mem->key.ptr, mem->key.len);
		bool live = paths && !(mem->key.len && memchr(mem->key.ptr, '.', mem->key.len));
		if (live && conf_var_tag(pl->conf_vars, "", km_buf_cstr(path)) &&
		    var_body(a, mem->val, NULL) >= 0)
			km_buf_add(out, "\x01", 1);
		else
			write_split(pl, mem->val, path, live, a, out);
	}
	path->len = plen;
	km_buf_add(out, "}", 1);
}

static const struct cp_policy_rule_shape *make_rule_shape(struct km_arena *a, const struct cp_policy_plugin *pl,
							  const struct cp_policy_to_rule *r)
{
	struct cp_policy_rule_shape *rs = km_arena_alloc(a, sizeof(*rs));
	size_t nv = 0;
	while (pl->conf_vars[nv].path)
		nv++;
	rs->vars = km_arena_alloc(a, (nv ? nv : 1) * sizeof(*rs->vars));
	rs->tags = km_arena_alloc(a, (nv ? nv : 1) * sizeof(*rs->tags));
	/* the values in conf_vars' order: the text says which are there */
	for (const struct cp_policy_conf_var *v = pl->conf_vars; v->path; v++) {
		uint8_t body[KM_PB_DURATION_BODY_MAX];
		int n = var_body(a, cp_policy_conf_get(r->conf, v->path), body);
		if (n < 0)
			continue;
		char *p = km_arena_alloc(a, (size_t)n + 1);
		memcpy(p, body, (size_t)n);
		rs->vars[rs->nvars] = (struct km_str){p, (size_t)n};
		rs->tags[rs->nvars++] = v->tag;
	}
	struct km_buf out = KM_BUF_INIT, path = KM_BUF_INIT;
	write_split(pl, r->conf, &path, true, a, &out);
	rs->text = km_arena_strndup(a, out.data ? out.data : "", out.len);
	rs->len = out.len;
	km_buf_fini(&out);
	km_buf_fini(&path);
	return rs;
}

/* ---- rule splits kept across contexts ---- */

/* Splits by plugin and the rule's inputs (what its conf was merged from,
 * which stands for the conf): the default policies' rules and every rule a
 * change did not touch are split once, not in every context. An entry is
 * one allocation; entries go only in cp_policy_rule_shapes_next(), when no
 * build runs. */
#define RULE_SHAPES_KEEP 16
#define RULE_SHAPES_MAX  4096

struct rs_entry {
	size_t plugin;
	uint64_t used; /* the epoch it was last asked for in */
	const char *inputs;
	size_t ilen;
	struct cp_policy_rule_shape s;
};

struct cp_policy_rule_shapes {
	pthread_mutex_t mu;
	struct km_ptab tab; /* by plugin and inputs' hash */
	uint64_t epoch;
};

struct cp_policy_rule_shapes *cp_policy_rule_shapes_new(void)
{
	struct cp_policy_rule_shapes *rs = km_calloc(1, sizeof(*rs));
	pthread_mutex_init(&rs->mu, NULL);
	return rs;
}

/* Entries used in the last RULE_SHAPES_KEEP epochs stay (<arg>: the
 * store), or none (NULL). */
static bool rs_keep(void *e, void *arg)
{
	const struct cp_policy_rule_shapes *rs = arg;
	struct rs_entry *x = e;
	if (rs && x->used + RULE_SHAPES_KEEP >= rs->epoch)
		return true;
	free(x);
	return false;
}

void cp_policy_rule_shapes_next(struct cp_policy_rule_shapes *rs)
{
	if (!rs)
		return;
	rs->epoch++;
	km_ptab_filter(&rs->tab, rs_keep, rs);
}

void cp_policy_rule_shapes_free(struct cp_policy_rule_shapes *rs)
{
	if (!rs)
		return;
	km_ptab_filter(&rs->tab, rs_keep, NULL);
	km_ptab_fini(&rs->tab);
	pthread_mutex_destroy(&rs->mu);
	free(rs);
}

/* A copy of <s> for plugin <i> and inputs <in>/<ilen> in one allocation. */
static struct rs_entry *rs_entry_new(size_t i, const char *in, size_t ilen,
				     const struct cp_policy_rule_shape *s)
{
	size_t bytes = 0;
	for (size_t k = 0; k < s->nvars; k++)
		bytes += s->vars[k].len;
	struct rs_entry *e = km_malloc(sizeof(*e) + s->nvars * (sizeof(struct km_str) + sizeof(uint16_t)) + ilen +
				       s->len + bytes + 1);
	struct km_str *vars = (struct km_str *)(e + 1);
	uint16_t *tags = (uint16_t *)(vars + s->nvars);
	char *p = (char *)(tags + s->nvars);
	*e = (struct rs_entry){.plugin = i, .inputs = p, .ilen = ilen};
	memcpy(p, in, ilen);
	p += ilen;
	e->s = (struct cp_policy_rule_shape){.text = p, .len = s->len, .vars = vars, .tags = tags, .nvars = s->nvars};
	memcpy(p, s->text, s->len);
	p += s->len;
	for (size_t k = 0; k < s->nvars; k++) {
		memcpy(p, s->vars[k].ptr, s->vars[k].len);
		vars[k] = (struct km_str){p, s->vars[k].len};
		tags[k] = s->tags[k];
		p += s->vars[k].len;
	}
	*p = 0;
	return e;
}

/* The split of rule <r> of plugin <i>: from <store> (NULL: none), or made
 * and kept there; once per build when the store is full. */
static const struct cp_policy_rule_shape *rule_shape(struct cp_policy_prepared *pp,
						     struct cp_policy_rule_shapes *store, size_t i,
						     const struct cp_policy_to_rule *r)
{
	const struct cp_policy_plugin *pl = &cp_policy_plugins[i];
	for (size_t k = 0; k < pp->nshapes; k++)
		if (pp->shapes[k].r == r)
			return pp->shapes[k].s;
	const struct cp_policy_rule_shape *s = NULL;
	uint64_t h = km_hash(KM_FNV_INIT + i, r->inputs, r->inputs_len);
	if (store) {
		pthread_mutex_lock(&store->mu);
		size_t it = 0;
		for (struct rs_entry *e; (e = km_ptab_next(&store->tab, h, &it));) {
			if (e->plugin == i && e->ilen == r->inputs_len && memcmp(e->inputs, r->inputs, e->ilen) == 0) {
				e->used = store->epoch;
				s = &e->s;
				break;
			}
		}
		pthread_mutex_unlock(&store->mu);
	}
	if (!s) {
		s = make_rule_shape(pp->c.a, pl, r);
		if (store) {
			pthread_mutex_lock(&store->mu);
			if (store->tab.n < RULE_SHAPES_MAX) {
				struct rs_entry *e = rs_entry_new(i, r->inputs, r->inputs_len, s);
				e->used = store->epoch;
				km_ptab_add(&store->tab, h, e);
			}
			pthread_mutex_unlock(&store->mu);
		}
	}
	if (pp->nshapes == pp->capshapes) {
		size_t ncap = pp->capshapes ? pp->capshapes * 2 : 4;
		pp->shapes = km_arena_realloc(pp->c.a, pp->shapes, pp->capshapes * sizeof(*pp->shapes),
					      ncap * sizeof(*pp->shapes));
		pp->capshapes = ncap;
	}
	pp->shapes[pp->nshapes++] = (struct cp_policy_rule_memo){r, s};
	return s;
}

/* cp_policy_outbound_key(), or with <vars> cp_policy_outbound_shape_key() */
static bool outbound_key(struct cp_policy_prepared *pp, struct cp_policy_rule_shapes *store, const char *kri,
			 unsigned types, struct km_buf *key, struct km_str *vars, uint16_t *tags, size_t *n, size_t cap)
{
	rules_for(pp, kri);
	for (size_t i = 0; i < cp_policy_nplugins; i++) {
		if (!pp->run[i])
			continue;
		const struct cp_policy_plugin *pl = &cp_policy_plugins[i];
		if (!pl->outbound_conf)
			return false;
		if (!(pl->outbound_types & types))
			continue;
		const struct cp_policy_to_rule *r = pp->last_rules[i];
		/* no shape of an outbound with routes of its own: a route's
		 * explicit backend could be taken for the destination's name,
		 * a route's conf values for its destination's holes; nor of
		 * one with access logs, whose formats hold the destination's
		 * name in a form no var has (a shape's check would retire it) */
		if (vars && ((pp->route_rules >> i & 1u) || (pl->apply == cp_policy_meshaccesslog_apply && r) ||
			     ((pl->outbound_conf == cp_policy_meshhttproute_outbound_conf ||
			       pl->outbound_conf == cp_policy_meshtcproute_outbound_conf) &&
			      pl->outbound_conf(&pp->c, &pp->mp[i], kri))))
			return false;
		if (!vars || pl->outbound_conf != cp_policy_to_conf || !pl->conf_vars || !r) {
			plugin_key(pp, i, kri, key);
			continue;
		}
		const struct cp_policy_rule_shape *rs = rule_shape(pp, store, i, r);
		if (*n + rs->nvars > cap)
			return false;
		char tag[4] = {'|', (char)i, ':', 'S'};
		km_buf_add(key, tag, 4);
		km_buf_add(key, rs->text, rs->len);
		memcpy(vars + *n, rs->vars, rs->nvars * sizeof(*vars));
		memcpy(tags + *n, rs->tags, rs->nvars * sizeof(*tags));
		*n += rs->nvars;
	}
	return true;
}

bool cp_policy_outbound_key(struct cp_policy_prepared *pp, const char *kri, unsigned types, struct km_buf *key)
{
	return outbound_key(pp, NULL, kri, types, key, NULL, NULL, NULL, 0);
}

bool cp_policy_outbound_shape_key(struct cp_policy_prepared *pp, struct cp_policy_rule_shapes *store, const char *kri,
				  unsigned types, struct km_buf *key, struct km_str *vars, uint16_t *tags, size_t *n,
				  size_t cap)
{
	return outbound_key(pp, store, kri, types, key, vars, tags, n, cap);
}

const struct km_json *cp_policy_no_outbound_conf(struct cp_policy_apply_ctx *c,
						 const struct cp_policy_matched *mp, const char *kri)
{
	(void)c;
	(void)mp;
	(void)kri;
	return NULL;
}

const struct km_json *cp_policy_to_conf(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp,
					const char *kri)
{
	(void)c;
	const struct cp_policy_to_rule *r = mp->nto ? cp_policy_to_lookup(mp, kri) : NULL;
	return r ? r->conf : NULL;
}

