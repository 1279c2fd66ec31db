/* SPDX-License-Identifier: Apache-2.0 */
/* ADS server (see server.h). Ownership: the server owns its streams and mesh
 * contexts; a stream owns its snapshot (an arena replaced wholesale on each
 * regeneration), its subscription state (heap) and its insight counters. A
 * request is decoded into a per-message arena that dies after handling. */
#include "cp/xds/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "codec/jsonf.h"
#include "cp/insights.h"
#include "cp/manager.h"
#include "cp/memo.h"
#include "cp/tokens/tokens.h"
#include "cp/xds/builder.h"
#include "cp/xds/dpauth.h"
#include "cp/xds/hds.h"
#include "cp/xds/generate.h"
#include "cp/policy/policy.h"
#include "cp/xds/identity.h"
#include "cp/xds/share.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "pb/json.h"
#include "pb/wire.h"
#include "resource/validate.h"

#define MAX_BACKOFF_MS (5 * 60 * 1000)

/* A proxy's current configuration: encoded resources (cp/xds/share.h),
 * often the same blobs as other proxies'. */
struct snapshot {
	struct cp_xds_blob **block; /* every res[] array, one allocation; NULL: none yet */
	struct cp_xds_blob **res[CP_XDS_NTYPES];
	size_t n[CP_XDS_NTYPES];
};

struct name_ver {
	char *name;
	uint64_t h; /* of the name: most lookups then compare no text */
	char version[17];
};

static uint64_t name_hash(struct km_str name);

struct type_state {
	bool subscribed, wildcard;
	char **names; /* explicit subscriptions */
	size_t nnames;
	struct name_ver *sent; /* delta: what the client has (or was last sent) */
	size_t nsent, capsent;
	char sotw_version[17];  /* SotW: version of the last response */
	char nonce[24];
	uint64_t responses, acks, nacks;
	uint64_t backoff_ms;
	uint64_t ready_ms; /* loop time the unconfirmed response went out (xds_delivery), 0: none */
	struct km_timer retry;
	struct ads_stream *owner;
	int type;
};

struct ads_stream {
	struct cp_xds_server *srv;
	struct cp_grpc_stream *gs;
	bool delta;
	bool ready;     /* node seen and authenticated */
	bool closed;
	char *mesh, *name;
	struct km_str self;    /* <name> with its length */
	uint64_t self_h;       /* name_hash(self): every recompute pass tests it */
	struct mesh_entry *me; /* its mesh's, once ready (entries live as long as the server) */
	char *metadata;  /* node metadata as compact JSON */
	struct cp_xds_metadata md; /* what generation reads of it, in md_a */
	struct km_arena *md_a;
	char *kuma_dp_version, *envoy_version;
	char id[40];
	bool registered; /* we created the Dataplane from kuma-dp's dataplane.resource */
	bool first_gen;  /* connected while the context was stale: the next pass generates */
	bool proxyless;  /* its metadata says "proxyless": it gets every service */
	uint64_t id_key; /* cp_pki_identity_key when its snapshot was built */
	uint64_t node_hash; /* of mesh and name: stream_for compares it first */
	struct ads_stream *prev; /* the streams list is doubly linked: O(1) close */
	int64_t connect_time;
	struct snapshot snap;
	struct cp_xds_local_memo local; /* the builds' memo of its local resources */
	/* the MeshService names its outbounds give (hashes), read from its
	 * Dataplane of fingerprint outs_fp; outs_all: they depend on every
	 * service (outbounds by labels or other kinds, proxyless) */
	uint64_t *outs;
	size_t nouts;
	uint64_t outs_fp;
	bool outs_known, outs_all;
	struct type_state ts[CP_XDS_NTYPES];
	uint64_t nonce_seq;
	struct km_timer insight_timer;
	struct km_timer renew_timer; /* certificate rotation */
	char *mtls_issued_backend;
	int64_t mtls_not_after, mtls_regenerated;
	int mtls_regenerations;
	struct ads_stream *next;
};

/* One mesh's contexts. To regenerate only the proxies a change can affect,
 * the context the last pass compared (`base`) stays alive until the next
 * pass has compared the current one with it: a proxy's config reads its own
 * Dataplane, the MeshServices its outbounds name (their spec, status and
 * endpoints) and the rest of the mesh (policies, Mesh labels, CIDRs), each
 * fingerprinted in the context (context.h). */
struct mesh_entry {
	char *name;
	struct cp_xds_cache *cache; /* parsed Dataplanes and MeshServices, across builds */
	struct cp_xds_share *share; /* encoded outbound resources of ctx */
	struct cp_xds_mesh *ctx;  /* current, or stale when dirty */
	struct cp_xds_mesh *base; /* what on_recompute compared last (may equal ctx) */
	bool dirty;   /* the context is stale: rebuild before the next use */
	bool svc_only; /* ...only through MeshService writes (maybe status alone) */
	bool pending; /* proxies may need regeneration (on_recompute) */
	bool all;     /* a change outside the context (Mesh, zones...): regenerate every proxy */
	bool pki;     /* an identity, trust or Secret changed: compare each proxy's identity key */
	bool waiting; /* a stream connected since the last pass awaits it (first_gen) */
	struct mesh_entry *next;
};

struct deregistration {
	char *mesh, *name;
	uint64_t node_hash;
	struct km_timer timer;
	struct cp_xds_server *srv;
	struct deregistration *next, *prev;
};

/* Ready streams per node (mesh + name), by node hash: closing one of
 * thousands of streams asks whether the node has another, and the answer
 * is almost always no. Slots are never freed (a node that reconnects reuses
 * its slot). */
struct node_slot {
	uint64_t h;
	unsigned n;
};

struct cp_xds_server {
	struct cp_runtime *rt;
	struct node_slot *nodes;
	size_t nodes_cap, nodes_used;
	struct ads_stream *streams;
	struct mesh_entry *meshes;
	struct deregistration *deregs;
	struct km_timer recompute;
	/* the last recompute pass: its length and end (loop ms), for the delay
	 * of the next in a burst of writes */
	uint64_t last_pass_ms, last_pass_end_ms;
	struct km_timer sweep; /* idle after a pass: the share tables' dead entries */
	struct cp_grpc_method methods[3];
	struct cp_xds_stats stats;
	struct cp_xds_builder *builder; /* NULL: every build on the loop */
	struct insight_write *insight_writes; /* asked of the store, not done */
	struct cp_hds *hds;
};

const unsigned cp_xds_gen_bucket_us[CP_XDS_GEN_BUCKETS - 1] = {
    10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 125, 150, 200, 250, 300, 400, 500, 750, 1000, 2000, 5000, 10000, 100000};

const char *const cp_xds_sync_result[CP_XDS_SYNC_RESULTS] = {"changed", "generated", "skip"};
const double cp_xds_snapres_le[CP_XDS_SNAPRES_NB] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048};

/* ---- helpers ---- */

static void fnv_hex(const uint8_t *p, size_t n, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)km_fnv(KM_FNV_INIT, p, n));
}

static struct mesh_entry *mesh_entry(struct cp_xds_server *s, const char *mesh)
{
	for (struct mesh_entry *m = s->meshes; m; m = m->next)
		if (strcmp(m->name, mesh) == 0)
			return m;
	struct mesh_entry *m = km_calloc(1, sizeof(*m));
	m->name = km_strdup(mesh);
	m->cache = cp_xds_cache_new();
	m->share = cp_xds_share_new();
	m->dirty = true;
	m->next = s->meshes;
	s->meshes = m;
	return m;
}

/* The current context of mesh entry <m>, rebuilt when stale. */
static const struct cp_xds_mesh *entry_ctx(struct cp_xds_server *s, struct mesh_entry *m)
{
	if (m->dirty && m->ctx && m->svc_only && !cp_xds_cache_services_moved(s->rt, km_str_c(m->name), m->cache)) {
		/* the generator's status rewrites: the context still holds */
		m->dirty = m->svc_only = false;
		s->stats.contexts_kept++;
		return m->ctx;
	}
	if (m->dirty || !m->ctx) {
		int64_t t0 = cp_xds_thread_cpu_ns();
		if (m->ctx != m->base)
			cp_xds_mesh_free(m->ctx);
		m->ctx = cp_xds_mesh_build(s->rt, km_str_c(m->name), m->cache);
		cp_xds_share_next(m->share);
		m->dirty = false;
		s->stats.contexts++;
		s->stats.context_ns += (uint64_t)(cp_xds_thread_cpu_ns() - t0);
	}
	return m->ctx;
}

/* Drops what no proxy holds any more from every mesh's share table, and
 * has both threads' heaps settle what that freed (km_heap_settle): a while
 * after a pass or a disconnection, when no build runs, instead of at the
 * next change's context and in its first builds (milliseconds each at
 * 10,000 proxies after a pass that replaced every destination's
 * resources, docs/performance.md). */
#define SWEEP_DELAY_MS 100

static void on_sweep(struct km_loop *loop, void *ctx)
{
	struct cp_xds_server *s = ctx;
	size_t dropped = 0;
	for (struct mesh_entry *m = s->meshes; m; m = m->next)
		dropped += cp_xds_share_sweep(m->share);
	s->stats.share_swept += dropped;
	if (!dropped)
		return;
	/* a key, a blob and a listener's body each; the snapshots that held
	 * them went before, in the pass */
	km_heap_settle(3 * dropped);
	if (s->builder)
		cp_xds_builder_settle(s->builder, 3 * dropped);
}

static void sweep_soon(struct cp_xds_server *s)
{
	if (!s->sweep.armed)
		km_loop_timer_start(s->rt->loop, &s->sweep, SWEEP_DELAY_MS, on_sweep, s);
}

/* ---- snapshot ---- */

static void snapshot_free(struct snapshot *sn)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		for (size_t i = 0; i < sn->n[t]; i++)
			cp_xds_blob_unref(sn->res[t][i]);
	free(sn->block);
	memset(sn, 0, sizeof(*sn));
}

static void regenerate(struct ads_stream *st);
static void insight_dirty(struct ads_stream *st);

static void on_renew(struct km_loop *loop, void *ctx)
{
	regenerate(ctx);
}

/* Remembers the certificate for the insight and comes back to rotate it once
 * 4/5 of its lifetime has passed. */
static void note_identity(struct ads_stream *st, const struct cp_pki_leaf *leaf)
{
	if (leaf->issued_now || !st->mtls_issued_backend || st->mtls_not_after != leaf->not_after_ns) {
		free(st->mtls_issued_backend);
		st->mtls_issued_backend = km_strdup(leaf->identity_kri ? leaf->identity_kri : "");
		st->mtls_not_after = leaf->not_after_ns;
		st->mtls_regenerated = leaf->issued_at_ns;
		st->mtls_regenerations++;
		insight_dirty(st);
	}
	int64_t wait_ms = (leaf->renew_at_ns - km_time_now()) / 1000000;
	if (wait_ms < 1)
		wait_ms = 1;
	km_loop_timer_start(st->srv->rt->loop, &st->renew_timer, (uint64_t)wait_ms, on_renew, st);
}

