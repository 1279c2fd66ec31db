/* SPDX-License-Identifier: Apache-2.0 */
/* REST API routing: the URL space of upstream's api-server in one dispatch
 * function (fixed routes first, then the per-type CRUD paths derived from the
 * type table), plus the diagnostics server (/ready, /healthy). */
#include "cp/api/api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/mem.h"
#include "cp/metrics.h"

#define MAX_BODY (8u * 1024 * 1024)

struct cp_api {
	struct cp_runtime *rt;
	struct cp_http *http;
};

static const char zone_read_only[] =
    "On zone control plane you can only modify zone resources with 'kumactl apply' or via the "
    "HTTP API. You can still use 'kumactl' or the HTTP API to modify the rest of the resource on "
    "the global control plane.\n";
static const char global_read_only[] =
    "On global control plane you can not modify dataplane resources with 'kumactl apply' or via "
    "the HTTP API. You can still use 'kumactl' or the HTTP API to modify them on the zone control "
    "plane.\n";

#define MAX_SEGS 10

static size_t split(struct km_str path, struct km_str *segs)
{
	size_t n = 0, i = 0;
	while (i < path.len && n < MAX_SEGS) {
		while (i < path.len && path.ptr[i] == '/')
			i++;
		if (i >= path.len)
			break;
		size_t j = i;
		while (j < path.len && path.ptr[j] != '/')
			j++;
		segs[n++] = (struct km_str){path.ptr + i, j - i};
		i = j;
	}
	if (i < path.len) /* too many segments */
		return MAX_SEGS + 1;
	return n;
}

static bool method_is(const struct cp_http_req *req, const char *m)
{
	return strcmp(req->method, m) == 0;
}

/* No route serves the path (resources not found answer elsewhere). */
static void not_found(struct cp_http_req *req)
{
	req->unrouted = true;
	cp_api_write_error(req, 404, "Not found", "Not found", NULL);
}

static void method_not_allowed(struct cp_http_req *req)
{
	cp_api_write_error(req, 405, "Method not allowed", "Method not allowed", NULL);
}

static bool type_read_only(const struct cp_runtime *rt, const struct km_rtype *t)
{
	return rt->read_only || km_rtype_has(t, KM_RT_READ_ONLY);
}

/* CRUD on one resource: GET, PUT, DELETE. */
static void item(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, struct km_str name)
{
	struct cp_http_req *req = c->req;
	if (method_is(req, "GET")) {
		cp_api_get(c, t, mesh, name, false);
	} else if (method_is(req, "PUT") || method_is(req, "DELETE")) {
		if (type_read_only(c->rt, t)) {
			cp_api_write_error(req, 405, "Method not allowed",
					   c->rt->global_mode ? global_read_only : zone_read_only, NULL);
			return;
		}
		if (method_is(req, "PUT"))
			cp_api_put(c, t, mesh, name);
		else
			cp_api_delete(c, t, mesh, name);
	} else {
		method_not_allowed(req);
	}
}

static bool get_only(struct cp_http_req *req)
{
	if (method_is(req, "GET"))
		return true;
	method_not_allowed(req);
	return false;
}

/* Policy inspection under /meshes/{mesh}/dataplanes/{name}/ (cp/api/inspect_policies.c):
 * _rules, _policies, _inbounds/{kri}/_policies, _outbounds/{kri}/_policies,
 * _outbounds/{kri}/_routes and _outbounds/{kri}/_routes/{kri}/_policies. True when the path was one of them. */
