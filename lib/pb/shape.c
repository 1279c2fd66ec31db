/* SPDX-License-Identifier: Apache-2.0 */
#include "pb/shape.h"

#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "pb/wire.h"

enum op_kind {
	OP_COPY,
	OP_HOLE,
	OP_OPEN,
	OP_CLOSE
};

struct op {
	uint32_t kind;
	uint32_t a; /* COPY: offset in the template; HOLE: the var */
	uint32_t n; /* COPY: bytes */
};

struct km_pb_shape {
	size_t nvars, nmatch, nholes;
	size_t nspans; /* OP_OPEN steps */
	size_t nops;
	struct op *ops;
	uint8_t *tpl; /* the recorded bytes */
	size_t tpl_len;
};

/* ---- recording ---- */

static void item_add(struct km_pb_rec *r, struct km_pb_rec_item it)
{
	if (r->nitems == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 32;
		r->items = km_realloc(r->items, r->cap * sizeof(*r->items));
	}
	r->items[r->nitems++] = it;
}

bool km_pb_rec_next_hole(const struct km_pb_rec *r, const char *p, size_t n, size_t from,
			 size_t *at, size_t *len, uint32_t *var)
{
	/* only where some value's first byte is (every string of a message
	 * is searched) */
	uint64_t first[4] = {0};
	for (size_t v = 0; v < r->nmatch; v++)
		if (r->vars[v].len) {
			unsigned char c = (unsigned char)r->vars[v].ptr[0];
			first[c >> 6] |= 1ull << (c & 63);
		}
	for (size_t i = from; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (!(first[c >> 6] & (1ull << (c & 63))))
			continue;
		size_t best = 0;
		for (size_t v = 0; v < r->nmatch; v++) {
			size_t l = r->vars[v].len;
			if (l > best && l <= n - i && memcmp(p + i, r->vars[v].ptr, l) == 0) {
				best = l;
				*var = (uint32_t)v;
			}
		}
		if (best) {
			*at = i;
			*len = best;
			return true;
		}
	}
	return false;
}

int km_pb_rec_tag_var(const struct km_pb_rec *r, uint16_t tag)
{
	for (size_t i = 0; tag && r->tags && r->nmatch + i < r->nvars; i++)
		if (r->tags[i] == tag)
			return (int)(r->nmatch + i);
	return -1;
}

void km_pb_rec_hole(struct km_pb_rec *r, size_t pos, size_t len, uint32_t var)
{
	item_add(r, (struct km_pb_rec_item){
			    .pos = pos, .len = (uint32_t)len, .var = var, .hole = true});
}

void km_pb_rec_open(struct km_pb_rec *r)
{
	if (r->depth == sizeof(r->stack) / sizeof(r->stack[0])) {
		r->overflow = true;
		r->depth++;
		return;
	}
	r->stack[r->depth++] = r->nitems;
}

void km_pb_rec_close(struct km_pb_rec *r, size_t pos, size_t prefix, size_t end)
{
	if (r->depth > sizeof(r->stack) / sizeof(r->stack[0])) {
		r->depth--;
		return;
	}
	size_t first = r->stack[--r->depth];
	if (prefix > 1)
		for (size_t i = first; i < r->nitems; i++) {
			r->items[i].pos += prefix - 1;
			r->items[i].end += prefix - 1;
		}
	/* a span with no hole inside keeps its bytes: not worth an item */
	bool dirty = false;
	for (size_t i = first; i < r->nitems && !dirty; i++)
		dirty = r->items[i].hole;
	if (dirty)
		item_add(r,
			 (struct km_pb_rec_item){.pos = pos, .end = end, .len = (uint32_t)prefix});
}

/* ---- making the steps ---- */

struct event {
	size_t pos;
	size_t skip; /* template bytes it stands for */
	size_t seq;  /* a close or a hole: its item's index (items are noted
			as holes are written and as spans close) */
	enum op_kind kind;
	uint32_t var;
};

/* Closes and empty holes: an empty hole (a Duration of 0s) can sit where
 * spans end, inside some of them: the order they were noted in says which */
static bool at_end(const struct event *e)
{
	return e->kind == OP_CLOSE || (e->kind == OP_HOLE && !e->skip);
}

