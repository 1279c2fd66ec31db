/* SPDX-License-Identifier: Apache-2.0 */
/* Resource store interface, implemented by the memory backend (memory.c) and
 * later PostgreSQL. Results are copied into the caller's arena, so they stay
 * valid after later writes. Writes are optimistic: update and delete name the
 * version they expect; a mismatch is -KM_E_CONFLICT. Every committed write is
 * reported once through the change callback (the xDS and cache layers
 * subscribe to it). */
#ifndef CP_STORE_STORE_H
#define CP_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
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
	/* Items sorted by (name, mesh) like upstream; filtered, then paged. */
	int (*list)(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		    const struct cp_list_opts *opts, struct cp_list_result *out);
	/* Number of stored resources of <t> (all meshes). */
	size_t (*count)(struct cp_store *s, const struct km_rtype *t, struct km_str mesh);
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
	void (*free)(struct cp_store *s);
};

struct cp_store {
	const struct cp_store_ops *ops;
	cp_store_change_fn on_change;
	void *on_change_ctx;
};

static inline int cp_store_create(struct cp_store *s, const struct km_resource *r)
{
	return s->ops->create(s, r);
}
static inline int cp_store_update(struct cp_store *s, const struct km_resource *r)
{
	return s->ops->update(s, r);
}
static inline int cp_store_remove(struct cp_store *s, const struct km_rtype *t, struct km_str mesh,
				  struct km_str name, uint64_t version)
{
	return s->ops->remove(s, t, mesh, name, version);
}
static inline int cp_store_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
			       struct km_str mesh, struct km_str name, struct km_resource *out)
{
	return s->ops->get(s, a, t, mesh, name, out);
}
static inline int cp_store_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
				const struct cp_list_opts *o, struct cp_list_result *out)
{
	return s->ops->list(s, a, t, o, out);
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