static bool route_policy_inspect(struct cp_api_ctx *c, struct km_str mesh, const struct km_str *s, size_t n)
{
	void (*fn)(struct cp_api_ctx *, struct km_str, struct km_str) = NULL;
	if (n == 5 && km_str_eqc(s[4], "_rules"))
		fn = cp_api_dataplane_rules;
	else if (n == 5 && km_str_eqc(s[4], "_policies"))
		fn = cp_api_dataplane_policies;
	bool inbound = n == 7 && km_str_eqc(s[4], "_inbounds") && km_str_eqc(s[6], "_policies");
	bool outbound = n == 7 && km_str_eqc(s[4], "_outbounds") && km_str_eqc(s[6], "_policies");
	bool route = n == 9 && km_str_eqc(s[4], "_outbounds") && km_str_eqc(s[6], "_routes") &&
		     km_str_eqc(s[8], "_policies");
	bool routes = n == 7 && km_str_eqc(s[4], "_outbounds") && km_str_eqc(s[6], "_routes");
	if (!fn && !inbound && !outbound && !route && !routes)
		return false;
	if (!get_only(c->req))
		return true;
	if (routes)
		cp_api_dataplane_routes(c, mesh, s[3], s[5]);
	else if (fn)
		fn(c, mesh, s[3]);
	else if (inbound)
		cp_api_dataplane_inbound_policies(c, mesh, s[3], s[5]);
	else
		cp_api_dataplane_outbound_policies(c, mesh, s[3], s[5], route ? &s[7] : NULL);
	return true;
}

