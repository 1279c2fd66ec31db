/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for lib/codec/json.c: parse arbitrary bytes; on success
 * the compact and the indented output must both re-parse to an equal tree,
 * and km_json_reindent must agree with the writer. One arena per input. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_output(struct km_arena *a, const struct km_json *v, const struct km_buf *out)
{
	struct km_json *w = NULL;
	if (km_json_parse(a, out->data ? out->data : "", out->len, &w, NULL) != 0)
		abort(); /* the writer produced text the parser rejects */
	if (!km_json_equal(v, w))
		abort(); /* the round trip changed the value */
}

/* km_json_members on text the parser read as object <v>: the spans parse,
 * and put together as the parser does (a repeated key: the last value, in
 * the first one's place) make <v> again. */
static void check_members(struct km_arena *a, const struct km_json *v, const char *text, size_t size)
{
	enum { MAX = 64 };
	struct km_json_span spans[MAX];
	size_t n;
	int rc = km_json_members((struct km_str){text, size}, spans, MAX, &n);
	if (rc == -E2BIG)
		return;
	if (rc != 0)
		abort(); /* the parser took it: so must the scanner */
	struct km_json *w = km_json_object(a);
	for (size_t i = 0; i < n; i++) {
		char *quoted = km_arena_printf(a, "\"%.*s\"", (int)spans[i].key.len, spans[i].key.ptr);
		struct km_json *key = NULL, *val = NULL;
		if (km_json_parse(a, quoted, strlen(quoted), &key, NULL) != 0 || key->kind != KM_JSON_STRING)
			abort();
		if (km_json_parse(a, spans[i].value.ptr, spans[i].value.len, &val, NULL) != 0)
			abort();
		if (km_json_get_str(w, key->s))
			km_json_set_str(a, w, key->s, val);
		else
			km_json_append_member(a, w, key->s, val);
	}
	if (!km_json_equal(v, w))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	struct km_json *v = NULL;
	if (km_json_parse(a, (const char *)data, size, &v, &err) != 0) {
		if (err.len == 0)
			abort(); /* every failure carries a message */
		goto out;
	}
	struct km_buf compact = KM_BUF_INIT, pretty = KM_BUF_INIT, re = KM_BUF_INIT;
	if (km_json_write(&compact, v, 0, 0) != 0 || km_json_write(&pretty, v, 2, 0) != 0)
		abort();
	check_output(a, v, &compact);
	check_output(a, v, &pretty);
	/* Re-indenting the compact text gives what the writer gives. */
	km_json_reindent(&re, (struct km_str){km_buf_cstr(&compact), compact.len}, 2, 0);
	if (re.len != pretty.len || memcmp(km_buf_cstr(&re), km_buf_cstr(&pretty), re.len) != 0)
		abort();
	/* An object's members as spans of the text rebuild it. */
	if (v->kind == KM_JSON_OBJECT)
		check_members(a, v, (const char *)data, size);
	/* A clone is equal and writes the same bytes. */
	struct km_json *c = km_json_clone(a, v);
	if (!km_json_equal(v, c))
		abort();
	km_buf_fini(&compact);
	km_buf_fini(&pretty);
	km_buf_fini(&re);
out:
	km_buf_fini(&err);
	km_arena_free(a);
	return 0;
}
