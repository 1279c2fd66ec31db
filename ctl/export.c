/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl export`: every resource of the types a profile takes, as
 * universal YAML documents (the `get -o yaml` form, each after "---"),
 * Meshes first (with skipCreatingInitialPolicies: ['*'], so applying the
 * export to another control plane makes no default policies), then the
 * types in the server's `_resources` order with Secrets before the rest
 * and GlobalSecrets last, user token signing keys at the very end. As
 * upstream: the profile federation takes the types included in federation
 * but targetRef policies, federation-with-policies those too (both drop
 * the kuma.io/origin label), all everything, no-dataplanes all but
 * Dataplanes and their insights; admin-only types (secrets) only with
 * --include-admin or a federation profile; the control plane's own CAs
 * (envoy-admin-ca, inter-cp-ca) never. Lists are read page by page. */
#include <stdio.h>
#include <string.h>

#include "codec/jsonf.h"
#include "ctl/ctl.h"

#define PAGE 1000

static const char *const profiles[] = {"all", "federation", "federation-with-policies", "no-dataplanes"};

static bool federation(const char *profile)
{
	return strcmp(profile, "federation") == 0 || strcmp(profile, "federation-with-policies") == 0;
}

/* GET <path> as JSON; NULL after printing the error. */
static struct km_json *get_json(struct ctl_ctx *c, const struct ctl_cp *cp, const char *path, const char *what)
{
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	struct km_json *v = NULL;
	if (ctl_client_do(c, cp, "GET", path, NULL, &r, &err) < 0) {
		ctl_args_fail(c, "%s: %s", what, km_buf_cstr(&err));
	} else if (r.status != 200) {
		const char *apierr = r.status >= 400 ? ctl_client_api_error(c->a, r.body) : NULL;
		if (apierr)
			ctl_args_fail(c, "%s: %s", what, apierr);
		else
			ctl_args_fail(c, "%s: (%ld): %.*s", what, r.status, KM_STR_FMT(r.body));
	} else if (km_json_parse(c->a, r.body.ptr, r.body.len, &v, &err) < 0) {
		ctl_args_fail(c, "%s: %s", what, km_buf_cstr(&err));
		v = NULL;
	}
	km_buf_fini(&err);
	return v;
}

/* Every item of a list endpoint, page after page, appended to <out>. */
static int list_all(struct ctl_ctx *c, const struct ctl_cp *cp, const char *base, const char *what,
		    struct km_json *out)
{
	for (size_t offset = 0;;) {
		const char *path = km_arena_printf(c->a, "%s?size=%d&offset=%zu", base, PAGE, offset);
		struct km_json *v = get_json(c, cp, path, what);
		if (!v)
			return 1;
		const struct km_json *items = km_json_get(v, "items");
		size_t n = items && items->kind == KM_JSON_ARRAY ? items->len : 0;
		for (size_t i = 0; i < n; i++)
			km_json_array_push(c->a, out, items->items[i]);
		const struct km_json *next = km_json_get(v, "next");
		if (!n || !next || next->kind != KM_JSON_STRING)
			return 0;
		offset += n;
	}
}

/* The types to export, in output order (priorities as upstream's). */
static size_t types_to_dump(struct ctl_ctx *c, const struct km_json *resources, const char *profile,
			    bool include_admin, const struct km_rtype **out)
{
	size_t n = 0;
	struct km_buf unknown = KM_BUF_INIT;
	for (size_t i = 0; resources && resources->kind == KM_JSON_ARRAY && i < resources->len && n < 256; i++) {
		const struct km_json *r = resources->items[i];
		struct km_str name = km_json_get_string(r, "name");
		const struct km_rtype *t = km_rtype_by_name(name);
		if (!t) {
			km_buf_printf(&unknown, "%s%.*s", unknown.len ? "," : "", KM_STR_FMT(name));
			continue;
		}
		if (km_rtype_has(t, KM_RT_ADMIN_ONLY) && !federation(profile) && !include_admin)
			continue;
		const struct km_json *fed = km_json_get(r, "includeInFederation");
		bool in_fed = fed && fed->kind == KM_JSON_BOOL && fed->b;
		const struct km_json *tr = km_json_get(km_json_get(r, "policy"), "isTargetRef");
		bool targetref = tr && tr->kind == KM_JSON_BOOL && tr->b;
		if (strcmp(profile, "federation") == 0 && (!in_fed || targetref))
			continue;
		if (strcmp(profile, "federation-with-policies") == 0 && !in_fed)
			continue;
		if (strcmp(profile, "no-dataplanes") == 0 &&
		    (strcmp(t->name, "Dataplane") == 0 || strcmp(t->name, "DataplaneInsight") == 0))
			continue;
		out[n++] = t;
	}
	/* stable: Mesh 0, Secret 1, the rest 50, GlobalSecret 99 */
	static const struct {
		const char *name;
		int prio;
	} order[] = {{"Mesh", 0}, {"Secret", 1}, {"GlobalSecret", 99}};
	int prio[256];
	for (size_t i = 0; i < n; i++) {
		prio[i] = 50;
		for (size_t k = 0; k < 3; k++)
			if (strcmp(out[i]->name, order[k].name) == 0)
				prio[i] = order[k].prio;
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && prio[j - 1] > prio[j]; j--) {
			const struct km_rtype *t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
			int p = prio[j];
			prio[j] = prio[j - 1];
			prio[j - 1] = p;
		}
	if (unknown.len) {
		printf("# The following types won't be exported because they are unknown to kumactl: %s\n",
		       km_buf_cstr(&unknown));
		fprintf(stderr,
			"WARNING: The following types won't be exported because they are unknown to kumactl: %s. Are you "
			"using a compatible version of kumactl?\n",
			km_buf_cstr(&unknown));
	}
	km_buf_fini(&unknown);
	return n;
}

static void print_resource(struct ctl_ctx *c, struct km_json *res, bool drop_origin, struct km_buf *out)
{
	struct km_json *labels = km_json_get(res, "labels");
	if (drop_origin && labels && labels->kind == KM_JSON_OBJECT) {
		km_json_del(labels, "kuma.io/origin");
		if (!labels->len)
			km_json_del(res, "labels");
	}
	km_buf_puts(out, "---\n");
	ctl_table_print_resource_yaml(c->a, res, out);
}

int ctl_export_run(struct ctl_ctx *c)
{
	const struct km_json *index = ctl_client_check_version(c);
	if (index) {
		printf("# Product: %.*s, Version: %.*s, Hostname: %.*s, ClusterId: %.*s, InstanceId: %.*s\n",
		       KM_STR_FMT(km_json_get_string(index, "product")), KM_STR_FMT(km_json_get_string(index, "version")),
		       KM_STR_FMT(km_json_get_string(index, "hostname")), KM_STR_FMT(km_json_get_string(index, "clusterId")),
		       KM_STR_FMT(km_json_get_string(index, "instanceId")));
		fflush(stdout);
	}
	const char *profile = ctl_args_str(c, "profile"), *format = ctl_args_str(c, "format");
	bool known = false;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		known |= strcmp(profile, profiles[i]) == 0;
	if (!known)
		return ctl_args_fail(c, "invalid profile: \"%s\"", profile);
	if (strcmp(format, "universal") != 0 && strcmp(format, "kubernetes") != 0)
		return ctl_args_fail(c, "invalid format: \"%s\"", format);
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	if (strcmp(format, "kubernetes") == 0)
		return ctl_args_fail(c, "the kubernetes format needs a control plane running on Kubernetes "
					"(its resources as Kubernetes objects); export --format universal instead");
	struct km_json *res = get_json(c, cp, "/_resources", "could not list resource types");
	if (!res)
		return 1;
	const struct km_rtype *types[256];
	size_t ntypes = types_to_dump(c, km_json_get(res, "resources"), profile, ctl_args_bool(c, "include-admin"),
				      types);
	struct km_json *meshes = km_json_array(c->a);
	if (list_all(c, cp, "/meshes", "could not list meshes", meshes))
		return 1;
	struct km_json *first = km_json_array(c->a), *middle = km_json_array(c->a), *last = km_json_array(c->a);
	for (size_t i = 0; i < ntypes; i++) {
		const struct km_rtype *t = types[i];
		const char *what = km_arena_printf(c->a, "could not list \"%s\"", t->name);
		if (t->scope != KM_SCOPE_MESH) {
			struct km_json *items = km_json_array(c->a);
			if (list_all(c, cp, km_arena_printf(c->a, "/%s", t->path), what, items))
				return 1;
			for (size_t k = 0; k < items->len; k++) {
				struct km_json *it = items->items[k];
				struct km_str name = km_json_get_string(it, "name");
				if (strcmp(t->name, "Mesh") == 0) {
					km_json_set(c->a, it, "skipCreatingInitialPolicies", km_json_fmt(c->a, "[\"*\"]"));
					km_json_array_push(c->a, first, it);
					continue;
				}
				if (strcmp(t->name, "GlobalSecret") == 0) {
					if (km_str_eqc(name, "envoy-admin-ca") || km_str_eqc(name, "inter-cp-ca"))
						continue;
					if (km_str_has_prefix(name, "user-token-signing-key")) {
						km_json_array_push(c->a, last, it);
						continue;
					}
				}
				km_json_array_push(c->a, middle, it);
			}
		} else {
			for (size_t m = 0; m < meshes->len; m++) {
				struct km_str mesh = km_json_get_string(meshes->items[m], "name");
				const char *path = km_arena_printf(
				    c->a, "/meshes/%s/%s", ctl_client_escape(c->a, km_arena_strndup(c->a, mesh.ptr, mesh.len)),
				    t->path);
				if (list_all(c, cp, path, what, middle))
					return 1;
			}
		}
	}
	struct km_buf out = KM_BUF_INIT;
	bool drop = federation(profile);
	struct km_json *parts[] = {first, middle, last};
	for (size_t p = 0; p < 3; p++)
		for (size_t i = 0; i < parts[p]->len; i++)
			print_resource(c, parts[p]->items[i], drop, &out);
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}
