/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/xds/bootstrap.c: BootstrapRequest decoding, rendering pieces,
 * the error paths of POST /bootstrap, and upstream's generator and server
 * goldens (pkg/xds/bootstrap/testdata, compared as YAML documents) when the
 * conformance data is present (KUMA_CONFORMANCE_DIR or ../shared/...). */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "base/err.h"
#include "codec/yaml.h"
#include "cp/runtime.h"
#include "cp/xds/bootstrap.h"
#include "resource/resource.h"
#include "resource/validate.h"

static const char version_json[] =
	"\"version\":{\"kumaDp\":{\"version\":\"0.0.1\",\"gitTag\":\"v0.0.1\","
	"\"gitCommit\":\"91ce236824a9d875601679aa80c63783fb0e8725\",\"buildDate\":\"2019-08-07T11:26:06Z\"},"
	"\"envoy\":{\"version\":\"1.15.0\",\"build\":\"hash/1.15.0/RELEASE\"}}";

static char golden_dir[1024];
static char *upstream_cert; /* test/certs/server-cert.pem, taken from a golden */

/* ---- fixtures ---- */

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(&b, chunk, n);
	fclose(f);
	if (len)
		*len = b.len;
	if (!b.data)
		km_buf_puts(&b, "");
	return km_buf_steal(&b);
}

static struct km_json *load_golden(struct km_arena *a, const char *name)
{
	char path[1200];
	snprintf(path, sizeof(path), "%s/%s", golden_dir, name);
	size_t len;
	char *text = read_all(path, &len);
	if (!text)
		return NULL;
	struct km_json **docs;
	size_t n;
	struct km_json *doc = NULL;
	if (km_yaml_parse(a, text, len, &docs, &n, NULL) == 0 && n == 1)
		doc = docs[0];
	free(text);
	return doc;
}

/* The CA upstream's goldens inline: decode it from one of them. */
static void find_upstream_cert(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *g = load_golden(a, "bootstrap.universal.golden.yaml");
	if (g) {
		struct km_json *sr = km_json_get(g, "staticResources");
		struct km_json *sec = km_json_get(sr, "secrets")->items[0];
		struct km_str b = km_json_get_string(
			km_json_get(km_json_get(sec, "validationContext"), "trustedCa"),
			"inlineBytes");
		unsigned char *pem = calloc(1, b.len + 4);
		int n = EVP_DecodeBlock(pem, (const unsigned char *)b.ptr, (int)b.len);
		while (n > 0 && pem[n - 1] == 0)
			n--;
		pem[n > 0 ? n : 0] = 0;
		upstream_cert = (char *)pem;
	}
	km_arena_free(a);
}

/* A self-signed certificate with <san>; <ca> sets basicConstraints. */
static char *make_cert(const char *san, const char *ca)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_NAME *nm = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"test", -1, -1,
				   0);
	X509_set_issuer_name(x, nm);
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	const char *exts[][2] = {{"basicConstraints", ca}, {"subjectAltName", san}};
	for (size_t i = 0; i < 2; i++) {
		if (!exts[i][1])
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, key, EVP_sha256());
	BIO *bio = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(bio, x);
	char *data;
	long len = BIO_get_mem_data(bio, &data);
	char *pem = strndup(data, (size_t)len);
	BIO_free(bio);
	X509_free(x);
	EVP_PKEY_free(key);
	return pem;
}

struct env {
	struct cp_config cfg;
	struct cp_runtime rt;
};

static void env_init(struct env *e)
{
	memset(e, 0, sizeof(*e));
	cp_config_init_defaults(&e->cfg);
	e->rt.store = cp_store_memory_new();
	e->rt.cfg = &e->cfg;
	/* the upstream test setup: xdsHost localhost:5678, no default admin port */
	e->cfg.bootstrap_server.params.xds_host = "localhost";
	e->cfg.bootstrap_server.params.xds_port = 5678;
	e->cfg.bootstrap_server.params.admin_port = 0;
	e->cfg.bootstrap_server.params.envoy_admin_unix_socket = false;
	e->cfg.dp_server.authn.dp_proxy.type = "dpToken";
}

static void env_fini(struct env *e)
{
	cp_store_free(e->rt.store);
	cp_config_fini(&e->cfg);
}

static void seed(struct env *e, const char *yaml)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json **docs;
	size_t n;
	int rc = km_yaml_parse(a, yaml, strlen(yaml), &docs, &n, NULL);
	CHECK(rc == 0);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct km_resource_doc d;
		CHECK(km_resource_doc_from_json(a, docs[i], NULL, &d, NULL) == 0);
		struct km_violations ignored;
		km_violations_init(&ignored, a);
		km_validate_resource_ex(a, &d, &ignored, KM_VALIDATE_VALIDATOR_ONLY);
		struct km_resource r;
		km_resource_from_doc(a, &d, &r);
		CHECK(cp_store_create(e->rt.store, &r) == 0);
	}
	km_arena_free(a);
}

