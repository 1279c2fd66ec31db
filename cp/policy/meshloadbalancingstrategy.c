/* SPDX-License-Identifier: Apache-2.0 */
/* MeshLoadBalancingStrategy: how an outbound's endpoints are picked. The
 * merged `to` conf of a destination sets its cluster's load balancer
 * (round robin, least request, random, ring hash, maglev), its routes' hash
 * policies (a route's own rule first, as MeshTimeout reads them) and, with
 * locality awareness, its load assignment: local-zone endpoints grouped by
 * the first affinity tag whose value they share with this proxy (weights
 * 9 * 10^n for the n-th tag from the end unless given), endpoints of other
 * zones kept only when a cross-zone failover rule names their zone (at the
 * rule's priority), and the overprovisioning factor of the failover
 * threshold. Without locality awareness disabled, endpoints of other zones
 * get priority 1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

static size_t len_of(const struct km_json *v)
{
	return v && v->kind == KM_JSON_ARRAY ? v->len : 0;
}

static bool flag(const struct km_json *obj, const char *key)
{
	const struct km_json *v = km_json_get(obj, key);
	return v && v->kind == KM_JSON_BOOL && v->b;
}

/* ---- cluster ---- */

static void set_u64_string(struct km_arena *a, struct km_json *o, const char *key, const struct km_json *v)
{
	if (v) /* uint64 in protobuf JSON: a string */
		km_json_set(a, o, key, km_json_cstring(a, km_arena_printf(a, "%lld", (long long)km_json_i64_sat(v))));
}

static void configure_cluster(struct km_arena *a, struct km_json *cl, const struct km_json *conf)
{
	const struct km_json *tags = cp_policy_conf_get(conf, "localityAwareness.localZone.affinityTags");
	if (len_of(tags))
		km_json_set(a, cp_policy_obj(a, cl, "commonLbConfig"), "localityWeightedLbConfig", km_json_object(a));
	const struct km_json *lb = km_json_get(conf, "loadBalancer");
	struct km_str type = km_json_get_string(lb, "type");
	if (km_str_eqc(type, "RoundRobin")) {
		km_json_set(a, cl, "lbPolicy", km_json_cstring(a, "ROUND_ROBIN"));
	} else if (km_str_eqc(type, "Random")) {
		km_json_set(a, cl, "lbPolicy", km_json_cstring(a, "RANDOM"));
	} else if (km_str_eqc(type, "LeastRequest")) {
		km_json_set(a, cl, "lbPolicy", km_json_cstring(a, "LEAST_REQUEST"));
		const struct km_json *lr = km_json_get(lb, "leastRequest");
		if (lr) {
			struct km_json *o = cp_policy_obj(a, cl, "leastRequestLbConfig");
			const struct km_json *cc = km_json_get(lr, "choiceCount");
			if (cc)
				km_json_set(a, o, "choiceCount", km_json_int(a, km_json_i64_sat(cc)));
			const struct km_json *bias = km_json_get(lr, "activeRequestBias");
			double v;
			if (cp_policy_decimal(a, bias, &v)) {
				km_json_set(a, o, "activeRequestBias",
					    km_json_fmt(a, "{\"defaultValue\":%T,\"runtimeKey\":\"\"}", km_json_double(a, v)));
			}
		}
	} else if (km_str_eqc(type, "RingHash")) {
		km_json_set(a, cl, "lbPolicy", km_json_cstring(a, "RING_HASH"));
		const struct km_json *rh = km_json_get(lb, "ringHash");
		if (rh) {
			struct km_json *o = cp_policy_obj(a, cl, "ringHashLbConfig");
			set_u64_string(a, o, "minimumRingSize", km_json_get(rh, "minRingSize"));
			set_u64_string(a, o, "maximumRingSize", km_json_get(rh, "maxRingSize"));
			struct km_str hf = km_json_get_string(rh, "hashFunction");
			if (km_str_eqc(hf, "MurmurHash2"))
				km_json_set(a, o, "hashFunction", km_json_cstring(a, "MURMUR_HASH_2"));
			/* XX_HASH is the enum's zero */
		}
	} else if (km_str_eqc(type, "Maglev")) {
		km_json_set(a, cl, "lbPolicy", km_json_cstring(a, "MAGLEV"));
		const struct km_json *mg = km_json_get(lb, "maglev");
		if (mg)
			set_u64_string(a, cp_policy_obj(a, cl, "maglevLbConfig"), "tableSize", km_json_get(mg, "tableSize"));
	}
}

