/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-dp MeshMetric (dp/metrics.c): socket paths, the /meshmetric config,
 * profile filtering and label injection on the Prometheus text format, and
 * the fetcher and hijacker on a real loop against fake Envoy and application
 * servers (libmicrohttpd on their own thread) with a client thread. */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../test.h"
#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "dp/dp.h"

static const char example[] =
    "{\"observability\":{\"metrics\":{\"applications\":[{\"name\":\"x\",\"path\":\"/metrics\","
    "\"port\":8080,\"address\":\"\"}],\"backends\":[{\"type\":\"Prometheus\",\"name\":null}],"
    "\"sidecar\":{\"profiles\":{\"appendProfiles\":[{\"name\":\"Basic\"}],\"exclude\":[{\"type\":"
    "\"Regex\",\"match\":\"envoy_cluster_external_upstream_rq_.*\"}],\"include\":[{\"type\":"
    "\"Exact\",\"match\":\"envoy_cluster_default_total_match_count\"}]},\"includeUnused\":true},"
    "\"extraLabels\":{\"kuma.proxy_role\":\"sidecar\",\"kuma.workload\":\"backend\",\"mesh\":"
    "\"default\",\"zone\":\"zone-1\"}}}}";

static const char envoy_stats[] =
    "# TYPE envoy_cluster_upstream_rq_total counter\n"
    "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
    "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"kuma:envoy:admin\"} 3\n"
    "# TYPE envoy_cluster_lb_subsets_active gauge\n"
    "envoy_cluster_lb_subsets_active{envoy_cluster_name=\"backend\"} 0\n"
    "# TYPE envoy_cluster_default_total_match_count counter\n"
    "envoy_cluster_default_total_match_count{envoy_cluster_name=\"backend\"} 1\n"
    "# TYPE envoy_cluster_external_upstream_rq_time histogram\n"
    "envoy_cluster_external_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"0.5\"} 1\n"
    "envoy_cluster_external_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"+Inf\"} 2\n"
    "envoy_cluster_external_upstream_rq_time_sum{envoy_cluster_name=\"backend\"} 3.5\n"
    "envoy_cluster_external_upstream_rq_time_count{envoy_cluster_name=\"backend\"} 2\n"
    "# TYPE envoy_server_live gauge\n"
    "envoy_server_live{} 1\n"
    "# TYPE envoy_listener_downstream_cx_total counter\n"
    "envoy_listener_downstream_cx_total{envoy_listener_address=\"_kuma:dynamicconfig\"} 4\n";

#define LABELS                                                                                     \
	"kuma_proxy_role=\"sidecar\",kuma_workload=\"backend\",mesh=\"default\",zone=\"zone-1\""

static const char envoy_expected[] =
    "# TYPE envoy_cluster_upstream_rq_total counter\n"
    "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"," LABELS "} 7\n"
    "# TYPE envoy_cluster_default_total_match_count counter\n"
    "envoy_cluster_default_total_match_count{envoy_cluster_name=\"backend\"," LABELS "} 1\n"
    "# TYPE envoy_server_live gauge\n"
    "envoy_server_live{" LABELS "} 1\n";

static struct dp_metrics_config *parse_ok(const char *json)
{
	struct dp_metrics_config *c = NULL;
	struct km_buf err = KM_BUF_INIT;
	int rc = dp_metrics_config_parse(km_str_c(json), &c, &err);
	if (rc)
		fprintf(stderr, "parse: %s\n", km_buf_cstr(&err));
	CHECK(rc == 0 && c);
	km_buf_fini(&err);
	return c;
}

static int parse_err(const char *json, struct km_buf *err)
{
	struct dp_metrics_config *c = NULL;
	km_buf_reset(err);
	int rc = dp_metrics_config_parse(km_str_c(json), &c, err);
	CHECK(c == NULL);
	return rc;
}

/* Rewrites <in> under the sidecar JSON <sidecar> ("" = no sidecar) and
 * compares with <want>. */
static void check_filter(const char *sidecar, const char *in, const char *want)
{
	char json[2048];
	snprintf(json, sizeof(json), "{\"observability\":{\"metrics\":{%s%s}}}",
		 *sidecar ? "\"sidecar\":" : "", sidecar);
	struct dp_metrics_config *c = parse_ok(json);
	if (!c)
		return;
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(dp_metrics_rewrite(c, true, km_str_c(in), &out, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&out), want);
	km_buf_fini(&out);
	km_buf_fini(&err);
	dp_metrics_config_unref(c);
}

