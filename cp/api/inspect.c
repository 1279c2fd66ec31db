/* SPDX-License-Identifier: Apache-2.0 */
/* Per-dataplane inspection: GET .../dataplanes/{name}/_config returns the
 * Envoy configuration the control plane computes for that proxy, from the
 * same generators the xDS server uses. */
#include <string.h>

#include "base/err.h"
#include "cp/api/api.h"
#include "cp/xds/generate.h"

static bool flag_param(struct cp_api_ctx *c, const char *key, bool *out)
{
	const struct km_str *v = cp_http_query(c->req, key);
	*out = false;
	if (!v || !v->len || km_str_eqc(*v, "false"))
		return true;
	if (km_str_eqc(*v, "true")) {
		*out = true;
		return true;
	}
	cp_api_write_error(c->req, 400, "Bad Request",
			   km_arena_printf(c->req->a, "bad request: unsupported value for query parameter '%s'", key),
			   NULL);
	return false;
}

void cp_api_dataplane_config(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	bool shadow;
	if (!flag_param(c, "shadow", &shadow))
		return;
	const struct km_str *inc = cp_http_query(c->req, "include");
	bool diff = inc && km_str_eqc(*inc, "diff");
	if (inc && inc->len && !diff) {
		cp_api_write_error(c->req, 400, "Bad Request",
				   "bad request: unsupported value for query parameter 'include'", NULL);
		return;
	}
	struct km_resource m, insight;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &m);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
		return;
	}
	rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("DataplaneInsight")), mesh, name, &insight);
	struct cp_xds_mesh *ctx = rc ? NULL : cp_xds_mesh_build(c->rt, mesh);
	const struct cp_xds_dataplane *dp = ctx ? cp_xds_mesh_dataplane(ctx, name) : NULL;
	if (!dp) {
		cp_xds_mesh_free(ctx);
		cp_api_write_error(c->req, 404, "Could not retrieve a resource", "Not found", NULL);
		return;
	}
	struct km_json *ins = NULL;
	km_json_parse(a, insight.spec.ptr, insight.spec.len, &ins, NULL);
	struct cp_xds_metadata md;
	cp_xds_metadata_parse(a, ins, &md);
	struct cp_xds_resources res;
	cp_xds_generate(a, ctx, dp, &md, &res);
	struct km_json *out = cp_xds_resources_json(a, &res);
	if (diff) /* policies in shadow mode change nothing yet: no shadow-only policy engine */
		km_json_set(a, out, "diff", km_json_array(a));
	cp_api_write_json(c->req, 200, out);
	cp_xds_mesh_free(ctx);
}