static const char *default_dp(const char *mesh, const char *name, int admin_port)
{
	static char buf[1024];
	snprintf(buf, sizeof(buf),
		 "type: Dataplane\nmesh: %s\nname: %s\nlabels: {kuma.io/workload: backend}\n"
		 "networking:\n  address: 8.8.8.8\n  inbound: [{port: 443, servicePort: 8443}]\n"
		 "  admin: %s\n",
		 mesh, name,
		 admin_port ? (admin_port == 1234 ? "{port: 1234}" : "{port: 9902}") : "{}");
	return buf;
}

/* Generates from <body> and returns the status; *<yaml_tree> is the YAML
 * output re-parsed (so the writer is exercised too). */
static int generate(struct env *e, struct km_arena *a, const char *body, const char *host,
		    const char *ca, struct km_json **yaml_tree, const char **err_body)
{
	struct cp_bootstrap_request req;
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_bootstrap_request_parse(a, km_str_c(body), &req, &err);
	km_buf_fini(&err);
	if (rc)
		return 400;
	req.host = host ? host : "";
	struct cp_bootstrap_result res;
	cp_bootstrap_generate(&e->rt, a, ca, &req, &res);
	if (err_body)
		*err_body = res.body;
	if (res.status == 200 && yaml_tree) {
		struct km_buf y = KM_BUF_INIT;
		cp_bootstrap_yaml(&y, res.config);
		struct km_json **docs;
		size_t n;
		*yaml_tree = NULL;
		if (km_yaml_parse(a, y.data, y.len, &docs, &n, NULL) == 0 && n == 1)
			*yaml_tree = docs[0];
		else
			fprintf(stderr, "unparsable YAML:\n%s\n", km_buf_cstr(&y));
		km_buf_fini(&y);
	}
	return res.status;
}

static bool same_as_golden(struct km_arena *a, struct km_json *got, const char *golden)
{
	struct km_json *want = load_golden(a, golden);
	if (!want || !got)
		return false;
	km_json_sort_keys(want);
	km_json_sort_keys(got);
	if (km_json_equal(got, want))
		return true;
	struct km_buf g = KM_BUF_INIT, w = KM_BUF_INIT;
	km_yaml_write(&g, got);
	km_yaml_write(&w, want);
	fprintf(stderr, "%s differs\n--- want\n%s\n--- got\n%s\n", golden, km_buf_cstr(&w),
		km_buf_cstr(&g));
	km_buf_fini(&g);
	km_buf_fini(&w);
	return false;
}

/* ---- request decoding ---- */

static void test_parse(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_bootstrap_request r;
	struct km_buf err = KM_BUF_INIT;

	CHECK(cp_bootstrap_request_parse(
		      a,
		      KM_STR("{\"MESH\":\"m\",\"name\":\"n\",\"name\":\"n2\","
			     "\"appProbeProxyDisabled\":true,\"features\":[\"a\",\"b\",\"a\"],"
			     "\"dynamicMetadata\":{\"k\":\"v\"},\"dnsPort\":15053,"
			     "\"unknown\":{\"x\":1},\"version\":{\"kumaDp\":{\"version\":\"1\"}}}"),
		      &r, &err) == 0);
	CHECK_STREQ(r.mesh, "m");
	CHECK_STREQ(r.name, "n2");
	CHECK_STREQ(r.proxy_type, "");
	CHECK(r.app_probe_proxy_enabled);
	CHECK(r.features->len == 2);
	CHECK(r.dns_port == 15053);
	CHECK(r.dynamic_metadata && r.dynamic_metadata->len == 1);
	struct km_buf out = KM_BUF_INIT;
	km_json_write(&out, r.version, 0, 0);
	CHECK_STREQ(km_buf_cstr(&out), "{\"kumaDp\":{\"version\":\"1\"},\"envoy\":{}}");
	km_buf_reset(&out);

	CHECK(cp_bootstrap_request_parse(a, KM_STR("null"), &r, &err) == 0);
	CHECK_STREQ(r.mesh, "");
	CHECK(r.features && r.features->len == 0);

	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("{\"mesh\":1}"), &r, &err) == -KM_E_PARSE);
	CHECK_STREQ(
		km_buf_cstr(&err),
		"json: cannot unmarshal number into Go struct field BootstrapRequest.mesh of type string");
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("{\"dnsPort\":-1}"), &r, &err) == -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("{\"dnsPort\":1.5}"), &r, &err) == -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("{\"features\":\"x\"}"), &r, &err) ==
	      -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("{\"mesh\":"), &r, &err) == -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR(""), &r, &err) == -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(a, KM_STR("[]"), &r, &err) == -KM_E_PARSE);
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(
		      a, KM_STR("{\"version\":{\"envoy\":{\"kumaDpCompatible\":\"yes\"}}}"), &r,
		      &err) == -KM_E_PARSE);

	/* dataplaneConfig: canonical shape and Enabled() */
	km_buf_reset(&err);
	CHECK(cp_bootstrap_request_parse(
		      a,
		      KM_STR("{\"dataplaneConfig\":{\"ipFamilyMode\":\"dualstack\","
			     "\"redirect\":{\"inbound\":{\"enabled\":true,\"port\":15006}}}}"),
		      &r, &err) == 0);
	CHECK(r.transparent_proxy_enabled);
	km_json_write(&out, r.transparent_proxy, 0, 0);
	CHECK_STREQ(
		km_buf_cstr(&out),
		"{\"ipFamilyMode\":\"dualstack\",\"redirect\":{\"inbound\":{\"enabled\":true,\"port\":15006},"
		"\"outbound\":{\"enabled\":false,\"port\":0},\"dns\":{\"enabled\":false,\"port\":0},"
		"\"vnet\":{}}}");
	km_buf_reset(&out);
	CHECK(cp_bootstrap_request_parse(
		      a,
		      KM_STR("{\"dataplaneConfig\":{\"ipFamilyMode\":\"ipv4\","
			     "\"redirect\":{\"outbound\":{\"enabled\":true,\"port\":15001}}}}"),
		      &r, &err) == 0);
	CHECK(!r.transparent_proxy_enabled);
	CHECK(cp_bootstrap_request_parse(
		      a, KM_STR("{\"dataplaneConfig\":{\"ipFamilyMode\":\"ipv9\"}}"), &r, &err) ==
	      -KM_E_PARSE);

	km_buf_fini(&out);
	km_buf_fini(&err);
	km_arena_free(a);
}

