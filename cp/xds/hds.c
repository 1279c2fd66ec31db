/* SPDX-License-Identifier: Apache-2.0 */
/* HDS (cp/xds/hds.h). One struct per open stream, listed on the server;
 * everything runs on the loop. The specifier is built as protobuf JSON
 * and encoded with lib/pb (its hash says whether a Dataplane write changed
 * it); reports are decoded to JSON the same way. A stream has at most one
 * Dataplane write in flight (cp_store_rmw, which reads the record again at
 * write time); a report that comes meanwhile is written after it. */
#include "cp/xds/hds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/json.h"
#include "codec/jsonf.h"
#include "cp/config/config.h"
#include "cp/xds/builder.h"
#include "cp/xds/dpauth.h"
#include "pb/json.h"
#include "resource/validate.h"

#define SUB "hds"
#define REQ_TYPE "envoy.service.health.v3.HealthCheckRequestOrEndpointHealthResponse"
#define SPEC_TYPE "envoy.service.health.v3.HealthCheckSpecifier"
#define ADMIN_CLUSTER "system_envoy_admin"
#define LEGACY_ADMIN_CLUSTER "kuma:envoy:admin"
#define MAX_PORTS 1024 /* distinct ports in one report (the dedupe is quadratic) */

struct port_health {
	uint32_t port;
	bool healthy;
};

/* What one report says. */
struct report {
	bool envoy_healthy;
	struct port_health *ports; /* heap; as many as the proxy reports on */
	size_t nports;
};

struct stream {
	struct cp_hds *h;
	struct cp_grpc_stream *gs;
	char *mesh, *name; /* NULL until the first request names the node */
	uint32_t admin_port;
	char *admin_socket;
	uint64_t sent_fp; /* of the last specifier sent; 0: none */
	uint64_t report_fp; /* of the last report's bytes: Envoy repeats itself every interval */
	bool refresh;     /* its Dataplane was written: build the specifier again */
	/* the Dataplane write */
	struct cp_store_rmw op;
	bool writing;
	struct report last, pending; /* written (or being written); to write next */
	bool have_last, have_pending;
	struct stream *prev, *next;
};

struct cp_hds {
	struct cp_runtime *rt;
	struct cp_events *bus;
	struct stream *streams;
	struct km_timer refresh;
	struct cp_hds_stats stats;
};

/* ---- the specifier ---- */

/* A protobuf JSON Duration: "1s", "0.500s". */
static struct km_json *duration(struct km_arena *a, int64_t ns)
{
	if (ns < 0)
		ns = 0;
	int64_t s = ns / 1000000000, frac = ns % 1000000000;
	if (!frac)
		return km_json_string(a, km_str_c(km_arena_printf(a, "%llds", (long long)s)));
	return km_json_string(a, km_str_c(km_arena_printf(a, "%lld.%09llds", (long long)s, (long long)frac)));
}

/* <probe>'s duration <key> (Go or protobuf text), else <dflt>. */
static int64_t probe_duration(const struct km_json *probe, const char *key, int64_t dflt)
{
	struct km_str v = km_json_get_string(probe, key);
	int64_t ns;
	return v.len && km_duration_parse(v, &ns) == 0 ? ns : dflt;
}

static int64_t probe_uint(const struct km_json *probe, const char *key, int64_t dflt)
{
	const struct km_json *v = km_json_get(probe, key);
	if (v && v->kind == KM_JSON_OBJECT) /* a wrapper written {"value": n} */
		v = km_json_get(v, "value");
	return v && v->kind == KM_JSON_NUMBER ? km_json_i64_sat(v) : dflt;
}

static struct km_json *check(struct km_arena *a, const struct cp_config *cfg, const struct km_json *probe,
			     struct km_json *kind_key_val)
{
#define D(f) cfg->dp_server.hds.check_defaults.f
	struct km_json *c = km_json_object(a);
	km_json_set(a, c, "timeout", duration(a, probe_duration(probe, "timeout", D(timeout))));
	km_json_set(a, c, "interval", duration(a, probe_duration(probe, "interval", D(interval))));
	km_json_set(a, c, "healthyThreshold", km_json_int(a, probe_uint(probe, "healthyThreshold", D(healthy_threshold))));
	km_json_set(a, c, "unhealthyThreshold",
		    km_json_int(a, probe_uint(probe, "unhealthyThreshold", D(unhealthy_threshold))));
	km_json_set(a, c, "noTrafficInterval", duration(a, D(no_traffic_interval)));
#undef D
	km_json_set_str(a, c, kind_key_val->members[0].key, kind_key_val->members[0].val);
	return c;
}

