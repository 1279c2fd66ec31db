/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/xds/shape.c: a shape is recorded by the first build that
 * asks, checked by the next one with other values, filled only once a
 * check agreed; one whose fill differed from the encoding (a value found
 * where it was not put) is never used again; every fill is checked when
 * asked to; unused shapes go after some contexts. */
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "cp/xds/shape.h"
#include "pb/json.h"
#include "pb/registry.h"

static struct km_arena *A;

static const ProtobufCMessageDescriptor *cluster(void)
{
	return km_pb_find(KM_STR("envoy.config.cluster.v3.Cluster"));
}

/* A Cluster named <name> with alt_stat_name <alt>, encoded to <out> (and
 * recorded with <name> as the hole into <shape> when given). */
static void encode(const char *name, const char *alt, struct km_buf *out,
		   struct km_pb_shape **shape)
{
	char text[256];
	snprintf(text, sizeof(text),
		 "{\"name\":\"%s\",\"altStatName\":\"%s\",\"connectTimeout\":\"5s\"}", name, alt);
	struct km_json *j = NULL;
	CHECK(km_json_parse(A, text, strlen(text), &j, NULL) == 0);
	km_buf_reset(out);
	struct km_str v = km_str_c(name);
	if (shape)
		CHECK(km_pb_shape_record(A, cluster(), j, &v, 1, out, shape) == 0);
	else
		CHECK(km_pb_write_json(A, cluster(), j, out) == 0);
}

static void test_lifecycle(void)
{
	struct cp_xds_shapes *ss = cp_xds_shapes_new();
	struct km_buf bytes = KM_BUF_INIT, scratch = KM_BUF_INIT;
	struct km_str va = KM_STR("svc-a"), vb = KM_STR("svc-b"), vc = KM_STR("svc-c");
	enum cp_xds_shape_use use;
	struct cp_xds_shape *s = cp_xds_shape_get(ss, "k1", 2, &va, 1, &use);
	CHECK(s && use == CP_XDS_SHAPE_RECORD);
	/* being recorded: others encode */
	CHECK(cp_xds_shape_get(ss, "k1", 2, &vb, 1, &use) == s && use == CP_XDS_SHAPE_NONE);
	struct km_pb_shape *shape = NULL;
	encode("svc-a", "stats-svc-a", &bytes, &shape);
	CHECK(shape != NULL);
	cp_xds_shape_recorded(s, shape, &va, 1);
	/* the values it was recorded with check nothing */
	cp_xds_shape_get(ss, "k1", 2, &va, 1, &use);
	CHECK(use == CP_XDS_SHAPE_NONE);
	cp_xds_shape_get(ss, "k1", 2, &vb, 1, &use);
	CHECK(use == CP_XDS_SHAPE_VERIFY);
	encode("svc-b", "stats-svc-b", &bytes, NULL);
	CHECK(cp_xds_shape_verify(s, &vb, 1, bytes.data, bytes.len, &scratch));
	cp_xds_shape_get(ss, "k1", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_FILL);
	km_buf_reset(&bytes);
	cp_xds_shape_fill(s, &vc, 1, &bytes);
	struct km_buf want = KM_BUF_INIT;
	encode("svc-c", "stats-svc-c", &want, NULL);
	CHECK(bytes.len == want.len && memcmp(bytes.data, want.data, want.len) == 0);
	/* every fill checked */
	cp_xds_shapes_set_verify_all(ss, true);
	cp_xds_shape_get(ss, "k1", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_VERIFY);
	cp_xds_shapes_set_verify_all(ss, false);

	/* a false hole: alt_stat_name is a constant that equals the first
	 * name; the check with another name differs and retires the shape */
	s = cp_xds_shape_get(ss, "k2", 2, &va, 1, &use);
	CHECK(use == CP_XDS_SHAPE_RECORD);
	shape = NULL;
	encode("svc-a", "svc-a", &bytes, &shape);
	cp_xds_shape_recorded(s, shape, &va, 1);
	cp_xds_shape_get(ss, "k2", 2, &vb, 1, &use);
	CHECK(use == CP_XDS_SHAPE_VERIFY);
	encode("svc-b", "svc-a", &bytes, NULL);
	CHECK(!cp_xds_shape_verify(s, &vb, 1, bytes.data, bytes.len, &scratch));
	cp_xds_shape_get(ss, "k2", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_NONE);
	/* no shape could be made: never asked again */
	s = cp_xds_shape_get(ss, "k3", 2, &va, 1, &use);
	cp_xds_shape_recorded(s, NULL, &va, 1);
	cp_xds_shape_get(ss, "k3", 2, &vb, 1, &use);
	CHECK(use == CP_XDS_SHAPE_NONE);

	/* a shape used in a context stays; unused for 16 more it goes */
	for (int i = 0; i < 16; i++)
		cp_xds_shapes_next(ss);
	cp_xds_shape_get(ss, "k1", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_FILL);
	cp_xds_shapes_next(ss);
	cp_xds_shape_get(ss, "k2", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_RECORD); /* gone, recorded anew */
	cp_xds_shapes_clear(ss);
	cp_xds_shape_get(ss, "k1", 2, &vc, 1, &use);
	CHECK(use == CP_XDS_SHAPE_RECORD);
	km_buf_fini(&bytes);
	km_buf_fini(&scratch);
	km_buf_fini(&want);
	cp_xds_shapes_free(ss);
}

int main(void)
{
	A = km_arena_new(0);
	test_lifecycle();
	km_arena_free(A);
	km_pb_json_thread_fini();
	return test_summary();
}
