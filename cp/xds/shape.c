/* SPDX-License-Identifier: Apache-2.0 */
#include "cp/xds/shape.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/ptab.h"

/* Shapes unused for this many contexts go; at most this many are kept (a
 * mesh where every destination has policy confs of its own makes one per
 * destination, each used once: past the cap such resources are encoded). */
#define KEEP_CONTEXTS 16
#define MAX_SHAPES    4096

enum state {
	RECORDING,
	RECORDED,
	VERIFIED,
	RETIRED
};

struct cp_xds_shape {
	char *key;
	size_t klen;
	_Atomic int state; /* enum state: set under the set's lock or by the build using it */
	struct km_pb_shape *shape;
	size_t nvars;
	struct km_str
		*vars0; /* the values it was recorded with (one allocation with their bytes) */
	uint64_t used;
};

struct cp_xds_shapes {
	pthread_mutex_t mu;
	struct km_ptab tab; /* by the key's hash */
	uint64_t epoch;
	bool verify_all;
};

struct cp_xds_shapes *cp_xds_shapes_new(void)
{
	struct cp_xds_shapes *ss = km_calloc(1, sizeof(*ss));
	pthread_mutex_init(&ss->mu, NULL);
	return ss;
}

static void shape_free(struct cp_xds_shape *s)
{
	km_pb_shape_free(s->shape);
	free(s->vars0);
	free(s->key);
	free(s);
}

static bool keep_none(void *e, void *arg)
{
	(void)arg;
	shape_free(e);
	return false;
}

/* Shapes used in the last KEEP_CONTEXTS contexts stay. */
static bool keep_recent(void *e, void *arg)
{
	const struct cp_xds_shapes *ss = arg;
	struct cp_xds_shape *s = e;
	if (s->used + KEEP_CONTEXTS >= ss->epoch)
		return true;
	shape_free(s);
	return false;
}

void cp_xds_shapes_next(struct cp_xds_shapes *ss)
{
	ss->epoch++;
	km_ptab_filter(&ss->tab, keep_recent, ss);
}

void cp_xds_shapes_clear(struct cp_xds_shapes *ss)
{
	km_ptab_filter(&ss->tab, keep_none, NULL);
}

