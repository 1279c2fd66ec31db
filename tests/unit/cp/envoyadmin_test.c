/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/envoyadmin.c without a network: the config dump sanitizer
 * (upstream's Sanitize: the bootstrap's ADS and HDS authorization values
 * redacted wherever they occur, in Envoy's proto field names and in JSON
 * names) and the rule deciding whether a proxy's admin is served by its
 * system_envoy_admin listener. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../test.h"
#include "cp/config/config.h"
#include "cp/envoyadmin.h"
#include "cp/store/store.h"
#include "ev/loop.h"

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
	/* a token is a whole string value: one that reads like the bytes
	 * between two strings (", ") must not redact across them (admin_fuzz
	 * found the second pass then failing), keys stay, and a value Envoy
	 * wrote with escapes is recognised by what it decodes to */
	out = sanitized("{\"configs\": [{\"@type\": \"type.googleapis.com/envoy.admin.v3.BootstrapConfigDump\", "
			"\"bootstrap\": {\"hds_config\": {\"grpc_services\": [{\"initial_metadata\": "
			"[{\"key\": \"authorization\", \"value\": \", \"}]}]}}}, "
			"{\"@type\": \"x\", \", \": \"\\u002c \", \"a\": \"b\"}]}",
			&rc);
	CHECK(rc == 0);
	CHECK(strstr(out, "\"@type\": \"x\", \", \": \"[redacted]\", \"a\": \"b\"}") != NULL);
	CHECK(strstr(out, "\"value\": \"[redacted]\"}") != NULL);
	char *again = sanitized(out, &rc);
	CHECK(rc == 0);
	CHECK_STREQ(again, out);
	free(again);
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

/* The CA lands in the store as upstream keeps it; a certificate per address,
 * the same one while asked for, and those nobody asks for go. */
static void test_certificates(void)
{
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct cp_runtime rt = {.store = cp_store_memory_new(), .cfg = &cfg, .zone = "zone-1", .loop = km_loop_new()};
	struct cp_envoy_admin *ea = cp_envoy_admin_new(&rt);
	struct cp_envoy_admin_tls a1, a2, b;
	CHECK(cp_envoy_admin_server_tls(ea, KM_STR("10.0.0.1"), &a1) == 0); /* waits for the CA */
	struct km_arena *ar = km_arena_new(4096);
	struct km_resource r;
	CHECK(cp_store_get(rt.store, ar, km_rtype_by_name(KM_STR("GlobalSecret")), KM_STR(""), KM_STR("envoy-admin-ca"),
			   &r) == 0);
	CHECK(cp_envoy_admin_server_tls(ea, KM_STR("10.0.0.1"), &a2) == 0 && a2.fp == a1.fp);
	CHECK(cp_envoy_admin_server_tls(ea, KM_STR("10.0.0.2"), &b) == 0 && b.fp != a1.fp && b.ca_fp == a1.ca_fp);
	CHECK(strstr(a1.chain_pem, "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----") != NULL); /* with the issuer */
	CHECK(cp_envoy_admin_cached(ea) == 2);
	/* sweeping with no idle time allowed: the two asked for before (5 ms
	 * ago: the rule reads the loop's millisecond clock) go, the new one stays */
	cp_envoy_admin_set_cert_sweep(ea, 0, 0, 1);
	nanosleep(&(struct timespec){0, 5000000}, NULL);
	CHECK(cp_envoy_admin_server_tls(ea, KM_STR("10.0.0.3"), &b) == 0);
	CHECK(cp_envoy_admin_cached(ea) == 1);
	cp_envoy_admin_set_cert_sweep(ea, 3600 * 1000ULL, 0, 1);
	for (int i = 0; i < 5; i++) {
		char addr[32];
		snprintf(addr, sizeof(addr), "10.0.1.%d", i);
		CHECK(cp_envoy_admin_server_tls(ea, km_str_c(addr), &b) == 0);
	}
	CHECK(cp_envoy_admin_cached(ea) >= 5); /* asked for within the hour: kept */
	km_arena_free(ar);
	cp_envoy_admin_free(ea);
	cp_store_free(rt.store);
	km_loop_free(rt.loop);
	cp_config_fini(&cfg);
}

int main(void)
{
	test_sanitize();
	test_exposed();
	test_certificates();
	return test_summary();
}
