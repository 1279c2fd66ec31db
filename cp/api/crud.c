/* SPDX-License-Identifier: Apache-2.0 */
/* Generic CRUD over every type of the table: GET one, list (paging, name,
 * label, tag and gateway filters, overviews with insights), PUT (create or
 * update) and DELETE, with upstream's checks in upstream's order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cp/api/api.h"
#include "cp/api/labels.h"
#include "cp/manager.h"
#include "codec/json.h"
#include "resource/validate.h"

#define DEFAULT_PAGE 100
#define MAX_PAGE 1000

/* Go's %q for error details. */
static const char *go_quote(struct km_arena *a, const char *s)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_putc(&b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			km_buf_printf(&b, "\\%c", *p);
		else if (*p == '\n')
			km_buf_puts(&b, "\\n");
		else if (*p == '\t')
			km_buf_puts(&b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			km_buf_printf(&b, "\\x%02x", *p);
		else
			km_buf_putc(&b, (char)*p);
	}
	km_buf_putc(&b, '"');
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

/* Admin-only types (secrets) need the adminResources permission. */
static bool allowed(struct cp_api_ctx *c, const struct km_rtype *t)
{
	if (!km_rtype_has(t, KM_RT_ADMIN_ONLY))
		return true;
	if (cp_api_user_in(&c->user, &c->rt->cfg->access.static_.admin_resources.users,
			   &c->rt->cfg->access.static_.admin_resources.groups))
		return true;
	cp_api_write_error(c->req, 403, "Access Denied",
			   km_arena_printf(c->req->a, "user \"%s\" cannot access the resource of type \"%s\"",
					   cp_api_user_string(c->req->a, &c->user), t->name),
			   NULL);
	return false;
}

/* Upstream resolves the mesh of a mesh-scoped route first: a missing mesh is a 404. */
static bool mesh_exists(struct cp_api_ctx *c, struct km_str mesh)
{
	struct km_resource m;
	int rc = cp_store_get(c->rt->store, c->req->a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &m);
	if (rc == 0)
		return true;
	cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
	return false;
}

static struct km_json *kubernetes_form(struct km_arena *a, const struct km_resource *r)
{
	struct km_json *u = km_resource_to_json(a, r);
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "apiVersion", km_json_cstring(a, "kuma.io/v1alpha1"));
	km_json_set(a, o, "kind", km_json_cstring(a, r->type->name));
	if (r->type->scope == KM_SCOPE_MESH && !km_rtype_has(r->type, KM_RT_NEW_STYLE))
		km_json_set(a, o, "mesh", km_json_string(a, r->mesh));
	struct km_json *md = km_json_object(a);
	km_json_set(a, md, "name", km_json_string(a, r->name));
	km_json_set(a, md, "creationTimestamp", km_json_cstring(a, km_time_format(a, r->ctime)));
	struct km_json *labels = km_json_get(u, "labels");
	if (labels)
		km_json_set(a, md, "labels", labels);
	km_json_set(a, o, "metadata", md);
	struct km_json *spec = km_json_get(u, "spec");
	if (!spec) {
		spec = km_json_object(a);
		static const char *const meta[] = {"type", "mesh", "name", "creationTime",
						   "modificationTime", "labels", "kri"};
		for (size_t i = 0; i < u->len; i++) {
			bool skip = false;
			for (size_t j = 0; j < sizeof(meta) / sizeof(meta[0]); j++)
				skip |= km_str_eqc(u->members[i].key, meta[j]);
			if (!skip)
				km_json_set_str(a, spec, u->members[i].key, u->members[i].val);
		}
	}
	km_json_set(a, o, "spec", spec);
	struct km_json *status = km_json_get(u, "status");
	if (status)
		km_json_set(a, o, "status", status);
	return o;
}

/* Returns 0 universal, 1 kubernetes, -1 after writing a 400. */
static int output_format(struct cp_api_ctx *c)
{
	const struct km_str *f = cp_http_query(c->req, "format");
	if (!f || f->len == 0 || km_str_eqc(*f, "universal"))
		return 0;
	if (km_str_eqc(*f, "k8s") || km_str_eqc(*f, "kubernetes"))
		return 1;
	struct km_violations v;
	km_violations_init(&v, c->req->a);
	km_violations_add(&v, "format", "must be one of: k8s, kubernetes, universal");
	cp_api_write_error(c->req, 400, "Could not retrieve a resource", "Resource is not valid", &v);
	return -1;
}

