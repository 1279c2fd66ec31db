/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor-driven proto3 JSON mapping for protobuf-c messages (protojson
 * rules, see json.h). Both directions walk the protobuf-c descriptors; the
 * well-known types with a special JSON form are handled by name. Messages,
 * trees and strings are allocated from the caller's arena; the only heap
 * memory is the error path buffer, freed before returning. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "pb/wire.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

/* Duration and Timestamp limits from the well-known type definitions. */
#define MAX_DURATION_SECONDS 315576000000LL
#define MIN_TIMESTAMP_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define MAX_TIMESTAMP_SECONDS 253402300799LL   /* 9999-12-31T23:59:59Z */
#define MAX_PATH 1024

enum wkt {
	WKT_NONE,
	WKT_ANY,
	WKT_DURATION,
	WKT_TIMESTAMP,
	WKT_WRAPPER,
	WKT_STRUCT,
	WKT_VALUE,
	WKT_LIST,
};

static const struct {
	const char *name;
	enum wkt kind;
} wkt_table[] = {
	{"google.protobuf.Any", WKT_ANY},
	{"google.protobuf.BoolValue", WKT_WRAPPER},
	{"google.protobuf.BytesValue", WKT_WRAPPER},
	{"google.protobuf.DoubleValue", WKT_WRAPPER},
	{"google.protobuf.Duration", WKT_DURATION},
	{"google.protobuf.FloatValue", WKT_WRAPPER},
	{"google.protobuf.Int32Value", WKT_WRAPPER},
	{"google.protobuf.Int64Value", WKT_WRAPPER},
	{"google.protobuf.ListValue", WKT_LIST},
	{"google.protobuf.StringValue", WKT_WRAPPER},
	{"google.protobuf.Struct", WKT_STRUCT},
	{"google.protobuf.Timestamp", WKT_TIMESTAMP},
	{"google.protobuf.UInt32Value", WKT_WRAPPER},
	{"google.protobuf.UInt64Value", WKT_WRAPPER},
	{"google.protobuf.Value", WKT_VALUE},
};

static enum wkt wkt_of(const ProtobufCMessageDescriptor *d)
{
	if (strncmp(d->name, "google.protobuf.", 16) != 0)
		return WKT_NONE;
	for (size_t i = 0; i < sizeof(wkt_table) / sizeof(wkt_table[0]); i++)
		if (strcmp(d->name, wkt_table[i].name) == 0)
			return wkt_table[i].kind;
	return WKT_NONE;
}

/* Shared state of one conversion: the arena, the error sink and the path of
 * the field being converted ("a.b[2].c"). */
struct ctx {
	struct km_arena *a;
	struct km_buf *err;
	char path[MAX_PATH];
	size_t plen;
	int code; /* error code to return */
};

static int fail(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(struct ctx *c, const char *fmt, ...)
{
	if (c->err) {
		if (c->plen)
			km_buf_printf(c->err, "%.*s: ", (int)c->plen, c->path);
		va_list ap;
		va_start(ap, fmt);
		km_buf_vprintf(c->err, fmt, ap);
		va_end(ap);
	}
	return c->code;
}

static size_t path_add(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends to the path and returns the previous length for path_pop. A path
 * longer than MAX_PATH is truncated (still a useful prefix). */
static size_t path_add(struct ctx *c, const char *fmt, ...)
{
	size_t old = c->plen;
	if (c->plen < sizeof(c->path) - 1) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(c->path + c->plen, sizeof(c->path) - c->plen, fmt, ap);
		va_end(ap);
		if (n > 0)
			c->plen += (size_t)n;
		if (c->plen > sizeof(c->path) - 1)
			c->plen = sizeof(c->path) - 1;
	}
	return old;
}

static size_t path_field(struct ctx *c, struct km_str name)
{
	int n = name.len > 200 ? 200 : (int)name.len;
	return path_add(c, c->plen ? ".%.*s" : "%.*s", n, name.ptr);
}

static void path_pop(struct ctx *c, size_t old)
{
	c->plen = old;
}

static const char *kind_name(const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_NULL: return "null";
	case KM_JSON_BOOL: return "boolean";
	case KM_JSON_NUMBER: return "number";
	case KM_JSON_STRING: return "string";
	case KM_JSON_ARRAY: return "array";
	case KM_JSON_OBJECT: return "object";
	}
	return "value";
}

/* ---- names ---------------------------------------------------------------- */

/* protoc's json_name: drop '_' and upper-case the letter after it. <upper>
 * also capitalises the first letter (map entry type names). */
static size_t camel(const char *name, char *out, size_t cap, int upper)
{
	size_t n = 0;
	for (const char *p = name; *p && n + 1 < cap; p++) {
		if (*p == '_') {
			upper = 1;
			continue;
		}
		out[n++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
		upper = 0;
	}
	out[n] = 0;
	return n;
}

static struct km_str json_name(struct km_arena *a, const char *name)
{
	char buf[256];
	size_t n = camel(name, buf, sizeof(buf), 0);
	return (struct km_str){km_arena_strndup(a, buf, n), n};
}

static int name_matches(const char *name, struct km_str key)
{
	if (km_str_eqc(key, name))
		return 1;
	char buf[256];
	size_t n = camel(name, buf, sizeof(buf), 0);
	return n == key.len && memcmp(buf, key.ptr, n) == 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
						  struct km_str key)
{
	for (unsigned i = 0; i < d->n_fields; i++)
		if (name_matches(d->fields[i].name, key))
			return &d->fields[i];
	return NULL;
}

/* A map<K,V> field: a repeated message named <Field>Entry with key = 1 and
 * value = 2 (protobuf-c keeps no map flag). */
static int is_map(const ProtobufCFieldDescriptor *f)
{
	if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return 0;
	const ProtobufCMessageDescriptor *e = f->descriptor;
	if (e->n_fields != 2 || e->fields[0].id != 1 || e->fields[1].id != 2 ||
	    strcmp(e->fields[0].name, "key") != 0 || strcmp(e->fields[1].name, "value") != 0)
		return 0;
	char buf[256];
	size_t n = camel(f->name, buf, sizeof(buf) - 6, 1);
	memcpy(buf + n, "Entry", 6);
	return strcmp(buf, e->short_name) == 0;
}

static void *member(const void *m, unsigned off)
{
	return (char *)m + off;
}

static size_t elt_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_ENUM: return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE: return 8;
	case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
	}
	return 8;
}

/* ---- base64 --------------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static struct km_json *base64_json(struct km_arena *a, const uint8_t *p, size_t n)
{
	size_t olen = (n + 2) / 3 * 4;
	char *o = km_arena_alloc(a, olen + 1);
	size_t j = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		o[j++] = b64[(v >> 18) & 63];
		o[j++] = b64[(v >> 12) & 63];
		o[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		o[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	return km_json_string_ref(a, (struct km_str){o, j});
}

static int b64_val(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

/* Standard or URL-safe alphabet, padding optional (protojson accepts both). */
static int base64_decode(struct km_arena *a, struct km_str s, ProtobufCBinaryData *out)
{
	size_t n = s.len;
	while (n > 0 && s.ptr[n - 1] == '=' && s.len - n < 2)
		n--;
	if (n % 4 == 1 || (n != s.len && s.len % 4 != 0))
		return -1;
	uint8_t *o = km_arena_alloc(a, n / 4 * 3 + 3);
	size_t j = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_val(s.ptr[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[j++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	out->data = o;
	out->len = j;
	return 0;
}