static void test_socket_names(void)
{
	struct km_arena *a = km_arena_new(0);
	CHECK_STREQ(dp_metrics_config_socket(a, "/tmp/kuma-dp-123"),
		    "/tmp/kuma-dp-123/kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_hijacker_socket(a, "/tmp/kuma-dp-123", "dp-1", "default"),
		    "/tmp/kuma-dp-123/kuma-mh-dp-1-default.sock");
	/* filepath.Join cleans the path */
	CHECK_STREQ(dp_metrics_config_socket(a, "/tmp//w/./x/../"), "/tmp/w/kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_config_socket(a, "./work"), "work/kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_config_socket(a, "../../w"), "../../w/kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_config_socket(a, "/../w"), "/w/kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_config_socket(a, ""), "kuma-mesh-metric-config.sock");
	CHECK_STREQ(dp_metrics_socket_name(a, "/", "x"), "/x.sock");
	/* cut to 98 bytes before ".sock" */
	char dir[128];
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[90] = 0;
	const char *s = dp_metrics_hijacker_socket(a, dir, "backend-01", "default");
	CHECK(strlen(s) == 103);
	CHECK(strncmp(s, dir, 90) == 0 && strncmp(s + 90, "/kuma-m", 7) == 0);
	CHECK(strcmp(s + 98, ".sock") == 0);
	km_arena_free(a);
}

static void test_config(void)
{
	struct km_buf err = KM_BUF_INIT;
	struct dp_metrics_config *c = parse_ok(example);
	if (c) {
		CHECK(c->napps == 1);
		CHECK_STREQ(c->apps[0].name, "x");
		CHECK_STREQ(c->apps[0].path, "/metrics");
		CHECK_STREQ(c->apps[0].address, "");
		CHECK(c->apps[0].port == 8080);
		CHECK(c->nprometheus == 1);
		CHECK(c->include_unused);
		CHECK(c->profiles == DP_METRICS_PROFILE_BASIC);
		CHECK(c->effective == DP_METRICS_PROFILE_BASIC);
		CHECK(c->nexclude == 1 && c->exclude[0].type == DP_METRICS_REGEX && c->exclude[0].re);
		CHECK(c->ninclude == 1 && c->include[0].type == DP_METRICS_EXACT);
		CHECK_STREQ(c->include[0].match, "envoy_cluster_default_total_match_count");
		CHECK(c->nlabels == 4);
		CHECK_STREQ(c->labels[0].key, "kuma_proxy_role");
		CHECK_STREQ(c->labels[0].value, "sidecar");
		CHECK_STREQ(c->labels[1].key, "kuma_workload");
		CHECK_STREQ(c->labels[3].key, "zone");
		CHECK_STREQ(dp_metrics_envoy_path(c), "/stats?format=prometheus&text_readouts=");
		CHECK(dp_metrics_config_ref(c) == c && c->refs == 2);
		dp_metrics_config_unref(c);
		dp_metrics_config_unref(c);
	}
	CHECK_STREQ(dp_metrics_envoy_path(NULL), "/stats?format=prometheus&text_readouts=");

	/* null lists, no sidecar, unknown fields */
	c = parse_ok("{\"observability\":{\"metrics\":{\"applications\":null,\"backends\":null,"
		     "\"extraLabels\":null,\"future\":{\"x\":[1,2]}},\"other\":1},\"x\":true}");
	if (c) {
		CHECK(c->napps == 0 && c->nprometheus == 0 && c->nlabels == 0);
		CHECK(!c->include_unused && c->profiles == 0);
		CHECK(c->effective == DP_METRICS_PROFILE_BASIC);
		CHECK_STREQ(dp_metrics_envoy_path(c),
			    "/stats?format=prometheus&text_readouts=&usedonly=");
		dp_metrics_config_unref(c);
	}
	c = parse_ok("{}");
	if (c) {
		CHECK(c->napps == 0 && c->nlabels == 0);
		dp_metrics_config_unref(c);
	}
	/* label keys made valid, values escaped, a null value is "" */
	c = parse_ok("{\"observability\":{\"metrics\":{\"extraLabels\":{\"9lives\":\"a\\\"b\\\\c\\nd\","
		     "\"_x\":null,\"__y\":\"1\",\"\":\"dropped\",\"k-8s.io/n\":\"v\"}}}}");
	if (c && c->nlabels == 4) {
		CHECK_STREQ(c->labels[0].key, "__y");
		CHECK_STREQ(c->labels[1].key, "k_8s_io_n");
		CHECK_STREQ(c->labels[2].key, "key_9lives");
		CHECK_STREQ(c->labels[2].value, "a\\\"b\\\\c\\nd");
		CHECK_STREQ(c->labels[3].key, "key_x");
		CHECK_STREQ(c->labels[3].value, "");
	} else {
		CHECK(!"four labels");
	}
	dp_metrics_config_unref(c);
	/* found by meshmetric_fuzz: bytes that are not UTF-8 become U+FFFD (as
	 * Go's JSON decoder has them), so the output parses again; a key is
	 * sanitised per character */
	c = parse_ok("{\"observability\":{\"metrics\":{\"extraLabels\":{\"z\xc3\xb6ne\":"
		     "\"a\x80\xc3\xb6\"}}}}");
	if (c && c->nlabels == 1) {
		CHECK_STREQ(c->labels[0].key, "z_ne");
		CHECK_STREQ(c->labels[0].value, "a\xef\xbf\xbd\xc3\xb6");
		struct km_buf o1 = KM_BUF_INIT, o2 = KM_BUF_INIT;
		CHECK(dp_metrics_rewrite(c, false, KM_STR("a 1\n"), &o1, &err) == 0);
		CHECK(dp_metrics_rewrite(NULL, false, (struct km_str){km_buf_cstr(&o1), o1.len}, &o2,
					 &err) == 0);
		km_buf_fini(&o1);
		km_buf_fini(&o2);
	} else {
		CHECK(!"one label");
	}
	dp_metrics_config_unref(c);
	/* profiles: the broadest decides; unknown types never match */
	c = parse_ok("{\"observability\":{\"metrics\":{\"sidecar\":{\"profiles\":{\"appendProfiles\":"
		     "[{\"name\":\"None\"},{\"name\":\"Basic\"},{\"name\":\"All\"}],\"include\":[{\"type\":"
		     "\"Glob\",\"match\":\"x\"},{\"type\":\"Regex\",\"match\":\"(\"}]}}}}}");
	if (c) {
		CHECK(c->profiles == (DP_METRICS_PROFILE_ALL | DP_METRICS_PROFILE_BASIC |
				      DP_METRICS_PROFILE_NONE));
		CHECK(c->effective == DP_METRICS_PROFILE_ALL);
		CHECK(c->ninclude == 2 && c->include[0].type == DP_METRICS_NEVER &&
		      c->include[1].type == DP_METRICS_NEVER);
		dp_metrics_config_unref(c);
	}
	c = parse_ok("{\"observability\":{\"metrics\":{\"sidecar\":{\"profiles\":{\"appendProfiles\":"
		     "[{\"name\":\"None\"}]}}}}}");
	if (c) {
		CHECK(c->effective == DP_METRICS_PROFILE_NONE);
		dp_metrics_config_unref(c);
	}

	/* rejected */
	CHECK(parse_err("{\"observability\":", &err) == -KM_E_PARSE);
	CHECK(strncmp(km_buf_cstr(&err), "mesh metric configuration decoding error: ", 42) == 0);
	CHECK(parse_err("", &err) == -KM_E_PARSE);
	CHECK(parse_err("[]", &err) == -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"applications\":{}}}}", &err) ==
	      -KM_E_PARSE);
	CHECK(strstr(km_buf_cstr(&err), "observability.metrics.applications") != NULL);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"applications\":[{\"port\":\"80\"}]}}}",
			&err) == -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"applications\":[{\"port\":-1}]}}}",
			&err) == -KM_E_PARSE);
	CHECK(strstr(km_buf_cstr(&err), "applications[0].port") != NULL);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"applications\":[{\"port\":4294967296}]}}}",
			&err) == -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"applications\":[{\"port\":1.5}]}}}",
			&err) == -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"extraLabels\":{\"a\":1}}}}", &err) ==
	      -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"sidecar\":{\"includeUnused\":\"yes\"}}}}",
			&err) == -KM_E_PARSE);
	CHECK(parse_err("{\"observability\":{\"metrics\":{\"sidecar\":{\"profiles\":{\"exclude\":"
			"[{\"type\":1}]}}}}}",
			&err) == -KM_E_PARSE);
	km_buf_fini(&err);
}

