/* SPDX-License-Identifier: Apache-2.0 */
/* The data model xDS generation reads: a mesh context (every MeshService of a
 * mesh with its ports and resolved endpoints, every Dataplane, every policy),
 * immutable once built, and the proxy view of one Dataplane. A new context
 * is built when a write in the mesh changes what it holds; generation never
 * touches the store.
 *
 * Dataplanes and MeshServices come parsed from a cache (struct
 * cp_xds_cache) that lives across builds: a change event marks one name
 * stale, the next build re-reads that record alone, and every other entry
 * is shared (reference counted) between the old and the new context. So a
 * rebuild after one write costs a few pointer copies per Dataplane, not a
 * store listing and a JSON parse of every record. The policies' listings
 * are kept there too, per type, until a write of that type. */
#ifndef CP_XDS_CONTEXT_H
#define CP_XDS_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/ptab.h"
#include "codec/json.h"
#include "cp/envoyadmin.h"
#include "cp/runtime.h"

struct cp_xds_endpoint {
	struct km_str address;
	uint32_t port;
	struct km_json *labels; /* the Dataplane's labels (load-balancing metadata) */
	struct km_str zone;
	bool healthy;
};

struct cp_xds_port {
	uint32_t port;
	struct km_str section;      /* port name, or the port number as text */
	const char *kri;            /* cp_xds_service_kri(), made with the context */
	/* made with the context too (NULL in ports made elsewhere: computed
	 * when used): the SNI (cp/xds/generate.h) */
	const char *sni;
	struct km_str app_protocol; /* tcp, http, http2, grpc */
	struct km_json *target_port; /* number or inbound name */
	struct cp_xds_endpoint *endpoints;
	size_t nendpoints;
};

struct cp_xds_service {
	uint64_t fp;              /* fingerprint of everything below (ports and endpoints included) */
	struct km_str name;       /* display name */
	struct km_str store_name; /* name in the store */
	struct km_str zone;
	struct km_str ns;
	struct km_json *labels;
	struct km_json *spec;
	struct km_json *status;
	struct cp_xds_port *ports;
	size_t nports;
};

struct cp_xds_dataplane {
	struct km_resource res;
	struct km_json *spec;
	struct km_json *labels;
	uint64_t fp;        /* of its name, labels and spec: what generation reads of it */
	uint64_t labels_fp; /* of its labels alone */
};

struct cp_policy; /* cp/policy/policy.h */
struct cp_xds_cached; /* a cache entry (context.c) */
struct svc_resolution; /* a MeshService's resolved ports (context.c) */

struct cp_xds_mesh {
	struct km_arena *a;
	struct km_str name;
	const char *zone;
	uint64_t generation; /* bumped on every rebuild */
	struct cp_xds_service *services;
	size_t nservices;
	struct cp_xds_dataplane *dataplanes;
	size_t ndataplanes;
	struct km_json *internal_cidrs; /* ipam.knownInternalCIDRs as [{addressPrefix, prefixLen}] */
	struct km_json *mesh_labels;    /* the Mesh's labels (object) */
	/* every targetRef policy of the mesh, shadow ones included, and its
	 * MeshExternalServices and MeshMultiZoneServices (cp/policy/policy.h) */
	struct cp_policy *policies;
	size_t npolicies;
	uint64_t fp_rest;  /* fingerprint of what every proxy depends on: Mesh labels, CIDRs (policies: each its fp) */
	bool sorted;       /* dataplanes and services are sorted by store name (binary search) */
	/* dataplanes by the hash of their store name (a built context's: every
	 * pass and build looks proxies up) */
	struct km_ptab dp_names;
	/* the services whose display name is not their store name, by display
	 * name (then store name): a lookup that misses the store names */
	const struct cp_xds_service **aliases;
	size_t naliases;
	struct cp_policy_cache *policy_cache; /* `to` rules by selecting policies (NULL: none kept) */
	struct cp_xds_cached **held; /* cache entries this context references */
	size_t nheld;
	struct svc_resolution **resolutions; /* the services' resolved ports (context.c) */
	size_t nresolutions;
	size_t services_resolved; /* services whose endpoints this build resolved (the others kept theirs) */
};

/* Parsed Dataplanes and MeshServices of one mesh, kept across builds. */
struct cp_xds_cache;
struct cp_xds_cache *cp_xds_cache_new(void);
void cp_xds_cache_free(struct cp_xds_cache *c);
/* The record <name> of type <t> changed (or was deleted): the next build
 * re-reads it, and lists again the policies of <t> (or its
 * MeshExternalServices, MeshMultiZoneServices); other types are ignored.
 * Every write must be marked so (the server does on every change event):
 * a cached listing is otherwise used as it is. */
