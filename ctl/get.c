/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl get <plural>` and `kumactl get <singular> NAME`: one GET against
 * the REST API, printed as a table, YAML or JSON. The resource type comes
 * from the type table (km_rtype_by_arg), so every kumactl type works. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

static int print(struct ctl_ctx *c, const char *format, struct km_json *v, bool is_list)
{
	struct km_buf out = KM_BUF_INIT;
	if (strcmp(format, "table") == 0) {
		struct ctl_table t;
		ctl_table_resources(&t, c->a, c->rtype, v, is_list, c->now_ns);
		ctl_table_write(&t, &out);
	} else if (strcmp(format, "json") == 0 || strcmp(format, "yaml") == 0) {
		if (is_list) {
			/* kumactl rebuilds the list: total, items, and never a next link */
			struct km_json *l = km_json_object(c->a);
			struct km_json *total = km_json_get(v, "total");
			struct km_json *items = km_json_get(v, "items");
			km_json_set(c->a, l, "total", total ? total : km_json_int(c->a, 0));
			km_json_set(c->a, l, "items", items ? items : km_json_array(c->a));
			km_json_set(c->a, l, "next", km_json_null(c->a));
			v = l;
		}
		if (format[0] == 'j')
			ctl_table_print_json(v, &out);
		else if (is_list)
			ctl_table_print_yaml(c->a, v, &out);
		else
			ctl_table_print_resource_yaml(c->a, v, &out);
	} else {
		km_buf_fini(&out);
		return ctl_args_fail(c, "unknown output format \"%s\"", format);
	}
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}

int ctl_get_run(struct ctl_ctx *c)
{
	ctl_client_check_version(c);
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	const struct km_rtype *t = c->rtype;
	const char *mesh = ctl_args_mesh(c);
	const char *format = ctl_args_str(c, "output");
	struct km_buf path = KM_BUF_INIT, err = KM_BUF_INIT;
	if (t->scope == KM_SCOPE_MESH)
		km_buf_printf(&path, "/meshes/%s/%s", ctl_client_escape(c->a, mesh), t->path);
	else
		km_buf_printf(&path, "/%s", t->path);
	const char *name = NULL;
	if (c->plural) {
		const char *offset = ctl_args_str(c, "offset");
		const char *size = ctl_args_str(c, "size");
		char sep = '?';
		if (offset && *offset) {
			km_buf_printf(&path, "%coffset=%s", sep, ctl_client_escape(c->a, offset));
			sep = '&';
		}
		if (size && strcmp(size, "0") != 0)
			km_buf_printf(&path, "%csize=%s", sep, size);
	} else {
		name = c->args[0];
		km_buf_printf(&path, "/%s", ctl_client_escape(c->a, name));
	}
	struct ctl_resp r = {0};
	int rc = 0;
	const char *what =
		c->plural ? km_arena_printf(c->a, "failed to list %s", t->name) :
		t->scope == KM_SCOPE_MESH ?
			    km_arena_printf(c->a, "failed to get %s in mesh %s", name, mesh) :
			    km_arena_printf(c->a, "failed to get %s", name);
	if (ctl_client_do(c, cp, "GET", km_buf_cstr(&path), NULL, &r, &err) < 0) {
		rc = ctl_args_fail(c, "%s: %s", what, km_buf_cstr(&err));
		goto out;
	}
	if (!c->plural && r.status == 404) {
		if (t->scope == KM_SCOPE_MESH)
			rc = ctl_args_fail(c, "No resources found in %s mesh", mesh);
		else
			rc = ctl_args_fail(c, "No resources found");
		goto out;
	}
	if (r.status != 200) {
		const char *apierr = r.status >= 400 ? ctl_client_api_error(c->a, r.body) : NULL;
		if (apierr)
			rc = ctl_args_fail(c, "%s", apierr);
		else
			rc = ctl_args_fail(c, "%s: (%ld): %.*s", what, r.status,
					   KM_STR_FMT(r.body));
		goto out;
	}
	struct km_json *v = NULL;
	struct km_buf perr = KM_BUF_INIT;
	if (km_json_parse(c->a, r.body.ptr, r.body.len, &v, &perr) < 0) {
		rc = ctl_args_fail(c, "%s: %s", what, km_buf_cstr(&perr));
		km_buf_fini(&perr);
		goto out;
	}
	km_buf_fini(&perr);
	rc = print(c, format, v, c->plural);
out:
	km_buf_fini(&path);
	km_buf_fini(&err);
	return rc;
}
