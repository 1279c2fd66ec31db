/* SPDX-License-Identifier: Apache-2.0 */
/* Identity loading for generation (see identity.h). */
#include "cp/xds/identity.h"

#include <errno.h>
#include <string.h>

#include "base/err.h"

static int load(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp, struct cp_xds_tls *tls,
		struct cp_pki_leaf *leaf, struct cp_pki_issue **issue)
{
	memset(tls, 0, sizeof(*tls));
	memset(leaf, 0, sizeof(*leaf));
	if (issue)
		*issue = NULL;
	if (!rt->pki)
		return -KM_E_NOT_FOUND;
	int rc = issue ? cp_pki_leaf_deferred(rt->pki, a, dp->res.mesh, dp->res.name, dp->labels, leaf, issue)
		       : cp_pki_leaf(rt->pki, a, dp->res.mesh, dp->res.name, dp->labels, leaf);
	if (rc && rc != -EINPROGRESS)
		return rc;
	if (!rc && (leaf->external || !leaf->cert_pem || !leaf->key_pem))
		return -ENOTSUP; /* SPIRE delivers its own SDS: not generated here */
	tls->secret_name = leaf->secret_name;
	tls->cert_pem = leaf->cert_pem;
	tls->key_pem = leaf->key_pem;
	tls->keys_fp = leaf->cert_pem ? leaf->pem_fp : 0; /* deferred: set once issued */
	tls->trust_domain = leaf->trust_domain;
	if (cp_pki_trust_bundle(rt->pki, a, dp->res.mesh, NULL, &tls->trust_domains))
		tls->trust_domains = NULL;
	else
		tls->trust_fp = cp_pki_trust_fp(rt->pki, dp->res.mesh);
	return rc;
}

void cp_xds_admin_tls_load(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
			   struct cp_xds_metadata *md)
{
	md->admin_tls = NULL;
	if (!rt->envoy_admin || !md->admin_port || !md->readiness_port || md->proxyless)
		return;
	struct km_str address = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
	if (!cp_envoy_admin_exposed(address, md->admin_address, md->admin_socket))
		return;
	struct cp_envoy_admin_tls t;
	if (cp_envoy_admin_server_tls(rt->envoy_admin, address, &t))
		return;
	struct cp_envoy_admin_tls *copy = km_arena_alloc(a, sizeof(*copy));
	copy->chain_pem = km_arena_strdup(a, t.chain_pem);
	copy->key_pem = km_arena_strdup(a, t.key_pem);
	copy->ca_pem = km_arena_strdup(a, t.ca_pem);
	copy->fp = t.fp;
	copy->ca_fp = t.ca_fp;
	md->admin_tls = copy;
}

int cp_xds_identity_load(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
			 struct cp_xds_tls *tls, struct cp_pki_leaf *leaf)
{
	return load(rt, a, dp, tls, leaf, NULL);
}

int cp_xds_identity_load_deferred(struct cp_runtime *rt, struct km_arena *a, const struct cp_xds_dataplane *dp,
				  struct cp_xds_tls *tls, struct cp_pki_leaf *leaf, struct cp_pki_issue **issue)
{
	return load(rt, a, dp, tls, leaf, issue);
}
