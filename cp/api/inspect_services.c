/* SPDX-License-Identifier: Apache-2.0 */
/* Service inspection: GET .../meshservices/{name}/_dataplanes (the
 * Dataplanes a MeshService selects) and GET .../{meshservices|
 * meshexternalservices|meshmultizoneservices}/{name}/_hostnames (the
 * hostnames HostnameGenerators give the service, per zone). */
#include <stdlib.h>
#include <string.h>

#include "cp/api/api.h"
#include "resource/gotemplate.h"

static struct km_json *parse(struct km_arena *a, struct km_str s)
{
	struct km_json *v = NULL;
	if (s.len)
		km_json_parse(a, s.ptr, s.len, &v, NULL);
	return v;
}

static bool labels_match(const struct km_json *sel, const struct km_json *labels)
{
	for (size_t i = 0; sel && sel->kind == KM_JSON_OBJECT && i < sel->len; i++) {
		struct km_json *v = km_json_get_str(labels, sel->members[i].key);
		if (!v || v->kind != KM_JSON_STRING || sel->members[i].val->kind != KM_JSON_STRING ||
		    !km_str_eq(v->s, sel->members[i].val->s))
			return false;
	}
	return true;
}

void cp_api_meshservice_dataplanes(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	struct km_resource ms;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("MeshService")), mesh, name, &ms);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve a resource");
		return;
	}
	struct km_json *spec = parse(a, ms.spec);
	struct km_json *sel = km_json_get(spec, "selector");
	struct km_json *match = km_json_get(km_json_get(sel, "dataplaneLabels"), "matchLabels");
	struct km_str ref = km_json_get_string(km_json_get(sel, "dataplaneRef"), "name");
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result dps;
	rc = cp_store_list(c->rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), &o, &dps);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve resources");
		return;
	}
	struct km_json *items = km_json_array(a);
	for (size_t i = 0; i < dps.len; i++) {
		struct km_json *labels = parse(a, dps.items[i].labels);
		bool selected = ref.len ? km_str_eq(ref, dps.items[i].name) : (match && labels_match(match, labels));
		if (!selected)
			continue;
		struct km_json *it = km_json_object(a);
		km_json_set(a, it, "type", km_json_cstring(a, "Dataplane"));
		km_json_set(a, it, "mesh", km_json_string(a, mesh));
		km_json_set(a, it, "name", km_json_string(a, dps.items[i].name));
		km_json_set(a, it, "labels", labels ? labels : km_json_object(a));
		km_json_array_push(a, items, it);
	}
	struct km_json *out = km_json_object(a);
	km_json_set(a, out, "total", km_json_int(a, (int64_t)items->len));
	/* Go marshals the empty slice it starts with as null */
	km_json_set(a, out, "items", items->len ? items : km_json_null(a));
	cp_api_write_json(c->req, 200, out);
}

struct tmpl_ctx {
	struct km_arena *a;
	struct km_json *labels;
	struct km_str display, mesh, zone, ns;
};

static const char *lookup(void *vctx, enum km_gotemplate_ref kind, struct km_str name,
			  const struct km_str *args, size_t nargs, struct km_str *value)
{
	struct tmpl_ctx *t = vctx;
	if (kind == KM_GOTEMPLATE_FUNC) {
		if (km_str_eqc(name, "label") && nargs == 1) {
			struct km_json *v = km_json_get_str(t->labels, args[0]);
			if (!v || v->kind != KM_JSON_STRING)
				return km_arena_printf(t->a, "label %.*s not found", KM_STR_FMT(args[0]));
			*value = v->s;
			return NULL;
		}
		return "unknown function";
	}
	if (km_str_eqc(name, "DisplayName"))
		*value = t->display;
	else if (km_str_eqc(name, "Mesh"))
		*value = t->mesh;
	else if (km_str_eqc(name, "Zone"))
		*value = t->zone;
	else if (km_str_eqc(name, "Namespace"))
		*value = t->ns;
	else
		return km_arena_printf(t->a, "can't evaluate field %.*s", KM_STR_FMT(name));
	return NULL;
}

static int cmp_hostname(const void *x, const void *y)
{
	const struct km_json *const *a = x, *const *b = y;
	return km_str_cmp(km_json_get_string(*a, "hostname"), km_json_get_string(*b, "hostname"));
}