static void route(struct cp_api_ctx *c)
{
	struct cp_http_req *req = c->req;
	struct km_str s[MAX_SEGS];
	size_t n = split(req->path, s);
	if (n > MAX_SEGS) {
		not_found(req);
		return;
	}
	if (n == 0) {
		if (get_only(req))
			cp_api_index(c);
		return;
	}
	if (!cp_api_authenticate(c))
		return;
	/* the API consumes JSON only (test hooks take YAML) */
	if ((method_is(req, "PUT") || method_is(req, "POST")) && !km_str_has_prefix(req->path, "/_test/")) {
		const char *ct = cp_http_header(req, "Content-Type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
			req->status = 415;
			req->content_type = "text/plain; charset=utf-8";
			km_buf_puts(&req->out, "415: Unsupported Media Type");
			return;
		}
	}
	if (n == 1) {
		static const struct {
			const char *path;
			void (*fn)(struct cp_api_ctx *);
		} fixed[] = {
		    {"config", cp_api_config},
		    {"who-am-i", cp_api_who_am_i},
		    {"policies", cp_api_policies},
		    {"_resources", cp_api_resources},
		    {"global-insight", cp_api_global_insight},
		    {"global-insights", cp_api_global_insights},
		};
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			if (km_str_eqc(s[0], fixed[i].path)) {
				if (get_only(req))
					fixed[i].fn(c);
				return;
			}
		if (km_str_eqc(s[0], "tokens")) {
			if (method_is(req, "POST"))
				cp_api_token_dataplane(c);
			else
				method_not_allowed(req);
			return;
		}
		if (km_str_eqc(s[0], "zones+insights")) {
			if (get_only(req))
				cp_api_list(c, km_rtype_by_name(KM_STR("Zone")), KM_STR(""), false, true);
			return;
		}
		const struct km_rtype *t = km_rtype_by_path(s[0]);
		if (!t) {
			not_found(req);
			return;
		}
		if (get_only(req))
			cp_api_list(c, t, KM_STR(""), t->scope == KM_SCOPE_MESH, false);
		return;
	}
	if (n == 2 && km_str_eqc(s[0], "_kri")) {
		if (get_only(req))
			cp_api_kri(c, s[1]);
		return;
	}
	if (n == 2 && km_str_eqc(s[0], "tokens")) {
		if (!method_is(req, "POST")) {
			method_not_allowed(req);
		} else if (km_str_eqc(s[1], "user")) {
			cp_api_token_user(c);
		} else if (km_str_eqc(s[1], "dataplane")) {
			cp_api_token_dataplane(c);
		} else {
			not_found(req);
		}
		return;
	}
	if (n == 2 && km_str_eqc(s[0], "_test") && c->rt->test_hooks) {
		if (!method_is(req, "POST"))
			method_not_allowed(req);
		else if (km_str_eqc(s[1], "reset"))
			cp_api_test_reset(c);
		else if (km_str_eqc(s[1], "seed"))
			cp_api_test_seed(c);
		else
			not_found(req);
		return;
	}
	/* /meshes/{mesh}/... */
	if (km_str_eqc(s[0], "meshes") && n == 5 && km_str_eqc(s[4], "_hostnames")) {
		if (get_only(req))
			cp_api_service_hostnames(c, s[1], s[2], s[3]);
		return;
	}
	if (km_str_eqc(s[0], "meshes") && n == 5 && km_str_eqc(s[2], "meshservices") &&
	    km_str_eqc(s[4], "_dataplanes")) {
		if (get_only(req))
			cp_api_meshservice_dataplanes(c, s[1], s[3]);
		return;
	}
	if (km_str_eqc(s[0], "meshes") && n >= 3) {
		struct km_str mesh = s[1];
		bool legacy_overview = km_str_eqc(s[2], "dataplanes+insights");
		const struct km_rtype *t =
		    legacy_overview ? km_rtype_by_name(KM_STR("Dataplane")) : km_rtype_by_path(s[2]);
		if (!t || t->scope != KM_SCOPE_MESH) {
			not_found(req);
			return;
		}
		bool is_dp = strcmp(t->name, "Dataplane") == 0;
		if (strcmp(t->name, "ServiceInsight") == 0 && n <= 4) {
			if (!get_only(req))
				return;
			if (n == 3)
				cp_api_service_insight_list(c, mesh);
			else
				cp_api_service_insight_get(c, mesh, s[3]);
			return;
		}
		if (n == 3) {
			if (get_only(req))
				cp_api_list(c, t, mesh, false, legacy_overview);
			return;
		}
		if (n == 4 && is_dp && !legacy_overview && km_str_eqc(s[3], "_overview")) {
			if (get_only(req))
				cp_api_list(c, t, mesh, false, true);
			return;
		}
		if (n == 4) {
			if (legacy_overview) {
				if (get_only(req))
					cp_api_get(c, t, mesh, s[3], true);
				return;
			}
			item(c, t, mesh, s[3]);
			return;
		}
		if (n == 5 && is_dp && km_str_eqc(s[4], "_layout")) {
			if (get_only(req))
				cp_api_dataplane_layout(c, mesh, s[3]);
			return;
		}
		if (is_dp && n >= 5 && route_policy_inspect(c, mesh, s, n))
			return;
		if (n >= 5 && km_rtype_has(t, KM_RT_POLICY) && km_str_eqc(s[n - 1], "dataplanes") &&
		    (n == 5 || (n == 6 && km_str_eqc(s[4], "_resources")))) {
			if (get_only(req))
				cp_api_policy_dataplanes(c, t, mesh, s[3], n == 5);
			return;
		}
		if (n == 5 && is_dp && km_str_eqc(s[4], "_config")) {
			if (get_only(req))
				cp_api_dataplane_config(c, mesh, s[3]);
			return;
		}
		if (n == 5 && is_dp && km_str_eqc(s[4], "_overview")) {
			if (get_only(req))
				cp_api_get(c, t, mesh, s[3], true);
			return;
		}
		if (n == 5 && is_dp && s[4].len && s[4].ptr[0] != '_') {
			if (get_only(req))
				cp_api_dataplane_admin(c, mesh, s[3], s[4]);
			return;
		}
		not_found(req);
		return;
	}
	/* global-scoped: /{path}/{name}[/_overview] */
	const struct km_rtype *t = km_rtype_by_path(s[0]);
	bool zone_legacy = km_str_eqc(s[0], "zones+insights");
	if (zone_legacy)
		t = km_rtype_by_name(KM_STR("Zone"));
	if (!t || t->scope != KM_SCOPE_GLOBAL) {
		not_found(req);
		return;
	}
	bool is_zone = strcmp(t->name, "Zone") == 0;
	if (n == 2 && is_zone && km_str_eqc(s[1], "_overview")) {
		if (get_only(req))
			cp_api_list(c, t, KM_STR(""), false, true);
		return;
	}
	if (n == 2) {
		if (zone_legacy) {
			if (get_only(req))
				cp_api_get(c, t, KM_STR(""), s[1], true);
			return;
		}
		item(c, t, KM_STR(""), s[1]);
		return;
	}
	if (n == 3 && is_zone && km_str_eqc(s[2], "_overview")) {
		if (get_only(req))
			cp_api_get(c, t, KM_STR(""), s[1], true);
		return;
	}
	not_found(req);
}