/* Prepares <j>, the build of <st>'s configuration in context <m>: its
 * Dataplane, metadata and certificate (issued here when due; with <defer>,
 * by whoever runs the job, and kept by identity_finish()). Returns 0, or
 * why there is nothing to build: the proxy's Dataplane or mesh is unknown,
 * or its certificate cannot be served now. build_release() frees <j>. */
static int build_prepare(struct ads_stream *st, const struct cp_xds_mesh *m, struct cp_xds_job *j, bool defer)
{
	struct cp_xds_server *s = st->srv;
	memset(j, 0, sizeof(*j));
	j->ud = st;
	if (!m)
		return -KM_E_MESH_NOT_FOUND;
	j->dp = cp_xds_mesh_dataplane(m, km_str_c(st->name));
	if (!j->dp)
		return -KM_E_NOT_FOUND;
	j->a = km_arena_new(16384);
	j->md = st->md; /* parsed once, at the handshake */
	cp_xds_admin_tls_load(s->rt, j->a, j->dp, &j->md);
	j->lm = &st->local;
	struct cp_xds_tls *tls = km_arena_alloc(j->a, sizeof(*tls));
	struct cp_pki_leaf leaf;
	st->id_key = s->rt->pki ? cp_pki_identity_key(s->rt->pki, j->dp->res.mesh, j->dp->labels) : 0;
	int64_t t0 = cp_xds_thread_cpu_ns();
	int irc = defer ? cp_xds_identity_load_deferred(s->rt, j->a, j->dp, tls, &leaf, &j->issue)
			: cp_xds_identity_load(s->rt, j->a, j->dp, tls, &leaf);
	if (irc == 0 && leaf.issued_now)
		j->issue_ns = (uint64_t)(cp_xds_thread_cpu_ns() - t0); /* signed here */
	if (irc == -EINPROGRESS) {
		j->md.tls = tls;
		j->tls = tls;
	} else if (irc == 0) {
		j->md.tls = tls;
		note_identity(st, &leaf);
	} else if (irc != -KM_E_NOT_FOUND && irc != -ENOTSUP && !leaf.pending) {
		/* the proxy has an identity that cannot be served now (CA
		 * missing or broken): keep its last configuration rather than
		 * fall back to plaintext without permissions (upstream: the
		 * sync fails and nothing is pushed) */
		km_warn("xds", "cannot issue the proxy's certificate, keeping its configuration proxy=%s.%s error=%s",
			st->mesh, st->name, leaf.error ? leaf.error : km_strerror(irc));
		return irc;
	}
	return 0;
}

/* Keeps the certificate <j> issued (build_prepare with defer) and notes it
 * on <st>; returns 0, or why none could be issued (the proxy keeps its last
 * configuration, as when build_prepare cannot serve one). */
static int identity_finish(struct ads_stream *st, struct cp_xds_job *j)
{
	if (!j->issue)
		return 0;
	struct cp_pki_leaf leaf;
	int rc = cp_pki_issue_finish(st->srv->rt->pki, j->issue, j->a, &leaf);
	j->issue = NULL;
	if (rc) {
		km_warn("xds", "cannot issue the proxy's certificate, keeping its configuration proxy=%s.%s error=%s",
			st->mesh, st->name, leaf.error ? leaf.error : km_strerror(rc));
		return rc;
	}
	note_identity(st, &leaf);
	return 0;
}

static void build_release(struct cp_xds_job *j)
{
	cp_pki_issue_free(j->issue);
	j->issue = NULL;
	km_buf_fini(&j->errors);
	km_arena_free(j->a);
	j->a = NULL;
}

/* Reports the errors of built <j> and turns its resources into <out>. */
static void build_snapshot(struct ads_stream *st, struct cp_xds_job *j, struct snapshot *out)
{
	struct cp_xds_server *s = st->srv;
	s->stats.resources_shared += j->stats.shared;
	s->stats.resources_encoded += j->stats.encoded;
	s->stats.resources_reused += j->stats.reused;
	for (char *line = j->errors.data, *nl; line && *line; line = nl + 1) {
		nl = strchr(line, '\n');
		*nl = 0;
		km_error("xds", "proxy=%s.%s %s", st->mesh, st->name, line);
	}
	/* the snapshot keeps the blobs in one exact-size block: it stays for
	 * the life of the stream */
	const struct cp_xds_built *built = &j->built;
	memset(out, 0, sizeof(*out));
	size_t total = 0;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		total += built->n[t];
	out->block = km_malloc((total + 1) * sizeof(*out->block));
	for (int t = 0, k = 0; t < CP_XDS_NTYPES; t++) {
		out->res[t] = out->block + k;
		out->n[t] = built->n[t];
		if (built->n[t])
			memcpy(out->res[t], built->res[t], built->n[t] * sizeof(*out->block));
		k += (int)built->n[t];
	}
}

static const struct cp_xds_blob *snap_find(const struct snapshot *sn, int t, const char *name)
{
	for (size_t i = 0; i < sn->n[t]; i++)
		if (strcmp(sn->res[t][i]->name, name) == 0)
			return sn->res[t][i];
	return NULL;
}

static bool snapshot_equal(const struct snapshot *x, const struct snapshot *y)
{
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		if (x->n[t] != y->n[t])
			return false;
		for (size_t i = 0; i < x->n[t]; i++) {
			const struct cp_xds_blob *r = x->res[t][i];
			/* same position and blob: the usual case for shared ones */
			const struct cp_xds_blob *o = i < y->n[t] && y->res[t][i] == r ? r : snap_find(y, t, r->name);
			if (!o || strcmp(o->version, r->version) != 0)
				return false;
		}
	}
	return true;
}

/* ---- subscription state ---- */

/* The entry of <name>, trying index <hint> first: a type's resources keep
 * their order from one snapshot to the next, so the n-th resource is most
 * often the n-th sent. */
static struct name_ver *sent_find_at(struct type_state *ts, const char *name, size_t hint)
{
	if (hint < ts->nsent && strcmp(ts->sent[hint].name, name) == 0)
		return &ts->sent[hint];
	uint64_t h = name_hash(km_str_c(name));
	for (size_t i = 0; i < ts->nsent; i++)
		if (ts->sent[i].h == h && strcmp(ts->sent[i].name, name) == 0)
			return &ts->sent[i];
	return NULL;
}

static struct name_ver *sent_find(struct type_state *ts, const char *name)
{
	return sent_find_at(ts, name, SIZE_MAX);
}

static void sent_set(struct type_state *ts, const char *name, const char *version)
{
	struct name_ver *nv = sent_find(ts, name);
	if (!nv) {
		if (ts->nsent == ts->capsent) {
			ts->capsent = ts->capsent ? ts->capsent * 2 : 16;
			ts->sent = km_realloc(ts->sent, ts->capsent * sizeof(*ts->sent));
		}
		nv = &ts->sent[ts->nsent++];
		nv->name = km_strdup(name);
		nv->h = name_hash(km_str_c(name));
	}
	snprintf(nv->version, sizeof(nv->version), "%s", version);
}

static void sent_del(struct type_state *ts, const char *name)
{
	uint64_t h = name_hash(km_str_c(name));
	for (size_t i = 0; i < ts->nsent; i++)
		if (ts->sent[i].h == h && strcmp(ts->sent[i].name, name) == 0) {
			free(ts->sent[i].name);
			ts->sent[i] = ts->sent[--ts->nsent];
			return;
		}
}

static bool subscribed_to(const struct type_state *ts, const char *name)
{
	if (ts->wildcard)
		return true;
	for (size_t i = 0; i < ts->nnames; i++)
		if (strcmp(ts->names[i], name) == 0)
			return true;
	return false;
}

static void names_add(struct type_state *ts, const char *name)
{
	for (size_t i = 0; i < ts->nnames; i++)
		if (strcmp(ts->names[i], name) == 0)
			return;
	ts->names = km_realloc(ts->names, (ts->nnames + 1) * sizeof(*ts->names));
	ts->names[ts->nnames++] = km_strdup(name);
}

static void names_del(struct type_state *ts, const char *name)
{
	for (size_t i = 0; i < ts->nnames; i++)
		if (strcmp(ts->names[i], name) == 0) {
			free(ts->names[i]);
			ts->names[i] = ts->names[--ts->nnames];
			return;
		}
}

static void names_clear(struct type_state *ts)
{
	for (size_t i = 0; i < ts->nnames; i++)
		free(ts->names[i]);
	free(ts->names);
	ts->names = NULL;
	ts->nnames = 0;
}

static void type_state_fini(struct type_state *ts, struct km_loop *loop)
{
	km_loop_timer_stop(loop, &ts->retry);
	names_clear(ts);
	for (size_t i = 0; i < ts->nsent; i++)
		free(ts->sent[i].name);
	free(ts->sent);
}

/* ---- sending ---- */

static void next_nonce(struct ads_stream *st, struct type_state *ts)
{
	snprintf(ts->nonce, sizeof(ts->nonce), "%llu", (unsigned long long)++st->nonce_seq);
}

static void send_msg(struct ads_stream *st, struct type_state *ts, const ProtobufCMessage *m)
{
	/* packed straight into the stream's output */
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = cp_grpc_send_begin(st->gs, n);
	if (p) {
		protobuf_c_message_pack(m, p);
		cp_grpc_send_done(st->gs);
	}
	st->srv->stats.responses_sent++;
	st->srv->stats.responses_by_type[ts->type]++;
	if (!ts->ready_ms) /* the oldest unconfirmed one */
		ts->ready_ms = km_loop_now_ms();
}

/* An ACK or NACK of type state <ts>: how long the configuration took from
 * its response to the proxy's answer (upstream's xds_delivery). */
static void delivered(struct cp_xds_stats *stats, struct type_state *ts)
{
	if (!ts->ready_ms)
		return;
	struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, stats->delivery_counts, stats->delivery_sum_ms};
	km_prom_observe(&h, (double)(km_loop_now_ms() - ts->ready_ms), 1);
	stats->delivery_sum_ms = h.sum;
	ts->ready_ms = 0;
}

static bool push(struct ads_stream *st, int t, bool force);

/* Delta: send what the client lacks for type <t>; <force> resends everything
 * it is subscribed to. Returns true when a response went out. */
