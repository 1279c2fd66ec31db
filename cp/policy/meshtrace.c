/* SPDX-License-Identifier: Apache-2.0 */
/* MeshTrace: tracing in every HTTP connection manager of the proxy's
 * inbounds and MeshService outbounds, from the merged proxy-wide conf
 * (spec.default of the policies selecting it): sampling, custom tags (the
 * conf's, then kuma.mesh, kuma.zone and kuma.workload unless the conf names
 * them) and the first backend's provider, plus a cluster for its collector
 * (system_meshtrace_<kind>_<the URL cleaned as upstream cleans names>).
 * Zipkin, Datadog and OpenTelemetry backends are built; an OpenTelemetry
 * backend's backendRef names a MeshOpenTelemetryBackend by labels (the
 * oldest match wins, as upstream) and Envoy exports to it directly, over
 * gRPC (cluster with HTTP/2) or OTLP/HTTP (POST <path>/v1/traces); a
 * reference that matches nothing means no tracing, as upstream. */
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

struct url {
	struct km_str scheme, authority, host, path; /* authority: host[:port] as written */
	uint32_t port;
};

/* scheme://host[:port][/path]; false when it is not that. */
static bool parse_url(struct km_str s, struct url *u)
{
	const char *sep = s.len >= 3 ? memmem(s.ptr, s.len, "://", 3) : NULL;
	if (!sep)
		return false;
	u->scheme = (struct km_str){s.ptr, (size_t)(sep - s.ptr)};
	const char *h = sep + 3, *end = s.ptr + s.len;
	const char *slash = memchr(h, '/', (size_t)(end - h));
	const char *hp_end = slash ? slash : end;
	u->path = slash ? (struct km_str){slash, (size_t)(end - slash)} : KM_STR("");
	u->authority = (struct km_str){h, (size_t)(hp_end - h)};
	const char *colon = memrchr(h, ':', (size_t)(hp_end - h));
	u->host = (struct km_str){h, (size_t)((colon ? colon : hp_end) - h)};
	u->port = km_str_eqc(u->scheme, "https") ? 443 : 80;
	if (colon) {
		char buf[8];
		size_t n = (size_t)(hp_end - colon - 1);
		if (!n || n >= sizeof(buf))
			return false;
		memcpy(buf, colon + 1, n);
		buf[n] = 0;
		char *e;
		long p = strtol(buf, &e, 10);
		if (*e || p <= 0 || p > 65535)
			return false;
		u->port = (uint32_t)p;
	}
	return u->host.len > 0;
}

/* Upstream's CleanName: the runs of [a-z0-9-_] joined with '-', where
 * every character outside them past the first of a gap counts as an empty
 * run (Go's FindAllString of ([a-z0-9-]*_?)+). */
char *cp_policy_clean_name(struct km_arena *a, struct km_str s)
{
	struct km_buf b = KM_BUF_INIT;
	bool first = true, prev_nonempty = false;
	size_t i = 0;
	while (i <= s.len) {
		size_t j = i;
		while (j < s.len && ((s.ptr[j] >= 'a' && s.ptr[j] <= 'z') || (s.ptr[j] >= '0' && s.ptr[j] <= '9') ||
				     s.ptr[j] == '-' || s.ptr[j] == '_'))
			j++;
		bool empty = j == i;
		/* an empty match right after a match is dropped */
		if (!(empty && prev_nonempty)) {
			if (!first)
				km_buf_putc(&b, '-');
			km_buf_add(&b, s.ptr + i, j - i);
			first = false;
		}
		prev_nonempty = !empty;
		i = empty ? i + 1 : j;
		if (!empty && i == s.len)
			break; /* the empty match at the end abuts this one */
	}
	char *out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	km_buf_fini(&b);
	return out;
}

/* Collector of the conf's first backend: cluster name, URL, kind. */
struct collector {
	const char *cluster;
	const char *kind; /* "zipkin", "datadog", "otel" */
	const struct km_json *backend;
	struct url url;
	bool otel_http;       /* OpenTelemetry over OTLP/HTTP (else gRPC) */
	const char *otel_uri; /* OTLP/HTTP: where traces are POSTed */
};

