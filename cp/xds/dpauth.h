/* SPDX-License-Identifier: Apache-2.0 */
/* Dataplane-token authentication (upstream pkg/xds/auth/universal): the
 * token's signature, expiry and revocation, then its bindings (name, mesh,
 * tags, workload) against the Dataplane that presents it. Keys, revocation
 * lists and MeshIdentities are read from the store on every call, so a
 * rotation or revocation applies at once. Scratch data lives in <a>. */
#ifndef CP_XDS_DPAUTH_H
#define CP_XDS_DPAUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "codec/json.h"

struct cp_runtime;

/* Authenticates <token> (NULL or "" when the proxy sent none) for the Dataplane
 * <mesh>/<name> whose labels are <dp_labels> (an object, or NULL for none).
 *
 * Returns 0 when the token is accepted, or when dpServer.authn.dpProxy.type is
 * "none". Otherwise <err> receives upstream's whole stream error text,
 * "authentication failed: <reason>", and the result is:
 *  -KM_E_UNAUTHENTICATED  the token does not verify (malformed, unknown kid,
 *                         bad signature, expired, revoked);
 *  -KM_E_FORBIDDEN        it verifies but is bound to another name, mesh,
 *                         tag value or workload;
 *  another negative code  the store failed (the reason names it).
 * Signing keys: dpServer.authn.dpProxy.dpToken.validator.publicKeys for the
 * mesh (or for every mesh), then, with validator.useSecrets, the Secrets
 * dataplane-token-signing-key-<mesh>-<serial>. Revocations: the ids listed in
 * dataplane-token-revocations-<mesh>, read both as a Secret in the mesh (the
 * documented place) and as a GlobalSecret (where upstream's code looks). */
int cp_dpauth_check(struct cp_runtime *rt, struct km_arena *a, const char *token,
		    struct km_str mesh, struct km_str name, const struct km_json *dp_labels,
		    struct km_buf *err);

/* The binding rules alone, for a token <tok> already verified (upstream
 * authDataplane after Validate): name, mesh, every token tag on the labels,
 * then the workload. <identity_uses_workload> tells whether the MeshIdentity
 * selecting the Dataplane derives its identity from kuma.io/workload (only
 * consulted for an unbound token on a Dataplane with that label). 0 or
 * -KM_E_FORBIDDEN with the reason (no prefix) in <err>. */
struct cp_tokens_dp;
int cp_dpauth_bindings(const struct cp_tokens_dp *tok, struct km_str mesh, struct km_str name,
		       const struct km_json *dp_labels, bool identity_uses_workload,
		       struct km_buf *err);

/* True when a MeshIdentity spec (<spec>, parsed) selects a Dataplane with
 * <labels>, with <*match_count> = the number of matchLabels it requires. */
bool cp_dpauth_identity_selects(const struct km_json *spec, const struct km_json *labels,
				size_t *match_count);
/* True when the identity's SPIFFE ID path (spec.spiffeID.path, or the
 * environment's default) references the workload label. */
bool cp_dpauth_identity_uses_workload(const struct km_json *spec, const char *environment);

#endif
