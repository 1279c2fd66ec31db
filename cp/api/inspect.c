/* SPDX-License-Identifier: Apache-2.0 */
/* Per-dataplane inspection: GET .../dataplanes/{name}/_config returns the
 * Envoy configuration the control plane computes for that proxy, from the
 * same generators the xDS server uses. */
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec/jsonf.h"
#include "cp/api/api.h"
#include "cp/pki/spiffe.h"
#include "cp/xds/dpauth.h"
#include "cp/xds/generate.h"
#include "cp/xds/identity.h"

/* ---- RFC 6902 diff, shaped like josephburnett/jd's RenderPatch ---- */

static const char *pointer_append(struct km_arena *a, const char *base, struct km_str key)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_puts(&b, base);
	km_buf_putc(&b, '/');
	for (size_t i = 0; i < key.len; i++) {
		if (key.ptr[i] == '~')
			km_buf_puts(&b, "~0");
		else if (key.ptr[i] == '/')
			km_buf_puts(&b, "~1");
		else
			km_buf_putc(&b, key.ptr[i]);
	}
	char *out = km_arena_strndup(a, b.data ? b.data : "", b.len);
	km_buf_fini(&b);
	return out;
}

static void op(struct km_arena *a, struct km_json *ops, const char *kind, const char *path, const struct km_json *v)
{
	km_json_array_push(a, ops, km_json_fmt(a, "{\"op\":%s,\"path\":%s,\"value\":%J}", kind, path,
					       km_json_clone(a, v)));
}

static void op_replace(struct km_arena *a, struct km_json *ops, const char *path, const struct km_json *before,
		       const struct km_json *after)
{
	op(a, ops, "test", path, before);
	op(a, ops, "remove", path, before);
	op(a, ops, "add", path, after);
}

static int cmp_members(const void *x, const void *y)
{
	return km_str_cmp(((const struct km_json_member *)x)->key, ((const struct km_json_member *)y)->key);
}

static struct km_json_member *sorted_members(struct km_arena *a, const struct km_json *o)
{
	struct km_json_member *m = km_arena_alloc(a, (o->len + 1) * sizeof(*m));
	if (o->len)
		memcpy(m, o->members, o->len * sizeof(*m));
	qsort(m, o->len, sizeof(*m), cmp_members);
	return m;
}

static void diff(struct km_arena *a, struct km_json *ops, const char *path, const struct km_json *before,
		 const struct km_json *after)
{
	if (km_json_equal(before, after))
		return;
	if (before->kind == KM_JSON_OBJECT && after->kind == KM_JSON_OBJECT) {
		struct km_json_member *bm = sorted_members(a, before), *am = sorted_members(a, after);
		for (size_t i = 0; i < before->len; i++) {
			const char *p = pointer_append(a, path, bm[i].key);
			struct km_json *other = km_json_get_str(after, bm[i].key);
			if (other) {
				diff(a, ops, p, bm[i].val, other);
			} else {
				op(a, ops, "test", p, bm[i].val);
				op(a, ops, "remove", p, bm[i].val);
			}
		}
		for (size_t i = 0; i < after->len; i++)
			if (!km_json_get_str(before, am[i].key))
				op(a, ops, "add", pointer_append(a, path, am[i].key), am[i].val);
		return;
	}
	if (before->kind == KM_JSON_ARRAY && after->kind == KM_JSON_ARRAY) {
		size_t n = before->len < after->len ? before->len : after->len;
		for (size_t i = 0; i < n; i++)
			diff(a, ops, km_arena_printf(a, "%s/%zu", path, i), before->items[i], after->items[i]);
		for (size_t i = before->len; i > n; i--) {
			const char *p = km_arena_printf(a, "%s/%zu", path, i - 1);
			op(a, ops, "test", p, before->items[i - 1]);
			op(a, ops, "remove", p, before->items[i - 1]);
		}
		/* jd renders an appended run as adds at its first index, last
		 * element first */
		for (size_t i = after->len; i > n; i--)
			op(a, ops, "add", km_arena_printf(a, "%s/%zu", path, n), after->items[i - 1]);
		return;
	}
	op_replace(a, ops, path, before, after);
}

static bool flag_param(struct cp_api_ctx *c, const char *key, bool *out)
{
	const struct km_str *v = cp_http_query(c->req, key);
	*out = false;
	if (!v || !v->len || km_str_eqc(*v, "false"))
		return true;
	if (km_str_eqc(*v, "true")) {
		*out = true;
		return true;
	}
	cp_api_write_error(c->req, 400, "Bad Request",
			   km_arena_printf(c->req->a, "bad request: unsupported value for query parameter '%s'", key),
			   NULL);
	return false;
}