static uint32_t workload_port(const struct km_json *in)
{
	const struct km_json *sp = km_json_get(in, "servicePort");
	int64_t p = sp && sp->kind == KM_JSON_NUMBER ? km_json_i64_sat(sp) : 0;
	if (p <= 0)
		p = km_json_i64_sat(km_json_get(in, "port"));
	return p > 0 && p <= 65535 ? (uint32_t)p : 0;
}

/* The specifier for <st>'s Dataplane <spec> (NULL: only Envoy's check). */
static struct km_json *specifier(struct stream *st, struct km_arena *a, const struct km_json *spec)
{
	const struct cp_config *cfg = st->h->rt->cfg;
	const struct km_json *networking = km_json_get(spec, "networking");
	struct km_json *checks = km_json_array(a);
	uint32_t admin_port = st->admin_port;
	if (!admin_port) {
		int64_t p = km_json_i64_sat(km_json_get(km_json_get(networking, "admin"), "port"));
		admin_port = p > 0 && p <= 65535 ? (uint32_t)p : 9901;
	}
	struct km_json *admin_addr =
	    st->admin_socket && *st->admin_socket
		? km_json_fmt(a, "{\"pipe\":{\"path\":%s}}", st->admin_socket)
		: km_json_fmt(a, "{\"socketAddress\":{\"address\":\"127.0.0.1\",\"portValue\":%u}}", admin_port);
	km_json_array_push(
	    a, checks,
	    km_json_fmt(a, "{\"clusterName\":\"" ADMIN_CLUSTER "\",\"localityEndpoints\":[{\"endpoints\":[{\"address\":%T}]}],"
			   "\"healthChecks\":[%T]}",
			admin_addr, check(a, cfg, NULL, km_json_fmt(a, "{\"httpHealthCheck\":{\"path\":\"/ready\"}}"))));
	struct km_str dp_addr = km_json_get_string(networking, "address");
	const struct km_json *inbounds = km_json_get(networking, "inbound");
	for (size_t i = 0; inbounds && inbounds->kind == KM_JSON_ARRAY && i < inbounds->len; i++) {
		const struct km_json *in = inbounds->items[i];
		const struct km_json *probe = km_json_get(in, "serviceProbe");
		uint32_t port = workload_port(in);
		if (!probe || probe->kind != KM_JSON_OBJECT || !port)
			continue;
		/* where the workload listens: serviceAddress, else the inbound's
		 * address, else the Dataplane's (as its local cluster) */
		struct km_str ip = km_json_get_string(in, "serviceAddress");
		if (!ip.len)
			ip = km_json_get_string(in, "address");
		if (!ip.len)
			ip = dp_addr;
		km_json_array_push(
		    a, checks,
		    km_json_fmt(a,
				"{\"clusterName\":%s,\"localityEndpoints\":[{\"endpoints\":[{\"address\":{\"socketAddress\":"
				"{\"address\":%S,\"portValue\":%u}}}]}],\"healthChecks\":[%T]}",
				km_arena_printf(a, "localhost:%u", port), &ip, port,
				check(a, cfg, probe, km_json_fmt(a, "{\"tcpHealthCheck\":{}}"))));
	}
	return km_json_fmt(a, "{\"clusterHealthChecks\":%T,\"interval\":%T}", checks,
			   duration(a, cfg->dp_server.hds.interval > 0 ? cfg->dp_server.hds.interval : 5000000000LL));
}

/* Builds the specifier from the stored Dataplane and sends it unless the
 * proxy has it already. */
static void send_specifier(struct stream *st)
{
	struct cp_runtime *rt = st->h->rt;
	struct cp_hds_stats *stats = &st->h->stats;
	int64_t t0 = cp_xds_thread_cpu_ns();
	struct km_arena *a = km_arena_new(4096);
	struct km_resource r;
	struct km_json *spec = NULL;
	if (cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), km_str_c(st->mesh), km_str_c(st->name),
			 &r) == 0)
		km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL);
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	if (km_pb_encode_json(a, SPEC_TYPE, specifier(st, a, spec), &out, &err) != 0) {
		km_error(SUB, "cannot encode the health check specifier proxy=%s.%s error=%s", st->mesh, st->name,
			 km_buf_cstr(&err));
		stats->gen_errors++;
	} else {
		struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, stats->gen_counts, stats->gen_sum_ms};
		km_prom_observe(&h, (double)(cp_xds_thread_cpu_ns() - t0) / 1e6, 1);
		stats->gen_sum_ms = h.sum;
		uint64_t fp = km_fnv(KM_FNV_INIT, out.data ? out.data : "", out.len) | 1;
		if (fp != st->sent_fp) {
			st->sent_fp = fp;
			cp_grpc_send(st->gs, out.data ? out.data : "", out.len);
		}
	}
	km_buf_fini(&out);
	km_buf_fini(&err);
	km_arena_free(a);
}

