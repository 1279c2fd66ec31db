/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/codec/json.c: parsing, Go-style errors, writing, reindent. */
#include "codec/json.h"

#include "base/err.h"
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

int main(void)
{
	struct km_arena *a = km_arena_new(0);
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