/* The MeshOpenTelemetryBackend a backendRef names by labels: the oldest
 * of those carrying every label; NULL when none (or not by labels). */
static const struct cp_policy *motb_of(const struct cp_xds_mesh *m, const struct km_json *ref)
{
	const struct km_json *labels = km_json_get(ref, "labels");
	if (!km_str_eqc(km_json_get_string(ref, "kind"), "MeshOpenTelemetryBackend") || !labels ||
	    labels->kind != KM_JSON_OBJECT || !labels->len)
		return NULL;
	const struct cp_policy *best = NULL;
	for (size_t i = 0; m && i < m->npolicies; i++) {
		const struct cp_policy *p = &m->policies[i];
		if (strcmp(p->type->name, "MeshOpenTelemetryBackend") != 0)
			continue;
		bool all = true;
		for (size_t k = 0; all && k < labels->len; k++) {
			const struct km_json *v = km_json_get_str(p->labels, labels->members[k].key);
			all = v && v->kind == KM_JSON_STRING && labels->members[k].val->kind == KM_JSON_STRING &&
			      km_str_eq(v->s, labels->members[k].val->s);
		}
		if (all && (!best || p->ctime < best->ctime))
			best = p;
	}
	return best;
}

/* An OpenTelemetry backend resolved to its collector. */
static bool otel_collector(struct km_arena *a, const struct cp_xds_mesh *m, const struct km_json *be,
			   struct km_str host_ip, struct collector *out)
{
	const struct cp_policy *motb = motb_of(m, km_json_get(be, "backendRef"));
	if (!motb)
		return false;
	const struct km_json *ep = km_json_get(motb->spec, "endpoint");
	struct km_str addr = km_json_get_string(ep, "address"), base = km_json_get_string(ep, "path");
	const struct km_json *port = km_json_get(ep, "port");
	int64_t p = port && port->kind == KM_JSON_NUMBER ? km_json_i64_sat(port) : 4317;
	out->url = (struct url){.scheme = KM_STR("grpc"),
				/* no address: the node's (kuma-dp's $HOST_IP), else this host */
				.host = addr.len ? addr : host_ip.len ? host_ip : KM_STR("127.0.0.1"),
				.port = (uint32_t)p};
	out->url.authority = out->url.host;
	out->otel_http = km_str_eqc(km_json_get_string(motb->spec, "protocol"), "http");
	if (out->otel_http) {
		bool https = p == 443;
		out->url.scheme = https ? KM_STR("https") : KM_STR("http");
		/* path.Join(base or "/", "v1/traces") */
		while (base.len && base.ptr[base.len - 1] == '/')
			base.len--;
		bool v6 = memchr(out->url.host.ptr, ':', out->url.host.len) != NULL;
		out->otel_uri = km_arena_printf(a, "%s://%s%.*s%s:%lld%s%.*s/v1/traces", https ? "https" : "http",
						v6 ? "[" : "", KM_STR_FMT(out->url.host), v6 ? "]" : "", (long long)p,
						base.len && base.ptr[0] != '/' ? "/" : "", KM_STR_FMT(base));
	}
	out->kind = "otel";
	out->backend = be;
	out->cluster = km_arena_printf(a, "system_meshtrace_otel_%s", cp_policy_clean_name(a, motb->display));
	return true;
}

static bool collector_of(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_metadata *md,
			 const struct km_json *conf, struct collector *out)
{
	*out = (struct collector){0};
	const struct km_json *backends = km_json_get(conf, "backends");
	if (!backends || backends->kind != KM_JSON_ARRAY || !backends->len)
		return false;
	const struct km_json *b = backends->items[0];
	const struct km_json *otel = km_json_get(b, "openTelemetry");
	if (otel && otel->kind == KM_JSON_OBJECT)
		return otel_collector(a, m, otel, md ? md->host_ip : KM_STR(""), out);
	static const char *const kinds[] = {"zipkin", "datadog"};
	for (size_t k = 0; k < 2; k++) {
		const struct km_json *be = km_json_get(b, kinds[k]);
		struct km_str url = km_json_get_string(be, "url");
		if (!be || !parse_url(url, &out->url))
			continue;
		out->kind = kinds[k];
		out->backend = be;
		out->cluster = km_arena_printf(a, "system_meshtrace_%s_%s", kinds[k], cp_policy_clean_name(a, url));
		return true;
	}
	return false;
}

