/* SPDX-License-Identifier: Apache-2.0 */
/* MeshMetric: the proxy-wide conf (spec.default of the policies selecting
 * the proxy) reaches kuma-dp, which serves the metrics, in two parts:
 *  - for each Prometheus backend a listener on the Dataplane's address and
 *    the backend's port whose path prefix goes to kuma-dp's metrics
 *    hijacker (a cluster on the Unix socket <workdir>/kuma-mh-<name>-<mesh>.sock,
 *    path rewritten to /meshmetric); with tls.mode ProvidedTLS and the
 *    certificate and key kuma-dp was given, a TLS filter chain with them;
 *  - the conf kuma-dp applies (applications to scrape, Envoy's stats
 *    profiles, labels to add) as a direct response of the listener
 *    system_dynamicconfig on <workdir>/kuma-mesh-metric-config.sock: GET
 *    /meshmetric answers the JSON with its SHA-256 as ETag, or 304 to a
 *    request that carries that ETag in If-None-Match. The JSON is written as
 *    upstream's Go marshals it, so the ETag is the same for the same conf.
 * OpenTelemetry backends refer to a MeshOpenTelemetryBackend, which
 * generation does not resolve yet: they are left out, as upstream leaves
 * out a reference that does not resolve. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"
#include "cp/xds/bootstrap.h"
#include "cp/xds/context.h"

#define DYNCONF "system_dynamicconfig"
#define STATS_PATH "/meshmetric"
#define HCM_HEAD                                                                                        \
	"{\"name\":\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{\"@type\":"       \
	"\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."            \
	"HttpConnectionManager\",\"statPrefix\":%s,\"httpFilters\":[{\"name\":\"envoy.filters.http."   \
	"router\",\"typedConfig\":{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.router." \
	"v3.Router\"}}],\"internalAddressConfig\":{\"cidrRanges\":%T},\"routeConfig\":%T}}"

static struct km_json *local_cidrs(struct km_arena *a, const struct cp_xds_metadata *md)
{
	struct km_json *c = km_json_fmt(a, "[{\"addressPrefix\":\"127.0.0.1\",\"prefixLen\":32}]");
	if (md && md->ipv6)
		km_json_array_push(a, c, km_json_fmt(a, "{\"addressPrefix\":\"::1\",\"prefixLen\":128}"));
	return c;
}

/* What kuma.proxy_role says of the proxy; *<zone_only>: it carries no
 * workload (zone ingress/egress listeners and nothing else). */
static const char *proxy_role(const struct km_json *networking, bool *zone_only)
{
	*zone_only = false;
	if (km_json_get(networking, "gateway"))
		return "gateway";
	bool ingress = false, egress = false;
	const struct km_json *ls = km_json_get(networking, "listeners");
	for (size_t i = 0; ls && ls->kind == KM_JSON_ARRAY && i < ls->len; i++) {
		struct km_str t = km_json_get_string(ls->items[i], "type");
		ingress |= km_str_eqc(t, "ZoneIngress");
		egress |= km_str_eqc(t, "ZoneEgress");
	}
	if (!ingress && !egress)
		return "sidecar";
	const struct km_json *in = km_json_get(networking, "inbound");
	*zone_only = !in || in->kind != KM_JSON_ARRAY || in->len == 0;
	return ingress && egress ? "zone-proxy" : ingress ? "zone-ingress" : "zone-egress";
}

/* An object of <src>'s members <keys> that are present, in that order. */
static struct km_json *pick(struct km_arena *a, const struct km_json *src, const char *const *keys, size_t n)
{
	struct km_json *o = km_json_object(a);
	for (size_t i = 0; i < n; i++) {
		const struct km_json *v = km_json_get(src, keys[i]);
		if (v)
			km_json_set(a, o, keys[i], km_json_clone(a, v));
	}
	return o;
}

static struct km_json *pick_list(struct km_arena *a, const struct km_json *list, const char *const *keys, size_t n)
{
	if (!list || list->kind != KM_JSON_ARRAY)
		return km_json_clone(a, list);
	struct km_json *out = km_json_array(a);
	for (size_t i = 0; i < list->len; i++)
		km_json_array_push(a, out, pick(a, list->items[i], keys, n));
	return out;
}

