/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor-driven proto3 JSON mapping for protobuf-c messages (protojson
 * rules, see json.h). Both directions walk the protobuf-c descriptors; the
 * well-known types with a special JSON form are handled by name. Messages,
 * trees and strings are allocated from the caller's arena; the only heap
 * memory is the error path buffer, freed before returning. */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/mem.h"
#include "pb/json.h"
#include "pb/registry.h"
#include "pb/shape.h"
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
	/* on every field of every message: no printf */
	size_t old = c->plen;
	size_t n = name.len > 200 ? 200 : name.len;
	if (c->plen + n + 2 > sizeof(c->path)) {
		c->plen = sizeof(c->path) - 1;
		c->path[c->plen] = 0;
		return old;
	}
	if (c->plen)
		c->path[c->plen++] = '.';
	memcpy(c->path + c->plen, name.ptr, n);
	c->plen += n;
	c->path[c->plen] = 0;
	return old;
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

/* Field lookup by JSON key: per message type, the hash of each field's
 * proto name and lowerCamelCase JSON name, built on first use and kept for
 * the life of the thread (descriptors are static; each thread has its own
 * table, so lookups take no lock). A key is compared with a name only when
 * the hashes agree. */
/* One name of a field in the lookup table, with the name itself when it
 * fits: a lookup that finds its key in the first slot reads one cache
 * line. The tables are cold in the one build that encodes after many that
 * shared everything, where separate arrays of hashes, indices, lengths and
 * names cost a cache miss each per member. */
#define SLOT_NAME 48
struct name_slot {
	uint64_t h;
	uint32_t field; /* index + 1; 0: empty slot */
	uint16_t len;
	uint16_t proto; /* the proto name, not the JSON one (names longer than SLOT_NAME) */
	char name[SLOT_NAME];
};
_Static_assert(sizeof(struct name_slot) == 64, "a slot is one cache line");

struct field_names {
	const ProtobufCMessageDescriptor *d;
	enum wkt wkt;
	char **json;
	size_t *json_len, *proto_len;
	/* open addressing over both names of every field */
	struct name_slot *slots;
	void *slots_mem; /* where <slots> was allocated */
	size_t mask;
	bool *map; /* per field: a map<K,V> (is_map) */
	bool any_required; /* proto2 required fields (none in proto3) */
};

/* Entries are allocated one by one: a pointer from names_of() stays valid
 * while a table grows (encoders hold one across nested messages). Each
 * thread looks them up in its own table, without a lock; an entry is built
 * once for the process (building every one a thread uses took a
 * millisecond of its first builds) and kept for its life in <shared_names>,
 * where a thread's first use of a message type finds it under the lock. */
struct names_table {
	struct field_names **slots;
	size_t cap, len;
};
static _Thread_local struct names_table names_cache;
static struct names_table shared_names;
static pthread_mutex_t shared_names_mu = PTHREAD_MUTEX_INITIALIZER;

void km_pb_json_thread_fini(void)
{
	free(names_cache.slots);
	memset(&names_cache, 0, sizeof(names_cache));
}

static uint64_t key_hash(const char *p, size_t n)
{
	return km_hash(KM_FNV_INIT, p, n);
}

/* The name slot <sl> holds. */
static const char *slot_name(const struct field_names *fn, const struct name_slot *sl)
{
	if (sl->len <= SLOT_NAME)
		return sl->name;
	return sl->proto ? fn->d->fields[sl->field - 1].name : fn->json[sl->field - 1];
}

static void slot_put(struct field_names *fn, const char *name, size_t len, unsigned field, bool proto)
{
	uint64_t h = key_hash(name, len);
	size_t i = h & fn->mask;
	for (; fn->slots[i].field; i = (i + 1) & fn->mask) {
		const struct name_slot *sl = &fn->slots[i];
		if (sl->h == h && sl->len == len && memcmp(slot_name(fn, sl), name, len) == 0)
			return; /* the JSON name and the proto name are the same */
	}
	struct name_slot *sl = &fn->slots[i];
	sl->h = h;
	sl->field = field + 1;
	sl->len = (uint16_t)len;
	sl->proto = proto;
	if (len <= SLOT_NAME)
		memcpy(sl->name, name, len);
}

static int is_map(const ProtobufCFieldDescriptor *f);

static void names_build(struct field_names *fn, const ProtobufCMessageDescriptor *d)
{
	fn->d = d;
	fn->wkt = wkt_of(d);
	fn->json = km_calloc(d->n_fields + 1, sizeof(*fn->json));
	fn->json_len = km_calloc(d->n_fields + 1, sizeof(*fn->json_len));
	fn->proto_len = km_calloc(d->n_fields + 1, sizeof(*fn->proto_len));
	size_t cap = 8;
	while (cap < 4 * (size_t)d->n_fields)
		cap *= 2;
	/* one slot more: the table starts at the first cache line boundary
	 * (kept for the process, as the entry is) */
	fn->slots_mem = km_calloc(cap + 1, sizeof(struct name_slot));
	fn->slots = (struct name_slot *)(((uintptr_t)fn->slots_mem + 63) & ~(uintptr_t)63);
	fn->mask = cap - 1;
	fn->map = km_calloc(d->n_fields + 1, sizeof(*fn->map));
	for (unsigned i = 0; i < d->n_fields; i++) {
		fn->map[i] = is_map(&d->fields[i]);
		fn->any_required |= d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED;
		char buf[256];
		size_t n = camel(d->fields[i].name, buf, sizeof(buf), 0);
		fn->json[i] = km_strndup(buf, n);
		fn->json_len[i] = n;
		fn->proto_len[i] = strlen(d->fields[i].name);
	}
	/* the JSON names first: a name that is one field's JSON name and
	 * another's proto name (none in Envoy's protos) finds the former */
	for (unsigned i = 0; i < d->n_fields; i++)
		slot_put(fn, fn->json[i], fn->json_len[i], i, false);
	for (unsigned i = 0; i < d->n_fields; i++)
		slot_put(fn, d->fields[i].name, fn->proto_len[i], i, true);
}

/* Descriptors are static objects: a multiplicative hash of the address
 * spreads them well enough (asked for on every message converted). */
static size_t ptr_hash(const void *p)
{
	return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL) >> 20);
}

/* <d>'s slot in <t>: its entry, or the empty slot where it goes (after
 * growing <t> when half full). */
static struct field_names **names_slot(struct names_table *t, const ProtobufCMessageDescriptor *d)
{
	if (t->len * 2 >= t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct field_names **slots = km_calloc(cap, sizeof(*slots));
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slots[i])
				continue;
			size_t j = ptr_hash(t->slots[i]->d) & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = slots;
		t->cap = cap;
	}
	size_t j = ptr_hash(d) & (t->cap - 1);
	while (t->slots[j] && t->slots[j]->d != d)
		j = (j + 1) & (t->cap - 1);
	return &t->slots[j];
}

static const struct field_names *names_of(const ProtobufCMessageDescriptor *d)
{
	struct field_names **mine = names_slot(&names_cache, d);
	if (*mine)
		return *mine;
	pthread_mutex_lock(&shared_names_mu);
	struct field_names **sh = names_slot(&shared_names, d);
	if (!*sh) {
		*sh = km_calloc(1, sizeof(struct field_names));
		names_build(*sh, d);
		shared_names.len++;
	}
	*mine = *sh;
	pthread_mutex_unlock(&shared_names_mu);
	names_cache.len++;
	return *mine;
}

