/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/codec/json.c: parsing, Go-style errors, writing, reindent. */
#include "codec/json.h"

#include "base/err.h"
#include <errno.h>
#include <stdio.h>
#include "../test.h"

static const char *roundtrip(struct km_arena *a, const char *in, int indent)
{
	struct km_json *v;
	struct km_buf err = KM_BUF_INIT, out = KM_BUF_INIT;
	if (km_json_parse(a, in, strlen(in), &v, &err)) {
		char *e = km_arena_strdup(a, km_buf_cstr(&err));
		km_buf_fini(&err);
		return e;
	}
	km_json_write(&out, v, indent, 0);
	char *r = km_arena_strdup(a, km_buf_cstr(&out));
	km_buf_fini(&out);
	km_buf_fini(&err);
	return r;
}

/* km_json_members of <text>: "key=value|key=value" or the error code. */
static char *members(struct km_arena *a, const char *text, size_t max)
{
	struct km_json_span sp[8];
	size_t n = 99;
	int rc = km_json_members(km_str_c(text), sp, max, &n);
	if (rc)
		return km_arena_printf(a, "rc=%d n=%zu", rc, n);
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		km_buf_printf(&b, "%s%.*s=%.*s", i ? "|" : "", (int)sp[i].key.len, sp[i].key.ptr,
			      (int)sp[i].value.len, sp[i].value.ptr);
	char *s = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return s;
}

static void test_members(struct km_arena *a)
{
	CHECK_STREQ(members(a, "{}", 8), "");
	CHECK_STREQ(members(a, " { } ", 8), "");
	CHECK_STREQ(members(a, "{\"a\":1,\"b\" : {\"c\":[1,{\"d\":\"}]\"}],\"e\":{}} ,\"f\":\"x\\\"y\"}", 8),
		    "a=1|b={\"c\":[1,{\"d\":\"}]\"}],\"e\":{}}|f=\"x\\\"y\"");
	CHECK_STREQ(members(a, "{\"k\\u0041\":true,\"n\":null,\"x\":-1.5e+3,\"s\":[]}", 8),
		    "k\\u0041=true|n=null|x=-1.5e+3|s=[]");
	/* not an object, or not a well-formed one */
	int bad = -KM_E_PARSE;
	char want[32];
	snprintf(want, sizeof(want), "rc=%d n=0", bad);
	const char *wrong[] = {"[]", "", "{", "{\"a\"}", "{\"a\":}", "{\"a\":tru}", "{\"a\":nulll}",
			       "{\"a\":1,}", "{\"a\":[1,]}", "{\"a\":[1}", "{\"a\":{\"b\"}}", "{\"a\":\"x}",
			       "{\"a\":1} x", "{\"a\":\"\n\"}", "{\"a\":x}", "{a:1}"};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(*wrong); i++) {
		char *got = members(a, wrong[i], 8);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "members(%s): %s\n", wrong[i], got);
		CHECK(strcmp(got, want) == 0);
	}
	/* more members than room */
	snprintf(want, sizeof(want), "rc=%d n=0", -E2BIG);
	CHECK_STREQ(members(a, "{\"a\":1,\"b\":2,\"c\":3}", 2), want);
	CHECK_STREQ(members(a, "{\"a\":1,\"b\":2}", 2), "a=1|b=2");
	/* as deep as the parser goes, and no deeper */
	char deep[600];
	size_t k = (size_t)snprintf(deep, sizeof(deep), "{\"a\":");
	for (int i = 0; i < KM_JSON_MAX_DEPTH; i++)
		deep[k++] = '[';
	for (int i = 0; i < KM_JSON_MAX_DEPTH; i++)
		deep[k++] = ']';
	deep[k++] = '}';
	deep[k] = 0;
	CHECK(km_json_members(km_str_c(deep), (struct km_json_span[1]){0}, 1, &k) == 0 && k == 1);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	test_members(a);
	CHECK_STREQ(roundtrip(a, " {\"a\" : [1, 2.5, -3e2, true, null, \"x\\ny\"]} ", 0),
		    "{\"a\":[1,2.5,-3e2,true,null,\"x\\ny\"]}");
	CHECK_STREQ(roundtrip(a, "{,\n}", 0),
		    "invalid character ',' looking for beginning of object key string");
	CHECK_STREQ(roundtrip(a, "{\"a\":1", 0), "unexpected end of JSON input");
	CHECK_STREQ(roundtrip(a, "{\"a\" 1}", 0), "invalid character '1' after object key");
	CHECK_STREQ(roundtrip(a, "[1 2]", 0), "invalid character '2' after array element");
	CHECK_STREQ(roundtrip(a, "{} x", 0), "invalid character 'x' after top-level value");
	CHECK_STREQ(roundtrip(a, "tru", 0), "unexpected end of JSON input");
	CHECK_STREQ(roundtrip(a, "\"\\u00e9\\ud83d\\ude00<\"", 0), "\"\xc3\xa9\xf0\x9f\x98\x80\\u003c\"");
	CHECK_STREQ(roundtrip(a, "{\"a\":{\"b\":[]},\"c\":{}}", 1),
		    "{\n \"a\": {\n  \"b\": []\n },\n \"c\": {}\n}");
	CHECK_STREQ(roundtrip(a, "{\"a\":1,\"a\":2}", 0), "{\"a\":2}");

	/* depth cap */
	char deep[400];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = 0;
	CHECK_STREQ(roundtrip(a, deep, 0), "exceeded max depth");

	struct km_buf out = KM_BUF_INIT;
	km_json_reindent(&out, KM_STR("{\"a\":[1,{\"b\":\"x,:{\"}],\"e\":{}}"), 1, 0);
	CHECK_STREQ(km_buf_cstr(&out), "{\n \"a\": [\n  1,\n  {\n   \"b\": \"x,:{\"\n  }\n ],\n \"e\": {}\n}");
	km_buf_fini(&out);

	/* fingerprints: same text, same hash; NULL hashes as empty text */
	struct km_buf scratch = KM_BUF_INIT;
	struct km_json *f1 = NULL, *f2 = NULL, *f3 = NULL;
	km_json_parse(a, "{\"a\": [1, 2]}", 13, &f1, NULL);
	km_json_parse(a, "{\"a\":[1,2]}", 11, &f2, NULL);
	km_json_parse(a, "{\"a\":[2,1]}", 11, &f3, NULL);
	CHECK(km_json_fnv(1, &scratch, f1) == km_json_fnv(1, &scratch, f2));
	CHECK(km_json_fnv(1, &scratch, f1) != km_json_fnv(1, &scratch, f3));
	CHECK(km_json_fnv(1, &scratch, NULL) != km_json_fnv(1, &scratch, f1));
	km_buf_fini(&scratch);

	struct km_json *x, *y;
	km_json_parse(a, "{\"a\":1,\"b\":[1]}", 15, &x, NULL);
	km_json_parse(a, "{\"b\":[1],\"a\":1.0}", 17, &y, NULL);
	CHECK(km_json_equal(x, y));
	km_arena_free(a);
	return test_summary();
}
