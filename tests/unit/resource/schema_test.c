/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the schema engine (lib/resource/schema.c) through
 * km_validate_resource: unknown fields, defaults, kube-openapi messages and
 * their order, plus meta checks and a few validators. */
#include "resource/schema.h"

#include "../test.h"
#include "base/err.h"
#include "codec/json.h"
#include "resource/validate.h"

struct result {
	int rc;
	struct km_violations v;
	const char *spec; /* normalised, compact */
};

static struct result run(struct km_arena *a, const char *doc_json, unsigned flags, bool meta)
{
	struct result r = {0};
	struct km_json *doc;
	km_violations_init(&r.v, a);
	if (km_json_parse(a, doc_json, strlen(doc_json), &doc, NULL) != 0) {
		r.rc = -1;
		return r;
	}
	struct km_resource_doc d;
	if (km_resource_doc_from_json(a, doc, NULL, &d, NULL) != 0) {
		r.rc = -2;
		return r;
	}
	if (meta)
		km_validate_meta(a, &d, &r.v);
	r.rc = km_validate_resource_ex(a, &d, &r.v, flags);
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, d.spec, 0, 0);
	r.spec = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

static const char *viol(const struct result *r, size_t i)
{
	if (i >= r->v.len)
		return "(none)";
	return r->v.items[i].field[0] ? r->v.items[i].field : "<root>";
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);

	/* tables are consistent */
	CHECK(km_schema_root_find("MeshTimeout") != NULL);
	CHECK(km_schema_root_find("Dataplane") != NULL);
	CHECK(km_schema_root_find("Nope") == NULL);

	/* upstream crud golden put_mtp_00: enum + type errors, sorted by message */
	struct result r =
		run(a,
		    "{\"type\":\"MeshTrafficPermission\",\"name\":\"sample\",\"mesh\":\"default\","
		    "\"spec\":{\"targetRef\":{\"kind\":\"MeshService\",\"sectionName\":2},"
		    "\"rules\":[{\"default\":{\"allow\":[{\"spiffeID\":{\"type\":\"Prefix\","
		    "\"value\":\"spiffe://default\"}}]}}]}}",
		    0, false);
	CHECK(r.rc == -KM_E_INVALID);
	CHECK(r.v.len == 2);
	CHECK_STREQ(viol(&r, 0), "spec.targetRef.kind");
	CHECK_STREQ(r.v.items[0].message, "in body should be one of [Mesh Dataplane]");
	CHECK_STREQ(viol(&r, 1), "spec.targetRef.sectionName");
	CHECK_STREQ(r.v.items[1].message, "in body must be of type string: \"number\"");

	/* unknown fields dropped, defaults applied (MeshService appProtocol/state) */
	r = run(a,
		"{\"type\":\"MeshService\",\"name\":\"redis\",\"mesh\":\"default\",\"spec\":{\"bogus\":1,"
		"\"ports\":[{\"port\":6379,\"targetPort\":6379}],\"selector\":{\"dataplaneTags\":{\"a\":\"b\"}}}}",
		0, false);
	CHECK(r.rc == 0);
	CHECK(strstr(r.spec, "bogus") == NULL);
	CHECK(strstr(r.spec, "\"appProtocol\":\"tcp\"") != NULL);
	CHECK(strstr(r.spec, "\"state\":\"Unavailable\"") != NULL);

	/* Dataplane: removed inbound tags are dropped silently */
	r = run(a,
		"{\"type\":\"Dataplane\",\"name\":\"dp-1\",\"mesh\":\"default\",\"networking\":{\"address\":"
		"\"10.0.0.1\",\"inbound\":[{\"port\":1234,\"tags\":{\"kuma.io/service\":\"x\"}}]}}",
		0, true);
	CHECK(r.rc == 0 && r.v.len == 0);
	CHECK(strstr(r.spec, "tags") == NULL);

	/* Dataplane validator collects every violation */
	r = run(a,
		"{\"type\":\"Dataplane\",\"name\":\"dp-1\",\"mesh\":\"default\",\"networking\":{\"address\":"
		"\"192.168.0.1\",\"inbound\":[{},{\"port\":65536}]}}",
		0, false);
	CHECK(r.v.len == 2);
	CHECK_STREQ(viol(&r, 0), "networking.inbound[0].port");
	CHECK_STREQ(viol(&r, 1), "networking.inbound[1].port");

	/* flat type schema error keeps the field */
	r = run(a,
		"{\"type\":\"Dataplane\",\"name\":\"dp-1\",\"mesh\":\"default\",\"networking\":{\"address\":5}}",
		0, false);
	CHECK(r.v.len == 1);
	CHECK_STREQ(viol(&r, 0), "networking.address");

	/* validator-only mode: no schema errors, YAML-style string coercion */
	r = run(a,
		"{\"type\":\"MeshRetry\",\"name\":\"r\",\"mesh\":\"default\",\"spec\":{\"targetRef\":{\"kind\":"
		"\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"http\":{\"retryOn\":[500]}}}]}}",
		KM_VALIDATE_VALIDATOR_ONLY, false);
	CHECK(r.rc == 0);

	/* meta: name and mesh characters, 253 limit, RFC 1035 for meshes */
	r = run(a,
		"{\"type\":\"Dataplane\",\"name\":\"dp-4$\",\"mesh\":\"def$ault\",\"networking\":{\"address\":\"1.1.1.1\"}}",
		0, true);
	CHECK(r.v.len == 2);
	CHECK_STREQ(viol(&r, 0), "name");
	CHECK_STREQ(viol(&r, 1), "mesh");
	CHECK_STREQ(
		r.v.items[1].message,
		"invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_', '.' symbols.");
	r = run(a, "{\"type\":\"Mesh\",\"name\":\"aa.a\"}", 0, true);
	CHECK(r.v.len == 1);
	CHECK(strncmp(r.v.items[0].message, "a DNS-1035 label", 16) == 0);

	/* pattern, enum and required in a policy */
	r = run(a,
		"{\"type\":\"MeshTimeout\",\"name\":\"t\",\"mesh\":\"default\",\"spec\":{\"targetRef\":{\"kind\":"
		"\"Mesh\"},\"to\":[{\"targetRef\":{\"kind\":\"Mesh\"},\"default\":{\"idleTimeout\":\"-1s\"}}]}}",
		0, false);
	CHECK(r.v.len == 1);
	CHECK_STREQ(viol(&r, 0), "spec.to[0].default.idleTimeout");
	CHECK_STREQ(r.v.items[0].message, "must not be negative when defined");

	km_arena_free(a);
	return test_summary();
}