static const ProtobufCFieldDescriptor *find_field_in(const struct field_names *fn, struct km_str key)
{
	uint64_t h = key_hash(key.ptr, key.len);
	for (size_t i = h & fn->mask; fn->slots[i].field; i = (i + 1) & fn->mask) {
		const struct name_slot *sl = &fn->slots[i];
		if (sl->h == h && sl->len == key.len && memcmp(slot_name(fn, sl), key.ptr, key.len) == 0)
			return &fn->d->fields[sl->field - 1];
	}
	return NULL;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d, struct km_str key)
{
	return find_field_in(names_of(d), key);
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

/* ---- time ----------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's method). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Fraction digits as protojson prints them: none, 3, 6 or 9. */
static int frac_text(char *out, size_t cap, int32_t nanos)
{
	if (nanos == 0)
		return snprintf(out, cap, "%s", "");
	if (nanos % 1000000 == 0)
		return snprintf(out, cap, ".%03d", (int)(nanos / 1000000));
	if (nanos % 1000 == 0)
		return snprintf(out, cap, ".%06d", (int)(nanos / 1000));
	return snprintf(out, cap, ".%09d", (int)nanos);
}

/* Parses "[.digits]" (1..9 digits) at *p; returns nanos or -1. */
static int64_t parse_frac(const char **p, const char *end)
{
	if (*p >= end || **p != '.')
		return 0;
	(*p)++;
	int64_t v = 0;
	int n = 0;
	while (*p < end && **p >= '0' && **p <= '9') {
		if (n == 9)
			return -1;
		v = v * 10 + (**p - '0');
		n++;
		(*p)++;
	}
	if (n == 0)
		return -1;
	while (n++ < 9)
		v *= 10;
	return v;
}

static int parse_duration(struct km_str s, int64_t *secs, int32_t *nanos)
{
	const char *p = s.ptr, *end = s.ptr + s.len;
	int neg = 0;
	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	int64_t v = 0;
	int nd = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (v > MAX_DURATION_SECONDS)
			return -1;
		v = v * 10 + (*p++ - '0');
		nd++;
	}
	int64_t ns = parse_frac(&p, end);
	if (nd == 0 || ns < 0 || p + 1 != end || *p != 's' || v > MAX_DURATION_SECONDS)
		return -1;
	*secs = neg ? -v : v;
	*nanos = (int32_t)(neg ? -ns : ns);
	return 0;
}

static int digits(const char **p, const char *end, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++, (*p)++) {
		if (*p >= end || **p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	return 0;
}

static int expect(const char **p, const char *end, char ch)
{
	if (*p >= end || **p != ch)
		return -1;
	(*p)++;
	return 0;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
static int parse_timestamp(struct km_str s, int64_t *secs, int32_t *nanos)
{
	const char *p = s.ptr, *end = s.ptr + s.len;
	int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
	if (digits(&p, end, 4, &y) || expect(&p, end, '-') || digits(&p, end, 2, &mo) ||
	    expect(&p, end, '-') || digits(&p, end, 2, &d) || expect(&p, end, 'T') ||
	    digits(&p, end, 2, &h) || expect(&p, end, ':') || digits(&p, end, 2, &mi) ||
	    expect(&p, end, ':') || digits(&p, end, 2, &se))
		return -1;
	int64_t ns = parse_frac(&p, end);
	if (ns < 0 || p >= end)
		return -1;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, end, 2, &oh) || expect(&p, end, ':') || digits(&p, end, 2, &om) ||
		    oh > 23 || om > 59)
			return -1;
	} else {
		return -1;
	}
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (p != end || y < 1 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] ||
	    h > 23 || mi > 59 || se > 59)
		return -1;
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo == 2 && d == 29 && !leap)
		return -1;
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
	t -= sign * (oh * 3600 + om * 60);
	if (t < MIN_TIMESTAMP_SECONDS || t > MAX_TIMESTAMP_SECONDS)
		return -1;
	*secs = t;
	*nanos = (int32_t)ns;
	return 0;
}

/* ---- JSON -> message ------------------------------------------------------ */

static int msg_from(struct ctx *c, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		    ProtobufCMessage **out, int depth);

static int get_i64(const struct km_json *v, int64_t *out)
{
	if (v->kind == KM_JSON_NUMBER) {
		if (v->is_int) {
			*out = v->i;
			return 0;
		}
		return -1;
	}
	if (v->kind != KM_JSON_STRING || v->s.len == 0 || v->s.len > 64)
		return -1;
	long long ll;
	if (km_str_to_i64(v->s, &ll) == 0) {
		*out = ll;
		return 0;
	}
	/* "1e3" and "5.0" are integral too. */
	char buf[80];
	memcpy(buf, v->s.ptr, v->s.len);
	buf[v->s.len] = 0;
	if (strspn(buf, "0123456789+-.eE") != v->s.len)
		return -1;
	char *e;
	double d = strtod(buf, &e);
	if (*e || d != floor(d) || fabs(d) >= 9.2e18)
		return -1;
	*out = (int64_t)d;
	return 0;
}

static int get_u64(const struct km_json *v, uint64_t *out)
{
	int64_t i;
	if (get_i64(v, &i) == 0) {
		if (i < 0)
			return -1;
		*out = (uint64_t)i;
		return 0;
	}
	/* Above INT64_MAX: only plain digits. */
	unsigned long long u;
	if ((v->kind == KM_JSON_NUMBER || v->kind == KM_JSON_STRING) && km_str_to_u64(v->s, &u) == 0) {
		*out = u;
		return 0;
	}
	return -1;
}

static int get_double(const struct km_json *v, double *out)
{
	if (v->kind == KM_JSON_NUMBER) {
		*out = v->d;
		return 0;
	}
	if (v->kind != KM_JSON_STRING || v->s.len == 0 || v->s.len > 64)
		return -1;
	if (km_str_eqc(v->s, "NaN")) {
		*out = NAN;
		return 0;
	}
	if (km_str_eqc(v->s, "Infinity") || km_str_eqc(v->s, "-Infinity")) {
		*out = v->s.ptr[0] == '-' ? -INFINITY : INFINITY;
		return 0;
	}
	char buf[80];
	memcpy(buf, v->s.ptr, v->s.len);
	buf[v->s.len] = 0;
	if (strspn(buf, "0123456789+-.eE") != v->s.len)
		return -1;
	char *e;
	*out = strtod(buf, &e);
	return *e || !isfinite(*out) ? -1 : 0;
}

/* A NUL-terminated arena copy of <s>; NULL when <s> holds a NUL byte (a C
 * string cannot carry it). */
static char *cstr(struct km_arena *a, struct km_str s)
{
	if (s.len && memchr(s.ptr, 0, s.len))
		return NULL;
	return km_arena_strndup(a, s.ptr ? s.ptr : "", s.len);
}

/* An enum value by name or number (proto3 enums are open); -1 when <v> is
 * neither. */
static int enum_value(const ProtobufCEnumDescriptor *ed, const struct km_json *v, int32_t *out)
{
	if (v->kind == KM_JSON_NULL && strcmp(ed->name, "google.protobuf.NullValue") == 0) {
		*out = 0;
		return 0;
	}
	if (v->kind == KM_JSON_STRING) {
		char buf[128];
		if (v->s.len >= sizeof(buf) || memchr(v->s.ptr, 0, v->s.len))
			return -1;
		memcpy(buf, v->s.ptr, v->s.len);
		buf[v->s.len] = 0;
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value_by_name(ed, buf);
		if (!ev)
			return -1;
		*out = ev->value;
		return 0;
	}
	int64_t i;
	if (v->kind == KM_JSON_NUMBER && get_i64(v, &i) == 0 && i >= INT32_MIN && i <= INT32_MAX) {
		*out = (int32_t)i;
		return 0;
	}
	return -1;
}

static int enum_from(struct ctx *c, const ProtobufCEnumDescriptor *ed, const struct km_json *v,
		     int *out)
{
	int32_t e;
	if (enum_value(ed, v, &e) == 0) {
		*out = e;
		return 0;
	}
	if (v->kind == KM_JSON_STRING)
		return fail(c, "invalid value for enum %s: \"%.*s\"", ed->name,
			    (int)(v->s.len > 64 ? 64 : v->s.len), v->s.ptr);
	return fail(c, "invalid value for enum %s: expected a name or number, got %s", ed->name,
		    kind_name(v));
}