/* ---- reports ---- */

static bool same_report(const struct report *x, const struct report *y)
{
	if (x->envoy_healthy != y->envoy_healthy || x->nports != y->nports)
		return false;
	for (size_t i = 0; i < x->nports; i++)
		if (x->ports[i].port != y->ports[i].port || x->ports[i].healthy != y->ports[i].healthy)
			return false;
	return true;
}

static void report_fini(struct report *r)
{
	free(r->ports);
	r->ports = NULL;
	r->nports = 0;
}

/* <out> is empty on entry; filled (and its list owned) even on failure. */
static bool report_of(const struct km_json *resp, struct report *out)
{
	*out = (struct report){.envoy_healthy = true}; /* no check of Envoy: healthy */
	const struct km_json *clusters = km_json_get(resp, "clusterEndpointsHealth");
	for (size_t i = 0; clusters && clusters->kind == KM_JSON_ARRAY && i < clusters->len; i++) {
		const struct km_json *c = clusters->items[i];
		const struct km_json *loc = km_json_get(c, "localityEndpointsHealth");
		if (!loc || loc->kind != KM_JSON_ARRAY || !loc->len)
			continue;
		const struct km_json *eps = km_json_get(loc->items[0], "endpointsHealth");
		if (!eps || eps->kind != KM_JSON_ARRAY || !eps->len)
			continue;
		struct km_str status = km_json_get_string(eps->items[0], "healthStatus");
		bool healthy = !status.len || km_str_eqc(status, "HEALTHY") || km_str_eqc(status, "UNKNOWN");
		struct km_str name = km_json_get_string(c, "clusterName");
		if (km_str_eqc(name, ADMIN_CLUSTER) || km_str_eqc(name, LEGACY_ADMIN_CLUSTER)) {
			out->envoy_healthy = healthy;
			continue;
		}
		if (!km_str_has_prefix(name, "localhost:"))
			return false; /* upstream fails the report: not a cluster it asked for */
		unsigned long long p;
		if (km_str_to_u64((struct km_str){name.ptr + 10, name.len - 10}, &p) != 0 || !p || p > 65535)
			return false;
		size_t k = 0;
		while (k < out->nports && out->ports[k].port != (uint32_t)p)
			k++;
		if (k == out->nports) {
			if (out->nports == MAX_PORTS)
				return false; /* no Dataplane has that many probed inbounds */
			out->ports = km_realloc(out->ports, ++out->nports * sizeof(*out->ports));
		}
		out->ports[k] = (struct port_health){(uint32_t)p, healthy};
	}
	return true;
}

/* One stream message: its HealthCheckRequest or its EndpointHealthResponse
 * (at most one is set), or -1 when the bytes do not decode (<err>, may be
 * NULL, says why). The stream and cp_hds_parse_report read through it. */
static int decode(struct km_arena *a, const uint8_t *data, size_t len, const struct km_json **req,
		  const struct km_json **resp, struct km_buf *err)
{
	struct km_json *msg = NULL;
	*req = *resp = NULL;
	if (km_pb_decode_to_json(a, REQ_TYPE, data, len, &msg, err) != 0)
		return -1;
	*req = km_json_get(msg, "healthCheckRequest");
	*resp = *req ? NULL : km_json_get(msg, "endpointHealthResponse");
	return 0;
}

int cp_hds_parse_report(struct km_arena *a, const uint8_t *data, size_t len, bool *envoy_healthy, size_t *nports)
{
	const struct km_json *req, *resp;
	if (decode(a, data, len, &req, &resp, NULL) != 0)
		return -1;
	if (!resp)
		return 0;
	struct report r;
	bool ok = report_of(resp, &r);
	*envoy_healthy = r.envoy_healthy;
	*nports = r.nports;
	report_fini(&r);
	return ok ? 1 : -1;
}

static void write_next(struct stream *st);

