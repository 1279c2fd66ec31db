/* SPDX-License-Identifier: Apache-2.0 */
/* MADS v1 over HTTP (cp/mads.h). The assignments of every client id are
 * kept as one snapshot: a JSON array of MonitoringAssignments per client,
 * sorted by resource name, and its version (a hash of the array's text).
 * Long polls are deferred HTTP requests (cp_http_defer) with a timer each;
 * a recompute resumes those whose client's version moved. Everything runs
 * on the loop thread. */
#include "cp/mads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/json.h"
#include "codec/jsonf.h"
#include "cp/api/api.h"
#include "cp/api/http.h"
#include "cp/config/tls.h"
#include "cp/dpserver/cert.h"
#include "cp/policy/policy.h"
#include "cp/xds/builder.h"
#include "cp/xds/context.h"
#include "resource/validate.h"

#define SUB "mads"
#define PATH "/v3/discovery:monitoringassignments"
#define TYPE_URL "type.googleapis.com/kuma.observability.v1.MonitoringAssignment"
#define DEFAULT_CLIENT "_kuma-default-client"
#define RECOMPUTE_MS 50
#define MAX_BODY (1 << 20)

struct waiter {
	struct cp_mads *m;
	struct cp_http_req *req;
	char *client, *version;
	struct km_timer timer;
	struct waiter *prev, *next;
};

struct snapshot {
	const char *client;
	struct km_json *resources; /* array */
	char version[17];
};

struct cp_mads {
	struct cp_runtime *rt;
	struct cp_events *bus;
	struct cp_http *http;
	uint64_t default_timeout_ms;
	bool dirty;
	struct km_timer recompute;
	bool recompute_armed;
	struct km_arena *sa; /* the snapshots */
	struct snapshot *snaps;
	size_t nsnaps;
	struct waiter *waiters;
	struct cp_mads_stats stats; /* but .waiting */
};

/* ---- assignments ---- */

/* The client id a Prometheus backend is for: its clientId, else the default. */
static struct km_str client_of(const struct km_json *prom)
{
	const struct km_json *c = km_json_get(prom, "clientId");
	return c && c->kind == KM_JSON_STRING ? c->s : KM_STR(DEFAULT_CLIENT);
}

static struct snapshot *snapshot_for(struct cp_mads *m, struct km_str client, bool create)
{
	for (size_t i = 0; i < m->nsnaps; i++)
		if (km_str_eqc(client, m->snaps[i].client))
			return &m->snaps[i];
	if (!create)
		return NULL;
	m->snaps = km_realloc(m->snaps, (m->nsnaps + 1) * sizeof(*m->snaps));
	struct snapshot *s = &m->snaps[m->nsnaps++];
	*s = (struct snapshot){.client = km_arena_strndup(m->sa, client.ptr, client.len),
			       .resources = km_json_array(m->sa)};
	return s;
}

/* "host:port" as Go's net.JoinHostPort writes it. */
static const char *join_host_port(struct km_arena *a, struct km_str host, int64_t port)
{
	bool v6 = memchr(host.ptr, ':', host.len) != NULL;
	return km_arena_printf(a, v6 ? "[%.*s]:%lld" : "%.*s:%lld", KM_STR_FMT(host), (long long)port);
}

/* The assignments of the Dataplanes of <mesh> for each client id their
 * MeshMetric's Prometheus backends name. */
