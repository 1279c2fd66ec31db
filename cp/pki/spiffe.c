/* SPDX-License-Identifier: Apache-2.0 */
/* SPIFFE templates and checks (see spiffe.h). Templates go through the Go
 * text/template subset; everything lives in the caller's arena. */
#include "cp/pki/spiffe.h"

#include "cp/store/store.h"
#include "cp/xds/dpauth.h"

#include <errno.h>
#include <string.h>

#include "resource/gotemplate.h"

struct tdata {
	struct km_arena *a;
	const char *type; /* Go's struct type for "can't evaluate field" */
	const struct km_json *labels;
	const char *const *keys; /* field names */
	struct km_str *vals;
	size_t n;
};

static const char *lookup(void *ctx, enum km_gotemplate_ref kind, struct km_str name,
			  const struct km_str *args, size_t nargs, struct km_str *value)
{
	struct tdata *d = ctx;
	if (kind == KM_GOTEMPLATE_FIELD) {
		for (size_t i = 0; i < d->n; i++)
			if (km_str_eqc(name, d->keys[i])) {
				*value = d->vals[i];
				return NULL;
			}
		return km_arena_printf(d->a, "can't evaluate field %.*s in type %s", KM_STR_FMT(name), d->type);
	}
	if (!km_str_eqc(name, "label"))
		return km_arena_printf(d->a, "function %.*s not defined", KM_STR_FMT(name));
	if (nargs != 1)
		return km_arena_printf(d->a, "wrong number of args for label: want 1 got %zu", nargs);
	const struct km_json *v = d->labels && d->labels->kind == KM_JSON_OBJECT ?
					  km_json_get_str(d->labels, args[0]) : NULL;
	if (!v || v->kind != KM_JSON_STRING)
		return km_arena_printf(d->a, "label %.*s not found", KM_STR_FMT(args[0]));
	*value = v->s;
	return NULL;
}

/* upstream renderTemplate: "failed compiling Go template: ..." or
 * "executing template failed: ...". */
static int render(struct km_arena *a, struct km_str text, struct tdata *d, const char **out,
		  const char **err)
{
	static const char *const funcs[] = {"label", NULL};
	struct km_gotemplate *t;
	const char *msg = NULL;
	if (km_gotemplate_parse(a, "", text, funcs, &t, &msg) != 0) {
		*err = km_arena_printf(a, "failed compiling Go template: %s", msg);
		return -EINVAL;
	}
	struct km_buf b = KM_BUF_INIT;
	int rc = km_gotemplate_render(t, lookup, d, &b, &msg);
	if (rc == 0)
		*out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	else
		*err = km_arena_printf(a, "executing template failed: %s", msg);
	km_buf_fini(&b);
	return rc ? -EINVAL : 0;
}

static struct km_str spiffe_field(const struct km_json *spec, const char *key)
{
	const struct km_json *sid = km_json_get(spec, "spiffeID");
	const struct km_json *v = sid && sid->kind == KM_JSON_OBJECT ? km_json_get(sid, key) : NULL;
	return v && v->kind == KM_JSON_STRING ? v->s : (struct km_str){NULL, (size_t)-1};
}

static bool absent(struct km_str s)
{
	return s.len == (size_t)-1;
}

int cp_pki_spiffe_trust_domain(struct km_arena *a, const struct km_json *spec, struct km_str mesh,
			       const struct km_json *labels, const char *local_zone, const char **out,
			       const char **err)
{
	struct km_str tmpl = spiffe_field(spec, "trustDomain");
	if (absent(tmpl))
		tmpl = KM_STR(CP_PKI_DEFAULT_TRUST_DOMAIN);
	struct km_str zone = km_json_get_string(labels, "kuma.io/zone");
	if (!zone.len)
		zone = km_str_c(local_zone ? local_zone : "");
	static const char *const keys[] = {"Mesh", "Zone"};
	struct km_str vals[] = {mesh, zone};
	struct tdata d = {a, "struct { Mesh string; Zone string }", labels, keys, vals, 2};
	return render(a, tmpl, &d, out, err);
}

static bool td_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
	       c == '-' || c == '_';
}

static const char *check_path(struct km_str p)
{
	if (!p.len)
		return NULL;
	if (p.ptr[0] != '/')
		return "path must have a leading slash";
	size_t start = 0, end = 0;
	for (; end < p.len; end++) {
		char c = p.ptr[end];
		if (c == '/') {
			size_t n = end - start;
			if (n == 1)
				return "path cannot contain empty segments";
			if ((n == 2 && p.ptr[start + 1] == '.') ||
			    (n == 3 && p.ptr[start + 1] == '.' && p.ptr[start + 2] == '.'))
				return "path cannot contain dot segments";
			start = end;
			continue;
		}
		if (!path_char(c))
			return "path segment characters are limited to letters, numbers, dots, dashes, and "
			       "underscores";
	}
	size_t n = end - start;
	if (n == 1)
		return "path cannot have a trailing slash";
	if ((n == 2 && p.ptr[start + 1] == '.') || (n == 3 && p.ptr[start + 1] == '.' && p.ptr[start + 2] == '.'))
		return "path cannot contain dot segments";
	return NULL;
}