static bool push_delta(struct ads_stream *st, int t, bool force)
{
	struct type_state *ts = &st->ts[t];
	if (!ts->subscribed || !st->snap.block)
		return false;
	struct km_arena *a = km_arena_new(4096);
	size_t n = st->snap.n[t];
	Envoy__Service__Discovery__V3__Resource **rs = km_arena_alloc(a, (n + 1) * sizeof(*rs));
	size_t nr = 0;
	bool updated = false; /* a cluster the proxy had changed */
	for (size_t i = 0; i < n; i++) {
		const struct cp_xds_blob *r = st->snap.res[t][i];
		if (!subscribed_to(ts, r->name))
			continue;
		struct name_ver *have = sent_find_at(ts, r->name, i);
		if (!force && have && strcmp(have->version, r->version) == 0)
			continue;
		if (t == CP_XDS_CLUSTER && have) {
			/* Envoy warms an updated EDS cluster until it gets its load
			 * assignment, which it does not ask for again (the name
			 * stays subscribed): without a resend it waits for its
			 * initial fetch timeout (15 s) and takes its cached copy */
			sent_del(&st->ts[CP_XDS_ENDPOINT], r->name);
			updated = true;
		}
		Envoy__Service__Discovery__V3__Resource *res = km_arena_alloc(a, sizeof(*res));
		envoy__service__discovery__v3__resource__init(res);
		Google__Protobuf__Any *any = km_arena_alloc(a, sizeof(*any));
		google__protobuf__any__init(any);
		any->type_url = (char *)cp_xds_type_url[t];
		any->value.data = (uint8_t *)r->bytes;
		any->value.len = r->len;
		res->name = (char *)r->name;
		res->version = (char *)r->version;
		res->resource = any;
		rs[nr++] = res;
	}
	char **removed = km_arena_alloc(a, (ts->nsent + 1) * sizeof(*removed));
	size_t nrem = 0;
	for (size_t i = 0; i < ts->nsent; i++)
		if (!(i < n && strcmp(st->snap.res[t][i]->name, ts->sent[i].name) == 0) &&
		    !snap_find(&st->snap, t, ts->sent[i].name))
			removed[nrem++] = km_arena_strdup(a, ts->sent[i].name);
	bool sent = false;
	if (nr || nrem) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
		    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
		next_nonce(st, ts);
		resp.type_url = (char *)cp_xds_type_url[t];
		resp.n_resources = nr;
		resp.resources = rs;
		resp.n_removed_resources = nrem;
		resp.removed_resources = removed;
		resp.nonce = ts->nonce;
		resp.system_version_info = ts->nonce;
		send_msg(st, ts, &resp.base);
		for (size_t i = 0; i < nr; i++)
			sent_set(ts, rs[i]->name, rs[i]->version);
		for (size_t i = 0; i < nrem; i++)
			sent_del(ts, removed[i]);
		ts->responses++;
		st->srv->stats.resources_sent += nr;
		sent = true;
	}
	km_arena_free(a);
	if (updated)
		push(st, CP_XDS_ENDPOINT, false);
	return sent;
}

static void sotw_version(const struct snapshot *sn, int t, const struct type_state *ts, char out[17])
{
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < sn->n[t]; i++)
		if (ts->wildcard || subscribed_to(ts, sn->res[t][i]->name))
			km_buf_printf(&b, "%s=%s;", sn->res[t][i]->name, sn->res[t][i]->version);
	fnv_hex((const uint8_t *)km_buf_cstr(&b), b.len, out);
	km_buf_fini(&b);
}

static bool push_sotw(struct ads_stream *st, int t, bool force)
{
	struct type_state *ts = &st->ts[t];
	if (!ts->subscribed || !st->snap.block)
		return false;
	char version[17];
	sotw_version(&st->snap, t, ts, version);
	if (!force && strcmp(version, ts->sotw_version) == 0)
		return false;
	struct km_arena *a = km_arena_new(4096);
	size_t n = st->snap.n[t], nr = 0;
	Google__Protobuf__Any **anys = km_arena_alloc(a, (n + 1) * sizeof(*anys));
	for (size_t i = 0; i < n; i++) {
		const struct cp_xds_blob *r = st->snap.res[t][i];
		if (!ts->wildcard && !subscribed_to(ts, r->name))
			continue;
		Google__Protobuf__Any *any = km_arena_alloc(a, sizeof(*any));
		google__protobuf__any__init(any);
		any->type_url = (char *)cp_xds_type_url[t];
		any->value.data = (uint8_t *)r->bytes;
		any->value.len = r->len;
		anys[nr++] = any;
	}
	Envoy__Service__Discovery__V3__DiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	next_nonce(st, ts);
	resp.version_info = version;
	resp.type_url = (char *)cp_xds_type_url[t];
	resp.n_resources = nr;
	resp.resources = anys;
	resp.nonce = ts->nonce;
	send_msg(st, ts, &resp.base);
	/* clusters the proxy had changed: their load assignments again (see
	 * push_delta) */
	bool updated = t == CP_XDS_CLUSTER && ts->sotw_version[0];
	snprintf(ts->sotw_version, sizeof(ts->sotw_version), "%s", version);
	ts->responses++;
	st->srv->stats.resources_sent += nr;
	km_arena_free(a);
	if (updated)
		push(st, CP_XDS_ENDPOINT, true);
	return true;
}

static bool push(struct ads_stream *st, int t, bool force)
{
	if (st->ts[t].retry.armed)
		return false; /* backing off after a NACK */
	return st->delta ? push_delta(st, t, force) : push_sotw(st, t, force);
}

static void push_all(struct ads_stream *st)
{
	cp_grpc_hold(st->gs);
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		push(st, t, false);
	cp_grpc_release(st->gs);
}

static void observe(uint64_t *hist, uint64_t *sum, uint64_t ns)
{
	size_t b = 0;
	while (b < CP_XDS_GEN_BUCKETS - 1 && ns > (uint64_t)cp_xds_gen_bucket_us[b] * 1000)
		b++;
	hist[b]++;
	*sum += ns;
}

/* Takes the outcome of a build: <rc> from build_prepare(), <j> built when
 * it is 0, <ns> the CPU time both took. Counts it (a certificate signed for
 * it apart: xds_certificate_issue_seconds), and sends what changed. */
static void install(struct ads_stream *st, int rc, struct cp_xds_job *j, uint64_t ns)
{
	struct cp_xds_stats *stats = &st->srv->stats;
	uint64_t issue = j->issue_ns < ns ? j->issue_ns : ns;
	if (issue)
		observe(stats->issue_hist, &stats->issue_sum_ns, issue);
	observe(stats->gen_hist, &stats->gen_sum_ns, ns - issue);
	stats->regenerations++;
	if (rc) {
		stats->gen_errors++;
		km_debug("xds", "no configuration for proxy yet proxy=%s.%s error=%s", st->mesh, st->name,
			 km_strerror(rc));
		return;
	}
	struct snapshot next;
	build_snapshot(st, j, &next);
	bool same = st->snap.block && snapshot_equal(&st->snap, &next);
	int result = same ? CP_XDS_SYNC_GENERATED : CP_XDS_SYNC_CHANGED;
	struct km_prom_hist h = {km_prom_def_le, KM_PROM_DEF_NB, stats->sync_counts[result], stats->sync_sum_ms[result]};
	km_prom_observe(&h, (double)ns / 1e6, 1);
	stats->sync_sum_ms[result] = h.sum;
	if (same) {
		st->srv->stats.regenerations_noop++;
		snapshot_free(&next);
		return;
	}
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		if (next.n[t]) {
			struct km_prom_hist r = {cp_xds_snapres_le, CP_XDS_SNAPRES_NB, stats->snapres_counts[t],
						 stats->snapres_sum[t]};
			km_prom_observe(&r, (double)next.n[t], 1);
			stats->snapres_sum[t] = r.sum;
		}
	snapshot_free(&st->snap);
	st->snap = next;
	sweep_soon(st->srv); /* what the old one held may be held no more */
	push_all(st);
}

/* Recomputes the proxy on this thread; sends only what changed. */
static void regenerate(struct ads_stream *st)
{
	if (!st->ready || st->closed)
		return;
	st->first_gen = false;
	struct cp_xds_server *s = st->srv;
	struct mesh_entry *me = mesh_entry(s, st->mesh);
	const struct cp_xds_mesh *m = entry_ctx(s, me); /* counted as contexts */
	/* the thread's CPU time: what building costs, not the time the
	 * thread was preempted meanwhile */
	int64_t t0 = cp_xds_thread_cpu_ns();
	struct cp_xds_job j;
	int rc = build_prepare(st, m, &j, false);
	if (!rc)
		cp_xds_job_run(&j, m, me->share);
	install(st, rc, &j, (uint64_t)(cp_xds_thread_cpu_ns() - t0));
	build_release(&j);
}

/* Regenerates <todo>, all of mesh <me> with context <m>, on the builder
 * thread: the loop prepares a window of proxies ahead and sends each one's
 * configuration as soon as it is built, while the thread builds the next.
 * The loop leaves <m> and the mesh's share table alone meanwhile (no
 * entry_ctx() call), so a write made during the pass is seen by the next. */
#define PASS_WINDOW 256
/* A lone proxy is built on the loop: nothing to overlap with. */
#define PASS_MIN_BUILDER 2
struct pass_slot {
	struct cp_xds_job job;
	struct ads_stream *st; /* NULL: closed before its turn */
	int rc;
	uint64_t prep_ns;
};

static void regenerate_pass(struct cp_xds_server *s, struct mesh_entry *me, const struct cp_xds_mesh *m,
			    struct ads_stream **todo, size_t n)
{
	struct pass_slot *ring = km_calloc(PASS_WINDOW, sizeof(*ring));
	cp_xds_builder_begin(s->builder, m, me->share);
	size_t prepared = 0, installed = 0;
	while (installed < n) {
		for (; prepared < n && prepared - installed < PASS_WINDOW; prepared++) {
			struct pass_slot *ps = &ring[prepared % PASS_WINDOW];
			struct ads_stream *st = todo[prepared];
			memset(ps, 0, sizeof(*ps));
			if (!st->ready || st->closed)
				continue;
			ps->st = st;
			st->first_gen = false;
			int64_t t0 = cp_xds_thread_cpu_ns();
			ps->rc = build_prepare(st, m, &ps->job, true);
			ps->prep_ns = (uint64_t)(cp_xds_thread_cpu_ns() - t0);
			if (!ps->rc)
				cp_xds_builder_submit(s->builder, &ps->job);
		}
		struct pass_slot *ps = &ring[installed++ % PASS_WINDOW];
		if (!ps->st)
			continue;
		if (!ps->rc && cp_xds_builder_next(s->builder) != &ps->job) {
			km_error("xds", "the builder thread returned a job out of order");
			abort();
		}
		if (!ps->st->closed) {
			if (!ps->rc)
				ps->rc = identity_finish(ps->st, &ps->job);
			install(ps->st, ps->rc, &ps->job, ps->prep_ns + ps->job.cpu_ns);
		}
		build_release(&ps->job);
	}
	struct cp_xds_builder_stats bs;
	cp_xds_builder_end(s->builder, &bs);
	km_debug("xds", "builder pass mesh=%s proxies=%zu built_on_loop=%llu loop_waits=%llu thread_waits=%llu",
		 me->name, n, (unsigned long long)bs.taker_built, (unsigned long long)bs.taker_waits,
		 (unsigned long long)bs.thread_waits);
	free(ring);
}

