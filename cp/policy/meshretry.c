/* SPDX-License-Identifier: Apache-2.0 */
/* MeshRetry: the merged `to` conf of each outbound becomes the retry policy
 * of its HTTP (http) or gRPC (grpc) routes, or maxConnectAttempts on its
 * tcp_proxy (tcp). Other protocols are left alone, as upstream does. */
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

static const struct {
	const char *kuma, *envoy;
} http_retry_on[] =
	{
		{"5xx", "5xx"},
		{"5XX", "5xx"},
		{"GatewayError", "gateway-error"},
		{"Reset", "reset"},
		{"Retriable4xx", "retriable-4xx"},
		{"ConnectFailure", "connect-failure"},
		{"EnvoyRatelimited", "envoy-ratelimited"},
		{"RefusedStream", "refused-stream"},
		{"Http3PostConnectFailure", "http3-post-connect-failure"},
		{"HttpMethodConnect", "CONNECT"},
		{"HttpMethodDelete", "DELETE"},
		{"HttpMethodGet", "GET"},
		{"HttpMethodHead", "HEAD"},
		{"HttpMethodOptions", "OPTIONS"},
		{"HttpMethodPatch", "PATCH"},
		{"HttpMethodPost", "POST"},
		{"HttpMethodPut", "PUT"},
		{"HttpMethodTrace", "TRACE"},
},
  grpc_retry_on[] = {
	  {"Canceled", "canceled"},       {"DeadlineExceeded", "deadline-exceeded"},
	  {"Internal", "internal"},       {"ResourceExhausted", "resource-exhausted"},
	  {"Unavailable", "unavailable"},
};

#define HTTP_RETRY_ON_DEFAULT "gateway-error,connect-failure,refused-stream"
#define GRPC_RETRY_ON_DEFAULT \
	"cancelled,connect-failure,gateway-error,refused-stream,reset,resource-exhausted,unavailable"

static const char *lookup(const void *table, size_t n, struct km_str k)
{
	const struct {
		const char *kuma, *envoy;
	} *t = table;
	for (size_t i = 0; i < n; i++)
		if (km_str_eqc(k, t[i].kuma))
			return t[i].envoy;
	return "";
}

/* A status code Go's http.StatusText knows (100-599 registered codes). */
static bool http_status(struct km_str s, long long *code)
{
	static const int known[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208,
				    226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
				    404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
				    417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500,
				    501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
	if (km_str_to_i64(s, code))
		return false;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] == *code)
			return true;
	return false;
}

static void join(struct km_buf *b, const char *s)
{
	if (b->len)
		km_buf_putc(b, ',');
	km_buf_puts(b, s);
}

static struct km_json *str_of(struct km_arena *a, struct km_buf *b)
{
	struct km_json *v = km_json_string(a, (struct km_str){b->data ? b->data : "", b->len});
	km_buf_fini(b);
	return v;
}

static struct km_json *header_matcher(struct km_arena *a, const struct km_json *h)
{
	struct km_str name = km_json_get_string(h, "name"), value = km_json_get_string(h, "value");
	struct km_str type = km_json_get_string(h, "type");
	if (!type.len)
		type = KM_STR("Exact");
	struct km_json *m = km_json_fmt(a, "{\"name\":%S}", &name);
	if (km_str_eqc(type, "RegularExpression"))
		km_json_set(a, m, "stringMatch",
			    km_json_fmt(a, "{\"safeRegex\":{\"regex\":%S}}", &value));
	else if (km_str_eqc(type, "Prefix"))
		km_json_set(a, m, "stringMatch", km_json_fmt(a, "{\"prefix\":%S}", &value));
	else if (km_str_eqc(type, "Exact"))
		km_json_set(a, m, "stringMatch", km_json_fmt(a, "{\"exact\":%S}", &value));
	else if (km_str_eqc(type, "Present"))
		km_json_set(a, m, "presentMatch", km_json_bool(a, true));
	return m;
}

/* The durations of the conf (tags 16-23): each written as it is into the
 * route's retry policy, deciding nothing (a field's presence does, as
 * gRPC's default base interval). */
