/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for lib/resource/resource.c: times, KRI, meta decoding errors. */
#include "resource/resource.h"

#include "base/err.h"
#include "../test.h"

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	int64_t ns = 1;
	CHECK(km_time_parse(KM_STR("2018-07-17T16:05:36.995Z"), &ns) == 0);
	CHECK_STREQ(km_time_format(a, ns), "2018-07-17T16:05:36.995Z");
	CHECK(km_time_parse(KM_STR("0001-01-01T00:00:00Z"), &ns) == 0 && ns == 0);
	CHECK_STREQ(km_time_format(a, 0), "0001-01-01T00:00:00Z");
	/* fuzz regression: out of the int64-nanosecond range is an error, not UB */
	CHECK(km_time_parse(KM_STR("0000-01-01T00:00:00Z"), &ns) == -ERANGE);
	CHECK(km_time_parse(KM_STR("9999-12-31T23:59:59Z"), &ns) == -ERANGE);
	CHECK(km_time_parse(KM_STR("2020-01-01T00:00:00+02:00"), &ns) == 0);
	CHECK_STREQ(km_time_format(a, ns), "2019-12-31T22:00:00Z");

	struct km_json *doc;
	struct km_buf err = KM_BUF_INIT;
	const char *j = "{\"type\":\"Dataplane\",\"mesh\":\"default\",\"name\":4}";
	CHECK(km_json_parse(a, j, strlen(j), &doc, NULL) == 0);
	struct km_resource_doc d;
	CHECK(km_resource_doc_from_json(a, doc, NULL, &d, &err) == -KM_E_PARSE);
	CHECK_STREQ(km_buf_cstr(&err),
		    "json: cannot unmarshal number into Go struct field ResourceMeta.name of type string");
	km_buf_fini(&err);

	struct km_resource r = {0};
	r.type = km_rtype_by_name(KM_STR("MeshService"));
	r.mesh = KM_STR("default");
	r.name = KM_STR("redis");
	r.labels = KM_STR("{\"kuma.io/zone\":\"z1\",\"kuma.io/display-name\":\"redis\"}");
	CHECK_STREQ(km_resource_kri(a, &r), "kri_msvc_default_z1__redis_");
	km_arena_free(a);
	return test_summary();
}
