/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only routes, enabled by KUMA_TEST_HOOKS=true: reset the store and seed
 * it with raw resources (no validation, no computed labels, and after a reset
 * no Workloads or MeshServices generated from them), as upstream's API tests
 * do with direct store writes. */
#include "base/err.h"
#include "codec/yaml.h"
#include "cp/api/api.h"
#include "cp/envoyadmin.h"
#include "resource/validate.h"

void cp_api_test_reset(struct cp_api_ctx *c)
{
	struct cp_store *s = c->rt->store;
	cp_envoy_admin_settle(c->rt->envoy_admin); /* its CA lands now, then goes */
	for (size_t t = 0; t < km_rtypes_len; t++) {
		for (;;) {
			struct cp_list_opts o = {.size = 1};
			struct cp_list_result r;
			if (cp_store_list(s, c->req->a, &km_rtypes[t], &o, &r) || r.len == 0)
				break;
			cp_store_remove(s, &km_rtypes[t], r.items[0].mesh, r.items[0].name, 0);
		}
	}
	c->rt->side_effects = false;
	cp_api_write_json(c->req, 200, km_json_object(c->req->a));
}

void cp_api_test_seed(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json **docs;
	size_t n;
	struct km_buf err = KM_BUF_INIT;
	int rc = km_yaml_parse(a, c->req->body.ptr, c->req->body.len, &docs, &n, &err);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct km_resource_doc d;
		rc = km_resource_doc_from_json(a, docs[i], NULL, &d, &err);
		if (rc)
			break;
		/* like decoding into upstream's Go types: unknown fields are pruned,
		 * nothing is validated */
		struct km_violations ignored;
		km_violations_init(&ignored, a);
		km_validate_resource_ex(a, &d, &ignored, KM_VALIDATE_VALIDATOR_ONLY);
		struct km_resource r, cur;
		km_resource_from_doc(a, &d, &r);
		if (cp_store_get(c->rt->store, a, d.type, d.mesh, d.name, &cur) == 0) {
			r.version = cur.version;
			rc = cp_store_update(c->rt->store, &r);
		} else {
			rc = cp_store_create(c->rt->store, &r);
		}
		if (rc)
			km_buf_printf(&err, "store: %s", km_strerror(rc));
	}
	if (rc)
		cp_api_write_error(c->req, 400, "Bad Request", km_buf_cstr(&err), NULL);
	else
		cp_api_write_json(c->req, 200, km_json_object(a));
	km_buf_fini(&err);
}