void cp_api_dataplane_config(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	bool shadow;
	if (!flag_param(c, "shadow", &shadow))
		return;
	const struct km_str *inc = cp_http_query(c->req, "include");
	bool want_diff = inc && km_str_eqc(*inc, "diff");
	if (inc && inc->len && !want_diff) {
		cp_api_write_error(c->req, 400, "Bad Request",
				   "bad request: unsupported value for query parameter 'include'", NULL);
		return;
	}
	struct km_resource m, insight;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &m);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
		return;
	}
	rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("DataplaneInsight")), mesh, name, &insight);
	struct cp_xds_mesh *ctx = rc ? NULL : cp_xds_mesh_build(c->rt, mesh, NULL);
	const struct cp_xds_dataplane *dp = ctx ? cp_xds_mesh_dataplane(ctx, name) : NULL;
	if (!dp) {
		cp_xds_mesh_free(ctx);
		cp_api_write_error(c->req, 404, "Could not retrieve a resource", "Not found", NULL);
		return;
	}
	struct km_json *ins = NULL;
	km_json_parse(a, insight.spec.ptr, insight.spec.len, &ins, NULL);
	struct cp_xds_metadata md;
	cp_xds_metadata_parse(a, ins, &md);
	struct cp_xds_tls tls;
	struct cp_pki_leaf leaf;
	if (cp_xds_identity_load(c->rt, a, dp, &tls, &leaf) == 0)
		md.tls = &tls;
	md.shadow = shadow;
	cp_xds_admin_tls_load(c->rt, a, dp, &md);
	struct cp_xds_resources res;
	cp_xds_generate(a, ctx, dp, &md, &res);
	struct km_json *out = cp_xds_resources_json(a, &res);
	if (want_diff) {
		/* the change shadow policies would make: current -> shadow */
		struct cp_xds_resources cur;
		md.shadow = false;
		cp_xds_generate(a, ctx, dp, &md, &cur);
		struct km_json *ops = km_json_array(a);
		diff(a, ops, "", km_json_get(cp_xds_resources_json(a, &cur), "xds"), km_json_get(out, "xds"));
		km_json_set(a, out, "diff", ops);
	}
	cp_api_write_json(c->req, 200, out);
	cp_xds_mesh_free(ctx);
}

static int cmp_kri(const void *x, const void *y)
{
	const struct km_json *const *a = x, *const *b = y;
	return km_str_cmp(km_json_get_string(*a, "kri"), km_json_get_string(*b, "kri"));
}

static bool have_kri(const struct km_json *arr, const char *kri)
{
	for (size_t i = 0; i < arr->len; i++)
		if (km_str_eqc(km_json_get_string(arr->items[i], "kri"), kri))
			return true;
	return false;
}

static void add_outbound(struct km_arena *a, struct km_json *arr, const struct cp_xds_mesh *m,
			 const struct cp_xds_service *s, const struct cp_xds_port *p)
{
	const char *kri = cp_xds_service_kri(a, m, s, p);
	if (have_kri(arr, kri))
		return;
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "kri", km_json_cstring(a, kri));
	km_json_set(a, o, "port", km_json_int(a, p->port));
	km_json_set(a, o, "protocol", km_json_string(a, p->app_protocol));
	km_json_set(a, o, "proxyResourceName", km_json_cstring(a, kri));
	km_json_array_push(a, arr, o);
}

/* GET .../dataplanes/{name}/_layout: the proxy's inbounds, the destinations it
 * can reach (every MeshService of the mesh unless reachableBackends narrows
 * them, plus explicit outbounds) and its zone-proxy listeners, with KRIs and
 * the Envoy resource names they become. */