static void test_profiles(void)
{
	/* the example: Basic, an excluding regex, an exact include; Basic drops
	 * the admin cluster's sample and the internal listener's family */
	struct dp_metrics_config *c = parse_ok(example);
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(dp_metrics_rewrite(c, true, km_str_c(envoy_stats), &out, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&out), envoy_expected);
	/* applications' metrics get the labels, not the profiles */
	km_buf_reset(&out);
	CHECK(dp_metrics_rewrite(c, false, KM_STR("# HELP app_up Up.\n# TYPE app_up gauge\napp_up 1\n"),
				 &out, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&out), "# HELP app_up Up.\n# TYPE app_up gauge\napp_up{" LABELS "} 1\n");
	dp_metrics_config_unref(c);
	km_buf_fini(&out);
	km_buf_fini(&err);

	const char *in = "# TYPE envoy_cluster_upstream_rq_total counter\n"
			 "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
			 "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"system_x\"} 1\n"
			 "# TYPE envoy_cluster_lb_subsets_active gauge\n"
			 "envoy_cluster_lb_subsets_active{envoy_cluster_name=\"backend\"} 0\n"
			 "# TYPE envoy_http_downstream_rq_xx counter\n"
			 "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"_kuma:x\"} 2\n"
			 "# TYPE envoy_server_uptime gauge\n"
			 "envoy_server_uptime 5\n";
	/* no sidecar at all: Basic */
	check_filter("", in,
		     "# TYPE envoy_cluster_upstream_rq_total counter\n"
		     "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
		     "# TYPE envoy_server_uptime gauge\n"
		     "envoy_server_uptime 5\n");
	/* All keeps every family and sample */
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"All\"}]}}", in,
		     "# TYPE envoy_cluster_upstream_rq_total counter\n"
		     "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
		     "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"system_x\"} 1\n"
		     "# TYPE envoy_cluster_lb_subsets_active gauge\n"
		     "envoy_cluster_lb_subsets_active{envoy_cluster_name=\"backend\"} 0\n"
		     "# TYPE envoy_http_downstream_rq_xx counter\n"
		     "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"_kuma:x\"} 2\n"
		     "# TYPE envoy_server_uptime gauge\n"
		     "envoy_server_uptime 5\n");
	/* None keeps nothing; include brings families back, each selector type */
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}]}}", in, "");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Prefix\",\"match\":\"envoy_server_\"}]}}",
		     in, "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Contains\",\"match\":\"subsets\"}]}}",
		     in,
		     "# TYPE envoy_cluster_lb_subsets_active gauge\n"
		     "envoy_cluster_lb_subsets_active{envoy_cluster_name=\"backend\"} 0\n");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Exact\",\"match\":\"envoy_server_uptime\"},{\"type\":\"Exact\",\"match\":"
		     "\"envoy_server\"}]}}",
		     in, "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n");
	/* a regex matches anywhere in the name, as Go's MatchString */
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Regex\",\"match\":\"rq_(?:xx|yy)$\"}]}}",
		     in,
		     "# TYPE envoy_http_downstream_rq_xx counter\n"
		     "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"_kuma:x\"} 2\n");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Regex\",\"match\":\"^ENVOY_SERVER_\\\\w+\\\\d*$\"}]}}",
		     in, "");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
		     "\"Regex\",\"match\":\"(?i)^ENVOY_[a-z\\\\d]+_UPTIME\"}]}}",
		     in, "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n");
	/* what RE2 refuses matches nothing (and never reaches glibc's regcomp):
	 * nested repetitions, backreferences, counts over 1000; RE2 syntax
	 * glibc lacks is translated: named groups, lazy operators, literal
	 * braces; flags inside the pattern ("(?i:up)") are not, and match
	 * nothing where Go would match */
	static const struct {
		const char *re;
		bool matches;
	} res[] = {
	    {"server_up++", false},   {"(up)\\\\1", false},     {"e{1001}", false},
	    {"(e{30}){40}", false},   {"*up", false},            {"up{3,2}", false},
	    {"s(?P<x>erv)er", true},  {"s(?<x>erv)er", true},    {"ser*?ver", true},
	    {"e{1,3}r_u", true},      {"uptime{", false},        {"time\\\\{?$", true},
	    {"[\\\\]x\\\\-]?ptime", true}, {"_[^\\\\d]ptime", true}, {"r_(?i:up)", false},
	};
	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
		char sc[256];
		snprintf(sc, sizeof(sc),
			 "{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{"
			 "\"type\":\"Regex\",\"match\":\"%s\"}]}}",
			 res[i].re);
		check_filter(sc, "envoy_server_uptime 5\n", res[i].matches ? "envoy_server_uptime 5\n" : "");
	}
	/* exclude removes what the profile selected, each selector type */
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"All\"}],\"exclude\":[{\"type\":"
		     "\"Prefix\",\"match\":\"envoy_cluster\"},{\"type\":\"Regex\",\"match\":\"_rq_\"},"
		     "{\"type\":\"Contains\",\"match\":\"nothing\"}]}}",
		     in, "# TYPE envoy_server_uptime gauge\nenvoy_server_uptime 5\n");
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"All\"}],\"exclude\":[{\"type\":"
		     "\"Exact\",\"match\":\"envoy_server_uptime\"},{\"type\":\"Contains\",\"match\":"
		     "\"cluster\"}]}}",
		     in,
		     "# TYPE envoy_http_downstream_rq_xx counter\n"
		     "envoy_http_downstream_rq_xx{envoy_http_conn_manager_prefix=\"_kuma:x\"} 2\n");
	/* include wins over exclude; under Basic an included family still loses
	 * its internal samples */
	check_filter("{\"profiles\":{\"exclude\":[{\"type\":\"Prefix\",\"match\":\"envoy_\"}],"
		     "\"include\":[{\"type\":\"Contains\",\"match\":\"upstream\"},{\"type\":"
		     "\"Contains\",\"match\":\"downstream_rq\"}]}}",
		     in,
		     "# TYPE envoy_cluster_upstream_rq_total counter\n"
		     "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n");
	/* Basic and None together: Basic */
	check_filter("{\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"},{\"name\":\"Basic\"}]}}",
		     in,
		     "# TYPE envoy_cluster_upstream_rq_total counter\n"
		     "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"backend\"} 7\n"
		     "# TYPE envoy_server_uptime gauge\n"
		     "envoy_server_uptime 5\n");
	/* Basic's sample filter reads label values, not names: a user label
	 * whose value looks internal stays */
	check_filter("",
		     "# TYPE envoy_cluster_upstream_cx_total counter\n"
		     "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"web\",app=\"_x\"} 1\n"
		     "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"ads_cluster\"} 2\n"
		     "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"kuma:metrics:hijacker\"} 3\n"
		     "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"access_log_sink\"} 4\n",
		     "# TYPE envoy_cluster_upstream_cx_total counter\n"
		     "envoy_cluster_upstream_cx_total{envoy_cluster_name=\"web\",app=\"_x\"} 1\n");
}