const char *cp_pki_spiffe_check_id(struct km_str id)
{
	if (!id.len)
		return "cannot be empty";
	if (!km_str_has_prefix(id, "spiffe://"))
		return "scheme is missing or invalid";
	struct km_str rest = {id.ptr + 9, id.len - 9};
	size_t i = 0;
	for (; i < rest.len && rest.ptr[i] != '/'; i++)
		if (!td_char(rest.ptr[i]))
			return "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
			       "and underscores";
	if (i == 0)
		return "trust domain is missing";
	return check_path((struct km_str){rest.ptr + i, rest.len - i});
}

const char *cp_pki_spiffe_check_trust_domain(struct km_str td)
{
	if (km_str_find(td, KM_STR(":/")) >= 0) {
		const char *e = cp_pki_spiffe_check_id(td);
		return e;
	}
	if (!td.len)
		return "trust domain is missing";
	for (size_t i = 0; i < td.len; i++)
		if (!td_char(td.ptr[i]))
			return "trust domain characters are limited to lowercase letters, numbers, dots, dashes, "
			       "and underscores";
	return NULL;
}

int cp_pki_spiffe_id(struct km_arena *a, const struct km_json *spec, const char *trust_domain,
		     const struct km_json *dp_labels, const char *environment, const char **out,
		     const char **err)
{
	bool k8s = environment && strcmp(environment, "kubernetes") == 0;
	struct km_str path = spiffe_field(spec, "path");
	if (absent(path))
		path = k8s ? KM_STR(CP_PKI_DEFAULT_PATH_KUBERNETES) : KM_STR(CP_PKI_DEFAULT_PATH_UNIVERSAL);
	const char *tmpl = km_arena_printf(a, "spiffe://{{ .TrustDomain }}%.*s", KM_STR_FMT(path));
	static const char *const keys[] = {"TrustDomain", "Namespace", "ServiceAccount", "Workload"};
	struct km_str vals[] = {km_str_c(trust_domain), km_json_get_string(dp_labels, "k8s.kuma.io/namespace"),
				km_json_get_string(dp_labels, "k8s.kuma.io/service-account"),
				km_json_get_string(dp_labels, "kuma.io/workload")};
	struct tdata d = {a,
			  "struct { TrustDomain string; Namespace string; ServiceAccount string; Workload string }",
			  dp_labels, keys, vals, 4};
	const char *id = NULL, *e = NULL;
	if (render(a, km_str_c(tmpl), &d, &id, &e)) {
		*err = km_arena_printf(a, "failed to render SPIFFE ID template: %s", e);
		return -EINVAL;
	}
	const char *bad = cp_pki_spiffe_check_id(km_str_c(id));
	if (bad) {
		*err = km_arena_printf(a, "failed to parse SPIFFE ID \"%s\": %s", id, bad);
		return -EINVAL;
	}
	*out = id;
	return 0;
}

int cp_pki_identities_read(struct cp_store *store, struct km_arena *a, struct km_str mesh,
			   struct cp_pki_identities *out)
{
	memset(out, 0, sizeof(*out));
	out->mesh = mesh;
	struct cp_list_opts o = {.mesh = mesh};
	struct cp_list_result ids;
	int rc = cp_store_list(store, a, km_rtype_by_name(KM_STR("MeshIdentity")), &o, &ids);
	if (rc)
		return rc;
	out->names = km_arena_alloc(a, (ids.len + 1) * sizeof(*out->names));
	out->specs = km_arena_alloc(a, (ids.len + 1) * sizeof(*out->specs));
	out->labels = km_arena_alloc(a, (ids.len + 1) * sizeof(*out->labels));
	for (size_t i = 0; i < ids.len; i++) {
		out->names[i] = ids.items[i].name;
		out->specs[i] = NULL;
		out->labels[i] = NULL;
		km_json_parse(a, ids.items[i].spec.ptr, ids.items[i].spec.len, &out->specs[i], NULL);
		if (ids.items[i].labels.len)
			km_json_parse(a, ids.items[i].labels.ptr, ids.items[i].labels.len, &out->labels[i], NULL);
	}
	out->n = ids.len;
	return 0;
}

const char *cp_pki_spiffe_from(const struct cp_pki_identities *ids, struct km_arena *a, const char *zone,
			       const struct km_json *dp_labels)
{
	size_t best = ids->n, best_count = 0;
	for (size_t i = 0; i < ids->n; i++) {
		size_t count = 0;
		if (!cp_dpauth_identity_selects(ids->specs[i], dp_labels, &count))
			continue;
		if (best == ids->n || count > best_count ||
		    (count == best_count && km_str_cmp(ids->names[i], ids->names[best]) < 0)) {
			best = i;
			best_count = count;
		}
	}
	if (best == ids->n)
		return NULL;
	const char *td, *id, *err;
	if (cp_pki_spiffe_trust_domain(a, ids->specs[best], ids->mesh, ids->labels[best], zone, &td, &err) ||
	    cp_pki_spiffe_id(a, ids->specs[best], td, dp_labels, "universal", &id, &err))
		return NULL;
	return id;
}

const char *cp_pki_spiffe_for_dataplane(struct cp_store *store, struct km_arena *a, struct km_str mesh,
					const char *zone, const struct km_json *dp_labels)
{
	struct cp_pki_identities ids;
	if (cp_pki_identities_read(store, a, mesh, &ids))
		return NULL;
	return cp_pki_spiffe_from(&ids, a, zone, dp_labels);
}
