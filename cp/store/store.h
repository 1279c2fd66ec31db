/* SPDX-License-Identifier: Apache-2.0 */
/* Resource store interface, implemented by the memory backend (memory.c) and
 * later PostgreSQL. Results are copied into the caller's arena, so they stay
 * valid after later writes. Writes are optimistic: update and delete name the
 * version they expect; a mismatch is -KM_E_CONFLICT. Every committed write is
 * reported once through the change callback (the xDS and cache layers
 * subscribe to it). */
#ifndef CP_STORE_STORE_H
#define CP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "resource/resource.h"

/* RESYNC (type NULL): events may have been missed (the event channel was
 * down); subscribers must treat everything as changed. */
enum cp_store_op { CP_STORE_CREATE, CP_STORE_UPDATE, CP_STORE_DELETE, CP_STORE_RESYNC };

typedef void (*cp_store_change_fn)(void *ctx, enum cp_store_op op, const struct km_rtype *type,
				   struct km_str mesh, struct km_str name);

/* One label equality filter: labels[key] == value. */
struct cp_label_filter {
	struct km_str key, value;
};

struct cp_list_opts {
	struct km_str mesh;          /* empty: every mesh (or global-scoped) */
	struct km_str name_contains; /* empty: no name filter */
	const struct cp_label_filter *labels; /* all must match */
	size_t labels_len;
	/* optional extra predicate (REST tag= and gateway= filters); return true to keep */
	bool (*match)(void *ctx, const struct km_resource *r);
	void *match_ctx;
	size_t offset; /* items to skip after filtering */
	size_t size;   /* 0 = no limit */
};

struct cp_list_result {
	struct km_resource *items; /* arena array */
	size_t len;
	size_t total; /* matches before offset/size */
};

struct cp_store;

/* An asynchronous read-modify-write of one record, for the records the
 * control plane derives and rewrites often (the xDS server's
 * DataplaneInsights): the store reads the record, calls merge() with it
 * (<cur> NULL when absent) to make the record to write in <out> (type,
 * mesh and name preset; strings in <a>), writes it (created when absent,
 * else updated at the version read; relaxed durability, see relaxed()),
 * and calls done() with 0 or the error. A record another writer changed
 * between the read and the write is read and merged again (merge() may
 * run more than once). merge() returning false writes nothing (done() gets
 * 0). The caller owns <op> and the strings it names until done() or
 * cp_store_rmw_cancel(); done() may run inside cp_store_rmw() (the memory
 * backend, a backend that is down). Urgent operations (records that shape
 * proxies, like generated MeshServices) run before any other still
 * waiting (status records, like insights); operations of one urgency on
 * one record run in the order they were submitted. */
struct cp_store_rmw {
	const struct km_rtype *type;
	struct km_str mesh, name;
	bool urgent;
	bool (*merge)(struct cp_store_rmw *op, struct km_arena *a, const struct km_resource *cur,
		      struct km_resource *out);
	void (*done)(struct cp_store_rmw *op, int rc);
	/* the backend's */
	struct cp_store_rmw *next;
	void *slot;
	int tries;
};