static bool is_ip(struct km_str host)
{
	for (size_t i = 0; i < host.len; i++)
		if (!((host.ptr[i] >= '0' && host.ptr[i] <= '9') || host.ptr[i] == '.' || host.ptr[i] == ':' ||
		      (host.ptr[i] >= 'a' && host.ptr[i] <= 'f') || host.ptr[i] == '[' || host.ptr[i] == ']'))
			return false;
	return memchr(host.ptr, '.', host.len) || memchr(host.ptr, ':', host.len);
}

static struct km_json *collector_cluster(struct km_arena *a, const struct collector *col)
{
	struct km_json *cl = km_json_fmt(
	    a,
	    "{\"name\":%s,\"connectTimeout\":\"5s\",\"loadAssignment\":{\"clusterName\":%s,\"endpoints\":[{\"lbEndpoints\":"
	    "[{\"endpoint\":{\"address\":{\"socketAddress\":{\"address\":%S,\"portValue\":%u}}}}]}]}}",
	    col->cluster, col->cluster, &col->url.host, col->url.port);
	if (is_ip(col->url.host)) {
		km_json_set(a, cl, "type", km_json_cstring(a, "STATIC"));
	} else {
		km_json_set(a, cl, "type", km_json_cstring(a, "STRICT_DNS"));
		km_json_set(a, cl, "dnsLookupFamily", km_json_cstring(a, "V4_ONLY"));
	}
	if (col->kind && strcmp(col->kind, "otel") == 0 && !col->otel_http)
		km_json_set(a, cl, "typedExtensionProtocolOptions",
			    km_json_fmt(a, "{\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\":{\"@type\":"
					   "\"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\","
					   "\"explicitHttpConfig\":{\"http2ProtocolOptions\":{}}}}"));
	if (km_str_eqc(col->url.scheme, "https"))
		km_json_set(a, cl, "transportSocket",
			    km_json_fmt(a,
					"{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
					"\"allowRenegotiation\":true,\"sni\":%S}}",
					&col->url.host));
	return cl;
}

/* A sampling percentage (a number or a decimal string), or NULL. */
static struct km_json *percent(struct km_arena *a, const struct km_json *v)
{
	double d;
	return cp_policy_decimal(a, v, &d) ? km_json_fmt(a, "{\"value\":%T}", km_json_double(a, d)) : NULL;
}

/* What a proxy's tracing says of it. */
struct who {
	struct km_str service, mesh, zone;
	const char *workload; /* its Workload's kri, or NULL */
};

static void who_of(const struct cp_policy_apply_ctx *c, struct who *w)
{
	struct km_str wl = km_json_get_string(c->dp->labels, "kuma.io/workload");
	w->service = wl.len ? wl : KM_STR("unknown");
	w->mesh = c->dp->res.mesh;
	w->zone = km_str_c(c->m->zone ? c->m->zone : "");
	w->workload = wl.len ? km_arena_printf(c->a, "kri_wl_%.*s_%.*s_%.*s_%.*s_", KM_STR_FMT(w->mesh), KM_STR_FMT(w->zone),
					       KM_STR_FMT(km_json_get_string(c->dp->labels, "k8s.kuma.io/namespace")),
					       KM_STR_FMT(wl))
			     : NULL;
}

static bool has_tag(const struct km_json *tags, const char *name)
{
	for (size_t i = 0; i < tags->len; i++)
		if (km_str_eqc(km_json_get_string(tags->items[i], "tag"), name))
			return true;
	return false;
}