/* conf.sidecar as Go marshals api.Sidecar: fields in declaration order. */
static struct km_json *sidecar_json(struct km_arena *a, const struct km_json *sc)
{
	static const char *const name[] = {"name"}, *const sel[] = {"type", "match"};
	struct km_json *o = km_json_object(a);
	const struct km_json *pr = km_json_get(sc, "profiles");
	if (pr && pr->kind == KM_JSON_OBJECT) {
		struct km_json *p = km_json_object(a);
		static const struct {
			const char *key;
			const char *const *fields;
			size_t n;
		} lists[] = {{"appendProfiles", name, 1}, {"exclude", sel, 2}, {"include", sel, 2}};
		for (size_t i = 0; i < 3; i++) {
			const struct km_json *l = km_json_get(pr, lists[i].key);
			if (l && l->kind != KM_JSON_NULL)
				km_json_set(a, p, lists[i].key, pick_list(a, l, lists[i].fields, lists[i].n));
		}
		km_json_set(a, o, "profiles", p);
	}
	const struct km_json *iu = km_json_get(sc, "includeUnused");
	if (iu && iu->kind == KM_JSON_BOOL)
		km_json_set(a, o, "includeUnused", km_json_bool(a, iu->b));
	return o;
}

/* The JSON for kuma-dp (upstream's dpapi.MeshMetricDpConfig). */
static struct km_json *dp_config(struct cp_policy_apply_ctx *c, const struct km_json *conf, bool prometheus,
				 const char *role, bool zone_only)
{
	struct km_arena *a = c->a;
	struct km_json *apps = km_json_null(a);
	const struct km_json *ca = km_json_get(conf, "applications");
	for (size_t i = 0; !zone_only && ca && ca->kind == KM_JSON_ARRAY && i < ca->len; i++) {
		const struct km_json *ap = ca->items[i];
		if (apps->kind == KM_JSON_NULL)
			apps = km_json_array(a);
		struct km_json *o = km_json_object(a);
		const struct km_json *nm = km_json_get(ap, "name");
		if (nm && nm->kind == KM_JSON_STRING)
			km_json_set(a, o, "name", km_json_clone(a, nm));
		km_json_set(a, o, "path", km_json_string(a, km_json_get_string(ap, "path")));
		const struct km_json *port = km_json_get(ap, "port");
		km_json_set(a, o, "port", km_json_int(a, port && port->kind == KM_JSON_NUMBER ? km_json_i64_sat(port) : 0));
		km_json_set(a, o, "address", km_json_string(a, km_json_get_string(ap, "address")));
		km_json_array_push(a, apps, o);
	}
	struct km_json *backends =
	    prometheus ? km_json_fmt(a, "[{\"type\":\"Prometheus\",\"name\":null}]") : km_json_null(a);
	/* extraLabels: a Go map, written in key order */
	struct km_json *labels = km_json_object(a);
	km_json_set(a, labels, "kuma.proxy_role", km_json_cstring(a, role));
	struct km_str wl = km_json_get_string(c->dp->labels, "kuma.io/workload");
	if (!zone_only && wl.len)
		km_json_set(a, labels, "kuma.workload", km_json_string(a, wl));
	km_json_set(a, labels, "mesh", km_json_string(a, c->dp->res.mesh));
	struct km_str zone = km_json_get_string(c->dp->labels, "kuma.io/zone");
	if (zone.len)
		km_json_set(a, labels, "zone", km_json_string(a, zone));
	struct km_json *metrics = km_json_object(a);
	km_json_set(a, metrics, "applications", apps);
	km_json_set(a, metrics, "backends", backends);
	const struct km_json *sc = km_json_get(conf, "sidecar");
	if (sc && sc->kind == KM_JSON_OBJECT)
		km_json_set(a, metrics, "sidecar", sidecar_json(a, sc));
	km_json_set(a, metrics, "extraLabels", labels);
	return km_json_fmt(a, "{\"observability\":{\"metrics\":%T}}", metrics);
}

