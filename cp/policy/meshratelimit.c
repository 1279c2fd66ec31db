/* SPDX-License-Identifier: Apache-2.0 */
/* MeshRateLimit: local rate limits on the inbounds it selects. The conf
 * for every client, the merge of the rules without matches, limits HTTP
 * inbounds per route (envoy.filters.http.local_ratelimit before the router,
 * its token bucket in each route's typedPerFilterConfig) and TCP inbounds
 * per connection (the network local_ratelimit filter first in the chain).
 * Not applied: rules that match clients (by SPIFFE ID). Upstream gives them
 * routes matched on a filter state that set_filter_state fills at the TLS
 * handshake (on_downstream_tls_handshake), a field the pinned Envoy protos
 * (@grpc/grpc-js-xds 1.14.1, the latest) do not have. */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"
#include "pb/registry.h"

#define HTTP_RL "envoy.filters.http.local_ratelimit"
#define HTTP_RL_TYPE "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
#define TCP_RL "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit"

static bool disabled(const struct km_json *v)
{
	const struct km_json *d = km_json_get(v, "disabled");
	return d && d->kind == KM_JSON_BOOL && d->b;
}

/* An HTTP status code's name in envoy.type.v3.StatusCode, or NULL. */
static const char *status_name(int64_t code)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(KM_STR("envoy.type.v3.HttpStatus"));
	const ProtobufCFieldDescriptor *f = d ? protobuf_c_message_descriptor_get_field_by_name(d, "code") : NULL;
	const ProtobufCEnumValue *v =
		f && f->descriptor && code > 0 && code < 1000
			? protobuf_c_enum_descriptor_get_value(f->descriptor, (int)code)
			: NULL;
	return v ? v->name : NULL;
}

/* The per-route LocalRateLimit of conf local.http <h>, or NULL (disabled,
 * no request rate). */
static struct km_json *route_limit(struct km_arena *a, const struct km_json *h)
{
	const struct km_json *rate = km_json_get(h, "requestRate");
	struct km_json *interval = rate ? cp_policy_duration(a, km_json_get(rate, "interval")) : NULL;
	if (!h || disabled(h) || !interval)
		return NULL;
	int64_t num = km_json_i64_sat(km_json_get(rate, "num"));
	struct km_json *o = km_json_fmt(
	    a,
	    "{\"@type\":\"" HTTP_RL_TYPE "\",\"statPrefix\":\"rate_limit\","
	    "\"tokenBucket\":{\"maxTokens\":%D,\"tokensPerFill\":%D,\"fillInterval\":%T},"
	    "\"filterEnabled\":{\"defaultValue\":{\"numerator\":100},\"runtimeKey\":\"local_rate_limit_enabled\"},"
	    "\"filterEnforced\":{\"defaultValue\":{\"numerator\":100},\"runtimeKey\":\"local_rate_limit_enforced\"}}",
	    num, num, interval);
	const struct km_json *on = km_json_get(h, "onRateLimit");
	if (!on)
		return o;
	const char *status = status_name(km_json_i64_sat(km_json_get(on, "status")));
	if (status)
		km_json_set(a, o, "status", km_json_fmt(a, "{\"code\":%s}", status));
	struct km_json *headers = km_json_array(a);
	const struct km_json *hs = km_json_get(on, "headers");
	const struct km_json *add = km_json_get(hs, "add");
	for (size_t i = 0; add && add->kind == KM_JSON_ARRAY && i < add->len; i++) {
		struct km_str n = km_json_get_string(add->items[i], "name"), v = km_json_get_string(add->items[i], "value");
		km_json_array_push(a, headers,
				   km_json_fmt(a, "{\"header\":{\"key\":%S,\"value\":%S},\"appendAction\":"
						  "\"APPEND_IF_EXISTS_OR_ADD\"}",
					       &n, &v));
	}
	const struct km_json *set = km_json_get(hs, "set");
	for (size_t i = 0; set && set->kind == KM_JSON_ARRAY && i < set->len; i++) {
		struct km_str n = km_json_get_string(set->items[i], "name"), v = km_json_get_string(set->items[i], "value");
		/* a set value with commas is one header value each */
		for (size_t at = 0; at <= v.len;) {
			const char *comma = memchr(v.ptr + at, ',', v.len - at);
			struct km_str part = {v.ptr + at, comma ? (size_t)(comma - v.ptr) - at : v.len - at};
			km_json_array_push(a, headers,
					   km_json_fmt(a, "{\"header\":{\"key\":%S,\"value\":%S},\"appendAction\":"
							  "\"OVERWRITE_IF_EXISTS_OR_ADD\"}",
						       &n, &part));
			at += part.len + 1;
		}
	}
	km_json_set(a, o, "responseHeadersToAdd", headers);
	return o;
}

