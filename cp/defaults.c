/* SPDX-License-Identifier: Apache-2.0 */
/* What a fresh control plane creates, as upstream's pkg/defaults: the default
 * Mesh, HostnameGenerators, signing keys, the admin user token, and per mesh a
 * dataplane-token signing key plus the four default policies. Resources are
 * described as JSON text in tables and created only when missing. */
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/json.h"
#include "cp/defaults_keys.h"
#include "cp/manager.h"

struct default_res {
	const char *type;
	const char *name; /* printf format with the mesh name for per-mesh rows */
	const char *labels;
	const char *spec;
};

/* pkg/defaults/mesh: timeouts, retries and circuit breakers for every mesh */
static const struct default_res mesh_policies[] = {
    {"MeshTimeout", "mesh-timeout-all-%s", NULL,
     "{\"targetRef\":{\"kind\":\"Mesh\"},\"rules\":[{\"default\":{\"connectionTimeout\":\"10s\","
     "\"idleTimeout\":\"2h0m0s\",\"http\":{\"requestTimeout\":\"0s\",\"streamIdleTimeout\":"
     "\"1h0m0s\",\"maxStreamDuration\":\"0s\"}}}]}"},
    {"MeshTimeout", "mesh-timeout-to-all-%s", NULL,
     "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{"
     "\"connectionTimeout\":\"5s\",\"idleTimeout\":\"1h0m0s\",\"http\":{\"requestTimeout\":\"15s\","
     "\"streamIdleTimeout\":\"30m0s\"}}}]}"},
    {"MeshCircuitBreaker", "mesh-circuit-breaker-all-%s", NULL,
     "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{"
     "\"connectionLimits\":{\"maxConnections\":1024,\"maxPendingRequests\":1024,\"maxRequests\":"
     "1024,\"maxRetries\":3}}}]}"},
    {"MeshRetry", "mesh-retry-all-%s", NULL,
     "{\"targetRef\":{\"kind\":\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{"
     "\"tcp\":{\"maxConnectAttempt\":5},\"http\":{\"numRetries\":5,\"perTryTimeout\":\"16s\","
     "\"backOff\":{\"baseInterval\":\"25ms\",\"maxInterval\":\"250ms\"}},\"grpc\":{\"numRetries\":5,"
     "\"perTryTimeout\":\"16s\",\"backOff\":{\"baseInterval\":\"25ms\",\"maxInterval\":\"250ms\"}}}}]}"},
};

/* pkg/defaults/hostname_generator.go, zone mode on Universal */
static const struct default_res zone_hostname_generators[] = {
    {"HostnameGenerator", "local-mesh-external-service", "{\"kuma.io/origin\":\"zone\"}",
     "{\"selector\":{\"meshExternalService\":{\"matchLabels\":{\"kuma.io/origin\":\"zone\"}}},"
     "\"template\":\"{{ .DisplayName }}.extsvc.mesh.local\"}"},
    {"HostnameGenerator", "local-universal-mesh-service", "{\"kuma.io/origin\":\"zone\"}",
     "{\"selector\":{\"meshService\":{\"matchLabels\":{\"kuma.io/origin\":\"zone\"}}},"
     "\"template\":\"{{ .DisplayName }}.svc.mesh.local\"}"},
};

static const struct default_res global_hostname_generators[] = {
    {"HostnameGenerator", "synced-mesh-multi-zone-service", NULL,
     "{\"selector\":{\"meshMultiZoneService\":{\"matchLabels\":{\"kuma.io/origin\":\"global\"}}},"
     "\"template\":\"{{ .DisplayName }}.mzsvc.mesh.local\"}"},
    {"HostnameGenerator", "synced-kube-mesh-service", NULL,
     "{\"selector\":{\"meshService\":{\"matchLabels\":{\"kuma.io/origin\":\"global\","
     "\"k8s.kuma.io/is-headless-service\":\"false\",\"kuma.io/env\":\"kubernetes\"}}},"
     "\"template\":\"{{ .DisplayName }}.{{ .Namespace }}.svc.{{ .Zone }}.mesh.local\"}"},
    {"HostnameGenerator", "synced-headless-kube-mesh-service", NULL,
     "{\"selector\":{\"meshService\":{\"matchLabels\":{\"kuma.io/origin\":\"global\","
     "\"k8s.kuma.io/is-headless-service\":\"true\",\"kuma.io/env\":\"kubernetes\"}}},"
     "\"template\":\"{{ label \\\"statefulset.kubernetes.io/pod-name\\\" }}.{{ label "
     "\\\"k8s.kuma.io/service-name\\\" }}.{{ .Namespace }}.svc.{{ .Zone }}.mesh.local\"}"},
    {"HostnameGenerator", "synced-universal-mesh-service", NULL,
     "{\"selector\":{\"meshService\":{\"matchLabels\":{\"kuma.io/origin\":\"global\","
     "\"kuma.io/env\":\"universal\"}}},\"template\":\"{{ .DisplayName }}.svc.{{ .Zone }}.mesh.local\"}"},
    {"HostnameGenerator", "synced-mesh-external-service", NULL,
     "{\"selector\":{\"meshExternalService\":{\"matchLabels\":{\"kuma.io/origin\":\"global\"}}},"
     "\"template\":\"{{ .DisplayName }}.extsvc.mesh.local\"}"},
};

