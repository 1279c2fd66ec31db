/* SPDX-License-Identifier: Apache-2.0 */
/* JSON parser and writer over the arena document model. The parser is a
 * recursive descent with a depth cap; errors mimic Go's encoding/json text
 * because upstream Kuma surfaces those strings in API errors. */
#include "codec/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"

struct parser {
	struct km_arena *a;
	const char *p;
	const char *end;
	struct km_buf *err;
	int depth;
	bool failed;
};

static void fail_char(struct parser *ps, const char *context)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (!ps->err)
		return;
	if (ps->p >= ps->end) {
		km_buf_puts(ps->err, "unexpected end of JSON input");
		return;
	}
	unsigned char c = (unsigned char)*ps->p;
	if (c == '\'')
		km_buf_printf(ps->err, "invalid character '\\'' %s", context);
	else if (c == '"')
		km_buf_printf(ps->err, "invalid character '\"' %s", context);
	else if (c < 0x20 || c >= 0x7f)
		km_buf_printf(ps->err, "invalid character '\\x%02x' %s", c, context);
	else
		km_buf_printf(ps->err, "invalid character '%c' %s", c, context);
}

static void fail_msg(struct parser *ps, const char *msg)
{
	if (ps->failed)
		return;
	ps->failed = true;
	if (ps->err)
		km_buf_puts(ps->err, msg);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end &&
	       (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static struct km_json *node(struct km_arena *a, enum km_json_kind k)
{
	struct km_json *v = km_arena_alloc(a, sizeof(*v));
	v->kind = k;
	return v;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static size_t put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static int read_hex4(const char *p, const char *end, unsigned *out)
{
	if (end - p < 4)
		return -1;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + (unsigned)h;
	}
	*out = v;
	return 0;
}

/* On entry ps->p is at the opening quote. */
static int parse_string(struct parser *ps, struct km_str *out)
{
	const char *start = ++ps->p;
	bool escapes = false;
	while (ps->p < ps->end && *ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20) {
			fail_char(ps, "in string literal");
			return -1;
		}
		if (c == '\\') {
			escapes = true;
			ps->p++;
			if (ps->p >= ps->end)
				break;
		}
		ps->p++;
	}
	if (ps->p >= ps->end) {
		fail_msg(ps, "unexpected end of JSON input");
		return -1;
	}
	const char *stop = ps->p++;
	if (!escapes) {
		out->ptr = km_arena_strndup(ps->a, start, (size_t)(stop - start));
		out->len = (size_t)(stop - start);
		return 0;
	}
	char *o = km_arena_alloc(ps->a, (size_t)(stop - start) + 1);
	size_t n = 0;
	for (const char *q = start; q < stop; q++) {
		if (*q != '\\') {
			o[n++] = *q;
			continue;
		}
		q++;
		switch (*q) {
		case '"': o[n++] = '"'; break;
		case '\\': o[n++] = '\\'; break;
		case '/': o[n++] = '/'; break;
		case 'b': o[n++] = '\b'; break;
		case 'f': o[n++] = '\f'; break;
		case 'n': o[n++] = '\n'; break;
		case 'r': o[n++] = '\r'; break;
		case 't': o[n++] = '\t'; break;
		case 'u': {
			unsigned cp;
			if (read_hex4(q + 1, stop, &cp)) {
				ps->p = q;
				fail_char(ps, "in \\u hexadecimal character escape");
				return -1;
			}
			q += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && stop - q >= 7 && q[1] == '\\' &&
			    q[2] == 'u') {
				unsigned lo;
				if (!read_hex4(q + 3, stop, &lo) && lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					q += 6;
				} else {
					cp = 0xfffd;
				}
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd;
			}
			n += put_utf8(o + n, cp);
			break;
		}
		default:
			ps->p = q;
			fail_char(ps, "in string escape code");
			return -1;
		}
	}
	o[n] = 0;
	out->ptr = o;
	out->len = n;
	return 0;
}

static struct km_json *parse_number(struct parser *ps)
{
	const char *s = ps->p;
	if (ps->p < ps->end && *ps->p == '-')
		ps->p++;
	if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
		fail_char(ps, "in numeric literal");
		return NULL;
	}
	if (*ps->p == '0')
		ps->p++;
	else
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	bool integral = true;
	if (ps->p < ps->end && *ps->p == '.') {
		integral = false;
		ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail_char(ps, "after decimal point in numeric literal");
			return NULL;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
		integral = false;
		ps->p++;
		if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
			ps->p++;
		if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
			fail_char(ps, "in exponent of numeric literal");
			return NULL;
		}
		while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
			ps->p++;
	}
	return km_json_number_text(ps->a, (struct km_str){s, (size_t)(ps->p - s)});
	(void)integral;
}