static void mesh_assignments(struct cp_mads *m, const struct km_rtype *mm_type, struct km_str mesh)
{
	struct cp_xds_mesh *ctx = cp_xds_mesh_build(m->rt, mesh, NULL);
	if (!ctx)
		return;
	struct km_arena *a = km_arena_new(0);
	for (size_t d = 0; d < ctx->ndataplanes; d++) {
		const struct cp_xds_dataplane *dp = &ctx->dataplanes[d];
		struct cp_policy_matched mp;
		cp_policy_match(a, ctx, dp, mm_type, false, &mp);
		const struct km_json *backends = km_json_get(mp.proxy_conf, "backends");
		struct km_str address = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
		struct km_str wl = km_json_get_string(dp->labels, "kuma.io/workload");
		for (size_t i = 0; backends && backends->kind == KM_JSON_ARRAY && i < backends->len; i++) {
			const struct km_json *b = backends->items[i], *prom = km_json_get(b, "prometheus");
			if (!km_str_eqc(km_json_get_string(b, "type"), "Prometheus") || !prom ||
			    prom->kind != KM_JSON_OBJECT)
				continue;
			struct km_str client = client_of(prom);
			const struct km_json *port = km_json_get(prom, "port");
			bool tls = km_str_eqc(km_json_get_string(km_json_get(prom, "tls"), "mode"), "ProvidedTLS");
			struct km_str path = km_json_get_string(prom, "path");
			struct km_json *target = km_json_fmt(
			    m->sa, "{\"name\":%S,\"scheme\":%s,\"address\":%s}", &dp->res.name, tls ? "https" : "http",
			    join_host_port(a, address, port && port->kind == KM_JSON_NUMBER ? km_json_i64_sat(port) : 0));
			if (path.len) /* protobuf JSON leaves out empty strings */
				km_json_set(m->sa, target, "metrics_path", km_json_string(m->sa, path));
			struct km_json *res = km_json_fmt(
			    m->sa, "{\"@type\":\"" TYPE_URL "\",\"mesh\":%S,\"service\":%S,\"targets\":[%T]}", &dp->res.mesh,
			    wl.len ? &wl : &KM_STR("unknown"), target);
			/* the resource's name, for ordering (dropped when written) */
			km_json_set(m->sa, res, "\x01name",
				    km_json_string(m->sa, km_str_c(km_arena_printf(m->sa, "/meshes/%.*s/dataplanes/%.*s",
										KM_STR_FMT(dp->res.mesh),
										KM_STR_FMT(dp->res.name)))));
			km_json_array_push(m->sa, snapshot_for(m, client, true)->resources, res);
		}
	}
	km_arena_free(a);
	cp_xds_mesh_free(ctx);
}

static int by_name(const void *x, const void *y)
{
	struct km_str a = km_json_get_string(*(struct km_json *const *)x, "\x01name");
	struct km_str b = km_json_get_string(*(struct km_json *const *)y, "\x01name");
	int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

/* Drops the ordering key of every resource of <s>. */
static void strip_names(struct snapshot *s)
{
	for (size_t i = 0; i < s->resources->len; i++) {
		struct km_json *r = s->resources->items[i];
		if (r->len && r->members[r->len - 1].key.len && r->members[r->len - 1].key.ptr[0] == '\x01')
			r->len--;
	}
}

static void recompute(struct cp_mads *m)
{
	int64_t t0 = cp_xds_thread_cpu_ns();
	km_arena_free(m->sa);
	m->sa = km_arena_new(0);
	free(m->snaps);
	m->snaps = NULL;
	m->nsnaps = 0;
	m->dirty = false;
	struct km_arena *a = km_arena_new(0);
	const struct km_rtype *mm_type = km_rtype_by_name(KM_STR("MeshMetric"));
	struct cp_list_result meshes = {0};
	struct cp_list_opts all = {0};
	if (cp_store_list(m->rt->store, a, km_rtype_by_name(KM_STR("Mesh")), &all, &meshes) == 0) {
		for (size_t i = 0; i < meshes.len; i++) {
			struct cp_list_opts in = {.mesh = meshes.items[i].name};
			struct cp_list_result mms = {0};
			if (cp_store_list(m->rt->store, a, mm_type, &in, &mms) == 0 && mms.len)
				mesh_assignments(m, mm_type, meshes.items[i].name);
		}
	}
	km_arena_free(a);
	snapshot_for(m, km_str_c(DEFAULT_CLIENT), true); /* answered even when empty */
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < m->nsnaps; i++) {
		struct snapshot *s = &m->snaps[i];
		if (s->resources->len > 1)
			qsort(s->resources->items, s->resources->len, sizeof(s->resources->items[0]), by_name);
		strip_names(s);
		b.len = 0;
		km_json_write(&b, s->resources, 0, 0);
		snprintf(s->version, sizeof(s->version), "%016llx",
			 (unsigned long long)km_fnv(KM_FNV_INIT, b.data ? b.data : "", b.len));
	}
	km_buf_fini(&b);
	m->stats.builds++;
	m->stats.build_ns += (uint64_t)(cp_xds_thread_cpu_ns() - t0);
}

/* ---- requests ---- */

/* The version of a client no policy names: its list is empty. */
static const char *version_of(const struct snapshot *s)
{
	static char empty[17];
	if (s)
		return s->version;
	if (!empty[0])
		snprintf(empty, sizeof(empty), "%016llx", (unsigned long long)km_fnv(KM_FNV_INIT, "[]", 2));
	return empty;
}

