/* SPDX-License-Identifier: Apache-2.0 */
/* `kumactl inspect dataplanes|meshes|zones` tables and YAML against
 * upstream's goldens, fed from the golden JSON (what the API returns), with
 * the clock pinned to the upstream test's 2019-07-17T18:08:41Z. */
#include "../test.h"
#include "ctl/ctl.h"
#include "ctl_test_util.h"
#include "resource/resource.h"

static struct km_arena *A;
static int64_t NOW;
static int missing;

static void check(const char *stem, int kind)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "cmd/inspect/testdata/%s.golden.json", stem);
	const char *json = ctl_test_read(A, rel);
	if (!json) {
		missing++;
		return;
	}
	struct km_json *v = ctl_test_json(A, json);
	CHECK(v != NULL);
	if (!v)
		return;
	struct ctl_table t;
	if (kind == 0)
		ctl_inspect_dataplanes_table(&t, A, v, NOW);
	else if (kind == 1)
		ctl_inspect_meshes_table(&t, A, v);
	else
		ctl_inspect_zones_table(&t, A, v, NOW);
	struct km_buf out = KM_BUF_INIT;
	ctl_table_write(&t, &out);
	snprintf(rel, sizeof(rel), "cmd/inspect/testdata/%s.golden.txt", stem);
	CHECK_STREQ(km_buf_cstr(&out), ctl_test_read(A, rel));
	km_buf_reset(&out);
	snprintf(rel, sizeof(rel), "cmd/inspect/testdata/%s.golden.yaml", stem);
	const char *y = ctl_test_read(A, rel);
	if (y) {
		ctl_table_print_yaml(A, v, &out);
		CHECK_STREQ(km_buf_cstr(&out), y);
		km_buf_reset(&out);
	}
	ctl_table_print_json(v, &out);
	CHECK_STREQ(km_buf_cstr(&out), json);
	km_buf_fini(&out);
}

static void check_status_rules(void)
{
	/* a gateway is online or offline, whatever its (absent) inbounds say */
	struct km_json *v = ctl_test_json(
		A,
		"{\"items\":[{\"mesh\":\"m\",\"name\":\"gw\",\"labels\":{\"a\":\"b\"},"
		"\"dataplane\":{\"networking\":{\"gateway\":{\"tags\":{\"kuma.io/service\":\"g\"}}}},"
		"\"dataplaneInsight\":{\"subscriptions\":[{\"connectTime\":\"2019-07-17T18:08:40Z\"}]}},"
		"{\"mesh\":\"m\",\"name\":\"zp\",\"dataplane\":{\"networking\":{\"listeners\":["
		"{\"port\":10001,\"type\":\"ZoneIngress\",\"state\":\"Ready\"},"
		"{\"port\":10002,\"type\":\"ZoneEgress\"}]}},"
		"\"dataplaneInsight\":{\"subscriptions\":[{\"connectTime\":\"2019-07-17T18:08:40Z\"}]}}]}");
	struct ctl_table t;
	ctl_inspect_dataplanes_table(&t, A, v, NOW);
	CHECK(t.nrows == 3);
	CHECK_STREQ(t.rows[1][2], "a=b kuma.io/service=g");
	CHECK_STREQ(t.rows[1][3], "Online");
	CHECK_STREQ(t.rows[1][4], "1s");
	CHECK_STREQ(t.rows[1][11], "-");
	CHECK_STREQ(t.rows[2][3], "Partially degraded");
	CHECK_STREQ(t.rows[2][16], "listener[port=10002,type=ZoneEgress] is not ready");
}

/* --type policies and `inspect <policy> NAME --new-api` from server responses */
static void check_server_response(const char *stem, int kind)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "cmd/inspect/testdata/%s.server-response.json", stem);
	struct km_json *v = ctl_test_json(A, ctl_test_read(A, rel));
	if (!v) {
		missing++;
		return;
	}
	struct ctl_table t;
	if (kind == 0)
		ctl_inspect_policies_table(&t, A, v);
	else
		ctl_inspect_policy_dataplanes_table(&t, A, v);
	struct km_buf out = KM_BUF_INIT;
	ctl_table_write(&t, &out);
	snprintf(rel, sizeof(rel), "cmd/inspect/testdata/%s.golden.txt", stem);
	CHECK_STREQ(km_buf_cstr(&out), ctl_test_read(A, rel));
	km_buf_fini(&out);
}

static void check_policy_legacy(void)
{
	struct km_json *v = ctl_test_json(
		A,
		"{\"total\":2,\"items\":[{\"kind\":\"SidecarDataplane\",\"dataplane\":{\"mesh\":\"m\","
		"\"name\":\"web\"},\"attachments\":[{\"type\":\"dataplane\"}]},"
		"{\"kind\":\"SidecarDataplane\",\"dataplane\":{\"mesh\":\"m\",\"name\":\"backend\"},"
		"\"attachments\":[{\"type\":\"inbound\",\"name\":\"1.1.1.1:80\",\"service\":\"backend\"},"
		"{\"type\":\"service\",\"name\":\"redis\"}]}]}");
	struct km_buf out = KM_BUF_INIT;
	ctl_inspect_policy_legacy(v, &out);
	CHECK_STREQ(km_buf_cstr(&out), "Affected data plane proxies:\n\n  web\n  backend:\n"
				       "    inbound 1.1.1.1:80(backend)\n    service redis\n\n");
	km_buf_fini(&out);
}

int main(void)
{
	A = km_arena_new(0);
	km_time_parse(KM_STR("2019-07-17T18:08:41Z"), &NOW);
	check_status_rules();
	check("inspect-dataplanes", 0);
	check("inspect-meshes", 1);
	check("inspect-zones", 2);
	check_server_response("inspect-dataplane", 0);
	check_server_response("inspect-mtp-dp", 1);
	check_policy_legacy();
	if (missing)
		fprintf(stderr, "note: %d golden groups skipped (conformance data not found)\n",
			missing);
	km_arena_free(A);
	return test_summary();
}
