/* SPDX-License-Identifier: Apache-2.0 */
/* Memo of derived facts (see memo.h): a table (base/ptab.h) keyed by the
 * hash of mesh and name; sweeping rebuilds it without the unused entries.
 * A mesh listed whole once is kept whole by the owner's change events: the
 * records they name are read again one by one (or the mesh listed again,
 * when too many are), the rest is the table. */
#include "cp/memo.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/ptab.h"
#include "cp/store/store.h"

struct entry {
	char *mesh, *name;
	uint64_t version;
	int64_t ctime, mtime;
	bool used;
	bool gone;      /* deleted from the store: skipped, dropped by the next sweep */
	bool ordered;   /* in its mesh's view order (struct view) */
	unsigned same;  /* touches to come that change nothing (cp_memo_same) */
	uint64_t listed; /* the listing of its mesh that last saw it */
	struct km_arena *a; /* created on first use by compute */
	_Alignas(16) unsigned char fact[];
};

/* cp_memo_mark_*: a handful of meshes, searched linearly */
struct mark {
	char *mesh;
	uint64_t fp;
};

/* A mesh the table holds whole (listed, then kept by cp_memo_touch), with
 * the records written since: a handful of meshes, searched linearly. */
struct view {
	char *mesh;
	bool whole;    /* every record of the mesh is in the table, but <stale> */
	bool indexed;  /* since the last sweep (an unindexed mesh's entries go) */
	char **stale;  /* names to read again (NULL with <overflow>) */
	size_t nstale, cap;
	bool overflow; /* too many to read one by one: list the mesh again */
	/* the mesh's entries not gone, sorted by name, as the last index read
	 * them: valid while the memo's <gen> is <order_gen> */
	struct entry **order;
	size_t norder, ordercap;
	uint64_t order_gen;
};

/* Above this many records written since the last index, listing the mesh
 * page by page is cheaper than reading them one query each. */
#define MAX_STALE 256

struct cp_memo {
	size_t fact_size;
	cp_memo_fn compute;
	struct km_ptab tab; /* entries by the hash of mesh and name */
	struct mark *marks;
	size_t nmarks;
	struct view *views;
	size_t nviews;
	uint64_t listings;
	bool last_same; /* the last event followed was a write declared same */
	/* moves when an entry is added or dropped or its <gone> changes: the
	 * views' orders are stale then (starts at 1: order_gen 0 never holds);
	 * an order older than <drop_gen> may hold freed entries and is built
	 * again from the table, a newer one takes in the <fresh> entries (added
	 * or back from gone since) by a merge */
	uint64_t gen, drop_gen;
	struct entry **fresh;
	size_t nfresh, capfresh;
};

struct cp_memo *cp_memo_new(size_t fact_size, cp_memo_fn compute)
{
	struct cp_memo *m = km_calloc(1, sizeof(*m));
	m->fact_size = fact_size;
	m->compute = compute;
	m->gen = 1;
	return m;
}

static void entry_free(struct entry *e)
{
	km_arena_free(e->a);
	free(e->mesh);
	free(e->name);
	free(e);
}

static bool drop(void *e, void *arg)
{
	(void)arg;
	entry_free(e);
	return false;
}

static void stale_clear(struct view *v)
{
	for (size_t i = 0; i < v->nstale; i++)
		free(v->stale[i]);
	free(v->stale);
	v->stale = NULL;
	v->nstale = v->cap = 0;
}

void cp_memo_free(struct cp_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nviews; i++) {
		stale_clear(&m->views[i]);
		free(m->views[i].mesh);
		free(m->views[i].order);
	}
	free(m->views);
	free(m->fresh);
	km_ptab_filter(&m->tab, drop, NULL);
	km_ptab_fini(&m->tab);
	for (size_t i = 0; i < m->nmarks; i++)
		free(m->marks[i].mesh);
	free(m->marks);
	free(m);
}

static uint64_t key_hash(struct km_str mesh, struct km_str name)
{
	return km_fnv(km_fnv_sep(km_fnv(KM_FNV_INIT, mesh.ptr, mesh.len), 0), name.ptr, name.len);
}

/* What a sweep keeps: entries read since the last one and not deleted
 * (marked unread for the next). */
static bool keep_used(void *e, void *arg)
{
	(void)arg;
	struct entry *x = e;
	if (!x->used || x->gone) {
		entry_free(x);
		return false;
	}
	x->used = false;
	return true;
}

static void compute(struct cp_memo *m, struct entry *e, const struct km_resource *r)
{
	km_arena_free(e->a);
	e->a = km_arena_new(512);
	memset(e->fact, 0, m->fact_size);
	e->version = r->version;
	e->ctime = r->ctime;
	e->mtime = r->mtime;
	m->compute(e->a, r, e->fact);
}

