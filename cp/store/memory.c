/* SPDX-License-Identifier: Apache-2.0 */
/* In-memory store: per type, an array of immutable records sorted by
 * (name, mesh). A record is one heap block holding all of its strings; an
 * update swaps in a new block. Lookups are binary searches, lists scan the
 * type's array and copy only the requested page into the caller's arena; a
 * plain listing's next page starts where the previous one stopped. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"
#include "cp/store/store.h"

struct rec {
	struct km_resource r; /* views point into the same block */
};

/* Where the last page of a plain listing (mesh filter at most) ended, so
 * that reading a mesh page by page (cp/memo.c) scans each record once
 * instead of from the start for every page. Valid while no record was
 * added or removed (updates keep positions and membership). */
struct cursor {
	uint64_t gen;      /* table generation it was taken at */
	char *mesh;        /* the listing's mesh filter ("" none), NULL: unset */
	size_t next_offset; /* the offset a follow-up page asks for */
	size_t next_index;  /* the item that page starts scanning at */
	size_t total;       /* matches of the whole listing */
};

struct table {
	struct rec **items;
	size_t len, cap;
	uint64_t gen; /* bumped by every insert and removal */
	struct cursor cur;
};

struct mem_store {
	struct cp_store base;
	struct table *tables; /* one per row of km_rtypes */
};

static size_t type_index(const struct km_rtype *t)
{
	return (size_t)(t - km_rtypes);
}

static int key_cmp(struct km_str name1, struct km_str mesh1, struct km_str name2,
		   struct km_str mesh2)
{
	int c = km_str_cmp(name1, name2);
	return c ? c : km_str_cmp(mesh1, mesh2);
}

/* Index of the first item >= key; *found set when equal. */
static size_t search(const struct table *tb, struct km_str mesh, struct km_str name, bool *found)
{
	size_t lo = 0, hi = tb->len;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct km_resource *r = &tb->items[mid]->r;
		if (key_cmp(r->name, r->mesh, name, mesh) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < tb->len && key_cmp(tb->items[lo]->r.name, tb->items[lo]->r.mesh, name, mesh) == 0;
	return lo;
}

static struct km_str put(char **p, struct km_str s)
{
	struct km_str out = {*p, s.len};
	if (s.len)
		memcpy(*p, s.ptr, s.len);
	(*p)[s.len] = 0;
	*p += s.len + 1;
	return out;
}

static struct rec *rec_new(const struct km_resource *r)
{
	const struct km_str *fields[] = {&r->mesh,   &r->name,       &r->labels,     &r->spec,
					 &r->status, &r->owner_type, &r->owner_mesh, &r->owner_name};
	size_t n = sizeof(struct rec);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		n += fields[i]->len + 1;
	struct rec *rc = km_malloc(n);
	char *p = (char *)(rc + 1);
	rc->r = *r;
	rc->r.mesh = put(&p, r->mesh);
	rc->r.name = put(&p, r->name);
	rc->r.labels = put(&p, r->labels);
	rc->r.spec = put(&p, r->spec.len ? r->spec : KM_STR("{}"));
	rc->r.status = put(&p, r->status);
	rc->r.owner_type = put(&p, r->owner_type);
	rc->r.owner_mesh = put(&p, r->owner_mesh);
	rc->r.owner_name = put(&p, r->owner_name);
	return rc;
}

static struct km_str copy_str(struct km_arena *a, struct km_str s)
{
	return (struct km_str){km_arena_strndup(a, s.ptr, s.len), s.len};
}

static void copy_out(struct km_arena *a, const struct km_resource *in, struct km_resource *out)
{
	*out = *in;
	out->mesh = copy_str(a, in->mesh);
	out->name = copy_str(a, in->name);
	out->labels = copy_str(a, in->labels);
	out->spec = copy_str(a, in->spec);
	out->status = copy_str(a, in->status);
	out->owner_type = copy_str(a, in->owner_type);
	out->owner_mesh = copy_str(a, in->owner_mesh);
	out->owner_name = copy_str(a, in->owner_name);
}

static void notify(struct mem_store *m, enum cp_store_op op, const struct km_resource *r)
{
	if (m->base.on_change)
		m->base.on_change(m->base.on_change_ctx, op, r->type, r->mesh, r->name);
}

static int mem_create(struct cp_store *s, const struct km_resource *r)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(r->type)];
	bool found;
	size_t at = search(tb, r->mesh, r->name, &found);
	if (found)
		return -KM_E_EXISTS;
	struct rec *rc = rec_new(r);
	int64_t now = km_time_now();
	rc->r.version = 1;
	if (!rc->r.ctime)
		rc->r.ctime = now;
	if (!rc->r.mtime)
		rc->r.mtime = rc->r.ctime;
	if (tb->len == tb->cap) {
		tb->cap = tb->cap ? tb->cap * 2 : 16;
		tb->items = km_realloc(tb->items, tb->cap * sizeof(*tb->items));
	}
	memmove(&tb->items[at + 1], &tb->items[at], (tb->len - at) * sizeof(*tb->items));
	tb->items[at] = rc;
	tb->len++;
	tb->gen++;
	notify(m, CP_STORE_CREATE, &rc->r);
	return 0;
}

