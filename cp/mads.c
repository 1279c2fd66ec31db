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
#include "base/ptab.h"
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

/* One MonitoringAssignment, as JSON text, the resource name it sorts by,
 * the hash of the text and the client id it is for. */
struct item {
	const char *key, *text, *client;
	size_t klen, tlen, clen;
	uint64_t h;
};

/* A Dataplane's assignments as the last recomputation made them, kept while
 * neither the Dataplane (its fingerprint) nor what matching reads of the
 * mesh (the epoch: its MeshMetrics, labels, zone) changed. */
struct memo {
	char *name;
	uint64_t fp, epoch, seen;
	struct item *items; /* and their strings, one block */
	size_t nitems;
};

struct snapshot {
	const char *client;
	struct item *items; /* in the snapshot arena; their strings in the memos */
	size_t nitems, cap;
	const char *body; /* the items as a JSON array, in name order */
	size_t body_len;
	char version[17];
};

/* The parsed Dataplanes (and what else a mesh context reads) of a mesh with
 * MeshMetrics, kept across recomputations: a write re-reads only its record. */
struct mesh_cache {
	char *name;
	struct cp_xds_cache *cache;
	struct km_ptab memos; /* struct memo by the hash of its name */
	bool used; /* by the last recomputation */
	struct mesh_cache *next;
};

struct cp_mads {
	struct cp_runtime *rt;
	struct cp_events *bus;
	struct cp_http *http;
	uint64_t default_timeout_ms;
	bool dirty;
	struct km_timer recompute;
	bool recompute_armed;
	uint64_t quiet_until_ms; /* no recomputation for waiting polls before (loop time) */
	struct km_arena *sa; /* the snapshots */
	struct snapshot *snaps;
	size_t nsnaps;
	struct mesh_cache *caches;
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
	*s = (struct snapshot){.client = km_arena_strndup(m->sa, client.ptr, client.len)};
	return s;
}

/* "host:port" as Go's net.JoinHostPort writes it. */
static const char *join_host_port(struct km_arena *a, struct km_str host, int64_t port)
{
	bool v6 = memchr(host.ptr, ':', host.len) != NULL;
	return km_arena_printf(a, v6 ? "[%.*s]:%lld" : "%.*s:%lld", KM_STR_FMT(host), (long long)port);
}

static void add_item(struct cp_mads *m, struct snapshot *s, const struct item *it)
{
	if (s->nitems == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct item *items = km_arena_alloc(m->sa, cap * sizeof(*items));
		if (s->nitems)
			memcpy(items, s->items, s->nitems * sizeof(*items));
		s->items = items; /* the old array stays in the arena until the next recomputation */
		s->cap = cap;
	}
	s->items[s->nitems++] = *it;
}

static void memo_free(struct memo *mo)
{
	free(mo->items);
	free(mo->name);
	free(mo);
}

static bool memo_seen(void *e, void *arg)
{
	struct memo *mo = e;
	if (mo->seen == *(const uint64_t *)arg)
		return true;
	memo_free(mo);
	return false;
}

static bool memo_none(void *e, void *arg)
{
	memo_free(e);
	return false;
}

static void mesh_cache_free(struct mesh_cache *c)
{
	km_ptab_filter(&c->memos, memo_none, NULL);
	km_ptab_fini(&c->memos);
	cp_xds_cache_free(c->cache);
	free(c->name);
	free(c);
}

static struct mesh_cache *mesh_cache(struct cp_mads *m, struct km_str mesh)
{
	for (struct mesh_cache *c = m->caches; c; c = c->next)
		if (km_str_eqc(mesh, c->name))
			return c;
	struct mesh_cache *c = km_calloc(1, sizeof(*c));
	c->name = km_strndup(mesh.ptr, mesh.len);
	c->cache = cp_xds_cache_new();
	c->next = m->caches;
	m->caches = c;
	return c;
}

/* What matching a Dataplane to the mesh's MeshMetrics reads besides the
 * Dataplane itself. */
static uint64_t match_epoch(const struct cp_xds_mesh *ctx, const struct km_rtype *mm_type)
{
	uint64_t h = km_fnv(KM_FNV_INIT, &ctx->fp_rest, sizeof(ctx->fp_rest));
	h = km_fnv(h, ctx->zone ? ctx->zone : "", ctx->zone ? strlen(ctx->zone) + 1 : 0);
	for (size_t i = 0; i < ctx->npolicies; i++)
		if (ctx->policies[i].type == mm_type) {
			h = km_fnv(h, &ctx->policies[i].fp, sizeof(ctx->policies[i].fp));
			h = km_fnv(h, &ctx->policies[i].ctime, sizeof(ctx->policies[i].ctime));
		}
	return h;
}

