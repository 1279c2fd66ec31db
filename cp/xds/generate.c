/* SPDX-License-Identifier: Apache-2.0 */
/* Generators for a sidecar's Envoy resources, run in the order of the table
 * at the bottom: admin/readiness, inbounds, outbounds. Shapes and defaults
 * follow upstream Kuma 3.0's unified naming (self_inbound_dp_*, kri_msvc_*,
 * system_*) and its policy defaults (connect 5s, idle 1h, request 15s,
 * stream idle 30m) until the policy plugins override them. */
#include "cp/xds/generate.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"
#include "cp/xds/secrets.h"

const char *const cp_xds_type_url[CP_XDS_NTYPES] = {
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
    "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "type.googleapis.com/envoy.config.listener.v3.Listener",
};

int cp_xds_type_of(struct km_str url)
{
	for (int i = 0; i < CP_XDS_NTYPES; i++)
		if (km_str_eqc(url, cp_xds_type_url[i]))
			return i;
	return -1;
}

struct gen {
	struct km_arena *a;
	const struct cp_xds_mesh *m;
	const struct cp_xds_dataplane *dp;
	const struct cp_xds_metadata *md;
	struct cp_xds_resources *out;
	struct km_json *networking;
	struct km_str address;
	bool tproxy;
	bool reuse_port;
	struct cp_policy_prepared *pp; /* the proxy's policies (routes' backends), or NULL */
};

static void add(struct gen *g, enum cp_xds_type t, const char *name, struct km_json *res)
{
	km_json_set(g->a, g->out->by_type[t], name, res);
}

static bool has_feature(const struct cp_xds_metadata *md, const char *f)
{
	for (size_t i = 0; md->features && md->features->kind == KM_JSON_ARRAY && i < md->features->len; i++) {
		struct km_json *v = md->features->items[i];
		if (v->kind == KM_JSON_STRING && km_str_eqc(v->s, f))
			return true;
	}
	return false;
}

bool cp_xds_is_http(struct km_str proto)
{
	return km_str_eqc(proto, "http") || km_str_eqc(proto, "http2") || km_str_eqc(proto, "grpc");
}

static struct km_json *socket_address(struct km_arena *a, struct km_str addr, uint32_t port)
{
	return km_json_fmt(a, "{\"socketAddress\":{\"address\":%S,\"portValue\":%u}}", &addr, port);
}

static struct km_json *static_load_assignment(struct km_arena *a, const char *name, struct km_str addr,
					      uint32_t port)
{
	return km_json_fmt(a,
			   "{\"clusterName\":%s,\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":{\"address\":%T}}]}]}",
			   name, socket_address(a, addr, port));
}

static struct km_json *http_protocol_options(struct km_arena *a, struct km_str proto)
{
	/* two templates: a conversion in a key would be rendered and parsed */
#define HTTP_OPTIONS(explicit)                                                                                  \
	"{\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\":{"                                           \
	"\"@type\":\"type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions\","             \
	"\"commonHttpProtocolOptions\":{\"idleTimeout\":\"3600s\",\"maxConnectionDuration\":\"0s\","            \
	"\"maxStreamDuration\":\"0s\"},\"explicitHttpConfig\":{\"" explicit "\":{}}}}"
	if (km_str_eqc(proto, "http"))
		return km_json_fmt(a, HTTP_OPTIONS("httpProtocolOptions"));
	return km_json_fmt(a, HTTP_OPTIONS("http2ProtocolOptions"));
#undef HTTP_OPTIONS
}

/* The body of the route to <cluster>, as JSON text (what km_json_write
 * makes of the tree hcm() builds from it). */
#define ROUTE_HEAD "{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":"
#define ROUTE_TAIL ",\"idleTimeout\":\"1800s\",\"timeout\":\"15s\"}}"

/* The catch-all route's name: as upstream names a route by its matches,
 * base64 of the SHA-256 of the matches' JSON ([{path: PathPrefix /}]), the
 * same for every outbound. Made once. */
static char catch_all_name[64];
static pthread_once_t catch_all_once = PTHREAD_ONCE_INIT;

static void catch_all_make(void)
{
	static const char matches[] = "[{\"path\":{\"value\":\"/\",\"type\":\"PathPrefix\"}}]";
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)matches, sizeof(matches) - 1, md);
	EVP_EncodeBlock((unsigned char *)catch_all_name, md, sizeof(md));
}

const char *cp_xds_catch_all_route_name(void)
{
	pthread_once(&catch_all_once, catch_all_make);
	return catch_all_name;
}

