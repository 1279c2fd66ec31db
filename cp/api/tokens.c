/* SPDX-License-Identifier: Apache-2.0 */
/* Token endpoints (POST /tokens/user, /tokens/dataplane) and bearer user-token
 * authentication. Signing keys and revocation lists are (Global)Secrets read
 * from the store on each use, so a rotated key or a new revocation applies at
 * once on every instance. */
#include "cp/api/tokens.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cp/tokens/tokens.h"
#include "resource/validate.h"

/* Decoded "data" of a secret, or an empty view when absent. */
static int secret_data(struct cp_api_ctx *c, const char *type, struct km_str mesh, const char *name,
		       struct km_str *out)
{
	struct km_arena *a = c->req->a;
	struct km_resource r;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(km_str_c(type)), mesh, km_str_c(name), &r);
	if (rc)
		return rc;
	struct km_json *spec;
	if (km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL))
		return -EINVAL;
	struct km_str b64 = km_json_get_string(spec, "data");
	unsigned char *buf = km_arena_alloc(a, b64.len + 4);
	int n = b64.len ? EVP_DecodeBlock(buf, (const unsigned char *)b64.ptr, (int)b64.len) : 0;
	if (n < 0)
		return -EINVAL;
	/* EVP_DecodeBlock counts '=' padding as zero bytes */
	for (size_t i = b64.len; i > 0 && b64.ptr[i - 1] == '=' && n > 0; i--)
		n--;
	*out = (struct km_str){(const char *)buf, (size_t)n};
	return 0;
}

struct key_lookup {
	struct cp_api_ctx *c;
	const char *type;
	struct km_str mesh;
	const char *prefix;
};

static int lookup_key(void *ud, const char *kid, struct km_str *pem, struct km_buf *err)
{
	struct key_lookup *k = ud;
	const char *name = cp_tokens_signing_key_name(k->c->req->a, k->prefix, kid);
	int rc = secret_data(k->c, k->type, k->mesh, name, pem);
	return rc == -KM_E_NOT_FOUND ? -KM_E_NOT_FOUND : rc;
}

int cp_api_tokens_authenticate(struct cp_api_ctx *c, const char *token)
{
	struct km_arena *a = c->req->a;
	struct key_lookup kl = {c, "GlobalSecret", KM_STR(""), CP_TOKENS_USER_KEY_PREFIX};
	struct cp_tokens_validator v = {
	    .key = lookup_key,
	    .key_ud = &kl,
	    .key_prefix = CP_TOKENS_USER_KEY_PREFIX,
	    .memory_store = true,
	    .now = km_time_now() / 1000000000,
	};
	secret_data(c, "GlobalSecret", KM_STR(""), CP_TOKENS_USER_REVOCATIONS, &v.revoked);
	struct cp_tokens_user u;
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_tokens_user_validate(a, &v, token, strlen(token), &u, &err);
	if (rc) {
		c->user.name = km_arena_strdup(a, km_buf_cstr(&err));
		km_buf_fini(&err);
		return rc;
	}
	km_buf_fini(&err);
	const char **groups = km_arena_alloc(a, (u.n_groups + 2) * sizeof(*groups));
	size_t n = 0;
	for (size_t i = 0; i < u.n_groups; i++)
		groups[n++] = u.groups[i];
	/* every authenticated user is in mesh-system:authenticated */
	groups[n++] = "mesh-system:authenticated";
	c->user = (struct cp_user){u.name, groups, false};
	return 0;
}

/* Highest serial among secrets named <prefix>-<serial>. */
static int latest_key(struct cp_api_ctx *c, const char *type, struct km_str mesh, const char *prefix,
		      struct km_str *pem, const char **kid)
{
	struct km_arena *a = c->req->a;
	struct cp_list_opts o = {.mesh = mesh, .name_contains = km_str_c(prefix)};
	struct cp_list_result res;
	int rc = cp_store_list(c->rt->store, a, km_rtype_by_name(km_str_c(type)), &o, &res);
	if (rc)
		return rc;
	long long best = -1;
	const char *best_name = NULL;
	for (size_t i = 0; i < res.len; i++) {
		char *name = km_arena_strndup(a, res.items[i].name.ptr, res.items[i].name.len);
		long long s = cp_tokens_signing_key_serial(name, prefix);
		if (s > best) {
			best = s;
			best_name = name;
		}
	}
	if (!best_name)
		return -KM_E_NOT_FOUND;
	*kid = km_arena_printf(a, "%lld", best);
	return secret_data(c, type, mesh, best_name, pem);
}