static struct entry *lookup(struct cp_memo *m, const struct km_resource *r);

const void *cp_memo_get(struct cp_memo *m, const struct km_resource *r)
{
	return lookup(m, r)->fact;
}

#define PAGE 1000

static struct view *view_of(struct cp_memo *m, struct km_str mesh, bool create)
{
	for (size_t i = 0; i < m->nviews; i++)
		if (km_str_eqc(mesh, m->views[i].mesh))
			return &m->views[i];
	if (!create)
		return NULL;
	m->views = km_realloc(m->views, (m->nviews + 1) * sizeof(*m->views));
	struct view *v = &m->views[m->nviews++];
	memset(v, 0, sizeof(*v));
	v->mesh = km_strndup(mesh.ptr ? mesh.ptr : "", mesh.len);
	return v;
}

static struct entry *find(const struct cp_memo *m, struct km_str mesh, struct km_str name)
{
	uint64_t h = key_hash(mesh, name);
	size_t it = 0;
	for (struct entry *e; (e = km_ptab_next(&m->tab, h, &it));)
		if (km_str_eqc(mesh, e->mesh) && km_str_eqc(name, e->name))
			return e;
	return NULL;
}

const void *cp_memo_peek(const struct cp_memo *m, struct km_str mesh, struct km_str name)
{
	struct entry *e = find(m, mesh, name);
	return e && !e->gone ? e->fact : NULL;
}

void cp_memo_same(struct cp_memo *m, struct km_str mesh, struct km_str name)
{
	struct entry *e = find(m, mesh, name);
	if (e && !e->gone)
		e->same++;
}

void cp_memo_same_cancel(struct cp_memo *m, struct km_str mesh, struct km_str name)
{
	struct entry *e = find(m, mesh, name);
	if (e && e->same)
		e->same--;
}

bool cp_memo_touch(struct cp_memo *m, struct km_str mesh, struct km_str name)
{
	struct entry *e = find(m, mesh, name);
	if (e && e->same) {
		e->same--;
		return true;
	}
	struct view *v = view_of(m, mesh, false);
	if (!v || !v->whole || v->overflow)
		return false; /* its next index lists the mesh anyway */
	if (v->nstale == MAX_STALE) {
		stale_clear(v);
		v->overflow = true;
		return false;
	}
	if (v->nstale == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 16;
		v->stale = km_realloc(v->stale, v->cap * sizeof(*v->stale));
	}
	v->stale[v->nstale++] = km_strndup(name.ptr ? name.ptr : "", name.len);
	return false;
}

void cp_memo_forget(struct cp_memo *m)
{
	/* the events those writes were to send may be among the lost */
	size_t it = 0;
	for (struct entry *e; (e = km_ptab_each(&m->tab, &it));)
		e->same = 0;
	for (size_t i = 0; i < m->nviews; i++) {
		stale_clear(&m->views[i]);
		m->views[i].whole = m->views[i].overflow = false;
	}
}

bool cp_memo_follow(struct cp_memo *m, const char *type, enum cp_store_op op, const struct km_rtype *t,
		    struct km_str mesh, struct km_str name)
{
	m->last_same = false;
	if (op == CP_STORE_RESYNC)
		cp_memo_forget(m);
	else if (t && strcmp(t->name, type) == 0)
		m->last_same = cp_memo_touch(m, mesh, name);
	return m->last_same;
}

bool cp_memo_last_same(const struct cp_memo *m)
{
	return m->last_same;
}

/* The records written since <v>'s last index, read again (in one store
 * call: one query on PostgreSQL). */
static int reread(struct cp_memo *m, struct cp_store *s, const struct km_rtype *t, struct view *v)
{
	if (!v->nstale)
		return 0;
	struct km_arena *a = km_arena_new(16384);
	struct km_str *names = km_arena_alloc(a, v->nstale * sizeof(*names));
	struct km_resource *rs = km_arena_alloc(a, v->nstale * sizeof(*rs));
	int *rcs = km_arena_alloc(a, v->nstale * sizeof(*rcs));
	for (size_t i = 0; i < v->nstale; i++)
		names[i] = km_str_c(v->stale[i]);
	int rc = cp_store_get_many(s, a, t, km_str_c(v->mesh), names, v->nstale, rs, rcs);
	for (size_t i = 0; !rc && i < v->nstale; i++) {
		if (rcs[i] == 0) {
			lookup(m, &rs[i]);
		} else {
			struct entry *e = find(m, km_str_c(v->mesh), names[i]);
			if (e && !e->gone) {
				e->gone = true;
				m->gen++;
			}
		}
	}
	km_arena_free(a);
	stale_clear(v);
	return rc;
}