/* <route>: the outbound route's name (NULL: an inbound's route, unnamed). */
static struct km_json *hcm(struct gen *g, const char *name, const char *cluster, const char *route_name)
{
	struct km_arena *a = g->a;
	bool inbound = !route_name;
	struct km_json *route = km_json_fmt(a, ROUTE_HEAD "%s" ROUTE_TAIL, cluster);
	if (!inbound)
		km_json_set(a, route, "name", km_json_cstring(a, route_name));
	struct km_json *rc = km_json_fmt(
	    a, "{\"name\":%s,\"validateClusters\":false,\"virtualHosts\":[{\"domains\":[\"*\"],\"name\":%s,\"routes\":[%T]}]}",
	    name, name, route);
	if (inbound)
		km_json_set(a, rc, "requestHeadersToRemove", km_json_fmt(a, "[\"x-kuma-tags\"]"));
	struct km_json *cfg = km_json_fmt(
	    a,
	    "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\","
	    "\"statPrefix\":%s,\"commonHttpProtocolOptions\":{\"idleTimeout\":\"0s\"},"
	    "\"httpFilters\":[{\"name\":\"envoy.filters.http.router\",\"typedConfig\":{\"@type\":"
	    "\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}],"
	    "\"internalAddressConfig\":{\"cidrRanges\":%T},\"requestHeadersTimeout\":\"0s\",\"routeConfig\":%T}",
	    name, g->m->internal_cidrs, rc);
	if (inbound)
		km_json_set(a, cfg, "streamIdleTimeout", km_json_cstring(a, "3600s"));
	else
		km_json_set(a, cfg, "normalizePath", km_json_bool(a, true));
	return km_json_fmt(a, "{\"name\":\"envoy.filters.network.http_connection_manager\",\"typedConfig\":%T}", cfg);
}

static struct km_json *tcp_proxy(struct gen *g, const char *name, const char *cluster)
{
	return km_json_fmt(g->a,
			   "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typedConfig\":{\"@type\":"
			   "\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\","
			   "\"statPrefix\":%s,\"cluster\":%s,\"idleTimeout\":\"3600s\"}}",
			   name, cluster);
}

static struct km_json *circuit_breakers(struct km_arena *a)
{
	return km_json_fmt(a, "{\"thresholds\":[{\"trackRemaining\":true}]}");
}

static struct km_json *downstream_tls(struct gen *g);
static struct km_json *upstream_tls(struct gen *g, const struct cp_xds_service *s, const struct cp_xds_port *p);

/* ---- inbound ---- */

static void gen_inbound(struct gen *g)
{
	struct km_arena *a = g->a;
	struct km_json *inb = km_json_get(g->networking, "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		struct km_json *in = inb->items[i];
		int64_t port = km_json_i64_sat(km_json_get(in, "port"));
		struct km_json *sp = km_json_get(in, "servicePort");
		int64_t svc_port = sp ? km_json_i64_sat(sp) : port;
		struct km_str addr = km_json_get_string(in, "address");
		if (!addr.len)
			addr = g->address;
		struct km_str svc_addr = km_json_get_string(in, "serviceAddress");
		if (!svc_addr.len)
			svc_addr = addr;
		struct km_str section = km_json_get_string(in, "name");
		const char *name = section.len ? km_arena_printf(a, "self_inbound_dp_%.*s", KM_STR_FMT(section))
					       : km_arena_printf(a, "self_inbound_dp_%lld", (long long)port);
		struct km_str proto = km_json_get_string(in, "protocol");
		if (!proto.len)
			proto = KM_STR("tcp");
		bool http = cp_xds_is_http(proto);

		struct km_json *cluster = km_json_fmt(
		    a, "{\"name\":%s,\"type\":\"STATIC\",\"connectTimeout\":\"5s\",\"loadAssignment\":%T,\"circuitBreakers\":%T}",
		    name, static_load_assignment(a, name, svc_addr, (uint32_t)svc_port), circuit_breakers(a));
		if (http)
			km_json_set(a, cluster, "typedExtensionProtocolOptions", http_protocol_options(a, proto));
		if (g->tproxy)
			km_json_set(a, cluster, "upstreamBindConfig",
				    km_json_fmt(a, "{\"sourceAddress\":{\"address\":\"127.0.0.6\",\"portValue\":0}}"));
		add(g, CP_XDS_CLUSTER, name, cluster);

		struct km_json *tags = g->dp->labels && g->dp->labels->len
					   ? g->dp->labels
					   : km_json_fmt(a, "{\"kuma.io/unified-name\":%s}", name);
		struct km_json *filter = http ? hcm(g, name, name, NULL) : tcp_proxy(g, name, name);
		if (http && g->md->tls) {
			struct km_json *cfg = km_json_get(filter, "typedConfig");
			km_json_set(a, cfg, "forwardClientCertDetails", km_json_cstring(a, "SANITIZE_SET"));
			km_json_set(a, cfg, "setCurrentClientCertDetails", km_json_fmt(a, "{\"uri\":true}"));
		}
		struct km_json *chain = km_json_fmt(a, "{\"filters\":[%T]}", filter);
		if (g->md->tls)
			km_json_set(a, chain, "transportSocket", downstream_tls(g));
		struct km_json *l = km_json_fmt(
		    a,
		    "{\"name\":%s,\"address\":%T,\"statPrefix\":%s,\"filterChains\":[%T],"
		    "\"metadata\":{\"filterMetadata\":{\"io.kuma.tags\":%J}},\"trafficDirection\":\"INBOUND\","
		    "\"enableReusePort\":%b}",
		    name, socket_address(a, addr, (uint32_t)port), name, chain, tags, g->reuse_port);
		if (g->tproxy)
			km_json_set(a, l, "bindToPort", km_json_bool(a, false));
		add(g, CP_XDS_LISTENER, name, l);
	}
}