/* Makes <dp>'s assignments into <mo> (its old ones freed): one per
 * Prometheus backend of the MeshMetric conf matched, as protobuf JSON text
 * (fields in the proto's order, empty strings left out). */
static void memo_fill(struct memo *mo, struct km_arena *a, const struct cp_xds_mesh *ctx,
		      const struct cp_xds_dataplane *dp, const struct km_rtype *mm_type)
{
	free(mo->items);
	mo->items = NULL;
	mo->nitems = 0;
	struct cp_policy_matched mp;
	cp_policy_match(a, ctx, dp, mm_type, false, &mp);
	const struct km_json *backends = km_json_get(mp.proxy_conf, "backends");
	if (!backends || backends->kind != KM_JSON_ARRAY)
		return;
	struct km_str address = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
	struct km_str wl = km_json_get_string(dp->labels, "kuma.io/workload");
	struct km_buf key = KM_BUF_INIT, texts = KM_BUF_INIT;
	km_buf_printf(&key, "/meshes/%.*s/dataplanes/%.*s", KM_STR_FMT(dp->res.mesh), KM_STR_FMT(dp->res.name));
	struct item *items = km_arena_alloc(a, backends->len * sizeof(*items));
	size_t n = 0;
	for (size_t i = 0; i < backends->len; i++) {
		const struct km_json *b = backends->items[i], *prom = km_json_get(b, "prometheus");
		if (!km_str_eqc(km_json_get_string(b, "type"), "Prometheus") || !prom || prom->kind != KM_JSON_OBJECT)
			continue;
		const struct km_json *port = km_json_get(prom, "port");
		bool tls = km_str_eqc(km_json_get_string(km_json_get(prom, "tls"), "mode"), "ProvidedTLS");
		struct km_str path = km_json_get_string(prom, "path"), client = client_of(prom);
		size_t at = texts.len;
		km_buf_puts(&texts, "{\"@type\":\"" TYPE_URL "\",\"mesh\":");
		km_json_write_string(&texts, dp->res.mesh);
		km_buf_puts(&texts, ",\"service\":");
		km_json_write_string(&texts, wl.len ? wl : KM_STR("unknown"));
		km_buf_puts(&texts, ",\"targets\":[{\"name\":");
		km_json_write_string(&texts, dp->res.name);
		km_buf_printf(&texts, ",\"scheme\":\"%s\",\"address\":", tls ? "https" : "http");
		km_json_write_string(
		    &texts, km_str_c(join_host_port(a, address,
						    port && port->kind == KM_JSON_NUMBER ? km_json_i64_sat(port) : 0)));
		if (path.len) {
			km_buf_puts(&texts, ",\"metrics_path\":");
			km_json_write_string(&texts, path);
		}
		km_buf_puts(&texts, "}]}");
		/* offsets for now: the block moves as it grows */
		items[n++] = (struct item){.text = (const char *)(uintptr_t)at, .tlen = texts.len - at,
					   .client = (const char *)(uintptr_t)texts.len, .clen = client.len};
		km_buf_add(&texts, client.ptr, client.len);
	}
	if (n) {
		/* one block: the items, then the key, then the texts and clients */
		size_t head = n * sizeof(struct item);
		char *blk = km_malloc(head + key.len + texts.len);
		memcpy(blk + head, key.data, key.len);
		memcpy(blk + head + key.len, texts.data, texts.len);
		const char *base = blk + head + key.len;
		mo->items = (struct item *)(void *)blk;
		for (size_t i = 0; i < n; i++) {
			struct item it = items[i];
			it.text = base + (uintptr_t)it.text;
			it.client = base + (uintptr_t)it.client;
			it.key = blk + head;
			it.klen = key.len;
			it.h = km_fnv(KM_FNV_INIT, it.text, it.tlen);
			mo->items[i] = it;
		}
		mo->nitems = n;
	}
	km_buf_fini(&key);
	km_buf_fini(&texts);
}

/* The assignments of the Dataplanes of <mesh>, into the snapshot of each
 * client id their MeshMetric's Prometheus backends name: a Dataplane that
 * did not change since the last recomputation, in a mesh whose MeshMetrics
 * did not, keeps the ones it had (no matching, no writing). */