void cp_xds_shapes_free(struct cp_xds_shapes *ss)
{
	if (!ss)
		return;
	cp_xds_shapes_clear(ss);
	km_ptab_fini(&ss->tab);
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

void cp_xds_shapes_set_verify_all(struct cp_xds_shapes *ss, bool on)
{
	ss->verify_all = on;
}

/* A fill checks a shape only with values all different from those it was
 * recorded with: a string that merely equals a value somewhere it was not
 * put (a false hole) or a value derived in another way shows then. */
static bool all_differ(const struct cp_xds_shape *s, const struct km_str *vars, size_t nvars)
{
	if (nvars != s->nvars)
		return false;
	/* the vars found by content: the others (policy conf values, holes
	 * by tag) are a conf's, the same for every destination it shapes */
	size_t nmatch = km_pb_shape_nmatch(s->shape);
	for (size_t i = 0; i < nmatch; i++)
		if (km_str_eq(vars[i], s->vars0[i]))
			return false;
	return true;
}

/* The entry for <key> of hash <h> (under the lock), or NULL. */
static struct cp_xds_shape *lookup(struct cp_xds_shapes *ss, const char *key, size_t klen,
				   uint64_t h)
{
	size_t it = 0;
	for (struct cp_xds_shape *s; (s = km_ptab_next(&ss->tab, h, &it));)
		if (s->klen == klen && memcmp(s->key, key, klen) == 0)
			return s;
	return NULL;
}

struct cp_xds_shape *cp_xds_shape_find(struct cp_xds_shapes *ss, const char *key, size_t klen,
				       const struct km_str *vars, size_t nvars)
{
	uint64_t h = km_hash(KM_FNV_INIT, key, klen);
	pthread_mutex_lock(&ss->mu);
	struct cp_xds_shape *s = lookup(ss, key, klen, h);
	if (s &&
	    (ss->verify_all || atomic_load_explicit(&s->state, memory_order_acquire) != VERIFIED ||
	     nvars != s->nvars))
		s = NULL;
	if (s)
		s->used = ss->epoch;
	pthread_mutex_unlock(&ss->mu);
	return s;
}

void cp_xds_shape_retire(struct cp_xds_shape *sh)
{
	atomic_store_explicit(&sh->state, RETIRED, memory_order_release);
}

struct cp_xds_shape *cp_xds_shape_get(struct cp_xds_shapes *ss, const char *key, size_t klen,
				      const struct km_str *vars, size_t nvars,
				      enum cp_xds_shape_use *use)
{
	uint64_t h = km_hash(KM_FNV_INIT, key, klen);
	*use = CP_XDS_SHAPE_NONE;
	pthread_mutex_lock(&ss->mu);
	struct cp_xds_shape *s = lookup(ss, key, klen, h);
	if (!s) {
		if (ss->tab.n >= MAX_SHAPES)
			goto out;
		s = km_calloc(1, sizeof(*s));
		s->key = km_malloc(klen);
		memcpy(s->key, key, klen);
		s->klen = klen;
		atomic_init(&s->state, RECORDING);
		km_ptab_add(&ss->tab, h, s);
		*use = CP_XDS_SHAPE_RECORD;
	} else {
		int st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == VERIFIED && nvars == s->nvars)
			*use = ss->verify_all ? CP_XDS_SHAPE_VERIFY : CP_XDS_SHAPE_FILL;
		else if (st == RECORDED && all_differ(s, vars, nvars))
			*use = CP_XDS_SHAPE_VERIFY;
	}
	s->used = ss->epoch;
out:
	pthread_mutex_unlock(&ss->mu);
	return s;
}

void cp_xds_shape_recorded(struct cp_xds_shape *sh, struct km_pb_shape *shape,
			   const struct km_str *vars, size_t nvars)
{
	size_t total = 0;
	for (size_t i = 0; i < nvars; i++)
		total += vars[i].len;
	struct km_str *v0 = km_malloc(nvars * sizeof(*v0) + total + 1);
	char *p = (char *)(v0 + nvars);
	for (size_t i = 0; i < nvars; i++) {
		memcpy(p, vars[i].ptr, vars[i].len);
		v0[i] = (struct km_str){p, vars[i].len};
		p += vars[i].len;
	}
	sh->vars0 = v0;
	sh->nvars = nvars;
	sh->shape = shape;
	/* what other builds read once they see the state */
	atomic_store_explicit(&sh->state, shape ? RECORDED : RETIRED, memory_order_release);
}

bool cp_xds_shape_verify(struct cp_xds_shape *sh, const struct km_str *vars, size_t nvars,
			 const void *bytes, size_t len, struct km_buf *scratch)
{
	km_buf_reset(scratch);
	bool same = km_pb_shape_fill(sh->shape, vars, nvars, scratch) == 0 && scratch->len == len &&
		    memcmp(scratch->data, bytes, len) == 0;
	if (same) {
		int st = RECORDED;
		atomic_compare_exchange_strong_explicit(&sh->state, &st, VERIFIED,
							memory_order_acq_rel, memory_order_relaxed);
	} else {
		atomic_store_explicit(&sh->state, RETIRED, memory_order_release);
		km_warn("xds",
			"an outbound resource's shape made other bytes than its encoding, not used again name=%.*s",
			nvars ? (int)vars[0].len : 0, nvars ? vars[0].ptr : "");
	}
	return same;
}

void cp_xds_shape_fill(struct cp_xds_shape *sh, const struct km_str *vars, size_t nvars,
		       struct km_buf *out)
{
	km_pb_shape_fill(sh->shape, vars, nvars, out);
}
