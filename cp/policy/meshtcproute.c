/* SPDX-License-Identifier: Apache-2.0 */
/* MeshTCPRoute: where an outbound's connections go. The first rule of the
 * destination's merged conf sends them to its backendRefs (one cluster, or
 * weighted clusters), whatever the backends' protocols. On an HTTP
 * destination it applies only when no MeshHTTPRoute rule does, and then
 * the outbound is proxied as TCP (its HTTP connection manager replaced by
 * a TCP proxy), as upstream does. An outbound whose backendRefs all fail to
 * resolve gets no listener. The clusters of backends no outbound names come
 * as backend-only outbounds (cp_policy_route_backends). */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

static size_t len_of(const struct km_json *v)
{
	return v && v->kind == KM_JSON_ARRAY ? v->len : 0;
}

static const struct cp_policy_matched *plugin_mp(const struct cp_policy_apply_ctx *c, const char *type)
{
	for (size_t i = 0; c->mps && i < cp_policy_nplugins; i++)
		if (strcmp(cp_policy_plugins[i].type, type) == 0)
			return &c->mps[i];
	return NULL;
}

const struct km_json *cp_policy_tcp_route_refs(const struct cp_policy_apply_ctx *c, const char *kri, bool http)
{
	const struct cp_policy_matched *tcp = plugin_mp(c, "MeshTCPRoute");
	const struct cp_policy_to_rule *r = tcp && tcp->nto ? cp_policy_to_lookup(tcp, kri) : NULL;
	const struct km_json *refs = r ? km_json_get(km_json_get(r->conf, "default"), "backendRefs") : NULL;
	if (!r)
		return NULL;
	if (http) { /* a MeshHTTPRoute rule for the destination wins */
		const struct cp_policy_matched *hr = plugin_mp(c, "MeshHTTPRoute");
		const struct cp_policy_to_rule *h = hr && hr->nto ? cp_policy_to_lookup(hr, kri) : NULL;
		if (h && len_of(km_json_get(h->conf, "rules")))
			return NULL;
	}
	return refs ? refs : km_json_array(c->a);
}

/* The TCP proxy's destination fields for <refs>: true when one resolves. */
static bool set_split(struct cp_policy_apply_ctx *c, const struct km_json *refs, const char *kri,
		      struct km_json *tcp)
{
	struct km_arena *a = c->a;
	struct km_json *clusters = km_json_array(a);
	for (size_t i = 0; i < len_of(refs); i++) {
		const struct cp_xds_service *s;
		const struct cp_xds_port *p = cp_policy_backend_ref(c->m, refs->items[i], &s);
		const struct km_json *w = km_json_get(refs->items[i], "weight");
		int64_t weight = w ? km_json_i64_sat(w) : 1;
		if (!p || weight <= 0)
			continue;
		km_json_array_push(a, clusters,
				   km_json_fmt(a, "{\"name\":%s,\"weight\":%D}", cp_xds_service_kri(a, c->m, s, p), weight));
	}
	if (!len_of(refs)) /* a rule without backendRefs: the destination itself */
		km_json_array_push(a, clusters, km_json_fmt(a, "{\"name\":%s,\"weight\":1}", kri));
	if (!clusters->len)
		return false;
	km_json_del(tcp, "cluster");
	km_json_del(tcp, "weightedClusters");
	if (clusters->len == 1)
		km_json_set(a, tcp, "cluster", km_json_clone(a, km_json_get(clusters->items[0], "name")));
	else
		km_json_set(a, tcp, "weightedClusters", km_json_fmt(a, "{\"clusters\":%T}", clusters));
	return true;
}

void cp_policy_meshtcproute_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *l;
	size_t i = 0;
	for (const char *kri; mp->nto && (kri = cp_policy_next_outbound(c, &i, &l));) {
		struct km_json *chains = km_json_get(l, "filterChains");
		if (!len_of(chains))
			continue;
		struct km_json *filters = km_json_get(chains->items[0], "filters");
		if (!len_of(filters))
			continue;
		bool http = km_str_eqc(km_json_get_string(filters->items[0], "name"),
				       "envoy.filters.network.http_connection_manager");
		const struct km_json *refs = cp_policy_tcp_route_refs(c, kri, http);
		if (!refs)
			continue;
		struct km_json *tcp = km_json_fmt(a, "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network."
						     "tcp_proxy.v3.TcpProxy\",\"statPrefix\":%s,\"idleTimeout\":\"3600s\"}",
						  kri);
		if (!http)
			tcp = km_json_get(filters->items[0], "typedConfig");
		if (!set_split(c, refs, kri, tcp)) {
			/* nothing to send the connections to: no listener */
			km_json_del(c->rs->by_type[CP_XDS_LISTENER], kri);
			i--;
			continue;
		}
		if (http)
			filters->items[0] =
				km_json_fmt(a, "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typedConfig\":%T}", tcp);
	}
}

const struct km_json *cp_policy_meshtcproute_outbound_conf(struct cp_policy_apply_ctx *c,
							   const struct cp_policy_matched *mp, const char *kri)
{
	const struct cp_policy_to_rule *r = mp->nto ? cp_policy_to_lookup(mp, kri) : NULL;
	if (!r)
		return NULL;
	struct km_arena *a = c->a;
	/* the rule, then where each backendRef resolves */
	const struct km_json *refs = km_json_get(km_json_get(r->conf, "default"), "backendRefs");
	struct km_json *to = km_json_array(a);
	for (size_t i = 0; i < len_of(refs); i++) {
		const struct cp_xds_service *s;
		const struct cp_xds_port *p = cp_policy_backend_ref(c->m, refs->items[i], &s);
		km_json_array_push(a, to, km_json_cstring(a, p ? cp_xds_service_kri(a, c->m, s, p) : ""));
	}
	return km_json_fmt(a, "{\"rule\":%J,\"to\":%T}", r->conf, to);
}
