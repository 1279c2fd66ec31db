/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE names of a MeshIdentity: the trust domain and per-Dataplane SPIFFE
 * ID rendered from spec.spiffeID templates (upstream defaults, fields and the
 * `label` function), checked as go-spiffe does. Results and error messages
 * (upstream's texts) live in the caller's arena. */
#ifndef CP_PKI_SPIFFE_H
#define CP_PKI_SPIFFE_H

#include "base/arena.h"
#include "codec/json.h"

#define CP_PKI_DEFAULT_TRUST_DOMAIN "{{ .Mesh }}.{{ .Zone }}.mesh.local"
#define CP_PKI_DEFAULT_PATH_UNIVERSAL "/workload/{{ .Workload }}"
#define CP_PKI_DEFAULT_PATH_KUBERNETES "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}"

/* The trust domain of the MeshIdentity <spec> in <mesh> whose labels are
 * <labels>: {{ .Mesh }}, {{ .Zone }} (its kuma.io/zone label, else
 * <local_zone>) and `label "k"` on its own labels. 0, or -EINVAL with
 * <*err> set ("executing template failed: ..."). */
int cp_pki_spiffe_trust_domain(struct km_arena *a, const struct km_json *spec, struct km_str mesh,
			       const struct km_json *labels, const char *local_zone, const char **out,
			       const char **err);

/* spiffe://<trust_domain><path> for a Dataplane with <dp_labels>: fields
 * .TrustDomain, .Workload (kuma.io/workload), .Namespace
 * (k8s.kuma.io/namespace), .ServiceAccount (k8s.kuma.io/service-account)
 * and `label "k"` on the Dataplane's labels; the default path follows
 * <environment> ("kubernetes" or universal). 0, or -EINVAL with <*err>
 * ("failed to render SPIFFE ID template: ..." / "failed to parse SPIFFE ID
 * \"x\": path cannot have a trailing slash"). */
int cp_pki_spiffe_id(struct km_arena *a, const struct km_json *spec, const char *trust_domain,
		     const struct km_json *dp_labels, const char *environment, const char **out,
		     const char **err);

struct cp_store;
/* The SPIFFE ID a Dataplane with <dp_labels> in <mesh> gets from its
 * best-matching MeshIdentity (most matchLabels, then the smallest name),
 * whatever the state of that identity's CA; NULL when none applies or its
 * templates do not render. Allocated in <a>. */
const char *cp_pki_spiffe_for_dataplane(struct cp_store *store, struct km_arena *a, struct km_str mesh,
					const char *zone, const struct km_json *dp_labels);

/* A mesh's MeshIdentities read and parsed once, for asking the question
 * above of many Dataplanes (the MeshService generator asks it per service:
 * one store query each was most of its pass on PostgreSQL). */
struct cp_pki_identities {
	struct km_str mesh;
	size_t n;
	struct km_str *names;
	struct km_json **specs, **labels;
};
/* 0 or the store's error; everything in <a>. */
int cp_pki_identities_read(struct cp_store *store, struct km_arena *a, struct km_str mesh,
			   struct cp_pki_identities *out);
const char *cp_pki_spiffe_from(const struct cp_pki_identities *ids, struct km_arena *a, const char *zone,
			       const struct km_json *dp_labels);

/* go-spiffe's spiffeid.FromString check: NULL when valid, else its message. */
const char *cp_pki_spiffe_check_id(struct km_str id);
/* go-spiffe's TrustDomainFromString check: NULL when valid, else its message. */
const char *cp_pki_spiffe_check_trust_domain(struct km_str td);

#endif