static bool merge(struct cp_store_rmw *op, struct km_arena *a, const struct km_resource *cur, struct km_resource *out)
{
	struct stream *st = (struct stream *)((char *)op - offsetof(struct stream, op));
	struct km_json *spec = NULL;
	if (!cur || km_json_parse(a, cur->spec.ptr, cur->spec.len, &spec, NULL) != 0)
		return false;
	struct km_json *inbounds = km_json_get(km_json_get(spec, "networking"), "inbound");
	bool changed = false;
	for (size_t i = 0; inbounds && inbounds->kind == KM_JSON_ARRAY && i < inbounds->len; i++) {
		struct km_json *in = inbounds->items[i];
		uint32_t port = workload_port(in);
		bool healthy = st->last.envoy_healthy;
		for (size_t k = 0; k < st->last.nports; k++)
			if (st->last.ports[k].port == port)
				healthy = healthy && st->last.ports[k].healthy;
		struct km_str state = km_json_get_string(in, "state");
		bool ready = !state.len || km_str_eqc(state, "Ready");
		if (km_str_eqc(state, "Ignored") || ready == healthy)
			continue;
		/* Ready is proto3's zero: left out, as upstream's JSON does */
		km_json_del(in, "state");
		if (!healthy)
			km_json_set(a, in, "state", km_json_cstring(a, "NotReady"));
		km_json_set(a, in, "health", km_json_fmt(a, "{\"ready\":%b}", healthy));
		changed = true;
	}
	if (!changed)
		return false;
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, spec, 0, 0);
	out->spec = (struct km_str){km_arena_strndup(a, b.data, b.len), b.len};
	km_buf_fini(&b);
	out->labels = cur->labels;
	out->status = cur->status;
	return true;
}

static void free_stream(struct stream *st)
{
	report_fini(&st->last);
	report_fini(&st->pending);
	free(st->mesh);
	free(st->name);
	free(st->admin_socket);
	free(st);
}

static void done(struct cp_store_rmw *op, int rc)
{
	struct stream *st = (struct stream *)((char *)op - offsetof(struct stream, op));
	st->writing = false;
	if (rc)
		km_warn(SUB, "cannot write the health of proxy=%s.%s error=%s", st->mesh, st->name, km_strerror(rc));
	if (st->have_pending)
		write_next(st);
}

static void write_next(struct stream *st)
{
	if (st->writing || !st->have_pending)
		return;
	report_fini(&st->last);
	st->last = st->pending;
	st->pending = (struct report){0};
	st->have_last = true;
	st->have_pending = false;
	st->writing = true;
	st->op = (struct cp_store_rmw){.type = km_rtype_by_name(KM_STR("Dataplane")),
				       .mesh = km_str_c(st->mesh),
				       .name = km_str_c(st->name),
				       .urgent = true, /* endpoints follow it */
				       .merge = merge,
				       .done = done};
	cp_store_rmw(st->h->rt->store, &st->op);
}

/* ---- the stream ---- */

static int identify(struct stream *st, struct km_arena *a, const struct km_json *req)
{
	const struct km_json *node = km_json_get(req, "node");
	struct km_str id = km_json_get_string(node, "id");
	const char *dot = id.len ? memchr(id.ptr, '.', id.len) : NULL;
	if (!dot || dot == id.ptr || dot == id.ptr + id.len - 1) {
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "node id must be <mesh>.<name>");
		return -1;
	}
	char *mesh = km_strndup(id.ptr, (size_t)(dot - id.ptr));
	char *name = km_strndup(dot + 1, (size_t)(id.ptr + id.len - dot - 1));
	struct cp_runtime *rt = st->h->rt;
	struct km_json *labels = NULL;
	struct km_resource cur;
	if (cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), km_str_c(mesh), km_str_c(name), &cur) ==
		0 &&
	    cur.labels.len)
		km_json_parse(a, cur.labels.ptr, cur.labels.len, &labels, NULL);
	const char *token = cp_grpc_metadata(st->gs, "authorization");
	if (token && strncmp(token, "Bearer ", 7) == 0)
		token += 7;
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_dpauth_check(rt, a, token ? token : "", km_str_c(mesh), km_str_c(name), labels, &err);
	if (rc) {
		km_warn(SUB, "health stream rejected proxy=%s.%s peer=%s reason=%s", mesh, name, cp_grpc_peer(st->gs),
			km_buf_cstr(&err));
		cp_grpc_finish(st->gs, rc == -KM_E_FORBIDDEN ? CP_GRPC_PERMISSION_DENIED : CP_GRPC_UNAUTHENTICATED,
			       km_buf_cstr(&err));
		km_buf_fini(&err);
		free(mesh);
		free(name);
		return -1;
	}
	km_buf_fini(&err);
	st->mesh = mesh;
	st->name = name;
	const struct km_json *md = km_json_get(node, "metadata");
	unsigned long long port;
	if (km_str_to_u64(km_json_get_string(md, "dataplane.admin.port"), &port) == 0 && port && port <= 65535)
		st->admin_port = (uint32_t)port;
	struct km_str sock = km_json_get_string(md, "dataplane.admin.socketPath");
	st->admin_socket = km_strndup(sock.ptr ? sock.ptr : "", sock.len);
	return 0;
}

