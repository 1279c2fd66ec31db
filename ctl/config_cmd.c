/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl config view` and `config control-planes add|list|remove|switch`:
 * edit the kumactl config file; `add` first checks that the address answers
 * GET / as a Kuma control plane (unless --skip-check). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

static int save(struct ctl_ctx *c)
{
	struct km_buf err = KM_BUF_INIT;
	int rc = 0;
	if (ctl_ctlconfig_save(c->a, c->config_file, &c->cfg, &err) < 0)
		rc = ctl_args_fail(c, "%s", km_buf_cstr(&err));
	km_buf_fini(&err);
	return rc;
}

int ctl_config_cmd_view_run(struct ctl_ctx *c)
{
	struct km_buf out = KM_BUF_INIT;
	ctl_ctlconfig_to_yaml(c->a, &c->cfg, &out);
	km_buf_putc(&out, '\n');
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}

int ctl_config_cmd_cp_list_run(struct ctl_ctx *c)
{
	static const char *const headers[] = {"ACTIVE", "NAME", "ADDRESS"};
	struct ctl_table t;
	ctl_table_init(&t, c->a, headers, 3);
	struct ctl_context *cur = ctl_ctlconfig_context(&c->cfg, c->cfg.current);
	for (size_t i = 0; i < c->cfg.n_cps; i++) {
		const struct ctl_cp *cp = &c->cfg.cps[i];
		bool active = cur && strcmp(cur->control_plane, cp->name) == 0;
		const char *cells[3] = {active ? "*" : "", cp->name, cp->url ? cp->url : ""};
		ctl_table_row(&t, cells);
	}
	struct km_buf out = KM_BUF_INIT;
	ctl_table_write(&t, &out);
	int rc = ctl_args_out(&out);
	km_buf_fini(&out);
	return rc;
}

/* net/url.ParseRequestURI accepts absolute URLs and absolute paths. */
static bool request_uri_ok(const char *u)
{
	if (u[0] == '/')
		return true;
	const char *colon = strchr(u, ':');
	if (!colon || colon == u)
		return false;
	for (const char *p = u; p < colon; p++) {
		char ch = *p;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (p > u &&
			   ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-' || ch == '.'));
		if (!ok)
			return false;
	}
	return true;
}

static void split_kv(struct km_arena *a, const char **items, size_t n, const char ***keys,
		     const char ***vals, size_t *count)
{
	const char **k = km_arena_alloc(a, (n + 1) * sizeof(*k));
	const char **v = km_arena_alloc(a, (n + 1) * sizeof(*v));
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(items[i], '=');
		const char *key = km_arena_strndup(a, items[i],
						   eq ? (size_t)(eq - items[i]) : strlen(items[i]));
		const char *val = eq ? eq + 1 : "";
		size_t j = 0;
		while (j < m && strcmp(k[j], key) != 0)
			j++;
		k[j] = key;
		v[j] = val;
		if (j == m)
			m++;
	}
	/* sorted, like maps.SortedKeys */
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && strcmp(k[j - 1], k[j]) > 0; j--) {
			const char *t = k[j];
			k[j] = k[j - 1];
			k[j - 1] = t;
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*keys = k;
	*vals = v;
	*count = m;
}

static const char *opt(struct ctl_ctx *c, const char *name)
{
	const char *v = ctl_args_str(c, name);
	return v && *v ? v : NULL;
}

static int check_cp(struct ctl_ctx *c, const struct ctl_cp *cp)
{
	struct ctl_resp r = {0};
	struct km_buf err = KM_BUF_INIT;
	int rc = 0;
	if (ctl_client_do(c, cp, "GET", "/", NULL, &r, &err) < 0) {
		rc = ctl_args_fail(c, "could not connect to the Control Plane API Server: %s",
				   km_buf_cstr(&err));
		goto out;
	}
	if (r.status != 200) {
		rc = ctl_args_fail(c,
				   "could not connect to the Control Plane API Server: (%ld): %.*s",
				   r.status, KM_STR_FMT(r.body));
		goto out;
	}
	struct km_json *v = NULL;
	km_buf_reset(&err);
	if (km_json_parse(c->a, r.body.ptr, r.body.len, &v, &err) < 0 ||
	    v->kind != KM_JSON_OBJECT) {
		rc = ctl_args_fail(
			c, "could not connect to the Control Plane API Server: %s",
			err.len ?
				km_buf_cstr(&err) :
				"json: cannot unmarshal into Go value of type types.IndexResponse");
		goto out;
	}
	struct km_str product = km_json_get_string(v, "product");
	struct km_str version = km_json_get_string(v, "version");
	if (!km_str_eqc(product, CTL_PRODUCT) && km_str_find(version, KM_STR("preview")) < 0)
		rc = ctl_args_fail(
			c,
			"this CLI is for %s but the control plane you're connected to is %.*s. Please use the CLI for your control plane",
			CTL_PRODUCT, KM_STR_FMT(product));
out:
	km_buf_fini(&err);
	return rc;
}

int ctl_config_cmd_cp_add_run(struct ctl_ctx *c)
{
	struct ctl_cp cp;
	memset(&cp, 0, sizeof(cp));
	cp.name = ctl_args_str(c, "name");
	cp.url = ctl_args_str(c, "address");
	cp.ca_cert_file = opt(c, "ca-cert-file");
	cp.client_cert_file = opt(c, "client-cert-file");
	cp.client_key_file = opt(c, "client-key-file");
	cp.auth_type = opt(c, "auth-type");
	cp.skip_verify = ctl_args_bool(c, "skip-verify");
	if (!request_uri_ok(cp.url))
		return ctl_args_fail(
			c, "API Server URL is invalid: parse \"%s\": invalid URI for request",
			cp.url);
	if ((cp.client_key_file != NULL) != (cp.client_cert_file != NULL))
		return ctl_args_fail(
			c, "Both --client-cert-file and --client-key-file needs to be specified");
	const char **items = NULL;
	size_t n = ctl_args_all(c, "auth-conf", &items);
	split_kv(c->a, items, n, &cp.auth_keys, &cp.auth_vals, &cp.n_auth);
	n = ctl_args_all(c, "headers", &items);
	split_kv(c->a, items, n, &cp.hdr_keys, &cp.hdr_vals, &cp.n_hdr);
	if (cp.auth_type) {
		if (strcmp(cp.auth_type, "tokens") != 0)
			return ctl_args_fail(c, "authentication plugin of type \"%s\" is not found",
					     cp.auth_type);
		bool has_token = false;
		for (size_t i = 0; i < cp.n_auth; i++)
			if (!strcmp(cp.auth_keys[i], "token") && *cp.auth_vals[i])
				has_token = true;
		if (!has_token)
			return ctl_args_fail(c,
					     "--auth-conf is not valid: provide token=YOUR_TOKEN");
	}
	if (!ctl_args_bool(c, "skip-check")) {
		int rc = check_cp(c, &cp);
		if (rc)
			return rc;
	}
	bool force = ctl_args_bool(c, "overwrite");
	if (!ctl_ctlconfig_add_cp(c->a, &c->cfg, &cp, force))
		return ctl_args_fail(
			c,
			"Control Plane with name \"%s\" already exists. Use --overwrite to replace an existing one.",
			cp.name);
	struct ctl_context x = {cp.name, cp.name, NULL};
	if (!ctl_ctlconfig_add_context(c->a, &c->cfg, &x, force))
		return ctl_args_fail(c, "Context with name \"%s\" already exists", cp.name);
	c->cfg.current = cp.name;
	int rc = save(c);
	if (rc)
		return rc;
	printf("added Control Plane \"%s\"\n", cp.name);
	printf("switched active Control Plane to \"%s\"\n", cp.name);
	return 0;
}

int ctl_config_cmd_cp_remove_run(struct ctl_ctx *c)
{
	const char *name = ctl_args_str(c, "name");
	if (!ctl_ctlconfig_remove_cp(&c->cfg, name))
		return ctl_args_fail(c, "there is no Control Plane with name \"%s\"", name);
	int rc = save(c);
	if (rc)
		return rc;
	printf("removed Control Plane \"%s\"\n", name);
	struct ctl_context *cur = ctl_ctlconfig_context(&c->cfg, c->cfg.current);
	if (cur)
		printf("switched active Control Plane to \"%s\"\n", cur->control_plane);
	else
		printf("there is no active Control Plane left. Use `kumactl config control-planes add` to add a Control Plane and make it active\n");
	return 0;
}

int ctl_config_cmd_cp_switch_run(struct ctl_ctx *c)
{
	const char *name = ctl_args_str(c, "name");
	struct ctl_context *x = ctl_ctlconfig_context(&c->cfg, name);
	if (!x)
		return ctl_args_fail(c, "there is no Control Plane with name \"%s\"", name);
	c->cfg.current = x->name;
	int rc = save(c);
	if (rc)
		return rc;
	printf("switched active Control Plane to \"%s\"\n", name);
	return 0;
}
