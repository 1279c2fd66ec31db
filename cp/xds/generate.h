/* SPDX-License-Identifier: Apache-2.0 */
/* Envoy configuration of one proxy, as canonical-JSON resources keyed by type
 * and name. Generators run in a fixed order (the table in generate.c) and
 * only read the mesh context; everything lives in the caller's arena. */
#ifndef CP_XDS_GENERATE_H
#define CP_XDS_GENERATE_H

#include "cp/xds/context.h"

/* In push order: secrets and clusters before what references them. */
enum cp_xds_type {
	CP_XDS_SECRET,
	CP_XDS_CLUSTER,
	CP_XDS_ENDPOINT,
	CP_XDS_LISTENER,
	CP_XDS_NTYPES
};

/* "type.googleapis.com/envoy.config.cluster.v3.Cluster", ... */
extern const char *const cp_xds_type_url[CP_XDS_NTYPES];
/* Type for a type URL, or -1. */
int cp_xds_type_of(struct km_str type_url);

struct cp_xds_resources {
	struct km_json *by_type[CP_XDS_NTYPES]; /* objects: name -> resource */
};

int cp_xds_generate(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
		    const struct cp_xds_metadata *md, struct cp_xds_resources *out);

/* The same configuration in pieces, for cp/xds/share.c: every resource but
 * the MeshService outbounds and the secrets (policies applied; the builder
 * encodes the secrets itself, cp/xds/secrets.h), and the outbounds to build
 * one at a time. An outbound's cluster, load assignment and listener (all
 * named after its kri) depend only on the outbound, the proxy's identity
 * and what cp_policy_outbound_key() reports; the plugins touch each
 * resource on its own, so the pieces equal cp_xds_generate()'s resources.
 * Not for proxyless proxies (their resources share the outbounds' names). */
struct cp_policy_prepared;
struct cp_xds_outbound {
	const struct cp_xds_service *s;
	const struct cp_xds_port *p;
	struct km_str address; /* where the proxy listens for it */
	uint32_t port;
	const char *kri;       /* the resources' name */
	/* a destination the proxy reaches only through another outbound's
	 * routes (a MeshHTTPRoute backendRef or mirror): its cluster and load
	 * assignment, no listener; address and port are empty */
	bool backend_only;
};
int cp_xds_generate_local(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			  const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			  struct cp_xds_resources *out, struct cp_xds_outbound **outbounds, size_t *n);
/* Only the outbounds cp_xds_generate_local() would list: the Dataplane's,
 * then the destinations their routes (<pp>'s) reach besides. */
void cp_xds_list_outbounds(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			   const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			   struct cp_xds_outbound **outbounds, size_t *n);
/* The outbound listener's "address" (where the proxy listens for it). No
 * policy plugin changes it: cp/xds/share.c encodes it on its own and
 * appends it to a listener body shared by every consumer. */
struct km_json *cp_xds_outbound_address(struct km_arena *a, const struct cp_xds_outbound *o);
/* The strings of <o>'s cluster and listener body that name the
 * destination, to <vars> (at most <cap>): its kri, its route's name (HTTP)
 * and, with mTLS, the SNI and each SPIFFE identity it must present. What
 * else of the destination decides those resources' shape (its protocol,
 * how many identities) is appended to <shape>. Returns the count, 0 when
 * they cannot stand for the destination (more than <cap>, one shorter than
 * 4 bytes: it could equal a part of anything). cp/xds/shape.h says why. */
size_t cp_xds_outbound_vars(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_metadata *md,
			    const struct cp_xds_outbound *o, struct km_str *vars, size_t cap, struct km_buf *shape);
/* Whether <proto> (a port's appProtocol) is served through an HTTP
 * connection manager (http, http2, grpc). */
bool cp_xds_is_http(struct km_str proto);
/* The name of an outbound's catch-all route (upstream's hash of its
 * matches: the same for every outbound). */
const char *cp_xds_catch_all_route_name(void);
/* The SNI an outbound to port <p> of <s> in <mesh> sends. */
const char *cp_xds_service_sni(struct km_arena *a, struct km_str mesh, const struct cp_xds_service *s,
			       const struct cp_xds_port *p);
/* Only the outbound's resources of <types> (bits 1 << CP_XDS_*). */
void cp_xds_generate_outbound(struct km_arena *a, const struct cp_xds_mesh *m, const struct cp_xds_dataplane *dp,
			      const struct cp_xds_metadata *md, struct cp_policy_prepared *pp,
			      const struct cp_xds_outbound *o, unsigned types, struct cp_xds_resources *out);

/* The `_config` view: {"xds": {<typeUrl>: {<name>: resource}}}. */
struct km_json *cp_xds_resources_json(struct km_arena *a, const struct cp_xds_resources *r);

#endif