/* ---- CORS (apiServer.corsAllowedDomains), as go-restful's filter ---- */

/* The methods routes of <path> answer, for a preflight (go-restful lists
 * the routes whose path matches): an item of a type GET, PUT and DELETE,
 * token generation POST, everything else GET. */
static const char *route_methods(struct km_str path)
{
	struct km_str s[MAX_SEGS];
	size_t n = split(path, s);
	if (n >= 1 && km_str_eqc(s[0], "tokens"))
		return "POST";
	if (n == 4 && km_str_eqc(s[0], "meshes") && km_rtype_by_path(s[2]))
		return "GET,PUT,DELETE";
	if (n == 2) {
		const struct km_rtype *t = km_rtype_by_path(s[0]);
		if (t && t->scope == KM_SCOPE_GLOBAL)
			return "GET,PUT,DELETE";
	}
	return "GET";
}

static bool origin_allowed(const struct cp_config_strlist *domains, const char *origin)
{
	for (size_t i = 0; origin && *origin && i < domains->n; i++)
		if (strcmp(domains->items[i], ".*") == 0 || strcasecmp(domains->items[i], origin) == 0)
			return true;
	return false;
}

/* True when the request was a preflight, answered here. */
static bool cors(struct cp_api_ctx *c)
{
	struct cp_http_req *req = c->req;
	const struct cp_config_strlist *domains = &c->rt->cfg->api_server.cors_allowed_domains;
	const char *origin = cp_http_header(req, "Origin");
	if (!domains->n || !origin_allowed(domains, origin))
		return false;
	const char *acrm = cp_http_header(req, "Access-Control-Request-Method");
	if (method_is(req, "OPTIONS") && acrm && *acrm) {
		/* a preflight: 200 and no body; the CORS headers only when the
		 * method is one of the path's and no header is asked for (no
		 * headers are allowed, as upstream configures the filter) */
		req->status = 200;
		req->content_type = NULL;
		const char *methods = route_methods(req->path);
		const char *acrh = cp_http_header(req, "Access-Control-Request-Headers");
		struct km_str m = km_str_c(methods);
		bool ok = false;
		for (size_t i = 0, from = 0; i <= m.len; i++)
			if (i == m.len || m.ptr[i] == ',') {
				ok |= strlen(acrm) == i - from && memcmp(m.ptr + from, acrm, i - from) == 0;
				from = i + 1;
			}
		if (!ok || (acrh && *acrh))
			return true;
		cp_http_add_header(req, "Access-Control-Allow-Methods", methods);
		cp_http_add_header(req, "Access-Control-Allow-Headers", "");
	}
	cp_http_add_header(req, "Access-Control-Expose-Headers", "Access-Control-Allow-Origin");
	cp_http_add_header(req, "Access-Control-Allow-Origin", km_arena_strdup(req->a, origin));
	return method_is(req, "OPTIONS") && acrm && *acrm;
}

/* The route <path> took as go-restful names it (SelectedRoutePath, what
 * upstream's api_server_http_* metrics label a request with): the variable
 * segments by their parameter names, "/meshes/{mesh}/dataplanes/{name}". */