/* ---- insights ---- */

static struct km_json *type_stats(struct km_arena *a, const struct type_state *ts)
{
	struct km_json *o = km_json_object(a);
	if (ts->responses)
		km_json_set(a, o, "responsesSent", km_json_cstring(a, km_arena_printf(a, "%llu", (unsigned long long)ts->responses)));
	if (ts->acks)
		km_json_set(a, o, "responsesAcknowledged", km_json_cstring(a, km_arena_printf(a, "%llu", (unsigned long long)ts->acks)));
	if (ts->nacks)
		km_json_set(a, o, "responsesRejected", km_json_cstring(a, km_arena_printf(a, "%llu", (unsigned long long)ts->nacks)));
	return o;
}

/* One DataplaneInsight write (cp_store_rmw): the stream's subscription as
 * it was when the write was asked for, as JSON text, merged into whatever
 * the store holds when it runs (other instances' subscriptions stay). It
 * does not reference the stream, which may be gone by then. */
struct insight_write {
	struct cp_store_rmw op;
	struct cp_xds_server *srv;
	struct insight_write *prev, *next; /* the server's, until done */
	char *id, *mine, *metadata, *mtls; /* in one allocation with the struct */
	int limit;
	bool same; /* told the memo this write changes none of its facts */
};

/* <subs> with this stream's subscription <mine> in place of its earlier
 * one (or added), then only the last ones kept
 * (metrics.dataplane.subscriptionLimit). */
static void put_subscription(struct insight_write *iw, struct km_arena *a, struct km_json *subs,
			     struct km_json *mine)
{
	size_t i = 0;
	while (i < subs->len && !km_str_eqc(km_json_get_string(subs->items[i], "id"), iw->id))
		i++;
	if (i < subs->len)
		subs->items[i] = mine;
	else
		km_json_array_push(a, subs, mine);
	if (iw->limit > 0 && subs->len > (size_t)iw->limit) {
		size_t drop = subs->len - (size_t)iw->limit;
		memmove(subs->items, subs->items + drop, (size_t)iw->limit * sizeof(*subs->items));
		subs->len = (size_t)iw->limit;
	}
}

/* What the controllers derive from an insight whose subscriptions are
 * <subs> (cp_insight_fact_of reads nothing else). */
static void subs_fact(struct km_arena *a, struct km_json *subs, struct cp_insight_fact *f)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "subscriptions", subs);
	cp_insight_fact_of(o, f);
}

/* The stored spec <cur> with <iw> merged in, as text, parsing only its
 * subscriptions: the node metadata and mTLS come from the write when it
 * has them (text the server wrote), every other member is copied as
 * stored. False when <cur> is not an object this can splice (a key
 * written with escapes or twice): the caller merges the parsed tree. */
#define SPLICE_MAX_MEMBERS 32

static bool insight_splice(struct insight_write *iw, struct km_arena *a, struct km_str cur, struct km_json *mine,
			   struct km_buf *out, struct cp_insight_fact *before, struct cp_insight_fact *after)
{
	struct km_json_span m[SPLICE_MAX_MEMBERS];
	size_t n = 0;
	if (cur.len && km_json_members(cur, m, SPLICE_MAX_MEMBERS, &n) != 0)
		return false;
	int subs_at = -1, md_at = -1, mtls_at = -1;
	for (size_t i = 0; i < n; i++) {
		if (memchr(m[i].key.ptr, '\\', m[i].key.len))
			return false;
		for (size_t k = 0; k < i; k++)
			if (km_str_eq(m[k].key, m[i].key))
				return false;
		if (km_str_eqc(m[i].key, "subscriptions"))
			subs_at = (int)i;
		else if (km_str_eqc(m[i].key, "metadata"))
			md_at = (int)i;
		else if (km_str_eqc(m[i].key, "mTLS"))
			mtls_at = (int)i;
	}
	struct km_json *subs = NULL;
	if (subs_at >= 0)
		km_json_parse(a, m[subs_at].value.ptr, m[subs_at].value.len, &subs, NULL);
	if (!subs || subs->kind != KM_JSON_ARRAY)
		subs = km_json_array(a);
	subs_fact(a, subs, before);
	put_subscription(iw, a, subs, mine);
	subs_fact(a, subs, after);
	km_buf_putc(out, '{');
	for (size_t i = 0; i < n; i++) {
		if (i)
			km_buf_putc(out, ',');
		km_buf_putc(out, '"');
		km_buf_append(out, m[i].key.ptr, m[i].key.len);
		km_buf_append(out, "\":", 2);
		if ((int)i == subs_at)
			km_json_write(out, subs, 0, 0);
		else if ((int)i == md_at && iw->metadata)
			km_buf_puts(out, iw->metadata);
		else if ((int)i == mtls_at && iw->mtls)
			km_buf_puts(out, iw->mtls);
		else
			km_buf_append(out, m[i].value.ptr, m[i].value.len);
	}
	/* members the stored spec lacked, after the others (as km_json_set
	 * adds them) */
	const char *sep = n ? "," : "";
	if (subs_at < 0) {
		km_buf_printf(out, "%s\"subscriptions\":", sep);
		km_json_write(out, subs, 0, 0);
		sep = ",";
	}
	if (md_at < 0 && iw->metadata) {
		km_buf_printf(out, "%s\"metadata\":%s", sep, iw->metadata);
		sep = ",";
	}
	if (mtls_at < 0 && iw->mtls)
		km_buf_printf(out, "%s\"mTLS\":%s", sep, iw->mtls);
	km_buf_putc(out, '}');
	return true;
}

static bool insight_merge(struct cp_store_rmw *op, struct km_arena *a, const struct km_resource *cur,
			  struct km_resource *out)
{
	struct insight_write *iw = (struct insight_write *)op;
	struct cp_memo *memo = iw->srv->rt->insight_memo;
	if (iw->same) { /* read again after a conflict: decided anew below */
		cp_memo_same_cancel(memo, op->mesh, op->name);
		iw->same = false;
	}
	struct km_json *mine = NULL;
	km_json_parse(a, iw->mine, strlen(iw->mine), &mine, NULL);
	/* what the controllers derive from it, before and after the change */
	struct cp_insight_fact before, after;
	struct km_resource_doc d = {.type = op->type, .mesh = op->mesh, .name = op->name};
	struct km_buf text = KM_BUF_INIT;
	if (insight_splice(iw, a, cur ? cur->spec : KM_STR(""), mine, &text, &before, &after)) {
		km_resource_from_doc(a, &d, out);
		out->spec = (struct km_str){km_arena_strndup(a, km_buf_cstr(&text), text.len), text.len};
	} else {
		struct km_json *spec = NULL;
		km_json_parse(a, cur->spec.ptr, cur->spec.len, &spec, NULL);
		if (!spec || spec->kind != KM_JSON_OBJECT)
			spec = km_json_object(a);
		cp_insight_fact_of(spec, &before);
		struct km_json *subs = km_json_get(spec, "subscriptions");
		if (!subs || subs->kind != KM_JSON_ARRAY) {
			subs = km_json_array(a);
			km_json_set(a, spec, "subscriptions", subs);
		}
		put_subscription(iw, a, subs, mine);
		cp_insight_fact_of(spec, &after);
		struct km_json *md = NULL;
		if (iw->metadata)
			km_json_parse(a, iw->metadata, strlen(iw->metadata), &md, NULL);
		if (md)
			km_json_set(a, spec, "metadata", md);
		struct km_json *mtls = NULL;
		if (iw->mtls)
			km_json_parse(a, iw->mtls, strlen(iw->mtls), &mtls, NULL);
		if (mtls)
			km_json_set(a, spec, "mTLS", mtls);
		d.spec = spec;
		km_resource_from_doc(a, &d, out);
	}
	km_buf_fini(&text);
	/* most writes only move ACK counters: the controllers need not read
	 * them again (cp_memo_same) */
	if (memo && cur && memcmp(&before, &after, sizeof(before)) == 0) {
		cp_memo_same(memo, op->mesh, op->name);
		iw->same = true;
	}
	return true;
}

static void insight_done(struct cp_store_rmw *op, int rc)
{
	struct insight_write *iw = (struct insight_write *)op;
	struct cp_xds_server *s = iw->srv;
	if (rc && iw->same)
		cp_memo_same_cancel(s->rt->insight_memo, op->mesh, op->name);
	if (rc && rc != -KM_E_MESH_NOT_FOUND)
		km_debug("xds", "cannot write dataplane insight proxy=%.*s.%.*s error=%s", (int)op->mesh.len,
			 op->mesh.ptr, (int)op->name.len, op->name.ptr, km_strerror(rc));
	if (iw->prev)
		iw->prev->next = iw->next;
	else
		s->insight_writes = iw->next;
	if (iw->next)
		iw->next->prev = iw->prev;
	free(iw);
}

/* Appends <v> as compact JSON and a NUL; returns where it starts. */
static size_t put_json(struct km_buf *b, const struct km_json *v)
{
	size_t at = b->len;
	km_json_write(b, v, 0, 0);
	km_buf_putc(b, '\0');
	return at;
}

/* Asks the store to write the proxy's DataplaneInsight: this stream's
 * subscription (counters, versions), the node metadata and mTLS state. */
