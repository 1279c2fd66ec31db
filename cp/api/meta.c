/* SPDX-License-Identifier: Apache-2.0 */
/* Catalogue and identity endpoints: /, /who-am-i, /policies, /_resources,
 * /config, /global-insight(s) and /_kri/{kri}. All derived from the type table
 * and the runtime, so they can never disagree with the CRUD routes. */
#include <string.h>

#include "cp/api/api.h"

void cp_api_index(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "hostname", km_json_cstring(a, c->rt->hostname));
	km_json_set(a, o, "product", km_json_cstring(a, "Kuma"));
	km_json_set(a, o, "version", km_json_cstring(a, c->rt->version));
	km_json_set(a, o, "instanceId", km_json_cstring(a, c->rt->instance_id));
	km_json_set(a, o, "clusterId", km_json_cstring(a, c->rt->cluster_id));
	km_json_set(a, o, "gui", km_json_cstring(a, "/gui"));
	cp_api_write_json(c->req, 200, o);
}

void cp_api_who_am_i(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "name", km_json_cstring(a, c->user.name));
	struct km_json *g = km_json_array(a);
	for (const char *const *p = c->user.groups; p && *p; p++)
		km_json_array_push(a, g, km_json_cstring(a, *p));
	km_json_set(a, o, "groups", g);
	cp_api_write_json(c->req, 200, o);
}

static bool read_only(const struct cp_runtime *rt, const struct km_rtype *t)
{
	return rt->read_only || km_rtype_has(t, KM_RT_READ_ONLY);
}

void cp_api_policies(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json *list = km_json_array(a);
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		if (!km_rtype_has(t, KM_RT_POLICY))
			continue;
		struct km_json *p = km_json_object(a);
		km_json_set(a, p, "name", km_json_cstring(a, t->name));
		km_json_set(a, p, "readOnly", km_json_bool(a, read_only(c->rt, t)));
		km_json_set(a, p, "path", km_json_cstring(a, t->path));
		km_json_set(a, p, "singularDisplayName", km_json_cstring(a, t->singular_display));
		km_json_set(a, p, "pluralDisplayName", km_json_cstring(a, t->plural_display));
		km_json_set(a, p, "isExperimental", km_json_bool(a, false));
		km_json_set(a, p, "isTargetRefBased", km_json_bool(a, true));
		km_json_set(a, p, "isInbound", km_json_bool(a, km_rtype_has(t, KM_RT_INBOUND)));
		km_json_set(a, p, "isOutbound", km_json_bool(a, km_rtype_has(t, KM_RT_OUTBOUND)));
		km_json_array_push(a, list, p);
	}
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "policies", list);
	cp_api_write_json(c->req, 200, o);
}

void cp_api_resources(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json *list = km_json_array(a);
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		struct km_json *r = km_json_object(a);
		km_json_set(a, r, "name", km_json_cstring(a, t->name));
		km_json_set(a, r, "path", km_json_cstring(a, t->path));
		km_json_set(a, r, "pluralDisplayName", km_json_cstring(a, t->plural_display));
		km_json_set(a, r, "singularDisplayName", km_json_cstring(a, t->singular_display));
		km_json_set(a, r, "readOnly", km_json_bool(a, read_only(c->rt, t)));
		km_json_set(a, r, "scope",
			    km_json_cstring(a, t->scope == KM_SCOPE_MESH ? "Mesh" : "Global"));
		km_json_set(a, r, "shortName", km_json_cstring(a, t->short_name));
		km_json_set(a, r, "includeInFederation",
			    km_json_bool(a, km_rtype_has(t, KM_RT_FEDERATION)));
		if (km_rtype_has(t, KM_RT_POLICY)) {
			struct km_json *p = km_json_object(a);
			km_json_set(a, p, "hasToTargetRef", km_json_bool(a, km_rtype_has(t, KM_RT_HAS_TO)));
			km_json_set(a, p, "hasFromTargetRef", km_json_bool(a, false));
			km_json_set(a, p, "hasRulesTargetRef",
				    km_json_bool(a, km_rtype_has(t, KM_RT_HAS_RULES)));
			km_json_set(a, p, "isTargetRef", km_json_bool(a, true));
			km_json_set(a, p, "isFromAsRules", km_json_bool(a, false));
			km_json_set(a, r, "policy", p);
		}
		km_json_array_push(a, list, r);
	}
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "resources", list);
	cp_api_write_json(c->req, 200, o);
}