/* ---- outbound ---- */

/* gRPC clients drop localities without a weight; Envoy ignores it unless
 * locality-weighted balancing is on, so only proxyless CLAs carry one. */
static struct km_json *load_assignment(struct gen *g, const char *name, const struct cp_xds_port *p,
				       bool locality_weight)
{
	struct km_arena *a = g->a;
	struct km_json *localities = km_json_array(a);
	/* one locality group per zone, in first-seen order */
	for (size_t i = 0; i < p->nendpoints; i++) {
		const struct cp_xds_endpoint *e = &p->endpoints[i];
		if (!e->healthy)
			continue;
		struct km_json *group = NULL;
		for (size_t k = 0; k < localities->len; k++)
			if (km_str_eq(km_json_get_string(km_json_get(localities->items[k], "locality"), "zone"), e->zone))
				group = localities->items[k];
		if (!group) {
			group = km_json_fmt(a, "{\"lbEndpoints\":[],\"locality\":{\"zone\":%S}}", &e->zone);
			if (locality_weight)
				km_json_set(a, group, "loadBalancingWeight", km_json_int(a, 1));
			km_json_array_push(a, localities, group);
		}
		struct km_json *md = km_json_clone(a, e->labels);
		km_json_set(a, md, "kuma.io/protocol", km_json_string(a, p->app_protocol));
		km_json_array_push(a, km_json_get(group, "lbEndpoints"),
				   km_json_fmt(a,
					       "{\"endpoint\":{\"address\":%T},\"loadBalancingWeight\":1,"
					       "\"metadata\":{\"filterMetadata\":{\"envoy.lb\":%T,"
					       "\"envoy.transport_socket_match\":%T}}}",
					       socket_address(a, e->address, e->port), md, md));
	}
	return km_json_fmt(a, "{\"clusterName\":%s,\"endpoints\":%T}", name, localities);
}

struct km_json *cp_xds_outbound_address(struct km_arena *a, const struct cp_xds_outbound *o)
{
	return socket_address(a, o->address, o->port);
}

/* The outbound's cluster, load assignment and listener, those of <types>
 * (bits 1 << CP_XDS_*). */
static void gen_outbound_one(struct gen *g, const struct cp_xds_outbound *o, unsigned types)
{
	struct km_arena *a = g->a;
	const struct cp_xds_service *s = o->s;
	const struct cp_xds_port *p = o->p;
	const char *name = o->kri;
	bool http = cp_xds_is_http(p->app_protocol);
	if (types & (1u << CP_XDS_CLUSTER)) {
		struct km_json *cluster = km_json_fmt(
		    a,
		    "{\"name\":%s,\"type\":\"EDS\",\"connectTimeout\":\"5s\",\"edsClusterConfig\":{\"edsConfig\":"
		    "{\"ads\":{},\"resourceApiVersion\":\"V3\"}},\"circuitBreakers\":%T}",
		    name, circuit_breakers(a));
		if (http)
			km_json_set(a, cluster, "typedExtensionProtocolOptions",
				    http_protocol_options(a, g->md->tls ? KM_STR("http2") : p->app_protocol));
		if (g->md->tls)
			km_json_set(a, cluster, "transportSocket", upstream_tls(g, s, p));
		add(g, CP_XDS_CLUSTER, name, cluster);
	}
	if (types & (1u << CP_XDS_ENDPOINT))
		add(g, CP_XDS_ENDPOINT, name, load_assignment(g, name, p, false));
	if ((types & (1u << CP_XDS_LISTENER)) && !o->backend_only) {
		struct km_json *filter =
			http ? hcm(g, name, name, cp_xds_catch_all_route_name()) : tcp_proxy(g, name, name);
		add(g, CP_XDS_LISTENER, name,
		    km_json_fmt(a,
				"{\"name\":%s,\"address\":%T,\"statPrefix\":%s,\"filterChains\":[{\"filters\":[%T]}],"
				"\"metadata\":{\"filterMetadata\":{\"io.kuma.tags\":{\"kuma.io/unified-name\":%s}}},"
				"\"trafficDirection\":\"OUTBOUND\"}",
				name, cp_xds_outbound_address(a, o), name, filter, name));
	}
}