static struct km_json *parse_body(struct cp_api_ctx *c)
{
	struct km_json *body = NULL;
	if (km_json_parse(c->req->a, c->req->body.ptr, c->req->body.len, &body, NULL) ||
	    body->kind != KM_JSON_OBJECT) {
		c->req->status = 400;
		return NULL;
	}
	return body;
}

static void write_token(struct cp_api_ctx *c, struct km_buf *tok)
{
	c->req->status = 200;
	c->req->content_type = "text/plain";
	km_buf_reset(&c->req->out);
	km_buf_append(&c->req->out, tok->data, tok->len);
}

static bool valid_for(struct cp_api_ctx *c, struct km_json *body, bool required, int64_t dflt,
		      struct km_violations *v, int64_t *out)
{
	struct km_str s = km_json_get_string(body, "validFor");
	if (!s.len) {
		if (required)
			km_violations_add(v, "validFor", "cannot be empty");
		*out = dflt;
		return true;
	}
	int64_t ns;
	if (km_duration_parse(s, &ns)) {
		km_violations_add(v, "validFor", "is invalid: time: invalid duration \"%.*s\"", KM_STR_FMT(s));
		return false;
	}
	if (required && ns == 0)
		km_violations_add(v, "validFor", "cannot be empty or nil");
	*out = ns / 1000000000;
	return true;
}

void cp_api_token_user(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	const struct cp_config *cfg = c->rt->cfg;
	if (!cp_api_user_in(&c->user, &cfg->access.static_.generate_user_token.users,
			    &cfg->access.static_.generate_user_token.groups)) {
		cp_api_write_error(c->req, 403, "Access Denied",
				   km_arena_printf(a, "user \"%s\" cannot access the resource of type \"UserToken\"",
						   cp_api_user_string(a, &c->user)),
				   NULL);
		return;
	}
	struct km_json *body = parse_body(c);
	if (!body)
		return;
	struct km_violations v;
	km_violations_init(&v, a);
	struct km_str name = km_json_get_string(body, "name");
	if (!name.len)
		km_violations_add(&v, "name", "cannot be empty");
	int64_t secs = 0;
	valid_for(c, body, true, 0, &v, &secs);
	if (v.len) {
		cp_api_write_error(c->req, 400, "Invalid request", "Resource is not valid", &v);
		return;
	}
	struct km_json *g = km_json_get(body, "groups");
	size_t ng = g && g->kind == KM_JSON_ARRAY ? g->len : 0;
	const char **groups = km_arena_alloc(a, (ng + 1) * sizeof(*groups));
	size_t n = 0;
	for (size_t i = 0; i < ng; i++)
		if (g->items[i]->kind == KM_JSON_STRING)
			groups[n++] = km_arena_strndup(a, g->items[i]->s.ptr, g->items[i]->s.len);
	struct km_str pem;
	const char *kid;
	int rc = latest_key(c, "GlobalSecret", KM_STR(""), CP_TOKENS_USER_KEY_PREFIX, &pem, &kid);
	if (rc) {
		cp_api_write_error(c->req, 404, "Signing Key not found",
				   "there is no signing key in the Control Plane. If you run multi-zone "
				   "setup, make sure Remote is connected to the Global before generating "
				   "tokens.",
				   NULL);
		return;
	}
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	rc = cp_tokens_user_issue(&tok, pem.ptr, pem.len, kid, km_arena_strndup(a, name.ptr, name.len),
				  groups, n, km_time_now() / 1000000000, secs, NULL, &err);
	if (rc)
		cp_api_write_error(c->req, 500, "Could not issue a token", km_buf_cstr(&err), NULL);
	else
		write_token(c, &tok);
	km_buf_fini(&tok);
	km_buf_fini(&err);
}