/* Defaults go through the manager's label computation, as upstream's
 * resource manager does for them. */
static int ensure(struct cp_runtime *rt, struct km_arena *a, const struct default_res *d,
		  struct km_str mesh, bool computed_labels)
{
	struct km_resource_doc doc = {0};
	doc.type = km_rtype_by_name(km_str_c(d->type));
	doc.mesh = mesh;
	const char *name = strstr(d->name, "%s")
			       ? km_arena_printf(a, d->name, km_arena_strndup(a, mesh.ptr, mesh.len))
			       : d->name;
	doc.name = km_str_c(name);
	if (km_json_parse(a, d->spec, strlen(d->spec), &doc.spec, NULL))
		return -EINVAL;
	if (d->labels && km_json_parse(a, d->labels, strlen(d->labels), &doc.labels, NULL))
		return -EINVAL;
	struct km_resource cur;
	if (cp_store_get(rt->store, a, doc.type, doc.mesh, doc.name, &cur) == 0)
		return 0;
	if (computed_labels) {
		struct km_violations v;
		km_violations_init(&v, a);
		int rc = cp_manager_create(rt, a, &doc, &v);
		if (rc == 0)
			km_info("defaults", "default resource created type=%s name=%s mesh=%.*s", d->type,
				name, KM_STR_FMT(mesh));
		return rc == -KM_E_EXISTS ? 0 : rc;
	}
	bool created;
	return cp_manager_ensure(rt, a, &doc, &created);
}

static bool skipped(const struct km_json *mesh_spec, const char *type)
{
	struct km_json *skip = km_json_get(mesh_spec, "skipCreatingInitialPolicies");
	for (size_t i = 0; skip && skip->kind == KM_JSON_ARRAY && i < skip->len; i++) {
		struct km_json *s = skip->items[i];
		if (s->kind == KM_JSON_STRING && (km_str_eqc(s->s, "*") || km_str_eqc(s->s, type)))
			return true;
	}
	return false;
}

int cp_defaults_mesh(struct cp_runtime *rt, struct km_arena *a, struct km_str mesh,
		     const struct km_json *mesh_spec)
{
	int rc = cp_defaults_signing_key(rt, a, "Secret", mesh,
					 km_arena_printf(a, "dataplane-token-signing-key-%.*s-1",
							 KM_STR_FMT(mesh)));
	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(mesh_policies) / sizeof(mesh_policies[0]); i++) {
		if (skipped(mesh_spec, mesh_policies[i].type))
			continue;
		rc = ensure(rt, a, &mesh_policies[i], mesh, true);
		if (rc)
			return rc;
	}
	return 0;
}

static bool stored(struct cp_runtime *rt, struct km_arena *a, const char *type, const char *name)
{
	struct km_resource r;
	return cp_store_get(rt->store, a, km_rtype_by_name(km_str_c(type)), KM_STR(""), km_str_c(name), &r) == 0;
}

int cp_defaults_ensure(struct cp_runtime *rt, bool skip_mesh, bool skip_hostname_generators)
{
	struct km_arena *a = km_arena_new(0);
	int rc = 0;
	/* the signing keys this will make, generated side by side meanwhile */
	size_t keys = !stored(rt, a, "GlobalSecret", "user-token-signing-key-1");
	if (!rt->global_mode)
		keys += !stored(rt, a, "GlobalSecret", "zone-token-signing-key-1");
	if (!skip_mesh && !stored(rt, a, "Mesh", "default"))
		keys++; /* its dataplane token key */
	cp_defaults_keys_prefetch(keys);
	if (!skip_hostname_generators) {
		const struct default_res *rows = rt->global_mode ? global_hostname_generators
								 : zone_hostname_generators;
		size_t n = rt->global_mode ? sizeof(global_hostname_generators) / sizeof(rows[0])
					   : sizeof(zone_hostname_generators) / sizeof(rows[0]);
		for (size_t i = 0; i < n && rc == 0; i++)
			rc = ensure(rt, a, &rows[i], KM_STR(""), false);
	}
	if (rc == 0)
		rc = cp_defaults_signing_key(rt, a, "GlobalSecret", KM_STR(""), "user-token-signing-key-1");
	if (rc == 0 && !rt->global_mode)
		rc = cp_defaults_signing_key(rt, a, "GlobalSecret", KM_STR(""), "zone-token-signing-key-1");
	if (rc == 0)
		rc = cp_defaults_admin_token(rt, a);
	if (rc == 0 && !skip_mesh) {
		static const struct default_res mesh = {"Mesh", "default", NULL, "{}"};
		struct km_resource cur;
		if (cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""),
				 KM_STR("default"), &cur) != 0) {
			rc = ensure(rt, a, &mesh, KM_STR(""), true);
			if (rc == 0)
				km_info("defaults", "default mesh created name=default");
		}
	}
	cp_defaults_keys_drain();
	km_arena_free(a);
	return rc;
}