static void write_insight(struct ads_stream *st, bool disconnected)
{
	struct cp_xds_server *s = st->srv;
	struct km_arena *a = km_arena_new(4096);
	int64_t now = km_time_now();
	struct type_state total = {0};
	for (int i = 0; i < CP_XDS_NTYPES; i++) {
		total.responses += st->ts[i].responses;
		total.acks += st->ts[i].acks;
		total.nacks += st->ts[i].nacks;
	}
	struct km_json *mine = km_json_object(a);
	km_json_set(a, mine, "id", km_json_cstring(a, st->id));
	km_json_set(a, mine, "controlPlaneInstanceId", km_json_cstring(a, s->rt->instance_id));
	km_json_set(a, mine, "connectTime", km_json_cstring(a, km_time_format(a, st->connect_time)));
	if (disconnected)
		km_json_set(a, mine, "disconnectTime", km_json_cstring(a, km_time_format(a, now)));
	km_json_set(a, mine, "status",
		    km_json_fmt(a, "{\"lastUpdateTime\":%s,\"total\":%J,\"cds\":%J,\"eds\":%J,\"lds\":%J,\"rds\":{}}",
				km_time_format(a, now), type_stats(a, &total), type_stats(a, &st->ts[CP_XDS_CLUSTER]),
				type_stats(a, &st->ts[CP_XDS_ENDPOINT]), type_stats(a, &st->ts[CP_XDS_LISTENER])));
	km_json_set(a, mine, "version",
		    km_json_fmt(a, "{\"kumaDp\":{\"version\":%s},\"envoy\":{\"version\":%s}}",
				st->kuma_dp_version ? st->kuma_dp_version : "",
				st->envoy_version ? st->envoy_version : ""));
	/* the struct, then the strings it points to */
	struct km_buf b = KM_BUF_INIT;
	km_buf_extend(&b, sizeof(struct insight_write));
	size_t mesh_at = km_buf_put_strz(&b, km_str_c(st->mesh));
	size_t name_at = km_buf_put_strz(&b, km_str_c(st->name));
	size_t id_at = km_buf_put_strz(&b, km_str_c(st->id));
	size_t mine_at = put_json(&b, mine), md_at = 0, mtls_at = 0;
	if (st->metadata)
		md_at = km_buf_put_strz(&b, km_str_c(st->metadata));
	if (st->mtls_issued_backend)
		mtls_at = put_json(
		    &b, km_json_fmt(a, "{\"certificateExpirationTime\":%s,\"lastCertificateRegeneration\":%s,"
				       "\"certificateRegenerations\":%d,\"issuedBackend\":%s}",
				    km_time_format(a, st->mtls_not_after), km_time_format(a, st->mtls_regenerated),
				    st->mtls_regenerations, st->mtls_issued_backend));
	km_arena_free(a);
	char *base = km_buf_steal(&b);
	struct insight_write *iw = (struct insight_write *)(void *)base;
	memset(iw, 0, sizeof(*iw));
	iw->srv = s;
	iw->id = base + id_at;
	iw->mine = base + mine_at;
	iw->metadata = md_at ? base + md_at : NULL;
	iw->mtls = mtls_at ? base + mtls_at : NULL;
	iw->limit = s->rt->cfg ? s->rt->cfg->metrics.dataplane.subscription_limit : 2;
	iw->op.type = km_rtype_by_name(KM_STR("DataplaneInsight"));
	iw->op.mesh = km_str_c(base + mesh_at);
	iw->op.name = km_str_c(base + name_at);
	iw->op.merge = insight_merge;
	iw->op.done = insight_done;
	iw->next = s->insight_writes;
	if (iw->next)
		iw->next->prev = iw;
	s->insight_writes = iw;
	cp_store_rmw(s->rt->store, &iw->op); /* its event is ignored: an insight type */
}

static void on_insight_timer(struct km_loop *loop, void *ctx)
{
	struct ads_stream *st = ctx;
	if (!st->closed)
		write_insight(st, false);
}

/* Counters are flushed at most once per status flush interval. */
static void insight_dirty(struct ads_stream *st)
{
	if (st->insight_timer.armed)
		return;
	int64_t iv = st->srv->rt->cfg ? st->srv->rt->cfg->xds_server.dataplane_status_flush_interval : 0;
	uint64_t ms = iv > 0 ? (uint64_t)(iv / 1000000) : 10000;
	km_loop_timer_start(st->srv->rt->loop, &st->insight_timer, ms, on_insight_timer, st);
}

/* ---- registration ---- */

static uint64_t node_hash(const char *mesh, const char *name);

static void dereg_free(struct cp_xds_server *s, struct deregistration *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		s->deregs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	km_loop_timer_stop(s->rt->loop, &d->timer);
	free(d->mesh);
	free(d->name);
	free(d);
}

static void cancel_deregistration(struct cp_xds_server *s, const char *mesh, const char *name)
{
	uint64_t h = node_hash(mesh, name);
	for (struct deregistration *d = s->deregs; d; d = d->next)
		if (d->node_hash == h && strcmp(d->mesh, mesh) == 0 && strcmp(d->name, name) == 0) {
			dereg_free(s, d);
			return;
		}
}

static uint64_t node_hash(const char *mesh, const char *name)
{
	return km_fnv(km_fnv_sep(km_fnv(KM_FNV_INIT, mesh, strlen(mesh)), 0), name, strlen(name));
}

static struct node_slot *node_slot(struct cp_xds_server *s, uint64_t h, bool create)
{
	if (create && (s->nodes_used + 1) * 2 > s->nodes_cap) {
		size_t cap = s->nodes_cap ? s->nodes_cap * 2 : 1024;
		struct node_slot *v = km_calloc(cap, sizeof(*v));
		for (size_t i = 0; i < s->nodes_cap; i++) {
			if (!s->nodes[i].h)
				continue;
			size_t j = s->nodes[i].h & (cap - 1);
			while (v[j].h)
				j = (j + 1) & (cap - 1);
			v[j] = s->nodes[i];
		}
		free(s->nodes);
		s->nodes = v;
		s->nodes_cap = cap;
	}
	if (!s->nodes_cap)
		return NULL;
	h |= 1; /* 0 marks a free slot */
	for (size_t j = h & (s->nodes_cap - 1);; j = (j + 1) & (s->nodes_cap - 1)) {
		if (s->nodes[j].h == h)
			return &s->nodes[j];
		if (!s->nodes[j].h) {
			if (!create)
				return NULL;
			s->nodes[j].h = h;
			s->nodes_used++;
			return &s->nodes[j];
		}
	}
}

static bool stream_for(struct cp_xds_server *s, const char *mesh, const char *name)
{
	uint64_t h = node_hash(mesh, name);
	struct node_slot *ns = node_slot(s, h, false);
	if (!ns || !ns->n)
		return false;
	for (struct ads_stream *o = s->streams; o; o = o->next)
		if (o->node_hash == h && o->ready && !o->closed && strcmp(o->mesh, mesh) == 0 &&
		    strcmp(o->name, name) == 0)
			return true;
	return false;
}

/* True when the proxy's DataplaneInsight says another kuma-cp instance
 * holds its stream now (it reconnected elsewhere within the delay). */
static bool connected_elsewhere(struct cp_xds_server *s, const char *mesh, const char *name)
{
	struct km_arena *a = km_arena_new(4096);
	struct km_resource r;
	bool other = false;
	if (cp_store_get(s->rt->store, a, km_rtype_by_name(KM_STR("DataplaneInsight")), km_str_c(mesh),
			 km_str_c(name), &r) == 0) {
		struct km_json *spec = NULL;
		if (r.spec.len && km_json_parse(a, r.spec.ptr, r.spec.len, &spec, NULL) == 0) {
			struct km_json *subs = km_json_get(spec, "subscriptions");
			if (subs && subs->kind == KM_JSON_ARRAY && subs->len) {
				struct km_json *last = subs->items[subs->len - 1];
				struct km_str id = km_json_get_string(last, "controlPlaneInstanceId");
				other = id.len && !km_str_eqc(id, s->rt->instance_id) &&
					!km_json_get(last, "disconnectTime");
			}
		}
	}
	km_arena_free(a);
	return other;
}

static void on_deregister(struct km_loop *loop, void *ctx)
{
	struct deregistration *d = ctx;
	struct cp_xds_server *s = d->srv;
	if (!stream_for(s, d->mesh, d->name) && connected_elsewhere(s, d->mesh, d->name)) {
		km_info("xds", "dataplane kept: it is connected to another control plane proxy=%s.%s", d->mesh,
			d->name);
	} else if (!stream_for(s, d->mesh, d->name)) {
		int rc = cp_store_remove(s->rt->store, km_rtype_by_name(KM_STR("Dataplane")), km_str_c(d->mesh),
					 km_str_c(d->name), 0);
		if (rc == 0)
			km_info("xds", "dataplane deregistered after its stream closed proxy=%s.%s", d->mesh, d->name);
	}
	dereg_free(s, d);
}

/* kuma-dp sent its Dataplane in the node metadata: create or update it. */
static int register_dataplane(struct ads_stream *st, struct km_arena *a, const struct km_json *md,
			      struct km_buf *err)
{
	struct km_str res = km_json_get_string(md, "dataplane.resource");
	if (!res.len)
		return 0;
	struct km_json *doc;
	struct km_resource_doc d;
	if (km_json_parse(a, res.ptr, res.len, &doc, err) ||
	    km_resource_doc_from_json(a, doc, km_rtype_by_name(KM_STR("Dataplane")), &d, err))
		return -KM_E_PARSE;
	d.mesh = km_str_c(st->mesh);
	d.name = km_str_c(st->name);
	struct km_violations v;
	km_violations_init(&v, a);
	if (km_validate_resource(a, &d, &v) != 0 || v.len) {
		km_buf_printf(err, "invalid dataplane: %s: %s", v.len ? v.items[0].field : "",
			      v.len ? v.items[0].message : "");
		return -KM_E_INVALID;
	}
	struct km_resource cur;
	int rc = cp_store_get(st->srv->rt->store, a, d.type, d.mesh, d.name, &cur);
	if (rc == 0) {
		struct km_violations uv;
		km_violations_init(&uv, a);
		rc = cp_manager_update(st->srv->rt, a, &cur, &d, &uv);
	} else {
		rc = cp_manager_create(st->srv->rt, a, &d, &v);
	}
	if (rc) {
		km_buf_printf(err, "cannot register dataplane: %s", km_strerror(rc));
		return rc;
	}
	st->registered = true;
	cancel_deregistration(st->srv, st->mesh, st->name);
	return 0;
}
/* A copy of <s> in <a> (the request's arena dies after the first request). */
static struct km_str kept_str(struct km_arena *a, struct km_str s)
{
	return (struct km_str){km_arena_strndup(a, s.ptr ? s.ptr : "", s.len), s.len};
}