static void test_host_only(void)
{
	struct km_arena *a = km_arena_new(0);
	CHECK_STREQ(cp_bootstrap_host_only(a, "localhost:5678"), "localhost");
	CHECK_STREQ(cp_bootstrap_host_only(a, "localhost"), "localhost");
	CHECK_STREQ(cp_bootstrap_host_only(a, "[::1]:5678"), "::1");
	CHECK_STREQ(cp_bootstrap_host_only(a, "::1"), "::1");
	CHECK_STREQ(cp_bootstrap_host_only(a, "[::1]"), "[::1]");
	CHECK_STREQ(cp_bootstrap_host_only(a, "10.0.0.1:"), "10.0.0.1");
	CHECK_STREQ(cp_bootstrap_host_only(a, NULL), "");
	km_arena_free(a);
}

/* ---- rendering pieces ---- */

static void test_render(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_bootstrap_request r;
	struct km_buf err = KM_BUF_INIT;
	CHECK(cp_bootstrap_request_parse(
		      a,
		      KM_STR("{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"t\","
			     "\"dataplaneTokenPath\":\"/tok\",\"workdir\":\"/tmp/w/\"}"),
		      &r, &err) == 0);
	struct cp_bootstrap_params p = {
		.req = &r,
		.id = "default.dp-1",
		.service = "backend",
		.admin_address = "127.0.0.1",
		.admin_port = 9901,
		.admin_socket_path = "/tmp/w/kuma-envoy-admin.sock",
		.admin_access_log_path = "/dev/null",
		.xds_host = "10.1.2.3",
		.xds_port = 5678,
		.xds_connect_timeout = 1500000000,
		.xds_grpc_max_receive_message_bytes = 4194304,
		.hds_enabled = false,
		.reloadable_tokens = false,
		.ca_pem = KM_STR("PEM"),
	};
	struct km_json *b = cp_bootstrap_config_build(a, &p);
	CHECK(b != NULL);
	struct km_json *md = km_json_get(km_json_get(b, "node"), "metadata");
	CHECK_STREQ(km_json_get_string(md, "dataplane.admin.port").ptr, "9901");
	CHECK_STREQ(km_json_get_string(md, "dataplane.admin.socketPath").ptr,
		    "/tmp/w/kuma-envoy-admin.sock");
	struct km_json *pipe = km_json_get(km_json_get(km_json_get(b, "admin"), "address"), "pipe");
	CHECK(pipe && km_json_get(pipe, "mode")->i == 384);
	CHECK(km_json_get(b, "hdsConfig") == NULL);
	struct km_json *clusters = km_json_get(km_json_get(b, "staticResources"), "clusters");
	CHECK(clusters->len == 2);
	CHECK_STREQ(km_json_get_string(clusters->items[1], "type").ptr, "STATIC");
	CHECK_STREQ(km_json_get_string(clusters->items[1], "connectTimeout").ptr, "1.500s");
	struct km_json *addr = km_json_get(
		km_json_get(km_json_get(km_json_get(km_json_get(km_json_get(clusters->items[0],
									    "loadAssignment"),
								"endpoints")
							    ->items[0],
						    "lbEndpoints")
						->items[0],
					"endpoint"),
			    "address"),
		"pipe");
	CHECK_STREQ(km_json_get_string(addr, "path").ptr, "/tmp/w/kuma-al-dp-1-default.sock");
	/* token inline (reloadable tokens off) */
	struct km_json *svc =
		km_json_get(km_json_get(km_json_get(b, "dynamicResources"), "adsConfig"),
			    "grpcServices")
			->items[0];
	CHECK(km_json_get(svc, "initialMetadata") != NULL);

	/* reloadable tokens with a token file: GoogleGrpc, no system_ads cluster */
	p.reloadable_tokens = true;
	p.xds_host = "fd00::1";
	b = cp_bootstrap_config_build(a, &p);
	clusters = km_json_get(km_json_get(b, "staticResources"), "clusters");
	CHECK(clusters->len == 1);
	svc = km_json_get(km_json_get(km_json_get(b, "dynamicResources"), "adsConfig"),
			  "grpcServices")
		      ->items[0];
	CHECK(km_json_get(svc, "initialMetadata") == NULL);
	CHECK_STREQ(km_json_get_string(km_json_get(svc, "googleGrpc"), "targetUri").ptr,
		    "[fd00::1]:5678");

	/* a long workdir: socket paths are cut to 98 bytes + ".sock" */
	char wd[200];
	memset(wd, 'w', sizeof(wd) - 1);
	wd[0] = '/';
	wd[sizeof(wd) - 1] = 0;
	r.workdir = wd;
	p.reloadable_tokens = false;
	b = cp_bootstrap_config_build(a, &p);
	clusters = km_json_get(km_json_get(b, "staticResources"), "clusters");
	addr = km_json_get(
		km_json_get(km_json_get(km_json_get(km_json_get(km_json_get(clusters->items[0],
									    "loadAssignment"),
								"endpoints")
							    ->items[0],
						    "lbEndpoints")
						->items[0],
					"endpoint"),
			    "address"),
		"pipe");
	CHECK(km_json_get_string(addr, "path").len == 98 + 5);

	/* no name after the mesh */
	p.id = "default.";
	CHECK(cp_bootstrap_config_build(a, &p) == NULL);
	km_buf_fini(&err);
	km_arena_free(a);
}