static const struct km_rtype *insight_type(const struct km_rtype *t)
{
	if (strcmp(t->name, "Dataplane") == 0)
		return km_rtype_by_name(KM_STR("DataplaneInsight"));
	if (strcmp(t->name, "Zone") == 0)
		return km_rtype_by_name(KM_STR("ZoneInsight"));
	return NULL;
}

static struct km_json *overview(struct cp_api_ctx *c, const struct km_resource *r)
{
	struct km_arena *a = c->req->a;
	bool dp = strcmp(r->type->name, "Dataplane") == 0;
	struct km_json *u = km_resource_to_json(a, r);
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, dp ? "DataplaneOverview" : "ZoneOverview"));
	if (dp)
		km_json_set(a, o, "mesh", km_json_string(a, r->mesh));
	km_json_set(a, o, "name", km_json_string(a, r->name));
	km_json_set(a, o, "creationTime", km_json_get(u, "creationTime"));
	km_json_set(a, o, "modificationTime", km_json_get(u, "modificationTime"));
	struct km_json *v;
	if ((v = km_json_get(u, "labels")))
		km_json_set(a, o, "labels", v);
	if ((v = km_json_get(u, "kri")))
		km_json_set(a, o, "kri", v);
	struct km_json *spec = NULL;
	km_json_parse(a, r->spec.ptr, r->spec.len, &spec, NULL);
	km_json_set(a, o, dp ? "dataplane" : "zone", spec ? spec : km_json_object(a));
	struct km_resource ins;
	if (cp_store_get(c->rt->store, a, insight_type(r->type), r->mesh, r->name, &ins) == 0) {
		struct km_json *is = NULL;
		km_json_parse(a, ins.spec.ptr, ins.spec.len, &is, NULL);
		km_json_set(a, o, dp ? "dataplaneInsight" : "zoneInsight", is ? is : km_json_object(a));
	}
	return o;
}

void cp_api_get(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, struct km_str name,
		bool with_overview)
{
	if (t->scope == KM_SCOPE_MESH && !mesh_exists(c, mesh))
		return;
	if (!allowed(c, t))
		return;
	struct km_resource r;
	int rc = cp_store_get(c->rt->store, c->req->a, t, mesh, name, &r);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve a resource");
		return;
	}
	if (with_overview) {
		cp_api_write_json(c->req, 200, overview(c, &r));
		return;
	}
	int fmt = output_format(c);
	if (fmt < 0)
		return;
	cp_api_write_json(c->req, 200, fmt ? kubernetes_form(c->req->a, &r) : km_resource_to_json(c->req->a, &r));
}

struct dp_filter {
	struct km_arena *a;
	struct km_str tag_keys[16], tag_values[16];
	size_t ntags;
	int gateway; /* 0 any, 1 true, 2 false, 3 delegated */
};

static bool dp_match(void *ctx, const struct km_resource *r)
{
	struct dp_filter *f = ctx;
	if (!f->ntags && !f->gateway)
		return true;
	struct km_json *spec = NULL, *labels = NULL;
	km_json_parse(f->a, r->spec.ptr, r->spec.len, &spec, NULL);
	if (r->labels.len)
		km_json_parse(f->a, r->labels.ptr, r->labels.len, &labels, NULL);
	struct km_json *gw = km_json_get(km_json_get(spec, "networking"), "gateway");
	if (f->gateway == 1 && !gw)
		return false;
	if (f->gateway == 2 && gw)
		return false;
	if (f->gateway == 3) {
		struct km_json *ty = km_json_get(gw, "type");
		/* DELEGATED is the proto default (0) */
		if (!gw || (ty && !(ty->kind == KM_JSON_STRING && km_str_eqc(ty->s, "DELEGATED")) &&
			    !(ty->kind == KM_JSON_NUMBER && ty->i == 0)))
			return false;
	}
	for (size_t i = 0; i < f->ntags; i++) {
		struct km_json *v = km_json_get_str(labels, f->tag_keys[i]);
		if (!v || v->kind != KM_JSON_STRING || km_str_find(v->s, f->tag_values[i]) < 0)
			return false;
	}
	return true;
}

static void page_error(struct cp_api_ctx *c, const char *reason)
{
	struct km_violations v;
	km_violations_init(&v, c->req->a);
	km_violations_add(&v, "size", "%s", reason);
	cp_api_write_error(c->req, 400, "Could not retrieve resources", "Invalid page size", &v);
}

