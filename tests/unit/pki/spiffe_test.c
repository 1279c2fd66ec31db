/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/pki/spiffe.c: trust domain and SPIFFE ID templates (upstream
 * defaults, fields, the label function, environment defaults) and the
 * go-spiffe checks with their messages. */
#include <string.h>

#include "../test.h"
#include "cp/pki/spiffe.h"

static struct km_json *js(struct km_arena *a, const char *text)
{
	struct km_json *j = NULL;
	CHECK(km_json_parse(a, text, strlen(text), &j, NULL) == 0);
	return j;
}

/* trust domain, or the error */
static const char *td(struct km_arena *a, const char *spec, const char *labels)
{
	const char *out = NULL, *err = NULL;
	if (cp_pki_spiffe_trust_domain(a, js(a, spec), KM_STR("default"), labels ? js(a, labels) : NULL, "zone-1",
				       &out, &err))
		return err;
	return out;
}

static const char *sid(struct km_arena *a, const char *spec, const char *labels, const char *env)
{
	const char *out = NULL, *err = NULL;
	if (cp_pki_spiffe_id(a, js(a, spec), "default.zone-1.mesh.local", js(a, labels), env, &out, &err))
		return err;
	return out;
}

int main(void)
{
	struct km_arena *a = km_arena_new(0);

	/* trust domains */
	CHECK_STREQ(td(a, "{}", NULL), "default.zone-1.mesh.local");
	CHECK_STREQ(td(a, "{}", "{\"kuma.io/zone\":\"east\"}"), "default.east.mesh.local");
	CHECK_STREQ(td(a, "{\"spiffeID\":{\"trustDomain\":\"example.org\"}}", NULL), "example.org");
	CHECK_STREQ(td(a, "{\"spiffeID\":{\"trustDomain\":\"{{ label \\\"team\\\" }}.{{ .Mesh }}\"}}",
		       "{\"team\":\"payments\"}"),
		    "payments.default");
	CHECK_STREQ(td(a, "{\"spiffeID\":{\"trustDomain\":\"{{ .Workload }}\"}}", NULL),
		    "executing template failed: template: :1:3: executing \"\" at <.Workload>: can't evaluate "
		    "field Workload in type struct { Mesh string; Zone string }");
	CHECK_STREQ(td(a, "{\"spiffeID\":{\"trustDomain\":\"{{ label \\\"team\\\" }}\"}}", "{}"),
		    "executing template failed: template: :1:3: executing \"\" at <label>: error calling "
		    "label: label team not found");
	CHECK_STREQ(td(a, "{\"spiffeID\":{\"trustDomain\":\"{{ .Mesh \"}}", NULL),
		    "failed compiling Go template: template: :1: unclosed action");

	/* SPIFFE IDs */
	CHECK_STREQ(sid(a, "{}", "{\"kuma.io/workload\":\"backend\"}", "universal"),
		    "spiffe://default.zone-1.mesh.local/workload/backend");
	CHECK_STREQ(sid(a, "{}", "{\"k8s.kuma.io/namespace\":\"kuma-demo\",\"k8s.kuma.io/service-account\":\"web\"}",
			"kubernetes"),
		    "spiffe://default.zone-1.mesh.local/ns/kuma-demo/sa/web");
	CHECK_STREQ(sid(a, "{\"spiffeID\":{\"path\":\"/svc/{{ label \\\"app\\\" }}\"}}", "{\"app\":\"redis\"}", NULL),
		    "spiffe://default.zone-1.mesh.local/svc/redis");
	CHECK_STREQ(sid(a, "{\"spiffeID\":{\"path\":\"\"}}", "{}", NULL), "spiffe://default.zone-1.mesh.local");
	CHECK_STREQ(sid(a, "{}", "{}", "universal"),
		    "failed to parse SPIFFE ID \"spiffe://default.zone-1.mesh.local/workload/\": path cannot have a "
		    "trailing slash");
	CHECK_STREQ(sid(a, "{\"spiffeID\":{\"path\":\"/svc/{{ label \\\"app\\\" }}\"}}", "{}", NULL),
		    "failed to render SPIFFE ID template: executing template failed: template: :1:35: executing "
		    "\"\" at <label>: error calling label: label app not found");
	CHECK_STREQ(sid(a, "{\"spiffeID\":{\"path\":\"/a b\"}}", "{}", NULL),
		    "failed to parse SPIFFE ID \"spiffe://default.zone-1.mesh.local/a b\": path segment characters "
		    "are limited to letters, numbers, dots, dashes, and underscores");

	/* go-spiffe checks */
	CHECK(cp_pki_spiffe_check_id(KM_STR("spiffe://td/a/b")) == NULL);
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("")), "cannot be empty");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("http://td/a")), "scheme is missing or invalid");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("spiffe:///a")), "trust domain is missing");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("spiffe://TD/a")),
		    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("spiffe://td//a")), "path cannot contain empty segments");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("spiffe://td/./a")), "path cannot contain dot segments");
	CHECK_STREQ(cp_pki_spiffe_check_id(KM_STR("spiffe://td/a/..")), "path cannot contain dot segments");
	CHECK(cp_pki_spiffe_check_trust_domain(KM_STR("default.zone-1.mesh.local")) == NULL);
	CHECK_STREQ(cp_pki_spiffe_check_trust_domain(KM_STR("")), "trust domain is missing");
	CHECK_STREQ(cp_pki_spiffe_check_trust_domain(KM_STR("Default")),
		    "trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores");

	km_arena_free(a);
	return test_summary();
}