/* The HCM tracing object for a listener of <direction> to <dest>. */
static struct km_json *tracing(struct km_arena *a, const struct km_json *conf, const struct collector *col,
			       const struct who *w, const char *direction, const char *dest)
{
	struct km_json *t = km_json_fmt(a, "{\"spawnUpstreamSpan\":false}");
	const struct km_json *sampling = km_json_get(conf, "sampling");
	static const char *const samplings[][2] = {
	    {"overall", "overallSampling"}, {"client", "clientSampling"}, {"random", "randomSampling"}};
	for (size_t i = 0; i < 3; i++) {
		struct km_json *p = percent(a, km_json_get(sampling, samplings[i][0]));
		if (p)
			km_json_set(a, t, samplings[i][1], p);
	}
	struct km_json *tags = km_json_array(a);
	const struct km_json *ctags = km_json_get(conf, "tags");
	for (size_t i = 0; ctags && ctags->kind == KM_JSON_ARRAY && i < ctags->len; i++) {
		struct km_str name = km_json_get_string(ctags->items[i], "name");
		const struct km_json *hdr = km_json_get(ctags->items[i], "header");
		if (hdr) {
			struct km_str hn = km_json_get_string(hdr, "name"), dv = km_json_get_string(hdr, "default");
			struct km_json *rh = km_json_fmt(a, "{\"name\":%S}", &hn);
			if (dv.len)
				km_json_set(a, rh, "defaultValue", km_json_string(a, dv));
			km_json_array_push(a, tags, km_json_fmt(a, "{\"tag\":%S,\"requestHeader\":%T}", &name, rh));
		} else {
			struct km_str lit = km_json_get_string(ctags->items[i], "literal");
			km_json_array_push(a, tags, km_json_fmt(a, "{\"tag\":%S,\"literal\":{\"value\":%S}}", &name, &lit));
		}
	}
	const struct {
		const char *tag;
		struct km_str val;
	} kuma[] = {{"kuma.mesh", w->mesh}, {"kuma.zone", w->zone}, {"kuma.workload", km_str_c(w->workload ? w->workload : "")}};
	for (size_t i = 0; i < 3; i++)
		if (kuma[i].val.len && !has_tag(tags, kuma[i].tag))
			km_json_array_push(a, tags,
					   km_json_fmt(a, "{\"tag\":%s,\"literal\":{\"value\":%S}}", kuma[i].tag, &kuma[i].val));
	if (tags->len)
		km_json_set(a, t, "customTags", tags);
	const struct km_json *be = col->backend;
	struct km_json *provider;
	if (strcmp(col->kind, "zipkin") == 0) {
		struct km_str api = km_json_get_string(be, "apiVersion");
		const struct km_json *ssc = km_json_get(be, "sharedSpanContext"), *t128 = km_json_get(be, "traceId128bit");
		provider = km_json_fmt(
		    a,
		    "{\"name\":\"envoy.tracers.zipkin\",\"typedConfig\":{\"@type\":\"type.googleapis.com/envoy.config.trace.v3."
		    "ZipkinConfig\",\"collectorCluster\":%s,\"collectorEndpoint\":%S,\"collectorEndpointVersion\":%s,"
		    "\"sharedSpanContext\":%b,\"collectorHostname\":%S}}",
		    col->cluster, &col->url.path, km_str_eqc(api, "httpProto") ? "HTTP_PROTO" : "HTTP_JSON",
		    !ssc || ssc->kind != KM_JSON_BOOL || ssc->b, &col->url.authority);
		if (t128 && t128->kind == KM_JSON_BOOL && t128->b)
			km_json_set(a, km_json_get(provider, "typedConfig"), "traceId128bit", km_json_bool(a, true));
	} else if (strcmp(col->kind, "otel") == 0) {
		const char *svc = km_arena_printf(a, "%.*s", KM_STR_FMT(w->service));
		provider = col->otel_http
			       ? km_json_fmt(a,
					     "{\"name\":\"envoy.tracers.opentelemetry\",\"typedConfig\":{\"@type\":"
					     "\"type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig\",\"httpService\":{"
					     "\"httpUri\":{\"uri\":%s,\"cluster\":%s,\"timeout\":\"10s\"}},\"serviceName\":%s}}",
					     col->otel_uri, col->cluster, svc)
			       : km_json_fmt(a,
					     "{\"name\":\"envoy.tracers.opentelemetry\",\"typedConfig\":{\"@type\":"
					     "\"type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig\",\"grpcService\":{"
					     "\"envoyGrpc\":{\"clusterName\":%s}},\"serviceName\":%s}}",
					     col->cluster, svc);
	} else {
		const struct km_json *split = km_json_get(be, "splitService");
		const char *svc = km_arena_printf(a, "%.*s", KM_STR_FMT(w->service));
		if (split && split->kind == KM_JSON_BOOL && split->b && direction)
			svc = dest ? km_arena_printf(a, "%s_%s_%s", svc, direction, dest)
				   : km_arena_printf(a, "%s_%s", svc, direction);
		provider = km_json_fmt(a,
				       "{\"name\":\"envoy.tracers.datadog\",\"typedConfig\":{\"@type\":\"type.googleapis.com/"
				       "envoy.config.trace.v3.DatadogConfig\",\"collectorCluster\":%s,\"serviceName\":%s}}",
				       col->cluster, svc);
	}
	km_json_set(a, t, "provider", provider);
	return t;
}

