/* SPDX-License-Identifier: Apache-2.0 */
/* Resource manager: create/update with computed labels and side effects.
 * Everything allocated lives in the caller's arena. */
#include "cp/manager.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cp/api/labels.h"
#include "resource/validate.h"

static const char dns1035_msg[] =
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

static bool dns1035_label(struct km_str s)
{
	if (s.len == 0 || s.len > 63)
		return false;
	if (!(s.ptr[0] >= 'a' && s.ptr[0] <= 'z'))
		return false;
	char last = s.ptr[s.len - 1];
	if (!((last >= 'a' && last <= 'z') || (last >= '0' && last <= '9')))
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

static void check_workload_label(struct cp_runtime *rt, const struct km_resource_doc *d,
				 struct km_violations *v)
{
	if (strcmp(d->type->name, "Dataplane") != 0)
		return;
	struct km_str wl = km_json_get_string(d->labels, "kuma.io/workload");
	if (!wl.len)
		return;
	if (rt->global_mode) {
		km_violations_add(v, "labels[\"kuma.io/workload\"]", "not allowed on Global control plane");
		return;
	}
	if (!dns1035_label(wl))
		km_violations_add(v, "labels[\"kuma.io/workload\"]",
				  "must be a valid DNS-1035 label (at most 63 characters, matching regex "
				  "[a-z]([-a-z0-9]*[a-z0-9])?): %s",
				  wl.len > 63 ? "must be no more than 63 characters" : dns1035_msg);
}

int cp_manager_create(struct cp_runtime *rt, struct km_arena *a, const struct km_resource_doc *d,
		      struct km_violations *v)
{
	check_workload_label(rt, d, v);
	/* the resource manager validates again with the name known */
	struct km_resource_doc dv = *d;
	km_validate_resource(a, &dv, v);
	if (v->len)
		return -KM_E_INVALID;
	if (d->type->scope == KM_SCOPE_MESH) {
		/* a missing mesh is the client's error (400); a store that fails
		 * (a database gone away) is ours, and says so */
		struct km_resource m;
		int mrc = cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), d->mesh, &m);
		if (mrc == -KM_E_NOT_FOUND)
			return -KM_E_MESH_NOT_FOUND;
		if (mrc)
			return mrc;
	}
	struct km_resource_doc nd = *d;
	nd.labels = cp_labels_compute(a, rt, d->type, d->labels, d->mesh, d->name, d->spec);
	if (km_rtype_has(d->type, KM_RT_NEW_STYLE) && !nd.status)
		nd.status = km_json_object(a); /* created with an empty status, as upstream */
	struct km_resource r;
	km_resource_from_doc(a, &nd, &r);
	r.ctime = r.mtime = 0;
	int rc = cp_store_create(rt->store, &r);
	if (rc)
		return rc;
	if (strcmp(d->type->name, "Mesh") == 0 && rt->side_effects) {
		rc = cp_defaults_mesh(rt, a, d->name, d->spec);
		if (rc)
			km_warn("manager", "creating mesh defaults failed mesh=%.*s error=%s",
				KM_STR_FMT(d->name), km_strerror(rc));
	}
	return 0;
}

int cp_manager_update(struct cp_runtime *rt, struct km_arena *a, const struct km_resource *current,
		      const struct km_resource_doc *d, struct km_violations *v)
{
	check_workload_label(rt, d, v);
	if (v->len)
		return -KM_E_INVALID;
	struct km_resource_doc cur;
	km_resource_to_doc(a, current, &cur);
	struct km_json *old = cp_labels_compute(a, rt, d->type, cur.labels, current->mesh, current->name, cur.spec);
	struct km_json *nl = cp_labels_compute(a, rt, d->type, d->labels, current->mesh, current->name, d->spec);
	struct km_json *oz = km_json_get(old, "kuma.io/zone"), *nz = km_json_get(nl, "kuma.io/zone");
	if (oz && !nz)
		km_violations_add(v, "labels[\"kuma.io/zone\"]", "is immutable, cannot be removed (was \"%.*s\")",
				  KM_STR_FMT(oz->s));
	else if (oz && !km_json_equal(oz, nz))
		km_violations_add(v, "labels[\"kuma.io/zone\"]",
				  "is immutable, cannot be changed from \"%.*s\" to \"%.*s\"", KM_STR_FMT(oz->s),
				  KM_STR_FMT(nz->s));
	if (v->len)
		return -KM_E_INVALID;
	struct km_resource_doc nd = *d;
	nd.labels = nl;
	nd.mesh = current->mesh;
	nd.name = current->name;
	struct km_resource r;
	km_resource_from_doc(a, &nd, &r);
	r.status = current->status; /* REST never writes status */
	r.version = current->version;
	r.owner_type = current->owner_type;
	r.owner_mesh = current->owner_mesh;
	r.owner_name = current->owner_name;
	return cp_store_update(rt->store, &r);
}

int cp_manager_ensure(struct cp_runtime *rt, struct km_arena *a, const struct km_resource_doc *d,
		      bool *created)
{
	struct km_resource r;
	*created = false;
	if (cp_store_get(rt->store, a, d->type, d->mesh, d->name, &r) == 0)
		return 0;
	km_resource_from_doc(a, d, &r);
	int rc = cp_store_create(rt->store, &r);
	if (rc == -KM_E_EXISTS)
		return 0;
	*created = rc == 0;
	return rc;
}