/* First request: node identity, authentication, registration, insight. */
static int handshake(struct ads_stream *st, const Envoy__Config__Core__V3__Node *node, struct km_arena *a)
{
	if (!node || !node->id || !*node->id) {
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "the first request must carry the node");
		return -1;
	}
	const char *dot = strchr(node->id, '.');
	if (!dot || dot == node->id || !dot[1]) {
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "node id must be <mesh>.<name>");
		return -1;
	}
	st->mesh = km_strndup(node->id, (size_t)(dot - node->id));
	st->name = km_strdup(dot + 1);
	st->self = km_str_c(st->name);
	st->self_h = name_hash(st->self);
	st->node_hash = node_hash(st->mesh, st->name);
	struct km_json *md = node->metadata ? km_pb_to_json(a, &node->metadata->base) : NULL;
	/* the parts generation reads, kept parsed for the life of the stream */
	st->md_a = km_arena_new(256);
	cp_xds_metadata_node(a, md, &st->md);
	st->md.raw = NULL;
	st->md.workdir = kept_str(st->md_a, st->md.workdir);
	st->md.features = km_json_clone(st->md_a, st->md.features);
	st->md.metrics_cert = kept_str(st->md_a, st->md.metrics_cert);
	st->md.metrics_key = kept_str(st->md_a, st->md.metrics_key);
	st->md.host_ip = kept_str(st->md_a, st->md.host_ip);
	st->md.admin_address = kept_str(st->md_a, st->md.admin_address);
	st->md.admin_socket = kept_str(st->md_a, st->md.admin_socket);
	if (md) {
		struct km_buf b = KM_BUF_INIT;
		km_json_write(&b, md, 0, 0);
		st->metadata = km_buf_steal(&b);
		st->proxyless = strstr(st->metadata, "\"proxyless\"") != NULL;
		struct km_json *ver = km_json_get(md, "version");
		struct km_str kdp = km_json_get_string(km_json_get(ver, "kumaDp"), "version");
		struct km_str env = km_json_get_string(km_json_get(ver, "envoy"), "version");
		st->kuma_dp_version = km_strndup(kdp.ptr ? kdp.ptr : "", kdp.len);
		st->envoy_version = km_strndup(env.ptr ? env.ptr : "", env.len);
	}
	/* the Dataplane's labels for token binding: the announced one, else the stored one */
	struct km_json *labels = NULL;
	struct km_str res = km_json_get_string(md, "dataplane.resource");
	struct km_json *doc = NULL;
	if (res.len && km_json_parse(a, res.ptr, res.len, &doc, NULL) == 0)
		labels = km_json_get(doc, "labels");
	if (!labels) {
		struct km_resource cur;
		if (cp_store_get(st->srv->rt->store, a, km_rtype_by_name(KM_STR("Dataplane")),
				 km_str_c(st->mesh), km_str_c(st->name), &cur) == 0 && cur.labels.len)
			km_json_parse(a, cur.labels.ptr, cur.labels.len, &labels, NULL);
	}
	const char *token = cp_grpc_metadata(st->gs, "authorization");
	if (token && strncmp(token, "Bearer ", 7) == 0)
		token += 7;
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_dpauth_check(st->srv->rt, a, token ? token : "", km_str_c(st->mesh), km_str_c(st->name),
				 labels, &err);
	if (rc) {
		km_warn("xds", "proxy rejected proxy=%s peer=%s reason=%s", node->id, cp_grpc_peer(st->gs),
			km_buf_cstr(&err));
		cp_grpc_finish(st->gs, rc == -KM_E_FORBIDDEN ? CP_GRPC_PERMISSION_DENIED : CP_GRPC_UNAUTHENTICATED,
			       km_buf_cstr(&err));
		km_buf_fini(&err);
		return -1;
	}
	rc = register_dataplane(st, a, md, &err);
	if (rc) {
		km_warn("xds", "proxy rejected proxy=%s reason=%s", node->id, km_buf_cstr(&err));
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, km_buf_cstr(&err));
		km_buf_fini(&err);
		return -1;
	}
	km_buf_fini(&err);
	char uuid[37];
	cp_tokens_uuid(uuid);
	snprintf(st->id, sizeof(st->id), "%s", uuid);
	st->connect_time = km_time_now();
	st->ready = true;
	node_slot(st->srv, st->node_hash, true)->n++;
	km_info("xds", "proxy connected proxy=%s protocol=%s peer=%s", node->id, st->delta ? "delta" : "sotw",
		cp_grpc_peer(st->gs));
	write_insight(st, false);
	/* While the mesh's context is stale (the registration above made it
	 * so, or other writes did), the next recompute pass generates for this
	 * proxy along with every other change of the same loop turn: a burst
	 * of connections costs one context rebuild, not one each. */
	struct mesh_entry *me = st->me = mesh_entry(st->srv, st->mesh);
	if (me->dirty && me->pending && st->srv->recompute.armed)
		st->first_gen = me->waiting = true;
	else
		regenerate(st);
	return 0;
}

/* ---- NACK backoff ---- */

static void on_retry(struct km_loop *loop, void *ctx)
{
	struct type_state *ts = ctx;
	/* resend the current version of everything of that type */
	push(ts->owner, ts->type, true);
}

static void nack(struct ads_stream *st, struct type_state *ts, const char *detail)
{
	ts->nacks++;
	st->srv->stats.nacks++;
	st->srv->stats.nacks_by_type[ts->type]++;
	delivered(&st->srv->stats, ts);
	/* xdsServer.nackBackoff is the first wait; each further NACK doubles it */
	uint64_t base = 5000;
	if (st->srv->rt->cfg && st->srv->rt->cfg->xds_server.nack_backoff > 0)
		base = (uint64_t)(st->srv->rt->cfg->xds_server.nack_backoff / 1000000);
	ts->backoff_ms = ts->backoff_ms ? ts->backoff_ms * 2 : (base ? base : 1);
	if (ts->backoff_ms > MAX_BACKOFF_MS)
		ts->backoff_ms = MAX_BACKOFF_MS;
	km_warn("xds", "configuration rejected by proxy proxy=%s.%s type=%s retry_ms=%llu error=%s", st->mesh,
		st->name, cp_xds_type_url[ts->type], (unsigned long long)ts->backoff_ms, detail);
	km_loop_timer_start(st->srv->rt->loop, &ts->retry, ts->backoff_ms, on_retry, ts);
	insight_dirty(st);
}

static void ack(struct ads_stream *st, struct type_state *ts)
{
	ts->acks++;
	ts->backoff_ms = 0;
	st->srv->stats.acks++;
	st->srv->stats.acks_by_type[ts->type]++;
	delivered(&st->srv->stats, ts);
	insight_dirty(st);
}

/* ---- request handling ---- */

static void on_delta(struct ads_stream *st, const uint8_t *data, size_t len)
{
	struct km_arena *a = km_arena_new(8192);
	ProtobufCMessage *m;
	struct km_buf err = KM_BUF_INIT;
	if (km_pb_wire_decode(a, &envoy__service__discovery__v3__delta_discovery_request__descriptor, data, len,
			      0, &m, &err)) {
		km_warn("xds", "malformed DeltaDiscoveryRequest peer=%s error=%s", cp_grpc_peer(st->gs),
			km_buf_cstr(&err));
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "malformed DeltaDiscoveryRequest");
		goto out;
	}
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *req = (void *)m;
	if (!st->ready && handshake(st, req->node, a))
		goto out;
	int t = cp_xds_type_of(km_str_c(req->type_url));
	if (t < 0)
		goto out; /* a type we do not serve (runtime, RDS...): nothing to send */
	struct type_state *ts = &st->ts[t];
	bool first = !ts->subscribed;
	ts->subscribed = true;
	/* a reply to an older response (stale nonce) is neither an ACK nor a
	 * NACK of what the proxy holds now, as in state of the world */
	if (req->response_nonce && *req->response_nonce && strcmp(req->response_nonce, ts->nonce) == 0) {
		if (req->error_detail && req->error_detail->message && *req->error_detail->message)
			nack(st, ts, req->error_detail->message);
		else
			ack(st, ts);
	}
	bool changed = false;
	if (first && req->n_resource_names_subscribe == 0 && (t == CP_XDS_CLUSTER || t == CP_XDS_LISTENER))
		ts->wildcard = true;
	for (size_t i = 0; i < req->n_resource_names_subscribe; i++) {
		const char *n = req->resource_names_subscribe[i];
		if (strcmp(n, "*") == 0) {
			ts->wildcard = true;
		} else {
			names_add(ts, n);
			sent_del(ts, n); /* the server must answer for every subscribed name */
		}
		changed = true;
	}
	for (size_t i = 0; i < req->n_resource_names_unsubscribe; i++) {
		const char *n = req->resource_names_unsubscribe[i];
		if (strcmp(n, "*") == 0)
			ts->wildcard = false;
		names_del(ts, n);
		sent_del(ts, n);
	}
	for (size_t i = 0; i < req->n_initial_resource_versions; i++) {
		const char *k = req->initial_resource_versions[i]->key;
		const char *v = req->initial_resource_versions[i]->value;
		if (k && v)
			sent_set(ts, k, v);
	}
	if (first || changed)
		push(st, t, false);
out:
	km_buf_fini(&err);
	km_arena_free(a);
}

static void on_sotw(struct ads_stream *st, const uint8_t *data, size_t len)
{
	struct km_arena *a = km_arena_new(8192);
	ProtobufCMessage *m;
	struct km_buf err = KM_BUF_INIT;
	if (km_pb_wire_decode(a, &envoy__service__discovery__v3__discovery_request__descriptor, data, len, 0,
			      &m, &err)) {
		km_warn("xds", "malformed DiscoveryRequest peer=%s error=%s", cp_grpc_peer(st->gs), km_buf_cstr(&err));
		cp_grpc_finish(st->gs, CP_GRPC_INVALID_ARGUMENT, "malformed DiscoveryRequest");
		goto out;
	}
	Envoy__Service__Discovery__V3__DiscoveryRequest *req = (void *)m;
	if (!st->ready && handshake(st, req->node, a))
		goto out;
	int t = cp_xds_type_of(km_str_c(req->type_url));
	if (t < 0)
		goto out;
	struct type_state *ts = &st->ts[t];
	bool first = !ts->subscribed;
	ts->subscribed = true;
	bool is_reply = req->response_nonce && *req->response_nonce;
	if (is_reply) {
		if (strcmp(req->response_nonce, ts->nonce) != 0)
			goto out; /* stale: a newer response is on its way */
		if (req->error_detail && req->error_detail->message && *req->error_detail->message) {
			nack(st, ts, req->error_detail->message);
			goto out;
		}
		ack(st, ts);
	}
	/* LDS and CDS are wildcard; EDS and SDS name what they want */
	bool names_changed = false;
	if ((t == CP_XDS_CLUSTER || t == CP_XDS_LISTENER) && req->n_resource_names == 0) {
		ts->wildcard = true;
	} else {
		ts->wildcard = false;
		bool same = req->n_resource_names == ts->nnames;
		for (size_t i = 0; same && i < req->n_resource_names; i++) {
			bool found = false;
			for (size_t k = 0; k < ts->nnames && !found; k++)
				found = strcmp(ts->names[k], req->resource_names[i]) == 0;
			same = found;
		}
		if (!same) {
			names_clear(ts);
			for (size_t i = 0; i < req->n_resource_names; i++)
				names_add(ts, req->resource_names[i]);
			names_changed = true;
		}
	}
	if (first || names_changed)
		push(st, t, names_changed);
out:
	km_buf_fini(&err);
	km_arena_free(a);
}