/* Converts <v> into the storage of one value of field <f> at <dst>. */
static int value_from(struct ctx *c, const ProtobufCFieldDescriptor *f, const struct km_json *v,
		      void *dst, int depth)
{
	int64_t i;
	uint64_t u;
	double d;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (get_i64(v, &i) != 0 || i < INT32_MIN || i > INT32_MAX)
			return fail(c, "invalid value for int32: %s", kind_name(v));
		*(int32_t *)dst = (int32_t)i;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (get_u64(v, &u) != 0 || u > UINT32_MAX)
			return fail(c, "invalid value for uint32: %s", kind_name(v));
		*(uint32_t *)dst = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (get_i64(v, &i) != 0)
			return fail(c, "invalid value for int64: %s", kind_name(v));
		*(int64_t *)dst = i;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (get_u64(v, &u) != 0)
			return fail(c, "invalid value for uint64: %s", kind_name(v));
		*(uint64_t *)dst = u;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		if (get_double(v, &d) != 0 || (isfinite(d) && fabs(d) > FLT_MAX))
			return fail(c, "invalid value for float: %s", kind_name(v));
		*(float *)dst = (float)d;
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		if (get_double(v, &d) != 0)
			return fail(c, "invalid value for double: %s", kind_name(v));
		*(double *)dst = d;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (v->kind != KM_JSON_BOOL)
			return fail(c, "invalid value for bool: %s", kind_name(v));
		*(protobuf_c_boolean *)dst = v->b;
		return 0;
	case PROTOBUF_C_TYPE_ENUM: return enum_from(c, f->descriptor, v, dst);
	case PROTOBUF_C_TYPE_STRING: {
		char *s = v->kind == KM_JSON_STRING ? cstr(c->a, v->s) : NULL;
		if (!s)
			return fail(c, v->kind == KM_JSON_STRING ? "string contains a NUL byte"
								 : "invalid value for string: %s",
				    kind_name(v));
		*(char **)dst = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		if (v->kind != KM_JSON_STRING || base64_decode(c->a, v->s, dst) != 0)
			return fail(c, "invalid value for bytes: expected base64 string");
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return msg_from(c, f->descriptor, v, (ProtobufCMessage **)dst, depth + 1);
	}
	return fail(c, "unsupported field type");
}

/* Value fields take null as NullValue; everywhere else null means "unset". */
static int null_is_value(const ProtobufCFieldDescriptor *f)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return strcmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name,
			      "google.protobuf.Value") == 0;
	if (f->type == PROTOBUF_C_TYPE_ENUM)
		return strcmp(((const ProtobufCEnumDescriptor *)f->descriptor)->name,
			      "google.protobuf.NullValue") == 0;
	return 0;
}

static int map_key_from(struct ctx *c, const ProtobufCFieldDescriptor *kf, struct km_str key,
			void *dst)
{
	struct km_json k = {.kind = KM_JSON_STRING, .s = key};
	if (kf->type == PROTOBUF_C_TYPE_BOOL) {
		if (!km_str_eqc(key, "true") && !km_str_eqc(key, "false"))
			return fail(c, "invalid map key for bool");
		*(protobuf_c_boolean *)dst = km_str_eqc(key, "true");
		return 0;
	}
	return value_from(c, kf, &k, dst, 0);
}

static int map_from(struct ctx *c, const ProtobufCFieldDescriptor *f, const struct km_json *v,
		    ProtobufCMessage *m, int depth)
{
	if (v->kind != KM_JSON_OBJECT)
		return fail(c, "expected an object for a map, got %s", kind_name(v));
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	ProtobufCMessage **arr = km_arena_alloc(c->a, sizeof(*arr) * (v->len ? v->len : 1));
	for (size_t i = 0; i < v->len; i++) {
		const struct km_json_member *mem = &v->members[i];
		size_t old = path_add(c, "[\"%.*s\"]", (int)(mem->key.len > 200 ? 200 : mem->key.len),
				      mem->key.ptr);
		ProtobufCMessage *e = km_arena_alloc(c->a, ed->sizeof_message);
		protobuf_c_message_init(ed, e);
		int rc = map_key_from(c, kf, mem->key, member(e, kf->offset));
		if (rc == 0 && mem->val->kind == KM_JSON_NULL && !null_is_value(vf))
			rc = fail(c, "null is not a valid map value");
		if (rc == 0) /* the entry is a message level of its own on the wire */
			rc = value_from(c, vf, mem->val, member(e, vf->offset), depth + 1);
		if (rc)
			return rc;
		path_pop(c, old);
		arr[i] = e;
	}
	*(size_t *)member(m, f->quantifier_offset) = v->len;
	*(ProtobufCMessage ***)member(m, f->offset) = arr;
	return 0;
}

static int field_from(struct ctx *c, const ProtobufCFieldDescriptor *f, const struct km_json *v,
		      ProtobufCMessage *m, int depth)
{
	if (f->label == PROTOBUF_C_LABEL_REPEATED) {
		if (is_map(f))
			return map_from(c, f, v, m, depth);
		if (v->kind != KM_JSON_ARRAY)
			return fail(c, "expected an array, got %s", kind_name(v));
		size_t es = elt_size(f->type);
		char *arr = km_arena_alloc(c->a, es * (v->len ? v->len : 1));
		for (size_t i = 0; i < v->len; i++) {
			size_t old = path_add(c, "[%zu]", i);
			if (v->items[i]->kind == KM_JSON_NULL && !null_is_value(f))
				return fail(c, "null is not a valid list element");
			int rc = value_from(c, f, v->items[i], arr + i * es, depth);
			if (rc)
				return rc;
			path_pop(c, old);
		}
		*(size_t *)member(m, f->quantifier_offset) = v->len;
		*(void **)member(m, f->offset) = arr;
		return 0;
	}
	uint32_t *oneof_case = NULL;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		oneof_case = member(m, f->quantifier_offset);
		if (*oneof_case != 0 && *oneof_case != f->id)
			return fail(c, "oneof already set by another field");
	}
	int rc = value_from(c, f, v, member(m, f->offset), depth);
	if (rc)
		return rc;
	if (oneof_case)
		*oneof_case = f->id;
	else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		 f->type != PROTOBUF_C_TYPE_MESSAGE)
		*(protobuf_c_boolean *)member(m, f->quantifier_offset) = 1;
	return 0;
}

static int any_from(struct ctx *c, const struct km_json *j, Google__Protobuf__Any *any, int depth)
{
	if (j->kind != KM_JSON_OBJECT)
		return fail(c, "expected an object for google.protobuf.Any, got %s", kind_name(j));
	const struct km_json *t = km_json_get(j, "@type");
	if (!t || t->kind != KM_JSON_STRING)
		return fail(c, "google.protobuf.Any: missing \"@type\"");
	const ProtobufCMessageDescriptor *d = km_pb_find(t->s);
	char *url = cstr(c->a, t->s);
	if (!d || !url)
		return fail(c, "unknown \"@type\": \"%.*s\"", (int)(t->s.len > 200 ? 200 : t->s.len),
			    t->s.ptr);
	/* The inner message is the object without "@type"; special forms sit in "value". */
	struct km_json *rest = km_json_object(c->a);
	for (size_t i = 0; i < j->len; i++)
		if (!km_str_eqc(j->members[i].key, "@type"))
			km_json_append_member(c->a, rest, j->members[i].key, j->members[i].val);
	const struct km_json *body = rest;
	if (names_of(d)->wkt != WKT_NONE) {
		body = km_json_get(rest, "value");
		if (!body || rest->len != 1)
			return fail(c, "google.protobuf.Any of %s: expected only \"value\"", d->name);
	}
	ProtobufCMessage *inner;
	int rc = msg_from(c, d, body, &inner, depth + 1);
	if (rc)
		return rc;
	size_t n = protobuf_c_message_get_packed_size(inner);
	uint8_t *buf = km_arena_alloc(c->a, n ? n : 1);
	any->value.len = protobuf_c_message_pack(inner, buf);
	any->value.data = buf;
	any->type_url = url;
	return 0;
}

static int value_msg_from(struct ctx *c, const struct km_json *j, Google__Protobuf__Value *v,
			  int depth)
{
	ProtobufCMessage *sub;
	int rc;
	switch (j->kind) {
	case KM_JSON_NULL:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
		v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
		return 0;
	case KM_JSON_BOOL:
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
		v->bool_value = j->b;
		return 0;
	case KM_JSON_NUMBER:
		if (!isfinite(j->d)) /* past double's range; Value cannot hold it */
			return fail(c, "google.protobuf.Value: number is not finite");
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
		v->number_value = j->d;
		return 0;
	case KM_JSON_STRING:
		v->string_value = cstr(c->a, j->s);
		if (!v->string_value)
			return fail(c, "string contains a NUL byte");
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
		return 0;
	case KM_JSON_OBJECT:
		rc = msg_from(c, &google__protobuf__struct__descriptor, j, &sub, depth + 1);
		v->struct_value = (Google__Protobuf__Struct *)sub;
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
		return rc;
	case KM_JSON_ARRAY:
		rc = msg_from(c, &google__protobuf__list_value__descriptor, j, &sub, depth + 1);
		v->list_value = (Google__Protobuf__ListValue *)sub;
		v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
		return rc;
	}
	return fail(c, "invalid value");
}