static int cmp_param(const void *x, const void *y)
{
	const struct cp_http_param *a = x, *b = y;
	return km_str_cmp(a->key, b->key);
}

static void url_escape(struct km_buf *b, struct km_str s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < s.len; i++) {
		unsigned char ch = (unsigned char)s.ptr[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.' || ch == '~')
			km_buf_putc(b, (char)ch);
		else if (ch == ' ')
			km_buf_putc(b, '+');
		else {
			km_buf_putc(b, '%');
			km_buf_putc(b, hex[ch >> 4]);
			km_buf_putc(b, hex[ch & 15]);
		}
	}
}

const char *cp_api_next_link(struct cp_api_ctx *c, size_t next_offset)
{
	struct km_arena *a = c->req->a;
	size_t n = c->req->nquery;
	struct cp_http_param *q = km_arena_alloc(a, (n + 1) * sizeof(*q));
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (!km_str_eqc(c->req->query[i].key, "offset"))
			q[m++] = c->req->query[i];
	q[m].key = KM_STR("offset");
	q[m].value.ptr = km_arena_printf(a, "%zu", next_offset);
	q[m].value.len = strlen(q[m].value.ptr);
	m++;
	/* stable sort keeps the order of repeated keys */
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && cmp_param(&q[j - 1], &q[j]) > 0; j--) {
			struct cp_http_param t = q[j];
			q[j] = q[j - 1];
			q[j - 1] = t;
		}
	const char *host = cp_http_header(c->req, "Host");
	struct km_buf b = KM_BUF_INIT;
	km_buf_printf(&b, "http://%s", host ? host : "localhost");
	km_buf_put_str(&b, c->req->path);
	for (size_t i = 0; i < m; i++) {
		km_buf_putc(&b, i ? '&' : '?');
		url_escape(&b, q[i].key);
		km_buf_putc(&b, '=');
		url_escape(&b, q[i].value);
	}
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