static const struct cp_xds_port *find_port(const struct cp_xds_service *s, const struct km_json *ref)
{
	struct km_json *pv = km_json_get(ref, "port");
	int64_t want = km_json_i64_sat(pv);
	for (size_t i = 0; i < s->nports; i++)
		if (!pv || s->ports[i].port == (uint32_t)want)
			return &s->ports[i];
	return NULL;
}

/* Appends to <*out> (<*n> entries) the destinations the routes of its
 * outbounds reach that no outbound lists: backend only. */
static void add_route_backends(struct gen *g, struct cp_xds_outbound **out, size_t *n)
{
	size_t nreal = *n, cap = *n;
	for (size_t i = 0; i < nreal; i++) {
		struct cp_policy_backend *bs;
		size_t nb = cp_policy_route_backends(g->pp, (*out)[i].kri, &bs);
		for (size_t k = 0; k < nb; k++) {
			bool seen = false;
			for (size_t j = 0; j < *n && !seen; j++)
				seen = strcmp((*out)[j].kri, bs[k].kri) == 0;
			if (seen)
				continue;
			if (*n == cap) {
				size_t ncap = cap * 2 + 4;
				*out = km_arena_realloc(g->a, *out, (cap + 1) * sizeof(**out), (ncap + 1) * sizeof(**out));
				cap = ncap;
			}
			(*out)[(*n)++] = (struct cp_xds_outbound){
			    .s = bs[k].s, .p = bs[k].p, .address = KM_STR(""), .kri = bs[k].kri, .backend_only = true};
		}
	}
}

/* The Dataplane's outbounds that resolve to a MeshService port, in order,
 * then the destinations only their routes reach (add_route_backends). */
static void list_outbounds(struct gen *g, struct cp_xds_outbound **out, size_t *n)
{
	struct km_json *outb = km_json_get(g->networking, "outbound");
	size_t cap = outb && outb->kind == KM_JSON_ARRAY ? outb->len : 0;
	*out = km_arena_alloc(g->a, (cap + 1) * sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < cap; i++) {
		struct km_json *o = outb->items[i];
		struct km_json *ref = km_json_get(o, "backendRef");
		if (!km_str_eqc(km_json_get_string(ref, "kind"), "MeshService"))
			continue; /* MeshExternalService and MeshMultiZoneService come with zone proxies */
		const struct cp_xds_service *s = NULL;
		struct km_str name = km_json_get_string(ref, "name");
		if (name.len) {
			s = cp_xds_mesh_service(g->m, name);
		} else {
			struct km_json *sel = km_json_get(ref, "labels");
			for (size_t k = 0; k < g->m->nservices && !s; k++) {
				bool ok = sel && sel->kind == KM_JSON_OBJECT;
				for (size_t j = 0; ok && j < sel->len; j++) {
					struct km_json *v = km_json_get_str(g->m->services[k].labels, sel->members[j].key);
					ok = v && v->kind == KM_JSON_STRING && sel->members[j].val->kind == KM_JSON_STRING &&
					     km_str_eq(v->s, sel->members[j].val->s);
				}
				if (ok)
					s = &g->m->services[k];
			}
		}
		if (!s)
			continue;
		const struct cp_xds_port *p = find_port(s, ref);
		if (!p)
			continue;
		struct km_str addr = km_json_get_string(o, "address");
		struct cp_xds_outbound *ob = &(*out)[(*n)++];
		ob->s = s;
		ob->p = p;
		ob->address = addr.len ? addr : KM_STR("127.0.0.1");
		ob->port = (uint32_t)km_json_i64_sat(km_json_get(o, "port"));
		ob->kri = cp_xds_service_kri(g->a, g->m, s, p);
	}
	if (g->pp)
		add_route_backends(g, out, n);
}

static void gen_outbound(struct gen *g)
{
	struct cp_xds_outbound *obs;
	size_t n;
	list_outbounds(g, &obs, &n);
	for (size_t i = 0; i < n; i++)
		gen_outbound_one(g, &obs[i], ~0u);
}

/* ---- admin and readiness ---- */


static const char *b64(struct km_arena *a, const char *pem);