/* ---- stream lifecycle ---- */

static void *open_stream(void *svc, struct cp_grpc_stream *gs, bool delta)
{
	struct cp_xds_server *s = svc;
	struct ads_stream *st = km_calloc(1, sizeof(*st));
	st->srv = s;
	st->gs = gs;
	st->delta = delta;
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		st->ts[t].owner = st;
		st->ts[t].type = t;
	}
	st->next = s->streams;
	if (s->streams)
		s->streams->prev = st;
	s->streams = st;
	s->stats.streams_active++;
	return st;
}

static void *open_delta(void *svc, struct cp_grpc_stream *gs)
{
	return open_stream(svc, gs, true);
}

static void *open_sotw(void *svc, struct cp_grpc_stream *gs)
{
	return open_stream(svc, gs, false);
}

static void on_delta_msg(void *ctx, const uint8_t *data, size_t len)
{
	on_delta(ctx, data, len);
}

static void on_sotw_msg(void *ctx, const uint8_t *data, size_t len)
{
	on_sotw(ctx, data, len);
}

static void close_stream(void *ctx)
{
	struct ads_stream *st = ctx;
	struct cp_xds_server *s = st->srv;
	st->closed = true;
	if (st->prev)
		st->prev->next = st->next;
	else
		s->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	s->stats.streams_active--;
	if (st->ready) {
		node_slot(s, st->node_hash, false)->n--;
		km_info("xds", "proxy disconnected proxy=%s.%s", st->mesh, st->name);
		write_insight(st, true);
		if (st->registered && !stream_for(s, st->mesh, st->name)) {
			struct deregistration *d = km_calloc(1, sizeof(*d));
			d->srv = s;
			d->mesh = km_strdup(st->mesh);
			d->name = km_strdup(st->name);
			d->node_hash = st->node_hash;
			d->next = s->deregs;
			if (s->deregs)
				s->deregs->prev = d;
			s->deregs = d;
			int64_t delay = s->rt->cfg ? s->rt->cfg->xds_server.dataplane_deregistration_delay : 10000000000LL;
			km_loop_timer_start(s->rt->loop, &d->timer, (uint64_t)(delay / 1000000), on_deregister, d);
		}
	}
	km_loop_timer_stop(s->rt->loop, &st->insight_timer);
	km_loop_timer_stop(s->rt->loop, &st->renew_timer);
	free(st->mtls_issued_backend);
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		type_state_fini(&st->ts[t], s->rt->loop);
	snapshot_free(&st->snap);
	sweep_soon(s);
	cp_xds_local_memo_fini(&st->local);
	free(st->outs);
	free(st->mesh);
	free(st->name);
	free(st->metadata);
	km_arena_free(st->md_a);
	free(st->kuma_dp_version);
	free(st->envoy_version);
	free(st);
}

/* ---- change events ---- */

/* A set of name hashes (open addressing; 0 marks a free slot). */
struct name_set {
	uint64_t *h;
	size_t cap, n;
};

static uint64_t name_hash(struct km_str name)
{
	uint64_t h = km_hash(KM_FNV_INIT, name.ptr, name.len);
	return h ? h : 1;
}

static void set_add(struct name_set *s, struct km_str name)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *nh = km_calloc(ncap, sizeof(*nh));
		for (size_t i = 0; i < s->cap; i++)
			if (s->h[i]) {
				size_t j = (size_t)s->h[i] & (ncap - 1);
				while (nh[j])
					j = (j + 1) & (ncap - 1);
				nh[j] = s->h[i];
			}
		free(s->h);
		s->h = nh;
		s->cap = ncap;
	}
	uint64_t h = name_hash(name);
	size_t j = (size_t)h & (s->cap - 1);
	while (s->h[j] && s->h[j] != h)
		j = (j + 1) & (s->cap - 1);
	if (!s->h[j]) {
		s->h[j] = h;
		s->n++;
	}
}

static bool set_has(const struct name_set *s, uint64_t h)
{
	if (!s->n)
		return false;
	for (size_t j = (size_t)h & (s->cap - 1); s->h[j]; j = (j + 1) & (s->cap - 1))
		if (s->h[j] == h)
			return true;
	return false;
}

/* What differs between two contexts, computed once per pass: the
 * Dataplanes and the MeshServices (store and display names) added, removed
 * or changed. Both contexts are sorted by store name, so one merge walk of
 * each array finds them; a proxy then costs a few set lookups instead of
 * lookups in both contexts per outbound. */
struct ctx_diff {
	bool valid; /* both contexts there and sorted (else: every proxy) */
	struct name_set dps, svcs;
};

static void svc_add(struct name_set *s, const struct cp_xds_service *x)
{
	set_add(s, x->store_name);
	set_add(s, x->name);
}

static void ctx_diff_build(const struct cp_xds_mesh *om, const struct cp_xds_mesh *nm, struct ctx_diff *d)
{
	memset(d, 0, sizeof(*d));
	if (!om || !nm || !om->sorted || !nm->sorted)
		return;
	d->valid = true;
	for (size_t i = 0, k = 0; i < om->ndataplanes || k < nm->ndataplanes;) {
		const struct cp_xds_dataplane *a = i < om->ndataplanes ? &om->dataplanes[i] : NULL;
		const struct cp_xds_dataplane *b = k < nm->ndataplanes ? &nm->dataplanes[k] : NULL;
		int c = !a ? 1 : !b ? -1 : km_str_cmp(a->res.name, b->res.name);
		if (c < 0) {
			set_add(&d->dps, a->res.name);
			i++;
		} else if (c > 0) {
			set_add(&d->dps, b->res.name);
			k++;
		} else {
			if (a->fp != b->fp)
				set_add(&d->dps, a->res.name);
			i++;
			k++;
		}
	}
	for (size_t i = 0, k = 0; i < om->nservices || k < nm->nservices;) {
		const struct cp_xds_service *a = i < om->nservices ? &om->services[i] : NULL;
		const struct cp_xds_service *b = k < nm->nservices ? &nm->services[k] : NULL;
		int c = !a ? 1 : !b ? -1 : km_str_cmp(a->store_name, b->store_name);
		if (c < 0) {
			svc_add(&d->svcs, a);
			i++;
		} else if (c > 0) {
			svc_add(&d->svcs, b);
			k++;
		} else {
			if (a->fp != b->fp) {
				svc_add(&d->svcs, a);
				svc_add(&d->svcs, b);
			}
			i++;
			k++;
		}
	}
}

static void ctx_diff_fini(struct ctx_diff *d)
{
	free(d->dps.h);
	free(d->svcs.h);
}

/* Reads what <st>'s outbounds name from <dp> (once per Dataplane version). */
static void outs_refresh(struct ads_stream *st, const struct cp_xds_dataplane *dp)
{
	if (st->outs_known && dp && st->outs_fp == dp->fp)
		return;
	st->nouts = 0;
	st->outs_all = st->proxyless;
	st->outs_known = dp != NULL;
	st->outs_fp = dp ? dp->fp : 0;
	const struct km_json *outs = dp ? km_json_get(km_json_get(dp->spec, "networking"), "outbound") : NULL;
	size_t n = outs && outs->kind == KM_JSON_ARRAY ? outs->len : 0;
	free(st->outs);
	st->outs = km_calloc(n + 1, sizeof(*st->outs));
	for (size_t i = 0; !st->outs_all && i < n; i++) {
		const struct km_json *ref = km_json_get(outs->items[i], "backendRef");
		struct km_str kind = km_json_get_string(ref, "kind");
		struct km_str name = km_json_get_string(ref, "name");
		if (!ref || !km_str_eqc(kind, "MeshService") || !name.len || km_json_get(ref, "labels"))
			st->outs_all = true;
		else
			st->outs[st->nouts++] = name_hash(name);
	}
}

/* Whether the proxy's config may differ between the old and new context:
 * its Dataplane or a MeshService its outbounds name changed. Outbounds by
 * labels or to other kinds, and proxyless clients (which get every
 * service), depend on every service. */
static bool proxy_affected(struct ads_stream *st, const struct cp_xds_mesh *nm, const struct ctx_diff *d)
{
	if (!d->valid)
		return true;
	if (set_has(&d->dps, st->self_h))
		return true;
	if (!d->svcs.n)
		return false;
	outs_refresh(st, cp_xds_mesh_dataplane(nm, st->self));
	if (st->outs_all)
		return true;
	for (size_t i = 0; i < st->nouts; i++)
		if (set_has(&d->svcs, st->outs[i]))
			return true;
	return false;
}

/* The policies that differ between two contexts: added, removed, and both
 * versions of a changed one. */
struct policy_diff {
	const struct cp_policy **v;
	size_t n;
};

static int policy_cmp(const void *x, const void *y)
{
	const struct cp_policy *a = *(const struct cp_policy *const *)x, *b = *(const struct cp_policy *const *)y;
	int c = strcmp(a->type ? a->type->name : "", b->type ? b->type->name : "");
	return c ? c : km_str_cmp(a->name, b->name);
}

static const struct cp_policy **policies_sorted(const struct cp_xds_mesh *m)
{
	const struct cp_policy **v = km_calloc(m->npolicies + 1, sizeof(*v));
	for (size_t i = 0; i < m->npolicies; i++)
		v[i] = &m->policies[i];
	qsort(v, m->npolicies, sizeof(*v), policy_cmp);
	return v;
}

static void policy_diff(const struct cp_xds_mesh *om, const struct cp_xds_mesh *nm, struct policy_diff *d)
{
	const struct cp_policy **a = policies_sorted(om), **b = policies_sorted(nm);
	d->v = km_calloc(om->npolicies + nm->npolicies + 1, sizeof(*d->v));
	d->n = 0;
	size_t i = 0, k = 0;
	while (i < om->npolicies || k < nm->npolicies) {
		int c = i == om->npolicies ? 1 : k == nm->npolicies ? -1 : policy_cmp(&a[i], &b[k]);
		if (c < 0) {
			d->v[d->n++] = a[i++];
		} else if (c > 0) {
			d->v[d->n++] = b[k++];
		} else {
			if (a[i]->fp != b[k]->fp) {
				d->v[d->n++] = a[i];
				d->v[d->n++] = b[k];
			}
			i++;
			k++;
		}
	}
	free(a);
	free(b);
}