static bool match_lit(struct parser *ps, const char *lit)
{
	size_t n = strlen(lit);
	for (size_t i = 0; i < n; i++) {
		if (ps->p + i >= ps->end) {
			ps->p += i;
			fail_msg(ps, "unexpected end of JSON input");
			return false;
		}
		if (ps->p[i] != lit[i]) {
			ps->p += i;
			char ctx[64];
			snprintf(ctx, sizeof(ctx), "in literal %s (expecting '%c')",
				 lit[0] == 't' ? "true" : lit[0] == 'f' ? "false" : "null", lit[i]);
			fail_char(ps, ctx);
			return false;
		}
	}
	ps->p += n;
	return true;
}

static struct km_json *parse_value(struct parser *ps);

static struct km_json *parse_object(struct parser *ps)
{
	struct km_json *obj = node(ps->a, KM_JSON_OBJECT);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return obj;
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			fail_char(ps, "looking for beginning of object key string");
			return NULL;
		}
		struct km_str key;
		if (parse_string(ps, &key))
			return NULL;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			fail_char(ps, "after object key");
			return NULL;
		}
		ps->p++;
		struct km_json *v = parse_value(ps);
		if (!v)
			return NULL;
		/* duplicate keys: last one wins, as in Go */
		struct km_json *prev = km_json_get_str(obj, key);
		if (prev)
			km_json_set_str(ps->a, obj, key, v);
		else
			km_json_append_member(ps->a, obj, key, v);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return obj;
		}
		fail_char(ps, "after object key:value pair");
		return NULL;
	}
}

static struct km_json *parse_array(struct parser *ps)
{
	struct km_json *arr = node(ps->a, KM_JSON_ARRAY);
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return arr;
	}
	for (;;) {
		struct km_json *v = parse_value(ps);
		if (!v)
			return NULL;
		km_json_array_push(ps->a, arr, v);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return arr;
		}
		fail_char(ps, "after array element");
		return NULL;
	}
}

static struct km_json *parse_value(struct parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end) {
		fail_msg(ps, "unexpected end of JSON input");
		return NULL;
	}
	if (++ps->depth > KM_JSON_MAX_DEPTH) {
		fail_msg(ps, "exceeded max depth");
		return NULL;
	}
	struct km_json *v = NULL;
	switch (*ps->p) {
	case '{': v = parse_object(ps); break;
	case '[': v = parse_array(ps); break;
	case '"': {
		struct km_str s;
		if (parse_string(ps, &s) == 0) {
			v = node(ps->a, KM_JSON_STRING);
			v->s = s;
		}
		break;
	}
	case 't':
		if (match_lit(ps, "true"))
			v = km_json_bool(ps->a, true);
		break;
	case 'f':
		if (match_lit(ps, "false"))
			v = km_json_bool(ps->a, false);
		break;
	case 'n':
		if (match_lit(ps, "null"))
			v = km_json_null(ps->a);
		break;
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			v = parse_number(ps);
		else
			fail_char(ps, "looking for beginning of value");
	}
	ps->depth--;
	return v;
}

int km_json_parse(struct km_arena *a, const char *text, size_t len, struct km_json **out,
		  struct km_buf *err)
{
	struct parser ps = {a, text, text + len, err, 0, false};
	struct km_json *v = parse_value(&ps);
	if (v) {
		skip_ws(&ps);
		if (ps.p < ps.end) {
			fail_char(&ps, "after top-level value");
			v = NULL;
		}
	}
	if (!v)
		return -KM_E_PARSE;
	*out = v;
	return 0;
}

struct km_json *km_json_null(struct km_arena *a)
{
	return node(a, KM_JSON_NULL);
}

struct km_json *km_json_bool(struct km_arena *a, bool b)
{
	struct km_json *v = node(a, KM_JSON_BOOL);
	v->b = b;
	return v;
}

struct km_json *km_json_int(struct km_arena *a, int64_t i)
{
	struct km_json *v = node(a, KM_JSON_NUMBER);
	v->is_int = true;
	v->i = i;
	v->d = (double)i;
	v->s.ptr = km_arena_printf(a, "%lld", (long long)i);
	v->s.len = strlen(v->s.ptr);
	return v;
}