static const char *route_template(struct km_arena *a, struct km_str path)
{
	struct km_buf b = KM_BUF_INIT;
	struct km_str prev = KM_STR_NULL;
	size_t i = 0;
	while (i < path.len) {
		while (i < path.len && path.ptr[i] == '/')
			i++;
		size_t j = i;
		while (j < path.len && path.ptr[j] != '/' && path.ptr[j] != '?')
			j++;
		if (j == i)
			break;
		struct km_str seg = {path.ptr + i, j - i};
		const char *var = NULL;
		if (km_str_eqc(prev, "meshes")) /* the Mesh itself, or what is in it */
			var = j < path.len && path.ptr[j] == '/' && j + 1 < path.len && path.ptr[j + 1] != '?' ? "{mesh}"
											       : "{name}";
		else if (km_str_eqc(prev, "_kri"))
			var = "{kri}";
		else if (km_str_eqc(prev, "_inbounds"))
			var = "{inbound_kri}";
		else if (km_str_eqc(prev, "_outbounds"))
			var = "{outbound_kri}";
		else if (km_str_eqc(prev, "_routes"))
			var = "{route_kri}";
		else if (prev.len && seg.ptr[0] != '_' &&
			 (km_rtype_by_path(km_str_c(km_arena_strndup(a, prev.ptr, prev.len))) ||
			  km_str_has_suffix(prev, "+insights")))
			var = "{name}";
		km_buf_putc(&b, '/');
		if (var)
			km_buf_puts(&b, var);
		else
			km_buf_add(&b, seg.ptr, seg.len);
		prev = seg;
		if (j < path.len && path.ptr[j] == '?')
			break;
		i = j;
	}
	const char *out = km_arena_strdup(a, b.len ? km_buf_cstr(&b) : "/");
	km_buf_fini(&b);
	return out;
}

static void on_request(void *ctx, struct cp_http_req *req)
{
	struct cp_api *api = ctx;
	struct cp_api_ctx c = {.rt = api->rt, .req = req};
	if (!cors(&c))
		route(&c);
	if (cp_http_is_deferred(req))
		cp_metrics_http_inflight(CP_METRICS_API_SERVER, route_template(req->a, req->path), 1);
	km_debug("api", "request method=%s path=%.*s status=%d", req->method, KM_STR_FMT(req->path),
		 req->status);
}

static void on_answer(void *ctx, const struct cp_http_req *req, double seconds)
{
	if (req->unrouted)
		return; /* as go-restful, which runs no filter for a path no route serves */
	const char *handler = route_template(req->a, req->path);
	if (cp_http_is_deferred(req))
		cp_metrics_http_inflight(CP_METRICS_API_SERVER, handler, -1);
	cp_metrics_http(CP_METRICS_API_SERVER, handler, req->method, req->status ? req->status : 200, seconds,
			req->out.len);
}

struct cp_api *cp_api_start(struct cp_runtime *rt, const char *iface, int port)
{
	return cp_api_start_tls(rt, iface, port, NULL);
}

struct cp_api *cp_api_start_tls(struct cp_runtime *rt, const char *iface, int port, const struct cp_http_tls *tls)
{
	struct cp_api *api = km_calloc(1, sizeof(*api));
	api->rt = rt;
	api->http = cp_http_start_tls(rt->loop, tls ? "api-server-https" : "api-server", iface, port, MAX_BODY,
				      on_request, api, tls);
	if (!api->http) {
		free(api);
		return NULL;
	}
	cp_http_observe(api->http, on_answer, api);
	return api;
}

int cp_api_port(const struct cp_api *api)
{
	return cp_http_port(api->http);
}

struct cp_http *cp_api_http(struct cp_api *api)
{
	return api->http;
}

void cp_api_stop(struct cp_api *api)
{
	if (!api)
		return;
	cp_http_stop(api->http);
	free(api);
}

/* ---- diagnostics (5680) ---- */

static void on_diag(void *ctx, struct cp_http_req *req)
{
	struct cp_runtime *rt = ctx;
	req->content_type = "text/plain; charset=utf-8";
	if (km_str_eqc(req->path, "/ready")) {
		bool ready = rt->ready && cp_store_healthy(rt->store);
		req->status = ready ? 200 : 503;
		km_buf_puts(&req->out, ready ? "" : "not ready");
	} else if (km_str_eqc(req->path, "/healthy")) {
		req->status = 200;
	} else if (km_str_eqc(req->path, "/metrics")) {
		req->status = 200;
		req->content_type = "text/plain; version=0.0.4; charset=utf-8";
		if (rt->metrics) /* cp/metrics.c */
			rt->metrics(rt->metrics_ctx, &req->out);
	} else {
		req->status = 404;
		km_buf_puts(&req->out, "404 page not found\n");
	}
}

struct cp_http *cp_api_diagnostics_start(struct cp_runtime *rt, const char *iface, int port)
{
	return cp_http_start(rt->loop, "diagnostics", iface, port, 4096, on_diag, rt);
}