/* The HTTP connection manager of the admin listener: /ready to the
 * readiness reporter and, in the TLS chain, everything else to the admin. */
static struct km_json *admin_hcm(struct gen *g, bool all)
{
#define ADMIN_HCM(more)                                                                                           \
	"{\"name\":\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{"                             \
	"\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."            \
	"HttpConnectionManager\",\"statPrefix\":\"system_envoy_admin\",\"httpFilters\":[{\"name\":"               \
	"\"envoy.filters.http.router\",\"typedConfig\":{\"@type\":"                                               \
	"\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}],\"internalAddressConfig\":"   \
	"{\"cidrRanges\":[{\"addressPrefix\":\"127.0.0.1\",\"prefixLen\":32}]},\"routeConfig\":{"                \
	"\"validateClusters\":false,\"virtualHosts\":[{\"domains\":[\"*\"],\"name\":\"system_envoy_admin\","     \
	"\"routes\":[{\"match\":{\"prefix\":\"/ready\"},\"route\":{\"cluster\":\"system_probe_readiness\","      \
	"\"prefixRewrite\":\"/ready\"}}" more "]}]}}}"
	if (all)
		return km_json_fmt(g->a, ADMIN_HCM(",{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":"
						  "\"system_envoy_admin\",\"prefixRewrite\":\"/\"}}"));
	return km_json_fmt(g->a, ADMIN_HCM(""));
#undef ADMIN_HCM
}

static void gen_admin(struct gen *g)
{
	struct km_arena *a = g->a;
	if (g->md->readiness_port)
		add(g, CP_XDS_CLUSTER, "system_probe_readiness",
		    km_json_fmt(a, "{\"name\":\"system_probe_readiness\",\"type\":\"STATIC\",\"connectTimeout\":\"5s\","
				   "\"loadAssignment\":%T,\"circuitBreakers\":%T}",
				static_load_assignment(a, "system_probe_readiness", KM_STR("127.0.0.1"),
						       g->md->readiness_port),
				circuit_breakers(a)));
	if (!g->md->admin_port || !g->md->readiness_port)
		return;
	/* the admin itself: its Unix socket, or where Envoy binds it */
	struct km_str admin_addr = g->md->admin_address;
	if (!admin_addr.len || km_str_eqc(admin_addr, "0.0.0.0"))
		admin_addr = KM_STR("127.0.0.1");
	else if (km_str_eqc(admin_addr, "::"))
		admin_addr = KM_STR("::1");
	struct km_json *endpoint =
	    g->md->admin_socket.len ? km_json_fmt(a, "{\"pipe\":{\"path\":%S}}", &g->md->admin_socket)
				    : socket_address(a, admin_addr, g->md->admin_port);
	add(g, CP_XDS_CLUSTER, "system_envoy_admin",
	    km_json_fmt(a,
			"{\"name\":\"system_envoy_admin\",\"type\":\"STATIC\",\"connectTimeout\":\"5s\","
			"\"loadAssignment\":{\"clusterName\":\"system_envoy_admin\",\"endpoints\":[{\"lbEndpoints\":["
			"{\"endpoint\":{\"address\":%T}}]}]},\"circuitBreakers\":%T}",
			endpoint, circuit_breakers(a)));
	/* no listener where it would take the admin's own address and port */
	if (!cp_envoy_admin_exposed(g->address, g->md->admin_address, g->md->admin_socket))
		return;
	/* plaintext /ready for load balancers and probes; the rest of the admin
	 * API over mutual TLS, for the control plane (client SAN kuma-cp) */
	struct km_json *chains = km_json_fmt(a, "[{\"filters\":[%T]}]", admin_hcm(g, false));
	const struct cp_envoy_admin_tls *t = g->md->admin_tls;
	if (t)
		km_json_array_push(
		    a, chains,
		    km_json_fmt(
			a,
			"{\"filterChainMatch\":{\"transportProtocol\":\"tls\"},\"filters\":[%T],\"transportSocket\":{"
			"\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
			"\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\","
			"\"commonTlsContext\":{\"tlsCertificateSdsSecretConfigs\":[{\"name\":\"" CP_XDS_ADMIN_SECRET "\","
			"\"sdsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}}],\"validationContext\":{"
			"\"matchTypedSubjectAltNames\":[{\"matcher\":{\"exact\":\"kuma-cp\"},\"sanType\":\"DNS\"}],"
			"\"trustedCa\":{\"inlineBytes\":%s}}},\"requireClientCertificate\":true}}}",
			admin_hcm(g, true), b64(a, t->ca_pem)));
	struct km_json *l = km_json_fmt(a,
					"{\"name\":\"system_envoy_admin\",\"address\":%T,\"statPrefix\":\"system_envoy_admin\","
					"\"filterChains\":%T,\"enableReusePort\":%b,\"trafficDirection\":\"INBOUND\"}",
					socket_address(a, g->address, g->md->admin_port), chains, g->reuse_port);
	if (t)
		km_json_set(a, l, "listenerFilters",
			    km_json_fmt(a, "[{\"name\":\"envoy.filters.listener.tls_inspector\",\"typedConfig\":{\"@type\":"
					   "\"type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector\"}}]"));
	add(g, CP_XDS_LISTENER, "system_envoy_admin", l);
}

