/* SPDX-License-Identifier: Apache-2.0 */
/* MeshHealthCheck: active health checks on outbound clusters. The merged
 * `to` conf of a destination adds one health check to its cluster: HTTP on
 * an http/http2 destination, gRPC on a grpc one, TCP on a tcp one, and TCP
 * on an HTTP or gRPC destination whose own checker is disabled while TCP is
 * not; upstream's defaults (interval 1m, timeout 15s, unhealthy after 5,
 * healthy after 1, path /). The HTTP check carries the proxy's labels in
 * x-kuma-tags, as upstream sends its tags. failTrafficOnPanic goes into the
 * cluster's zone-aware load balancing config. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

static bool disabled(const struct km_json *v)
{
	const struct km_json *d = km_json_get(v, "disabled");
	return d && d->kind == KM_JSON_BOOL && d->b;
}

static bool on(const struct km_json *v)
{
	return v && !disabled(v);
}

/* The checker for <proto>: "http", "grpc", "tcp" or NULL. */
static const char *checker(struct km_str proto, const struct km_json *conf)
{
	const struct km_json *tcp = km_json_get(conf, "tcp"), *http = km_json_get(conf, "http"),
			     *grpc = km_json_get(conf, "grpc");
	bool is_http = km_str_eqc(proto, "http") || km_str_eqc(proto, "http2");
	bool is_grpc = km_str_eqc(proto, "grpc");
	if (is_http && on(http))
		return "http";
	if (is_grpc && on(grpc))
		return "grpc";
	if (km_str_eqc(proto, "tcp") && on(tcp))
		return "tcp";
	if (((is_http && http && disabled(http)) || (is_grpc && grpc && disabled(grpc))) && on(tcp))
		return "tcp";
	return NULL;
}

static void set_duration(struct km_arena *a, struct km_json *o, const char *key, const struct km_json *v,
			 const char *dflt)
{
	struct km_json *d = cp_policy_duration(a, v);
	if (d)
		km_json_set(a, o, key, d);
	else if (dflt)
		km_json_set(a, o, key, km_json_cstring(a, dflt));
}

static void set_bool(struct km_arena *a, struct km_json *o, const char *key, const struct km_json *v)
{
	if (v && v->kind == KM_JSON_BOOL)
		km_json_set(a, o, key, km_json_bool(a, v->b));
}

/* <s> as lowercase hex (TCP payloads are given as text). */
static struct km_json *hex(struct km_arena *a, struct km_str s)
{
	char *out = km_arena_alloc(a, s.len * 2 + 1);
	for (size_t i = 0; i < s.len; i++)
		snprintf(out + 2 * i, 3, "%02x", (unsigned char)s.ptr[i]);
	out[s.len * 2] = 0;
	return km_json_fmt(a, "{\"text\":%s}", out);
}

static int cmp_members(const void *x, const void *y)
{
	return km_str_cmp(((const struct km_json_member *)x)->key, ((const struct km_json_member *)y)->key);
}

/* The proxy's labels as upstream serializes tags: &key=value& per key, by key. */
static char *tags_header(struct km_arena *a, const struct km_json *labels)
{
	size_t n = labels && labels->kind == KM_JSON_OBJECT ? labels->len : 0;
	struct km_json_member *m = km_arena_alloc(a, (n + 1) * sizeof(*m));
	if (n)
		memcpy(m, labels->members, n * sizeof(*m));
	qsort(m, n, sizeof(*m), cmp_members);
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		if (m[i].val->kind == KM_JSON_STRING)
			km_buf_printf(&b, "&%.*s=%.*s&", KM_STR_FMT(m[i].key), KM_STR_FMT(m[i].val->s));
	char *out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	km_buf_fini(&b);
	return out;
}