/* Whether a changed policy can reach the proxy (its top-level targetRef). */
static bool policy_reaches(const struct policy_diff *d, const struct ads_stream *st, const struct cp_xds_mesh *nm)
{
	if (!d->n)
		return false;
	const struct cp_xds_dataplane *dp = cp_xds_mesh_dataplane(nm, st->self);
	for (size_t i = 0; i < d->n; i++)
		if (!dp || cp_policy_may_affect(d->v[i], dp))
			return true;
	return false;
}

/* Whether an identity, trust or Secret change reaches the proxy. */
static bool identity_moved(const struct ads_stream *st, const struct cp_xds_mesh *nm)
{
	struct cp_pki *pki = st->srv->rt->pki;
	const struct cp_xds_dataplane *dp = cp_xds_mesh_dataplane(nm, km_str_c(st->name));
	return !dp || (pki ? cp_pki_identity_key(pki, dp->res.mesh, dp->labels) : 0) != st->id_key;
}

static void on_recompute(struct km_loop *loop, void *ctx)
{
	struct cp_xds_server *s = ctx;
	uint64_t pass_start = km_loop_now_ms();
	for (struct mesh_entry *m = s->meshes; m; m = m->next) {
		if (!m->pending)
			continue;
		bool all = m->all || !m->base;
		bool pki = m->pki;
		m->pending = m->all = m->pki = false;
		struct cp_xds_mesh *om = m->base;
		uint64_t t0 = km_loop_now_ms();
		struct cp_xds_mesh *nm = (struct cp_xds_mesh *)entry_ctx(s, m); /* rebuilds when stale */
		uint64_t t1 = km_loop_now_ms();
		if (!nm || !om || om->fp_rest != nm->fp_rest)
			all = true;
		if (nm == om && !all && !pki && !m->waiting) {
			/* the context was kept (MeshService status rewrites): no proxy's
			 * inputs moved and none awaits its first generation, so no
			 * proxy need be looked at */
			s->stats.passes_kept++;
			continue;
		}
		struct policy_diff pd = {0};
		if (!all)
			policy_diff(om, nm, &pd);
		if (pd.n > 64)
			all = true; /* many policies changed: checking each against each proxy costs more */
		m->waiting = false;
		/* nm becomes the base first: should a regeneration rebuild the
		 * context (a write from inside it), nm stays alive */
		m->base = nm;
		size_t regenerated = 0, skipped = 0, cap = 0;
		struct ads_stream **todo = NULL;
		struct ctx_diff cd;
		ctx_diff_build(all ? NULL : om, nm, &cd);
		for (struct ads_stream *st = s->streams; st; st = st->next) {
			if (!st->ready || st->me != m)
				continue;
			/* the cheap tests first */
			if (all || st->first_gen || policy_reaches(&pd, st, nm) || proxy_affected(st, nm, &cd) ||
			    (pki && identity_moved(st, nm))) {
				if (regenerated == cap) {
					cap = cap ? cap * 2 : 64;
					todo = km_realloc(todo, cap * sizeof(*todo));
				}
				todo[regenerated++] = st;
			} else {
				s->stats.regenerations_skipped++;
				s->stats.sync_counts[CP_XDS_SYNC_SKIP][0]++; /* 0 ms */
				skipped++;
			}
		}
		if (nm && s->builder && regenerated >= PASS_MIN_BUILDER) {
			regenerate_pass(s, m, nm, todo, regenerated);
		} else {
			for (size_t i = 0; i < regenerated; i++)
				regenerate(todo[i]);
		}
		free(todo);
		ctx_diff_fini(&cd);
		km_debug("xds",
			 "recompute pass mesh=%s all=%d identity=%d policies_changed=%zu regenerated=%zu skipped=%zu "
			 "context_ms=%llu regenerate_ms=%llu",
			 m->name, all, pki, pd.n, regenerated, skipped, (unsigned long long)(t1 - t0),
			 (unsigned long long)(km_loop_now_ms() - t1));
		free(pd.v);
		if (om != nm && om != m->ctx)
			cp_xds_mesh_free(om);
	}
	s->last_pass_end_ms = km_loop_now_ms();
	s->last_pass_ms = s->last_pass_end_ms - pass_start;
}

/* How long after a write the next pass starts: at once (1 ms, the writes
 * of this loop turn together) unless the last pass was long and recent,
 * as in a burst of registrations, where a pass over a large mesh (the
 * context rebuilt, every stream tested) costs milliseconds: then the next
 * waits as long as the last took (at most 50 ms), so passes keep at most
 * about half the loop and each covers more writes. A change after a quiet
 * second is not delayed. */
static uint64_t recompute_delay(const struct cp_xds_server *s)
{
	if (s->last_pass_ms < 2 || km_loop_now_ms() - s->last_pass_end_ms > 1000)
		return 1;
	return s->last_pass_ms < 50 ? s->last_pass_ms : 50;
}

/* Types whose whole effect on proxy configuration is in the mesh context
 * and so in its fingerprints. */
static bool fingerprinted(const struct km_rtype *t)
{
	return strcmp(t->name, "Dataplane") == 0 || strcmp(t->name, "MeshService") == 0 ||
	       km_rtype_has(t, KM_RT_POLICY);
}

/* Types that shape proxies only through cp_pki_identity_key. */
static bool identity_type(const struct km_rtype *t)
{
	return strcmp(t->name, "MeshIdentity") == 0 || strcmp(t->name, "MeshTrust") == 0 ||
	       strcmp(t->name, "Secret") == 0;
}

static void on_change(void *ctx, enum cp_store_op op, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name)
{
	struct cp_xds_server *s = ctx;
	if (t && (km_rtype_has(t, KM_RT_INSIGHT) || strcmp(t->name, "MeshInsight") == 0 ||
		  strcmp(t->name, "ServiceInsight") == 0))
		return; /* status records do not shape proxy configuration */
	/* Workloads, generated from kuma.io/workload labels, are read by no
	 * generator: their status rewrites (proxies coming online) would each
	 * rebuild the mesh's context for nothing */
	if (t && strcmp(t->name, "Workload") == 0)
		return;
	bool any = false;
	for (struct mesh_entry *m = s->meshes; m; m = m->next) {
		bool hit = op == CP_STORE_RESYNC || !t || t->scope == KM_SCOPE_GLOBAL
				   ? (t && strcmp(t->name, "Mesh") == 0 ? km_str_eqc(name, m->name) : true)
				   : km_str_eqc(mesh, m->name);
		if (hit) {
			bool svc = t && op != CP_STORE_RESYNC && strcmp(t->name, "MeshService") == 0;
			m->svc_only = (m->dirty ? m->svc_only : true) && svc;
			m->dirty = true;
			m->pending = true;
			if (!t || op == CP_STORE_RESYNC)
				cp_xds_cache_reset(m->cache);
			else
				cp_xds_cache_stale(m->cache, t, name);
			/* what the context holds is compared by fingerprint, identities
			 * by each proxy's identity key; anything else (the Mesh, zones...)
			 * reaches every proxy */
			if (t && op != CP_STORE_RESYNC && identity_type(t))
				m->pki = true;
			else if (!t || op == CP_STORE_RESYNC || !fingerprinted(t))
				m->all = true;
			any = true;
		}
	}
	if (any && !s->recompute.armed)
		km_loop_timer_start(s->rt->loop, &s->recompute, recompute_delay(s), on_recompute, s);
}

struct cp_xds_server *cp_xds_server_new(struct cp_runtime *rt, struct cp_events *bus)
{
	struct cp_xds_server *s = km_calloc(1, sizeof(*s));
	s->rt = rt;
	s->methods[0] = (struct cp_grpc_method){
	    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources", open_delta,
	    on_delta_msg, close_stream, s};
	s->methods[1] = (struct cp_grpc_method){
	    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources", open_sotw,
	    on_sotw_msg, close_stream, s};
	s->hds = cp_hds_new(rt, bus);
	s->methods[2] = cp_hds_method(s->hds);
	cp_events_subscribe(bus, on_change, s);
	/* with one CPU the thread would only take turns with the loop */
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		s->builder = cp_xds_builder_new();
	return s;
}

const struct cp_grpc_method *cp_xds_server_methods(struct cp_xds_server *s, size_t *n)
{
	*n = 3;
	return s->methods;
}

void cp_xds_server_stats(const struct cp_xds_server *s, struct cp_xds_stats *out)
{
	*out = s->stats;
	struct cp_hds_stats h;
	cp_hds_stats(s->hds, &h);
	out->hds_streams_active = h.streams_active;
	out->hds_requests = h.requests;
	out->hds_reports = h.reports;
	out->hds_gen_errors = h.gen_errors;
	memcpy(out->hds_gen_counts, h.gen_counts, sizeof(h.gen_counts));
	out->hds_gen_sum_ms = h.gen_sum_ms;
}

void cp_xds_server_client_versions(const struct cp_xds_server *s,
				   void (*fn)(void *ctx, const char *version, size_t n), void *ctx)
{
	/* few distinct versions: a short list, counted in one walk */
	const char *v[16];
	size_t n[16], nv = 0;
	for (const struct ads_stream *st = s->streams; st; st = st->next) {
		if (!st->ready || !st->kuma_dp_version || !*st->kuma_dp_version)
			continue;
		size_t i = 0;
		while (i < nv && strcmp(v[i], st->kuma_dp_version) != 0)
			i++;
		if (i == nv) {
			if (nv == 16)
				continue; /* more versions than a fleet runs at once: the rest not counted */
			v[nv] = st->kuma_dp_version;
			n[nv++] = 0;
		}
		n[i]++;
	}
	for (size_t i = 0; i < nv; i++)
		fn(ctx, v[i], n[i]);
}

void cp_xds_server_free(struct cp_xds_server *s)
{
	if (!s)
		return;
	cp_xds_builder_free(s->builder);
	cp_hds_free(s->hds);
	km_loop_timer_stop(s->rt->loop, &s->recompute);
	km_loop_timer_stop(s->rt->loop, &s->sweep);
	/* the proxies' last insight writes (disconnected), then whatever is left */
	cp_store_rmw_drain(s->rt->store, 2000);
	while (s->insight_writes) {
		struct insight_write *iw = s->insight_writes;
		s->insight_writes = iw->next;
		cp_store_rmw_cancel(s->rt->store, &iw->op);
		free(iw);
	}
	while (s->deregs)
		dereg_free(s, s->deregs);
	free(s->nodes);
	while (s->meshes) {
		struct mesh_entry *m = s->meshes;
		s->meshes = m->next;
		if (m->base != m->ctx)
			cp_xds_mesh_free(m->base);
		cp_xds_mesh_free(m->ctx);
		cp_xds_cache_free(m->cache);
		cp_xds_share_free(m->share);
		free(m->name);
		free(m);
	}
	free(s);
}