const struct cp_policy_conf_var cp_policy_meshretry_conf_vars[] = {
    {"http.perTryTimeout", 16},
    {"http.backOff.baseInterval", 17},
    {"http.backOff.maxInterval", 18},
    {"http.rateLimitedBackOff.maxInterval", 19},
    {"grpc.perTryTimeout", 20},
    {"grpc.backOff.baseInterval", 21},
    {"grpc.backOff.maxInterval", 22},
    {"grpc.rateLimitedBackOff.maxInterval", 23},
    {NULL, 0},
};

/* <conf>'s duration at <path> (below http or grpc, <grpc>), tagged as
 * cp_policy_meshretry_conf_vars says. */
static struct km_json *dur(struct km_arena *a, const struct km_json *conf, const char *path, bool grpc)
{
	return cp_policy_conf_duration(a, conf, path, cp_policy_meshretry_conf_vars, grpc ? "grpc." : "http.");
}

static void common_fields(struct km_arena *a, struct km_json *policy, const struct km_json *conf,
			  bool grpc)
{
	struct km_json *ptt = dur(a, conf, "perTryTimeout", grpc);
	if (ptt)
		km_json_set(a, policy, "perTryTimeout", ptt);
	struct km_json *n = km_json_get(conf, "numRetries");
	if (n)
		km_json_set(a, policy, "numRetries", km_json_clone(a, n));
	struct km_json *bo = km_json_get(conf, "backOff");
	if (bo) {
		struct km_json *rb = km_json_object(a);
		struct km_json *base = dur(a, conf, "backOff.baseInterval", grpc);
		if (!base && grpc)
			base = km_json_cstring(a, "0.025s");
		if (base)
			km_json_set(a, rb, "baseInterval", base);
		struct km_json *max = dur(a, conf, "backOff.maxInterval", grpc);
		if (max)
			km_json_set(a, rb, "maxInterval", max);
		km_json_set(a, policy, "retryBackOff", rb);
	}
	struct km_json *rl = km_json_get(conf, "rateLimitedBackOff");
	if (rl) {
		struct km_json *out = km_json_fmt(a, "{\"resetHeaders\":[]}");
		struct km_json *hs = km_json_get(rl, "resetHeaders");
		for (size_t i = 0; hs && hs->kind == KM_JSON_ARRAY && i < hs->len; i++) {
			struct km_str hn = km_json_get_string(hs->items[i], "name");
			struct km_json *h = km_json_fmt(a, "{\"name\":%S}", &hn);
			if (km_str_eqc(km_json_get_string(hs->items[i], "format"), "UnixTimestamp"))
				km_json_set(a, h, "format", km_json_cstring(a, "UNIX_TIMESTAMP"));
			km_json_array_push(a, km_json_get(out, "resetHeaders"), h);
		}
		struct km_json *max = dur(a, conf, "rateLimitedBackOff.maxInterval", grpc);
		if (max)
			km_json_set(a, out, "maxInterval", max);
		km_json_set(a, policy, "rateLimitedRetryBackOff", out);
	}
}

static bool zero_retries(const struct km_json *conf)
{
	struct km_json *n = km_json_get(conf, "numRetries");
	return n && n->kind == KM_JSON_NUMBER && n->is_int && n->i == 0;
}