void cp_api_dataplane_layout(struct cp_api_ctx *c, struct km_str mesh, struct km_str name)
{
	struct km_arena *a = c->req->a;
	struct km_resource mr;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &mr);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Failed to retrieve Mesh");
		return;
	}
	struct cp_xds_mesh *m = cp_xds_mesh_build(c->rt, mesh, NULL);
	const struct cp_xds_dataplane *dp = m ? cp_xds_mesh_dataplane(m, name) : NULL;
	if (!dp) {
		cp_xds_mesh_free(m);
		cp_api_write_error(c->req, 404, "Could not retrieve a resource", "Not found", NULL);
		return;
	}
	struct km_json *net = km_json_get(dp->spec, "networking");
	struct km_str zone = km_json_get_string(dp->labels, "kuma.io/zone");
	const char *base = km_arena_printf(a, "kri_dp_%.*s_%.*s__%.*s_", KM_STR_FMT(mesh), KM_STR_FMT(zone),
					   KM_STR_FMT(name));
	struct km_json *inbounds = km_json_array(a), *outbounds = km_json_array(a),
		       *listeners = km_json_array(a);
	struct km_json *inb = km_json_get(net, "inbound");
	for (size_t i = 0; inb && inb->kind == KM_JSON_ARRAY && i < inb->len; i++) {
		struct km_json *in = inb->items[i];
		int64_t port = km_json_i64_sat(km_json_get(in, "port"));
		struct km_str n = km_json_get_string(in, "name");
		const char *section = n.len ? km_arena_strndup(a, n.ptr, n.len) : km_arena_printf(a, "%lld", (long long)port);
		struct km_str proto = km_json_get_string(in, "protocol");
		struct km_json *o = km_json_object(a);
		km_json_set(a, o, "kri", km_json_cstring(a, km_arena_printf(a, "%s%s", base, section)));
		km_json_set(a, o, "port", km_json_int(a, port));
		km_json_set(a, o, "protocol", km_json_string(a, proto)); /* as written, "" when unset */
		km_json_set(a, o, "proxyResourceName", km_json_cstring(a, km_arena_printf(a, "self_inbound_dp_%s", section)));
		km_json_array_push(a, inbounds, o);
	}
	struct km_json *ls = km_json_get(net, "listeners");
	for (size_t i = 0; ls && ls->kind == KM_JSON_ARRAY && i < ls->len; i++) {
		struct km_json *l = ls->items[i];
		int64_t port = km_json_i64_sat(km_json_get(l, "port"));
		struct km_str n = km_json_get_string(l, "name"), type = km_json_get_string(l, "type");
		const char *section = n.len ? km_arena_strndup(a, n.ptr, n.len) : km_arena_printf(a, "%lld", (long long)port);
		struct km_json *o = km_json_object(a);
		km_json_set(a, o, "kri", km_json_cstring(a, km_arena_printf(a, "%s%s", base, section)));
		km_json_set(a, o, "port", km_json_int(a, port));
		km_json_set(a, o, "proxyResourceName",
			    km_json_cstring(a, km_arena_printf(a, "self_%s_dp_%s",
							       km_str_eqc(type, "ZoneEgress") ? "zoneegress" : "zoneingress",
							       section)));
		km_json_set(a, o, "type", km_json_string(a, type));
		km_json_array_push(a, listeners, o);
	}
	/* reachable destinations */
	struct km_json *reach = km_json_get(km_json_get(km_json_get(net, "transparentProxying"), "reachableBackends"), "refs");
	if (reach) {
		for (size_t i = 0; reach->kind == KM_JSON_ARRAY && i < reach->len; i++) {
			struct km_json *ref = reach->items[i];
			if (!km_str_eqc(km_json_get_string(ref, "kind"), "MeshService"))
				continue;
			const struct cp_xds_service *s = cp_xds_mesh_service(m, km_json_get_string(ref, "name"));
			struct km_json *pv = km_json_get(ref, "port");
			for (size_t k = 0; s && k < s->nports; k++)
				if (!pv || s->ports[k].port == (uint32_t)km_json_i64_sat(pv))
					add_outbound(a, outbounds, m, s, &s->ports[k]);
		}
	} else {
		for (size_t i = 0; i < m->nservices; i++)
			for (size_t k = 0; k < m->services[i].nports; k++)
				add_outbound(a, outbounds, m, &m->services[i], &m->services[i].ports[k]);
	}
	struct km_json *outb = km_json_get(net, "outbound");
	for (size_t i = 0; outb && outb->kind == KM_JSON_ARRAY && i < outb->len; i++) {
		struct km_json *ref = km_json_get(outb->items[i], "backendRef");
		if (!km_str_eqc(km_json_get_string(ref, "kind"), "MeshService"))
			continue;
		const struct cp_xds_service *s = cp_xds_mesh_service(m, km_json_get_string(ref, "name"));
		struct km_json *pv = km_json_get(ref, "port");
		for (size_t k = 0; s && k < s->nports; k++)
			if (!pv || s->ports[k].port == (uint32_t)km_json_i64_sat(pv))
				add_outbound(a, outbounds, m, s, &s->ports[k]);
	}
	if (outbounds->len > 1)
		qsort(outbounds->items, outbounds->len, sizeof(*outbounds->items), cmp_kri);
	struct km_json *out = km_json_object(a);
	km_json_set(a, out, "kri", km_json_cstring(a, base));
	km_json_set(a, out, "labels", dp->labels && dp->labels->len ? dp->labels : km_json_null(a));
	const char *spiffe = cp_pki_spiffe_for_dataplane(c->rt->store, a, mesh, c->rt->zone, dp->labels);
	if (spiffe)
		km_json_set(a, out, "spiffeId", km_json_cstring(a, spiffe));
	km_json_set(a, out, "inbounds", inbounds);
	km_json_set(a, out, "outbounds", outbounds);
	km_json_set(a, out, "listeners", listeners);
	cp_api_write_json(c->req, 200, out);
	cp_xds_mesh_free(m);
}