void cp_xds_cache_stale(struct cp_xds_cache *c, const struct km_rtype *t, struct km_str name);
/* Everything may have changed (a resync): the next build lists the store. */
void cp_xds_cache_reset(struct cp_xds_cache *c);
/* Entries held (for memory accounting and tests). */
size_t cp_xds_cache_len(const struct cp_xds_cache *c);

/* Builds the context of <mesh> through <cache> (NULL: a throwaway one);
 * the caller frees it with cp_xds_mesh_free. Returns NULL when the mesh
 * does not exist or the store failed. */
struct cp_xds_mesh *cp_xds_mesh_build(struct cp_runtime *rt, struct km_str mesh, struct cp_xds_cache *cache);
/* Re-reads the MeshServices marked stale since the last build: false when
 * none changed what a context takes from it (its fingerprint leaves out the
 * spec's state and the status's dataplaneProxies, which the generator
 * rewrites as proxies come and go) and none came or went, so a context
 * built before them still holds; true otherwise (and on a store error). */
bool cp_xds_cache_services_moved(struct cp_runtime *rt, struct km_str mesh, struct cp_xds_cache *cache);
void cp_xds_mesh_free(struct cp_xds_mesh *m);
const struct cp_xds_service *cp_xds_mesh_service(const struct cp_xds_mesh *m, struct km_str name);
const struct cp_xds_dataplane *cp_xds_mesh_dataplane(const struct cp_xds_mesh *m, struct km_str name);
/* kri_msvc_<mesh>_<zone>_<ns>_<name>_<section>: the port's own when the
 * context made it, else printed in <a>. */
const char *cp_xds_service_kri(struct km_arena *a, const struct cp_xds_mesh *m,
			       const struct cp_xds_service *s, const struct cp_xds_port *p);

/* The service port whose kri (above) is <kri>, or NULL. */
const struct cp_xds_port *cp_xds_mesh_port_by_kri(struct km_arena *a, const struct cp_xds_mesh *m,
						 struct km_str kri);

/* What the proxy told us about itself (node metadata / DataplaneInsight). */
/* The proxy's workload identity (cp/pki), when a MeshIdentity applies. */
struct cp_xds_tls {
	const char *secret_name;    /* kri_mid_<mesh>_<zone>__<identity>_ */
	const char *cert_pem, *key_pem;
	const char *trust_domain;   /* of this proxy's identity */
	struct km_json *trust_domains; /* {trustDomain: PEM} of every MeshTrust in the mesh */
	/* cp_pki_pem_fp() of cert_pem and key_pem and cp_pki_trust_fp() of
	 * trust_domains, made once by the PKI module: what the build
	 * fingerprints instead of the PEMs (0: not known, the PEMs are) */
	uint64_t keys_fp, trust_fp;
};

struct cp_xds_metadata {
	const struct cp_xds_tls *tls; /* NULL: plaintext (no MeshIdentity) */
	uint32_t admin_port;     /* 0: no admin listener */
	uint32_t readiness_port; /* 0: no readiness cluster */
	struct km_str admin_address, admin_socket; /* dataplane.admin.address / .socketPath */
	/* the admin listener's TLS chain (cp_xds_admin_tls_load); NULL: none */
	const struct cp_envoy_admin_tls *admin_tls;
	struct km_str workdir;
	struct km_str metrics_cert, metrics_key; /* metricsCertPath / metricsKeyPath */
	struct km_str host_ip;                   /* dynamicMetadata.HOST_IP (kuma-dp's $HOST_IP) */
	bool ipv6;                               /* ipv6Enabled */
	struct km_json *features;
	struct km_json *raw; /* the whole metadata object, or NULL */
	bool proxyless;      /* a gRPC xDS client, not an Envoy started by kuma-dp */
	bool shadow;         /* inspection only: kuma.io/effect: shadow policies count too */
};

/* Reads metadata from a DataplaneInsight-style object ({"metadata": {...}})
 * or a node metadata Struct rendered as JSON. */
void cp_xds_metadata_parse(struct km_arena *a, const struct km_json *obj, struct cp_xds_metadata *out);
/* From the node metadata of a live stream: also tells proxyless gRPC clients
 * (no dataplane.proxyType) apart from kuma-dp's Envoys. */
void cp_xds_metadata_node(struct km_arena *a, const struct km_json *node_md, struct cp_xds_metadata *out);

#endif
