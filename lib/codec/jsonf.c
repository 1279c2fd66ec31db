/* SPDX-License-Identifier: Apache-2.0 */
/* Template-driven JSON construction (see jsonf.h).
 *
 * A template is compiled once: every conversion is replaced by a
 * placeholder string ("\u0001<n>") and the result parsed into a tree kept
 * for the life of the process. A call then copies that tree into the
 * caller's arena, putting each argument where its placeholder was: no text
 * is rendered and nothing is parsed again. xDS generation calls this for
 * every resource of every proxy, so the old render-then-parse (which also
 * re-rendered every embedded %J subtree) was most of its cost.
 *
 * Templates whose conversions are not whole values (inside a string, or
 * as a key) keep the render-then-parse path, as does everything once the
 * cache is full (a template built at run time is not a literal). */
#include "codec/jsonf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"

#define MAX_ARGS 64
#define MAX_TEMPLATES 1024

struct arg {
	char conv;
	union {
		struct km_str s;
		int64_t i;
		bool b;
		const struct km_json *j;
	} u;
};

struct template {
	char *fmt;          /* the format, to tell apart two formats built at one address */
	const char *key;    /* the caller's pointer */
	struct km_json *tree;   /* NULL: render and parse (see above) */
	char convs[MAX_ARGS];   /* conversion letters in order */
	size_t nconvs;
};

/* Per thread: copies of the shared templates, read without locks. */
static _Thread_local struct {
	struct template *slots; /* freed by km_json_fmt_thread_fini() */
	size_t cap, len;
} cache;

/* Every thread's templates, compiled once for the process (compiling all a
 * thread uses took milliseconds of its first builds) and kept for its life:
 * a thread's first use of a template copies it from here, under <mu>. */
static struct {
	pthread_mutex_t mu;
	struct km_arena *a; /* every compiled tree */
	struct template *slots;
	size_t cap, len;
} shared = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Placeholder string value of conversion <n>. */
static bool placeholder(const struct km_json *v, size_t *n)
{
	if (v->kind != KM_JSON_STRING || v->s.len < 2 || v->s.ptr[0] != '\x01')
		return false;
	size_t x = 0;
	for (size_t i = 1; i < v->s.len; i++) {
		if (v->s.ptr[i] < '0' || v->s.ptr[i] > '9')
			return false;
		x = x * 10 + (size_t)(v->s.ptr[i] - '0');
	}
	*n = x;
	return true;
}

/* Counts the placeholders standing as whole values, each once. */
static void count_values(const struct km_json *v, bool *seen, size_t nconvs, size_t *found)
{
	size_t n;
	if (placeholder(v, &n)) {
		if (n < nconvs && !seen[n]) {
			seen[n] = true;
			(*found)++;
		}
		return;
	}
	if (v->kind == KM_JSON_ARRAY)
		for (size_t i = 0; i < v->len; i++)
			count_values(v->items[i], seen, nconvs, found);
	if (v->kind == KM_JSON_OBJECT)
		for (size_t i = 0; i < v->len; i++)
			count_values(v->members[i].val, seen, nconvs, found);
}

static void bad_template(const char *fmt, const char *why)
{
	fprintf(stderr, "km_json_fmt: %s in %s\n", why, fmt);
	abort();
}

static void compile(struct template *t, const char *fmt)
{
	struct km_buf b = KM_BUF_INIT;
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			km_buf_putc(&b, *p);
			continue;
		}
		char c = *++p;
		if (c == '%') {
			km_buf_putc(&b, '%');
			continue;
		}
		if (!strchr("sSdDubJT", c) || !c)
			bad_template(fmt, "bad conversion");
		if (t->nconvs == MAX_ARGS)
			bad_template(fmt, "too many conversions");
		km_buf_printf(&b, "\"\\u0001%zu\"", t->nconvs);
		t->convs[t->nconvs++] = c;
	}
	struct km_json *tree = NULL;
	if (km_json_parse(shared.a, km_buf_cstr(&b), b.len, &tree, NULL) == 0) {
		bool seen[MAX_ARGS] = {0};
		size_t found = 0;
		count_values(tree, seen, t->nconvs, &found);
		if (found == t->nconvs)
			t->tree = tree;
	}
	/* a template that does not parse this way (a conversion inside a
	 * string) is checked by the render-then-parse path */
	km_buf_fini(&b);
}

void km_json_fmt_thread_fini(void)
{
	free(cache.slots);
	memset(&cache, 0, sizeof(cache));
}

/* <fmt>'s slot in <slots> (of <cap>, a power of two): its template, or
 * the empty slot where it goes; NULL when the slot at its address holds
 * another format (the same buffer reused: rendered instead). */
static struct template *slot_of(struct template *slots, size_t cap, const char *fmt)
{
	uintptr_t key = (uintptr_t)fmt;
	uint64_t h = km_fnv(KM_FNV_INIT, &key, sizeof(key));
	for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1)) {
		struct template *t = &slots[i];
		if (!t->key || (t->key == fmt && strcmp(t->fmt, fmt) == 0))
			return t;
		if (t->key == fmt)
			return NULL;
	}
}

/* The shared template of <fmt>, compiled here when it is new; NULL when
 * there is no room or its buffer held another format. */