void cp_api_service_hostnames(struct cp_api_ctx *c, struct km_str mesh, struct km_str path,
			      struct km_str name)
{
	struct km_arena *a = c->req->a;
	const char *selector_key = km_str_eqc(path, "meshservices")             ? "meshService"
				   : km_str_eqc(path, "meshexternalservices")   ? "meshExternalService"
				   : km_str_eqc(path, "meshmultizoneservices") ? "meshMultiZoneService"
										: NULL;
	if (!selector_key) {
		cp_api_write_error(c->req, 400,
				   "only \"meshservices,meshexternalservices,meshmultizoneservices\" are available for inspection",
				   "Resource is not valid", NULL);
		return;
	}
	const struct km_rtype *t = km_rtype_by_path(path);
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result svcs, gens;
	if (cp_store_list(c->rt->store, a, t, &o, &svcs) ||
	    cp_store_list(c->rt->store, a, km_rtype_by_name(KM_STR("HostnameGenerator")), &(struct cp_list_opts){0}, &gens)) {
		cp_api_write_error(c->req, 500, "could not retrieve service", "Internal Server Error", NULL);
		return;
	}
	/* the service and its synced copies share a display name */
	struct km_json *items = km_json_array(a);
	bool found = false;
	for (size_t i = 0; i < svcs.len; i++) {
		struct km_json *labels = parse(a, svcs.items[i].labels);
		struct km_str display = km_json_get_string(labels, "kuma.io/display-name");
		if (!display.len)
			display = svcs.items[i].name;
		if (!km_str_eq(display, name) && !km_str_eq(svcs.items[i].name, name))
			continue;
		found = true;
		struct tmpl_ctx tc = {a, labels, display, mesh, km_json_get_string(labels, "kuma.io/zone"),
				      km_json_get_string(labels, "k8s.kuma.io/namespace")};
		for (size_t g = 0; g < gens.len; g++) {
			struct km_json *gspec = parse(a, gens.items[g].spec);
			struct km_json *sel = km_json_get(km_json_get(gspec, "selector"), selector_key);
			if (!sel || !labels_match(km_json_get(sel, "matchLabels"), labels))
				continue;
			struct km_str text = km_json_get_string(gspec, "template");
			static const char *const funcs[] = {"label", NULL};
			struct km_gotemplate *tmpl;
			const char *err;
			struct km_buf host = KM_BUF_INIT;
			if (km_gotemplate_parse(a, "", text, funcs, &tmpl, &err) == 0 &&
			    km_gotemplate_render(tmpl, lookup, &tc, &host, &err) == 0 && host.len) {
				struct km_json *item = NULL;
				for (size_t k = 0; k < items->len && !item; k++)
					if (km_str_eqc(km_json_get_string(items->items[k], "hostname"), km_buf_cstr(&host)))
						item = items->items[k];
				if (!item) {
					item = km_json_object(a);
					km_json_set(a, item, "hostname", km_json_cstring(a, km_buf_cstr(&host)));
					km_json_set(a, item, "zones", km_json_array(a));
					km_json_array_push(a, items, item);
				}
				struct km_json *zones = km_json_get(item, "zones");
				bool dup = false;
				for (size_t z = 0; z < zones->len; z++)
					dup |= km_str_eq(km_json_get_string(zones->items[z], "name"), tc.zone);
				/* upstream names a global service's "zone" after the service */
				struct km_str zname = tc.zone.len ? tc.zone : display;
				dup = false;
				for (size_t z = 0; z < zones->len; z++)
					dup |= km_str_eq(km_json_get_string(zones->items[z], "name"), zname);
				if (!dup) {
					struct km_json *zj = km_json_object(a);
					km_json_set(a, zj, "name", km_json_string(a, zname));
					km_json_array_push(a, zones, zj);
				}
			}
			km_buf_fini(&host);
		}
	}
	if (!found) {
		cp_api_write_error(c->req, 404, "could not retrieve service", "Not found", NULL);
		return;
	}
	if (items->len > 1)
		qsort(items->items, items->len, sizeof(*items->items), cmp_hostname);
	struct km_json *out = km_json_object(a);
	km_json_set(a, out, "total", km_json_int(a, (int64_t)items->len));
	/* Go marshals the empty slice it starts with as null */
	km_json_set(a, out, "items", items->len ? items : km_json_null(a));
	cp_api_write_json(c->req, 200, out);
}