static int wkt_from(struct ctx *c, enum wkt w, const ProtobufCMessageDescriptor *d,
		    const struct km_json *j, ProtobufCMessage *m, int depth)
{
	switch (w) {
	case WKT_ANY: return any_from(c, j, (Google__Protobuf__Any *)m, depth);
	case WKT_DURATION: {
		Google__Protobuf__Duration *du = (Google__Protobuf__Duration *)m;
		if (j->kind != KM_JSON_STRING || parse_duration(j->s, &du->seconds, &du->nanos) != 0)
			return fail(c, "invalid google.protobuf.Duration value %s%.*s%s",
				    j->kind == KM_JSON_STRING ? "\"" : "",
				    j->kind == KM_JSON_STRING ? (int)(j->s.len > 64 ? 64 : j->s.len) : 0,
				    j->kind == KM_JSON_STRING ? j->s.ptr : "",
				    j->kind == KM_JSON_STRING ? "\"" : kind_name(j));
		return 0;
	}
	case WKT_TIMESTAMP: {
		Google__Protobuf__Timestamp *ts = (Google__Protobuf__Timestamp *)m;
		if (j->kind != KM_JSON_STRING || parse_timestamp(j->s, &ts->seconds, &ts->nanos) != 0)
			return fail(c, "invalid google.protobuf.Timestamp value");
		return 0;
	}
	case WKT_WRAPPER: {
		const ProtobufCFieldDescriptor *f = &d->fields[0];
		return value_from(c, f, j, member(m, f->offset), depth);
	}
	case WKT_STRUCT: {
		if (j->kind != KM_JSON_OBJECT)
			return fail(c, "expected an object for google.protobuf.Struct, got %s",
				    kind_name(j));
		Google__Protobuf__Struct *st = (Google__Protobuf__Struct *)m;
		st->fields = km_arena_alloc(c->a, sizeof(*st->fields) * (j->len ? j->len : 1));
		for (size_t i = 0; i < j->len; i++) {
			Google__Protobuf__Struct__FieldsEntry *e = km_arena_alloc(c->a, sizeof(*e));
			google__protobuf__struct__fields_entry__init(e);
			size_t old = path_field(c, j->members[i].key);
			e->key = cstr(c->a, j->members[i].key);
			if (!e->key)
				return fail(c, "key contains a NUL byte");
			ProtobufCMessage *val;
			int rc = msg_from(c, &google__protobuf__value__descriptor, j->members[i].val, &val,
					  depth + 2); /* Struct, its entry, the Value */
			if (rc)
				return rc;
			path_pop(c, old);
			e->value = (Google__Protobuf__Value *)val;
			st->fields[st->n_fields++] = e;
		}
		return 0;
	}
	case WKT_VALUE: return value_msg_from(c, j, (Google__Protobuf__Value *)m, depth);
	case WKT_LIST: {
		if (j->kind != KM_JSON_ARRAY)
			return fail(c, "expected an array for google.protobuf.ListValue, got %s",
				    kind_name(j));
		Google__Protobuf__ListValue *l = (Google__Protobuf__ListValue *)m;
		l->values = km_arena_alloc(c->a, sizeof(*l->values) * (j->len ? j->len : 1));
		for (size_t i = 0; i < j->len; i++) {
			size_t old = path_add(c, "[%zu]", i);
			ProtobufCMessage *val;
			int rc = msg_from(c, &google__protobuf__value__descriptor, j->items[i], &val,
					  depth + 1);
			if (rc)
				return rc;
			path_pop(c, old);
			l->values[l->n_values++] = (Google__Protobuf__Value *)val;
		}
		return 0;
	}
	case WKT_NONE: break;
	}
	return fail(c, "internal: not a well-known type");
}

static int msg_from(struct ctx *c, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		    ProtobufCMessage **out, int depth)
{
	if (depth > KM_PB_MAX_DEPTH)
		return fail(c, "message nesting exceeds %d levels", KM_PB_MAX_DEPTH);
	ProtobufCMessage *m = km_arena_alloc(c->a, d->sizeof_message);
	protobuf_c_message_init(d, m);
	*out = m;
	enum wkt w = names_of(d)->wkt;
	if (w != WKT_NONE)
		return wkt_from(c, w, d, j, m, depth);
	if (j->kind != KM_JSON_OBJECT)
		return fail(c, "expected an object for %s, got %s", d->name, kind_name(j));
	unsigned char *seen = km_arena_alloc(c->a, d->n_fields + 1);
	for (size_t i = 0; i < j->len; i++) {
		const struct km_json_member *mem = &j->members[i];
		const ProtobufCFieldDescriptor *f = find_field(d, mem->key);
		if (!f)
			return fail(c, "unknown field \"%.*s\" in %s",
				    (int)(mem->key.len > 200 ? 200 : mem->key.len), mem->key.ptr,
				    d->name);
		size_t old = path_field(c, mem->key);
		if (seen[f - d->fields])
			return fail(c, "duplicate field");
		seen[f - d->fields] = 1;
		if (mem->val->kind == KM_JSON_NULL && !(f->label != PROTOBUF_C_LABEL_REPEATED &&
							 null_is_value(f))) {
			path_pop(c, old);
			continue; /* null: the field stays unset */
		}
		int rc = field_from(c, f, mem->val, m, depth);
		if (rc)
			return rc;
		seen[f - d->fields] = 2;
		path_pop(c, old);
	}
	/* proto2 required fields (descriptor.proto reached through an Any) must
	 * be set: protobuf-c cannot pack a missing required string. */
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && seen[i] != 2)
			return fail(c, "missing required field \"%s\" in %s", d->fields[i].name,
				    d->name);
	return 0;
}

int km_pb_from_json(struct km_arena *a, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		    ProtobufCMessage **out, struct km_buf *err)
{
	struct ctx c = {.a = a, .err = err, .code = -KM_E_INVALID};
	*out = NULL;
	if (!j)
		return fail(&c, "no JSON value");
	ProtobufCMessage *m;
	int rc = msg_from(&c, d, j, &m, 0);
	if (rc == 0)
		*out = m;
	return rc;
}

/* ---- JSON -> wire, directly ---------------------------------------------- */

/* The bytes km_pb_from_json() + pack would give, written straight from the
 * tree without building protobuf-c messages: the same fields and values,
 * each in JSON member order instead of field-number order (both are valid
 * encodings of the message; decoders accept any order). Implicit-presence
 * (proto3) scalars at their zero value are left out, as protobuf-c does.
 * Any doubt is a failure without a reason: km_pb_encode_json() then runs
 * the message path, which says what is wrong. */

struct wr {
	struct km_arena *a;
	struct km_buf *b;
	struct km_pb_rec *rec; /* km_pb_shape_record(): where the holes are */
};

/* Appends <n> bytes. The buffer's NUL terminator is written once, when the
 * message is done (km_pb_write_json): this runs for every tag and value. */
static inline int w_raw(struct wr *w, const void *p, size_t n)
{
	struct km_buf *b = w->b;
	if (b->data && b->len + n < b->cap && (!b->max || b->len + n <= b->max)) {
		if (n == 1)
			b->data[b->len] = *(const char *)p;
		else
			memcpy(b->data + b->len, p, n);
		b->len += n;
		return 0;
	}
	return km_buf_append(b, p, n) ? -1 : 0;
}

static int w_varint(struct wr *w, uint64_t v)
{
	if (v < 0x80) {
		uint8_t c = (uint8_t)v;
		return w_raw(w, &c, 1);
	}
	uint8_t t[10];
	return w_raw(w, t, km_pb_wire_varint(v, t));
}

static int w_tag(struct wr *w, uint32_t id, unsigned wire_type)
{
	return w_varint(w, ((uint64_t)id << 3) | wire_type);
}

