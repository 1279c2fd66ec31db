/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/envoyadmin.c without a network: the config dump sanitizer
 * (upstream's Sanitize: the bootstrap's ADS and HDS authorization values
 * redacted wherever they occur, in Envoy's proto field names and in JSON
 * names) and the rule deciding whether a proxy's admin is served by its
 * system_envoy_admin listener. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "cp/envoyadmin.h"

#define TOKEN "eyJhbGciOiJSUzI1NiJ9.eyJOYW1lIjoiZHAtMSJ9.c2ln"

static char *sanitized(const char *in, int *rc)
{
	struct km_buf out = KM_BUF_INIT;
	*rc = cp_envoy_admin_sanitize(km_str_c(in), &out);
	if (!out.data)
		km_buf_puts(&out, "");
	return km_buf_steal(&out);
}

static void test_sanitize(void)
{
	int rc;
	/* Envoy's config dump: proto field names; the token also appears
	 * elsewhere (upstream replaces every occurrence) */
	const char *dump =
	    "{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\",\"bootstrap\":{"
	    "\"dynamic_resources\":{\"ads_config\":{\"grpc_services\":[{\"initial_metadata\":[{\"key\":\"x-other\","
	    "\"value\":\"keep\"},{\"key\":\"authorization\",\"value\":\"" TOKEN "\"}]}]}},"
	    "\"hds_config\":{\"grpc_services\":[{\"initial_metadata\":[{\"key\":\"authorization\",\"value\":\"hds-tok\"}]}]}}},"
	    "{\"@type\":\"type.googleapis.com/envoy.admin.v3.ListenersConfigDump\",\"copy\":\"" TOKEN "\","
	    "\"partial\":\"x" TOKEN "\"}]}";
	char *out = sanitized(dump, &rc);
	CHECK(rc == 0);
	CHECK(strstr(out, "\"value\":\"[redacted]\"}]}]}}") != NULL);
	CHECK(strstr(out, "\"copy\":\"[redacted]\"") != NULL);
	CHECK(strstr(out, "\"value\":\"keep\"") != NULL);
	CHECK(strstr(out, "hds-tok") == NULL);
	/* only whole string values: a longer string keeps its text */
	CHECK(strstr(out, "\"partial\":\"x" TOKEN "\"") != NULL);
	free(out);
	/* protojson names */
	out = sanitized("{\"configs\":[{\"@type\":\"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\","
			"\"bootstrap\":{\"dynamicResources\":{\"adsConfig\":{\"grpcServices\":[{\"initialMetadata\":"
			"[{\"key\":\"authorization\",\"value\":\"" TOKEN "\"}]}]}}}}]}",
			&rc);
	CHECK(rc == 0 && strstr(out, TOKEN) == NULL && strstr(out, "[redacted]") != NULL);
	free(out);
	/* nothing to redact: the text as it was */
	const char *plain = "{\"configs\": [ {\"@type\": \"x\", \"a\": \"b\"} ]}";
	out = sanitized(plain, &rc);
	CHECK(rc == 0);
	CHECK_STREQ(out, plain);
	free(out);
	/* not a config dump */
	out = sanitized("not json", &rc);
	CHECK(rc == -EINVAL);
	free(out);
	out = sanitized("[1,2]", &rc);
	CHECK(rc == -EINVAL);
	free(out);
}

static void test_exposed(void)
{
	/* admin on a Unix socket: the listener serves it */
	CHECK(cp_envoy_admin_exposed(KM_STR("127.0.0.1"), KM_STR("127.0.0.1"), KM_STR("/tmp/a.sock")));
	/* admin on TCP: a listener on another address only */
	CHECK(cp_envoy_admin_exposed(KM_STR("10.0.0.1"), KM_STR("127.0.0.1"), KM_STR("")));
	CHECK(cp_envoy_admin_exposed(KM_STR("10.0.0.1"), KM_STR(""), KM_STR("")));
	CHECK(!cp_envoy_admin_exposed(KM_STR("127.0.0.1"), KM_STR(""), KM_STR("")));
	CHECK(!cp_envoy_admin_exposed(KM_STR("127.0.0.1"), KM_STR("127.0.0.1"), KM_STR("")));
	/* a wildcard admin already listens on every address */
	CHECK(!cp_envoy_admin_exposed(KM_STR("10.0.0.1"), KM_STR("0.0.0.0"), KM_STR("")));
	CHECK(!cp_envoy_admin_exposed(KM_STR("fd00::1"), KM_STR("::"), KM_STR("")));
}

int main(void)
{
	test_sanitize();
	test_exposed();
	return test_summary();
}