struct km_json *km_json_double(struct km_arena *a, double d)
{
	if (isfinite(d) && fabs(d) < 1e15 && d == (double)(int64_t)d)
		return km_json_int(a, (int64_t)d);
	struct km_json *v = node(a, KM_JSON_NUMBER);
	v->d = isfinite(d) ? d : 0;
	v->s.ptr = km_arena_printf(a, "%.17g", v->d);
	v->s.len = strlen(v->s.ptr);
	return v;
}

struct km_json *km_json_number_text(struct km_arena *a, struct km_str text)
{
	struct km_json *v = node(a, KM_JSON_NUMBER);
	v->s.ptr = km_arena_strndup(a, text.ptr, text.len);
	v->s.len = text.len;
	long long ll;
	if (km_str_to_i64(text, &ll) == 0 && (text.len < 2 || text.ptr[0] != '+')) {
		v->is_int = true;
		v->i = ll;
		v->d = (double)ll;
	} else {
		v->d = strtod(v->s.ptr, NULL);
		/* 1e3 or 5.0 are integral too (Go decodes them into int fields) */
		if (isfinite(v->d) && v->d == floor(v->d) && fabs(v->d) < 9.2e18) {
			v->is_int = true;
			v->i = (int64_t)v->d;
		}
	}
	return v;
}

struct km_json *km_json_string(struct km_arena *a, struct km_str s)
{
	struct km_json *v = node(a, KM_JSON_STRING);
	v->s.ptr = km_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
	v->s.len = s.len;
	return v;
}

struct km_json *km_json_cstring(struct km_arena *a, const char *s)
{
	return km_json_string(a, km_str_c(s));
}

struct km_json *km_json_string_ref(struct km_arena *a, struct km_str s)
{
	struct km_json *v = node(a, KM_JSON_STRING);
	v->s = s;
	return v;
}

struct km_json *km_json_array(struct km_arena *a)
{
	return node(a, KM_JSON_ARRAY);
}

struct km_json *km_json_object(struct km_arena *a)
{
	return node(a, KM_JSON_OBJECT);
}

void km_json_array_push(struct km_arena *a, struct km_json *arr, struct km_json *v)
{
	if (arr->len == arr->cap) {
		size_t cap = arr->cap ? arr->cap * 2 : 4;
		arr->items = km_arena_realloc(a, arr->items, arr->cap * sizeof(*arr->items),
					      cap * sizeof(*arr->items));
		arr->cap = cap;
	}
	arr->items[arr->len++] = v;
}

void km_json_append_member(struct km_arena *a, struct km_json *obj, struct km_str key,
			   struct km_json *v)
{
	if (obj->len == obj->cap) {
		size_t cap = obj->cap ? obj->cap * 2 : 4;
		obj->members = km_arena_realloc(a, obj->members, obj->cap * sizeof(*obj->members),
						cap * sizeof(*obj->members));
		obj->cap = cap;
	}
	obj->members[obj->len].key = key;
	obj->members[obj->len].val = v;
	obj->len++;
}

void km_json_set_str(struct km_arena *a, struct km_json *obj, struct km_str key, struct km_json *v)
{
	for (size_t i = 0; i < obj->len; i++)
		if (km_str_eq(obj->members[i].key, key)) {
			obj->members[i].val = v;
			return;
		}
	struct km_str k = {km_arena_strndup(a, key.ptr, key.len), key.len};
	km_json_append_member(a, obj, k, v);
}

void km_json_set(struct km_arena *a, struct km_json *obj, const char *key, struct km_json *v)
{
	km_json_set_str(a, obj, km_str_c(key), v);
}

struct km_json *km_json_get_str(const struct km_json *obj, struct km_str key)
{
	if (!obj || obj->kind != KM_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->len; i++)
		if (km_str_eq(obj->members[i].key, key))
			return obj->members[i].val;
	return NULL;
}

struct km_json *km_json_get(const struct km_json *obj, const char *key)
{
	return km_json_get_str(obj, km_str_c(key));
}

struct km_str km_json_get_string(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_json_get(obj, key);
	if (!v || v->kind != KM_JSON_STRING)
		return (struct km_str){"", 0};
	return v->s;
}