static int w_fixed(struct wr *w, uint64_t v, size_t n)
{
	uint8_t t[8];
	for (size_t i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	return w_raw(w, t, n);
}

/* A length-delimited body: one byte reserved for its length, the body moved
 * along when the length needs more. */
static int w_open(struct wr *w, size_t *at)
{
	*at = w->b->len;
	if (w->rec)
		km_pb_rec_open(w->rec);
	return w_raw(w, "", 1);
}

static int w_close(struct wr *w, size_t at)
{
	size_t body = w->b->len - at - 1;
	if (body < 0x80) {
		w->b->data[at] = (char)body;
		if (w->rec)
			km_pb_rec_close(w->rec, at, 1, w->b->len);
		return 0;
	}
	uint8_t t[10];
	size_t n = km_pb_wire_varint(body, t);
	if (w_raw(w, t, n - 1))
		return -1;
	memmove(w->b->data + at + n, w->b->data + at + 1, body);
	memcpy(w->b->data + at, t, n);
	if (w->rec)
		km_pb_rec_close(w->rec, at, n, w->b->len);
	return 0;
}

/* A string or bytes payload with its length; recording, each hole in it
 * noted (the string then a span of its own: its length is the fill's). */
static int w_str(struct wr *w, const char *p, size_t n)
{
	size_t hat, hlen;
	uint32_t var;
	if (!w->rec || !km_pb_rec_next_hole(w->rec, p, n, 0, &hat, &hlen, &var))
		return w_varint(w, n) || w_raw(w, p, n) ? -1 : 0;
	size_t at, from = 0;
	if (w_open(w, &at))
		return -1;
	do {
		if (w_raw(w, p + from, hat - from))
			return -1;
		km_pb_rec_hole(w->rec, w->b->len, hlen, var);
		if (w_raw(w, p + hat, hlen))
			return -1;
		from = hat + hlen;
	} while (km_pb_rec_next_hole(w->rec, p, n, from, &hat, &hlen, &var));
	if (w_raw(w, p + from, n - from))
		return -1;
	return w_close(w, at);
}

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* One scalar value: its wire type and payload, and whether it is the
 * field's zero value. */
struct sval {
	unsigned wt;
	uint64_t u; /* varint or fixed bits */
	const void *p; /* WT_LEN */
	size_t n;
	bool zero;
};

/* Recording: a node the recording takes for a var anywhere but in a
 * Duration (no hole can stand for it there) leaves no shape. */
static void rec_not_here(struct wr *w, const struct km_json *j)
{
	if (w->rec && j && j->tag && km_pb_rec_tag_var(w->rec, j->tag) >= 0)
		w->rec->bad = true;
}

static int sval_of(struct wr *w, const ProtobufCFieldDescriptor *f, const struct km_json *v, struct sval *s)
{
	int64_t i;
	uint64_t u;
	double d;
	int32_t e;
	rec_not_here(w, v);
	*s = (struct sval){.wt = WT_VARINT};
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if (get_i64(v, &i) != 0 || i < INT32_MIN || i > INT32_MAX)
			return -1;
		if (f->type == PROTOBUF_C_TYPE_INT32) {
			s->u = (uint64_t)i; /* negative: ten bytes, as int64 */
		} else if (f->type == PROTOBUF_C_TYPE_SINT32) {
			s->u = ((uint32_t)i << 1) ^ (uint32_t)((int32_t)i >> 31);
		} else {
			s->wt = WT_I32;
			s->u = (uint32_t)(int32_t)i;
		}
		s->zero = i == 0;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if (get_u64(v, &u) != 0 || u > UINT32_MAX)
			return -1;
		s->wt = f->type == PROTOBUF_C_TYPE_FIXED32 ? WT_I32 : WT_VARINT;
		s->u = u;
		s->zero = u == 0;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if (get_i64(v, &i) != 0)
			return -1;
		if (f->type == PROTOBUF_C_TYPE_SINT64)
			s->u = ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
		else
			s->u = (uint64_t)i;
		if (f->type == PROTOBUF_C_TYPE_SFIXED64)
			s->wt = WT_I64;
		s->zero = i == 0;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if (get_u64(v, &u) != 0)
			return -1;
		s->wt = f->type == PROTOBUF_C_TYPE_FIXED64 ? WT_I64 : WT_VARINT;
		s->u = u;
		s->zero = u == 0;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT: {
		if (get_double(v, &d) != 0 || (isfinite(d) && fabs(d) > FLT_MAX))
			return -1;
		float fl = (float)d;
		uint32_t bits;
		memcpy(&bits, &fl, sizeof(bits));
		s->wt = WT_I32;
		s->u = bits;
		s->zero = fl == 0;
		return 0;
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		if (get_double(v, &d) != 0)
			return -1;
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		s->wt = WT_I64;
		s->u = bits;
		s->zero = d == 0;
		return 0;
	}
	case PROTOBUF_C_TYPE_BOOL:
		if (v->kind != KM_JSON_BOOL)
			return -1;
		s->u = v->b;
		s->zero = !v->b;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		if (enum_value(f->descriptor, v, &e))
			return -1;
		s->u = (uint64_t)(int64_t)e;
		s->zero = e == 0;
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		if (v->kind != KM_JSON_STRING || (v->s.len && memchr(v->s.ptr, 0, v->s.len)))
			return -1;
		s->wt = WT_LEN;
		s->p = v->s.ptr;
		s->n = v->s.len;
		s->zero = v->s.len == 0;
		return 0;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData bd = {0};
		if (v->kind != KM_JSON_STRING || base64_decode(w->a, v->s, &bd) != 0)
			return -1;
		s->wt = WT_LEN;
		s->p = bd.data;
		s->n = bd.len;
		s->zero = bd.len == 0;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: break;
	}
	return -1;
}

static int w_sval(struct wr *w, const struct sval *s)
{
	switch (s->wt) {
	case WT_VARINT: return w_varint(w, s->u);
	case WT_I64: return w_fixed(w, s->u, 8);
	case WT_I32: return w_fixed(w, s->u, 4);
	default: return w_str(w, s->p, s->n);
	}
}

static int w_body(struct wr *w, const ProtobufCMessageDescriptor *d, const struct km_json *j, int depth,
		  bool skip_type);

static int w_submsg(struct wr *w, uint32_t id, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		    int depth)
{
	size_t at;
	if (w_tag(w, id, WT_LEN) || w_open(w, &at) || w_body(w, d, j, depth, false))
		return -1;
	return w_close(w, at);
}

/* One value of field <f> with its tag; <force> writes a zero scalar too
 * (list elements, explicit presence, oneof members). */
static int w_single(struct wr *w, const ProtobufCFieldDescriptor *f, const struct km_json *v, int depth, bool force)
{
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return w_submsg(w, f->id, f->descriptor, v, depth + 1);
	struct sval s;
	if (sval_of(w, f, v, &s))
		return -1;
	if (s.zero && !force)
		return 0;
	return w_tag(w, f->id, s.wt) || w_sval(w, &s) ? -1 : 0;
}

static bool packable(const ProtobufCFieldDescriptor *f)
{
	return (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) && f->type != PROTOBUF_C_TYPE_STRING &&
	       f->type != PROTOBUF_C_TYPE_BYTES && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* <map>: <f> is a map<K,V> (field_names.map). */
static int w_field(struct wr *w, const ProtobufCFieldDescriptor *f, bool map, const struct km_json *v, int depth)
{
	if (f->label != PROTOBUF_C_LABEL_REPEATED)
		return w_single(w, f, v, depth,
				f->label != PROTOBUF_C_LABEL_NONE || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF));
	if (map) {
		if (v->kind != KM_JSON_OBJECT)
			return -1;
		const ProtobufCMessageDescriptor *ed = f->descriptor;
		const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
		for (size_t i = 0; i < v->len; i++) {
			const struct km_json_member *mem = &v->members[i];
			if (mem->val->kind == KM_JSON_NULL && !null_is_value(vf))
				return -1;
			struct km_json key = {.kind = KM_JSON_STRING, .s = mem->key};
			struct km_json bkey = {.kind = KM_JSON_BOOL, .b = km_str_eqc(mem->key, "true")};
			if (kf->type == PROTOBUF_C_TYPE_BOOL && !bkey.b && !km_str_eqc(mem->key, "false"))
				return -1;
			size_t at;
			if (w_tag(w, f->id, WT_LEN) || w_open(w, &at) ||
			    w_single(w, kf, kf->type == PROTOBUF_C_TYPE_BOOL ? &bkey : &key, depth, false) ||
			    w_single(w, vf, mem->val, depth + 1, false) || w_close(w, at))
				return -1;
		}
		return 0;
	}
	if (v->kind != KM_JSON_ARRAY)
		return -1;
	for (size_t i = 0; i < v->len; i++)
		if (v->items[i]->kind == KM_JSON_NULL && !null_is_value(f))
			return -1;
	if (packable(f)) {
		if (!v->len)
			return 0;
		size_t at;
		if (w_tag(w, f->id, WT_LEN) || w_open(w, &at))
			return -1;
		for (size_t i = 0; i < v->len; i++) {
			struct sval s;
			if (sval_of(w, f, v->items[i], &s) || w_sval(w, &s))
				return -1;
		}
		return w_close(w, at);
	}
	for (size_t i = 0; i < v->len; i++)
		if (w_single(w, f, v->items[i], depth, true))
			return -1;
	return 0;
}