/* Every record of <v>'s mesh into the table, page by page; what the table
 * held that the listing did not name is gone. */
static int list_whole(struct cp_memo *m, struct cp_store *s, const struct km_rtype *t, struct view *v)
{
	uint64_t id = ++m->listings;
	struct km_str mesh = km_str_c(v->mesh);
	for (size_t offset = 0;;) {
		struct km_arena *page = km_arena_new(64 * 1024);
		struct cp_list_opts o = {.mesh = mesh, .offset = offset, .size = PAGE};
		struct cp_list_result l;
		int rc = cp_store_list(s, page, t, &o, &l);
		if (rc) {
			km_arena_free(page);
			return rc;
		}
		for (size_t i = 0; i < l.len; i++)
			lookup(m, &l.items[i])->listed = id;
		km_arena_free(page);
		offset += l.len;
		if (!l.len || offset >= l.total)
			break;
	}
	size_t it = 0;
	for (struct entry *e; (e = km_ptab_each(&m->tab, &it));)
		if (e->listed != id && !e->gone && strcmp(e->mesh, v->mesh) == 0) {
			e->gone = true;
			m->gen++;
		}
	stale_clear(v);
	v->overflow = false;
	v->whole = true;
	return 0;
}

static int by_name(const void *x, const void *y)
{
	return strcmp((*(struct entry *const *)x)->name, (*(struct entry *const *)y)->name);
}

static void fresh_add(struct cp_memo *m, struct entry *e)
{
	if (m->nfresh > 2 * m->tab.n + 1024) {
		/* a memo read without indexes: every order is built anew instead */
		m->nfresh = 0;
		m->drop_gen = ++m->gen;
	}
	if (m->nfresh == m->capfresh) {
		m->capfresh = m->capfresh ? m->capfresh * 2 : 256;
		m->fresh = km_realloc(m->fresh, m->capfresh * sizeof(*m->fresh));
	}
	m->fresh[m->nfresh++] = e;
}

static void order_room(struct view *v, size_t n)
{
	if (n <= v->ordercap)
		return;
	while (v->ordercap < n)
		v->ordercap = v->ordercap ? v->ordercap * 2 : 256;
	v->order = km_realloc(v->order, v->ordercap * sizeof(*v->order));
}

/* <v>'s order built from the whole table. */
static void order_build(struct cp_memo *m, struct view *v)
{
	size_t n = 0, it = 0;
	for (struct entry *e; (e = km_ptab_each(&m->tab, &it));) {
		if (strcmp(e->mesh, v->mesh) != 0)
			continue;
		e->ordered = !e->gone;
		if (e->gone)
			continue;
		order_room(v, n + 1);
		v->order[n++] = e;
	}
	if (n)
		qsort(v->order, n, sizeof(*v->order), by_name);
	v->norder = n;
}

/* <v>'s order with the fresh entries of its mesh merged in and the gone
 * ones out: what came since costs its own sort, not the mesh's. */
static void order_merge(struct cp_memo *m, struct view *v)
{
	struct entry **nw = NULL;
	size_t nn = 0, capnw = 0, keep = 0;
	for (size_t i = 0; i < m->nfresh; i++) {
		struct entry *e = m->fresh[i];
		if (strcmp(e->mesh, v->mesh) != 0) {
			m->fresh[keep++] = e;
			continue;
		}
		if (e->gone || e->ordered)
			continue;
		e->ordered = true;
		if (nn == capnw) {
			capnw = capnw ? capnw * 2 : 64;
			nw = km_realloc(nw, capnw * sizeof(*nw));
		}
		nw[nn++] = e;
	}
	m->nfresh = keep;
	if (nn)
		qsort(nw, nn, sizeof(*nw), by_name);
	size_t cap = v->norder + nn + 1;
	struct entry **out = km_malloc(cap * sizeof(*out));
	size_t n = 0, i = 0, k = 0;
	while (i < v->norder || k < nn) {
		struct entry *e;
		if (k == nn || (i < v->norder && strcmp(v->order[i]->name, nw[k]->name) <= 0))
			e = v->order[i++];
		else
			e = nw[k++];
		if (e->gone) {
			e->ordered = false; /* back in by fresh_add if it comes back */
			continue;
		}
		out[n++] = e;
	}
	free(nw);
	free(v->order);
	v->order = out;
	v->norder = n;
	v->ordercap = cap;
}

/* The table's entries of <v>'s mesh, sorted by name, marked read: an
 * order kept between calls, changed only by the entries that came, went
 * or were deleted since (a controller pass after status writes reads the
 * same order; one during a registration burst merges the new ones in). */