static bool shared_copy(const char *fmt, struct template *out)
{
	pthread_mutex_lock(&shared.mu);
	if (!shared.a) {
		shared.a = km_arena_new(64 * 1024);
		shared.cap = 2 * MAX_TEMPLATES;
		shared.slots = km_calloc(shared.cap, sizeof(*shared.slots));
	}
	struct template *t = slot_of(shared.slots, shared.cap, fmt);
	if (t && !t->key) {
		if (shared.len == MAX_TEMPLATES) {
			t = NULL;
		} else {
			shared.len++;
			t->key = fmt;
			t->fmt = km_arena_strdup(shared.a, fmt);
			compile(t, fmt);
		}
	}
	if (t)
		*out = *t;
	pthread_mutex_unlock(&shared.mu);
	return t != NULL;
}

static struct template *lookup(const char *fmt)
{
	if (!cache.slots) {
		cache.cap = 2 * MAX_TEMPLATES;
		cache.slots = km_calloc(cache.cap, sizeof(*cache.slots));
	}
	struct template *t = slot_of(cache.slots, cache.cap, fmt);
	if (!t || t->key)
		return t;
	if (cache.len == MAX_TEMPLATES || !shared_copy(fmt, t))
		return NULL;
	cache.len++;
	return t;
}

static struct km_json *int_node(struct km_arena *a, int64_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	struct km_json *n = km_json_number_text(a, (struct km_str){p, (size_t)(buf + sizeof(buf) - p)});
	return n;
}

static struct km_json *arg_node(struct km_arena *a, const struct arg *x)
{
	switch (x->conv) {
	case 's':
	case 'S': return km_json_string(a, x->u.s);
	case 'b': return km_json_bool(a, x->u.b);
	case 'J': return x->u.j ? km_json_clone(a, x->u.j) : km_json_null(a);
	case 'T': return x->u.j ? (struct km_json *)x->u.j : km_json_null(a);
	default: return int_node(a, x->u.i);
	}
}

/* Copies template node <t> into <a>. Constant strings and keys stay in the
 * cache's arena, which lives as long as the process. */
static struct km_json *instantiate(struct km_arena *a, const struct km_json *t, const struct arg *args)
{
	size_t n;
	if (placeholder(t, &n))
		return arg_node(a, &args[n]);
	/* every byte of the node and its arrays is written below */
	struct km_json *c = km_arena_alloc_raw(a, sizeof(*c));
	*c = *t;
	if (t->kind == KM_JSON_ARRAY) {
		c->items = km_arena_alloc_raw(a, (t->len ? t->len : 1) * sizeof(*c->items));
		c->cap = t->len ? t->len : 1;
		for (size_t i = 0; i < t->len; i++)
			c->items[i] = instantiate(a, t->items[i], args);
	} else if (t->kind == KM_JSON_OBJECT) {
		c->members = km_arena_alloc_raw(a, (t->len ? t->len : 1) * sizeof(*c->members));
		c->cap = t->len ? t->len : 1;
		for (size_t i = 0; i < t->len; i++) {
			c->members[i].key = t->members[i].key;
			c->members[i].val = instantiate(a, t->members[i].val, args);
		}
	}
	return c;
}

/* The old way: render the text with escaped arguments, parse it. */
static struct km_json *render(struct km_arena *a, const char *fmt, const struct arg *args)
{
	struct km_buf b = KM_BUF_INIT;
	size_t k = 0;
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			km_buf_putc(&b, *p);
			continue;
		}
		if (*++p == '%') {
			km_buf_putc(&b, '%');
			continue;
		}
		const struct arg *x = &args[k++];
		switch (x->conv) {
		case 's':
		case 'S': km_json_write_string(&b, x->u.s); break;
		case 'b': km_buf_puts(&b, x->u.b ? "true" : "false"); break;
		case 'J':
		case 'T': km_json_write(&b, x->u.j, 0, 0); break;
		default: km_buf_printf(&b, "%" PRId64, x->u.i); break;
		}
	}
	struct km_json *v;
	struct km_buf err = KM_BUF_INIT;
	if (km_json_parse(a, km_buf_cstr(&b), b.len, &v, &err) != 0) {
		fprintf(stderr, "km_json_fmt: %s in %s\n", km_buf_cstr(&err), km_buf_cstr(&b));
		abort();
	}
	km_buf_fini(&err);
	km_buf_fini(&b);
	return v;
}

struct km_json *km_json_fmt(struct km_arena *a, const char *fmt, ...)
{
	struct template *t = lookup(fmt);
	struct template adhoc = {0};
	if (!t) {
		t = &adhoc;
		for (const char *p = fmt; *p; p++) {
			if (*p != '%')
				continue;
			char c = *++p;
			if (c == '%')
				continue;
			if (!c || !strchr("sSdDubJT", c))
				bad_template(fmt, "bad conversion");
			if (t->nconvs == MAX_ARGS)
				bad_template(fmt, "too many conversions");
			t->convs[t->nconvs++] = c;
		}
	}
	struct arg args[MAX_ARGS];
	va_list ap;
	va_start(ap, fmt);
	for (size_t i = 0; i < t->nconvs; i++) {
		struct arg *x = &args[i];
		x->conv = t->convs[i];
		switch (x->conv) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			x->u.s = km_str_c(s ? s : "");
			break;
		}
		case 'S': {
			const struct km_str *s = va_arg(ap, const struct km_str *);
			x->u.s = s ? *s : KM_STR("");
			break;
		}
		case 'd': x->u.i = va_arg(ap, int); break;
		case 'u': x->u.i = va_arg(ap, unsigned); break;
		case 'D': x->u.i = va_arg(ap, int64_t); break;
		case 'b': x->u.b = va_arg(ap, int) != 0; break;
		case 'J':
		case 'T': x->u.j = va_arg(ap, const struct km_json *); break;
		}
	}
	va_end(ap);
	return t->tree ? instantiate(a, t->tree, args) : render(a, fmt, args);
}