static int w_value(struct wr *w, const struct km_json *j, int depth)
{
	/* a Value is a message even when it holds a scalar: counted as
	 * msg_from counts it, so both paths refuse the same nesting */
	if (depth > KM_PB_MAX_DEPTH)
		return -1;
	rec_not_here(w, j);
	switch (j->kind) {
	case KM_JSON_NULL: return w_tag(w, 1, WT_VARINT) || w_varint(w, 0) ? -1 : 0;
	case KM_JSON_NUMBER: {
		uint64_t bits;
		if (!isfinite(j->d))
			return -1;
		memcpy(&bits, &j->d, sizeof(bits));
		return w_tag(w, 2, WT_I64) || w_fixed(w, bits, 8) ? -1 : 0;
	}
	case KM_JSON_STRING:
		if (j->s.len && memchr(j->s.ptr, 0, j->s.len))
			return -1;
		return w_tag(w, 3, WT_LEN) || w_str(w, j->s.ptr, j->s.len) ? -1 : 0;
	case KM_JSON_BOOL: return w_tag(w, 4, WT_VARINT) || w_varint(w, j->b) ? -1 : 0;
	case KM_JSON_OBJECT: return w_submsg(w, 5, &google__protobuf__struct__descriptor, j, depth + 1);
	case KM_JSON_ARRAY: return w_submsg(w, 6, &google__protobuf__list_value__descriptor, j, depth + 1);
	}
	return -1;
}

static int w_seconds_nanos(struct wr *w, int64_t secs, int32_t nanos)
{
	if (secs && (w_tag(w, 1, WT_VARINT) || w_varint(w, (uint64_t)secs)))
		return -1;
	if (nanos && (w_tag(w, 2, WT_VARINT) || w_varint(w, (uint64_t)(int64_t)nanos)))
		return -1;
	return 0;
}

/* A Duration; recording, one the recording takes for a var is a hole of
 * its body (that var's bytes, or no shape). */
static int w_duration(struct wr *w, const struct km_json *j)
{
	int64_t secs;
	int32_t nanos;
	if (j->kind != KM_JSON_STRING || parse_duration(j->s, &secs, &nanos) != 0)
		return -1;
	int v = w->rec && j->tag ? km_pb_rec_tag_var(w->rec, j->tag) : -1;
	size_t at = w->b->len;
	if (w_seconds_nanos(w, secs, nanos))
		return -1;
	if (v >= 0) {
		struct km_str want = w->rec->vars[v];
		size_t n = w->b->len - at;
		if (want.len != n || (n && memcmp(w->b->data + at, want.ptr, n) != 0))
			w->rec->bad = true;
		km_pb_rec_hole(w->rec, at, n, (uint32_t)v);
	}
	return 0;
}

int km_pb_duration_body(struct km_str text, uint8_t *out)
{
	int64_t secs;
	int32_t nanos;
	if (parse_duration(text, &secs, &nanos) != 0)
		return -1;
	size_t n = 0;
	if (secs) {
		out[n++] = 1 << 3 | WT_VARINT;
		n += km_pb_wire_varint((uint64_t)secs, out + n);
	}
	if (nanos) {
		out[n++] = 2 << 3 | WT_VARINT;
		n += km_pb_wire_varint((uint64_t)(int64_t)nanos, out + n);
	}
	return (int)n;
}

static int w_wkt(struct wr *w, enum wkt kind, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		 int depth)
{
	int64_t secs;
	int32_t nanos;
	if (kind != WKT_DURATION)
		rec_not_here(w, j);
	switch (kind) {
	case WKT_ANY: {
		const struct km_json *t = j->kind == KM_JSON_OBJECT ? km_json_get(j, "@type") : NULL;
		if (!t || t->kind != KM_JSON_STRING || (t->s.len && memchr(t->s.ptr, 0, t->s.len)))
			return -1;
		const ProtobufCMessageDescriptor *inner = km_pb_find(t->s);
		if (!inner)
			return -1;
		size_t rest = 0;
		for (size_t i = 0; i < j->len; i++)
			rest += !km_str_eqc(j->members[i].key, "@type");
		const struct km_json *body = j;
		if (names_of(inner)->wkt != WKT_NONE) {
			body = km_json_get(j, "value");
			if (!body || rest != 1)
				return -1;
		}
		size_t at;
		if (w_tag(w, 1, WT_LEN) || w_str(w, t->s.ptr, t->s.len) ||
		    w_tag(w, 2, WT_LEN) || w_open(w, &at) || w_body(w, inner, body, depth + 1, body == j))
			return -1;
		return w_close(w, at);
	}
	case WKT_DURATION: return w_duration(w, j);
	case WKT_TIMESTAMP:
		if (j->kind != KM_JSON_STRING || parse_timestamp(j->s, &secs, &nanos) != 0)
			return -1;
		return w_seconds_nanos(w, secs, nanos);
	case WKT_WRAPPER: return w_single(w, &d->fields[0], j, depth, false);
	case WKT_STRUCT:
		if (j->kind != KM_JSON_OBJECT)
			return -1;
		for (size_t i = 0; i < j->len; i++) {
			struct km_str k = j->members[i].key;
			size_t at, vat;
			if ((k.len && memchr(k.ptr, 0, k.len)) || w_tag(w, 1, WT_LEN) || w_open(w, &at))
				return -1;
			if (k.len && (w_tag(w, 1, WT_LEN) || w_str(w, k.ptr, k.len)))
				return -1;
			if (w_tag(w, 2, WT_LEN) || w_open(w, &vat) || w_value(w, j->members[i].val, depth + 2) ||
			    w_close(w, vat) || w_close(w, at))
				return -1;
		}
		return 0;
	case WKT_VALUE: return w_value(w, j, depth);
	case WKT_LIST:
		if (j->kind != KM_JSON_ARRAY)
			return -1;
		for (size_t i = 0; i < j->len; i++) {
			size_t at;
			if (w_tag(w, 1, WT_LEN) || w_open(w, &at) || w_value(w, j->items[i], depth + 1) ||
			    w_close(w, at))
				return -1;
		}
		return 0;
	case WKT_NONE: break;
	}
	return -1;
}

/* The fields of message <d> from <j> (an Any's object: <skip_type> leaves
 * out its "@type"). */
static int w_body(struct wr *w, const ProtobufCMessageDescriptor *d, const struct km_json *j, int depth,
		  bool skip_type)
{
	if (depth > KM_PB_MAX_DEPTH || !j)
		return -1;
	const struct field_names *fn = names_of(d);
	if (fn->wkt != WKT_NONE)
		return w_wkt(w, fn->wkt, d, j, depth);
	if (j->kind != KM_JSON_OBJECT)
		return -1;
	unsigned char small[64];
	unsigned char *seen = d->n_fields <= sizeof(small) ? small : km_arena_alloc(w->a, d->n_fields);
	memset(seen, 0, d->n_fields);
	unsigned oneofs[8]; /* quantifier offsets of the oneofs written */
	size_t noneofs = 0;
	for (size_t i = 0; i < j->len; i++) {
		const struct km_json_member *mem = &j->members[i];
		if (skip_type && km_str_eqc(mem->key, "@type"))
			continue;
		const ProtobufCFieldDescriptor *f = find_field_in(fn, mem->key);
		if (!f)
			return -1;
		size_t k = (size_t)(f - d->fields);
		if (seen[k])
			return -1;
		seen[k] = 1;
		if (mem->val->kind == KM_JSON_NULL && !(f->label != PROTOBUF_C_LABEL_REPEATED && null_is_value(f)))
			continue; /* null: the field stays unset */
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			/* a second member of the same oneof (its case field) */
			for (size_t o = 0; o < noneofs; o++)
				if (oneofs[o] == f->quantifier_offset)
					return -1;
			if (noneofs < sizeof(oneofs) / sizeof(oneofs[0]))
				oneofs[noneofs++] = f->quantifier_offset;
			else
				for (unsigned o = 0; o < d->n_fields; o++)
					if (o != k && seen[o] == 2 && (d->fields[o].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
					    d->fields[o].quantifier_offset == f->quantifier_offset)
						return -1;
		}
		if (w_field(w, f, fn->map[k], mem->val, depth))
			return -1;
		seen[k] = 2;
	}
	for (unsigned i = 0; fn->any_required && i < d->n_fields; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && seen[i] != 2)
			return -1;
	return 0;
}