static void add_headers(struct km_arena *a, struct km_json *out, const struct km_json *list, const char *action)
{
	for (size_t i = 0; list && list->kind == KM_JSON_ARRAY && i < list->len; i++) {
		struct km_str n = km_json_get_string(list->items[i], "name"), v = km_json_get_string(list->items[i], "value");
		for (size_t at = 0; at <= v.len;) { /* one header per comma-separated value */
			const char *comma = memchr(v.ptr + at, ',', v.len - at);
			struct km_str part = {v.ptr + at, comma ? (size_t)(comma - v.ptr) - at : v.len - at};
			km_json_array_push(a, out,
					   km_json_fmt(a, "{\"header\":{\"key\":%S,\"value\":%S},\"appendAction\":%s}", &n,
						       &part, action));
			at += part.len + 1;
		}
	}
}

static struct km_json *health_check(struct km_arena *a, const struct km_json *conf, const char *kind, struct km_str proto,
				    const struct km_json *labels)
{
	struct km_json *hc = km_json_object(a);
	set_duration(a, hc, "timeout", km_json_get(conf, "timeout"), "15s");
	set_duration(a, hc, "interval", km_json_get(conf, "interval"), "60s");
	const struct km_json *ut = km_json_get(conf, "unhealthyThreshold"), *ht = km_json_get(conf, "healthyThreshold");
	km_json_set(a, hc, "unhealthyThreshold", km_json_int(a, ut ? km_json_i64_sat(ut) : 5));
	km_json_set(a, hc, "healthyThreshold", km_json_int(a, ht ? km_json_i64_sat(ht) : 1));
	set_duration(a, hc, "initialJitter", km_json_get(conf, "initialJitter"), NULL);
	set_duration(a, hc, "intervalJitter", km_json_get(conf, "intervalJitter"), NULL);
	const struct km_json *ijp = km_json_get(conf, "intervalJitterPercent");
	if (ijp && km_json_i64_sat(ijp))
		km_json_set(a, hc, "intervalJitterPercent", km_json_int(a, km_json_i64_sat(ijp)));
	set_duration(a, hc, "noTrafficInterval", km_json_get(conf, "noTrafficInterval"), NULL);
	set_bool(a, hc, "reuseConnection", km_json_get(conf, "reuseConnection"));
	const struct km_json *always = km_json_get(conf, "alwaysLogHealthCheckFailures");
	if (always && always->kind == KM_JSON_BOOL && always->b)
		km_json_set(a, hc, "alwaysLogHealthCheckFailures", km_json_bool(a, true));
	struct km_str path = km_json_get_string(conf, "eventLogPath");
	if (path.len)
		km_json_set(a, hc, "eventLogger",
			    km_json_fmt(a,
					"[{\"name\":\"envoy.health_check.event_sinks.file\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.health_check.event_sinks.file.v3."
					"HealthCheckEventFileSink\",\"eventLogPath\":%S}}]",
					&path));
	if (strcmp(kind, "tcp") == 0) {
		const struct km_json *tcp = km_json_get(conf, "tcp");
		struct km_json *t = km_json_object(a);
		const struct km_json *send = km_json_get(tcp, "send");
		if (send && send->kind == KM_JSON_STRING)
			km_json_set(a, t, "send", hex(a, send->s));
		const struct km_json *recv = km_json_get(tcp, "receive");
		if (recv && recv->kind == KM_JSON_ARRAY) {
			struct km_json *r = km_json_array(a);
			for (size_t i = 0; i < recv->len; i++)
				if (recv->items[i]->kind == KM_JSON_STRING)
					km_json_array_push(a, r, hex(a, recv->items[i]->s));
			km_json_set(a, t, "receive", r);
		}
		km_json_set(a, hc, "tcpHealthCheck", t);
	} else if (strcmp(kind, "grpc") == 0) {
		const struct km_json *grpc = km_json_get(conf, "grpc");
		struct km_json *g = km_json_object(a);
		struct km_str sn = km_json_get_string(grpc, "serviceName"), au = km_json_get_string(grpc, "authority");
		if (sn.len)
			km_json_set(a, g, "serviceName", km_json_string(a, sn));
		if (au.len)
			km_json_set(a, g, "authority", km_json_string(a, au));
		km_json_set(a, hc, "grpcHealthCheck", g);
	} else {
		const struct km_json *http = km_json_get(conf, "http");
		struct km_str p = km_json_get_string(http, "path");
		struct km_json *h = km_json_fmt(a, "{\"path\":%S}", p.len ? &p : &(struct km_str){"/", 1});
		struct km_json *headers = km_json_array(a);
		char *tags = tags_header(a, labels);
		if (*tags)
			km_json_array_push(a, headers, km_json_fmt(a, "{\"header\":{\"key\":\"x-kuma-tags\",\"value\":%s}}", tags));
		const struct km_json *mod = km_json_get(http, "requestHeadersToAdd");
		add_headers(a, headers, km_json_get(mod, "add"), "APPEND_IF_EXISTS_OR_ADD");
		add_headers(a, headers, km_json_get(mod, "set"), "OVERWRITE_IF_EXISTS_OR_ADD");
		if (headers->len)
			km_json_set(a, h, "requestHeadersToAdd", headers);
		const struct km_json *st = km_json_get(http, "expectedStatuses");
		if (st && st->kind == KM_JSON_ARRAY && st->len) {
			struct km_json *ranges = km_json_array(a);
			for (size_t i = 0; i < st->len; i++) {
				int64_t s = km_json_i64_sat(st->items[i]);
				/* int64 in protobuf JSON: strings */
				km_json_array_push(a, ranges,
						   km_json_fmt(a, "{\"start\":%s,\"end\":%s}", km_arena_printf(a, "%lld", (long long)s),
							       km_arena_printf(a, "%lld", (long long)s + 1)));
			}
			km_json_set(a, h, "expectedStatuses", ranges);
		}
		if (km_str_eqc(proto, "http2"))
			km_json_set(a, h, "codecClientType", km_json_cstring(a, "HTTP2"));
		km_json_set(a, hc, "httpHealthCheck", h);
	}
	return hc;
}