static void write_response(struct cp_mads *m, struct cp_http_req *req, const struct snapshot *s)
{
	m->stats.responses++;
	req->status = 200;
	req->content_type = "application/json";
	km_buf_printf(&req->out, "{\"version_info\":\"%s\",\"resources\":", version_of(s));
	if (s)
		km_json_write(&req->out, s->resources, 0, 0);
	else
		km_buf_puts(&req->out, "[]");
	km_buf_puts(&req->out, ",\"type_url\":\"" TYPE_URL "\"}");
}

static void not_modified(struct cp_http_req *req)
{
	req->status = 304;
	req->content_type = NULL;
	req->out.len = 0;
}

static void waiter_done(struct waiter *w)
{
	struct cp_mads *m = w->m;
	km_loop_timer_stop(m->rt->loop, &w->timer);
	if (w->prev)
		w->prev->next = w->next;
	else
		m->waiters = w->next;
	if (w->next)
		w->next->prev = w->prev;
	cp_http_resume(w->req);
	free(w->client);
	free(w->version);
	free(w);
}

static void on_wait_timeout(struct km_loop *loop, void *ctx)
{
	struct waiter *w = ctx;
	not_modified(w->req);
	waiter_done(w);
}

static void on_recompute(struct km_loop *loop, void *ctx)
{
	struct cp_mads *m = ctx;
	m->recompute_armed = false;
	if (!m->dirty)
		return;
	recompute(m);
	for (struct waiter *w = m->waiters, *next; w; w = next) {
		next = w->next;
		const struct snapshot *s = snapshot_for(m, km_str_c(w->client), false);
		if (strcmp(version_of(s), w->version) != 0) {
			write_response(m, w->req, s);
			waiter_done(w);
		}
	}
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *type, struct km_str mesh,
		      struct km_str name)
{
	struct cp_mads *m = ctx;
	if (op != CP_STORE_RESYNC && strcmp(type->name, "Mesh") != 0 && strcmp(type->name, "Dataplane") != 0 &&
	    strcmp(type->name, "MeshMetric") != 0)
		return;
	m->dirty = true;
	if (m->waiters && !m->recompute_armed) {
		m->recompute_armed = true;
		km_loop_timer_start(m->rt->loop, &m->recompute, RECOMPUTE_MS, on_recompute, m);
	}
}

/* The DiscoveryRequest's fields (protobuf JSON: proto and JSON names). */
static const char *const request_fields[] = {
    "version_info", "versionInfo", "node", "resource_names", "resourceNames", "resource_locators",
    "resourceLocators", "type_url", "typeUrl", "response_nonce", "responseNonce", "error_detail", "errorDetail"};

static bool known_field(struct km_str k)
{
	for (size_t i = 0; i < sizeof(request_fields) / sizeof(request_fields[0]); i++)
		if (km_str_eqc(k, request_fields[i]))
			return true;
	return false;
}

static struct km_str field(const struct km_json *o, const char *proto, const char *json)
{
	const struct km_json *v = km_json_get(o, proto);
	return km_json_get_string(o, v ? proto : json);
}

static void bad_request(struct cp_http_req *req, const char *title, const char *detail)
{
	cp_api_write_error(req, 400, title, detail, NULL);
}

static void on_request(void *ctx, struct cp_http_req *req)
{
	struct cp_mads *m = ctx;
	if (!km_str_eqc(req->path, PATH)) {
		req->status = 404;
		req->content_type = "text/plain; charset=utf-8";
		km_buf_puts(&req->out, "404 page not found");
		return;
	}
	if (strcmp(req->method, "POST") != 0) {
		req->status = 405;
		req->content_type = "text/plain; charset=utf-8";
		km_buf_puts(&req->out, "405: Method Not Allowed");
		return;
	}
	struct km_json *body = NULL;
	struct km_buf err = KM_BUF_INIT;
	if (km_json_parse(req->a, req->body.ptr ? req->body.ptr : "", req->body.len, &body, &err) != 0 ||
	    body->kind != KM_JSON_OBJECT) {
		if (!err.len)
			km_buf_puts(&err, "the request is not a JSON object");
		bad_request(req, "Could not parse request body", km_buf_cstr(&err));
		km_buf_fini(&err);
		return;
	}
	km_buf_fini(&err);
	for (size_t i = 0; i < body->len; i++)
		if (!known_field(body->members[i].key)) {
			bad_request(req, "Could not parse request body",
				    km_arena_printf(req->a, "unknown field \"%.*s\" in envoy.service.discovery.v3.DiscoveryRequest",
						    KM_STR_FMT(body->members[i].key)));
			return;
		}
	const struct km_json *node = km_json_get(body, "node");
	if (node && node->kind != KM_JSON_OBJECT && node->kind != KM_JSON_NULL) {
		bad_request(req, "Could not parse request body", "node: not an object");
		return;
	}
	struct km_str client = km_json_get_string(node, "id");
	struct km_str have = field(body, "version_info", "versionInfo");
	int64_t timeout_ns = (int64_t)m->default_timeout_ms * 1000000;
	const struct km_str *ft = cp_http_query(req, "fetch-timeout");
	if (ft && ft->len && km_duration_parse(*ft, &timeout_ns) != 0) {
		bad_request(req, "Could not parse fetch-timeout",
			    km_arena_printf(req->a, "time: invalid duration \"%.*s\"", KM_STR_FMT(*ft)));
		return;
	}
	if (m->dirty)
		recompute(m);
	const struct snapshot *s = snapshot_for(m, client, false);
	const char *version = version_of(s);
	if (!km_str_eqc(have, version)) {
		write_response(m, req, s);
		return;
	}
	if (timeout_ns <= 0) {
		not_modified(req);
		return;
	}
	struct waiter *w = km_calloc(1, sizeof(*w));
	*w = (struct waiter){.m = m, .req = req, .client = km_strndup(client.ptr ? client.ptr : "", client.len),
			     .version = km_strdup(version), .next = m->waiters};
	if (w->next)
		w->next->prev = w;
	m->waiters = w;
	cp_http_defer(req);
	uint64_t ms = (uint64_t)(timeout_ns / 1000000);
	km_loop_timer_start(m->rt->loop, &w->timer, ms ? ms : 1, on_wait_timeout, w);
}

