/* SPDX-License-Identifier: Apache-2.0 */
/* Memo of derived facts (see memo.h): an open-addressing table keyed by the
 * hash of mesh and name; sweeping rebuilds it without the unused entries. */
#include "cp/memo.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "cp/store/store.h"

struct entry {
	uint64_t h;
	char *mesh, *name;
	uint64_t version;
	int64_t ctime, mtime;
	bool used;
	struct km_arena *a; /* created on first use by compute */
	_Alignas(16) unsigned char fact[];
};

/* cp_memo_mark_*: a handful of meshes, searched linearly */
struct mark {
	char *mesh;
	uint64_t fp;
};

struct cp_memo {
	size_t fact_size;
	cp_memo_fn compute;
	struct entry **slots;
	size_t cap, len;
	struct mark *marks;
	size_t nmarks;
};

struct cp_memo *cp_memo_new(size_t fact_size, cp_memo_fn compute)
{
	struct cp_memo *m = km_calloc(1, sizeof(*m));
	m->fact_size = fact_size;
	m->compute = compute;
	m->cap = 64;
	m->slots = km_calloc(m->cap, sizeof(*m->slots));
	return m;
}

static void entry_free(struct entry *e)
{
	km_arena_free(e->a);
	free(e->mesh);
	free(e->name);
	free(e);
}

void cp_memo_free(struct cp_memo *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			entry_free(m->slots[i]);
	free(m->slots);
	for (size_t i = 0; i < m->nmarks; i++)
		free(m->marks[i].mesh);
	free(m->marks);
	free(m);
}

static uint64_t key_hash(struct km_str mesh, struct km_str name)
{
	return km_fnv(km_fnv_sep(km_fnv(KM_FNV_INIT, mesh.ptr, mesh.len), 0), name.ptr, name.len);
}

static void insert(struct entry **slots, size_t cap, struct entry *e)
{
	size_t i = e->h & (cap - 1);
	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

static void rehash(struct cp_memo *m, size_t cap, bool drop_unused)
{
	struct entry **slots = km_calloc(cap, sizeof(*slots));
	size_t len = 0;
	for (size_t i = 0; i < m->cap; i++) {
		struct entry *e = m->slots[i];
		if (!e)
			continue;
		if (drop_unused && !e->used) {
			entry_free(e);
			continue;
		}
		e->used = !drop_unused && e->used;
		insert(slots, cap, e);
		len++;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	m->len = len;
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

struct pair {
	const char *name;
	const void *fact;
};

static int by_name(const void *x, const void *y)
{
	return strcmp(((const struct pair *)x)->name, ((const struct pair *)y)->name);
}

int cp_memo_index(struct cp_memo *m, struct cp_store *s, struct km_arena *a, const struct km_rtype *t,
		  struct km_str mesh, struct cp_memo_index *out)
{
	memset(out, 0, sizeof(*out));
	struct pair *v = NULL;
	size_t n = 0, cap = 0;
	for (size_t offset = 0;;) {
		struct km_arena *page = km_arena_new(64 * 1024);
		struct cp_list_opts o = {.mesh = mesh, .offset = offset, .size = PAGE};
		struct cp_list_result l;
		int rc = cp_store_list(s, page, t, &o, &l);
		if (rc) {
			km_arena_free(page);
			free(v);
			return rc;
		}
		for (size_t i = 0; i < l.len; i++) {
			struct entry *e = lookup(m, &l.items[i]);
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				v = km_realloc(v, cap * sizeof(*v));
			}
			v[n++] = (struct pair){e->name, e->fact};
		}
		km_arena_free(page);
		offset += l.len;
		if (!l.len || offset >= l.total)
			break;
	}
	if (n)
		qsort(v, n, sizeof(*v), by_name);
	out->names = km_arena_alloc(a, (n + 1) * sizeof(*out->names));
	out->facts = km_arena_alloc(a, (n + 1) * sizeof(*out->facts));
	for (size_t i = 0; i < n; i++) {
		out->names[i] = v[i].name;
		out->facts[i] = v[i].fact;
	}
	out->n = n;
	free(v);
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
	uint64_t h = key_hash(r->mesh, r->name);
	size_t i = h & (m->cap - 1);
	for (; m->slots[i]; i = (i + 1) & (m->cap - 1)) {
		struct entry *e = m->slots[i];
		if (e->h == h && km_str_eqc(r->mesh, e->mesh) && km_str_eqc(r->name, e->name)) {
			if (e->version != r->version || e->ctime != r->ctime || e->mtime != r->mtime)
				compute(m, e, r);
			e->used = true;
			return e;
		}
	}
	struct entry *e = km_calloc(1, sizeof(*e) + m->fact_size);
	e->h = h;
	e->mesh = km_strndup(r->mesh.ptr ? r->mesh.ptr : "", r->mesh.len);
	e->name = km_strndup(r->name.ptr ? r->name.ptr : "", r->name.len);
	e->used = true;
	compute(m, e, r);
	if ((m->len + 1) * 2 > m->cap)
		rehash(m, m->cap * 2, false);
	insert(m->slots, m->cap, e);
	m->len++;
	return e;
}

void cp_memo_sweep(struct cp_memo *m)
{
	size_t cap = m->cap;
	while (cap > 64 && m->len * 4 < cap)
		cap /= 2;
	rehash(m, cap, true);
}

size_t cp_memo_len(const struct cp_memo *m)
{
	return m->len;
}

uint64_t cp_memo_index_fp(const struct cp_memo_index *x, size_t fact_size)
{
	uint64_t h = KM_FNV_INIT;
	for (size_t i = 0; i < x->n; i++) {
		h = km_fnv(h, x->names[i], strlen(x->names[i]) + 1);
		h = km_fnv(h, x->facts[i], fact_size);
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