static void collect(struct cp_memo *m, struct view *v, struct km_arena *a, struct cp_memo_index *out)
{
	if (v->order_gen != m->gen) {
		if (!v->order_gen || v->order_gen < m->drop_gen)
			order_build(m, v);
		else
			order_merge(m, v);
		v->order_gen = m->gen;
	}
	size_t n = v->norder;
	out->names = km_arena_alloc(a, (n + 1) * sizeof(*out->names));
	out->facts = km_arena_alloc(a, (n + 1) * sizeof(*out->facts));
	for (size_t i = 0; i < n; i++) {
		struct entry *e = v->order[i];
		e->used = true;
		out->names[i] = e->name;
		out->facts[i] = e->fact;
	}
	out->n = n;
}

int cp_memo_index(struct cp_memo *m, struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		  struct km_str mesh, struct cp_memo_index *out)
{
	memset(out, 0, sizeof(*out));
	struct view *v = view_of(m, mesh, true);
	v->indexed = true;
	int rc = v->whole && !v->overflow ? reread(m, s, t, v) : list_whole(m, s, t, v);
	if (rc) {
		/* whatever was read is in the table; the next index lists whole */
		v->whole = false;
		return rc;
	}
	collect(m, v, a, out);
	return 0;
}


static int name_key(const void *key, const void *elt)
{
	return km_str_cmp(*(const struct km_str *)key, km_str_c(*(const char *const *)elt));
}

const void *cp_memo_index_find(const struct cp_memo_index *x, struct km_str name)
{
	const char *const *at = x->n ? bsearch(&name, x->names, x->n, sizeof(*x->names), name_key) : NULL;
	return at ? x->facts[at - x->names] : NULL;
}

static struct entry *lookup(struct cp_memo *m, const struct km_resource *r)
{
	struct entry *e = find(m, r->mesh, r->name);
	if (e) {
		if (e->gone || e->version != r->version || e->ctime != r->ctime || e->mtime != r->mtime)
			compute(m, e, r);
		if (e->gone) {
			e->gone = false;
			m->gen++;
			if (!e->ordered)
				fresh_add(m, e);
		}
		e->used = true;
		return e;
	}
	e = km_calloc(1, sizeof(*e) + m->fact_size);
	e->mesh = km_strndup(r->mesh.ptr ? r->mesh.ptr : "", r->mesh.len);
	e->name = km_strndup(r->name.ptr ? r->name.ptr : "", r->name.len);
	e->used = true;
	compute(m, e, r);
	km_ptab_add(&m->tab, key_hash(r->mesh, r->name), e);
	m->gen++;
	fresh_add(m, e);
	return e;
}

void cp_memo_sweep(struct cp_memo *m)
{
	size_t n = m->tab.n;
	km_ptab_filter(&m->tab, keep_used, NULL);
	if (m->tab.n != n) {
		/* what went may be in an order or the fresh list */
		m->drop_gen = ++m->gen;
		m->nfresh = 0;
	}
	/* a mesh no index read since the last sweep lost its entries */
	for (size_t i = 0; i < m->nviews; i++) {
		struct view *v = &m->views[i];
		if (!v->indexed) {
			stale_clear(v);
			v->whole = v->overflow = false;
		}
		v->indexed = false;
	}
}

size_t cp_memo_len(const struct cp_memo *m)
{
	return m->tab.n;
}

uint64_t cp_memo_index_fp(const struct cp_memo_index *x, size_t fact_size)
{
	uint64_t h = KM_FNV_INIT;
	for (size_t i = 0; i < x->n; i++) {
		h = km_hash(h, x->names[i], strlen(x->names[i]) + 1);
		h = km_hash(h, x->facts[i], fact_size);
	}
	return h;
}

bool cp_memo_mark_get(const struct cp_memo *m, const char *mesh, uint64_t *fp)
{
	for (size_t i = 0; i < m->nmarks; i++)
		if (strcmp(m->marks[i].mesh, mesh) == 0) {
			*fp = m->marks[i].fp;
			return true;
		}
	return false;
}

void cp_memo_mark_set(struct cp_memo *m, const char *mesh, uint64_t fp)
{
	for (size_t i = 0; i < m->nmarks; i++)
		if (strcmp(m->marks[i].mesh, mesh) == 0) {
			m->marks[i].fp = fp;
			return;
		}
	m->marks = km_realloc(m->marks, (m->nmarks + 1) * sizeof(*m->marks));
	m->marks[m->nmarks++] = (struct mark){km_strdup(mesh), fp};
}
