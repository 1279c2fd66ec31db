/* SPDX-License-Identifier: Apache-2.0 */
/* Bootstrap client: the request body against upstream's golden layout, the
 * retry classification of answers, response decoding (base64 bootstrap,
 * admin address forms, sidecar networking) and base64 itself. */
#include <errno.h>

#include "../test.h"
#include "dp/dp.h"

/* upstream app/kuma-dp/pkg/dataplane/envoy/testdata/bootstrap-request-token-path.golden.json
 * with this build's kuma-dp version fields and our own inputs */
static const char golden[] =
    "{\n"
    " \"mesh\": \"demo\",\n"
    " \"name\": \"sample\",\n"
    " \"proxyType\": \"dataplane\",\n"
    " \"dataplaneToken\": \"token1234\",\n"
    " \"dataplaneTokenPath\": \"testdata/token\",\n"
    " \"dataplaneResource\": \"{\\\"type\\\":\\\"Dataplane\\\",\\\"mesh\\\":\\\"demo\\\",\\\"name\\\":\\\"sample\\\"}\",\n"
    " \"version\": {\n"
    "  \"kumaDp\": {\n"
    "   \"version\": \"3.0.0\",\n"
    "   \"gitTag\": \"unknown\",\n"
    "   \"gitCommit\": \"unknown\",\n"
    "   \"buildDate\": \"unknown\"\n"
    "  },\n"
    "  \"envoy\": {\n"
    "   \"version\": \"1.15.0\",\n"
    "   \"build\": \"50ef0945fa2c5da4bff7627c3abf41fdd3b7cffd/1.15.0/clean-getenvoy-2aa564b-envoy/RELEASE/BoringSSL\",\n"
    "   \"kumaDpCompatible\": false\n"
    "  }\n"
    " },\n"
    " \"caCert\": \"\",\n"
    " \"dynamicMetadata\": {\n"
    "  \"HOST_IP\": \"10.0.0.9\"\n"
    " },\n"
    " \"dnsPort\": 15053,\n"
    " \"readinessPort\": 9902,\n"
    " \"operatingSystem\": \"linux\",\n"
    " \"features\": [\n"
    "  \"feature-tcp-accesslog-via-named-pipe\"\n"
    " ],\n"
    " \"resources\": {\n"
    "  \"maxHeapSizeBytes\": 1024\n"
    " },\n"
    " \"workdir\": \"/tmp\",\n"
    " \"metricsResources\": {\n"
    "  \"certPath\": \"/tmp/cert.pem\",\n"
    "  \"keyPath\": \"/tmp/key.pem\"\n"
    " },\n"
    " \"systemCaPath\": \"\",\n"
    " \"ipv6Enabled\": true,\n"
    " \"spireResources\": {\n"
    "  \"socketPath\": \"\"\n"
    " }\n"
    "}";