/* ---- lifecycle ---- */

struct cp_mads *cp_mads_start(struct cp_runtime *rt, struct cp_events *bus)
{
	const struct cp_config *cfg = rt->cfg;
	struct cp_mads *m = km_calloc(1, sizeof(*m));
	m->rt = rt;
	m->bus = bus;
	m->dirty = true;
	m->default_timeout_ms = (uint64_t)CP_CONFIG_MS(cfg->monitoring_assignment_server.default_fetch_timeout);
	int port = (int)cfg->monitoring_assignment_server.port;
	if (cfg->monitoring_assignment_server.tls_enabled) {
		if (cfg->monitoring_assignment_server.tls_cipher_suites.n) {
			km_error(SUB, "monitoringAssignmentServer.tlsCipherSuites is not supported: MADS negotiates with "
				      "GnuTLS's default suites; leave it empty");
			free(m);
			return NULL;
		}
		struct cp_dpserver_cert cert = {0};
		struct km_buf err = KM_BUF_INIT;
		if (cp_server_cert_load(cfg, cfg->monitoring_assignment_server.tls_cert_file,
					cfg->monitoring_assignment_server.tls_key_file, &cert, &err) == 0) {
			struct cp_http_tls tls = {.cert_pem = km_buf_cstr(&cert.cert_pem),
						  .key_pem = km_buf_cstr(&cert.key_pem),
						  .priorities = cp_tls_gnutls_priorities(
						      cfg->monitoring_assignment_server.tls_min_version,
						      cfg->monitoring_assignment_server.tls_max_version)};
			m->http = cp_http_start_tls(rt->loop, "mads-server", "0.0.0.0", port, MAX_BODY, on_request, m,
						    &tls);
		} else {
			km_error(SUB, "TLS: %s", km_buf_cstr(&err));
		}
		cp_dpserver_cert_fini(&cert);
		km_buf_fini(&err);
	} else {
		m->http = cp_http_start(rt->loop, "mads-server", "0.0.0.0", port, MAX_BODY, on_request, m);
	}
	if (!m->http || (bus && cp_events_subscribe(bus, on_change, m))) {
		cp_http_stop(m->http);
		free(m);
		return NULL;
	}
	return m;
}

int cp_mads_port(const struct cp_mads *m)
{
	return m ? cp_http_port(m->http) : 0;
}

void cp_mads_stats(const struct cp_mads *m, struct cp_mads_stats *out)
{
	*out = (struct cp_mads_stats){0};
	if (!m)
		return;
	*out = m->stats;
	for (const struct waiter *w = m->waiters; w; w = w->next)
		out->waiting++;
}

void cp_mads_stop(struct cp_mads *m)
{
	if (!m)
		return;
	cp_events_unsubscribe(m->bus, on_change, m);
	while (m->waiters) {
		not_modified(m->waiters->req);
		waiter_done(m->waiters);
	}
	km_loop_timer_stop(m->rt->loop, &m->recompute);
	cp_http_stop(m->http);
	km_arena_free(m->sa);
	free(m->snaps);
	free(m);
}