void cp_api_list(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, bool all_meshes,
		 bool with_overview)
{
	struct km_arena *a = c->req->a;
	struct cp_list_opts o = {0};
	o.size = DEFAULT_PAGE;
	const struct km_str *sz = cp_http_query(c->req, "size");
	if (sz && sz->len) {
		long long v;
		if (km_str_to_i64(*sz, &v) != 0) {
			page_error(c, "invalid format");
			return;
		}
		if (v <= 0) {
			page_error(c, "must be greater than 0");
			return;
		}
		if (v > MAX_PAGE) {
			page_error(c, km_arena_printf(a, "invalid page size of %lld. Maximum page size is %d",
						      v, MAX_PAGE));
			return;
		}
		o.size = (size_t)v;
	}
	/* filter[labels.<key>]=value */
	struct cp_label_filter *lf = km_arena_alloc(a, (c->req->nquery + 1) * sizeof(*lf));
	struct km_violations viol;
	km_violations_init(&viol, a);
	const char *route_path = t->scope == KM_SCOPE_MESH && !all_meshes
				     ? km_arena_printf(a, "/meshes/{mesh}/%s", t->path)
				     : km_arena_printf(a, "/%s", t->path);
	for (size_t i = 0; i < c->req->nquery; i++) {
		struct km_str k = c->req->query[i].key;
		if (!km_str_has_prefix(k, "filter["))
			continue;
		const char *field = km_arena_printf(a, "%s.%.*s", route_path, KM_STR_FMT(k));
		if (!km_str_has_prefix(k, "filter[labels.")) {
			km_violations_add(&viol, field, "filters are only supported on labels");
			continue;
		}
		const char *close = memchr(k.ptr, ']', k.len);
		if (!close || (size_t)(close - k.ptr) != k.len - 1) {
			km_violations_add(&viol, field, "advanced filters are not supported");
			continue;
		}
		struct km_str key = {k.ptr + strlen("filter[labels."), k.len - strlen("filter[labels.") - 1};
		/* the last value of a repeated key wins */
		size_t j;
		for (j = 0; j < o.labels_len; j++)
			if (km_str_eq(lf[j].key, key))
				break;
		lf[j].key = key;
		lf[j].value = c->req->query[i].value;
		if (j == o.labels_len)
			o.labels_len++;
	}
	if (viol.len) {
		cp_api_write_error(c->req, 400, "Could not retrieve resources", "Resource is not valid", &viol);
		return;
	}
	o.labels = lf;
	struct dp_filter df = {.a = a};
	if (strcmp(t->name, "Dataplane") == 0) {
		const struct km_str *gw = cp_http_query(c->req, "gateway");
		if (gw && gw->len) {
			char *mode = km_arena_strndup(a, gw->ptr, gw->len);
			for (char *p = mode; *p; p++)
				*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
			if (strcmp(mode, "true") == 0)
				df.gateway = 1;
			else if (strcmp(mode, "false") == 0)
				df.gateway = 2;
			else if (strcmp(mode, "delegated") == 0)
				df.gateway = 3;
			else {
				km_violations_add(&viol, km_arena_printf(a, "%s.gateway", route_path),
						  "should use `true`, `false` or `delegated` instead of %s", mode);
				cp_api_write_error(c->req, 400, "Could not retrieve resources",
						   "Resource is not valid", &viol);
				return;
			}
		}
		for (size_t i = 0; i < c->req->nquery && df.ntags < 16; i++) {
			if (!km_str_eqc(c->req->query[i].key, "tag"))
				continue;
			struct km_str v = c->req->query[i].value;
			const char *colon = memchr(v.ptr, ':', v.len);
			if (!colon)
				continue;
			df.tag_keys[df.ntags] = (struct km_str){v.ptr, (size_t)(colon - v.ptr)};
			df.tag_values[df.ntags] = (struct km_str){colon + 1, v.len - (size_t)(colon - v.ptr) - 1};
			df.ntags++;
		}
		o.match = dp_match;
		o.match_ctx = &df;
	}
	const struct km_str *nm = cp_http_query(c->req, "name");
	if (nm)
		o.name_contains = *nm;
	if (t->scope == KM_SCOPE_MESH && !all_meshes) {
		if (!mesh_exists(c, mesh))
			return;
		o.mesh = mesh;
	}
	if (!allowed(c, t))
		return;
	const struct km_str *off = cp_http_query(c->req, "offset");
	if (off && off->len) {
		long long v;
		if (km_str_to_i64(*off, &v) != 0 || v < 0) {
			cp_api_write_error(c->req, 400, "Could not retrieve resources",
					   v < 0 && km_str_to_i64(*off, &v) == 0
					       ? "invalid: invalid offset: must be non-negative"
					       : km_arena_printf(a, "invalid: invalid offset: strconv.Atoi: parsing %s: invalid syntax",
								 go_quote(a, km_arena_strndup(a, off->ptr, off->len))),
					   NULL);
			return;
		}
		o.offset = (size_t)v;
	}
	struct cp_list_result res;
	int rc = cp_store_list(c->rt->store, a, t, &o, &res);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not retrieve resources");
		return;
	}
	int fmt = with_overview ? 0 : output_format(c);
	if (fmt < 0)
		return;
	struct km_json *items = km_json_array(a);
	for (size_t i = 0; i < res.len; i++) {
		struct km_json *it = with_overview ? overview(c, &res.items[i])
				     : fmt ? kubernetes_form(a, &res.items[i])
					   : km_resource_to_json(a, &res.items[i]);
		km_json_array_push(a, items, it);
	}
	struct km_json *out = km_json_object(a);
	km_json_set(a, out, "total", km_json_int(a, (int64_t)res.total));
	km_json_set(a, out, "items", items);
	size_t next = o.offset + o.size;
	km_json_set(a, out, "next",
		    next < res.total ? km_json_cstring(a, cp_api_next_link(c, next)) : km_json_null(a));
	cp_api_write_json(c->req, 200, out);
}

