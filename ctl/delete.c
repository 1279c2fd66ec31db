/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl delete TYPE NAME [-m mesh]`: DELETE on the item URL, with
 * upstream's messages for unknown, read-only and missing resources. */
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

/* Singular kumactl arguments, sorted, as upstream lists them. */
static const char *allowed_types(struct km_arena *a)
{
	const char *names[128];
	size_t n = 0;
	for (size_t i = 0; i < km_rtypes_len && n < 127; i++)
		if (km_rtypes[i].kumactl_arg)
			names[n++] = km_rtypes[i].kumactl_arg;
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			const char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		km_buf_printf(&b, "%s%s", i ? ", " : "", names[i]);
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

int ctl_delete_run(struct ctl_ctx *c)
{
	ctl_client_check_version(c);
	const char *targ = c->args[0], *name = c->args[1];
	const struct km_rtype *t = km_rtype_by_arg(km_str_c(targ));
	if (!t || !t->kumactl_arg ||
	    (strcmp(targ, t->kumactl_arg) != 0 && strcmp(targ, "globalsecret") != 0))
		return ctl_args_fail(c, "unknown TYPE: %s. Allowed values: %s", targ,
				     allowed_types(c->a));
	if (km_rtype_has(t, KM_RT_READ_ONLY))
		return ctl_args_fail(c, "TYPE: %s is readOnly, can't use it for write action",
				     targ);
	const struct ctl_cp *cp = ctl_client_cp(c);
	if (!cp)
		return 1;
	const char *path =
		t->scope == KM_SCOPE_MESH ?
			km_arena_printf(c->a, "/meshes/%s/%s/%s",
					ctl_client_escape(c->a, ctl_args_mesh(c)), t->path,
					ctl_client_escape(c->a, name)) :
			km_arena_printf(c->a, "/%s/%s", t->path, ctl_client_escape(c->a, name));
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	int rc = 0;
	if (ctl_client_do(c, cp, "DELETE", path, NULL, &r, &err) < 0) {
		rc = ctl_args_fail(c, "failed to delete %s with the name \"%s\": %s", t->name, name,
				   km_buf_cstr(&err));
	} else if (r.status == 404) {
		rc = ctl_args_fail(c, "there is no %s with name \"%s\"", t->name, name);
	} else if (r.status != 200) {
		const char *apierr = r.status >= 400 ? ctl_client_api_error(c->a, r.body) : NULL;
		if (apierr)
			rc = ctl_args_fail(c, "%s", apierr);
		else if (r.status == 405)
			rc = ctl_args_fail(c, "failed to delete %s with the name \"%s\": %.*s",
					   t->name, name, KM_STR_FMT(r.body));
		else
			rc = ctl_args_fail(c,
					   "failed to delete %s with the name \"%s\": (%ld): %.*s",
					   t->name, name, r.status, KM_STR_FMT(r.body));
	} else {
		printf("deleted %s \"%s\"\n", t->name, name);
	}
	km_buf_fini(&err);
	return rc;
}