/* ---- proxyless gRPC ---- */

/* gRPC's own xDS client (grpc xds:/// targets) is not an Envoy started by
 * kuma-dp: it asks for listeners named after its target. Every MeshService
 * port of the mesh gets an API listener "<service>:<port>" (and "<service>"
 * for its first port) routing to the service's cluster. */
static void gen_proxyless(struct gen *g)
{
	struct km_arena *a = g->a;
	if (!g->md->proxyless)
		return;
	for (size_t i = 0; i < g->m->nservices; i++) {
		const struct cp_xds_service *s = &g->m->services[i];
		for (size_t k = 0; k < s->nports; k++) {
			const struct cp_xds_port *p = &s->ports[k];
			const char *cluster = cp_xds_service_kri(a, g->m, s, p);
			add(g, CP_XDS_CLUSTER, cluster,
			    km_json_fmt(a,
					"{\"name\":%s,\"type\":\"EDS\",\"lbPolicy\":\"ROUND_ROBIN\","
					"\"edsClusterConfig\":{\"edsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}}}",
					cluster));
			add(g, CP_XDS_ENDPOINT, cluster, load_assignment(g, cluster, p, true));
			const char *names[2] = {km_arena_printf(a, "%.*s:%u", KM_STR_FMT(s->name), p->port),
						k == 0 ? km_arena_strndup(a, s->name.ptr, s->name.len) : NULL};
			for (int n = 0; n < 2 && names[n]; n++)
				add(g, CP_XDS_LISTENER, names[n],
				    km_json_fmt(
					a,
					"{\"name\":%s,\"apiListener\":{\"apiListener\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\","
					"\"statPrefix\":%s,\"routeConfig\":{\"name\":%s,\"virtualHosts\":[{\"name\":%s,"
					"\"domains\":[\"*\"],\"routes\":[{\"match\":{\"prefix\":\"\"},\"route\":{\"cluster\":%s}}]}]},"
					"\"httpFilters\":[{\"name\":\"envoy.filters.http.router\",\"typedConfig\":{\"@type\":"
					"\"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\"}}]}}}",
					names[n], names[n], names[n], names[n], cluster));
		}
	}
}

/* ---- identity and trust (SDS over ADS) ---- */

static struct km_json *sds_ref(struct km_arena *a, const char *name)
{
	return km_json_fmt(a, "{\"name\":%s,\"sdsConfig\":{\"ads\":{},\"resourceApiVersion\":\"V3\"}}", name);
}

static const char *b64(struct km_arena *a, const char *pem)
{
	size_t n = strlen(pem);
	char *out = km_arena_alloc(a, 4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)pem, (int)n);
	return out;
}

static void gen_secrets(struct gen *g)
{
	const struct cp_xds_tls *tls = g->md->tls;
	struct km_arena *a = g->a;
	const struct cp_envoy_admin_tls *at = g->md->admin_tls;
	if (at && g->md->admin_port && g->md->readiness_port &&
	    cp_envoy_admin_exposed(g->address, g->md->admin_address, g->md->admin_socket))
		add(g, CP_XDS_SECRET, CP_XDS_ADMIN_SECRET,
		    km_json_fmt(a,
				"{\"name\":\"" CP_XDS_ADMIN_SECRET "\",\"tlsCertificate\":{\"certificateChain\":{\"inlineBytes\":%s},"
				"\"privateKey\":{\"inlineBytes\":%s}}}",
				b64(a, at->chain_pem), b64(a, at->key_pem)));
	if (!tls)
		return;
	add(g, CP_XDS_SECRET, tls->secret_name,
	    km_json_fmt(a,
			"{\"name\":%s,\"tlsCertificate\":{\"certificateChain\":{\"inlineBytes\":%s},"
			"\"privateKey\":{\"inlineBytes\":%s}}}",
			tls->secret_name, b64(a, tls->cert_pem), b64(a, tls->key_pem)));
	if (!tls->trust_domains || !tls->trust_domains->len)
		return;
	struct km_json *domains = km_json_array(a);
	for (size_t i = 0; i < tls->trust_domains->len; i++) {
		struct km_json *pem = tls->trust_domains->members[i].val;
		if (pem->kind != KM_JSON_STRING)
			continue;
		km_json_array_push(a, domains,
				   km_json_fmt(a, "{\"name\":%S,\"trustBundle\":{\"inlineBytes\":%s}}",
					       &tls->trust_domains->members[i].key,
					       b64(a, km_arena_strndup(a, pem->s.ptr, pem->s.len))));
	}
	if (!domains->len)
		return; /* nothing to trust (cp_xds_secrets_trust_encode) */
	add(g, CP_XDS_SECRET, CP_XDS_TRUST_SECRET,
	    km_json_fmt(a,
			"{\"name\":\"system_trust_bundle\",\"validationContext\":{\"customValidatorConfig\":{"
			"\"name\":\"envoy.tls.cert_validator.spiffe\",\"typedConfig\":{\"@type\":"
			"\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig\","
			"\"trustDomains\":%T}}}}",
			domains));
}