/* ---- generator goldens (upstream generator_test.go) ---- */

struct gen_case {
	const char *golden;
	const char *auth; /* dpServer.authn.dpProxy.type */
	int dp_admin;     /* 0, 1234 or 9902 */
	bool hds, reloadable, custom, custom_min;
	const char *xds_host;
	const char *extra; /* request members after mesh/name/version/workdir */
};

static void test_generator(void)
{
	static const struct gen_case cases[] = {
		{"generator.default-config-minimal-request.golden.yaml", "none", 0, true, false,
		 false, false, "localhost", ""},
		{"generator.default-config.golden.yaml", "dpToken", 1234, true, false, false, false,
		 "localhost", ",\"dataplaneToken\":\"token\",\"dnsPort\":53001"},
		{"generator.custom-config-minimal-request.golden.yaml", "none", 9902, true, false,
		 false, true, "localhost", ""},
		{"generator.custom-config.golden.yaml", "dpToken", 0, true, false, true, false,
		 "localhost",
		 ",\"dataplaneToken\":\"token\",\"dynamicMetadata\":{\"test\":\"value\"},\"dataplaneResource\":"
		 "\"\\n{\\n  \\\"type\\\": \\\"Dataplane\\\",\\n  \\\"mesh\\\": \\\"mesh\\\",\\n  \\\"name\\\": "
		 "\\\"name.namespace\\\",\\n  \\\"creationTime\\\": \\\"1970-01-01T00:00:00Z\\\",\\n  "
		 "\\\"modificationTime\\\": \\\"1970-01-01T00:00:00Z\\\",\\n  \\\"labels\\\": {\\n    "
		 "\\\"kuma.io/workload\\\": \\\"backend\\\"\\n  },\\n  \\\"networking\\\": {\\n    \\\"address\\\": "
		 "\\\"127.0.0.1\\\",\\n    \\\"inbound\\\": [\\n      {\\n        \\\"port\\\": 22022,\\n        "
		 "\\\"servicePort\\\": 8443,\\n        \\\"protocol\\\": \\\"http2\\\"\\n      },\\n    ],\\n    "
		 "\\\"admin\\\": {\\n      \\\"port\\\": 1234\\n    }\\n  }\\n}\""},
		{"generator.default-config.kubernetes.golden.yaml", "dpToken", 1234, false, false,
		 false, false, "localhost", ",\"dataplaneToken\":\"token\""},
		{"generator.default-config.kubernetes.ipv6.golden.yaml", "dpToken", 1234, false,
		 false, false, false, "fd00:a123::1", ",\"dataplaneToken\":\"token\""},
		{"generator.system-cert-config.kubernetes.golden.yaml", "dpToken", 1234, false,
		 false, false, false, "localhost",
		 ",\"dataplaneToken\":\"token\",\"systemCaPath\":\"/etc/certs/cert.pem\""},
		{"generator.default-config-token-path.golden.yaml", "dpToken", 1234, true, true,
		 false, false, "localhost",
		 ",\"dataplaneToken\":\"token\",\"dnsPort\":53001,\"dataplaneTokenPath\":\"/path/to/file\","
		 "\"metricsResources\":{\"certPath\":\"/path/cert/pem\",\"keyPath\":\"/path/key/pem\"}"},
		{"generator.probes.kubernetes.golden.yaml", "dpToken", 1234, false, false, false,
		 false, "localhost",
		 ",\"dataplaneToken\":\"token\",\"readinessPort\":15000,\"appProbeProxyDisabled\":true"},
	};
	if (!upstream_cert) {
		printf("skipping generator goldens: no conformance data in %s\n", golden_dir);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct gen_case *c = &cases[i];
		struct env e;
		env_init(&e);
		struct km_arena *a = km_arena_new(0);
		e.cfg.dp_server.authn.dp_proxy.type = (char *)c->auth;
		e.cfg.dp_server.hds.enabled = c->hds;
		e.cfg.dp_server.authn.enable_reloadable_tokens = c->reloadable;
		e.cfg.bootstrap_server.params.xds_host = (char *)c->xds_host;
		if (c->custom || c->custom_min) {
			e.cfg.bootstrap_server.params.admin_address = "192.168.0.1";
			e.cfg.bootstrap_server.params.admin_access_log_path =
				c->custom ? "/dev/null" : "/var/log";
			e.cfg.bootstrap_server.params.xds_port = 15678;
			e.cfg.bootstrap_server.params.xds_connect_timeout = 2000000000;
			if (c->custom_min)
				e.cfg.bootstrap_server.params.xds_grpc_max_receive_message_bytes =
					16777216;
		}
		seed(&e, "type: Mesh\nname: mesh\n");
		seed(&e, default_dp("mesh", "name.namespace", c->dp_admin));
		char body[4096];
		snprintf(
			body, sizeof(body),
			"{\"mesh\":\"mesh\",\"name\":\"name.namespace\",\"workdir\":\"/tmp\",%s%s}",
			version_json, c->extra);
		struct km_json *got = NULL;
		const char *eb = NULL;
		int st = generate(&e, a, body, "", upstream_cert, &got, &eb);
		if (st != 200)
			fprintf(stderr, "%s: status %d %s\n", c->golden, st, eb ? eb : "");
		CHECK(st == 200);
		CHECK(same_as_golden(a, got, c->golden));
		km_arena_free(a);
		env_fini(&e);
	}
}