static void check_rewrite(const char *labels_json, const char *in, const char *want)
{
	char json[1024];
	snprintf(json, sizeof(json), "{\"observability\":{\"metrics\":{\"extraLabels\":%s}}}",
		 labels_json);
	struct dp_metrics_config *c = parse_ok(json);
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	int rc = dp_metrics_rewrite(c, false, km_str_c(in), &out, &err);
	if (rc)
		fprintf(stderr, "rewrite: %s\n", km_buf_cstr(&err));
	CHECK(rc == 0);
	CHECK_STREQ(km_buf_cstr(&out), want);
	km_buf_fini(&out);
	km_buf_fini(&err);
	dp_metrics_config_unref(c);
}

static int rewrite_err(const char *in, struct km_buf *err)
{
	struct km_buf out = KM_BUF_INIT;
	km_buf_reset(err);
	int rc = dp_metrics_rewrite(NULL, false, km_str_c(in), &out, err);
	CHECK(out.len == 0);
	km_buf_fini(&out);
	return rc;
}

static void test_labels(void)
{
	/* with and without labels, HELP/TYPE kept with the family, an
	 * existing label of the same name replaced, timestamps kept, ordinary
	 * comments and empty lines dropped, blanks normalised */
	check_rewrite("{\"mesh\":\"default\",\"kuma.io/zone\":\"z\\\"1\"}",
		      "# A comment\n"
		      "\n"
		      "# HELP http_requests_total The total.\\n Escaped \\\\ too.\n"
		      "# TYPE http_requests_total counter\n"
		      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
		      "  http_requests_total { method = \"get\" , mesh=\"old\", } 3\n"
		      "up 1\n"
		      "up_nolabels{} +Inf\n",
		      "# HELP http_requests_total The total.\\n Escaped \\\\ too.\n"
		      "# TYPE http_requests_total counter\n"
		      "http_requests_total{method=\"post\",code=\"200\",kuma_io_zone=\"z\\\"1\","
		      "mesh=\"default\"} 1027 1395066363000\n"
		      "http_requests_total{method=\"get\",kuma_io_zone=\"z\\\"1\",mesh=\"default\"} 3\n"
		      "up{kuma_io_zone=\"z\\\"1\",mesh=\"default\"} 1\n"
		      "up_nolabels{kuma_io_zone=\"z\\\"1\",mesh=\"default\"} +Inf\n");
	/* no labels to add: samples as they were (normalised) */
	check_rewrite("null", "a 1\nb{x=\"y\\\\\"} NaN -5\n", "a 1\nb{x=\"y\\\\\"} NaN -5\n");
	/* histogram and summary samples stay in their family; a family split
	 * in the input comes out whole, in order of first appearance */
	check_rewrite("{\"l\":\"v\"}",
		      "# TYPE h histogram\n"
		      "h_bucket{le=\"1\"} 1\n"
		      "other 2\n"
		      "h_bucket{le=\"+Inf\"} 2\n"
		      "h_sum 3\n"
		      "h_count 2\n"
		      "# TYPE s summary\n"
		      "s{quantile=\"0.5\"} 1\n"
		      "s_sum 4\n"
		      "s_count 5\n"
		      "other 3\n"
		      "# HELP nosamples Nothing.\n",
		      "# TYPE h histogram\n"
		      "h_bucket{le=\"1\",l=\"v\"} 1\n"
		      "h_bucket{le=\"+Inf\",l=\"v\"} 2\n"
		      "h_sum{l=\"v\"} 3\n"
		      "h_count{l=\"v\"} 2\n"
		      "other{l=\"v\"} 2\n"
		      "other{l=\"v\"} 3\n"
		      "# TYPE s summary\n"
		      "s{quantile=\"0.5\",l=\"v\"} 1\n"
		      "s_sum{l=\"v\"} 4\n"
		      "s_count{l=\"v\"} 5\n");
	/* the rewrite is stable: its output rewrites to itself */
	struct dp_metrics_config *c = parse_ok(example);
	struct km_buf o1 = KM_BUF_INIT, o2 = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(dp_metrics_rewrite(c, false, km_str_c(envoy_stats), &o1, &err) == 0);
	CHECK(dp_metrics_rewrite(c, false, (struct km_str){km_buf_cstr(&o1), o1.len}, &o2, &err) ==
	      0);
	CHECK_STREQ(km_buf_cstr(&o2), km_buf_cstr(&o1));
	dp_metrics_config_unref(c);
	km_buf_fini(&o1);
	km_buf_fini(&o2);

	/* what Go's text parser refuses drops the whole body */
	CHECK(rewrite_err("a 1\nb{x=\"1} 2\n", &err) == -KM_E_PARSE);
	CHECK(strstr(km_buf_cstr(&err), "line 2") != NULL);
	CHECK(rewrite_err("a one\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a 1 2 3\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a 1 1.5\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("9a 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a{x=\"1\",x=\"2\"} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a{x=\"\\t\"} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a{x=\"\xff\"} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a{x=1} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a{x=\"1\" y=\"2\"} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("# TYPE a counter\n# TYPE a gauge\na 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a 1\n# TYPE a counter\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("# HELP a x\n# HELP a y\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("# TYPE a sometimes\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("# TYPE h histogram\nh_bucket 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("# TYPE s summary\ns{quantile=\"x\"} 1\n", &err) == -KM_E_PARSE);
	CHECK(rewrite_err("a 1\r\n", &err) == -KM_E_PARSE);
	struct km_buf out = KM_BUF_INIT;
	CHECK(dp_metrics_rewrite(NULL, false, KM_STR(""), &out, &err) == 0 && out.len == 0);
	CHECK(dp_metrics_rewrite(NULL, false, KM_STR("# only a comment"), &out, &err) == 0 &&
	      out.len == 0);
	km_buf_fini(&out);
	km_buf_fini(&err);
}

/* ---- the fetcher and hijacker on a loop ---- */

struct fake {
	pthread_mutex_t mu;
	char config[2048]; /* "" = 404 */
	int config_gets, config_200, config_304;
	bool usedonly_seen, usedonly;
	int stats_gets;
};

static struct fake fk = {.mu = PTHREAD_MUTEX_INITIALIZER};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body,
			      const char *etag)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	MHD_add_response_header(r, "Content-Type", "text/plain; charset=UTF-8");
	if (etag)
		MHD_add_response_header(r, "Etag", etag);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result on_fake(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	const char *role = cls;
	if (!*con_cls) {
		*con_cls = (void *)role;
		return MHD_YES;
	}
	pthread_mutex_lock(&fk.mu);
	enum MHD_Result rc;
	if (strcmp(role, "config") == 0 && strcmp(url, "/meshmetric") == 0) {
		fk.config_gets++;
		if (!fk.config[0]) {
			rc = answer(c, 404, "", NULL);
		} else {
			char etag[32];
			snprintf(etag, sizeof(etag), "%016llx",
				 (unsigned long long)km_fnv(KM_FNV_INIT, fk.config, strlen(fk.config)));
			const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
			if (inm && strcmp(inm, etag) == 0) {
				fk.config_304++;
				rc = answer(c, 304, "", etag);
			} else {
				fk.config_200++;
				rc = answer(c, 200, fk.config, etag);
			}
		}
	} else if (strcmp(role, "admin") == 0 && strcmp(url, "/stats") == 0) {
		fk.stats_gets++;
		const char *f = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
		fk.usedonly = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "usedonly") != NULL;
		fk.usedonly_seen = true;
		rc = answer(c, f && strcmp(f, "prometheus") == 0 ? 200 : 400, envoy_stats, NULL);
	} else if (strcmp(role, "app") == 0 && strcmp(url, "/metrics") == 0) {
		rc = answer(c, 200, "# TYPE app_up gauge\napp_up 1\n", NULL);
	} else if (strcmp(role, "app") == 0 && strcmp(url, "/slow") == 0) {
		pthread_mutex_unlock(&fk.mu);
		usleep(1000000);
		return answer(c, 200, "slow 1\n", NULL);
	} else if (strcmp(role, "app") == 0 && strcmp(url, "/broken") == 0) {
		rc = answer(c, 200, "app_up{ 1\n", NULL);
	} else {
		rc = answer(c, 404, "404 page not found\n", NULL);
	}
	pthread_mutex_unlock(&fk.mu);
	return rc;
}

static int unix_listener(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0)
		return -1;
	return fd;
}