/* Inbound mTLS: the proxy's certificate, clients must present one from a
 * trusted domain of the mesh. */
static struct km_json *downstream_tls(struct gen *g)
{
	struct km_arena *a = g->a;
	const struct cp_xds_tls *tls = g->md->tls;
	struct km_json *sans = km_json_array(a);
	for (size_t i = 0; tls->trust_domains && i < tls->trust_domains->len; i++)
		km_json_array_push(a, sans,
				   km_json_fmt(a, "{\"matcher\":{\"prefix\":%s},\"sanType\":\"URI\"}",
					       km_arena_printf(a, "spiffe://%.*s/",
							       KM_STR_FMT(tls->trust_domains->members[i].key))));
	return km_json_fmt(
	    a,
	    "{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
	    "\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\","
	    "\"commonTlsContext\":{\"combinedValidationContext\":{\"defaultValidationContext\":"
	    "{\"matchTypedSubjectAltNames\":%T},\"validationContextSdsSecretConfig\":%T},"
	    "\"tlsCertificateSdsSecretConfigs\":[%T]},\"requireClientCertificate\":true}}",
	    sans, sds_ref(a, CP_XDS_TRUST_SECRET), sds_ref(a, tls->secret_name));
}

/* The SNI naming port <p> of <s>. */
static const char *sni_of(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_service *s,
			  const struct cp_xds_port *p)
{
	if (p->sni)
		return p->sni;
	return cp_xds_service_sni(a, m->name, s, p);
}

const char *cp_xds_service_sni(struct km_arena *a, struct km_str mesh, const struct cp_xds_service *s,
			       const struct cp_xds_port *p)
{
	if (s->zone.len && s->ns.len)
		return km_arena_printf(a, "sni.msvc.%.*s.%.*s.%.*s.%.*s.%u", KM_STR_FMT(mesh), KM_STR_FMT(s->zone),
				       KM_STR_FMT(s->ns), KM_STR_FMT(s->name), p->port);
	if (s->zone.len)
		return km_arena_printf(a, "sni.msvc.%.*s.%.*s.%.*s.%u", KM_STR_FMT(mesh), KM_STR_FMT(s->zone),
				       KM_STR_FMT(s->name), p->port);
	return km_arena_printf(a, "sni.msvc.%.*s.%.*s.%u", KM_STR_FMT(mesh), KM_STR_FMT(s->name), p->port);
}

/* Outbound mTLS: SNI names the destination, its certificate must carry one of
 * the service's SPIFFE identities. */
static struct km_json *upstream_tls(struct gen *g, const struct cp_xds_service *s, const struct cp_xds_port *p)
{
	struct km_arena *a = g->a;
	const struct cp_xds_tls *tls = g->md->tls;
	struct km_json *sans = km_json_array(a);
	struct km_json *ids = km_json_get(s->spec, "identities");
	for (size_t i = 0; ids && ids->kind == KM_JSON_ARRAY && i < ids->len; i++) {
		struct km_str v = km_json_get_string(ids->items[i], "value");
		if (v.len)
			km_json_array_push(a, sans, km_json_fmt(a, "{\"matcher\":{\"exact\":%S},\"sanType\":\"URI\"}", &v));
	}
	struct km_json *vc = km_json_object(a);
	if (sans->len)
		km_json_set(a, vc, "matchTypedSubjectAltNames", sans);
	struct km_json *ts = km_json_fmt(
	    a,
	    "{\"name\":\"envoy.transport_sockets.tls\",\"typedConfig\":{\"@type\":"
	    "\"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext\","
	    "\"commonTlsContext\":{\"alpnProtocols\":[\"kuma\"],\"combinedValidationContext\":{"
	    "\"defaultValidationContext\":%T,\"validationContextSdsSecretConfig\":%T},"
	    "\"tlsCertificateSdsSecretConfigs\":[%T]},\"sni\":%s}}",
	    vc, sds_ref(a, CP_XDS_TRUST_SECRET), sds_ref(a, tls->secret_name), sni_of(a, g->m, s, p));
	return ts;
}