/* ---- routes ---- */

static struct km_json *hash_policy(struct km_arena *a, const struct km_json *hp)
{
	struct km_json *o = km_json_object(a);
	struct km_str type = km_json_get_string(hp, "type");
	if (km_str_eqc(type, "Header")) {
		struct km_str n = km_json_get_string(km_json_get(hp, "header"), "name");
		km_json_set(a, o, "header", km_json_fmt(a, "{\"headerName\":%S}", &n));
	} else if (km_str_eqc(type, "Cookie")) {
		const struct km_json *c = km_json_get(hp, "cookie");
		struct km_str n = km_json_get_string(c, "name"), path = km_json_get_string(c, "path");
		struct km_json *co = km_json_fmt(a, "{\"name\":%S}", &n);
		if (path.len)
			km_json_set(a, co, "path", km_json_string(a, path));
		struct km_json *ttl = cp_policy_duration(a, km_json_get(c, "ttl"));
		if (ttl)
			km_json_set(a, co, "ttl", ttl);
		km_json_set(a, o, "cookie", co);
	} else if (km_str_eqc(type, "Connection")) {
		km_json_set(a, o, "connectionProperties",
			    km_json_fmt(a, "{\"sourceIp\":%b}", flag(km_json_get(hp, "connection"), "sourceIP")));
	} else if (km_str_eqc(type, "QueryParameter")) {
		struct km_str n = km_json_get_string(km_json_get(hp, "queryParameter"), "name");
		km_json_set(a, o, "queryParameter", km_json_fmt(a, "{\"name\":%S}", &n));
	} else if (km_str_eqc(type, "FilterState")) {
		struct km_str k = km_json_get_string(km_json_get(hp, "filterState"), "key");
		km_json_set(a, o, "filterState", km_json_fmt(a, "{\"key\":%S}", &k));
	}
	if (flag(hp, "terminal"))
		km_json_set(a, o, "terminal", km_json_bool(a, true));
	return o;
}

static void configure_routes(struct km_arena *a, struct km_json *l, const struct km_json *conf,
			     const struct cp_policy_matched *mp)
{
	const struct km_json *chains = km_json_get(l, "filterChains");
	for (size_t k = 0; k < len_of(chains); k++) {
		struct km_json *hcm = cp_policy_chain_hcm(chains->items[k]);
		struct km_json *vhs = km_json_get(km_json_get(hcm, "routeConfig"), "virtualHosts");
		for (size_t v = 0; v < len_of(vhs); v++) {
			struct km_json *routes = km_json_get(vhs->items[v], "routes");
			for (size_t r = 0; r < len_of(routes); r++) {
				const struct cp_policy_to_rule *rr =
					cp_policy_route_lookup(mp, km_json_get_string(routes->items[r], "name"));
				const struct km_json *hps = km_json_get(rr ? rr->conf : conf, "hashPolicies");
				struct km_json *act = km_json_get(routes->items[r], "route");
				if (!hps || hps->kind != KM_JSON_ARRAY || !act || act->kind != KM_JSON_OBJECT)
					continue;
				struct km_json *out = km_json_array(a);
				for (size_t h = 0; h < hps->len; h++)
					km_json_array_push(a, out, hash_policy(a, hps->items[h]));
				km_json_set(a, act, "hashPolicy", out);
			}
		}
	}
}

/* ---- load assignment ---- */

struct group {
	struct km_str zone, sub;
	uint32_t weight, priority;
	struct km_json *eps; /* lbEndpoints */
};

/* The value of <key> this proxy has: a label of its Dataplane. */
static struct km_str own_value(const struct cp_xds_dataplane *dp, struct km_str key)
{
	const struct km_json *v = km_json_get_str(dp->labels, key);
	return v && v->kind == KM_JSON_STRING ? v->s : (struct km_str){0};
}