static struct km_json *http_policy(struct km_arena *a, const struct km_json *conf)
{
	if (!conf || zero_retries(conf))
		return NULL;
	struct km_json *p = km_json_fmt(a, "{\"retryOn\":\"" HTTP_RETRY_ON_DEFAULT "\"}");
	common_fields(a, p, conf, false);
	struct km_buf on = KM_BUF_INIT;
	struct km_json *codes = km_json_array(a), *req = km_json_array(a), *resp = km_json_array(a);
	struct km_json *ro = km_json_get(conf, "retryOn");
	for (size_t i = 0; ro && ro->kind == KM_JSON_ARRAY && i < ro->len; i++) {
		if (ro->items[i]->kind != KM_JSON_STRING)
			continue;
		struct km_str k = ro->items[i]->s;
		long long code;
		if (http_status(k, &code)) {
			km_json_array_push(a, codes, km_json_int(a, code));
		} else if (km_str_has_prefix(k, "HttpMethod")) {
			const char *method = lookup(
				http_retry_on, sizeof(http_retry_on) / sizeof(http_retry_on[0]), k);
			km_json_array_push(
				a, req,
				km_json_fmt(a,
					    "{\"name\":\":method\",\"stringMatch\":{\"exact\":%s}}",
					    method));
		} else {
			join(&on, lookup(http_retry_on,
					 sizeof(http_retry_on) / sizeof(http_retry_on[0]), k));
		}
	}
	if (on.len)
		km_json_set(a, p, "retryOn", str_of(a, &on));
	else
		km_buf_fini(&on);
	if (codes->len) {
		km_json_set(a, p, "retriableStatusCodes", codes);
		struct km_str cur = km_json_get_string(p, "retryOn");
		bool seen = false;
		for (size_t s = 0, i = 0; i <= cur.len; i++)
			if (i == cur.len || cur.ptr[i] == ',') {
				if (km_str_eqc((struct km_str){cur.ptr + s, i - s},
					       "retriable-status-codes"))
					seen = true;
				s = i + 1;
			}
		if (!seen)
			km_json_set(
				a, p, "retryOn",
				km_json_cstring(a, km_arena_printf(a, "%.*s,retriable-status-codes",
								   KM_STR_FMT(cur))));
	}
	struct km_json *rq = km_json_get(conf, "retriableRequestHeaders");
	for (size_t i = 0; rq && rq->kind == KM_JSON_ARRAY && i < rq->len; i++)
		km_json_array_push(a, req, header_matcher(a, rq->items[i]));
	if (req->len)
		km_json_set(a, p, "retriableRequestHeaders", req);
	struct km_json *rs = km_json_get(conf, "retriableResponseHeaders");
	for (size_t i = 0; rs && rs->kind == KM_JSON_ARRAY && i < rs->len; i++)
		km_json_array_push(a, resp, header_matcher(a, rs->items[i]));
	if (resp->len)
		km_json_set(a, p, "retriableHeaders", resp);
	struct km_json *hsel = km_json_get(conf, "hostSelection");
	struct km_json *preds = km_json_array(a);
	for (size_t i = 0; hsel && hsel->kind == KM_JSON_ARRAY && i < hsel->len; i++) {
		struct km_str t = km_json_get_string(hsel->items[i], "predicate");
		if (km_str_eqc(t, "OmitPreviousHosts")) {
			km_json_array_push(
				a, preds,
				km_json_fmt(
					a,
					"{\"name\":\"envoy.retry_host_predicates.previous_hosts\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate\"}}"));
		} else if (km_str_eqc(t, "OmitHostsWithTags")) {
			struct km_json *tags = km_json_get(hsel->items[i], "tags");
			km_json_array_push(
				a, preds,
				km_json_fmt(
					a,
					"{\"name\":\"envoy.retry_host_predicates.omit_host_metadata\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.retry.host.omit_host_metadata.v3.OmitHostMetadataConfig\","
					"\"metadataMatch\":{\"filterMetadata\":{\"envoy.lb\":%J}}}}",
					tags ? km_json_clone(a, tags) : km_json_object(a)));
		} else if (km_str_eqc(t, "OmitPreviousPriorities")) {
			struct km_json *uf = km_json_get(hsel->items[i], "updateFrequency");
			struct km_json *cfg = km_json_fmt(
				a,
				"{\"@type\":\"type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3."
				"PreviousPrioritiesConfig\"}");
			if (uf && !(uf->kind == KM_JSON_NUMBER && uf->is_int && uf->i == 0))
				km_json_set(a, cfg, "updateFrequency", km_json_clone(a, uf));
			km_json_set(
				a, p, "retryPriority",
				km_json_fmt(
					a,
					"{\"name\":\"envoy.retry_priorities.previous_priorities\",\"typedConfig\":%J}",
					cfg));
		}
	}
	if (preds->len)
		km_json_set(a, p, "retryHostPredicate", preds);
	struct km_json *hsma = km_json_get(conf, "hostSelectionMaxAttempts");
	if (hsma && !(hsma->kind == KM_JSON_NUMBER && hsma->is_int && hsma->i == 0))
		km_json_set(a, p, "hostSelectionRetryMaxAttempts",
			    km_json_cstring(a, km_arena_printf(a, "%lld",
							       (long long)km_json_i64_sat(hsma))));
	return p;
}

