/* SPDX-License-Identifier: Apache-2.0 */
/* JSON document model shared by the JSON and YAML codecs. Every node, key and
 * string lives in the arena passed at creation and dies with it. Objects keep
 * member order (upstream's field order survives a round trip). Parsing is
 * strict RFC 8259 with Go-style error messages and a nesting cap. */
#ifndef KM_CODEC_JSON_H
#define KM_CODEC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"

enum km_json_kind {
	KM_JSON_NULL,
	KM_JSON_BOOL,
	KM_JSON_NUMBER,
	KM_JSON_STRING,
	KM_JSON_ARRAY,
	KM_JSON_OBJECT,
};

struct km_json;

struct km_json_member {
	struct km_str key;
	struct km_json *val;
};

struct km_json {
	enum km_json_kind kind;
	bool b;
	bool is_int;        /* NUMBER: integral text that fits int64 */
	uint16_t tag;       /* 0, or what a shape's recording takes the node for
			       (lib/pb/shape.h); kept by km_json_clone */
	int64_t i;          /* NUMBER when is_int */
	double d;           /* NUMBER */
	struct km_str s;    /* STRING value; NUMBER source text */
	size_t len;         /* ARRAY/OBJECT element count */
	size_t cap;
	struct km_json **items;         /* ARRAY */
	struct km_json_member *members; /* OBJECT */
};

#define KM_JSON_MAX_DEPTH 128

/* Parses <len> bytes into a tree in <a>. On error returns -KM_E_PARSE and puts
 * a Go-style message ("invalid character ',' looking for beginning of object
 * key string") into <err> when given. */
int km_json_parse(struct km_arena *a, const char *text, size_t len, struct km_json **out,
		  struct km_buf *err);

struct km_json *km_json_null(struct km_arena *a);
struct km_json *km_json_bool(struct km_arena *a, bool v);
struct km_json *km_json_int(struct km_arena *a, int64_t v);
struct km_json *km_json_double(struct km_arena *a, double v);
/* Number from its textual form (kept verbatim on output). */
struct km_json *km_json_number_text(struct km_arena *a, struct km_str text);
/* The string's bytes are copied into <a>. */
struct km_json *km_json_string(struct km_arena *a, struct km_str s);
struct km_json *km_json_cstring(struct km_arena *a, const char *s);
/* Borrows <s> (no copy): the caller guarantees it outlives the tree. */
struct km_json *km_json_string_ref(struct km_arena *a, struct km_str s);
struct km_json *km_json_array(struct km_arena *a);
struct km_json *km_json_object(struct km_arena *a);

void km_json_array_push(struct km_arena *a, struct km_json *arr, struct km_json *v);
/* Sets <key> (copied) in <obj>, replacing an existing member in place. */
void km_json_set(struct km_arena *a, struct km_json *obj, const char *key, struct km_json *v);
void km_json_set_str(struct km_arena *a, struct km_json *obj, struct km_str key, struct km_json *v);
/* Appends without checking for duplicates (parser use). */
void km_json_append_member(struct km_arena *a, struct km_json *obj, struct km_str key,
			   struct km_json *v);
struct km_json *km_json_get(const struct km_json *obj, const char *key);
struct km_json *km_json_get_str(const struct km_json *obj, struct km_str key);
/* Removes <key>; returns true if it was present. */
bool km_json_del(struct km_json *obj, const char *key);
/* String value of member <key>, or an empty view when absent / not a string. */
struct km_str km_json_get_string(const struct km_json *obj, const char *key);

/* The value of NUMBER <v> as int64 when it is integral and in range (no
 * undefined float-to-int conversion); false otherwise. */
bool km_json_as_i64(const struct km_json *v, int64_t *out);
/* Saturating int64 view of a NUMBER (non-integral values truncated). */
int64_t km_json_i64_sat(const struct km_json *v);

struct km_json *km_json_clone(struct km_arena *a, const struct km_json *v);
bool km_json_equal(const struct km_json *x, const struct km_json *y);
/* Sorts object members by key, recursively (sigs.k8s.io/yaml output order). */
void km_json_sort_keys(struct km_json *v);

/* Writes <v>. indent 0: compact; otherwise Go MarshalIndent with <indent>
 * spaces per level, starting at nesting level <depth>. */
int km_json_write(struct km_buf *out, const struct km_json *v, int indent, int depth);
/* Continues the 64-bit FNV-1a hash <h> over <v>'s compact text and a
 * separator (fingerprints of parsed records); <scratch> is reused. NULL
 * hashes as empty text. */
uint64_t km_json_fnv(uint64_t h, struct km_buf *scratch, const struct km_json *v);
int km_json_write_string(struct km_buf *out, struct km_str s);
/* Re-indents already valid compact or pretty JSON text (no tree). */
int km_json_reindent(struct km_buf *out, struct km_str text, int indent, int depth);

/* One member of an object's text: its key as written between the quotes
 * (escapes not decoded) and its value's text, both spans of that text. */
struct km_json_span {
	struct km_str key, value;
};

/* Splits the text of one JSON object into its members, in order, without
 * building it: at most <max> into <out>, their number in *<n>. Checks the
 * structure (strings closed, no control characters in them, brackets
 * matched, literals spelled out, numbers of number characters) but not
 * every rule of the grammar: a value needing that is parsed by the caller.
 * Returns 0, -KM_E_PARSE when <text> is not such an object, -E2BIG past
 * <max> members. For rewriting a few members of a large stored object. */
int km_json_members(struct km_str text, struct km_json_span *out, size_t max, size_t *n);

#endif