void cp_api_put(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	if (t->scope == KM_SCOPE_MESH && !mesh_exists(c, mesh))
		return;
	if (!allowed(c, t))
		return;
	struct km_buf err = KM_BUF_INIT;
	struct km_json *doc = NULL;
	struct km_resource_doc d;
	int rc = km_json_parse(a, c->req->body.ptr, c->req->body.len, &doc, &err);
	if (rc == 0)
		rc = km_resource_doc_from_json(a, doc, t, &d, &err);
	if (rc) {
		const char *detail = km_arena_printf(a, "invalid %s object: %s", t->name,
						     go_quote(a, km_buf_cstr(&err)));
		km_buf_fini(&err);
		cp_api_write_error(c->req, 400, "Bad Request", detail, NULL);
		return;
	}
	km_buf_fini(&err);
	/* new-style types are checked against their schema first: the type
	 * enum and the mesh default */
	if (km_rtype_has(t, KM_RT_NEW_STYLE)) {
		if (!km_str_eqc(km_json_get_string(doc, "type"), t->name)) {
			struct km_violations tv;
			km_violations_init(&tv, a);
			km_violations_add(&tv, "", "type in body should be one of [%s]", t->name);
			cp_api_write_error(c->req, 400, "Could not process a resource",
					   "Resource is not valid", &tv);
			return;
		}
		if (t->scope == KM_SCOPE_MESH && !km_json_get(doc, "mesh"))
			d.mesh = KM_STR("default");
	}
	/* status is read-only on REST: it is never taken from the request */
	d.status = NULL;
	struct km_violations v;
	km_violations_init(&v, a);
	/* upstream validates while decoding, before the name is known: name rules
	 * that need it (RFC 1035 types) are checked at creation */
	struct km_resource_doc dv = d;
	dv.name = KM_STR("");
	int vrc = km_validate_resource(a, &dv, &v);
	d.spec = dv.spec;
	if (vrc != 0 || v.len) {
		cp_api_write_error(c->req, 400, "Could not process a resource", "Resource is not valid", &v);
		return;
	}
	struct km_resource existing;
	rc = cp_store_get(c->rt->store, a, t, mesh, name, &existing);
	bool create = rc == -KM_E_NOT_FOUND;
	if (rc && !create) {
		cp_api_write_store_error(c->req, rc, "Failed to find a resource");
		return;
	}
	/* request checks, in upstream's order */
	if (!km_str_eq(name, d.name))
		km_violations_add(&v, "name", "name from the URL has to be the same as in body");
	if (c->rt->federated && c->rt->zone && strlen(c->rt->zone) + 1 + name.len >= 253)
		km_violations_add(&v, "name", "the length of the name must be shorter");
	struct km_str body_type = km_json_get_string(doc, "type");
	if (!km_str_eqc(body_type, t->name))
		km_violations_add(&v, "type", "type from the URL has to be the same as in body");
	if (t->scope == KM_SCOPE_MESH && !km_str_eq(mesh, d.mesh))
		km_violations_add(&v, "mesh", "mesh from the URL has to be the same as in body");
	cp_labels_validate(a, c->rt, t, &d, &v);
	km_validate_meta(a, &d, &v);
	if (v.len) {
		cp_api_write_error(c->req, 400, "Could not process a resource", "Resource is not valid", &v);
		return;
	}
	if (create) {
		rc = cp_manager_create(c->rt, a, &d, &v);
		if (rc == -KM_E_INVALID) {
			cp_api_write_error(c->req, 400, "Failed to create a resource", "Resource is not valid", &v);
			return;
		}
		if (rc) {
			cp_api_write_store_error(c->req, rc, "Failed to create a resource");
			return;
		}
		cp_api_write_json(c->req, 201, km_json_object(a));
		return;
	}
	rc = cp_manager_update(c->rt, a, &existing, &d, &v);
	if (rc == -KM_E_INVALID) {
		cp_api_write_error(c->req, 400, "Could not update a resource", "Resource is not valid", &v);
		return;
	}
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Failed to update a resource");
		return;
	}
	cp_api_write_json(c->req, 200, km_json_object(a));
}

void cp_api_delete(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh,
		   struct km_str name)
{
	struct km_arena *a = c->req->a;
	if (t->scope == KM_SCOPE_MESH && !mesh_exists(c, mesh))
		return;
	struct km_resource r;
	int rc = cp_store_get(c->rt->store, a, t, mesh, name, &r);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not delete a resource");
		return;
	}
	if (!allowed(c, t))
		return;
	if (strcmp(t->name, "Mesh") == 0 && !c->rt->cfg->store.unsafe_delete &&
	    cp_store_count(c->rt->store, km_rtype_by_name(KM_STR("Dataplane")), name) > 0) {
		struct km_violations v;
		km_violations_init(&v, a);
		km_violations_add(&v, "mesh", "unable to delete mesh, there are still some dataplanes attached");
		cp_api_write_error(c->req, 400, "Could not delete a resource", "Resource is not valid", &v);
		return;
	}
	rc = cp_store_remove(c->rt->store, t, mesh, name, 0);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not delete a resource");
		return;
	}
	cp_api_write_json(c->req, 200, km_json_object(a));
}