static struct MHD_Daemon *fake_start(const char *role, int fd, int *port)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;
	if (fd >= 0)
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_fake, (void *)role,
				     MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_END);
	else
		d = MHD_start_daemon(flags, 0, NULL, NULL, on_fake, (void *)role, MHD_OPTION_END);
	if (d && port) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
		*port = di ? di->port : 0;
	}
	return d;
}

struct client {
	const char *hijacker, *dir;
	int app_port;
	int wake_fd;
};

struct reply {
	long status;
	char ctype[128];
	struct km_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	km_buf_append(&r->body, p, size * n);
	return size * n;
}

static size_t on_hdr(char *p, size_t size, size_t n, void *ud)
{
	struct reply *r = ud;
	if (size * n > 13 && strncasecmp(p, "content-type:", 13) == 0) {
		const char *v = p + 13;
		while (*v == ' ')
			v++;
		size_t len = strcspn(v, "\r\n");
		snprintf(r->ctype, sizeof(r->ctype), "%.*s", (int)len, v);
	}
	return size * n;
}

static int get(const char *sock, const char *path, struct reply *r)
{
	km_buf_reset(&r->body);
	r->status = 0;
	r->ctype[0] = 0;
	char url[256];
	snprintf(url, sizeof(url), "http://localhost%s", path);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_hdr);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	CURLcode cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(h);
	return cc == CURLE_OK ? 0 : -EIO;
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Waits up to 5 s for the file at <path> to (dis)appear. */
static bool wait_file(const char *path, bool present)
{
	for (int i = 0; i < 500; i++) {
		if (exists(path) == present)
			return true;
		usleep(10000);
	}
	return false;
}

