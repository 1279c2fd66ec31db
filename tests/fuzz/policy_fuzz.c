/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for the policy plugins: the first byte picks a policy
 * type, the rest is its spec as JSON. It goes through the real write path
 * (cp_manager_create: decoding, defaults, validation) into a memory store
 * holding a small mesh (a proxy with HTTP and TCP inbounds and outbounds to
 * HTTP, HTTP/2, gRPC and TCP services, their endpoints); a spec the API
 * would refuse stops there. An accepted one must give a configuration whose
 * every resource encodes as its Envoy message, through both generation paths
 * (cp_xds_generate, and cp_xds_build over a share table, built twice so the
 * second takes shared resources): a resource that does not encode would
 * never reach Envoy. The policy is removed after each input. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cp/config/config.h"
#include "cp/manager.h"
#include "cp/xds/share.h"
#include "pb/json.h"

static struct cp_runtime rt;
static struct cp_config cfg;
static bool ready;

static const char *const types[] = {
    "MeshHTTPRoute", "MeshTCPRoute",  "MeshLoadBalancingStrategy", "MeshAccessLog",	 "MeshFaultInjection",
    "MeshRateLimit", "MeshHealthCheck", "MeshTimeout",		      "MeshRetry",	 "MeshCircuitBreaker",
    "MeshTrafficPermission", "MeshTLS", "MeshTrace", "MeshProxyPatch",
};

static const char *const world[][4] = {
    /* type, name, labels, spec */
    {"MeshService", "api", NULL,
     "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"kuma.io/workload\":\"api\"}}},"
     "\"ports\":[{\"port\":80,\"targetPort\":8080,\"appProtocol\":\"http\"}]}"},
    {"MeshService", "api2", NULL,
     "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"kuma.io/workload\":\"api\"}}},"
     "\"ports\":[{\"port\":81,\"targetPort\":8080,\"appProtocol\":\"http2\"}]}"},
    {"MeshService", "rpc", NULL,
     "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"kuma.io/workload\":\"rpc\"}}},"
     "\"ports\":[{\"port\":9090,\"targetPort\":9090,\"appProtocol\":\"grpc\"}]}"},
    {"MeshService", "db", NULL,
     "{\"selector\":{\"dataplaneLabels\":{\"matchLabels\":{\"kuma.io/workload\":\"db\"}}},"
     "\"ports\":[{\"port\":5432,\"targetPort\":5432,\"appProtocol\":\"tcp\"}]}"},
    {"Dataplane", "api-1", "{\"kuma.io/workload\":\"api\",\"k8s.io/az\":\"a\"}",
     "{\"networking\":{\"address\":\"10.0.0.2\",\"inbound\":[{\"port\":8080,\"protocol\":\"http\"}]}}"},
    {"Dataplane", "rpc-1", "{\"kuma.io/workload\":\"rpc\"}",
     "{\"networking\":{\"address\":\"10.0.0.3\",\"inbound\":[{\"port\":9090,\"protocol\":\"grpc\"}]}}"},
    {"Dataplane", "db-1", "{\"kuma.io/workload\":\"db\"}",
     "{\"networking\":{\"address\":\"10.0.0.4\",\"inbound\":[{\"port\":5432}]}}"},
    {"Dataplane", "web-1", "{\"kuma.io/workload\":\"web\",\"k8s.io/az\":\"a\"}",
     "{\"networking\":{\"address\":\"10.0.0.1\",\"inbound\":[{\"port\":8080,\"protocol\":\"http\",\"name\":\"http\"},"
     "{\"port\":5432,\"name\":\"tcp\"}],\"outbound\":["
     "{\"port\":10001,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"api\",\"port\":80}},"
     "{\"port\":10002,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"api2\",\"port\":81}},"
     "{\"port\":10003,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"rpc\",\"port\":9090}},"
     "{\"port\":10004,\"backendRef\":{\"kind\":\"MeshService\",\"name\":\"db\",\"port\":5432}}]}}"},
};

static struct km_json *parse(struct km_arena *a, const char *text, size_t len)
{
	struct km_json *j = NULL;
	return km_json_parse(a, text, len, &j, NULL) == 0 ? j : NULL;
}