/* ---- server goldens and errors (upstream server_test.go) ---- */

static void run_handle(struct env *e, struct km_arena *a, const char *ca, const char *body,
		       const char *host, const char *accept, struct cp_http_req *req)
{
	static struct cp_http_param headers[3];
	size_t n = 0;
	headers[n++] = (struct cp_http_param){KM_STR(":authority"), km_str_c(host)};
	headers[n++] = (struct cp_http_param){KM_STR("content-type"), KM_STR("application/json")};
	if (accept)
		headers[n++] = (struct cp_http_param){KM_STR("accept"), km_str_c(accept)};
	memset(req, 0, sizeof(*req));
	req->a = a;
	req->method = "POST";
	req->path = KM_STR("/bootstrap");
	req->body = km_str_c(body);
	req->headers = headers;
	req->nheaders = n;
	cp_bootstrap_handle(&e->rt, ca, req);
}

static void test_server(void)
{
	char body[2048];
	if (upstream_cert) {
		static const char *const names[][2] = {
			{"dp-1", "bootstrap.universal.golden.yaml"},
			{"dp-1.default", "bootstrap.k8s.golden.yaml"},
		};
		for (size_t i = 0; i < 2; i++) {
			struct env e;
			env_init(&e);
			struct km_arena *a = km_arena_new(0);
			seed(&e, "type: Mesh\nname: default\n");
			seed(&e, default_dp("default", names[i][0], 0));
			snprintf(
				body, sizeof(body),
				"{ \"mesh\": \"default\", \"name\": \"%s\", \"dataplaneToken\": \"token\", "
				"\"workdir\": \"/tmp\", %s }",
				names[i][0], version_json);
			struct cp_http_req req;
			run_handle(&e, a, upstream_cert, body, "localhost:5678", NULL, &req);
			CHECK(req.status == 200);
			CHECK_STREQ(req.content_type, "text/x-yaml");
			struct km_json **docs;
			size_t n = 0;
			CHECK(km_yaml_parse(a, req.out.data, req.out.len, &docs, &n, NULL) == 0 &&
			      n == 1);
			CHECK(n == 1 && same_as_golden(a, docs[0], names[i][1]));
			km_buf_fini(&req.out);

			/* the JSON form kuma-dp asks for */
			run_handle(&e, a, upstream_cert, body, "localhost", "application/json",
				   &req);
			CHECK(req.status == 200);
			CHECK_STREQ(req.content_type, "application/json");
			struct km_json *j = NULL;
			CHECK(km_json_parse(a, req.out.data, req.out.len, &j, NULL) == 0);
			struct km_json *ksc = km_json_get(j, "kumaSidecarConfiguration");
			CHECK_STREQ(
				km_json_get_string(km_json_get(ksc, "networking"), "address").ptr,
				"8.8.8.8");
			CHECK(km_json_get(km_json_get(ksc, "metrics"), "aggregate")->kind ==
			      KM_JSON_NULL);
			struct km_str b64 = km_json_get_string(j, "bootstrap");
			unsigned char *raw = km_arena_alloc(a, b64.len + 4);
			int rn = EVP_DecodeBlock(raw, (const unsigned char *)b64.ptr, (int)b64.len);
			while (rn > 0 && raw[rn - 1] == 0)
				rn--;
			CHECK(km_yaml_parse(a, (const char *)raw, (size_t)rn, &docs, &n, NULL) ==
				      0 &&
			      n == 1);
			CHECK(n == 1 && same_as_golden(a, docs[0], names[i][1]));
			km_buf_fini(&req.out);
			km_arena_free(a);
			env_fini(&e);
		}
		/* "full data provided": admin port 1234 from the Dataplane */
		struct env e;
		env_init(&e);
		struct km_arena *a = km_arena_new(0);
		seed(&e, "type: Mesh\nname: default\n");
		seed(&e, default_dp("default", "dp-1.default", 1234));
		snprintf(
			body, sizeof(body),
			"{\"mesh\":\"default\",\"name\":\"dp-1.default\",\"dataplaneToken\":\"token\",\"workdir\":\"/tmp\",%s}",
			version_json);
		struct cp_http_req req;
		run_handle(&e, a, upstream_cert, body, "localhost", NULL, &req);
		CHECK(req.status == 200);
		struct km_json **docs;
		size_t n;
		CHECK(km_yaml_parse(a, req.out.data, req.out.len, &docs, &n, NULL) == 0);
		/* bootstrap.overridden.golden.yaml (not in the conformance copy) is the
		 * k8s golden plus the TCP admin and its two metadata keys */
		struct km_json *want = load_golden(a, "bootstrap.k8s.golden.yaml");
		struct km_json *ad = NULL;
		const char *admin_yaml =
			"accessLog:\n- name: envoy.access_loggers.file\n  typedConfig:\n"
			"    '@type': type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog\n"
			"    path: /dev/null\naddress:\n  socketAddress:\n    address: 127.0.0.1\n    portValue: 1234\n";
		struct km_json **ads;
		size_t nads;
		CHECK(km_yaml_parse(a, admin_yaml, strlen(admin_yaml), &ads, &nads, NULL) == 0);
		ad = ads[0];
		km_json_set(a, want, "admin", ad);
		struct km_json *wmd = km_json_get(km_json_get(want, "node"), "metadata");
		km_json_set(a, wmd, "dataplane.admin.address", km_json_cstring(a, "127.0.0.1"));
		km_json_set(a, wmd, "dataplane.admin.port", km_json_cstring(a, "1234"));
		km_json_sort_keys(want);
		km_json_sort_keys(docs[0]);
		CHECK(km_json_equal(docs[0], want));
		km_buf_fini(&req.out);
		km_arena_free(a);
		env_fini(&e);
	}

	/* errors */
	char *cert = make_cert("DNS:localhost,IP:127.0.0.1", "critical,CA:TRUE");
	char *leaf = make_cert("DNS:localhost", "CA:FALSE");
	struct env e;
	env_init(&e);
	struct km_arena *a = km_arena_new(0);
	struct cp_http_req req;
	seed(&e, "type: Mesh\nname: default\n");

	run_handle(
		&e, a, cert,
		"{ \"mesh\": \"default\", \"name\": \"dp-1.default\", \"dataplaneToken\": \"token\" }",
		"localhost", NULL, &req);
	CHECK(req.status == 404);
	CHECK(req.out.len == 0);
	km_buf_fini(&req.out);

	seed(&e, "type: Dataplane\nmesh: default\nname: dp-1\nnetworking:\n  address: 8.8.8.8\n"
		 "  inbound: [{port: 443, servicePort: 8443}]\n");
	run_handle(&e, a, cert, "{ \"mesh\": \"default\", \"name\": \"dp-1\" }", "localhost", NULL,
		   &req);
	CHECK(req.status == 422);
	CHECK_STREQ(
		km_buf_cstr(&req.out),
		"Dataplane Token is required. Generate token using 'kumactl generate dataplane-token > "
		"/path/file' and provide it via --dataplane-token-file=/path/file argument to Kuma DP");
	km_buf_fini(&req.out);

	run_handle(&e, a, cert, "{\"mesh\":", "localhost", NULL, &req);
	CHECK(req.status == 400 && req.out.len == 0);
	km_buf_fini(&req.out);

	/* the token is not verified here (the ADS stream does it) */
	const char *ok =
		"{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"not-a-jwt\",\"workdir\":\"/w\"}";
	run_handle(&e, a, cert, ok, "localhost", NULL, &req);
	CHECK(req.status == 200);
	km_buf_fini(&req.out);

	/* node.cluster falls back to "unknown" without a workload label */
	struct km_json *got = NULL;
	CHECK(generate(&e, a, ok, "localhost", cert, &got, NULL) == 200);
	CHECK(got &&
	      km_str_eqc(km_json_get_string(km_json_get(got, "node"), "cluster"), "unknown"));

	/* auth type none: no token needed */
	e.cfg.dp_server.authn.dp_proxy.type = "none";
	run_handle(&e, a, cert, "{ \"mesh\": \"default\", \"name\": \"dp-1\" }", "localhost", NULL,
		   &req);
	CHECK(req.status == 200);
	km_buf_fini(&req.out);
	e.cfg.dp_server.authn.dp_proxy.type = "";

	/* unknown proxy type */
	run_handle(&e, a, cert,
		   "{\"mesh\":\"default\",\"name\":\"dp-1\",\"proxyType\":\"ingress\"}",
		   "localhost", NULL, &req);
	CHECK(req.status == 500);
	km_buf_fini(&req.out);

	/* without xdsHost the host the proxy dialled must be in the SANs */
	e.cfg.bootstrap_server.params.xds_host = "";
	e.cfg.bootstrap_server.params.xds_port = 0;
	e.cfg.dp_server.port = 5679;
	CHECK(generate(&e, a, ok, "127.0.0.1", cert, &got, NULL) == 200);
	struct km_json *ads =
		km_json_get(km_json_get(got, "staticResources"), "clusters")->items[1];
	CHECK_STREQ(km_json_get_string(ads, "type").ptr, "STATIC");
	CHECK_STREQ(km_json_get_string(ads, "sni").ptr, "");
	struct km_json *sa = km_json_get(
		km_json_get(km_json_get(km_json_get(km_json_get(km_json_get(ads, "loadAssignment"),
								"endpoints")
							    ->items[0],
						    "lbEndpoints")
						->items[0],
					"endpoint"),
			    "address"),
		"socketAddress");
	CHECK_STREQ(km_json_get_string(sa, "address").ptr, "127.0.0.1");
	CHECK(km_json_get(sa, "portValue")->i == 5679);
	run_handle(&e, a, cert, ok, "kuma-cp.example:5678", NULL, &req);
	CHECK(req.status == 400);
	CHECK_STREQ(
		km_buf_cstr(&req.out),
		"A data plane proxy is trying to connect to the control plane using \"kuma-cp.example\" address, "
		"but the certificate in the control plane has the following SANs [\"127.0.0.1\" \"localhost\"]. "
		"Either change the --cp-address in kuma-dp to one of those or execute the following steps:\n"
		"1) Generate a new certificate with the address you are trying to use. It is recommended to use "
		"trusted Certificate Authority, but you can also generate self-signed certificates using "
		"'kumactl generate tls-certificate --type=server --hostname=kuma-cp.example'\n"
		"2) Set KUMA_GENERAL_TLS_CERT_FILE and KUMA_GENERAL_TLS_KEY_FILE or the equivalent in Kuma CP "
		"config file to the new certificate.\n"
		"3) Start kuma-dp, the control plane picks up the new certificate on its own.");
	km_buf_fini(&req.out);
	run_handle(&e, a, cert, ok, "[::1]:5678", NULL, &req);
	CHECK(req.status == 400);
	km_buf_fini(&req.out);

	/* a leaf with CA:FALSE cannot be the trust anchor */
	run_handle(&e, a, leaf, ok, "localhost", NULL, &req);
	CHECK(req.status == 400);
	CHECK(strncmp(km_buf_cstr(&req.out),
		      "A data plane proxy is trying to verify the control plane using the "
		      "certificate which is not a certificate authority",
		      100) == 0);
	km_buf_fini(&req.out);
	/* ...unless the proxy brings its own CA, which is then what Envoy trusts */
	struct km_buf rb = KM_BUF_INIT;
	km_buf_puts(&rb,
		    "{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"t\",\"caCert\":");
	km_json_write_string(&rb, km_str_c(cert));
	km_buf_puts(&rb, "}");
	CHECK(generate(&e, a, km_buf_cstr(&rb), "localhost", leaf, &got, NULL) == 200);
	km_buf_reset(&rb);
	km_buf_puts(&rb,
		    "{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"t\",\"caCert\":");
	km_json_write_string(&rb, km_str_c(leaf));
	km_buf_puts(&rb, "}");
	CHECK(generate(&e, a, km_buf_cstr(&rb), "localhost", cert, &got, NULL) == 400);
	km_buf_reset(&rb);
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"t\",\"caCert\":\"junk\"}",
		      "localhost", cert, &got, NULL) == 500);
	e.cfg.bootstrap_server.params.xds_host = "localhost";

	/* dataplaneResource: validated, mesh must exist, never stored */
	const char *eb = NULL;
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"default\",\"name\":\"dp-2\",\"dataplaneToken\":\"t\",\"dataplaneResource\":"
		      "\"{\\\"type\\\":\\\"Dataplane\\\",\\\"mesh\\\":\\\"default\\\",\\\"name\\\":\\\"dp-2\\\","
		      "\\\"networking\\\":{\\\"address\\\":\\\"10.0.0.2\\\",\\\"inbound\\\":[{\\\"port\\\":8080}]}}\"}",
		      "localhost", cert, &got, &eb) == 200);
	CHECK(got &&
	      km_json_get(km_json_get(km_json_get(got, "node"), "metadata"), "dataplane.resource"));
	struct km_resource r;
	CHECK(cp_store_get(e.rt.store, a, km_rtype_by_name(KM_STR("Dataplane")), KM_STR("default"),
			   KM_STR("dp-2"), &r) == -KM_E_NOT_FOUND);
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"other\",\"name\":\"dp-2\",\"dataplaneToken\":\"t\",\"dataplaneResource\":"
		      "\"{\\\"type\\\":\\\"Dataplane\\\",\\\"mesh\\\":\\\"other\\\",\\\"name\\\":\\\"dp-2\\\","
		      "\\\"networking\\\":{\\\"address\\\":\\\"10.0.0.2\\\",\\\"inbound\\\":[{\\\"port\\\":8080}]}}\"}",
		      "localhost", cert, &got, &eb) == 422);
	CHECK_STREQ(eb, "mesh: mesh \"other\" does not exist");
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"default\",\"name\":\"dp-2\",\"dataplaneToken\":\"t\",\"dataplaneResource\":"
		      "\"{\\\"type\\\":\\\"Dataplane\\\",\\\"mesh\\\":\\\"default\\\",\\\"name\\\":\\\"dp-2\\\","
		      "\\\"networking\\\":{\\\"inbound\\\":[{\\\"port\\\":8080}]}}\"}",
		      "localhost", cert, &got, &eb) == 422);
	CHECK(eb && strstr(eb, "networking.address") != NULL);
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"default\",\"name\":\"dp-2\",\"dataplaneToken\":\"t\",\"dataplaneResource\":"
		      "\"{\\\"type\\\":\\\"Mesh\\\",\\\"name\\\":\\\"x\\\"}\"}",
		      "localhost", cert, &got, &eb) == 500);
	CHECK(generate(
		      &e, a,
		      "{\"mesh\":\"default\",\"name\":\"dp-2\",\"dataplaneToken\":\"t\",\"dataplaneResource\":"
		      "\"{\\\"type\\\":\\\"Dataplane\\\",\\\"mesh\\\":\\\"default\\\",\\\"name\\\":\\\"dp-2\\\","
		      "\\\"networking\\\":{\\\"address\\\":\\\"10.0.0.2\\\",\\\"inbound\\\":[{\\\"port\\\":8080}],"
		      "\\\"outbound\\\":[{\\\"port\\\":9090,\\\"backendRef\\\":{\\\"kind\\\":\\\"MeshService\\\","
		      "\\\"name\\\":\\\"x\\\",\\\"port\\\":80}}]}}\",\"dataplaneConfig\":{\"ipFamilyMode\":\"dualstack\","
		      "\"redirect\":{\"outbound\":{\"enabled\":true,\"port\":15001}}}}",
		      "localhost", cert, &got, &eb) == 422);
	CHECK_STREQ(eb,
		    "outbound: should be empty since dataplane is in Transparent Proxying mode");

	/* defaults of a real kuma-cp: admin on the Unix socket in the workdir */
	e.cfg.bootstrap_server.params.admin_port = 9901;
	e.cfg.bootstrap_server.params.envoy_admin_unix_socket = true;
	CHECK(generate(&e, a, ok, "localhost", cert, &got, NULL) == 200);
	struct km_json *pipe =
		km_json_get(km_json_get(km_json_get(got, "admin"), "address"), "pipe");
	CHECK(pipe && km_str_eqc(km_json_get_string(pipe, "path"), "/w/kuma-envoy-admin.sock"));
	CHECK(pipe && km_json_get(pipe, "mode")->i == 384);
	struct km_json *md = km_json_get(km_json_get(got, "node"), "metadata");
	CHECK(km_str_eqc(km_json_get_string(md, "dataplane.admin.port"), "9901"));
	CHECK(km_str_eqc(km_json_get_string(md, "dataplane.admin.socketPath"),
			 "/w/kuma-envoy-admin.sock"));
	/* no workdir: TCP admin */
	CHECK(generate(&e, a, "{\"mesh\":\"default\",\"name\":\"dp-1\",\"dataplaneToken\":\"t\"}",
		       "localhost", cert, &got, NULL) == 200);
	CHECK(km_json_get(km_json_get(km_json_get(got, "admin"), "address"), "socketAddress") !=
	      NULL);

	km_buf_fini(&rb);
	km_arena_free(a);
	env_fini(&e);
	free(cert);
	free(leaf);
}

int main(void)
{
	const char *root = getenv("KUMA_CONFORMANCE_DIR");
	snprintf(golden_dir, sizeof(golden_dir), "%s/pkg/xds/bootstrap/testdata",
		 root ? root : "../shared/conformance/kuma");
	find_upstream_cert();
	test_parse();
	test_host_only();
	test_render();
	test_generator();
	test_server();
	free(upstream_cert);
	return test_summary();
}