struct cp_store_ops {
	/* Stores <r> with version 1; sets ctime/mtime to now when 0. -KM_E_EXISTS if present. */
	int (*create)(struct cp_store *s, const struct km_resource *r);
	/* Replaces the resource when its stored version equals r->version; the stored
	 * version becomes r->version + 1 and mtime now. ctime is kept. */
	int (*update)(struct cp_store *s, const struct km_resource *r);
	/* Deletes the resource and, transitively, everything it owns (a Mesh owns
	 * every resource in it; owner_* fields name owners). <version> 0 = any. */
	int (*remove)(struct cp_store *s, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name, uint64_t version);
	int (*get)(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		   struct km_str mesh, struct km_str name, struct km_resource *out);
	/* Optional: get() of <n> names of one mesh in one call (PostgreSQL: one
	 * query instead of a round trip each): out[i] with rcs[i] 0, or rcs[i]
	 * -KM_E_NOT_FOUND. Returns 0 or the error that failed them all. */
	int (*get_many)(struct cp_store *s, struct km_arena *a, const struct km_rtype *t, struct km_str mesh,
			const struct km_str *names, size_t n, struct km_resource *out, int *rcs);
	/* Items sorted by (name, mesh) like upstream; filtered, then paged. */
	int (*list)(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		    const struct cp_list_opts *opts, struct cp_list_result *out);
	/* Number of stored resources of <t> (all meshes). */
	size_t (*count)(struct cp_store *s, const struct km_rtype *t, struct km_str mesh);
	/* Optional: count() of every type of mesh <mesh> (empty: of all meshes,
	 * global types included) at once (PostgreSQL:
	 * one query instead of one per type), n[i] for km_rtypes[i]. 0 or an
	 * error. */
	int (*count_types)(struct cp_store *s, struct km_str mesh, size_t *n);
	/* False while the backend is unreachable (/ready reports it). */
	bool (*healthy)(struct cp_store *s);
	/* Optional: writes until the next call with false may return before
	 * they are on disk (PostgreSQL: synchronous_commit off). For status
	 * records the control plane derives and rewrites (insights, generated
	 * MeshService status): a crash can lose the last fraction of a second
	 * of them, never a user's write. */
	void (*relaxed)(struct cp_store *s, bool on);
	/* Joins leader election: <fn> is called with true when this instance
	 * becomes the leader and with false when it loses leadership. The memory
	 * backend is a single instance and elects itself at once. */
	void (*elect)(struct cp_store *s, void (*fn)(void *ctx, bool leader), void *ctx);
	/* Optional: queues <op> (struct cp_store_rmw) and returns; without it
	 * cp_store_rmw() runs the operation at once through get/create/update. */
	void (*rmw)(struct cp_store *s, struct cp_store_rmw *op);
	/* Withdraws a queued or running <op>: neither merge() nor done() is
	 * called for it afterwards (a write already sent may still land). */
	void (*rmw_cancel)(struct cp_store *s, struct cp_store_rmw *op);
	/* Runs the queued operations to the end, waiting for the database on
	 * this thread up to <timeout_ms> (at shutdown, before their owners go). */
	void (*rmw_drain)(struct cp_store *s, int timeout_ms);
	void (*free)(struct cp_store *s);
};

struct cp_store {
	const struct cp_store_ops *ops;
	cp_store_change_fn on_change;
	void *on_change_ctx;
};

/* Upstream's `store` metric: the time of each operation by type, and
 * `store_conflicts` (cp/store/metrics.c; any thread). */
enum { CP_STORE_OP_CREATE, CP_STORE_OP_UPDATE, CP_STORE_OP_DELETE, CP_STORE_OP_GET, CP_STORE_OP_LIST, CP_STORE_NOPS };
extern const char *const cp_store_op_name[CP_STORE_NOPS];
int64_t cp_store_clock_ns(void);
/* One operation <op> on <t> that started at <t0> (cp_store_clock_ns) and returned <rc>. */
void cp_store_observe(int op, const struct km_rtype *t, int64_t t0, int rc);
/* Appends the store and store_conflicts families (samples seen only). */
void cp_store_metrics_write(struct km_buf *out);

