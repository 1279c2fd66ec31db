/* SPDX-License-Identifier: Apache-2.0 */
/* The bridge from workload identities (cp/pki) to what the generators need:
 * a proxy's certificate, key and the mesh's trust domains. */
#ifndef CP_XDS_IDENTITY_H
#define CP_XDS_IDENTITY_H

#include "cp/pki/pki.h"
#include "cp/xds/context.h"

/* Fills <tls> (strings in <a>) and <leaf> for the Dataplane. Returns 0 when
 * the proxy has an identity with a certificate, or the cp_pki_leaf error
 * (-KM_E_NOT_FOUND: no identity, plaintext; -EAGAIN: not ready yet). */
int cp_xds_identity_load(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
			 struct cp_xds_tls *tls, struct cp_pki_leaf *leaf);
/* cp_xds_identity_load with the certificate issuance, when one is due,
 * handed back in *<issue> (cp_pki_leaf_deferred): returns -EINPROGRESS with
 * <tls> filled but for the certificate and key. */
int cp_xds_identity_load_deferred(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
				  struct cp_xds_tls *tls, struct cp_pki_leaf *leaf, struct cp_pki_issue **issue);

/* Sets <md>->admin_tls (a copy in <a>) when the proxy's admin API is served
 * by its system_envoy_admin listener and the Envoy Admin CA can be had
 * (else leaves it NULL: the listener then serves /ready only). */
void cp_xds_admin_tls_load(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
			   struct cp_xds_metadata *md);

#endif