static int mem_update(struct cp_store *s, const struct km_resource *r)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(r->type)];
	bool found;
	size_t at = search(tb, r->mesh, r->name, &found);
	if (!found)
		return -KM_E_NOT_FOUND;
	struct rec *old = tb->items[at];
	if (old->r.version != r->version)
		return -KM_E_CONFLICT;
	struct rec *rc = rec_new(r);
	rc->r.version = old->r.version + 1;
	rc->r.ctime = old->r.ctime;
	rc->r.mtime = km_time_now();
	tb->items[at] = rc;
	free(old);
	notify(m, CP_STORE_UPDATE, &rc->r);
	return 0;
}

static bool owned_by(const struct km_resource *r, const struct km_resource *owner)
{
	if (r->owner_type.len)
		return km_str_eqc(r->owner_type, owner->type->name) &&
		       km_str_eq(r->owner_name, owner->name) && km_str_eq(r->owner_mesh, owner->mesh);
	if (km_str_eqc(KM_STR("Mesh"), owner->type->name))
		return r->type->scope == KM_SCOPE_MESH && km_str_eq(r->mesh, owner->name);
	if (km_rtype_has(r->type, KM_RT_INSIGHT) && r->type->owner_type)
		return strcmp(r->type->owner_type, owner->type->name) == 0 &&
		       km_str_eq(r->name, owner->name) && km_str_eq(r->mesh, owner->mesh);
	return false;
}

static void delete_at(struct mem_store *m, struct table *tb, size_t at);

static void cascade(struct mem_store *m, const struct km_resource *owner)
{
	for (size_t t = 0; t < km_rtypes_len; t++) {
		struct table *tb = &m->tables[t];
		for (size_t i = 0; i < tb->len;) {
			if (owned_by(&tb->items[i]->r, owner)) {
				delete_at(m, tb, i);
				i = 0; /* the table may have changed through recursion */
				continue;
			}
			i++;
		}
	}
}

static void delete_at(struct mem_store *m, struct table *tb, size_t at)
{
	struct rec *rc = tb->items[at];
	memmove(&tb->items[at], &tb->items[at + 1], (tb->len - at - 1) * sizeof(*tb->items));
	tb->len--;
	tb->gen++;
	cascade(m, &rc->r);
	notify(m, CP_STORE_DELETE, &rc->r);
	free(rc);
}

static int mem_remove(struct cp_store *s, const struct km_rtype *t, struct km_str mesh,
		      struct km_str name, uint64_t version)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(t)];
	bool found;
	size_t at = search(tb, mesh, name, &found);
	if (!found)
		return -KM_E_NOT_FOUND;
	if (version && tb->items[at]->r.version != version)
		return -KM_E_CONFLICT;
	delete_at(m, tb, at);
	return 0;
}