bool km_json_del(struct km_json *obj, const char *key)
{
	if (!obj || obj->kind != KM_JSON_OBJECT)
		return false;
	struct km_str k = km_str_c(key);
	for (size_t i = 0; i < obj->len; i++)
		if (km_str_eq(obj->members[i].key, k)) {
			memmove(&obj->members[i], &obj->members[i + 1],
				(obj->len - i - 1) * sizeof(obj->members[0]));
			obj->len--;
			return true;
		}
	return false;
}

bool km_json_as_i64(const struct km_json *v, int64_t *out)
{
	if (!v || v->kind != KM_JSON_NUMBER)
		return false;
	if (v->is_int) {
		*out = v->i;
		return true;
	}
	if (!isfinite(v->d) || v->d != floor(v->d) || v->d < -9.2e18 || v->d > 9.2e18)
		return false;
	*out = (int64_t)v->d;
	return true;
}

int64_t km_json_i64_sat(const struct km_json *v)
{
	if (!v || v->kind != KM_JSON_NUMBER)
		return 0;
	if (v->is_int)
		return v->i;
	if (isnan(v->d))
		return 0;
	if (v->d >= 9.2e18)
		return INT64_MAX;
	if (v->d <= -9.2e18)
		return INT64_MIN;
	return (int64_t)v->d;
}

struct km_json *km_json_clone(struct km_arena *a, const struct km_json *v)
{
	if (!v)
		return NULL;
	struct km_json *c = node(a, v->kind);
	c->b = v->b;
	c->is_int = v->is_int;
	c->tag = v->tag;
	c->i = v->i;
	c->d = v->d;
	if (v->kind == KM_JSON_STRING || v->kind == KM_JSON_NUMBER) {
		c->s.ptr = km_arena_strndup(a, v->s.ptr ? v->s.ptr : "", v->s.len);
		c->s.len = v->s.len;
	} else if (v->kind == KM_JSON_ARRAY) {
		for (size_t i = 0; i < v->len; i++)
			km_json_array_push(a, c, km_json_clone(a, v->items[i]));
	} else if (v->kind == KM_JSON_OBJECT) {
		for (size_t i = 0; i < v->len; i++) {
			struct km_str k = {km_arena_strndup(a, v->members[i].key.ptr,
							    v->members[i].key.len),
					   v->members[i].key.len};
			km_json_append_member(a, c, k, km_json_clone(a, v->members[i].val));
		}
	}
	return c;
}

bool km_json_equal(const struct km_json *x, const struct km_json *y)
{
	if (!x || !y)
		return x == y;
	if (x->kind != y->kind)
		return false;
	switch (x->kind) {
	case KM_JSON_NULL: return true;
	case KM_JSON_BOOL: return x->b == y->b;
	case KM_JSON_NUMBER:
		if (x->is_int && y->is_int)
			return x->i == y->i;
		return x->d == y->d;
	case KM_JSON_STRING: return km_str_eq(x->s, y->s);
	case KM_JSON_ARRAY:
		if (x->len != y->len)
			return false;
		for (size_t i = 0; i < x->len; i++)
			if (!km_json_equal(x->items[i], y->items[i]))
				return false;
		return true;
	case KM_JSON_OBJECT:
		if (x->len != y->len)
			return false;
		for (size_t i = 0; i < x->len; i++) {
			struct km_json *o = km_json_get_str(y, x->members[i].key);
			if (!o || !km_json_equal(x->members[i].val, o))
				return false;
		}
		return true;
	}
	return false;
}

static int cmp_member(const void *a, const void *b)
{
	const struct km_json_member *x = a, *y = b;
	return km_str_cmp(x->key, y->key);
}

void km_json_sort_keys(struct km_json *v)
{
	if (!v)
		return;
	if (v->kind == KM_JSON_OBJECT) {
		if (v->len > 1)
			qsort(v->members, v->len, sizeof(v->members[0]), cmp_member);
		for (size_t i = 0; i < v->len; i++)
			km_json_sort_keys(v->members[i].val);
	} else if (v->kind == KM_JSON_ARRAY) {
		for (size_t i = 0; i < v->len; i++)
			km_json_sort_keys(v->items[i]);
	}
}

/* Bytes km_json_write_string() escapes: 1 for a \uXXXX escape, else the
 * letter after the backslash. Go escapes <, >, & as \u003c etc. */
static const unsigned char escape_of[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x09] = 't', [0x0a] = 'n', [0x0b] = 1, [0x0c] = 1, [0x0d] = 'r', [0x0e] = 1, [0x0f] = 1,
    [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1,
    ['"'] = '"', ['\\'] = '\\', ['<'] = 1, ['>'] = 1, ['&'] = 1,
};

