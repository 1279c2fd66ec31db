/* SPDX-License-Identifier: Apache-2.0 */
/* GET /meshes/{mesh}/dataplanes/{name}/{xds|stats|clusters}: the proxy's
 * Envoy admin API (config_dump, stats, clusters) asked by the control plane
 * over the proxy's system_envoy_admin listener (mutual TLS, cp/envoyadmin.h)
 * and answered when Envoy has; the request waits without holding the loop. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "cp/api/api.h"
#include "cp/config/config.h"
#include "cp/envoyadmin.h"
#include "cp/store/store.h"
#include "cp/xds/context.h"

#define TITLE "Could not execute admin operation"

struct admin_call {
	struct cp_http_req *req;
	const char *type;
	const char *content_type;
	const char *mesh, *name;
};

static bool flag_true(const struct km_str *v)
{
	return v && (km_str_eqc(*v, "true") || km_str_eqc(*v, "1") || km_str_eqc(*v, "t") || km_str_eqc(*v, "T") ||
		     km_str_eqc(*v, "TRUE") || km_str_eqc(*v, "True"));
}

/* Go's strconv.ParseBool: 1 / 0 when <v> is one of its spellings, -1 when not. */
static int parse_bool(struct km_str v)
{
	static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (km_str_eqc(v, yes[i]))
			return 1;
		if (km_str_eqc(v, no[i]))
			return 0;
	}
	return -1;
}

static void on_admin(void *ud, long status, const char *err, struct km_buf *body)
{
	struct admin_call *ac = ud;
	struct cp_http_req *req = ac->req;
	if (status == 200) {
		req->status = 200;
		req->content_type = ac->content_type;
		if (!strcmp(ac->type, "xds")) {
			if (cp_envoy_admin_sanitize((struct km_str){km_buf_cstr(body), body->len}, &req->out)) {
				km_buf_reset(&req->out);
				cp_api_write_error(req, 500, TITLE, "the proxy's config dump is not JSON", NULL);
			}
		} else {
			km_buf_append(&req->out, body->data, body->len);
		}
	} else {
		const char *why = status ? km_arena_printf(req->a, "envoy response [%ld] [%.*s]", status,
							   (int)(body->len > 512 ? 512 : body->len),
							   km_buf_cstr(body))
					 : km_arena_printf(req->a, "unable to send GET to %s: %s",
							   !strcmp(ac->type, "xds") ? "config_dump" : ac->type, err);
		km_warn("api", "envoy admin request failed proxy=%s.%s type=%s error=%s", ac->mesh, ac->name, ac->type,
			why);
		cp_api_write_error(req, 500, TITLE, why, NULL);
	}
	cp_http_resume(req);
}

void cp_api_dataplane_admin(struct cp_api_ctx *c, struct km_str mesh, struct km_str name, struct km_str type)
{
	struct km_arena *a = c->req->a;
	const struct cp_config *cfg = c->rt->cfg;
	const struct cp_config_strlist *users = NULL, *groups = NULL;
	if (km_str_eqc(type, "xds")) {
		users = &cfg->access.static_.view_config_dump.users;
		groups = &cfg->access.static_.view_config_dump.groups;
	} else if (km_str_eqc(type, "stats")) {
		users = &cfg->access.static_.view_stats.users;
		groups = &cfg->access.static_.view_stats.groups;
	} else if (km_str_eqc(type, "clusters")) {
		users = &cfg->access.static_.view_clusters.users;
		groups = &cfg->access.static_.view_clusters.groups;
	} else {
		cp_api_write_error(c->req, 404, TITLE,
				   km_arena_printf(a, "invalid admin type: %.*s", KM_STR_FMT(type)), NULL);
		return;
	}
	if (!cp_api_user_in(&c->user, users, groups)) {
		cp_api_write_error(c->req, 403, "Access Denied",
				   km_arena_printf(a, "user \"%s\" cannot access envoy proxy info",
						   cp_api_user_string(a, &c->user)),
				   NULL);
		return;
	}
	struct km_resource dp, insight;
	int rc = cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), mesh, name, &dp);
	if (rc) {
		cp_api_write_store_error(c->req, rc, "Could not get dataplane resource");
		return;
	}
	if (!c->rt->envoy_admin) {
		cp_api_write_error(c->req, 400, TITLE, "a Global control plane has no proxies of its own", NULL);
		return;
	}
	struct km_json *spec = NULL;
	km_json_parse(a, dp.spec.ptr, dp.spec.len, &spec, NULL);
	const struct km_json *net = km_json_get(spec, "networking");
	struct km_str address = km_json_get_string(net, "address");
	int64_t port = km_json_i64_sat(km_json_get(km_json_get(net, "admin"), "port"));
	if (port <= 0 || port > 65535)
		port = cfg->bootstrap_server.params.admin_port;
	/* how the proxy serves its admin: its node metadata, kept in the insight */
	bool tls = true;
	if (cp_store_get(c->rt->store, a, km_rtype_by_name(KM_STR("DataplaneInsight")), mesh, name, &insight) == 0) {
		struct km_json *ins = NULL;
		struct cp_xds_metadata md;
		if (km_json_parse(a, insight.spec.ptr, insight.spec.len, &ins, NULL) == 0 && km_json_get(ins, "metadata")) {
			cp_xds_metadata_parse(a, ins, &md);
			if (md.admin_port)
				port = md.admin_port;
			tls = cp_envoy_admin_exposed(address, md.admin_address, md.admin_socket);
		}
	}
	struct admin_call *ac = km_arena_alloc(a, sizeof(*ac));
	memset(ac, 0, sizeof(*ac));
	ac->req = c->req;
	ac->mesh = km_arena_strndup(a, mesh.ptr, mesh.len);
	ac->name = km_arena_strndup(a, name.ptr, name.len);
	ac->content_type = "text/plain";
	const struct km_str *fmt = cp_http_query(c->req, "format");
	bool json = fmt && km_str_eqc(*fmt, "json");
	const char *path;
	if (km_str_eqc(type, "xds")) {
		ac->type = "xds";
		ac->content_type = "application/json";
		path = flag_true(cp_http_query(c->req, "include_eds")) ? "config_dump?include_eds=true" : "config_dump";
	} else if (km_str_eqc(type, "clusters")) {
		ac->type = "clusters";
		if (json)
			ac->content_type = "application/json";
		path = json ? "clusters?format=json" : "clusters";
	} else {
		ac->type = "stats";
		if (json)
			ac->content_type = "application/json";
		bool used_only = true;
		const struct km_str *uo = cp_http_query(c->req, "usedonly");
		if (uo && uo->len && parse_bool(*uo) >= 0)
			used_only = parse_bool(*uo) == 1;
		path = json ? (used_only ? "stats?format=json&usedonly=" : "stats?format=json")
			    : (used_only ? "stats?usedonly=" : "stats");
	}
	const char *host = km_arena_strndup(a, address.ptr, address.len);
	rc = cp_envoy_admin_get(c->rt->envoy_admin, host, (uint32_t)port, tls, path, on_admin, ac);
	if (rc) {
		cp_api_write_error(c->req, 500, TITLE,
				   km_arena_printf(a, "could not reach the proxy's admin: %s", km_strerror(rc)), NULL);
		return;
	}
	cp_http_defer(c->req);
}