static void configure_cluster(struct km_arena *a, struct km_json *cl, const struct km_json *conf, struct km_str proto,
			      const struct km_json *labels)
{
	const struct km_json *panic = km_json_get(conf, "failTrafficOnPanic");
	if (panic && panic->kind == KM_JSON_BOOL) {
		struct km_json *common = cp_policy_obj(a, cl, "commonLbConfig");
		/* locality-weighted balancing has no such setting (upstream
		 * ignores it there too) */
		if (!km_json_get(common, "localityWeightedLbConfig"))
			km_json_set(a, cp_policy_obj(a, common, "zoneAwareLbConfig"), "failTrafficOnPanic",
				    km_json_bool(a, panic->b));
	}
	const char *kind = checker(proto, conf);
	if (!kind)
		return;
	struct km_json *hcs = km_json_get(cl, "healthChecks");
	if (!hcs || hcs->kind != KM_JSON_ARRAY) {
		hcs = km_json_array(a);
		km_json_set(a, cl, "healthChecks", hcs);
	}
	km_json_array_push(a, hcs, health_check(a, conf, kind, proto, labels));
}

void cp_policy_meshhealthcheck_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_json *clusters = c->rs->by_type[CP_XDS_CLUSTER];
	for (size_t i = 0; mp->nto && clusters && i < clusters->len; i++) {
		struct km_str key = clusters->members[i].key;
		if (!km_str_has_prefix(key, "kri_msvc_"))
			continue;
		const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, km_arena_strndup(c->a, key.ptr, key.len));
		if (r)
			configure_cluster(c->a, clusters->members[i].val, r->conf,
					  cp_policy_outbound_protocol(c->a, c->m, key), c->dp->labels);
	}
}

void cp_policy_meshhealthcheck_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
				   struct km_buf *key)
{
	/* an HTTP check sends the proxy's labels */
	if (r && km_json_get(r->conf, "http")) {
		km_buf_add(key, "|l", 2);
		km_buf_add(key, &pp->c.dp->labels_fp, sizeof(pp->c.dp->labels_fp));
	}
}