static void *open_stream(void *svc, struct cp_grpc_stream *gs)
{
	struct cp_hds *h = svc;
	struct stream *st = km_calloc(1, sizeof(*st));
	st->h = h;
	st->gs = gs;
	st->next = h->streams;
	if (st->next)
		st->next->prev = st;
	h->streams = st;
	h->stats.streams_active++;
	return st;
}

static void on_message(void *ctx, const uint8_t *data, size_t len)
{
	struct stream *st = ctx;
	/* the same report as the last one (the usual case, every interval from
	 * every proxy): nothing to decode */
	uint64_t fp = km_fnv(KM_FNV_INIT, data, len) | 1;
	if (st->mesh && fp == st->report_fp)
		return;
	struct km_arena *a = km_arena_new(4096);
	const struct km_json *req, *resp;
	struct km_buf err = KM_BUF_INIT;
	if (decode(a, data, len, &req, &resp, &err) != 0) {
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT,
			       km_arena_printf(a, "cannot decode the message: %s", km_buf_cstr(&err)));
		goto out;
	}
	if (req) {
		st->h->stats.requests++;
		if (!st->mesh && identify(st, a, req) != 0)
			goto out;
		send_specifier(st);
	} else if (resp) {
		st->h->stats.reports++;
		if (!st->mesh) {
			cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "a health report before the request naming the node");
			goto out;
		}
		struct report r;
		if (!report_of(resp, &r)) {
			report_fini(&r);
			km_warn(SUB, "health report for clusters never asked about proxy=%s.%s", st->mesh, st->name);
			goto out;
		}
		st->report_fp = fp;
		const struct report *latest = st->have_pending ? &st->pending : st->have_last ? &st->last : NULL;
		if (latest && same_report(latest, &r)) {
			report_fini(&r);
			goto out;
		}
		report_fini(&st->pending);
		st->pending = r;
		st->have_pending = true;
		write_next(st);
	}
out:
	km_buf_fini(&err);
	km_arena_free(a);
}

static void close_stream(void *ctx)
{
	struct stream *st = ctx;
	struct cp_hds *h = st->h;
	if (st->prev)
		st->prev->next = st->next;
	else
		h->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	if (st->writing) /* the write is dropped: done() will not run */
		cp_store_rmw_cancel(h->rt->store, &st->op);
	h->stats.streams_active--;
	free_stream(st);
}

void cp_hds_stats(const struct cp_hds *h, struct cp_hds_stats *out)
{
	*out = h ? h->stats : (struct cp_hds_stats){0};
}

/* ---- Dataplane writes ---- */

static void on_refresh(struct km_loop *loop, void *ctx)
{
	struct cp_hds *h = ctx;
	for (struct stream *st = h->streams; st; st = st->next)
		if (st->refresh) {
			st->refresh = false;
			send_specifier(st);
		}
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *type, struct km_str mesh,
		      struct km_str name)
{
	struct cp_hds *h = ctx;
	bool any = false;
	bool all = op == CP_STORE_RESYNC;
	if (!all && strcmp(type->name, "Dataplane") != 0)
		return;
	for (struct stream *st = h->streams; st; st = st->next)
		if (st->mesh && (all || (km_str_eqc(mesh, st->mesh) && km_str_eqc(name, st->name))))
			any = st->refresh = true;
	if (any && !h->refresh.armed)
		km_loop_timer_start(h->rt->loop, &h->refresh, 0, on_refresh, h);
}

struct cp_hds *cp_hds_new(struct cp_runtime *rt, struct cp_events *bus)
{
	struct cp_hds *h = km_calloc(1, sizeof(*h));
	h->rt = rt;
	h->bus = bus;
	if (bus)
		cp_events_subscribe(bus, on_change, h);
	return h;
}

struct cp_grpc_method cp_hds_method(struct cp_hds *h)
{
	return (struct cp_grpc_method){"/envoy.service.health.v3.HealthDiscoveryService/StreamHealthCheck", open_stream,
				       on_message, close_stream, h};
}

void cp_hds_free(struct cp_hds *h)
{
	if (!h)
		return;
	cp_events_unsubscribe(h->bus, on_change, h);
	km_loop_timer_stop(h->rt->loop, &h->refresh);
	/* the dp-server stopped first: every stream was closed */
	free(h);
}