int km_json_write_string(struct km_buf *out, struct km_str s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = km_buf_putc(out, '"');
	const unsigned char *p = (const unsigned char *)s.ptr;
	for (size_t i = 0, from = 0; rc == 0;) {
		while (i < s.len && !escape_of[p[i]])
			i++; /* a run of bytes written as they are */
		if (i > from)
			rc = km_buf_append(out, s.ptr + from, i - from);
		if (rc || i == s.len)
			break;
		unsigned char e = escape_of[p[i]];
		if (e == 1) {
			char u[6] = {'\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 15]};
			rc = km_buf_append(out, u, sizeof(u));
		} else {
			char b[2] = {'\\', (char)e};
			rc = km_buf_append(out, b, sizeof(b));
		}
		from = ++i;
	}
	if (rc == 0)
		rc = km_buf_putc(out, '"');
	return rc;
}

static int newline(struct km_buf *out, int indent, int depth)
{
	int rc = km_buf_putc(out, '\n');
	for (int i = 0; i < indent * depth && rc == 0; i++)
		rc = km_buf_putc(out, ' ');
	return rc;
}

int km_json_write(struct km_buf *out, const struct km_json *v, int indent, int depth)
{
	int rc = 0;
	if (!v)
		return km_buf_puts(out, "null");
	switch (v->kind) {
	case KM_JSON_NULL: return km_buf_puts(out, "null");
	case KM_JSON_BOOL: return km_buf_puts(out, v->b ? "true" : "false");
	case KM_JSON_NUMBER: return km_buf_put_str(out, v->s);
	case KM_JSON_STRING: return km_json_write_string(out, v->s);
	case KM_JSON_ARRAY:
		if (v->len == 0)
			return km_buf_puts(out, "[]");
		rc = km_buf_putc(out, '[');
		for (size_t i = 0; i < v->len && rc == 0; i++) {
			if (i)
				rc = km_buf_putc(out, ',');
			if (indent && rc == 0)
				rc = newline(out, indent, depth + 1);
			if (rc == 0)
				rc = km_json_write(out, v->items[i], indent, depth + 1);
		}
		if (indent && rc == 0)
			rc = newline(out, indent, depth);
		return rc ? rc : km_buf_putc(out, ']');
	case KM_JSON_OBJECT:
		if (v->len == 0)
			return km_buf_puts(out, "{}");
		rc = km_buf_putc(out, '{');
		for (size_t i = 0; i < v->len && rc == 0; i++) {
			if (i)
				rc = km_buf_putc(out, ',');
			if (indent && rc == 0)
				rc = newline(out, indent, depth + 1);
			if (rc == 0)
				rc = km_json_write_string(out, v->members[i].key);
			if (rc == 0)
				rc = km_buf_puts(out, indent ? ": " : ":");
			if (rc == 0)
				rc = km_json_write(out, v->members[i].val, indent, depth + 1);
		}
		if (indent && rc == 0)
			rc = newline(out, indent, depth);
		return rc ? rc : km_buf_putc(out, '}');
	}
	return -EINVAL;
}

int km_json_reindent(struct km_buf *out, struct km_str t, int indent, int depth)
{
	int rc = 0;
	for (size_t i = 0; i < t.len && rc == 0; i++) {
		char c = t.ptr[i];
		switch (c) {
		case ' ': case '\t': case '\n': case '\r':
			break;
		case '"': {
			size_t j = i + 1;
			while (j < t.len && t.ptr[j] != '"') {
				if (t.ptr[j] == '\\')
					j++;
				j++;
			}
			rc = km_buf_append(out, t.ptr + i, (j < t.len ? j + 1 : t.len) - i);
			i = j;
			break;
		}
		case '{': case '[': {
			/* keep empty containers on one line */
			size_t j = i + 1;
			while (j < t.len && (t.ptr[j] == ' ' || t.ptr[j] == '\n' || t.ptr[j] == '\t' ||
					     t.ptr[j] == '\r'))
				j++;
			if (j < t.len && (t.ptr[j] == '}' || t.ptr[j] == ']')) {
				rc = km_buf_putc(out, c);
				if (rc == 0)
					rc = km_buf_putc(out, t.ptr[j]);
				i = j;
				break;
			}
			rc = km_buf_putc(out, c);
			depth++;
			if (indent && rc == 0)
				rc = newline(out, indent, depth);
			break;
		}
		case '}': case ']':
			depth--;
			if (indent)
				rc = newline(out, indent, depth);
			if (rc == 0)
				rc = km_buf_putc(out, c);
			break;
		case ',':
			rc = km_buf_putc(out, ',');
			if (indent && rc == 0)
				rc = newline(out, indent, depth);
			break;
		case ':':
			rc = km_buf_puts(out, indent ? ": " : ":");
			break;
		default:
			rc = km_buf_putc(out, c);
		}
	}
	return rc;
}

/* ---- members of an object's text ---- */

static size_t span_ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* The index after the string starting at <i> (a quote), or 0. */
static size_t span_string(const char *p, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c == '\\' && ++i >= n)
			return 0;
	}
	return 0;
}