static void set_fake_config(const char *body)
{
	pthread_mutex_lock(&fk.mu);
	snprintf(fk.config, sizeof(fk.config), "%s", body);
	pthread_mutex_unlock(&fk.mu);
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct reply r = {0};
	char cfg[2048];
	/* a config with one application and the example's sidecar */
	snprintf(cfg, sizeof(cfg),
		 "{\"observability\":{\"metrics\":{\"applications\":[{\"name\":\"app\",\"path\":"
		 "\"/metrics\",\"port\":%d,\"address\":\"\"},{\"name\":\"gone\",\"path\":\"/x\",\"port\":"
		 "1,\"address\":\"127.0.0.1\"},{\"name\":\"broken\",\"path\":\"broken\",\"port\":%d}],"
		 "\"backends\":[{\"type\":\"Prometheus\",\"name\":null}],\"sidecar\":{\"profiles\":{"
		 "\"appendProfiles\":[{\"name\":\"Basic\"}],\"exclude\":[{\"type\":\"Regex\",\"match\":"
		 "\"envoy_cluster_external_upstream_rq_.*\"}],\"include\":[{\"type\":\"Exact\",\"match\":"
		 "\"envoy_cluster_default_total_match_count\"}]}},\"extraLabels\":{\"kuma.proxy_role\":"
		 "\"sidecar\",\"kuma.workload\":\"backend\",\"mesh\":\"default\",\"zone\":\"zone-1\"}}}}",
		 cl->app_port, cl->app_port);
	/* no config: no hijacker */
	usleep(200000);
	CHECK(!exists(cl->hijacker));
	set_fake_config(cfg);
	CHECK(wait_file(cl->hijacker, true));
	CHECK(get(cl->hijacker, "/meshmetric", &r) == 0);
	CHECK(r.status == 200);
	CHECK_STREQ(r.ctype, "text/plain; version=0.0.4; charset=utf-8; escaping=underscores");
	struct km_buf want = KM_BUF_INIT;
	km_buf_printf(&want, "# TYPE app_up gauge\napp_up{" LABELS "} 1\n%s", envoy_expected);
	CHECK_STREQ(km_buf_cstr(&r.body), km_buf_cstr(&want));
	km_buf_fini(&want);
	pthread_mutex_lock(&fk.mu);
	CHECK(fk.usedonly_seen && fk.usedonly); /* includeUnused is not set */
	pthread_mutex_unlock(&fk.mu);
	CHECK(get(cl->hijacker, "/other", &r) == 0 && r.status == 404);
	/* two scrapes at once */
	struct reply r2 = {0};
	CHECK(get(cl->hijacker, "/meshmetric/x", &r2) == 0 && r2.status == 200 &&
	      strstr(km_buf_cstr(&r2.body), "app_up{") != NULL);
	km_buf_fini(&r2.body);

	/* unchanged config: 304s, no second 200 */
	usleep(300000);
	pthread_mutex_lock(&fk.mu);
	CHECK(fk.config_200 == 1);
	CHECK(fk.config_304 >= 2);
	pthread_mutex_unlock(&fk.mu);

	/* a body that does not parse keeps the previous config */
	set_fake_config("{\"observability\":");
	usleep(300000);
	CHECK(get(cl->hijacker, "/meshmetric", &r) == 0 && r.status == 200 &&
	      strstr(km_buf_cstr(&r.body), "zone=\"zone-1\"") != NULL);

	/* a new config applies: includeUnused drops usedonly, labels change */
	set_fake_config("{\"observability\":{\"metrics\":{\"sidecar\":{\"includeUnused\":true,"
			"\"profiles\":{\"appendProfiles\":[{\"name\":\"None\"}],\"include\":[{\"type\":"
			"\"Prefix\",\"match\":\"envoy_server\"}]}},\"extraLabels\":{\"zone\":\"z2\"}}}}");
	bool changed = false;
	for (int i = 0; i < 100 && !changed; i++) {
		usleep(50000);
		if (get(cl->hijacker, "/meshmetric", &r) == 0 && r.status == 200)
			changed = strcmp(km_buf_cstr(&r.body), "# TYPE envoy_server_live gauge\n"
							       "envoy_server_live{zone=\"z2\"} 1\n") == 0;
	}
	CHECK(changed);
	pthread_mutex_lock(&fk.mu);
	CHECK(!fk.usedonly);
	pthread_mutex_unlock(&fk.mu);

	/* the MeshMetric goes away: the hijacker stops, its socket with it */
	set_fake_config("");
	CHECK(wait_file(cl->hijacker, false));
	km_buf_fini(&r.body);
	if (write(cl->wake_fd, "x", 1) != 1)
		CHECK(!"wake the loop");
	return NULL;
}