static inline int cp_store_create(struct cp_store *s, const struct km_resource *r)
{
	int64_t t0 = cp_store_clock_ns();
	int rc = s->ops->create(s, r);
	cp_store_observe(CP_STORE_OP_CREATE, r->type, t0, rc);
	return rc;
}
static inline int cp_store_update(struct cp_store *s, const struct km_resource *r)
{
	int64_t t0 = cp_store_clock_ns();
	int rc = s->ops->update(s, r);
	cp_store_observe(CP_STORE_OP_UPDATE, r->type, t0, rc);
	return rc;
}
static inline int cp_store_remove(struct cp_store *s, const struct km_rtype *t, struct km_str mesh,
				  struct km_str name, uint64_t version)
{
	int64_t t0 = cp_store_clock_ns();
	int rc = s->ops->remove(s, t, mesh, name, version);
	cp_store_observe(CP_STORE_OP_DELETE, t, t0, rc);
	return rc;
}
static inline int cp_store_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
			       struct km_str mesh, struct km_str name, struct km_resource *out)
{
	int64_t t0 = cp_store_clock_ns();
	int rc = s->ops->get(s, a, t, mesh, name, out);
	cp_store_observe(CP_STORE_OP_GET, t, t0, rc);
	return rc;
}
static inline int cp_store_count_types(struct cp_store *s, struct km_str mesh, size_t *n)
{
	if (s->ops->count_types)
		return s->ops->count_types(s, mesh, n);
	for (size_t i = 0; i < km_rtypes_len; i++)
		n[i] = s->ops->count(s, &km_rtypes[i], mesh);
	return 0;
}
static inline int cp_store_get_many(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
				    struct km_str mesh, const struct km_str *names, size_t n,
				    struct km_resource *out, int *rcs)
{
	if (s->ops->get_many) {
		int64_t t0 = cp_store_clock_ns();
		int rc = s->ops->get_many(s, a, t, mesh, names, n, out, rcs);
		cp_store_observe(CP_STORE_OP_GET, t, t0, rc); /* one batch: one get */
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		rcs[i] = s->ops->get(s, a, t, mesh, names[i], &out[i]);
		if (rcs[i] && rcs[i] != -KM_E_NOT_FOUND)
			return rcs[i];
	}
	return 0;
}
static inline int cp_store_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
				const struct cp_list_opts *o, struct cp_list_result *out)
{
	int64_t t0 = cp_store_clock_ns();
	int rc = s->ops->list(s, a, t, o, out);
	cp_store_observe(CP_STORE_OP_LIST, t, t0, rc);
	return rc;
}
static inline size_t cp_store_count(struct cp_store *s, const struct km_rtype *t, struct km_str mesh)
{
	return s->ops->count(s, t, mesh);
}
static inline void cp_store_relaxed(struct cp_store *s, bool on)
{
	if (s->ops->relaxed)
		s->ops->relaxed(s, on);
}

/* Runs <op> now: get, merge, create or update, done (conflicts retried). */
void cp_store_rmw_now(struct cp_store *s, struct cp_store_rmw *op);

static inline void cp_store_rmw(struct cp_store *s, struct cp_store_rmw *op)
{
	op->tries = 0;
	if (s->ops->rmw)
		s->ops->rmw(s, op);
	else
		cp_store_rmw_now(s, op);
}
static inline void cp_store_rmw_cancel(struct cp_store *s, struct cp_store_rmw *op)
{
	if (s->ops->rmw_cancel)
		s->ops->rmw_cancel(s, op);
}

static inline void cp_store_rmw_drain(struct cp_store *s, int timeout_ms)
{
	if (s->ops->rmw_drain)
		s->ops->rmw_drain(s, timeout_ms);
}

static inline bool cp_store_healthy(struct cp_store *s)
{
	return !s->ops->healthy || s->ops->healthy(s);
}
static inline void cp_store_elect(struct cp_store *s, void (*fn)(void *ctx, bool leader), void *ctx)
{
	s->ops->elect(s, fn, ctx);
}
static inline void cp_store_free(struct cp_store *s)
{
	if (s)
		s->ops->free(s);
}

/* True when every filter of <o> (labels, name, predicate) accepts <r>; shared by
 * the backends so that filtering means the same everywhere. */
bool cp_store_matches(const struct cp_list_opts *o, struct km_arena *scratch,
		      const struct km_resource *r);

/* The memory backend: single process, not durable. */
struct cp_store *cp_store_memory_new(void);

struct cp_config;
struct km_loop;
/* The PostgreSQL backend (postgres.c) with upstream's schema. Change events
 * of every instance arrive through LISTEN resource_events on <loop>. Fails
 * with a message in <err> when the database is unreachable or its schema is
 * older than this binary needs ("kuma-cp migrate up"). */
struct cp_store *cp_store_postgres_new(const struct cp_config *cfg, struct km_loop *loop,
				       struct km_buf *err);
/* Applies every missing migration (kuma-cp migrate up). */
int cp_store_postgres_migrate(const struct cp_config *cfg, struct km_buf *err);

#endif