/* Weight of the <i>-th of <n> affinity tags: its own, else 9 * 10^(n-i-1). */
static uint32_t tag_weight(const struct km_json *tag, size_t i, size_t n)
{
	const struct km_json *w = km_json_get(tag, "weight");
	if (w)
		return (uint32_t)km_json_i64_sat(w);
	return (uint32_t)(9 * pow(10, (double)(n - i - 1)));
}

/* Priority of cross-zone endpoint zone <zone> by the failover rules that
 * apply from <local> (0 when none takes it: dropped). */
static uint32_t failover_priority(const struct km_json *failover, struct km_str local, struct km_str zone)
{
	for (size_t i = 0; i < len_of(failover); i++) {
		const struct km_json *rule = failover->items[i];
		const struct km_json *from = km_json_get(km_json_get(rule, "from"), "zones");
		if (km_json_get(rule, "from")) {
			bool in = false;
			for (size_t z = 0; z < len_of(from) && !in; z++)
				in = from->items[z]->kind == KM_JSON_STRING && km_str_eq(from->items[z]->s, local);
			if (!in)
				continue;
		}
		const struct km_json *to = km_json_get(rule, "to");
		struct km_str type = km_json_get_string(to, "type");
		const struct km_json *zones = km_json_get(to, "zones");
		bool listed = false;
		for (size_t z = 0; z < len_of(zones) && !listed; z++)
			listed = zones->items[z]->kind == KM_JSON_STRING && km_str_eq(zones->items[z]->s, zone);
		if (km_str_eqc(type, "Any") || (km_str_eqc(type, "AnyExcept") && !listed) ||
		    (km_str_eqc(type, "Only") && listed))
			return (uint32_t)i + 1;
	}
	return 0;
}

static int cmp_groups(const void *x, const void *y)
{
	const struct group *p = x, *q = y;
	int c = km_str_cmp(p->zone, q->zone);
	return c ? c : km_str_cmp(p->sub, q->sub);
}

static void regroup(struct km_arena *a, struct km_json *cla, const struct km_json *conf,
		    const struct cp_xds_dataplane *dp, struct km_str local)
{
	const struct km_json *tags = cp_policy_conf_get(conf, "localityAwareness.localZone.affinityTags");
	const struct km_json *failover = cp_policy_conf_get(conf, "localityAwareness.crossZone.failover");
	struct km_json *localities = km_json_get(cla, "endpoints");
	size_t total = 0;
	for (size_t i = 0; i < len_of(localities); i++)
		total += len_of(km_json_get(localities->items[i], "lbEndpoints"));
	struct group *gs = km_arena_alloc(a, (total + 1) * sizeof(*gs));
	size_t ng = 0;
	for (size_t i = 0; i < len_of(localities); i++) {
		struct km_str lzone = km_json_get_string(km_json_get(localities->items[i], "locality"), "zone");
		const struct km_json *eps = km_json_get(localities->items[i], "lbEndpoints");
		for (size_t e = 0; e < len_of(eps); e++) {
			const struct km_json *md =
				km_json_get(km_json_get(km_json_get(eps->items[e], "metadata"), "filterMetadata"), "envoy.lb");
			struct km_str zone = km_json_get_string(md, "kuma.io/zone");
			if (!zone.len)
				zone = lzone;
			struct group g = {.zone = zone, .weight = 0};
			if (km_str_eq(zone, local)) {
				g.zone = local;
				g.weight = 1;
				for (size_t t = 0; t < len_of(tags); t++) {
					struct km_str key = km_json_get_string(tags->items[t], "key");
					struct km_str mine = own_value(dp, key);
					if (!mine.len || !km_str_eq(km_json_get_string(md, km_arena_strndup(a, key.ptr, key.len)), mine))
						continue;
					g.sub = km_str_c(km_arena_printf(a, "%.*s=%.*s", KM_STR_FMT(key), KM_STR_FMT(mine)));
					g.weight = tag_weight(tags->items[t], t, tags->len);
					break;
				}
			} else if (!(g.priority = failover_priority(failover, local, zone))) {
				continue;
			}
			size_t k = 0;
			while (k < ng && !(km_str_eq(gs[k].zone, g.zone) && km_str_eq(gs[k].sub, g.sub) &&
					   gs[k].priority == g.priority && gs[k].weight == g.weight))
				k++;
			if (k == ng) {
				g.eps = km_json_array(a);
				gs[ng++] = g;
			}
			km_json_array_push(a, gs[k].eps, eps->items[e]);
		}
	}
	qsort(gs, ng, sizeof(*gs), cmp_groups);
	struct km_json *out = km_json_array(a);
	for (size_t k = 0; k < ng; k++) {
		struct km_json *loc = km_json_fmt(a, "{\"zone\":%S}", &gs[k].zone);
		if (gs[k].sub.len)
			km_json_set(a, loc, "subZone", km_json_string(a, gs[k].sub));
		struct km_json *o = km_json_fmt(a, "{\"lbEndpoints\":%T,\"locality\":%T}", gs[k].eps, loc);
		if (gs[k].priority)
			km_json_set(a, o, "priority", km_json_int(a, gs[k].priority));
		if (gs[k].weight)
			km_json_set(a, o, "loadBalancingWeight", km_json_int(a, gs[k].weight));
		km_json_array_push(a, out, o);
	}
	km_json_set(a, cla, "endpoints", out);
	/* the failover threshold's percentage p: 100 / p * 100 (200 without one) */
	const struct km_json *pct = cp_policy_conf_get(conf, "localityAwareness.crossZone.failoverThreshold.percentage");
	double p = 0;
	if (!cp_policy_decimal(a, pct, &p))
		p = 0;
	uint32_t factor = p > 0 ? (uint32_t)(100.0 / p) * 100 : 200;
	km_json_set(a, cla, "policy", km_json_fmt(a, "{\"overprovisioningFactor\":%u}", factor));
}