static int put(struct km_arena *a, const char *type, const char *name, struct km_json *labels, struct km_json *spec)
{
	struct km_resource_doc d = {.type = km_rtype_by_name(km_str_c(type)),
				    .mesh = KM_STR("default"),
				    .name = km_str_c(name),
				    .labels = labels,
				    .spec = spec};
	struct km_violations v;
	km_violations_init(&v, a);
	return cp_manager_create(&rt, a, &d, &v);
}

static void init(void)
{
	km_log_threshold = KM_LOG_ERROR;
	cp_config_init_defaults(&cfg);
	rt.cfg = &cfg;
	rt.store = cp_store_memory_new();
	rt.zone = "zone-1";
	struct km_arena *a = km_arena_new(0);
	struct km_resource_doc mesh = {.type = km_rtype_by_name(KM_STR("Mesh")), .name = KM_STR("default"),
				       .spec = km_json_object(a)};
	struct km_violations v;
	km_violations_init(&v, a);
	if (cp_manager_create(&rt, a, &mesh, &v) != 0)
		abort();
	for (size_t i = 0; i < sizeof(world) / sizeof(world[0]); i++)
		if (put(a, world[i][0], world[i][1], world[i][2] ? parse(a, world[i][2], strlen(world[i][2])) : NULL,
			parse(a, world[i][3], strlen(world[i][3]))) != 0)
			abort(); /* the fixed mesh must be valid */
	km_arena_free(a);
	ready = true;
}

/* Every resource of <rs> encodes as its type's message. */
static void check_encodes(struct km_arena *a, const struct cp_xds_resources *rs)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		const struct km_json *objs = rs->by_type[t];
		for (size_t i = 0; objs && i < objs->len; i++) {
			struct km_buf bytes = KM_BUF_INIT, err = KM_BUF_INIT;
			if (km_pb_encode_json(a, cp_xds_type_url[t], objs->members[i].val, &bytes, &err) != 0) {
				km_error("fuzz", "resource %.*s does not encode: %s", KM_STR_FMT(objs->members[i].key),
					 km_buf_cstr(&err));
				abort();
			}
			km_buf_fini(&bytes);
			km_buf_fini(&err);
		}
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	if (!ready)
		init();
	if (size < 2)
		return 0;
	const char *type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	struct km_arena *a = km_arena_new(0);
	struct km_json *spec = parse(a, (const char *)data + 1, size - 1);
	if (!spec || spec->kind != KM_JSON_OBJECT || put(a, type, "fz", NULL, spec) != 0) {
		km_arena_free(a);
		return 0;
	}
	struct cp_xds_mesh *m = cp_xds_mesh_build(&rt, KM_STR("default"), NULL);
	if (!m)
		abort();
	struct cp_xds_share *sh = cp_xds_share_new();
	for (size_t i = 0; i < m->ndataplanes; i++) {
		const struct cp_xds_dataplane *dp = &m->dataplanes[i];
		for (int shadow = 0; shadow < 2; shadow++) {
			struct cp_xds_metadata md = {.admin_port = 9901, .readiness_port = 9902, .shadow = shadow};
			struct cp_xds_resources rs;
			cp_xds_generate(a, m, dp, &md, &rs);
			check_encodes(a, &rs);
			for (int round = 0; round < 2; round++) {
				struct cp_xds_built b;
				struct km_buf errors = KM_BUF_INIT;
				cp_xds_build(a, m, dp, &md, sh, NULL, &b, NULL, &errors);
				if (errors.len) {
					km_error("fuzz", "build of %.*s: %s", KM_STR_FMT(dp->res.name), km_buf_cstr(&errors));
					abort();
				}
				km_buf_fini(&errors);
				cp_xds_built_release(&b);
			}
		}
	}
	cp_xds_share_free(sh);
	cp_xds_mesh_free(m);
	struct km_resource cur;
	const struct km_rtype *t = km_rtype_by_name(km_str_c(type));
	if (cp_store_get(rt.store, a, t, KM_STR("default"), KM_STR("fz"), &cur) != 0 ||
	    cp_store_remove(rt.store, t, KM_STR("default"), KM_STR("fz"), cur.version) != 0)
		abort();
	km_arena_free(a);
	return 0;
}
