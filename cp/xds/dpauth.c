/* SPDX-License-Identifier: Apache-2.0 */
/* Dataplane-token authentication: cp/tokens verifies the JWT with keys found
 * here (static config keys, then mesh Secrets), then the token's bindings are
 * checked against the Dataplane in upstream's order and wording. Everything
 * read from the store or decoded lives in the caller's arena. */
#include "cp/xds/dpauth.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cp/runtime.h"
#include "cp/tokens/tokens.h"
#include "resource/resource.h"

#define WORKLOAD_LABEL "kuma.io/workload"

/* Go's %q for a string (strconv.Quote, enough for label names and values). */
static void put_quoted(struct km_buf *b, const char *s)
{
	km_buf_putc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			km_buf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			km_buf_puts(b, "\\n");
		else if (*p == '\t')
			km_buf_puts(b, "\\t");
		else if (*p == '\r')
			km_buf_puts(b, "\\r");
		else if (*p < 0x20 || *p == 0x7f)
			km_buf_printf(b, "\\x%02x", *p);
		else
			km_buf_putc(b, (char)*p);
	}
	km_buf_putc(b, '"');
}

/* ---- store access ---- */

/* Decoded "data" of a (Global)Secret. -KM_E_NOT_FOUND when absent. */
static int secret_data(struct cp_runtime *rt, struct km_arena *a, const char *type,
		       struct km_str mesh, const char *name, struct km_str *out)
{
	struct km_resource r;
	int rc = cp_store_get(rt->store, a, km_rtype_by_name(km_str_c(type)), mesh, km_str_c(name),
			      &r);
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

static int read_file(struct km_arena *a, const char *path, struct km_str *out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	struct km_buf b = KM_BUF_INIT;
	b.max = 64 * 1024;
	char chunk[4096];
	size_t n;
	int rc = 0;
	while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		rc = km_buf_append(&b, chunk, n);
	fclose(f);
	if (rc == 0)
		*out = (struct km_str){km_arena_strndup(a, km_buf_cstr(&b), b.len), b.len};
	km_buf_fini(&b);
	return rc;
}

struct key_lookup {
	struct cp_runtime *rt;
	struct km_arena *a;
	struct km_str mesh;
	const char *prefix; /* dataplane-token-signing-key-<mesh> */
};

/* Static keys of the mesh (and of every mesh) first, then the mesh's signing
 * key Secrets, as upstream's accessor list. */
static int lookup_key(void *ud, const char *kid, struct km_str *pem, struct km_buf *err)
{
	struct key_lookup *k = ud;
	const struct cp_config *cfg = k->rt->cfg;
	const struct cp_config_keys *keys =
		&cfg->dp_server.authn.dp_proxy.dp_token.validator.public_keys;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < keys->n; i++) {
			const struct cp_config_key *key = &keys->items[i];
			const char *km = key->mesh ? key->mesh : "";
			bool mine = pass == 0 ? km_str_eqc(k->mesh, km) && *km : !*km;
			if (!mine || !key->kid || strcmp(key->kid, kid) != 0)
				continue;
			if (key->key && *key->key) {
				*pem = km_str_c(key->key);
				return 0;
			}
			if (key->key_file && *key->key_file) {
				int rc = read_file(k->a, key->key_file, pem);
				if (rc)
					km_buf_printf(err, "could not read key file %s",
						      key->key_file);
				return rc ? -EIO : 0;
			}
		}
	}
	if (!cfg->dp_server.authn.dp_proxy.dp_token.validator.use_secrets)
		return -KM_E_NOT_FOUND;
	const char *name = cp_tokens_signing_key_name(k->a, k->prefix, kid);
	int rc = secret_data(k->rt, k->a, "Secret", k->mesh, name, pem);
	if (rc && rc != -KM_E_NOT_FOUND)
		km_buf_printf(err, "could not retrieve signing key: %s", km_strerror(rc));
	return rc;
}

/* The revocation list: ids from the mesh Secret and from the GlobalSecret of
 * the same name, joined with ','. */
static struct km_str revocations(struct cp_runtime *rt, struct km_arena *a, struct km_str mesh)
{
	const char *name =
		cp_tokens_dp_revocations_name(a, km_arena_strndup(a, mesh.ptr, mesh.len));
	struct km_str s = KM_STR_NULL, g = KM_STR_NULL;
	if (secret_data(rt, a, "Secret", mesh, name, &s))
		s = KM_STR_NULL;
	if (secret_data(rt, a, "GlobalSecret", KM_STR(""), name, &g))
		g = KM_STR_NULL;
	if (!s.len || !g.len)
		return s.len ? s : g;
	if (s.ptr[s.len - 1] == '\n')
		s.len--;
	const char *j = km_arena_printf(a, "%.*s,%.*s", KM_STR_FMT(s), KM_STR_FMT(g));
	return km_str_c(j);
}

/* ---- MeshIdentity ---- */

