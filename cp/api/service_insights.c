/* SPDX-License-Identifier: Apache-2.0 */
/* The legacy service-insights view: one stored ServiceInsight per mesh
 * ("all-services-<mesh>") holds a map of services; the API serves each entry
 * as its own item, paged and filtered by service type. Kuma 3.0 no longer
 * computes these, but the route and its shape remain. */
#include <stdlib.h>
#include <string.h>

#include "cp/api/api.h"

static const char *const service_types[] = {"internal", "external", "gateway_delegated",
					     "gateway_builtin"};

static struct km_json *item(struct km_arena *a, const struct km_resource *r, struct km_str name,
			    const struct km_json *svc, const struct cp_config *cfg)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, "ServiceInsight"));
	km_json_set(a, o, "mesh", km_json_string(a, r->mesh));
	km_json_set(a, o, "name", km_json_string(a, name));
	km_json_set(a, o, "creationTime", km_json_cstring(a, km_time_format(a, r->ctime)));
	km_json_set(a, o, "modificationTime", km_json_cstring(a, km_time_format(a, r->mtime)));
	struct km_json *v;
	if ((v = km_json_get(svc, "status")))
		km_json_set(a, o, "status", v);
	struct km_json *dps = km_json_get(svc, "dataplanes");
	if (dps && dps->kind == KM_JSON_OBJECT) {
		struct km_json *on = km_json_get(dps, "online"), *off = km_json_get(dps, "offline");
		int64_t total = (on && on->is_int ? on->i : 0) + (off && off->is_int ? off->i : 0);
		struct km_json *d = km_json_object(a);
		km_json_set(a, d, "total", km_json_int(a, total));
		if (on)
			km_json_set(a, d, "online", on);
		if (off)
			km_json_set(a, d, "offline", off);
		km_json_set(a, o, "dataplanes", d);
	}
	struct km_str ty = km_json_get_string(svc, "serviceType");
	if (!ty.len || km_str_eqc(ty, "internal"))
		km_json_set(a, o, "addressPort",
			    km_json_cstring(a, km_arena_printf(a, "%.*s.%s:%u", KM_STR_FMT(name),
							       cfg->dns_server.domain,
							       cfg->dns_server.service_vip_port)));
	else
		km_json_set(a, o, "serviceType", km_json_string(a, ty));
	if ((v = km_json_get(svc, "issuedBackends")))
		km_json_set(a, o, "issuedBackends", v);
	return o;
}

static int cmp_members(const void *x, const void *y)
{
	const struct km_json_member *a = x, *b = y;
	return km_str_cmp(a->key, b->key);
}

/* The services map of the mesh's insight, sorted by name (NULL when none). */
static struct km_json *services(struct cp_api_ctx *c, struct km_str mesh, struct km_resource *r)
{
	struct km_arena *a = c->req->a;
	const char *name = km_arena_printf(a, "all-services-%.*s", KM_STR_FMT(mesh));
	if (cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("ServiceInsight")), mesh,
			 km_str_c(name), r))
		return NULL;
	struct km_json *spec;
	if (km_json_parse(a, r->spec.ptr, r->spec.len, &spec, NULL))
		return NULL;
	struct km_json *svcs = km_json_get(spec, "services");
	if (!svcs || svcs->kind != KM_JSON_OBJECT)
		return NULL;
	qsort(svcs->members, svcs->len, sizeof(svcs->members[0]), cmp_members);
	return svcs;
}

static bool mesh_ok(struct cp_api_ctx *c, struct km_str mesh)
{
	struct km_resource m;
	int rc = cp_store_get(c->rt->store, c->req->a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""),
			      mesh, &m);
	if (rc)
		cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
	return rc == 0;
}

void cp_api_service_insight_get(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	if (!mesh_ok(c, mesh))
		return;
	struct km_resource r;
	struct km_json *svcs = services(c, mesh, &r);
	struct km_json *svc = km_json_get_str(svcs, name);
	if (!svc) {
		cp_api_write_error(c->req, 404, "Could not retrieve a resource", "Not found", NULL);
		return;
	}
	cp_api_write_json(c->req, 200, item(c->req->a, &r, name, svc, c->rt->cfg));
}

void cp_api_service_insight_list(struct cp_api_ctx *c, struct km_str mesh)
{
	struct km_arena *a = c->req->a;
	size_t size = 100, offset = 0;
	const struct km_str *q;
	long long v;
	if ((q = cp_http_query(c->req, "size")) && q->len) {
		if (km_str_to_i64(*q, &v) || v <= 0 || v > 1000) {
			struct km_violations viol;
			km_violations_init(&viol, a);
			km_violations_add(&viol, "size", v > 1000 ? "invalid page size of %lld. Maximum page size is 1000"
								    : "must be greater than 0",
					  v);
			cp_api_write_error(c->req, 400, "Could not retrieve resources", "Invalid page size", &viol);
			return;
		}
		size = (size_t)v;
	}
	if ((q = cp_http_query(c->req, "offset")) && q->len) {
		if (km_str_to_i64(*q, &v) || v < 0) {
			cp_api_write_error(c->req, 400, "Could not retrieve resources", "invalid: invalid offset", NULL);
			return;
		}
		offset = (size_t)v;
	}
	bool want[4] = {true, true, true, true};
	if ((q = cp_http_query(c->req, "type")) && q->len) {
		memset(want, 0, sizeof(want));
		size_t start = 0;
		for (size_t i = 0; i <= q->len; i++) {
			if (i < q->len && q->ptr[i] != ',')
				continue;
			struct km_str t = {q->ptr + start, i - start};
			bool known = false;
			for (size_t k = 0; k < 4; k++)
				if (km_str_eqc(t, service_types[k]))
					want[k] = known = true;
			if (!known) {
				cp_api_write_error(c->req, 400, "Bad Request",
						   "bad request: unsupported service type", NULL);
				return;
			}
			start = i + 1;
		}
	}
	if (!mesh_ok(c, mesh))
		return;
	struct km_resource r;
	struct km_json *svcs = services(c, mesh, &r);
	struct km_json *items = km_json_array(a);
	size_t total = 0;
	for (size_t i = 0; svcs && i < svcs->len; i++) {
		struct km_str ty = km_json_get_string(svcs->members[i].val, "serviceType");
		size_t k = 0;
		for (; k < 4; k++)
			if (km_str_eqc(ty, service_types[k]))
				break;
		if (!ty.len)
			k = 0;
		if (k == 4 || !want[k])
			continue;
		if (total >= offset && items->len < size)
			km_json_array_push(a, items,
					   item(a, &r, svcs->members[i].key, svcs->members[i].val, c->rt->cfg));
		total++;
	}
	struct km_json *out = km_json_object(a);
	km_json_set(a, out, "total", km_json_int(a, (int64_t)total));
	km_json_set(a, out, "items", items);
	km_json_set(a, out, "next",
		    offset + size < total ? km_json_cstring(a, cp_api_next_link(c, offset + size))
					  : km_json_null(a));
	cp_api_write_json(c->req, 200, out);
}