/* The index after the scalar starting at <i>, or 0. */
static size_t span_scalar(const char *p, size_t i, size_t n)
{
	static const char *const lits[] = {"true", "false", "null"};
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(lits[k]);
		if (p[i] == lits[k][0])
			return n - i >= l && memcmp(p + i, lits[k], l) == 0 ? i + l : 0;
	}
	if (p[i] != '-' && (p[i] < '0' || p[i] > '9'))
		return 0;
	size_t j = i + 1;
	while (j < n && ((p[j] >= '0' && p[j] <= '9') || p[j] == '.' || p[j] == 'e' || p[j] == 'E' ||
			 p[j] == '+' || p[j] == '-'))
		j++;
	return j;
}

/* The index after the value starting at <i> (no leading space), or 0.
 * Containers recurse, as deep as the parser allows and one more (what the
 * parser accepts as an object member this accepts too). */
static size_t span_value(const char *p, size_t i, size_t n, int depth)
{
	if (i >= n)
		return 0;
	if (p[i] == '"')
		return span_string(p, i, n);
	if (p[i] != '{' && p[i] != '[')
		return span_scalar(p, i, n);
	if (depth > KM_JSON_MAX_DEPTH)
		return 0;
	char close = p[i] == '{' ? '}' : ']';
	i = span_ws(p, i + 1, n);
	if (i < n && p[i] == close)
		return i + 1;
	for (;;) {
		if (close == '}') {
			if (i >= n || p[i] != '"' || !(i = span_string(p, i, n)))
				return 0;
			i = span_ws(p, i, n);
			if (i >= n || p[i++] != ':')
				return 0;
			i = span_ws(p, i, n);
		}
		if (!(i = span_value(p, i, n, depth + 1)))
			return 0;
		i = span_ws(p, i, n);
		if (i < n && p[i] == close)
			return i + 1;
		if (i >= n || p[i++] != ',')
			return 0;
		i = span_ws(p, i, n);
	}
}

int km_json_members(struct km_str text, struct km_json_span *out, size_t max, size_t *n)
{
	const char *p = text.ptr;
	size_t len = text.len, i = span_ws(p, 0, len), count = 0;
	*n = 0;
	if (i >= len || p[i++] != '{')
		return -KM_E_PARSE;
	i = span_ws(p, i, len);
	if (i < len && p[i] == '}') {
		i++;
	} else {
		for (;;) {
			i = span_ws(p, i, len);
			size_t k = i;
			if (i >= len || p[i] != '"' || !(i = span_string(p, i, len)))
				return -KM_E_PARSE;
			struct km_str key = {p + k + 1, i - k - 2};
			i = span_ws(p, i, len);
			if (i >= len || p[i++] != ':')
				return -KM_E_PARSE;
			i = span_ws(p, i, len);
			size_t v = i;
			if (!(i = span_value(p, i, len, 1)))
				return -KM_E_PARSE;
			if (count == max)
				return -E2BIG;
			out[count++] = (struct km_json_span){key, {p + v, i - v}};
			i = span_ws(p, i, len);
			if (i < len && p[i] == ',') {
				i++;
				continue;
			}
			if (i < len && p[i] == '}') {
				i++;
				break;
			}
			return -KM_E_PARSE;
		}
	}
	if (span_ws(p, i, len) != len)
		return -KM_E_PARSE;
	*n = count;
	return 0;
}

uint64_t km_json_fnv(uint64_t h, struct km_buf *scratch, const struct km_json *v)
{
	km_buf_reset(scratch);
	if (v)
		km_json_write(scratch, v, 0, 0);
	return km_fnv_sep(km_fnv(h, scratch->data ? scratch->data : "", scratch->len), '|');
}