static void on_wake(struct km_loop *loop, int fd, unsigned events, void *ctx)
{
	char b[8];
	if (read(fd, b, sizeof(b)) < 0)
		return;
	km_loop_stop(loop);
}

static void on_deadline(struct km_loop *loop, void *ctx)
{
	CHECK(!"the loop test ran out of time");
	km_loop_stop(loop);
}

static void stop_loop(struct km_loop *loop, void *ctx)
{
	km_loop_stop(loop);
}

/* Runs <loop> for <ms>. */
static void run_for(struct km_loop *loop, uint64_t ms)
{
	struct km_timer t = {0};
	km_loop_timer_start(loop, &t, ms, stop_loop, NULL);
	km_loop_run(loop);
	km_loop_timer_stop(loop, &t);
}

struct slow_client {
	const char *hijacker;
	long status;
};

static void *slow_main(void *arg)
{
	struct slow_client *sc = arg;
	struct reply r = {0};
	if (get(sc->hijacker, "/meshmetric", &r) == 0)
		sc->status = r.status;
	km_buf_fini(&r.body);
	return NULL;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

static void test_loop(void)
{
	char dir[] = "/tmp/kuma-dp-metrics-XXXXXX";
	if (!mkdtemp(dir)) {
		CHECK(!"mkdtemp");
		return;
	}
	struct km_arena *a = km_arena_new(0);
	const char *cfg_sock = dp_metrics_config_socket(a, dir);
	const char *admin_sock = km_arena_printf(a, "%s/admin.sock", dir);
	int app_port = 0;
	struct MHD_Daemon *dc = fake_start("config", unix_listener(cfg_sock), NULL);
	struct MHD_Daemon *da = fake_start("admin", unix_listener(admin_sock), NULL);
	struct MHD_Daemon *dapp = fake_start("app", -1, &app_port);
	CHECK(dc && da && dapp && app_port > 0);

	struct km_loop *loop = km_loop_new();
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	km_loop_watch(loop, pfd[0], KM_EV_READ, on_wake, NULL);
	struct km_timer deadline = {0};
	km_loop_timer_start(loop, &deadline, 30000, on_deadline, NULL);
	struct dp_metrics_opts o = {
	    .work_dir = dir,
	    .name = "dp-1",
	    .mesh = "default",
	    .admin_socket = admin_sock,
	    .admin_address = "",
	    .default_address = "127.0.0.1",
	    .refresh_ns = 50 * 1000000LL,
	};
	struct dp_metrics *m = dp_metrics_start(loop, &o);
	CHECK(m != NULL);
	struct client cl = {dp_metrics_hijacker_socket(a, dir, "dp-1", "default"), dir, app_port,
			    pfd[1]};
	pthread_t th;
	pthread_create(&th, NULL, client_main, &cl);
	km_loop_run(loop);
	pthread_join(th, NULL);
	CHECK(dp_metrics_current(m) == NULL);
	dp_metrics_stop(m);
	CHECK(!exists(cl.hijacker));

	/* stopping with a config in force and a scrape suspended on a slow
	 * application: no leak, the socket goes */
	char slow[256];
	snprintf(slow, sizeof(slow),
		 "{\"observability\":{\"metrics\":{\"applications\":[{\"path\":\"/slow\","
		 "\"port\":%d}]}}}",
		 app_port);
	set_fake_config(slow);
	m = dp_metrics_start(loop, &o);
	for (int i = 0; i < 200 && !dp_metrics_current(m); i++)
		run_for(loop, 10);
	CHECK(dp_metrics_current(m) != NULL);
	CHECK(exists(cl.hijacker));
	pthread_t th2;
	struct slow_client sc = {cl.hijacker, 0};
	pthread_create(&th2, NULL, slow_main, &sc);
	run_for(loop, 300);
	dp_metrics_stop(m);
	pthread_join(th2, NULL);
	CHECK(sc.status != 200);
	CHECK(!exists(cl.hijacker));

	km_loop_timer_stop(loop, &deadline);
	km_loop_unwatch(loop, pfd[0]);
	close(pfd[0]);
	close(pfd[1]);
	km_loop_free(loop);
	MHD_stop_daemon(dc);
	MHD_stop_daemon(da);
	MHD_stop_daemon(dapp);
	nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	km_arena_free(a);
}

int main(void)
{
	km_log_set_level("error");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	test_socket_names();
	test_config();
	test_profiles();
	test_labels();
	test_loop();
	curl_global_cleanup();
	return test_summary();
}
