/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for km_json_fmt (lib/codec/jsonf.c): compiled templates give the
 * same trees as rendering and parsing did, every conversion, embedded
 * subtrees are copies (%J) or taken (%T), conversions inside strings or keys still work (the
 * render path), and one buffer reused for another format is not confused
 * with the first. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "codec/jsonf.h"

static const char *text(struct km_arena *a, const struct km_json *v)
{
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, v, 0, 0);
	const char *s = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

static struct km_json *twice(struct km_arena *a, int n)
{
	/* the same call site twice: the second call uses the compiled template */
	return km_json_fmt(a, "{\"n\":%d,\"list\":[%d,\"k\"],\"t\":%b}", n, n + 1, n > 1);
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_str name = KM_STR("web \"1\"");
	struct km_json *sub = km_json_fmt(a, "{\"x\":[1,2.5,null]}");
	struct km_json *v =
	    km_json_fmt(a, "{\"s\":%s,\"S\":%S,\"d\":%d,\"u\":%u,\"D\":%D,\"b\":%b,\"J\":%J,\"null\":%J,\"pct\":\"100%%\"}",
			"a\nb", &name, -42, 4000000000u, (int64_t)-9007199254740993LL, 1, sub, NULL);
	CHECK_STREQ(text(a, v), "{\"s\":\"a\\nb\",\"S\":\"web \\\"1\\\"\",\"d\":-42,\"u\":4000000000,"
				"\"D\":-9007199254740993,\"b\":true,\"J\":{\"x\":[1,2.5,null]},\"null\":null,"
				"\"pct\":\"100%\"}");
	CHECK(km_json_get(v, "d")->is_int && km_json_get(v, "d")->i == -42);
	CHECK(km_json_get(v, "u")->i == 4000000000LL);

	/* an embedded tree is a copy: editing either leaves the other alone */
	km_json_set(a, km_json_get(v, "J"), "y", km_json_int(a, 7));
	CHECK_STREQ(text(a, sub), "{\"x\":[1,2.5,null]}");
	km_json_array_push(a, km_json_get(sub, "x"), km_json_int(a, 3));
	CHECK_STREQ(text(a, km_json_get(v, "J")), "{\"x\":[1,2.5,null],\"y\":7}");

	/* %T takes the node itself */
	struct km_json *own = km_json_fmt(a, "[1]");
	struct km_json *w = km_json_fmt(a, "{\"t\":%T,\"n\":%T}", own, NULL);
	CHECK(km_json_get(w, "t") == own);
	CHECK_STREQ(text(a, w), "{\"t\":[1],\"n\":null}");
	CHECK_STREQ(text(a, km_json_fmt(a, "{\"k%d\":%T}", 2, own)), "{\"k2\":[1]}");

	/* results of one template are independent of each other and of the template */
	struct km_json *t1 = twice(a, 1), *t2 = twice(a, 2);
	km_json_set(a, t1, "extra", km_json_bool(a, false));
	km_json_array_push(a, km_json_get(t1, "list"), km_json_int(a, 9));
	CHECK_STREQ(text(a, t1), "{\"n\":1,\"list\":[2,\"k\",9],\"t\":false,\"extra\":false}");
	CHECK_STREQ(text(a, t2), "{\"n\":2,\"list\":[3,\"k\"],\"t\":true}");
	CHECK_STREQ(text(a, twice(a, 3)), "{\"n\":3,\"list\":[4,\"k\"],\"t\":true}");

	/* conversions that are not whole values */
	CHECK_STREQ(text(a, km_json_fmt(a, "{\"k%d\":\"x%dy\"}", 1, 5)), "{\"k1\":\"x5y\"}");
	CHECK_STREQ(text(a, km_json_fmt(a, "{%s:%d}", "key", 5)), "{\"key\":5}");
	CHECK_STREQ(text(a, km_json_fmt(a, "[%s,%s]", "a", "b")), "[\"a\",\"b\"]");

	/* one buffer, two formats */
	char fmt[64];
	snprintf(fmt, sizeof(fmt), "{\"a\":%%d}");
	CHECK_STREQ(text(a, km_json_fmt(a, fmt, 1)), "{\"a\":1}");
	snprintf(fmt, sizeof(fmt), "{\"b\":[%%s]}");
	CHECK_STREQ(text(a, km_json_fmt(a, fmt, "z")), "{\"b\":[\"z\"]}");
	km_arena_free(a);
	return test_summary();
}