static void configure_cla(struct km_arena *a, struct km_json *cla, const struct km_json *conf,
			  const struct cp_xds_dataplane *dp, struct km_str local)
{
	const struct km_json *la = km_json_get(conf, "localityAwareness");
	uint32_t priority = la && flag(la, "disabled") ? 0 : 1;
	struct km_json *localities = km_json_get(cla, "endpoints");
	for (size_t i = 0; i < len_of(localities); i++) {
		const struct km_json *loc = km_json_get(localities->items[i], "locality");
		if (loc && !km_str_eq(km_json_get_string(loc, "zone"), local)) {
			if (priority)
				km_json_set(a, localities->items[i], "priority", km_json_int(a, priority));
			else
				km_json_del(localities->items[i], "priority");
		}
	}
	if (la && (km_json_get(la, "localZone") || km_json_get(la, "crossZone")))
		regroup(a, cla, conf, dp, local);
}

void cp_policy_meshloadbalancingstrategy_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	if (!mp->nto)
		return;
	struct km_str local = km_str_c(c->m->zone ? c->m->zone : "");
	for (int t = CP_XDS_CLUSTER; t <= CP_XDS_LISTENER; t++) {
		struct km_json *objs = c->rs->by_type[t];
		for (size_t i = 0; objs && i < objs->len; i++) {
			struct km_str key = objs->members[i].key;
			if (!km_str_has_prefix(key, "kri_"))
				continue;
			const char *name = km_arena_strndup(a, key.ptr, key.len);
			const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, name);
			struct km_json *res = objs->members[i].val;
			if (t == CP_XDS_LISTENER && (r || cp_policy_has_route_rules(mp)))
				configure_routes(a, res, r ? r->conf : NULL, mp);
			else if (t == CP_XDS_CLUSTER && r)
				configure_cluster(a, res, r->conf);
			else if (t == CP_XDS_ENDPOINT && r)
				configure_cla(a, res, r->conf, c->dp, local);
		}
	}
}

void cp_policy_meshloadbalancingstrategy_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
					     struct km_buf *key)
{
	if (!r)
		return; /* routes' rules: hash policies, nothing of the proxy */
	const struct km_json *tags = cp_policy_conf_get(r->conf, "localityAwareness.localZone.affinityTags");
	for (size_t t = 0; t < len_of(tags); t++) {
		struct km_str v = own_value(pp->c.dp, km_json_get_string(tags->items[t], "key"));
		km_buf_add(key, "|a", 2);
		km_buf_add(key, v.ptr, v.len);
	}
}