static void configure(struct km_arena *a, struct km_json *l, struct km_json *tr)
{
	struct km_json *chains = km_json_get(l, "filterChains");
	for (size_t k = 0; chains && chains->kind == KM_JSON_ARRAY && k < chains->len; k++) {
		struct km_json *hcm = cp_policy_chain_hcm(chains->items[k]);
		if (hcm)
			km_json_set(a, hcm, "tracing", km_json_clone(a, tr));
	}
}

void cp_policy_meshtrace_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct collector col;
	if (!mp->proxy_conf || !collector_of(a, c->m, c->md, mp->proxy_conf, &col))
		return;
	struct who w;
	who_of(c, &w);
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	bool local = false; /* the proxy's own resources, not an outbound's alone */
	for (size_t i = 0; listeners && i < listeners->len; i++) {
		struct km_str key = listeners->members[i].key;
		local |= !km_str_has_prefix(key, "kri_");
		if (km_str_has_prefix(key, "self_inbound_"))
			configure(a, listeners->members[i].val, tracing(a, mp->proxy_conf, &col, &w, "INBOUND", NULL));
	}
	struct km_json *l;
	size_t i = 0;
	for (const char *kri; (kri = cp_policy_next_outbound(c, &i, &l));)
		configure(a, l, tracing(a, mp->proxy_conf, &col, &w, "OUTBOUND", kri));
	if (local) /* the collector's cluster */
		km_json_set(a, c->rs->by_type[CP_XDS_CLUSTER], col.cluster, collector_cluster(a, &col));
}

const struct km_json *cp_policy_meshtrace_outbound_conf(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp,
							const char *kri)
{
	(void)kri;
	if (!mp->proxy_conf)
		return NULL;
	struct who w;
	who_of(c, &w);
	/* the conf, and what the tracing says of the proxy */
	/* the collector a backendRef resolves to: MeshOpenTelemetryBackends
	 * are not in the conf */
	struct collector col;
	bool have = collector_of(c->a, c->m, c->md, mp->proxy_conf, &col);
	return km_json_fmt(c->a, "{\"c\":%J,\"s\":%S,\"m\":%S,\"z\":%S,\"w\":%s,\"o\":%s,\"h\":%S,\"p\":%u,\"u\":%s}",
			   mp->proxy_conf, &w.service, &w.mesh, &w.zone, w.workload ? w.workload : "",
			   have ? col.cluster : "", have ? &col.url.host : &KM_STR(""), have ? col.url.port : 0u,
			   have && col.otel_uri ? col.otel_uri : "");
}