int km_pb_write_json(struct km_arena *a, const ProtobufCMessageDescriptor *d, const struct km_json *j,
		     struct km_buf *bytes)
{
	return km_pb_write_json_rec(a, d, j, bytes, NULL);
}

int km_pb_write_json_rec(struct km_arena *a, const ProtobufCMessageDescriptor *d, const struct km_json *j,
			 struct km_buf *bytes, struct km_pb_rec *rec)
{
	size_t start = bytes->len;
	struct wr w = {.a = a, .b = bytes, .rec = rec};
	if (w_body(&w, d, j, 0, false) == 0) {
		if (bytes->data)
			bytes->data[bytes->len] = 0; /* w_raw leaves it out */
		return 0;
	}
	bytes->len = start;
	if (bytes->data)
		bytes->data[start] = 0;
	return -1;
}

int km_pb_encode_json(struct km_arena *a, const char *type, const struct km_json *j,
		      struct km_buf *bytes, struct km_buf *err)
{
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	if (!d) {
		if (err)
			km_buf_printf(err, "unknown message type \"%s\"", type);
		return -KM_E_NOT_FOUND;
	}
	if (km_pb_write_json(a, d, j, bytes) == 0)
		return 0;
	/* the message path says what is wrong (or, past the buffer's cap,
	 * fails the same way) */
	ProtobufCMessage *m;
	int rc = km_pb_from_json(a, d, j, &m, err);
	if (rc)
		return rc;
	return km_pb_wire_pack(m, bytes);
}

/* ---- message -> JSON ------------------------------------------------------ */

static int msg_to(struct ctx *c, const ProtobufCMessage *m, struct km_json **out, int depth);

static struct km_json *number_json(struct km_arena *a, double d, int is_float)
{
	if (isnan(d))
		return km_json_cstring(a, "NaN");
	if (isinf(d))
		return km_json_cstring(a, d > 0 ? "Infinity" : "-Infinity");
	char buf[48];
	/* The shortest text that reads back as the same value. */
	for (int p = is_float ? 6 : 15; p <= (is_float ? 9 : 17); p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, d);
		if (is_float ? strtof(buf, NULL) == (float)d : strtod(buf, NULL) == d)
			break;
	}
	return km_json_number_text(a, km_str_c(buf));
}

static struct km_json *u64_json(struct km_arena *a, uint64_t v)
{
	return km_json_string_ref(a, km_str_c(km_arena_printf(a, "%" PRIu64, v)));
}

static struct km_json *i64_json(struct km_arena *a, int64_t v)
{
	return km_json_string_ref(a, km_str_c(km_arena_printf(a, "%" PRId64, v)));
}

static int value_to(struct ctx *c, const ProtobufCFieldDescriptor *f, const void *src,
		    struct km_json **out, int depth)
{
	struct km_arena *a = c->a;
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: *out = km_json_int(a, *(const int32_t *)src); return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: *out = km_json_int(a, *(const uint32_t *)src); return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: *out = i64_json(a, *(const int64_t *)src); return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: *out = u64_json(a, *(const uint64_t *)src); return 0;
	case PROTOBUF_C_TYPE_FLOAT: *out = number_json(a, *(const float *)src, 1); return 0;
	case PROTOBUF_C_TYPE_DOUBLE: *out = number_json(a, *(const double *)src, 0); return 0;
	case PROTOBUF_C_TYPE_BOOL: *out = km_json_bool(a, *(const protobuf_c_boolean *)src); return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = f->descriptor;
		int v = *(const int *)src;
		if (strcmp(ed->name, "google.protobuf.NullValue") == 0) {
			*out = km_json_null(a);
			return 0;
		}
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
		*out = ev ? km_json_string_ref(a, km_str_c(ev->name)) : km_json_int(a, v);
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)src;
		*out = km_json_string(a, km_str_c(s ? s : ""));
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = src;
		*out = base64_json(a, b->data, b->len);
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)src;
		if (!sub) { /* a NULL element of a repeated field: the default message */
			ProtobufCMessage *e = km_arena_alloc(a, ((const ProtobufCMessageDescriptor *)
									 f->descriptor)->sizeof_message);
			protobuf_c_message_init(f->descriptor, e);
			sub = e;
		}
		return msg_to(c, sub, out, depth + 1);
	}
	}
	return fail(c, "unsupported field type");
}

/* Map keys sort as protojson does: numerically for integers, bytewise else. */
static int cmp_key_str(const void *x, const void *y)
{
	const struct km_json_member *a = x, *b = y;
	return km_str_cmp(a->key, b->key);
}

static int cmp_key_signed(const void *x, const void *y)
{
	const struct km_json_member *a = x, *b = y;
	long long p = strtoll(a->key.ptr, NULL, 10), q = strtoll(b->key.ptr, NULL, 10);
	return p < q ? -1 : p > q;
}

static int cmp_key_unsigned(const void *x, const void *y)
{
	const struct km_json_member *a = x, *b = y;
	unsigned long long p = strtoull(a->key.ptr, NULL, 10), q = strtoull(b->key.ptr, NULL, 10);
	return p < q ? -1 : p > q;
}

static int map_to(struct ctx *c, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m,
		  struct km_json **out, int depth)
{
	const ProtobufCMessageDescriptor *ed = f->descriptor;
	const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
	size_t n = *(const size_t *)member(m, f->quantifier_offset);
	ProtobufCMessage *const *arr = *(ProtobufCMessage *const *const *)member(m, f->offset);
	struct km_json *obj = km_json_object(c->a);
	for (size_t i = 0; i < n; i++) {
		const ProtobufCMessage *e = arr[i];
		if (!e)
			continue;
		struct km_json *k, *v;
		if (kf->type == PROTOBUF_C_TYPE_BOOL)
			k = km_json_cstring(c->a, *(const protobuf_c_boolean *)member(e, kf->offset)
							  ? "true"
							  : "false");
		else
			value_to(c, kf, member(e, kf->offset), &k, depth);
		if (k->kind == KM_JSON_NUMBER)
			k = km_json_string_ref(c->a, k->s);
		size_t old = path_add(c, "[\"%.*s\"]", (int)(k->s.len > 200 ? 200 : k->s.len), k->s.ptr);
		int rc = value_to(c, vf, member(e, vf->offset), &v, depth);
		if (rc)
			return rc;
		path_pop(c, old);
		/* Later duplicates win, as when protobuf decodes a map. */
		km_json_set_str(c->a, obj, k->s, v);
	}
	switch (kf->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		qsort(obj->members, obj->len, sizeof(obj->members[0]), cmp_key_signed);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		qsort(obj->members, obj->len, sizeof(obj->members[0]), cmp_key_unsigned);
		break;
	default:
		if (obj->len > 1)
			qsort(obj->members, obj->len, sizeof(obj->members[0]), cmp_key_str);
	}
	*out = obj;
	return 0;
}

/* Whether a singular field is present: oneof members by their case, proto2
 * optionals by has_/pointer, proto3 scalars when not zero. */
static int field_present(const ProtobufCFieldDescriptor *f, const ProtobufCMessage *m)
{
	const void *p = member(m, f->offset);
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)member(m, f->quantifier_offset) == f->id;
	if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)p != NULL;
	if (f->label == PROTOBUF_C_LABEL_REQUIRED)
		return 1;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (f->type == PROTOBUF_C_TYPE_STRING)
			return *(void *const *)p != NULL && *(void *const *)p != f->default_value;
		return *(const protobuf_c_boolean *)member(m, f->quantifier_offset) != 0;
	}
	switch (f->type) {
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s && *s;
	}
	case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)p)->len != 0;
	case PROTOBUF_C_TYPE_FLOAT: return *(const float *)p != 0;
	case PROTOBUF_C_TYPE_DOUBLE: return *(const double *)p != 0;
	case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)p != 0;
	default: return elt_size(f->type) == 8 ? *(const uint64_t *)p != 0 : *(const uint32_t *)p != 0;
	}
}

