/* SPDX-License-Identifier: Apache-2.0 */
/* MeshTimeout: connect, idle, request and stream timeouts on inbound and
 * outbound listeners (tcp_proxy, HCM, routes) and clusters. A field the
 * merged conf leaves unset gets upstream's default, so a policy that
 * matches with an empty conf changes nothing. */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

#define HTTP_OPTS "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

/* Every duration of the conf: each goes into the resources as it is, at
 * one place or several, and decides nothing (a field's presence does,
 * as streamIdleTimeout's; a shape's key holds that). */
const struct cp_policy_conf_var cp_policy_meshtimeout_conf_vars[] = {
    {"connectionTimeout", 1},
    {"idleTimeout", 2},
    {"http.requestTimeout", 3},
    {"http.streamIdleTimeout", 4},
    {"http.requestHeadersTimeout", 5},
    {"http.maxStreamDuration", 6},
    {"http.maxConnectionDuration", 7},
    {NULL, 0},
};

static struct km_json *dur(struct km_arena *a, const struct km_json *conf, const char *path)
{
	return cp_policy_conf_duration(a, conf, path, cp_policy_meshtimeout_conf_vars, "");
}

static struct km_json *dur_or(struct km_arena *a, const struct km_json *conf, const char *path,
			      const char *dflt)
{
	struct km_json *d = dur(a, conf, path);
	return d ? d : km_json_cstring(a, dflt);
}

static void configure_route_action(struct km_arena *a, struct km_json *action,
				   const struct km_json *conf)
{
	if (!action || action->kind != KM_JSON_OBJECT)
		return;
	km_json_set(a, action, "timeout", dur_or(a, conf, "http.requestTimeout", "15s"));
	struct km_json *idle = dur(a, conf, "http.streamIdleTimeout");
	if (idle)
		km_json_set(a, action, "idleTimeout", idle);
	else if (!km_json_get(action, "idleTimeout"))
		km_json_set(a, action, "idleTimeout", km_json_cstring(a, "1800s"));
}

/* <conf> NULL: only the routes with a rule of their own (<mp>'s) are
 * configured. */
static void configure_filter_chains(struct km_arena *a, struct km_json *listener,
				    const struct km_json *conf, const struct cp_policy_matched *mp)
{
	struct km_json *chains = km_json_get(listener, "filterChains");
	for (size_t i = 0; chains && chains->kind == KM_JSON_ARRAY && i < chains->len; i++) {
		struct km_json *filters = km_json_get(chains->items[i], "filters");
		for (size_t f = 0; filters && filters->kind == KM_JSON_ARRAY && f < filters->len;
		     f++) {
			struct km_str name = km_json_get_string(filters->items[f], "name");
			struct km_json *tc = km_json_get(filters->items[f], "typedConfig");
			if (!tc)
				continue;
			if (km_str_eqc(name, "envoy.filters.network.tcp_proxy")) {
				if (conf)
					km_json_set(a, tc, "idleTimeout",
						    dur_or(a, conf, "idleTimeout", "3600s"));
			} else if (km_str_eqc(name,
					      "envoy.filters.network.http_connection_manager")) {
				struct km_json *vhs =
					km_json_get(km_json_get(tc, "routeConfig"), "virtualHosts");
				for (size_t v = 0;
				     vhs && vhs->kind == KM_JSON_ARRAY && v < vhs->len; v++) {
					struct km_json *routes =
						km_json_get(vhs->items[v], "routes");
					for (size_t r = 0;
					     routes && routes->kind == KM_JSON_ARRAY &&
					     r < routes->len;
					     r++) {
						/* a route's own rule replaces its destination's */
						const struct cp_policy_to_rule *rr =
							mp ? cp_policy_route_lookup(
								     mp, km_json_get_string(routes->items[r], "name"))
							   : NULL;
						const struct km_json *rc = rr ? rr->conf : conf;
						if (rc)
							configure_route_action(
								a, km_json_get(routes->items[r], "route"), rc);
					}
				}
				if (!conf)
					continue;
				km_json_set(a, tc, "requestHeadersTimeout",
					    dur_or(a, conf, "http.requestHeadersTimeout", "0s"));
				km_json_set(a, cp_policy_obj(a, tc, "commonHttpProtocolOptions"),
					    "idleTimeout", km_json_cstring(a, "0s"));
			}
		}
	}
}

static void configure_cluster(struct km_arena *a, struct km_json *cluster,
			      const struct km_json *conf, bool http)
{
	if (!cluster)
		return;
	km_json_set(a, cluster, "connectTimeout", dur_or(a, conf, "connectionTimeout", "5s"));
	if (!http)
		return;
	struct km_json *teo = cp_policy_obj(a, cluster, "typedExtensionProtocolOptions");
	struct km_json *opts = km_json_get(teo, HTTP_OPTS);
	if (!opts || opts->kind != KM_JSON_OBJECT) {
		opts = km_json_fmt(a, "{\"@type\":\"type.googleapis.com/" HTTP_OPTS "\"}");
		km_json_set(a, teo, HTTP_OPTS, opts);
	}
	struct km_json *common = cp_policy_obj(a, opts, "commonHttpProtocolOptions");
	km_json_set(a, common, "idleTimeout", dur_or(a, conf, "idleTimeout", "3600s"));
	km_json_set(a, common, "maxStreamDuration",
		    dur_or(a, conf, "http.maxStreamDuration", "0s"));
	km_json_set(a, common, "maxConnectionDuration",
		    dur_or(a, conf, "http.maxConnectionDuration", "0s"));
}

static bool http_protocol(struct km_str p)
{
	return km_str_eqc(p, "http") || km_str_eqc(p, "http2");
}

void cp_policy_meshtimeout_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER],
		       *clusters = c->rs->by_type[CP_XDS_CLUSTER];
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		if (!in->inbound || !cp_policy_inbound_has_catch_all(in))
			continue;
		struct km_json *l = km_json_get(listeners, in->resource);
		struct km_json *cl = km_json_get(clusters, in->resource);
		if (!l && !cl)
			continue; /* building outbounds alone (cp/xds/share.c) */
		struct km_json *conf = cp_policy_inbound_conf(a, in);
		if (l)
			configure_filter_chains(a, l, conf, NULL);
		configure_cluster(a, cl, conf, http_protocol(km_json_get_string(in->inbound, "protocol")));
	}
	if (!mp->nto)
		return;
	for (size_t i = 0; listeners && i < listeners->len; i++) {
		const char *name = km_arena_strndup(a, listeners->members[i].key.ptr,
						    listeners->members[i].key.len);
		const struct cp_policy_to_rule *r =
			strncmp(name, "kri_", 4) == 0 ? cp_policy_to_lookup(mp, name) : NULL;
		if (r || (strncmp(name, "kri_", 4) == 0 && cp_policy_has_route_rules(mp)))
			configure_filter_chains(a, listeners->members[i].val, r ? r->conf : NULL, mp);
	}
	for (size_t i = 0; clusters && i < clusters->len; i++) {
		struct km_str key = clusters->members[i].key;
		const char *name = km_arena_strndup(a, key.ptr, key.len);
		const struct cp_policy_to_rule *r =
			strncmp(name, "kri_", 4) == 0 ? cp_policy_to_lookup(mp, name) : NULL;
		if (r)
			configure_cluster(a, clusters->members[i].val, r->conf,
					  http_protocol(cp_policy_outbound_protocol(a, c->m, key)));
	}
}