static void mesh_assignments(struct cp_mads *m, const struct km_rtype *mm_type, struct km_str mesh)
{
	struct mesh_cache *mc = mesh_cache(m, mesh);
	mc->used = true;
	struct cp_xds_mesh *ctx = cp_xds_mesh_build(m->rt, mesh, mc->cache);
	if (!ctx)
		return;
	uint64_t epoch = match_epoch(ctx, mm_type), gen = m->stats.builds + 1;
	struct km_arena *a = km_arena_new(0);
	km_ptab_reserve(&mc->memos, ctx->ndataplanes);
	for (size_t d = 0; d < ctx->ndataplanes; d++) {
		const struct cp_xds_dataplane *dp = &ctx->dataplanes[d];
		uint64_t h = km_fnv(KM_FNV_INIT, dp->res.name.ptr, dp->res.name.len);
		struct memo *mo = NULL;
		for (size_t it = 0; (mo = km_ptab_next(&mc->memos, h, &it));)
			if (km_str_eqc(dp->res.name, mo->name))
				break;
		if (!mo) {
			mo = km_calloc(1, sizeof(*mo));
			mo->name = km_strndup(dp->res.name.ptr, dp->res.name.len);
			km_ptab_add(&mc->memos, h, mo);
		}
		if (!mo->seen || mo->fp != dp->fp || mo->epoch != epoch) {
			memo_fill(mo, a, ctx, dp, mm_type);
			mo->fp = dp->fp;
			mo->epoch = epoch;
			m->stats.matched++;
		}
		mo->seen = gen;
		for (size_t i = 0; i < mo->nitems; i++)
			add_item(m, snapshot_for(m, (struct km_str){mo->items[i].client, mo->items[i].clen}, true),
				 &mo->items[i]);
		if (d % 256 == 255) { /* the matches' scratch */
			km_arena_free(a);
			a = km_arena_new(0);
		}
	}
	km_ptab_filter(&mc->memos, memo_seen, &gen); /* Dataplanes gone */
	km_arena_free(a);
	cp_xds_mesh_free(ctx);
}

static int by_name(const void *x, const void *y)
{
	const struct item *a = x, *b = y;
	int c = memcmp(a->key, b->key, a->klen < b->klen ? a->klen : b->klen);
	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
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
	for (struct mesh_cache *c = m->caches; c; c = c->next)
		c->used = false;
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
	/* the caches of meshes without MeshMetrics (now) go */
	for (struct mesh_cache **pc = &m->caches; *pc;) {
		struct mesh_cache *c = *pc;
		if (c->used) {
			pc = &c->next;
			continue;
		}
		*pc = c->next;
		mesh_cache_free(c);
	}
	snapshot_for(m, km_str_c(DEFAULT_CLIENT), true); /* answered even when empty */
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < m->nsnaps; i++) {
		struct snapshot *s = &m->snaps[i];
		if (s->nitems > 1)
			qsort(s->items, s->nitems, sizeof(*s->items), by_name);
		b.len = 0;
		km_buf_putc(&b, '[');
		/* the version: a hash of the texts' hashes, in order (not of the
		 * whole body, a megabyte at 10,000 Dataplanes) */
		uint64_t v = km_fnv(KM_FNV_INIT, "[", 1);
		for (size_t k = 0; k < s->nitems; k++) {
			if (k)
				km_buf_putc(&b, ',');
			km_buf_add(&b, s->items[k].text, s->items[k].tlen);
			v = km_fnv(v, &s->items[k].h, sizeof(s->items[k].h));
		}
		km_buf_putc(&b, ']');
		s->body = km_arena_strndup(m->sa, b.data, b.len);
		s->body_len = b.len;
		snprintf(s->version, sizeof(s->version), "%016llx", (unsigned long long)v);
	}
	km_buf_fini(&b);
	m->stats.builds++;
	uint64_t took = (uint64_t)(cp_xds_thread_cpu_ns() - t0);
	m->stats.build_ns += took;
	/* at scale, leave the loop at least 3/4 of the time for everything
	 * else: a burst of writes (proxies registering) waits, coalesced */
	m->quiet_until_ms = km_loop_now_ms() + 3 * took / 1000000;
}

/* ---- requests ---- */

/* The version of a client no policy names: its list is empty. */
static const char *version_of(const struct snapshot *s)
{
	static char empty[17];
	if (s)
		return s->version;
	if (!empty[0])
		snprintf(empty, sizeof(empty), "%016llx", (unsigned long long)km_fnv(KM_FNV_INIT, "[", 1));
	return empty;
}