void cp_api_config(struct cp_api_ctx *c)
{
	if (!cp_api_user_in(&c->user, &c->rt->cfg->access.static_.control_plane_metadata.users,
			    &c->rt->cfg->access.static_.control_plane_metadata.groups)) {
		cp_api_write_error(c->req, 403, "Access Denied",
				   km_arena_printf(c->req->a, "user \"%s\" cannot access control-plane metadata",
						   cp_api_user_string(c->req->a, &c->user)), NULL);
		return;
	}
	cp_api_write_json(c->req, 200, c->rt->config_json ? c->rt->config_json : km_json_object(c->req->a));
}

void cp_api_global_insights(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, "GlobalInsights"));
	km_json_set(a, o, "creationTime", km_json_cstring(a, km_time_format(a, km_time_now())));
	struct km_json *res = km_json_object(a);
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		if (t->scope != KM_SCOPE_GLOBAL || km_rtype_has(t, KM_RT_READ_ONLY))
			continue;
		struct km_json *e = km_json_object(a);
		km_json_set(a, e, "total",
			    km_json_int(a, (int64_t)cp_store_count(c->rt->store, t, KM_STR(""))));
		km_json_set(a, res, t->name, e);
	}
	km_json_set(a, o, "resources", res);
	cp_api_write_json(c->req, 200, o);
}

static struct km_json *total(struct km_arena *a, size_t n)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "total", km_json_int(a, (int64_t)n));
	return o;
}

void cp_api_global_insight(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	struct cp_store *s = c->rt->store;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "createdAt", km_json_cstring(a, km_time_format(a, km_time_now())));
	struct km_json *svc = km_json_object(a);
	size_t nsvc = cp_store_count(s, km_rtype_by_name(KM_STR("MeshService")), KM_STR(""));
	struct km_json *internal = total(a, nsvc);
	km_json_set(a, svc, "total", km_json_int(a, (int64_t)nsvc));
	km_json_set(a, svc, "internal", internal);
	km_json_set(a, svc, "external", total(a, cp_store_count(s, km_rtype_by_name(KM_STR("MeshExternalService")), KM_STR(""))));
	km_json_set(a, o, "services", svc);
	struct km_json *zones = km_json_object(a);
	km_json_set(a, zones, "controlPlanes", total(a, cp_store_count(s, km_rtype_by_name(KM_STR("Zone")), KM_STR(""))));
	km_json_set(a, zones, "zoneEgresses", total(a, 0));
	km_json_set(a, zones, "zoneIngresses", total(a, 0));
	km_json_set(a, o, "zones", zones);
	struct km_json *dps = km_json_object(a);
	km_json_set(a, dps, "standard", total(a, cp_store_count(s, km_rtype_by_name(KM_STR("Dataplane")), KM_STR(""))));
	km_json_set(a, dps, "gatewayDelegated", total(a, 0));
	km_json_set(a, o, "dataplanes", dps);
	size_t npol = 0;
	struct km_json *resources = km_json_object(a);
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		size_t n = cp_store_count(s, t, KM_STR(""));
		if (km_rtype_has(t, KM_RT_POLICY))
			npol += n;
		km_json_set(a, resources, t->name, total(a, n));
	}
	km_json_set(a, o, "policies", total(a, npol));
	km_json_set(a, o, "meshes", total(a, cp_store_count(s, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""))));
	km_json_set(a, o, "resources", resources);
	cp_api_write_json(c->req, 200, o);
}

/* kri_<short>_<mesh>_<zone>_<namespace>_<name>_<section> */
void cp_api_kri(struct cp_api_ctx *c, struct km_str kri)
{
	struct km_str parts[8];
	size_t n = 0, start = 0;
	for (size_t i = 0; i <= kri.len && n < 8; i++) {
		if (i == kri.len || kri.ptr[i] == '_') {
			parts[n++] = (struct km_str){kri.ptr + start, i - start};
			start = i + 1;
		}
	}
	if (n != 7 || !km_str_eqc(parts[0], "kri")) {
		cp_api_write_error(c->req, 400, "Bad Request",
				   km_arena_printf(c->req->a, "invalid identifier string: %.*s",
						   KM_STR_FMT(kri)),
				   NULL);
		return;
	}
	const struct km_rtype *t = km_rtype_by_short(parts[1]);
	if (!t) {
		cp_api_write_error(c->req, 400, "Bad Request",
				   km_arena_printf(c->req->a, "unknown resource type short name: %.*s",
						   KM_STR_FMT(parts[1])),
				   NULL);
		return;
	}
	cp_api_get(c, t, t->scope == KM_SCOPE_MESH ? parts[2] : KM_STR(""), parts[5], false);
}