/* Adds route <name> for <path> answering <body> to the proxy's
 * system_dynamicconfig listener, made when it is not there yet. */
static void add_config_route(struct cp_policy_apply_ctx *c, const char *name, const char *path, struct km_str body)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	struct km_json *l = km_json_get(listeners, DYNCONF);
	if (!l) {
		struct km_json *rc = km_json_fmt(a, "{\"virtualHosts\":[{\"domains\":[\"*\"],\"name\":\"" DYNCONF
						    "\",\"routes\":[]}]}");
		l = km_json_fmt(a,
				"{\"name\":\"" DYNCONF "\",\"address\":{\"pipe\":{\"path\":%s}},\"filterChains\":[{"
				"\"filters\":[" HCM_HEAD "]}],\"statPrefix\":\"" DYNCONF "\"}",
				cp_xds_socket_path(a, c->md ? c->md->workdir : KM_STR(""), "kuma-mesh-metric-config"), DYNCONF,
				local_cidrs(a, c->md), rc);
		km_json_set(a, listeners, DYNCONF, l);
	}
	struct km_json *hcm = cp_policy_chain_hcm(km_json_get(l, "filterChains")->items[0]);
	struct km_json *rc = km_json_get(hcm, "routeConfig");
	struct km_json *routes = km_json_get(km_json_get(rc, "virtualHosts")->items[0], "routes");
	unsigned char digest[32];
	unsigned int dlen = 0;
	EVP_Digest(body.ptr, body.len, digest, &dlen, EVP_sha256(), NULL);
	char etag[65];
	for (unsigned i = 0; i < 32; i++)
		snprintf(etag + 2 * i, 3, "%02x", digest[i]);
	km_json_array_push(a, routes,
			   km_json_fmt(a,
				       "{\"name\":%s,\"match\":{\"path\":%s,\"headers\":[{"
				       "\"name\":\"If-None-Match\",\"stringMatch\":{\"exact\":%s}}]},\"directResponse\":{"
				       "\"status\":304}}",
				       km_arena_printf(a, DYNCONF "_%s_not_modified", name), path, etag));
	km_json_array_push(a, routes,
			   km_json_fmt(a,
				       "{\"name\":%s,\"match\":{\"path\":%s},\"responseHeadersToAdd\":[{"
				       "\"header\":{\"key\":\"Etag\",\"value\":%s}}],\"directResponse\":{\"status\":200,"
				       "\"body\":{\"inlineString\":%S}}}",
				       km_arena_printf(a, DYNCONF "_%s", name), path, etag, &body));
	const struct km_json *max = km_json_get(rc, "maxDirectResponseBodySizeBytes");
	int64_t cur = max && max->kind == KM_JSON_NUMBER ? km_json_i64_sat(max) : 0;
	if (!max || (int64_t)body.len > cur)
		km_json_set(a, rc, "maxDirectResponseBodySizeBytes", km_json_int(a, (int64_t)body.len));
}