static struct km_json *http_filter(struct km_arena *a)
{
	return km_json_fmt(a, "{\"name\":\"" HTTP_RL "\",\"typedConfig\":{\"@type\":\"" HTTP_RL_TYPE "\","
			      "\"statPrefix\":\"rate_limit\"}}");
}

static struct km_json *per_filter(struct km_arena *a, struct km_json *route)
{
	struct km_json *pf = km_json_get(route, "typedPerFilterConfig");
	if (!pf || pf->kind != KM_JSON_OBJECT) {
		pf = km_json_object(a);
		km_json_set(a, route, "typedPerFilterConfig", pf);
	}
	return pf;
}

static void common_conf(struct km_arena *a, struct km_json *chain, const struct km_json *conf)
{
	const struct km_json *http = cp_policy_conf_get(conf, "local.http");
	struct km_json *hcm = cp_policy_chain_hcm(chain);
	struct km_json *limit = http ? route_limit(a, http) : NULL;
	if (hcm && limit) {
		struct km_json *vhs = km_json_get(km_json_get(hcm, "routeConfig"), "virtualHosts");
		for (size_t v = 0; vhs && vhs->kind == KM_JSON_ARRAY && v < vhs->len; v++) {
			struct km_json *routes = km_json_get(vhs->items[v], "routes");
			for (size_t r = 0; routes && routes->kind == KM_JSON_ARRAY && r < routes->len; r++) {
				struct km_json *pf = per_filter(a, routes->items[r]);
				if (!km_json_get(pf, HTTP_RL))
					km_json_set(a, pf, HTTP_RL, km_json_clone(a, limit));
			}
		}
		cp_policy_insert_http_filter(a, hcm, http_filter(a), true);
	}
	const struct km_json *tcp = cp_policy_conf_get(conf, "local.tcp");
	const struct km_json *rate = tcp ? km_json_get(tcp, "connectionRate") : NULL;
	struct km_json *interval = rate ? cp_policy_duration(a, km_json_get(rate, "interval")) : NULL;
	struct km_json *filters = km_json_get(chain, "filters");
	if (!interval || disabled(tcp) || !filters || filters->kind != KM_JSON_ARRAY)
		return;
	int64_t num = km_json_i64_sat(km_json_get(rate, "num"));
	struct km_json *f = km_json_fmt(
	    a,
	    "{\"name\":\"" TCP_RL "\",\"typedConfig\":{\"@type\":\"type.googleapis.com/" TCP_RL "\","
	    "\"statPrefix\":\"tcp_rate_limit\",\"tokenBucket\":{\"maxTokens\":%D,\"tokensPerFill\":%D,"
	    "\"fillInterval\":%T}}}",
	    num, num, interval);
	for (size_t i = 0; i < filters->len; i++)
		if (km_str_eqc(km_json_get_string(filters->items[i], "name"), TCP_RL)) {
			filters->items[i] = f;
			return;
		}
	km_json_array_push(a, filters, f);
	memmove(filters->items + 1, filters->items, (filters->len - 1) * sizeof(*filters->items));
	filters->items[0] = f;
}

void cp_policy_meshratelimit_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		struct km_json *l = in->inbound ? km_json_get(listeners, in->resource) : NULL;
		if (!l)
			continue;
		struct km_json *conf = cp_policy_inbound_conf(a, in);
		bool common = !in->nrules || cp_policy_inbound_has_catch_all(in);
		struct km_json *chains = km_json_get(l, "filterChains");
		for (size_t k = 0; chains && chains->kind == KM_JSON_ARRAY && k < chains->len; k++) {
			if (common && conf)
				common_conf(a, chains->items[k], conf);
		}
	}
}