static struct km_json *grpc_policy(struct km_arena *a, const struct km_json *conf)
{
	if (!conf || zero_retries(conf))
		return NULL;
	struct km_json *p = km_json_fmt(a, "{\"retryOn\":\"" GRPC_RETRY_ON_DEFAULT "\"}");
	common_fields(a, p, conf, true);
	struct km_buf on = KM_BUF_INIT;
	struct km_json *ro = km_json_get(conf, "retryOn");
	for (size_t i = 0; ro && ro->kind == KM_JSON_ARRAY && i < ro->len; i++)
		if (ro->items[i]->kind == KM_JSON_STRING)
			join(&on,
			     lookup(grpc_retry_on, sizeof(grpc_retry_on) / sizeof(grpc_retry_on[0]),
				    ro->items[i]->s));
	if (on.len)
		km_json_set(a, p, "retryOn", str_of(a, &on));
	else
		km_buf_fini(&on);
	return p;
}

/* The retry policy of <conf> for <proto> (http, grpc), or NULL. */
static struct km_json *route_policy(struct km_arena *a, const struct km_json *conf, struct km_str proto)
{
	return km_str_eqc(proto, "http") ? http_policy(a, km_json_get(conf, "http")) :
	       km_str_eqc(proto, "grpc") ? grpc_policy(a, km_json_get(conf, "grpc")) :
					   NULL;
}

/* <conf> NULL: only the routes with a rule of their own (<mp>'s). */
static void configure_listener(struct km_arena *a, struct km_json *l, const struct km_json *conf,
			       struct km_str proto, const struct cp_policy_matched *mp)
{
	struct km_json *chains = km_json_get(l, "filterChains");
	if (!chains || chains->kind != KM_JSON_ARRAY || !chains->len)
		return;
	/* upstream configures the first filter chain only */
	struct km_json *filters = km_json_get(chains->items[0], "filters");
	struct km_json *tcp = cp_policy_conf_get(conf, "tcp.maxConnectAttempt");
	for (size_t f = 0; filters && filters->kind == KM_JSON_ARRAY && f < filters->len; f++) {
		struct km_str name = km_json_get_string(filters->items[f], "name");
		struct km_json *tc = km_json_get(filters->items[f], "typedConfig");
		if (km_str_eqc(proto, "tcp")) {
			if (tcp && km_str_eqc(name, "envoy.filters.network.tcp_proxy"))
				km_json_set(a, tc, "maxConnectAttempts", km_json_clone(a, tcp));
			continue;
		}
		if (!km_str_eqc(name, "envoy.filters.network.http_connection_manager"))
			continue;
		struct km_json *policy = conf ? route_policy(a, conf, proto) : NULL;
		struct km_json *vhs = km_json_get(km_json_get(tc, "routeConfig"), "virtualHosts");
		for (size_t v = 0; vhs && vhs->kind == KM_JSON_ARRAY && v < vhs->len; v++) {
			struct km_json *routes = km_json_get(vhs->items[v], "routes");
			for (size_t r = 0;
			     routes && routes->kind == KM_JSON_ARRAY && r < routes->len; r++) {
				struct km_json *action = km_json_get(routes->items[r], "route");
				if (!action || action->kind != KM_JSON_OBJECT)
					continue;
				/* a route's own rule replaces its destination's */
				const struct cp_policy_to_rule *rr =
					cp_policy_route_lookup(mp, km_json_get_string(routes->items[r], "name"));
				struct km_json *p = rr ? route_policy(a, rr->conf, proto) : policy;
				if (p)
					km_json_set(a, action, "retryPolicy", km_json_clone(a, p));
			}
		}
	}
}

void cp_policy_meshretry_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	bool routes = mp->nto && cp_policy_has_route_rules(mp);
	for (size_t i = 0; mp->nto && listeners && i < listeners->len; i++) {
		struct km_str key = listeners->members[i].key;
		const char *name = km_arena_strndup(c->a, key.ptr, key.len);
		if (strncmp(name, "kri_", 4) != 0)
			continue;
		const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, name);
		if (r || routes)
			configure_listener(c->a, listeners->members[i].val, r ? r->conf : NULL,
					   cp_policy_outbound_protocol(c->a, c->m, key), mp);
	}
}