static void write_response(struct cp_mads *m, struct cp_http_req *req, const struct snapshot *s)
{
	m->stats.responses++;
	req->status = 200;
	req->content_type = "application/json";
	km_buf_printf(&req->out, "{\"version_info\":\"%s\",\"resources\":", version_of(s));
	if (s)
		km_buf_add(&req->out, s->body, s->body_len);
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

/* Waiting polls and a write since the last recomputation: the next one in
 * RECOMPUTE_MS (writes in a burst coalesce), or when the quiet time ends. */
static void arm_recompute(struct cp_mads *m)
{
	if (m->recompute_armed)
		return;
	uint64_t now = km_loop_now_ms(), wait = RECOMPUTE_MS;
	if (m->quiet_until_ms > now + wait)
		wait = m->quiet_until_ms - now;
	m->recompute_armed = true;
	km_loop_timer_start(m->rt->loop, &m->recompute, wait, on_recompute, m);
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *type, struct km_str mesh,
		      struct km_str name)
{
	struct cp_mads *m = ctx;
	/* every write reaches the kept records (a context reads more types
	 * than those that move assignments) */
	bool resync = op == CP_STORE_RESYNC || !type;
	for (struct mesh_cache *c = m->caches; c; c = c->next) {
		if (resync)
			cp_xds_cache_reset(c->cache);
		else if (type->scope == KM_SCOPE_GLOBAL ? strcmp(type->name, "Mesh") != 0 || km_str_eqc(name, c->name) :
							  km_str_eqc(mesh, c->name))
			cp_xds_cache_stale(c->cache, type, name);
	}
	if (!resync && strcmp(type->name, "Mesh") != 0 && strcmp(type->name, "Dataplane") != 0 &&
	    strcmp(type->name, "MeshMetric") != 0)
		return;
	m->dirty = true;
	if (m->waiters)
		arm_recompute(m);
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

int cp_mads_parse_request(struct km_arena *a, const char *body, size_t len, const struct km_str *fetch_timeout,
			  int64_t default_timeout_ns, struct cp_mads_request *out, const char **title, const char **detail)
{
	*out = (struct cp_mads_request){.timeout_ns = default_timeout_ns};
	*title = "Could not parse request body";
	struct km_json *doc = NULL;
	struct km_buf err = KM_BUF_INIT;
	if (km_json_parse(a, body ? body : "", len, &doc, &err) != 0 || doc->kind != KM_JSON_OBJECT) {
		*detail = km_arena_strdup(a, err.len ? km_buf_cstr(&err) : "the request is not a JSON object");
		km_buf_fini(&err);
		return -1;
	}
	km_buf_fini(&err);
	for (size_t i = 0; i < doc->len; i++)
		if (!known_field(doc->members[i].key)) {
			*detail = km_arena_printf(a, "unknown field \"%.*s\" in envoy.service.discovery.v3.DiscoveryRequest",
						  KM_STR_FMT(doc->members[i].key));
			return -1;
		}
	const struct km_json *node = km_json_get(doc, "node");
	if (node && node->kind != KM_JSON_OBJECT && node->kind != KM_JSON_NULL) {
		*detail = "node: not an object";
		return -1;
	}
	out->client = km_json_get_string(node, "id");
	out->version = field(doc, "version_info", "versionInfo");
	if (fetch_timeout && fetch_timeout->len && km_duration_parse(*fetch_timeout, &out->timeout_ns) != 0) {
		*title = "Could not parse fetch-timeout";
		*detail = km_arena_printf(a, "time: invalid duration \"%.*s\"", KM_STR_FMT(*fetch_timeout));
		return -1;
	}
	return 0;
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
	struct cp_mads_request r;
	const struct km_str *ft = cp_http_query(req, "fetch-timeout");
	const char *title = NULL, *detail = NULL;
	if (cp_mads_parse_request(req->a, req->body.ptr, req->body.len, ft, (int64_t)m->default_timeout_ms * 1000000, &r,
				  &title, &detail) != 0) {
		bad_request(req, title, detail);
		return;
	}
	struct km_str client = r.client, have = r.version;
	int64_t timeout_ns = r.timeout_ns;
	/* a client that holds the current snapshot and will wait gets the
	 * writes since through the coalesced recomputation (arm_recompute): a
	 * poller that asks again at once after each answer would otherwise
	 * cost one recomputation per answer in a burst of writes */
	const struct snapshot *s = snapshot_for(m, client, false);
	if (m->dirty && (!km_str_eqc(have, version_of(s)) || timeout_ns <= 0)) {
		recompute(m);
		s = snapshot_for(m, client, false);
	}
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
	if (m->dirty)
		arm_recompute(m);
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
	while (m->caches) {
		struct mesh_cache *c = m->caches;
		m->caches = c->next;
		mesh_cache_free(c);
	}
	free(m);
}