/* The listener and cluster of one Prometheus backend. */
static void add_prometheus(struct cp_policy_apply_ctx *c, const struct km_json *prom, struct km_str address)
{
	struct km_arena *a = c->a;
	const struct km_json *client = km_json_get(prom, "clientId");
	const char *name = km_arena_printf(
	    a, "system_meshmetric_prometheus_%s",
	    cp_policy_clean_name(a, client && client->kind == KM_JSON_STRING ? client->s : KM_STR("default-backend")));
	struct km_str workdir = c->md ? c->md->workdir : KM_STR("");
	const char *sock = cp_xds_socket_path(
	    a, workdir,
	    km_arena_printf(a, "kuma-mh-%.*s-%.*s", KM_STR_FMT(c->dp->res.name), KM_STR_FMT(c->dp->res.mesh)));
	km_json_set(a, c->rs->by_type[CP_XDS_CLUSTER], name,
		    km_json_fmt(a,
				"{\"name\":%s,\"type\":\"STATIC\",\"connectTimeout\":\"5s\",\"loadAssignment\":{"
				"\"clusterName\":%s,\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":{\"address\":{\"pipe\":{"
				"\"path\":%s}}}}]}]}}",
				name, name, sock));
	struct km_str path = km_json_get_string(prom, "path");
	const struct km_json *port = km_json_get(prom, "port");
	struct km_json *rc = km_json_fmt(
	    a,
	    "{\"validateClusters\":false,\"virtualHosts\":[{\"domains\":[\"*\"],\"name\":%s,\"routes\":[{\"match\":{"
	    "\"prefix\":%S},\"route\":{\"cluster\":%s,\"prefixRewrite\":\"" STATS_PATH "\"}}]}]}",
	    name, &path, name);
	struct km_json *chains = km_json_array(a);
	bool tls = km_str_eqc(km_json_get_string(km_json_get(prom, "tls"), "mode"), "ProvidedTLS") && c->md &&
		   c->md->metrics_cert.len && c->md->metrics_key.len;
	struct km_json *plain = km_json_fmt(a, "{\"filters\":[" HCM_HEAD "]}", name, local_cidrs(a, c->md), rc);
	if (tls) {
		/* as upstream: a chain for TLS connections serving them as they
		 * come, then the one terminating TLS with kuma-dp's files */
		struct km_json *m = km_json_clone(a, plain);
		km_json_set(a, m, "filterChainMatch", km_json_fmt(a, "{\"transportProtocol\":\"tls\"}"));
		km_json_array_push(a, chains, m);
		km_json_set(a, plain, "transportSocket",
			    km_json_fmt(a,
					"{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\","
					"\"commonTlsContext\":{\"tlsCertificates\":[{\"certificateChain\":{\"filename\":%S},"
					"\"privateKey\":{\"filename\":%S}}]}}}",
					&c->md->metrics_cert, &c->md->metrics_key));
	}
	km_json_array_push(a, chains, plain);
	bool reuse = false;
	const struct km_json *f = c->md ? c->md->features : NULL;
	for (size_t i = 0; f && f->kind == KM_JSON_ARRAY && i < f->len; i++)
		reuse |= f->items[i]->kind == KM_JSON_STRING && km_str_eqc(f->items[i]->s, "feature-reuse-port");
	km_json_set(a, c->rs->by_type[CP_XDS_LISTENER], name,
		    km_json_fmt(a,
				"{\"name\":%s,\"address\":{\"socketAddress\":{\"address\":%S,\"portValue\":%D}},"
				"\"enableReusePort\":%b,\"filterChains\":%T,\"statPrefix\":%s,\"trafficDirection\":"
				"\"INBOUND\"}",
				name, &address, port && port->kind == KM_JSON_NUMBER ? km_json_i64_sat(port) : (int64_t)0, reuse,
				chains, name));
}

void cp_policy_meshmetric_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	const struct km_json *conf = mp->proxy_conf;
	const struct km_json *backends = km_json_get(conf, "backends");
	if (!c->local || !backends || backends->kind != KM_JSON_ARRAY || !backends->len)
		return;
	const struct km_json *networking = km_json_get(c->dp->spec, "networking");
	struct km_str address = km_json_get_string(networking, "address");
	bool prometheus = false;
	for (size_t i = 0; i < backends->len; i++) {
		const struct km_json *b = backends->items[i];
		const struct km_json *prom = km_json_get(b, "prometheus");
		if (!km_str_eqc(km_json_get_string(b, "type"), "Prometheus") || !prom || prom->kind != KM_JSON_OBJECT)
			continue;
		prometheus = true;
		add_prometheus(c, prom, address);
	}
	bool zone_only;
	const char *role = proxy_role(networking, &zone_only);
	struct km_buf body = KM_BUF_INIT;
	km_json_write(&body, dp_config(c, conf, prometheus, role, zone_only), 0, 0);
	add_config_route(c, "meshmetric", STATS_PATH, (struct km_str){km_arena_strndup(a, body.data, body.len), body.len});
	km_buf_fini(&body);
}