static int fields_to(struct ctx *c, const ProtobufCMessage *m, struct km_json *obj, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		size_t n = 0;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)member(m, f->quantifier_offset);
			if (n == 0)
				continue;
		} else if (!field_present(f, m)) {
			continue;
		}
		struct km_json *v = NULL;
		struct km_str key = json_name(c->a, f->name);
		size_t old = path_field(c, key);
		int rc = 0;
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			rc = value_to(c, f, member(m, f->offset), &v, depth);
		} else if (is_map(f)) {
			rc = map_to(c, f, m, &v, depth);
		} else {
			const char *arr = *(char *const *)member(m, f->offset);
			size_t es = elt_size(f->type);
			v = km_json_array(c->a);
			for (size_t k = 0; k < n && rc == 0; k++) {
				struct km_json *item;
				size_t o2 = path_add(c, "[%zu]", k);
				rc = value_to(c, f, arr + k * es, &item, depth);
				path_pop(c, o2);
				if (rc == 0)
					km_json_array_push(c->a, v, item);
			}
		}
		if (rc)
			return rc;
		path_pop(c, old);
		km_json_append_member(c->a, obj, key, v);
	}
	return 0;
}

static int any_to(struct ctx *c, const Google__Protobuf__Any *any, struct km_json **out, int depth)
{
	struct km_str url = km_str_c(any->type_url);
	const ProtobufCMessageDescriptor *d = km_pb_find(url);
	if (!d) {
		c->code = -KM_E_NOT_FOUND;
		return fail(c, "google.protobuf.Any: unknown type \"%.*s\"",
			    (int)(url.len > 200 ? 200 : url.len), url.ptr);
	}
	ProtobufCMessage *inner;
	if (km_pb_wire_decode(c->a, d, any->value.data, any->value.len, depth + 1, &inner, NULL) !=
	    0) {
		c->code = -KM_E_PARSE;
		return fail(c, "google.protobuf.Any: invalid %s payload", d->name);
	}
	struct km_json *body;
	int rc = msg_to(c, inner, &body, depth + 1);
	if (rc)
		return rc;
	struct km_json *obj = km_json_object(c->a);
	km_json_append_member(c->a, obj, KM_STR("@type"), km_json_string(c->a, url));
	if (names_of(d)->wkt != WKT_NONE) {
		km_json_append_member(c->a, obj, KM_STR("value"), body);
	} else {
		for (size_t i = 0; i < body->len; i++)
			km_json_append_member(c->a, obj, body->members[i].key, body->members[i].val);
	}
	*out = obj;
	return 0;
}

static int duration_to(struct ctx *c, const Google__Protobuf__Duration *du, struct km_json **out)
{
	int64_t s = du->seconds;
	int32_t n = du->nanos;
	if (s < -MAX_DURATION_SECONDS || s > MAX_DURATION_SECONDS || n <= -1000000000 ||
	    n >= 1000000000 || (s > 0 && n < 0) || (s < 0 && n > 0)) {
		c->code = -KM_E_PARSE;
		return fail(c, "google.protobuf.Duration out of range");
	}
	char frac[16];
	frac_text(frac, sizeof(frac), n < 0 ? -n : n);
	const char *sign = s < 0 || n < 0 ? "-" : "";
	*out = km_json_string_ref(c->a, km_str_c(km_arena_printf(
						 c->a, "%s%" PRId64 "%ss", sign, s < 0 ? -s : s, frac)));
	return 0;
}

static int timestamp_to(struct ctx *c, const Google__Protobuf__Timestamp *ts, struct km_json **out)
{
	if (ts->seconds < MIN_TIMESTAMP_SECONDS || ts->seconds > MAX_TIMESTAMP_SECONDS ||
	    ts->nanos < 0 || ts->nanos > 999999999) {
		c->code = -KM_E_PARSE;
		return fail(c, "google.protobuf.Timestamp out of range");
	}
	int64_t days = ts->seconds / 86400, rem = ts->seconds % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	int64_t y;
	unsigned mo, d;
	civil_from_days(days, &y, &mo, &d);
	char frac[16];
	frac_text(frac, sizeof(frac), ts->nanos);
	*out = km_json_string_ref(
		c->a, km_str_c(km_arena_printf(c->a, "%04d-%02u-%02uT%02d:%02d:%02d%sZ", (int)y, mo, d,
					       (int)(rem / 3600), (int)(rem / 60 % 60),
					       (int)(rem % 60), frac)));
	return 0;
}

static int value_msg_to(struct ctx *c, const Google__Protobuf__Value *v, struct km_json **out,
			int depth)
{
	switch (v->kind_case) {
	case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
		if (!isfinite(v->number_value)) {
			c->code = -KM_E_PARSE;
			return fail(c, "google.protobuf.Value: number is not finite");
		}
		*out = number_json(c->a, v->number_value, 0);
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
		*out = km_json_string(c->a, km_str_c(v->string_value ? v->string_value : ""));
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE: *out = km_json_bool(c->a, v->bool_value); return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
		if (v->struct_value)
			return msg_to(c, &v->struct_value->base, out, depth + 1);
		*out = km_json_object(c->a);
		return 0;
	case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
		if (v->list_value)
			return msg_to(c, &v->list_value->base, out, depth + 1);
		*out = km_json_array(c->a);
		return 0;
	default: *out = km_json_null(c->a); return 0;
	}
}

static int msg_to(struct ctx *c, const ProtobufCMessage *m, struct km_json **out, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	if (depth > KM_PB_MAX_DEPTH) {
		c->code = -KM_E_PARSE;
		return fail(c, "message nesting exceeds %d levels", KM_PB_MAX_DEPTH);
	}
	switch (names_of(d)->wkt) {
	case WKT_ANY: return any_to(c, (const Google__Protobuf__Any *)m, out, depth);
	case WKT_DURATION: return duration_to(c, (const Google__Protobuf__Duration *)m, out);
	case WKT_TIMESTAMP: return timestamp_to(c, (const Google__Protobuf__Timestamp *)m, out);
	case WKT_WRAPPER: return value_to(c, &d->fields[0], member(m, d->fields[0].offset), out, depth);
	case WKT_VALUE: return value_msg_to(c, (const Google__Protobuf__Value *)m, out, depth);
	case WKT_STRUCT: {
		const Google__Protobuf__Struct *st = (const Google__Protobuf__Struct *)m;
		struct km_json *obj = km_json_object(c->a);
		for (size_t i = 0; i < st->n_fields; i++) {
			const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
			if (!e)
				continue;
			struct km_str k = km_str_c(e->key ? e->key : "");
			size_t old = path_field(c, k);
			struct km_json *v;
			int rc = e->value ? msg_to(c, &e->value->base, &v, depth + 1)
					  : (v = km_json_null(c->a), 0);
			if (rc)
				return rc;
			path_pop(c, old);
			km_json_set_str(c->a, obj, k, v);
		}
		if (obj->len > 1)
			qsort(obj->members, obj->len, sizeof(obj->members[0]), cmp_key_str);
		*out = obj;
		return 0;
	}
	case WKT_LIST: {
		const Google__Protobuf__ListValue *l = (const Google__Protobuf__ListValue *)m;
		struct km_json *arr = km_json_array(c->a);
		for (size_t i = 0; i < l->n_values; i++) {
			struct km_json *v;
			size_t old = path_add(c, "[%zu]", i);
			int rc = l->values[i] ? msg_to(c, &l->values[i]->base, &v, depth + 1)
					      : (v = km_json_null(c->a), 0);
			if (rc)
				return rc;
			path_pop(c, old);
			km_json_array_push(c->a, arr, v);
		}
		*out = arr;
		return 0;
	}
	case WKT_NONE: break;
	}
	struct km_json *obj = km_json_object(c->a);
	int rc = fields_to(c, m, obj, depth);
	if (rc)
		return rc;
	*out = obj;
	return 0;
}

int km_pb_message_to_json(struct km_arena *a, const ProtobufCMessage *m, struct km_json **out,
			  struct km_buf *err)
{
	struct ctx c = {.a = a, .err = err, .code = -KM_E_PARSE};
	*out = NULL;
	struct km_json *j;
	int rc = msg_to(&c, m, &j, 0);
	if (rc == 0)
		*out = j;
	return rc;
}

struct km_json *km_pb_to_json(struct km_arena *a, const ProtobufCMessage *m)
{
	struct km_json *j;
	return km_pb_message_to_json(a, m, &j, NULL) == 0 ? j : NULL;
}

int km_pb_decode_to_json(struct km_arena *a, const char *type, const uint8_t *bytes, size_t len,
			 struct km_json **out, struct km_buf *err)
{
	*out = NULL;
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	if (!d) {
		if (err)
			km_buf_printf(err, "unknown message type \"%s\"", type);
		return -KM_E_NOT_FOUND;
	}
	ProtobufCMessage *m;
	int rc = km_pb_wire_decode(a, d, bytes, len, 0, &m, err);
	if (rc)
		return rc;
	return km_pb_message_to_json(a, m, out, err);
}