static const char *b64(const char *s)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	static char out[4096];
	size_t n = strlen(s), o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;
		if (i + 1 < n)
			v |= (unsigned char)s[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)s[i + 2];
		out[o++] = tbl[(v >> 18) & 63];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tbl[v & 63] : '=';
	}
	out[o] = 0;
	return out;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);
	struct dp_config c;
	dp_flags_defaults(&c, a);
	c.mesh = "demo";
	c.name = "sample";
	c.token_path = "testdata/token";
	c.work_dir = "/tmp";
	c.metrics_cert_path = "/tmp/cert.pem";
	c.metrics_key_path = "/tmp/key.pem";
	c.max_memory_bytes = 1024;
	const char *features[] = {"feature-tcp-accesslog-via-named-pipe"};
	struct dp_bootstrap_in in = {"{\"type\":\"Dataplane\",\"mesh\":\"demo\",\"name\":\"sample\"}",
				     features, 1, "10.0.0.9", "linux"};
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	struct dp_envoy_version ev;
	CHECK(dp_envoy_version_parse(a, km_str_c("\nenvoy  version: 50ef0945fa2c5da4bff7627c3abf41fdd3b7cffd/1.15.0/clean-getenvoy-2aa564b-envoy/RELEASE/BoringSSL\n\n"),
				     &ev, &err) == 0);
	CHECK(dp_bootstrap_request(&out, a, &c, &in, &ev, "token1234") == 0);
	CHECK_STREQ(km_buf_cstr(&out), golden);
	/* an app probe proxy port sets the (misnamed) appProbeProxyDisabled key */
	c.app_probe_port = 9001;
	km_buf_reset(&out);
	dp_bootstrap_request(&out, a, &c, &in, &ev, "");
	CHECK(strstr(km_buf_cstr(&out), "\"appProbeProxyDisabled\": true,\n \"operatingSystem\""));
	CHECK(!strstr(km_buf_cstr(&out), "\"dataplaneToken\":"));

	/* classification */
	km_buf_reset(&err);
	CHECK(dp_bootstrap_classify(200, km_str_c("{}"), &err) == DP_BOOTSTRAP_OK);
	CHECK(dp_bootstrap_classify(404, km_str_c(""), &err) == DP_BOOTSTRAP_RETRY);
	CHECK(strncmp(km_buf_cstr(&err), "Dataplane entity not found. If you are running on Universal", 59) == 0);
	km_buf_reset(&err);
	CHECK(dp_bootstrap_classify(404, km_str_c("404: Page Not Found"), &err) == DP_BOOTSTRAP_RETRY);
	CHECK(strncmp(km_buf_cstr(&err), "There is no /bootstrap endpoint", 31) == 0);
	km_buf_reset(&err);
	CHECK(dp_bootstrap_classify(422, km_str_c("token expired"), &err) == DP_BOOTSTRAP_FATAL);
	CHECK_STREQ(km_buf_cstr(&err), "Invalid request: token expired");
	km_buf_reset(&err);
	CHECK(dp_bootstrap_classify(400, km_str_c("bad ca"), &err) == DP_BOOTSTRAP_FATAL);
	km_buf_reset(&err);
	CHECK(dp_bootstrap_classify(503, km_str_c("x"), &err) == DP_BOOTSTRAP_RETRY);
	CHECK_STREQ(km_buf_cstr(&err), "unexpected status code: 503");

	/* decoding */
	const char *y1 = "admin:\n  address:\n    pipe:\n      path: /w/kuma-envoy-admin.sock\n";
	struct km_buf body = KM_BUF_INIT;
	km_buf_printf(&body, "{\"bootstrap\":\"%s\",\"kumaSidecarConfiguration\":{\"networking\":"
			     "{\"address\":\"fd00::1\"},\"metrics\":{\"aggregate\":[]}}}",
		      b64(y1));
	struct dp_bootstrap_out bo;
	CHECK(dp_bootstrap_decode(a, (struct km_str){body.data, body.len}, &bo, &err) == 0);
	CHECK(bo.yaml.len == strlen(y1) && memcmp(bo.yaml.ptr, y1, bo.yaml.len) == 0);
	CHECK_STREQ(bo.admin_socket, "/w/kuma-envoy-admin.sock");
	CHECK_STREQ(bo.networking_address, "fd00::1");
	const char *y2 = "admin:\n  address:\n    socket_address:\n      address: 127.0.0.1\n      "
			 "port_value: 9901\n";
	km_buf_reset(&body);
	km_buf_printf(&body, "{\"bootstrap\":\"%s\"}", b64(y2));
	CHECK(dp_bootstrap_decode(a, (struct km_str){body.data, body.len}, &bo, &err) == 0);
	CHECK_STREQ(bo.admin_socket, "");
	CHECK_STREQ(bo.admin_address, "127.0.0.1");
	CHECK(bo.admin_port == 9901);
	km_buf_reset(&err);
	CHECK(dp_bootstrap_decode(a, km_str_c("{\"bootstrap\":\"%%%\"}"), &bo, &err) == -EINVAL);
	CHECK(dp_bootstrap_decode(a, km_str_c("[1]"), &bo, &err) == -EINVAL);
	CHECK(dp_bootstrap_decode(a, km_str_c("{"), &bo, &err) == -EINVAL);

	/* base64 */
	struct km_buf d = KM_BUF_INIT;
	CHECK(dp_util_base64_decode(km_str_c("aGVsbG8="), &d) == 0);
	CHECK_STREQ(km_buf_cstr(&d), "hello");
	km_buf_reset(&d);
	CHECK(dp_util_base64_decode(km_str_c("aGVsbG8"), &d) == 0);
	CHECK_STREQ(km_buf_cstr(&d), "hello");
	km_buf_reset(&d);
	CHECK(dp_util_base64_decode(km_str_c("a"), &d) == -EINVAL);
	CHECK(dp_util_base64_decode(km_str_c("aa=a"), &d) == -EINVAL);

	/* transport: a scheme that is not http(s) is fatal before any I/O */
	c.cp_url = "ftp://x";
	km_buf_reset(&err);
	CHECK(dp_bootstrap_fetch_once(a, &c, "{}", &bo, &err) == DP_BOOTSTRAP_FATAL);
	CHECK_STREQ(km_buf_cstr(&err), "unsupported URL scheme \"ftp\", must be http or https");
	c.cp_url = "http://127.0.0.1:1";
	km_buf_reset(&err);
	CHECK(dp_bootstrap_fetch_once(a, &c, "{}", &bo, &err) == DP_BOOTSTRAP_RETRY);
	CHECK(strncmp(km_buf_cstr(&err),
		      "request to bootstrap server failed: Post \"http://127.0.0.1:1/bootstrap\"",
		      71) == 0);

	km_buf_fini(&d);
	km_buf_fini(&body);
	km_buf_fini(&out);
	km_buf_fini(&err);
	km_arena_free(a);
	return test_summary();
}