static int event_cmp(const void *x, const void *y)
{
	const struct event *a = x, *b = y;
	if (a->pos != b->pos)
		return a->pos < b->pos ? -1 : 1;
	/* at one place: spans ending there close, innermost first (and
	 * empty holes in their turn), before anything starts */
	int ra = at_end(a) ? 0 : 1, rb = at_end(b) ? 0 : 1;
	if (ra != rb)
		return ra - rb;
	if (!ra && a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

static void op_add(struct km_pb_shape *s, size_t *cap, struct op o)
{
	if (s->nops == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		s->ops = km_realloc(s->ops, *cap * sizeof(*s->ops));
	}
	s->ops[s->nops++] = o;
}

static struct km_pb_shape *shape_make(const struct km_pb_rec *r, const uint8_t *bytes, size_t len)
{
	size_t nev = 0;
	struct event *ev = km_malloc((r->nitems + 1) * 2 * sizeof(*ev));
	size_t nholes = 0;
	for (size_t i = 0; i < r->nitems; i++) {
		const struct km_pb_rec_item *it = &r->items[i];
		if (it->hole) {
			ev[nev++] = (struct event){
				.pos = it->pos, .skip = it->len, .seq = i, .kind = OP_HOLE, .var = it->var};
			nholes++;
		} else {
			ev[nev++] =
				(struct event){.pos = it->pos, .skip = it->len, .kind = OP_OPEN};
			ev[nev++] = (struct event){.pos = it->end, .seq = i, .kind = OP_CLOSE};
		}
	}
	/* usually a few dozen events, partly in order already (items are
	 * added as their spans close): insertion sort, without qsort's
	 * indirect calls */
	if (nev > 64)
		qsort(ev, nev, sizeof(*ev), event_cmp);
	for (size_t i = 1; nev <= 64 && i < nev; i++) {
		struct event e = ev[i];
		size_t j = i;
		for (; j > 0 && event_cmp(&ev[j - 1], &e) > 0; j--)
			ev[j] = ev[j - 1];
		ev[j] = e;
	}
	struct km_pb_shape *s = km_calloc(1, sizeof(*s));
	s->nvars = r->nvars;
	s->nmatch = r->nmatch;
	s->nholes = nholes;
	s->tpl = km_malloc(len ? len : 1);
	if (len)
		memcpy(s->tpl, bytes, len);
	s->tpl_len = len;
	size_t cap = 0, cur = 0;
	for (size_t i = 0; i < nev; i++) {
		if (ev[i].pos > cur)
			op_add(s, &cap,
			       (struct op){.kind = OP_COPY,
					   .a = (uint32_t)cur,
					   .n = (uint32_t)(ev[i].pos - cur)});
		op_add(s, &cap, (struct op){.kind = ev[i].kind, .a = ev[i].var});
		s->nspans += ev[i].kind == OP_OPEN;
		cur = ev[i].pos + ev[i].skip;
	}
	if (len > cur)
		op_add(s, &cap,
		       (struct op){
			       .kind = OP_COPY, .a = (uint32_t)cur, .n = (uint32_t)(len - cur)});
	free(ev);
	return s;
}

int km_pb_shape_record(struct km_arena *a, const ProtobufCMessageDescriptor *d,
		       const struct km_json *j, const struct km_str *vars, size_t nvars,
		       struct km_buf *bytes, struct km_pb_shape **shape)
{
	return km_pb_shape_record_tagged(a, d, j, vars, nvars, NULL, nvars, bytes, shape);
}

int km_pb_shape_record_tagged(struct km_arena *a, const ProtobufCMessageDescriptor *d,
			      const struct km_json *j, const struct km_str *vars, size_t nmatch,
			      const uint16_t *tags, size_t nvars, struct km_buf *bytes,
			      struct km_pb_shape **shape)
{
	*shape = NULL;
	struct km_pb_rec r = {.vars = vars, .nvars = nvars, .nmatch = tags ? nmatch : nvars, .tags = tags};
	size_t start = bytes->len;
	int rc = km_pb_write_json_rec(a, d, j, bytes, &r);
	/* an empty encoding may leave <bytes> without storage */
	if (rc == 0 && !r.overflow && !r.bad && bytes->len - start < UINT32_MAX)
		*shape = shape_make(&r, bytes->data ? (const uint8_t *)bytes->data + start : (const uint8_t *)"",
				    bytes->len - start);
	free(r.items);
	return rc;
}

/* ---- filling ---- */

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	for (; v >= 0x80; v >>= 7)
		n++;
	return n;
}

/* Two passes over the steps: the first sizes every span (a span's length
 * counts the length prefixes of the spans inside it, known when they
 * close), the second writes each byte once into room taken at once. */
int km_pb_shape_fill(const struct km_pb_shape *s, const struct km_str *vars, size_t nvars,
		     struct km_buf *out)
{
	if (nvars != s->nvars)
		return -1;
	size_t start[64], depth = 0; /* spans nest no deeper than km_pb_rec's stack */
	size_t open_at[64];
	size_t small[128], *span = s->nspans <= 128 ? small : km_malloc(s->nspans * sizeof(*span));
	size_t len = 0, nspan = 0;
	for (size_t i = 0; i < s->nops; i++) {
		const struct op *o = &s->ops[i];
		switch (o->kind) {
		case OP_COPY: len += o->n; break;
		case OP_HOLE: len += vars[o->a].len; break;
		case OP_OPEN:
			open_at[depth] = nspan++;
			start[depth++] = len;
			break;
		case OP_CLOSE: {
			depth--;
			size_t body = len - start[depth];
			span[open_at[depth]] = body;
			len += varint_len(body);
			break;
		}
		}
	}
	uint8_t *w = (uint8_t *)km_buf_extend(out, len);
	for (size_t i = 0, k = 0; w && i < s->nops; i++) {
		const struct op *o = &s->ops[i];
		switch (o->kind) {
		case OP_COPY:
			memcpy(w, s->tpl + o->a, o->n);
			w += o->n;
			break;
		case OP_HOLE:
			if (vars[o->a].len)
				memcpy(w, vars[o->a].ptr, vars[o->a].len);
			w += vars[o->a].len;
			break;
		case OP_OPEN: w += km_pb_wire_varint(span[k++], w); break;
		case OP_CLOSE: break;
		}
	}
	if (span != small)
		free(span);
	return w ? 0 : -1;
}

size_t km_pb_shape_nmatch(const struct km_pb_shape *s)
{
	return s ? s->nmatch : 0;
}

size_t km_pb_shape_holes(const struct km_pb_shape *s)
{
	return s ? s->nholes : 0;
}

void km_pb_shape_free(struct km_pb_shape *s)
{
	if (!s)
		return;
	free(s->ops);
	free(s->tpl);
	free(s);
}