void cp_api_token_dataplane(struct cp_api_ctx *c)
{
	struct km_arena *a = c->req->a;
	const struct cp_config *cfg = c->rt->cfg;
	struct km_json *body = parse_body(c);
	if (!body)
		return;
	struct km_violations v;
	km_violations_init(&v, a);
	struct km_str mesh = km_json_get_string(body, "mesh");
	if (!mesh.len)
		km_violations_add(&v, "mesh", "cannot be empty");
	int64_t secs = 0;
	valid_for(c, body, false, 10LL * 365 * 24 * 3600, &v, &secs);
	struct km_str type = km_json_get_string(body, "type");
	if (type.len && !km_str_eqc(type, "dataplane") && !km_str_eqc(type, "Dataplane"))
		km_violations_add(&v, "type", "%.*s is not a valid proxy type", KM_STR_FMT(type));
	if (v.len) {
		cp_api_write_error(c->req, 400, "Invalid request", "Resource is not valid", &v);
		return;
	}
	if (!cp_api_user_in(&c->user, &cfg->access.static_.generate_dp_token.users,
			    &cfg->access.static_.generate_dp_token.groups)) {
		cp_api_write_error(c->req, 403, "Access Denied",
				   km_arena_printf(a, "user \"%s\" cannot access the resource of type \"DataplaneToken\"",
						   cp_api_user_string(a, &c->user)),
				   NULL);
		return;
	}
	struct cp_tokens_dp id = {0};
	char *mesh_c = km_arena_strndup(a, mesh.ptr, mesh.len);
	struct km_str name = km_json_get_string(body, "name"), wl = km_json_get_string(body, "workload");
	id.name = km_arena_strndup(a, name.ptr, name.len);
	id.mesh = mesh_c;
	id.type = km_arena_strndup(a, type.ptr, type.len);
	id.workload = km_arena_strndup(a, wl.ptr, wl.len);
	struct km_json *tags = km_json_get(body, "tags");
	if (tags && tags->kind == KM_JSON_OBJECT && tags->len) {
		id.tags = km_arena_alloc(a, tags->len * sizeof(*id.tags));
		for (size_t i = 0; i < tags->len; i++) {
			struct km_json *vals = tags->members[i].val;
			struct cp_tokens_tag *t = &id.tags[id.n_tags++];
			t->key = km_arena_strndup(a, tags->members[i].key.ptr, tags->members[i].key.len);
			size_t nv = vals->kind == KM_JSON_ARRAY ? vals->len : 0;
			t->values = km_arena_alloc(a, (nv + 1) * sizeof(*t->values));
			for (size_t j = 0; j < nv; j++)
				if (vals->items[j]->kind == KM_JSON_STRING)
					t->values[t->n_values++] =
					    km_arena_strndup(a, vals->items[j]->s.ptr, vals->items[j]->s.len);
		}
	}
	struct km_str pem;
	const char *kid;
	const char *prefix = cp_tokens_dp_key_prefix(a, mesh_c);
	int rc = latest_key(c, "Secret", mesh, prefix, &pem, &kid);
	if (rc) {
		cp_api_write_error(c->req, 404, "Signing Key not found",
				   "there is no signing key in the Control Plane. If you run multi-zone "
				   "setup, make sure Remote is connected to the Global before generating "
				   "tokens.",
				   NULL);
		return;
	}
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	rc = cp_tokens_dp_issue(&tok, pem.ptr, pem.len, kid, &id, km_time_now() / 1000000000, secs,
				NULL, &err);
	if (rc)
		cp_api_write_error(c->req, 500, "Could not issue a token", km_buf_cstr(&err), NULL);
	else
		write_token(c, &tok);
	km_buf_fini(&tok);
	km_buf_fini(&err);
}
