/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for Go duration parsing/formatting in lib/resource/validate.c. */
#include "resource/validate.h"

#include "../test.h"

static int64_t parse(const char *s, int *rc)
{
	int64_t ns = -42;
	*rc = km_duration_parse(km_str_c(s), &ns);
	return ns;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	int rc;
	CHECK(parse("1h", &rc) == 3600000000000LL && rc == 0);
	CHECK(parse("15s", &rc) == 15000000000LL && rc == 0);
	CHECK(parse("1m30s", &rc) == 90000000000LL && rc == 0);
	CHECK(parse("100ms", &rc) == 100000000LL && rc == 0);
	CHECK(parse("1.5s", &rc) == 1500000000LL && rc == 0);
	CHECK(parse("-2m", &rc) == -120000000000LL && rc == 0);
	CHECK(parse("0", &rc) == 0 && rc == 0);
	CHECK(parse("10us", &rc) == 10000 && rc == 0);
	CHECK(parse("7ns", &rc) == 7 && rc == 0);
	parse("", &rc);
	CHECK(rc != 0);
	parse("5", &rc);
	CHECK(rc != 0);
	parse("1x", &rc);
	CHECK(rc != 0);
	parse("s", &rc);
	CHECK(rc != 0);
	parse("99999999999999h", &rc);
	CHECK(rc != 0);

	CHECK_STREQ(km_duration_format(a, 3600000000000LL), "1h0m0s");
	CHECK_STREQ(km_duration_format(a, 101000000000LL), "1m41s");
	CHECK_STREQ(km_duration_format(a, 60000000000LL), "1m0s");
	CHECK_STREQ(km_duration_format(a, 100000000LL), "100ms");
	CHECK_STREQ(km_duration_format(a, 1500000000LL), "1.5s");
	CHECK_STREQ(km_duration_format(a, 0), "0s");
	CHECK_STREQ(km_duration_format(a, 1500), "1.5\xc2\xb5s");
	CHECK_STREQ(km_duration_format(a, -90000000000LL), "-1m30s");
	CHECK_STREQ(km_duration_format(a, 5), "5ns");
	km_arena_free(a);
	return test_summary();
}