size_t cp_xds_outbound_vars(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_metadata *md,
			    const struct cp_xds_outbound *o, struct km_str *vars, size_t cap, struct km_buf *shape)
{
	size_t n = 0;
	if (cap < 3)
		return 0;
	vars[n++] = km_str_c(o->kri);
	km_buf_add(shape, o->p->app_protocol.ptr, o->p->app_protocol.len);
	km_buf_add(shape, "", 1);
	if (md->tls) {
		vars[n++] = km_str_c(sni_of(a, m, o->s, o->p));
		uint32_t nsans = 0;
		struct km_json *ids = km_json_get(o->s->spec, "identities");
		for (size_t i = 0; ids && ids->kind == KM_JSON_ARRAY && i < ids->len; i++) {
			struct km_str v = km_json_get_string(ids->items[i], "value");
			if (!v.len)
				continue;
			if (n == cap)
				return 0;
			vars[n++] = v;
			nsans++;
		}
		km_buf_add(shape, &nsans, sizeof(nsans));
	}
	for (size_t i = 0; i < n; i++)
		if (vars[i].len < 4)
			return 0;
	return n;
}

/* The generators, in the order they run; `local` marks those
 * cp_xds_generate_local() runs (it leaves the outbounds to
 * cp_xds_generate_outbound() and the secrets to the builder, which encodes
 * them straight from the PEMs: secrets.h). */
static const struct {
	const char *name;
	void (*fn)(struct gen *g);
	bool local;
} generators[] = {
    {"secrets", gen_secrets, false},
    {"admin", gen_admin, true},
    {"inbound", gen_inbound, true},
    {"outbound", gen_outbound, false},
    {"proxyless", gen_proxyless, true},
};

static void gen_init(struct gen *g, struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		     const struct cp_xds_metadata *md, struct cp_xds_resources *out)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		out->by_type[t] = km_json_object(a);
	*g = (struct gen){.a = a, .m = m, .dp = dp, .md = md, .out = out};
	g->networking = km_json_get(dp->spec, "networking");
	g->address = km_json_get_string(g->networking, "address");
	g->tproxy = km_json_get(g->networking, "transparentProxying") != NULL;
	g->reuse_port = has_feature(md, "feature-reuse-port");
}

int cp_xds_generate(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		    const struct cp_xds_metadata *md, struct cp_xds_resources *out)
{
	struct gen g;
	gen_init(&g, a, m, dp, md, out);
	struct cp_policy_prepared pp;
	cp_policy_prepare(a, m, dp, md, &pp);
	g.pp = &pp;
	for (size_t i = 0; i < sizeof(generators) / sizeof(generators[0]); i++)
		generators[i].fn(&g);
	pp.c.local = true;
	cp_policy_apply_prepared(&pp, out);
	return 0;
}

int cp_xds_generate_local(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			  const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			  struct cp_xds_resources *out, struct cp_xds_outbound **outbounds, size_t *n)
{
	struct gen g;
	gen_init(&g, a, m, dp, md, out);
	for (size_t i = 0; i < sizeof(generators) / sizeof(generators[0]); i++)
		if (generators[i].local)
			generators[i].fn(&g);
	pp->c.local = true;
	cp_policy_apply_prepared(pp, out);
	g.pp = pp;
	list_outbounds(&g, outbounds, n);
	return 0;
}

void cp_xds_list_outbounds(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			   const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			   struct cp_xds_outbound **outbounds, size_t *n)
{
	struct gen g;
	struct cp_xds_resources unused;
	gen_init(&g, a, m, dp, md, &unused);
	g.pp = pp;
	list_outbounds(&g, outbounds, n);
}

void cp_xds_generate_outbound(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			      const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			      const struct cp_xds_outbound *o, unsigned types, struct cp_xds_resources *out)
{
	struct gen g;
	gen_init(&g, a, m, dp, md, out);
	gen_outbound_one(&g, o, types);
	pp->c.local = false;
	cp_policy_apply_prepared(pp, out);
}

struct km_json *cp_xds_resources_json(struct km_arena *a, const struct cp_xds_resources *r)
{
	struct km_json *xds = km_json_object(a);
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		if (r->by_type[t] && r->by_type[t]->len)
			km_json_set(a, xds, cp_xds_type_url[t], r->by_type[t]);
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "xds", xds);
	return o;
}