static int mem_get(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		   struct km_str mesh, struct km_str name, struct km_resource *out)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(t)];
	bool found;
	size_t at = search(tb, mesh, name, &found);
	if (!found)
		return -KM_E_NOT_FOUND;
	copy_out(a, &tb->items[at]->r, out);
	return 0;
}

static int mem_list(struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		    const struct cp_list_opts *o, struct cp_list_result *out)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(t)];
	memset(out, 0, sizeof(*out));
	size_t want = o->size ? o->size : tb->len;
	if (want > tb->len)
		want = tb->len;
	out->items = km_arena_alloc(a, (want ? want : 1) * sizeof(*out->items));
	/* a plain listing continuing where the last one stopped: start there,
	 * its total is known */
	bool plain = !o->labels_len && !o->name_contains.len && !o->match;
	struct cursor *c = &tb->cur;
	if (plain && o->offset && c->mesh && c->gen == tb->gen && c->next_offset == o->offset &&
	    km_str_eqc(o->mesh, c->mesh)) {
		size_t i = c->next_index;
		for (; i < tb->len && out->len < want; i++) {
			const struct km_resource *r = &tb->items[i]->r;
			if (!o->mesh.len || km_str_eq(r->mesh, o->mesh))
				copy_out(a, r, &out->items[out->len++]);
		}
		out->total = c->total;
		c->next_offset = o->offset + out->len;
		c->next_index = i;
		return 0;
	}
	struct km_arena *scratch = NULL;
	bool needs_scratch = o->labels_len > 0;
	size_t next_index = tb->len;
	for (size_t i = 0; i < tb->len; i++) {
		const struct km_resource *r = &tb->items[i]->r;
		if (o->mesh.len && !km_str_eq(r->mesh, o->mesh))
			continue;
		if (needs_scratch && !scratch)
			scratch = km_arena_new(16384);
		if (!cp_store_matches(o, scratch, r))
			continue;
		size_t idx = out->total++;
		if (idx >= o->offset && out->len < want) {
			copy_out(a, r, &out->items[out->len++]);
			next_index = i + 1;
		}
	}
	km_arena_free(scratch);
	if (plain && out->len == want && o->offset + out->len < out->total) {
		free(c->mesh);
		*c = (struct cursor){.gen = tb->gen, .mesh = km_strndup(o->mesh.ptr ? o->mesh.ptr : "", o->mesh.len),
				     .next_offset = o->offset + out->len, .next_index = next_index, .total = out->total};
	}
	return 0;
}

static size_t mem_count(struct cp_store *s, const struct km_rtype *t, struct km_str mesh)
{
	struct mem_store *m = (struct mem_store *)s;
	struct table *tb = &m->tables[type_index(t)];
	if (!mesh.len)
		return tb->len;
	size_t n = 0;
	for (size_t i = 0; i < tb->len; i++)
		n += km_str_eq(tb->items[i]->r.mesh, mesh);
	return n;
}

static void mem_elect(struct cp_store *s, void (*fn)(void *ctx, bool leader), void *ctx)
{
	fn(ctx, true);
}

static void mem_free(struct cp_store *s)
{
	struct mem_store *m = (struct mem_store *)s;
	for (size_t t = 0; t < km_rtypes_len; t++) {
		for (size_t i = 0; i < m->tables[t].len; i++)
			free(m->tables[t].items[i]);
		free(m->tables[t].items);
		free(m->tables[t].cur.mesh);
	}
	free(m->tables);
	free(m);
}

static const struct cp_store_ops mem_ops = {
    .create = mem_create,
    .update = mem_update,
    .remove = mem_remove,
    .get = mem_get,
    .list = mem_list,
    .count = mem_count,
    .elect = mem_elect,
    .free = mem_free,
};

struct cp_store *cp_store_memory_new(void)
{
	struct mem_store *m = km_calloc(1, sizeof(*m));
	m->base.ops = &mem_ops;
	m->tables = km_calloc(km_rtypes_len, sizeof(*m->tables));
	return &m->base;
}
