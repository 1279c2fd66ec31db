/* SPDX-License-Identifier: Apache-2.0 */
/* The Kuma REST API (port 5681) and the diagnostics server (port 5680).
 * Handlers run on the loop thread; each request owns an arena. */
#ifndef CP_API_API_H
#define CP_API_API_H

#include "cp/api/http.h"
#include "cp/runtime.h"
#include "resource/violations.h"

struct cp_api;

struct cp_api *cp_api_start(struct cp_runtime *rt, const char *iface, int port);
/* The same API over HTTPS (apiServer.https). */
struct cp_api *cp_api_start_tls(struct cp_runtime *rt, const char *iface, int port, const struct cp_http_tls *tls);
int cp_api_port(const struct cp_api *api);
/* The underlying HTTP server (tests and fuzzing drive it directly). */
struct cp_http *cp_api_http(struct cp_api *api);
void cp_api_stop(struct cp_api *api);

struct cp_http *cp_api_diagnostics_start(struct cp_runtime *rt, const char *iface, int port);

/* The authenticated caller of a request. */
struct cp_user {
	const char *name;
	const char *const *groups; /* NULL-terminated */
	bool admin;
};

/* Route handlers (cp/api: meta.c, crud.c, tokens.c, testhooks.c) */
struct cp_api_ctx {
	struct cp_runtime *rt;
	struct cp_http_req *req;
	struct cp_user user;
};

/* Writes <v> as the response body, Go-style pretty JSON (1-space indent). */
void cp_api_write_json(struct cp_http_req *req, int status, const struct km_json *v);
/* Upstream's error body (type, status, title, detail, invalid_parameters and the
 * deprecated details/causes). <v> may be NULL. */
void cp_api_write_error(struct cp_http_req *req, int status, const char *title, const char *detail,
			const struct km_violations *v);
/* Maps a store/manager error code to upstream's status and detail. */
void cp_api_write_store_error(struct cp_http_req *req, int rc, const char *title);

/* Route handlers (cp/api/meta.c, crud.c, overview.c, tokens.c, testhooks.c) */
void cp_api_index(struct cp_api_ctx *c);
void cp_api_who_am_i(struct cp_api_ctx *c);
void cp_api_policies(struct cp_api_ctx *c);
void cp_api_resources(struct cp_api_ctx *c);
void cp_api_config(struct cp_api_ctx *c);
void cp_api_global_insight(struct cp_api_ctx *c);
void cp_api_global_insights(struct cp_api_ctx *c);
void cp_api_kri(struct cp_api_ctx *c, struct km_str kri);
void cp_api_get(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, struct km_str name,
		bool overview);
void cp_api_list(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, bool all_meshes,
		 bool overview);
void cp_api_put(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh, struct km_str name);
void cp_api_delete(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh,
		   struct km_str name);
void cp_api_service_insight_get(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
void cp_api_service_insight_list(struct cp_api_ctx *c, struct km_str mesh);
/* The list's "next" URL: this request's URL with offset=<next_offset>, query
 * keys sorted as Go's url.Values.Encode does. */
const char *cp_api_next_link(struct cp_api_ctx *c, size_t next_offset);
void cp_api_dataplane_config(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
/* /meshes/{mesh}/dataplanes/{name}/{xds|stats|clusters} (inspect_admin.c) */
void cp_api_dataplane_admin(struct cp_api_ctx *c, struct km_str mesh, struct km_str name, struct km_str type);
/* Policy inspection (cp/api/inspect_policies.c). */
void cp_api_dataplane_rules(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
void cp_api_dataplane_policies(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
void cp_api_dataplane_inbound_policies(struct cp_api_ctx *c, struct km_str mesh, struct km_str name,
				       struct km_str inbound_kri);
/* <route_kri> NULL: the outbound's policies; otherwise the route's. */
void cp_api_dataplane_outbound_policies(struct cp_api_ctx *c, struct km_str mesh, struct km_str name,
					struct km_str outbound_kri, const struct km_str *route_kri);
void cp_api_dataplane_routes(struct cp_api_ctx *c, struct km_str mesh, struct km_str name, struct km_str outbound_kri);
/* Dataplanes <t>/<name> selects; <legacy>: the pre-3.0 .../{name}/dataplanes shape. */
void cp_api_policy_dataplanes(struct cp_api_ctx *c, const struct km_rtype *t, struct km_str mesh,
			      struct km_str name, bool legacy);
void cp_api_dataplane_layout(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
void cp_api_meshservice_dataplanes(struct cp_api_ctx *c, struct km_str mesh, struct km_str name);
void cp_api_service_hostnames(struct cp_api_ctx *c, struct km_str mesh, struct km_str path, struct km_str name);
void cp_api_token_user(struct cp_api_ctx *c);
void cp_api_token_dataplane(struct cp_api_ctx *c);
void cp_api_test_reset(struct cp_api_ctx *c);
void cp_api_test_seed(struct cp_api_ctx *c);

/* "name/group1,group2", as upstream prints users in access errors. */
const char *cp_api_user_string(struct km_arena *a, const struct cp_user *u);

/* Authentication (cp/api/auth.c): fills c->user or writes a 401 and returns false. */
bool cp_api_authenticate(struct cp_api_ctx *c);
/* True when the access.static entry <users>/<groups> allows <u>. */
bool cp_api_user_in(const struct cp_user *u, const struct cp_config_strlist *users,
		    const struct cp_config_strlist *groups);

#endif