bool cp_dpauth_identity_selects(const struct km_json *spec, const struct km_json *labels,
				size_t *match_count)
{
	const struct km_json *sel = km_json_get(spec, "selector");
	const struct km_json *dp =
		sel && sel->kind == KM_JSON_OBJECT ? km_json_get(sel, "dataplane") : NULL;
	*match_count = 0;
	if (!dp || dp->kind != KM_JSON_OBJECT)
		return false;
	const struct km_json *ml = km_json_get(dp, "matchLabels");
	if (!ml || ml->kind != KM_JSON_OBJECT)
		return true;
	for (size_t i = 0; i < ml->len; i++) {
		const struct km_json *want = ml->members[i].val;
		const struct km_json *have =
			labels ? km_json_get_str(labels, ml->members[i].key) : NULL;
		if (!have || have->kind != KM_JSON_STRING || want->kind != KM_JSON_STRING ||
		    !km_str_eq(have->s, want->s))
			return false;
	}
	*match_count = ml->len;
	return true;
}

static const char *skip_space(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f'))
		p++;
	return p;
}

static bool take(const char **p, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Matches {{\s*label\s+"kuma\.io/workload"\s*}} or {{\s*\.Workload\s*}} at <p>. */
static bool workload_action_at(const char *p, const char *end)
{
	if (!take(&p, end, "{{"))
		return false;
	p = skip_space(p, end);
	if (take(&p, end, ".Workload")) {
		p = skip_space(p, end);
		return take(&p, end, "}}");
	}
	if (!take(&p, end, "label"))
		return false;
	const char *q = skip_space(p, end);
	if (q == p)
		return false;
	p = q;
	if (!take(&p, end, "\"" WORKLOAD_LABEL "\""))
		return false;
	p = skip_space(p, end);
	return take(&p, end, "}}");
}

bool cp_dpauth_identity_uses_workload(const struct km_json *spec, const char *environment)
{
	struct km_str path = strcmp(environment ? environment : "", "kubernetes") == 0 ?
				     KM_STR("/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}") :
				     KM_STR("/workload/{{ .Workload }}");
	const struct km_json *sid = km_json_get(spec, "spiffeID");
	const struct km_json *p =
		sid && sid->kind == KM_JSON_OBJECT ? km_json_get(sid, "path") : NULL;
	if (p && p->kind == KM_JSON_STRING)
		path = p->s;
	for (size_t i = 0; i + 1 < path.len; i++)
		if (workload_action_at(path.ptr + i, path.ptr + path.len))
			return true;
	return false;
}

/* Whether the best-matching MeshIdentity of <mesh> derives the Dataplane's
 * identity from kuma.io/workload (upstream identityDerivesFromWorkloadLabel). */
static int identity_uses_workload(struct cp_runtime *rt, struct km_arena *a, struct km_str mesh,
				  const struct km_json *labels, bool *out)
{
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result res;
	*out = false;
	int rc = cp_store_list(rt->store, a, km_rtype_by_name(KM_STR("MeshIdentity")), &o, &res);
	if (rc)
		return rc;
	const struct km_json *best = NULL;
	struct km_str best_name = KM_STR_NULL;
	size_t best_count = 0;
	for (size_t i = 0; i < res.len; i++) {
		struct km_json *spec;
		size_t count;
		if (km_json_parse(a, res.items[i].spec.ptr, res.items[i].spec.len, &spec, NULL) ||
		    !cp_dpauth_identity_selects(spec, labels, &count))
			continue;
		if (!best || count > best_count ||
		    (count == best_count && km_str_cmp(res.items[i].name, best_name) < 0)) {
			best = spec;
			best_count = count;
			best_name = res.items[i].name;
		}
	}
	if (best)
		*out = cp_dpauth_identity_uses_workload(best,
							rt->cfg ? rt->cfg->environment : NULL);
	return 0;
}

/* ---- bindings ---- */

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Go's %q of the token's sorted, de-duplicated values for one tag. */
static void put_values(struct km_buf *b, const struct cp_tokens_tag *t)
{
	const char **v = malloc((t->n_values + 1) * sizeof(*v));
	if (!v)
		abort();
	if (t->n_values)
		memcpy(v, t->values, t->n_values * sizeof(*v));
	qsort(v, t->n_values, sizeof(*v), cmp_cstr);
	km_buf_putc(b, '[');
	for (size_t i = 0, out = 0; i < t->n_values; i++) {
		if (i && strcmp(v[i], v[i - 1]) == 0)
			continue;
		if (out++)
			km_buf_putc(b, ' ');
		put_quoted(b, v[i]);
	}
	km_buf_putc(b, ']');
	free(v);
}

static const char *label_of(const struct km_json *labels, const char *key)
{
	const struct km_json *v =
		labels && labels->kind == KM_JSON_OBJECT ? km_json_get(labels, key) : NULL;
	return v && v->kind == KM_JSON_STRING ? v->s.ptr : NULL;
}

int cp_dpauth_bindings(const struct cp_tokens_dp *tok, struct km_str mesh, struct km_str name,
		       const struct km_json *dp_labels, bool identity_uses_workload,
		       struct km_buf *err)
{
	if (tok->name && *tok->name && !km_str_eqc(name, tok->name)) {
		km_buf_printf(err, "proxy name from requestor: %.*s is different than in token: %s",
			      KM_STR_FMT(name), tok->name);
		return -KM_E_FORBIDDEN;
	}
	if (tok->mesh && *tok->mesh && !km_str_eqc(mesh, tok->mesh)) {
		km_buf_printf(err, "proxy mesh from requestor: %.*s is different than in token: %s",
			      KM_STR_FMT(mesh), tok->mesh);
		return -KM_E_FORBIDDEN;
	}
	for (size_t i = 0; i < tok->n_tags; i++) {
		const struct cp_tokens_tag *t = &tok->tags[i];
		const struct km_json *lv = dp_labels && dp_labels->kind == KM_JSON_OBJECT ?
						   km_json_get(dp_labels, t->key) :
						   NULL;
		if (!lv || lv->kind != KM_JSON_STRING) {
			km_buf_puts(err, "dataplane has no tag ");
			put_quoted(err, t->key);
			km_buf_puts(err, " required by the token");
			return -KM_E_FORBIDDEN;
		}
		bool allowed = false;
		for (size_t j = 0; j < t->n_values && !allowed; j++)
			allowed = km_str_eqc(lv->s, t->values[j]);
		if (!allowed) {
			const char *val = strndup(lv->s.ptr, lv->s.len);
			if (!val)
				abort();
			km_buf_puts(err, "dataplane contains tag ");
			put_quoted(err, t->key);
			km_buf_puts(err, " with value ");
			put_quoted(err, val);
			km_buf_puts(
				err,
				" which is not allowed with this token. Allowed values in token are ");
			put_values(err, t);
			free((void *)val);
			return -KM_E_FORBIDDEN;
		}
	}
	const char *wl = label_of(dp_labels, WORKLOAD_LABEL);
	if (!tok->workload || !*tok->workload) {
		if (wl && identity_uses_workload) {
			km_buf_puts(err, "dataplane with \"" WORKLOAD_LABEL "\" label ");
			put_quoted(err, wl);
			km_buf_puts(err,
				    " derives its identity from the workload, so it requires a "
				    "workload-bound token");
			return -KM_E_FORBIDDEN;
		}
		return 0;
	}
	if (!wl) {
		km_buf_puts(err, "dataplane has no workload label required by the token");
		return -KM_E_FORBIDDEN;
	}
	if (strcmp(wl, tok->workload) != 0) {
		km_buf_puts(err, "dataplane workload ");
		put_quoted(err, wl);
		km_buf_puts(err, " is not allowed with this token. Allowed workload in token is ");
		put_quoted(err, tok->workload);
		return -KM_E_FORBIDDEN;
	}
	return 0;
}

/* ---- entry point ---- */

int cp_dpauth_check(struct cp_runtime *rt, struct km_arena *a, const char *token,
		    struct km_str mesh, struct km_str name, const struct km_json *dp_labels,
		    struct km_buf *err)
{
	const struct cp_config *cfg = rt->cfg;
	const char *type =
		cfg && cfg->dp_server.authn.dp_proxy.type ? cfg->dp_server.authn.dp_proxy.type : "";
	if (strcmp(type, "none") == 0)
		return 0;
	if (*type && strcmp(type, "dpToken") != 0) {
		km_buf_printf(err, "authentication failed: authenticator %s is not supported",
			      type);
		return -KM_E_UNAUTHENTICATED;
	}
	const char *mesh_c = km_arena_strndup(a, mesh.ptr, mesh.len);
	struct key_lookup kl = {rt, a, mesh, cp_tokens_dp_key_prefix(a, mesh_c)};
	bool use_secrets = cfg && cfg->dp_server.authn.dp_proxy.dp_token.validator.use_secrets;
	struct cp_tokens_validator v = {
		.key = lookup_key,
		.key_ud = &kl,
		.key_prefix = use_secrets ? kl.prefix : "",
		.key_mesh = use_secrets ? mesh_c : NULL,
		.revoked = revocations(rt, a, mesh),
		.memory_store = cfg && cfg->store.type && strcmp(cfg->store.type, "memory") == 0,
		.now = km_time_now() / 1000000000,
	};
	struct cp_tokens_dp tok;
	struct km_buf why = KM_BUF_INIT;
	const char *t = token ? token : "";
	int rc = cp_tokens_dp_validate(a, &v, t, strlen(t), &tok, &why);
	if (rc) {
		km_buf_printf(err, "authentication failed: %s", km_buf_cstr(&why));
		km_buf_fini(&why);
		return -KM_E_UNAUTHENTICATED;
	}
	bool uses = false;
	if ((!tok.workload || !*tok.workload) && label_of(dp_labels, WORKLOAD_LABEL)) {
		rc = identity_uses_workload(rt, a, mesh, dp_labels, &uses);
		if (rc) {
			km_buf_printf(err,
				      "authentication failed: failed to list MeshIdentities: %s",
				      km_strerror(rc));
			km_buf_fini(&why);
			return rc;
		}
	}
	rc = cp_dpauth_bindings(&tok, mesh, name, dp_labels, uses, &why);
	if (rc)
		km_buf_printf(err, "authentication failed: %s", km_buf_cstr(&why));
	km_buf_fini(&why);
	return rc;
}
