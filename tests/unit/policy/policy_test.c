/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the policy engine (cp/policy): conf merging, duration
 * handling, matching order, inbound and `to` rules with the KRI lookup
 * fallbacks, and the family H goldens of upstream's
 * matchers/testdata/matchedpolicies/dataplanepolicies (the ordered list of
 * policies selecting a Dataplane), read from the conformance data when it is
 * present (KUMA_CONFORMANCE_DIR overrides the default location). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "codec/yaml.h"
#include "cp/policy/policy.h"
#include "cp/xds/context.h"

#include <openssl/evp.h>

#define DEFAULT_DIR "/work/shared/conformance/kuma"

static struct km_json *json(struct km_arena *a, const char *text)
{
	struct km_json *v = NULL;
	if (km_json_parse(a, text, strlen(text), &v, NULL))
		abort();
	return v;
}

static char *compact(struct km_arena *a, const struct km_json *v)
{
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, v, 0, 0);
	char *s = km_arena_strndup(a, b.data ? b.data : "", b.len);
	km_buf_fini(&b);
	return s;
}

/* ---- a mesh context built from universal documents ---- */

static struct km_str num_str(struct km_arena *a, const struct km_json *v)
{
	return km_str_c(km_arena_printf(a, "%lld", (long long)km_json_i64_sat(v)));
}

static void add_doc(struct km_arena *a, struct cp_xds_mesh *m, const struct km_json *doc)
{
	struct km_resource_doc d;
	struct km_resource r;
	if (km_resource_doc_from_json(a, doc, NULL, &d, NULL))
		return;
	km_resource_from_doc(a, &d, &r);
	const char *type = d.type->name;
	if (strcmp(type, "Mesh") == 0) {
		m->name = r.name;
		m->mesh_labels = d.labels ? d.labels : km_json_object(a);
	} else if (strcmp(type, "Dataplane") == 0) {
		struct cp_xds_dataplane *dp = &m->dataplanes[m->ndataplanes++];
		dp->res = r;
		dp->spec = d.spec;
		dp->labels = d.labels ? d.labels : km_json_object(a);
	} else if (strcmp(type, "MeshService") == 0) {
		struct cp_xds_service *s = &m->services[m->nservices++];
		s->store_name = r.name;
		s->labels = d.labels ? d.labels : km_json_object(a);
		s->spec = d.spec;
		struct km_str display = km_json_get_string(s->labels, "kuma.io/display-name");
		s->name = display.len ? display : r.name;
		s->zone = km_json_get_string(s->labels, "kuma.io/zone");
		s->ns = km_json_get_string(s->labels, "k8s.kuma.io/namespace");
		struct km_json *ports = km_json_get(d.spec, "ports");
		size_t n = ports ? ports->len : 0;
		s->ports = km_arena_alloc(a, (n + 1) * sizeof(*s->ports));
		for (size_t i = 0; i < n; i++) {
			struct cp_xds_port *p = &s->ports[s->nports++];
			p->port = (uint32_t)km_json_i64_sat(km_json_get(ports->items[i], "port"));
			struct km_str name = km_json_get_string(ports->items[i], "name");
			p->section =
				name.len ? name : num_str(a, km_json_get(ports->items[i], "port"));
			p->app_protocol = km_json_get_string(ports->items[i], "appProtocol");
		}
	} else if (km_rtype_has(d.type, KM_RT_POLICY) || strcmp(type, "MeshOpenTelemetryBackend") == 0) {
		cp_policy_parse(a, &r, &m->policies[m->npolicies++]);
	}
}

static struct cp_xds_mesh *mesh_new(struct km_arena *a, const char *mesh)
{
	struct cp_xds_mesh *m = km_arena_alloc(a, sizeof(*m));
	m->a = a;
	m->name = km_str_c(mesh);
	m->zone = "zone-uni";
	m->mesh_labels = km_json_object(a);
	m->dataplanes = km_arena_alloc(a, 16 * sizeof(*m->dataplanes));
	m->services = km_arena_alloc(a, 32 * sizeof(*m->services));
	m->policies = km_arena_alloc(a, 64 * sizeof(*m->policies));
	return m;
}

/* Upstream's test_resources.ZoneUni meta: origin zone, zone zone-uni and
 * the display name, under the document's own labels. */
static void zone_uni(struct km_arena *a, struct km_json *doc)
{
	struct km_json *labels = km_json_object(a);
	km_json_set(a, labels, "kuma.io/origin", km_json_cstring(a, "zone"));
	km_json_set(a, labels, "kuma.io/zone", km_json_cstring(a, "zone-uni"));
	km_json_set(a, labels, "kuma.io/display-name", km_json_clone(a, km_json_get(doc, "name")));
	struct km_json *own = km_json_get(doc, "labels");
	for (size_t i = 0; own && own->kind == KM_JSON_OBJECT && i < own->len; i++)
		km_json_set_str(a, labels, own->members[i].key, own->members[i].val);
	km_json_set(a, doc, "labels", labels);
}

static void add_yaml_ex(struct km_arena *a, struct cp_xds_mesh *m, const char *text, bool zone_uni_meta)
{
	struct km_json **docs;
	size_t n;
	if (km_yaml_parse(a, text, strlen(text), &docs, &n, NULL))
		abort();
	for (size_t i = 0; i < n; i++) {
		if (zone_uni_meta && !km_str_eqc(km_json_get_string(docs[i], "type"), "Mesh"))
			zone_uni(a, docs[i]);
		add_doc(a, m, docs[i]);
	}
}

static void add_yaml(struct km_arena *a, struct cp_xds_mesh *m, const char *text)
{
	add_yaml_ex(a, m, text, false);
}

/* ---- merge ---- */

static void test_merge(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *confs[3] = {
		json(a,
		     "{\"idleTimeout\":\"1s\",\"http\":{\"requestTimeout\":\"2s\"},\"list\":[1,2],"
		     "\"appendModifications\":[\"a\"]}"),
		json(a,
		     "{\"http\":{\"streamIdleTimeout\":\"3s\"},\"list\":[3],\"appendModifications\":[\"b\"]}"),
		json(a, "{\"idleTimeout\":null,\"nested\":{\"appendMatch\":[1]}}"),
	};
	struct km_json *m = cp_policy_merge(a, confs, 3);
	CHECK(km_json_get(m, "idleTimeout") == NULL); /* null deletes */
	CHECK_STREQ(compact(a, km_json_get(m, "http")),
		    "{\"requestTimeout\":\"2s\",\"streamIdleTimeout\":\"3s\"}");
	CHECK_STREQ(compact(a, km_json_get(m, "list")), "[3]"); /* lists are replaced */
	CHECK_STREQ(compact(a, km_json_get(m, "appendModifications")),
		    "[\"a\",\"b\"]"); /* ... unless append* */
	CHECK_STREQ(compact(a, km_json_get(m, "nested")), "{\"appendMatch\":[1]}");
	/* the inputs are left untouched */
	CHECK_STREQ(compact(a, confs[0]),
		    "{\"idleTimeout\":\"1s\",\"http\":{\"requestTimeout\":\"2s\"},\"list\":[1,2],"
		    "\"appendModifications\":[\"a\"]}");
	CHECK_STREQ(compact(a, cp_policy_merge(a, NULL, 0)), "{}");
	km_arena_free(a);
}

static void test_durations(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_xds_mesh *m = mesh_new(a, "default");
	add_yaml(
		a, m,
		"type: MeshTimeout\nname: t\nmesh: default\nspec:\n  rules:\n  - default:\n      idleTimeout: 60s\n"
		"      connectionTimeout: 101s\n      http:\n        streamIdleTimeout: 1h\n        requestTimeout: 5s\n");
	CHECK(m->npolicies == 1);
	struct km_json *d =
		km_json_get(km_json_get(m->policies[0].spec, "rules")->items[0], "default");
	CHECK_STREQ(compact(a, d),
		    "{\"idleTimeout\":\"1m0s\",\"connectionTimeout\":\"1m41s\","
		    "\"http\":{\"streamIdleTimeout\":\"1h0m0s\",\"requestTimeout\":\"5s\"}}");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"4m\""))), "\"240s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"1m0s\""))), "\"60s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"500ms\""))), "\"0.500s\"");
	/* protobuf JSON: 0, 3, 6 or 9 fractional digits, the sign in front */
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"0s\""))), "\"0s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"1m2.05s\""))), "\"62.050s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"25us\""))), "\"0.000025s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"1.000000007s\""))), "\"1.000000007s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"-1.5s\""))), "\"-1.500s\"");
	CHECK_STREQ(compact(a, cp_policy_duration(a, json(a, "\"-500ms\""))), "\"-0.500s\"");
	CHECK(cp_policy_duration(a, json(a, "\"5xx\"")) == NULL);
	CHECK(m->policies[0].origin == CP_POLICY_ORIGIN_UNKNOWN &&
	      m->policies[0].role == CP_POLICY_ROLE_SYSTEM);
	CHECK_STREQ(m->policies[0].kri, "kri_mt_default___t_");
	km_arena_free(a);
}

/* ---- matching, inbound and to rules ---- */

static const char *WORLD =
	"type: Mesh\nname: mesh-1\n"
	"---\n"
	"type: Dataplane\nmesh: mesh-1\nname: dp-1\nlabels:\n  app: web\n"
	"networking:\n  address: 1.1.1.1\n  inbound:\n  - port: 8080\n    name: main\n  - port: 9090\n"
	"---\n"
	"type: MeshService\nmesh: mesh-1\nname: backend\nlabels:\n  kuma.io/display-name: backend\n"
	"  kuma.io/zone: zone-uni\nspec:\n  ports:\n  - port: 80\n    name: http\n  - port: 81\n";

static void test_inbound_rules(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_xds_mesh *m = mesh_new(a, "mesh-1");
	add_yaml(a, m, WORLD);
	add_yaml(
		a, m,
		"type: MeshTimeout\nmesh: mesh-1\nname: all\nspec:\n  targetRef: {kind: Mesh}\n"
		"  rules:\n  - default: {idleTimeout: 1s, connectionTimeout: 1s}\n"
		"---\n"
		"type: MeshTimeout\nmesh: mesh-1\nname: main-only\nspec:\n"
		"  targetRef: {kind: Dataplane, labels: {app: web}, sectionName: main}\n"
		"  rules:\n  - default: {idleTimeout: 2s}\n"
		"  - matches: [{spiffeID: {type: Prefix, value: spiffe://x}}, {spiffeID: {type: Exact, value: spiffe://x/y}}]\n"
		"    default: {idleTimeout: 3s}\n"
		"---\n"
		"type: MeshTimeout\nmesh: mesh-1\nname: shadowed\nlabels: {kuma.io/effect: shadow}\nspec:\n"
		"  rules:\n  - default: {idleTimeout: 4s}\n"
		"---\n"
		"type: MeshTimeout\nmesh: mesh-1\nname: other-app\nspec:\n"
		"  targetRef: {kind: Dataplane, labels: {app: db}}\n  rules:\n  - default: {idleTimeout: 5s}\n");
	const struct km_rtype *t = km_rtype_by_name(KM_STR("MeshTimeout"));
	struct cp_policy_matched mp;
	cp_policy_match(a, m, &m->dataplanes[0], t, false, &mp);
	CHECK(mp.npolicies == 2);
	CHECK(mp.npolicies == 2 && km_str_eqc(mp.policies[0]->name, "all") &&
	      km_str_eqc(mp.policies[1]->name, "main-only"));
	CHECK(mp.ninbounds == 2);
	if (mp.ninbounds == 2) {
		const struct cp_policy_inbound *main = &mp.inbounds[0], *other = &mp.inbounds[1];
		CHECK_STREQ(main->resource, "self_inbound_dp_main");
		CHECK_STREQ(other->resource, "self_inbound_dp_9090");
		/* Exact before Prefix, matched rules before catch-all ones, priority order kept */
		CHECK(main->nrules == 4);
		CHECK_STREQ(compact(a, main->rules[0].match),
			    "{\"spiffeID\":{\"type\":\"Exact\",\"value\":\"spiffe://x/y\"}}");
		CHECK_STREQ(compact(a, main->rules[1].match),
			    "{\"spiffeID\":{\"type\":\"Prefix\",\"value\":\"spiffe://x\"}}");
		CHECK(main->rules[2].match == NULL &&
		      main->rules[2].origin.policy == mp.policies[0]);
		CHECK(main->rules[3].match == NULL &&
		      main->rules[3].origin.policy == mp.policies[1]);
		CHECK(main->rules[1].origin.rule_index == 1);
		CHECK_STREQ(compact(a, cp_policy_inbound_conf(a, main)),
			    "{\"idleTimeout\":\"2s\",\"connectionTimeout\":\"1s\"}");
		CHECK(other->nrules == 1);
	}
	/* shadow mode adds the shadowed policy; "all" and "shadowed" tie on
	 * everything but the name, so the smaller name ("all") wins */
	cp_policy_match(a, m, &m->dataplanes[0], t, true, &mp);
	CHECK(mp.npolicies == 3 && km_str_eqc(mp.policies[0]->name, "shadowed") &&
	      km_str_eqc(mp.policies[1]->name, "all"));
	km_arena_free(a);
}

static void test_to_rules(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_xds_mesh *m = mesh_new(a, "mesh-1");
	add_yaml(a, m, WORLD);
	/* resourcerules/mt_with_ms_and_mesh plus a port-specific entry */
	add_yaml(
		a, m,
		"type: MeshTimeout\nmesh: mesh-1\nname: matched-for-rules-mt-1\nspec:\n  targetRef: {kind: Mesh}\n  to:\n"
		"  - targetRef: {kind: Mesh}\n    default: {idleTimeout: 9s}\n"
		"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n"
		"    default: {connectionTimeout: 11s, http: {requestTimeout: 12s}}\n"
		"  - targetRef: {kind: Mesh}\n    default: {connectionTimeout: 21s}\n"
		"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}, sectionName: http}\n"
		"    default: {connectionTimeout: 31s}\n");
	struct cp_policy_matched mp;
	cp_policy_match(a, m, &m->dataplanes[0], km_rtype_by_name(KM_STR("MeshTimeout")), false,
			&mp);
	CHECK(mp.nto == 3);
	const struct cp_policy_to_rule *r = cp_policy_to_lookup(&mp, "kri_m____mesh-1_");
	CHECK(r && r->norigins == 2 && r->origins[0].rule_index == 0 &&
	      r->origins[1].rule_index == 2);
	CHECK(r && strcmp(compact(a, r->conf),
			  "{\"idleTimeout\":\"9s\",\"connectionTimeout\":\"21s\"}") == 0);
	r = cp_policy_to_lookup(&mp, "kri_msvc_mesh-1_zone-uni__backend_");
	CHECK(r && r->norigins == 3 && r->origins[2].rule_index == 1);
	CHECK(r &&
	      strcmp(compact(a, r->conf),
		     "{\"idleTimeout\":\"9s\",\"connectionTimeout\":\"11s\",\"http\":{\"requestTimeout\":\"12s\"}}") ==
		      0);
	/* exact section, then the service without a section, then the Mesh */
	r = cp_policy_to_lookup(&mp, "kri_msvc_mesh-1_zone-uni__backend_http");
	CHECK(r && km_str_eqc(r->section, "http") &&
	      strstr(compact(a, r->conf), "\"31s\"") != NULL);
	r = cp_policy_to_lookup(&mp, "kri_msvc_mesh-1_zone-uni__backend_81");
	CHECK(r && r->section.len == 0 && strstr(compact(a, r->conf), "\"11s\"") != NULL);
	r = cp_policy_to_lookup(&mp, "kri_msvc_mesh-1_zone-uni__unknown_80");
	CHECK(r && strcmp(r->rtype, "Mesh") == 0);
	CHECK(cp_policy_to_lookup(&mp, "self_inbound_dp_8080") == NULL);
	CHECK(mp.proxy_conf == NULL);
	km_arena_free(a);
}

/* ---- family H: matchers/testdata/matchedpolicies/dataplanepolicies ---- */

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	size_t got = fread(buf, 1, (size_t)n, f);
	buf[got] = 0;
	fclose(f);
	return buf;
}

/* One ordered-policies golden: <base>.dataplane.yaml and <base>.policies.yaml
 * against <golden>; <zone_uni_meta> relabels them as upstream's ZoneUni. */
static int ordered_policies_case(const char *base, const char *golden, bool zone_uni_meta)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s.dataplane.yaml", base);
	char *dp = slurp(path);
	snprintf(path, sizeof(path), "%s.policies.yaml", base);
	char *pol = slurp(path);
	char *gold = slurp(golden);
	if (!dp || !pol || !gold) {
		free(dp);
		free(pol);
		free(gold);
		return -1;
	}
	struct km_arena *a = km_arena_new(0);
	struct cp_xds_mesh *m = mesh_new(a, "mesh-1");
	add_yaml_ex(a, m, dp, zone_uni_meta);
	add_yaml_ex(a, m, pol, zone_uni_meta);
	struct km_json **docs;
	size_t n;
	CHECK(km_yaml_parse(a, gold, strlen(gold), &docs, &n, NULL) == 0 && n == 1);
	struct km_json *items = n ? km_json_get(docs[0], "items") : NULL;
	if (m->ndataplanes == 1 && m->npolicies && items) {
		struct cp_policy_matched mp;
		cp_policy_match(a, m, &m->dataplanes[0], m->policies[0].type, false, &mp);
		struct km_buf want = KM_BUF_INIT, got = KM_BUF_INIT;
		for (size_t i = 0; i < items->len; i++) {
			struct km_str name = km_json_get_string(items->items[i], "name");
			km_buf_puts(&want, km_arena_strndup(a, name.ptr, name.len));
			km_buf_putc(&want, ' ');
		}
		for (size_t i = 0; i < mp.npolicies; i++) {
			km_buf_puts(&got, km_arena_strndup(a, mp.policies[i]->name.ptr,
							   mp.policies[i]->name.len));
			km_buf_putc(&got, ' ');
		}
		km_buf_putc(&want, 0);
		km_buf_putc(&got, 0);
		if (strcmp(want.data, got.data) != 0)
			fprintf(stderr, "%s\n", golden);
		CHECK_STREQ(got.data, want.data);
		km_buf_fini(&want);
		km_buf_fini(&got);
	} else {
		CHECK(!"ordered policies case did not load");
	}
	km_arena_free(a);
	free(dp);
	free(pol);
	free(gold);
	return 0;
}

static void test_dataplane_policies_goldens(void)
{
	const char *root = getenv("KUMA_CONFORMANCE_DIR");
	char dir[900];
	snprintf(dir, sizeof(dir),
		 "%s/pkg/plugins/policies/core/matchers/testdata/matchedpolicies/dataplanepolicies",
		 root ? root : DEFAULT_DIR);
	int ran = 0;
	char base[1000], golden[1100];
	for (int nn = 1; nn <= 99; nn++) {
		snprintf(base, sizeof(base), "%s/%02d", dir, nn);
		snprintf(golden, sizeof(golden), "%s.golden.yaml", base);
		if (ordered_policies_case(base, golden, false) == 0)
			ran++;
	}
	/* dataplane-kind/<input>/uni-zone.golden.yaml: DP and policies with ZoneUni meta */
	static const char *const kinds[] = {"select-all", "select-by-labels", "combine-name-and-sectionName"};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		snprintf(base, sizeof(base), "%s/../dataplane-kind/%s", dir, kinds[i]);
		snprintf(golden, sizeof(golden), "%s/uni-zone.golden.yaml", base);
		if (ordered_policies_case(base, golden, true) == 0)
			ran++;
	}
	if (!ran)
		fprintf(stderr, "note: conformance data not found under %s; golden cases skipped\n",
			dir);
}

/* Which proxies a changed policy can reach (the xDS server regenerates only
 * those): its top-level targetRef's Dataplane selection, everyone for Mesh. */
static void test_may_affect(void)
{
	struct km_arena *a = km_arena_new(0);
	struct cp_xds_mesh *m = mesh_new(a, "default");
	add_yaml(a, m,
		 "type: Dataplane\nmesh: default\nname: web-1\nlabels:\n  app: web\n"
		 "networking:\n  address: 10.0.0.1\n  inbound:\n  - port: 80\n"
		 "---\ntype: Dataplane\nmesh: default\nname: db-1\nlabels:\n  app: db\n"
		 "networking:\n  address: 10.0.0.2\n  inbound:\n  - port: 5432\n"
		 "---\ntype: MeshTimeout\nmesh: default\nname: web-only\nspec:\n  targetRef:\n"
		 "    kind: Dataplane\n    labels:\n      app: web\n  to:\n  - targetRef:\n"
		 "      kind: Mesh\n    default:\n      connectionTimeout: 3s\n"
		 "---\ntype: MeshTimeout\nmesh: default\nname: everyone\nspec:\n  targetRef:\n"
		 "    kind: Mesh\n  to:\n  - targetRef:\n      kind: Mesh\n    default:\n"
		 "      connectionTimeout: 3s\n"
		 "---\ntype: MeshTimeout\nmesh: default\nname: all-dataplanes\nspec:\n  targetRef:\n"
		 "    kind: Dataplane\n  to:\n  - targetRef:\n      kind: Mesh\n    default:\n"
		 "      connectionTimeout: 3s\n");
	CHECK(m->ndataplanes == 2 && m->npolicies == 3);
	const struct cp_xds_dataplane *web = &m->dataplanes[0], *db = &m->dataplanes[1];
	CHECK(cp_policy_may_affect(&m->policies[0], web));
	CHECK(!cp_policy_may_affect(&m->policies[0], db));
	CHECK(cp_policy_may_affect(&m->policies[1], web) && cp_policy_may_affect(&m->policies[1], db));
	CHECK(cp_policy_may_affect(&m->policies[2], web) && cp_policy_may_affect(&m->policies[2], db));
	km_arena_free(a);
}

/* ---- plugins ---- */

/* A mesh of <yaml> (upstream's ZoneUni labels), the policies of its first
 * Dataplane prepared, and an empty resource set for the plugins to edit. */
static void plugin_setup(const char *yaml, struct km_arena **a, struct cp_xds_mesh **m, struct cp_policy_prepared *pp,
			 struct cp_xds_resources *rs)
{
	*a = km_arena_new(0);
	*m = mesh_new(*a, "mesh-1");
	add_yaml_ex(*a, *m, yaml, true);
	cp_policy_prepare(*a, *m, &(*m)->dataplanes[0], NULL, pp);
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		rs->by_type[t] = km_json_object(*a);
}

/* ---- MeshHTTPRoute ---- */

static const char ROUTE_WORLD[] =
	"type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web}\n"
	"networking: {address: 10.0.0.1, inbound: [{port: 8080}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: backend\n"
	"spec: {ports: [{port: 80, appProtocol: http}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: backend-v2\n"
	"spec: {ports: [{port: 80, appProtocol: http}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: db\n"
	"spec: {ports: [{port: 5432, appProtocol: tcp}]}\n"
	"---\ntype: MeshHTTPRoute\nmesh: mesh-1\nname: route-1\nspec:\n  to:\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n    rules:\n"
	"    - matches: [{path: {type: PathPrefix, value: /api}}, {method: GET}]\n"
	"      default:\n"
	"        backendRefs: [{kind: MeshService, name: backend, port: 80, weight: 90},\n"
	"                      {kind: MeshService, name: backend-v2, port: 80, weight: 10}]\n"
	"        filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-a, value: '1'}],"
	" remove: [x-b]}}]\n"
	"    - matches: [{path: {type: Exact, value: /exact}, headers: [{name: x-h, type: Present}]}]\n"
	"      default: {filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]}\n"
	"    - matches: [{path: {type: RegularExpression, value: /re.*},\n"
	"                 queryParams: [{type: Exact, name: q, value: '1'}, {type: Exact, name: q, value: '2'}]}]\n"
	"      default: {backendRefs: [{kind: MeshService, name: missing, port: 80}]}\n"
	"    - matches: [{path: {type: PathPrefix, value: /half/}}]\n"
	"      default:\n"
	"        backendRefs: [{kind: MeshService, name: backend-v2, port: 80, weight: 1},\n"
	"                      {kind: MeshService, name: db, port: 5432, weight: 1}]\n"
	"        filters:\n"
	"        - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}}\n"
	"        - {type: RequestMirror, requestMirror: {percentage: '12.5',\n"
	"           backendRef: {kind: MeshService, name: backend-v2, port: 80}}}\n"
	"---\ntype: MeshRetry\nmesh: mesh-1\nname: retry-route\nspec:\n  to:\n"
	"  - targetRef: {kind: MeshHTTPRoute, labels: {kuma.io/display-name: route-1}}\n"
	"    default: {http: {numRetries: 7}}\n";

#define BACKEND "kri_msvc_mesh-1_zone-uni__backend_80"
#define ROUTE_NAME "kri_mhttpr_mesh-1_zone-uni__route-1_rule_0"

static void test_meshhttproute(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(ROUTE_WORLD,
		     &a, &m, &pp, &rs);
	CHECK(m->ndataplanes == 1 && m->nservices == 3 && m->npolicies == 2);
	/* an outbound listener as the generator makes it: one catch-all route */
	struct km_json *l = json(
		a, "{\"name\":\"" BACKEND "\",\"filterChains\":[{\"filters\":[{\"name\":"
		   "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{\"routeConfig\":{"
		   "\"virtualHosts\":[{\"name\":\"" BACKEND "\",\"routes\":[{\"match\":{\"prefix\":\"/\"},"
		   "\"name\":\"catch-all\",\"route\":{\"cluster\":\"" BACKEND "\",\"timeout\":\"15s\"}}]}]}}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], BACKEND, l);
	cp_policy_apply_prepared(&pp, &rs);
	struct km_json *hcm = km_json_get(km_json_get(l, "filterChains")->items[0], "filters")->items[0];
	struct km_json *vhs = km_json_get(km_json_get(km_json_get(hcm, "typedConfig"), "routeConfig"), "virtualHosts");
	struct km_json *routes = km_json_get(vhs->items[0], "routes");
	CHECK(routes && routes->len == 10);
	if (!routes || routes->len != 10) {
		fprintf(stderr, "%s\n", compact(a, l));
		km_arena_free(a);
		return;
	}
	const char *want[] = {
	    /* Exact first: a redirect (301 is the enum's zero), no route action */
	    "{\"match\":{\"path\":\"/exact\",\"headers\":[{\"name\":\"x-h\",\"presentMatch\":true}]},"
	    "\"name\":\"" ROUTE_NAME "\",\"redirect\":{\"schemeRedirect\":\"https\"}}",
	    /* the longest prefix: half its weight unresolved (a TCP port), the
	     * exact /half rewritten by regex, /half/ by prefix; mirrored */
	    "{\"match\":{\"path\":\"/half\",\"runtimeFraction\":{\"defaultValue\":{\"numerator\":50}}},"
	    "\"name\":\"" ROUTE_NAME "\",\"directResponse\":{\"status\":500,\"body\":{\"inlineString\":\"\"}}}",
	    "{\"match\":{\"path\":\"/half\"},\"name\":\"" ROUTE_NAME "\",\"route\":{\"timeout\":\"15s\","
	    "\"cluster\":\"kri_msvc_mesh-1_zone-uni__backend-v2_80\",\"regexRewrite\":{\"pattern\":{\"regex\":\".*\"},"
	    "\"substitution\":\"/new\"},\"requestMirrorPolicies\":[{\"cluster\":\"kri_msvc_mesh-1_zone-uni__backend-v2_80\","
	    "\"runtimeFraction\":{\"defaultValue\":{\"numerator\":1250,\"denominator\":\"TEN_THOUSAND\"}}}],"
	    "\"retryPolicy\":{\"retryOn\":\"gateway-error,connect-failure,refused-stream\",\"numRetries\":7}}}",
	    NULL, NULL, /* /half/ the same way */
	    "{\"match\":{\"path\":\"/api\"},\"name\":\"" ROUTE_NAME "\",\"route\":{\"timeout\":\"15s\","
	    "\"weightedClusters\":{\"clusters\":[{\"name\":\"" BACKEND "\",\"weight\":90},"
	    "{\"name\":\"kri_msvc_mesh-1_zone-uni__backend-v2_80\",\"weight\":10}]},\"retryPolicy\":{\"retryOn\":\"gateway-error,connect-failure,refused-stream\",\"numRetries\":7}},"
	    "\"requestHeadersToAdd\":[{\"header\":{\"key\":\"x-a\",\"value\":\"1\"},"
	    "\"appendAction\":\"OVERWRITE_IF_EXISTS_OR_ADD\"}],\"requestHeadersToRemove\":[\"x-b\"]}",
	    NULL,
	    /* no backendRef resolves: 500; one matcher per query parameter */
	    "{\"match\":{\"safeRegex\":{\"regex\":\"/re.*\"},\"queryParameters\":[{\"name\":\"q\",\"stringMatch\":"
	    "{\"exact\":\"1\"}}]},\"name\":\"" ROUTE_NAME "\",\"directResponse\":{\"status\":500,\"body\":"
	    "{\"inlineString\":\"\"}}}",
	    NULL,
	    /* the generator's catch-all, last; MeshRetry has no rule for it */
	    "{\"match\":{\"prefix\":\"/\"},\"name\":\"catch-all\",\"route\":{\"cluster\":\"" BACKEND "\","
	    "\"timeout\":\"15s\"}}",
	};
	for (size_t i = 0; i < 10; i++) {
		if (want[i])
			CHECK_STREQ(compact(a, routes->items[i]), want[i]);
	}
	CHECK(strstr(compact(a, routes->items[4]), "\"prefix\":\"/half/\"") &&
	      strstr(compact(a, routes->items[4]), "\"prefixRewrite\":\"/new\"") &&
	      strstr(compact(a, routes->items[3]), "\"runtimeFraction\""));
	CHECK(strstr(compact(a, routes->items[6]), "\"prefix\":\"/api/\"") != NULL);
	CHECK(strstr(compact(a, routes->items[8]),
		     "{\"prefix\":\"/\",\"headers\":[{\"name\":\":method\",\"stringMatch\":{\"exact\":\"GET\"}}]}") != NULL);
	/* the clusters the routes need besides the outbound's own */
	struct cp_policy_backend *bs;
	size_t nb = cp_policy_route_backends(&pp, BACKEND, &bs);
	CHECK(nb >= 1);
	for (size_t i = 0; i < nb; i++)
		CHECK_STREQ(bs[i].kri, "kri_msvc_mesh-1_zone-uni__backend-v2_80");
	CHECK(cp_policy_route_backends(&pp, "kri_msvc_mesh-1_zone-uni__db_5432", &bs) == 0);
	/* a route's own rule: with its section name (which holds a '_') or
	 * without; never a name that is no route kri */
	const struct cp_policy_matched *mr = NULL;
	for (size_t i = 0; i < cp_policy_nplugins; i++)
		if (strcmp(cp_policy_plugins[i].type, "MeshRetry") == 0)
			mr = &pp.mp[i];
	CHECK(mr && cp_policy_route_lookup(mr, KM_STR(ROUTE_NAME)) &&
	      strcmp(cp_policy_route_lookup(mr, KM_STR(ROUTE_NAME))->rtype, "MeshHTTPRoute") == 0);
	CHECK(mr && cp_policy_route_lookup(mr, KM_STR("kri_mhttpr_mesh-1_zone-uni__other_rule_0")) == NULL);
	CHECK(mr && cp_policy_route_lookup(mr, KM_STR("catch-all")) == NULL);
	/* the share key of the listener names the routes and where they go */
	const struct km_json *key = cp_policy_meshhttproute_outbound_conf(&pp.c, &pp.mp[0], BACKEND);
	CHECK(key && strstr(compact(a, key), ROUTE_NAME) && strstr(compact(a, key), "backend-v2_80"));
	CHECK(cp_policy_meshhttproute_outbound_conf(&pp.c, &pp.mp[0], "kri_msvc_mesh-1_zone-uni__db_5432") == NULL);
	km_arena_free(a);
}

/* ---- MeshFaultInjection, MeshRateLimit ---- */

static const char INBOUND_WORLD[] =
	"type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web}\n"
	"networking: {address: 10.0.0.1, inbound: [{port: 8080, protocol: http}, {port: 5432, protocol: tcp}]}\n"
	"---\ntype: MeshFaultInjection\nmesh: mesh-1\nname: faults\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n"
	"  - matches: [{spiffeID: {type: Prefix, value: 'spiffe://other'}}]\n"
	"    default: {http: [{abort: {httpStatus: 500, percentage: '2.5'}},\n"
	"                     {delay: {value: 5s, percentage: 5}, responseBandwidth: {limit: 2Mbps, percentage: 50}}]}\n"
	"  - default: {http: [{abort: {httpStatus: 503, percentage: 100}}]}\n"
	"---\ntype: MeshRateLimit\nmesh: mesh-1\nname: limits\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n"
	"  - default: {local: {http: {requestRate: {num: 5, interval: 10s},\n"
	"                             onRateLimit: {status: 429, headers: {add: [{name: x-a, value: '1'}],\n"
	"                                                                 set: [{name: x-s, value: 'p,q'}]}}},\n"
	"                      tcp: {connectionRate: {num: 7, interval: 1s}}}}\n";

static struct km_json *inbound_listener(struct km_arena *a, bool http)
{
	if (!http)
		return json(a, "{\"filterChains\":[{\"filters\":[{\"name\":\"envoy.filters.network.tcp_proxy\","
			       "\"typedConfig\":{}}]}]}");
	return json(a, "{\"filterChains\":[{\"filters\":[{\"name\":\"envoy.filters.network.http_connection_manager\","
		       "\"typedConfig\":{\"httpFilters\":[{\"name\":\"envoy.filters.http.router\"}],\"routeConfig\":{"
		       "\"virtualHosts\":[{\"routes\":[{\"match\":{\"prefix\":\"/\"},\"route\":{\"cluster\":\"x\"}}]}]}}}]}]}");
}

static void test_inbound_plugins(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(INBOUND_WORLD, &a, &m, &pp, &rs);
	CHECK(m->ndataplanes == 1 && m->npolicies == 2);
	struct km_json *web = inbound_listener(a, true), *db = inbound_listener(a, false);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", web);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_5432", db);
	cp_policy_apply_prepared(&pp, &rs);
	struct km_json *hcm = cp_policy_chain_hcm(km_json_get(web, "filterChains")->items[0]);
	struct km_json *hf = km_json_get(hcm, "httpFilters");
	/* three faults (the matched rule's two wrapped in a matcher, the
	 * catch-all's plain), then the rate limit, then the router */
	CHECK(hf && hf->len == 5);
	if (!hf || hf->len != 5) {
		km_arena_free(a);
		return;
	}
	const char *kri = "kri_mfi_mesh-1_zone-uni__faults_";
	for (size_t i = 0; i < 3; i++)
		CHECK(km_str_eqc(km_json_get_string(hf->items[i], "name"), kri));
	CHECK_STREQ(compact(a, km_json_get(km_json_get(km_json_get(hf->items[0], "typedConfig"), "extensionConfig"),
				      "typedConfig")),
		    "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":"
		    "{\"httpStatus\":500,\"percentage\":{\"numerator\":250,\"denominator\":\"TEN_THOUSAND\"}}}");
	CHECK(strstr(compact(a, hf->items[0]), "\"notMatcher\":{\"singlePredicate\":{\"input\":{\"name\":"
					       "\"envoy.matching.inputs.uri_san\"") &&
	      strstr(compact(a, hf->items[0]), "\"valueMatch\":{\"prefix\":\"spiffe://other\"}"));
	CHECK(strstr(compact(a, hf->items[1]), "\"delay\":{\"fixedDelay\":\"5s\",\"percentage\":{\"numerator\":5}},"
					       "\"responseRateLimit\":{\"fixedLimit\":{\"limitKbps\":\"2000\"},"
					       "\"percentage\":{\"numerator\":50}}") != NULL);
	CHECK_STREQ(compact(a, km_json_get(hf->items[2], "typedConfig")),
		    "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\",\"abort\":"
		    "{\"httpStatus\":503,\"percentage\":{\"numerator\":100}}}");
	CHECK(strstr(compact(a, hf->items[3]), "\"envoy.filters.http.local_ratelimit\"") != NULL);
	CHECK(strstr(compact(a, hf->items[4]), "router") != NULL);
	/* the token bucket on the route; 429's name; a set value split at commas */
	struct km_json *route =
		km_json_get(km_json_get(km_json_get(hcm, "routeConfig"), "virtualHosts")->items[0], "routes")->items[0];
	char *pf = compact(a, km_json_get(route, "typedPerFilterConfig"));
	CHECK(strstr(pf, "\"tokenBucket\":{\"maxTokens\":5,\"tokensPerFill\":5,\"fillInterval\":\"10s\"}") &&
	      strstr(pf, "\"status\":{\"code\":\"TooManyRequests\"}") &&
	      strstr(pf, "{\"header\":{\"key\":\"x-a\",\"value\":\"1\"},\"appendAction\":\"APPEND_IF_EXISTS_OR_ADD\"},"
			 "{\"header\":{\"key\":\"x-s\",\"value\":\"p\"},\"appendAction\":\"OVERWRITE_IF_EXISTS_OR_ADD\"},"
			 "{\"header\":{\"key\":\"x-s\",\"value\":\"q\"},"));
	/* TCP: a connection limit first in the chain, no fault filter */
	struct km_json *tf = km_json_get(km_json_get(db, "filterChains")->items[0], "filters");
	CHECK(tf && tf->len == 2 && strstr(compact(a, tf->items[0]), "\"statPrefix\":\"tcp_rate_limit\",\"tokenBucket\":"
								      "{\"maxTokens\":7,\"tokensPerFill\":7,\"fillInterval\":\"1s\"}"));
	km_arena_free(a);
}

/* ---- MeshLoadBalancingStrategy ---- */

static const char LB_WORLD[] =
	"type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web, k8s.io/az: a}\n"
	"networking: {address: 10.0.0.1, inbound: [{port: 8080}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: backend\nspec: {ports: [{port: 80, appProtocol: http}]}\n"
	"---\ntype: MeshLoadBalancingStrategy\nmesh: mesh-1\nname: lb\nspec:\n  to:\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n"
	"    default:\n"
	"      loadBalancer: {type: RingHash, ringHash: {minRingSize: 64, maxRingSize: 1024, hashFunction: MurmurHash2}}\n"
	"      hashPolicies: [{type: Header, header: {name: x-user}, terminal: true}, {type: Connection,\n"
	"                     connection: {sourceIP: true}}]\n"
	"      localityAwareness:\n"
	"        localZone: {affinityTags: [{key: k8s.io/az}]}\n"
	"        crossZone:\n"
	"          failover: [{to: {type: Only, zones: [zone-2]}}]\n"
	"          failoverThreshold: {percentage: 50}\n";

static struct km_json *lb_endpoint(struct km_arena *a, const char *ip, const char *zone, const char *az)
{
	return json(a, km_arena_printf(a, "{\"endpoint\":{\"address\":{\"socketAddress\":{\"address\":\"%s\","
					  "\"portValue\":80}}},\"loadBalancingWeight\":1,\"metadata\":{\"filterMetadata\":"
					  "{\"envoy.lb\":{\"kuma.io/zone\":\"%s\",\"k8s.io/az\":\"%s\"}}}}",
				       ip, zone, az));
}

static void test_load_balancing(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(LB_WORLD, &a, &m, &pp, &rs);
	struct km_json *cl = json(a, "{\"name\":\"" BACKEND "\"}");
	struct km_json *cla = json(a, "{\"clusterName\":\"" BACKEND "\",\"endpoints\":[]}");
	struct km_json *loc = json(a, "{\"lbEndpoints\":[],\"locality\":{\"zone\":\"zone-uni\"}}");
	km_json_array_push(a, km_json_get(loc, "lbEndpoints"), lb_endpoint(a, "10.0.0.2", "zone-uni", "b"));
	km_json_array_push(a, km_json_get(loc, "lbEndpoints"), lb_endpoint(a, "10.0.0.3", "zone-uni", "a"));
	km_json_array_push(a, km_json_get(cla, "endpoints"), loc);
	struct km_json *remote = json(a, "{\"lbEndpoints\":[],\"locality\":{\"zone\":\"zone-2\"}}");
	km_json_array_push(a, km_json_get(remote, "lbEndpoints"), lb_endpoint(a, "10.1.0.1", "zone-2", "a"));
	km_json_array_push(a, km_json_get(cla, "endpoints"), remote);
	struct km_json *gone = json(a, "{\"lbEndpoints\":[],\"locality\":{\"zone\":\"zone-3\"}}");
	km_json_array_push(a, km_json_get(gone, "lbEndpoints"), lb_endpoint(a, "10.2.0.1", "zone-3", "a"));
	km_json_array_push(a, km_json_get(cla, "endpoints"), gone);
	struct km_json *l = json(
		a, "{\"filterChains\":[{\"filters\":[{\"name\":\"envoy.filters.network.http_connection_manager\","
		   "\"typedConfig\":{\"routeConfig\":{\"virtualHosts\":[{\"routes\":[{\"name\":\"r\",\"route\":{\"cluster\":\"x\"}}]}]}}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_CLUSTER], BACKEND, cl);
	km_json_set(a, rs.by_type[CP_XDS_ENDPOINT], BACKEND, cla);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], BACKEND, l);
	cp_policy_apply_prepared(&pp, &rs);
	CHECK_STREQ(compact(a, cl),
		    "{\"name\":\"" BACKEND "\",\"commonLbConfig\":{\"localityWeightedLbConfig\":{}},\"lbPolicy\":\"RING_HASH\","
		    "\"ringHashLbConfig\":{\"minimumRingSize\":\"64\",\"maximumRingSize\":\"1024\",\"hashFunction\":"
		    "\"MURMUR_HASH_2\"}}");
	CHECK(strstr(compact(a, l), "\"hashPolicy\":[{\"header\":{\"headerName\":\"x-user\"},\"terminal\":true},"
				    "{\"connectionProperties\":{\"sourceIp\":true}}]") != NULL);
	/* this proxy's az (a) first, weight 9; the rest of the zone weight 1;
	 * zone-2 at the failover rule's priority; zone-3 dropped; 100/50*100 */
	struct km_json *eps = km_json_get(cla, "endpoints");
	CHECK(eps && eps->len == 3);
	if (eps && eps->len == 3) {
		CHECK(strstr(compact(a, eps->items[0]), "\"locality\":{\"zone\":\"zone-2\"},\"priority\":1") != NULL);
		CHECK(strstr(compact(a, eps->items[1]), "10.0.0.2") &&
		      strstr(compact(a, eps->items[1]), "\"locality\":{\"zone\":\"zone-uni\"},\"loadBalancingWeight\":1"));
		CHECK(strstr(compact(a, eps->items[2]), "10.0.0.3") &&
		      strstr(compact(a, eps->items[2]), "\"locality\":{\"zone\":\"zone-uni\",\"subZone\":\"k8s.io/az=a\"},"
							"\"loadBalancingWeight\":9"));
	}
	CHECK(strstr(compact(a, cla), "\"policy\":{\"overprovisioningFactor\":200}") != NULL);
	/* the share key of an outbound holds this proxy's affinity values */
	struct km_buf k1 = KM_BUF_INIT, k2 = KM_BUF_INIT;
	CHECK(cp_policy_outbound_key(&pp, BACKEND, 1u << CP_XDS_ENDPOINT, &k1));
	km_json_set(a, m->dataplanes[0].labels, "k8s.io/az", km_json_cstring(a, "b"));
	struct cp_policy_prepared pp2;
	cp_policy_prepare(a, m, &m->dataplanes[0], NULL, &pp2);
	CHECK(cp_policy_outbound_key(&pp2, BACKEND, 1u << CP_XDS_ENDPOINT, &k2));
	CHECK(k1.len && (k1.len != k2.len || memcmp(k1.data, k2.data, k1.len) != 0));
	km_buf_fini(&k1);
	km_buf_fini(&k2);
	km_arena_free(a);
}

/* ---- MeshAccessLog ---- */

static void test_access_log(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup("type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {kuma.io/workload: web}\n"
		    "networking: {address: 10.0.0.1, inbound: [{port: 5432, protocol: tcp, name: db}]}\n"
		    "---\ntype: MeshAccessLog\nmesh: mesh-1\nname: logs\nspec:\n  targetRef: {kind: Mesh}\n  rules:\n"
		    "  - matches: [{spiffeID: {type: Exact, value: 'spiffe://x/\"q\"'}}]\n"
		    "    default: {backends: [{type: File, file: {path: /tmp/a.log}},\n"
		    "                         {type: Tcp, tcp: {address: '127.0.0.1:5000'}}]}\n"
		    "  - default: {backends: [{type: File, file: {path: /tmp/b.log, format: {type: Plain,\n"
		    "              plain: '%%KUMA_SOURCE_ADDRESS% %KUMA_DESTINATION_SERVICE% %KUMA_WORKLOAD%',\n"
		    "              omitEmptyValues: true}}}]}\n",
		     &a, &m, &pp, &rs);
	struct km_json *l = inbound_listener(a, false);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_db", l);
	cp_policy_apply_prepared(&pp, &rs);
	struct km_json *al =
		km_json_get(km_json_get(km_json_get(km_json_get(l, "filterChains")->items[0], "filters")->items[0],
					"typedConfig"),
			    "accessLog");
	/* the matched rule's logs have a CEL filter with the value quoted;
	 * the TCP default format; the Tcp backend writes {address, message}
	 * to kuma-dp's pipe (no work dir known here: a relative path) */
	CHECK(al && al->len == 3);
	if (al && al->len == 3) {
		char *first = compact(a, al->items[0]), *second = compact(a, al->items[2]);
		char *tcp = compact(a, al->items[1]);
		CHECK(strstr(tcp, "\"path\":\"kuma-al-web-1-mesh-1.sock\",\"logFormat\":{\"jsonFormat\":{\"address\":"
				  "\"127.0.0.1:5000\",\"message\":\"[%START_TIME%] %RESPONSE_FLAGS% mesh-1 10.0.0.1(unknown)") &&
		      strstr(tcp, "\\n\"}}") && strstr(tcp, "\"filter\":{\"extensionFilter\""));
		CHECK(strstr(first, "\"expression\":\"connection.uri_san_peer_certificate == "
				    "\\\"spiffe://x/\\\\\\\"q\\\\\\\"\\\"\"") != NULL);
		CHECK(strstr(first, "\"path\":\"/tmp/a.log\"") && strstr(first, "(unknown)-\\u003e%UPSTREAM_HOST%("
										  "kri_dp_mesh-1_zone-uni__web-1_db) took"));
		CHECK(strstr(second, "\"inlineString\":\"%10.0.0.1:0 kri_dp_mesh-1_zone-uni__web-1_db "
				     "kri_wl_mesh-1_zone-uni__web_\\n\"},\"omitEmptyValues\":true") != NULL);
	}
	km_arena_free(a);
}

/* ---- MeshTCPRoute ---- */

static const char TCP_WORLD[] =
	"type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web}\n"
	"networking: {address: 10.0.0.1, inbound: [{port: 8080}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: db\nspec: {ports: [{port: 5432, appProtocol: tcp}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: db-2\nspec: {ports: [{port: 5432, appProtocol: tcp}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: backend\nspec: {ports: [{port: 80, appProtocol: http}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: api\nspec: {ports: [{port: 80, appProtocol: http}]}\n"
	"---\ntype: MeshService\nmesh: mesh-1\nname: gone\nspec: {ports: [{port: 1, appProtocol: tcp}]}\n"
	"---\ntype: MeshTCPRoute\nmesh: mesh-1\nname: tcp\nspec:\n  to:\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: db}}\n"
	"    rules: [{default: {backendRefs: [{kind: MeshService, name: db, port: 5432, weight: 3},\n"
	"                                     {kind: MeshService, name: db-2, port: 5432, weight: 1}]}}]\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n"
	"    rules: [{default: {backendRefs: [{kind: MeshService, name: db-2, port: 5432}]}}]\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: api}}\n"
	"    rules: [{default: {backendRefs: [{kind: MeshService, name: db-2, port: 5432}]}}]\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: gone}}\n"
	"    rules: [{default: {backendRefs: [{kind: MeshService, name: nowhere, port: 1}]}}]\n"
	"---\ntype: MeshHTTPRoute\nmesh: mesh-1\nname: http\nspec:\n  to:\n"
	"  - targetRef: {kind: MeshService, labels: {kuma.io/display-name: api}}\n"
	"    rules: [{matches: [{path: {type: PathPrefix, value: /x}}], default: {}}]\n";

#define DB "kri_msvc_mesh-1_zone-uni__db_5432"
#define DB2 "kri_msvc_mesh-1_zone-uni__db-2_5432"

static struct km_json *outbound_listener(struct km_arena *a, const char *kri, bool http)
{
	if (!http)
		return json(a, km_arena_printf(a, "{\"filterChains\":[{\"filters\":[{\"name\":\"envoy.filters.network.tcp_proxy\","
						  "\"typedConfig\":{\"statPrefix\":\"%s\",\"cluster\":\"%s\"}}]}]}",
					       kri, kri));
	return json(a, km_arena_printf(a, "{\"filterChains\":[{\"filters\":[{\"name\":"
					  "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{\"routeConfig\":"
					  "{\"virtualHosts\":[{\"routes\":[{\"match\":{\"prefix\":\"/\"},\"name\":\"c\","
					  "\"route\":{\"cluster\":\"%s\"}}]}]}}}]}]}",
				       kri));
}

static void test_tcp_route(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(TCP_WORLD, &a, &m, &pp, &rs);
	const char *backend = "kri_msvc_mesh-1_zone-uni__backend_80", *api = "kri_msvc_mesh-1_zone-uni__api_80",
		   *gone = "kri_msvc_mesh-1_zone-uni__gone_1";
	struct km_json *db = outbound_listener(a, DB, false), *be = outbound_listener(a, backend, true),
		       *ap = outbound_listener(a, api, true);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], DB, db);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], backend, be);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], api, ap);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], gone, outbound_listener(a, gone, false));
	cp_policy_apply_prepared(&pp, &rs);
	/* a TCP destination split by weight */
	CHECK(strstr(compact(a, db), "\"weightedClusters\":{\"clusters\":[{\"name\":\"" DB "\",\"weight\":3},"
				     "{\"name\":\"" DB2 "\",\"weight\":1}]}") &&
	      !strstr(compact(a, db), "\"cluster\":"));
	/* an HTTP destination with no HTTP route: proxied as TCP */
	CHECK(strstr(compact(a, be), "{\"name\":\"envoy.filters.network.tcp_proxy\",\"typedConfig\":{\"@type\":"
				     "\"type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy\","
				     "\"statPrefix\":\"kri_msvc_mesh-1_zone-uni__backend_80\",\"idleTimeout\":\"3600s\","
				     "\"cluster\":\"" DB2 "\"}}") != NULL);
	/* with an HTTP route the MeshHTTPRoute wins */
	CHECK(strstr(compact(a, ap), "http_connection_manager") && strstr(compact(a, ap), "\"/x\"") &&
	      !strstr(compact(a, ap), DB2));
	/* nothing resolves: no listener */
	CHECK(km_json_get(rs.by_type[CP_XDS_LISTENER], gone) == NULL);
	/* the clusters the routes need */
	struct cp_policy_backend *bs;
	CHECK(cp_policy_route_backends(&pp, DB, &bs) == 1 && strcmp(bs[0].kri, DB2) == 0);
	CHECK(cp_policy_route_backends(&pp, backend, &bs) == 1 && strcmp(bs[0].kri, DB2) == 0);
	CHECK(cp_policy_route_backends(&pp, api, &bs) == 0);
	km_arena_free(a);
}

/* ---- MeshHealthCheck ---- */

static void test_health_check(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup("type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web, b: '2'}\n"
		    "networking: {address: 10.0.0.1, inbound: [{port: 8080}]}\n"
		    "---\ntype: MeshService\nmesh: mesh-1\nname: api\nspec: {ports: [{port: 80, appProtocol: http2}]}\n"
		    "---\ntype: MeshService\nmesh: mesh-1\nname: db\nspec: {ports: [{port: 5432, appProtocol: tcp}]}\n"
		    "---\ntype: MeshService\nmesh: mesh-1\nname: rpc\nspec: {ports: [{port: 9090, appProtocol: grpc}]}\n"
		    "---\ntype: MeshHealthCheck\nmesh: mesh-1\nname: hc\nspec:\n  to:\n"
		    "  - targetRef: {kind: Mesh}\n"
		    "    default:\n"
		    "      interval: 10s\n      failTrafficOnPanic: true\n"
		    "      http: {path: /health, expectedStatuses: [200, 204],\n"
		    "             requestHeadersToAdd: {set: [{name: x-a, value: 'p,q'}]}}\n"
		    "      tcp: {send: hi, receive: [ok]}\n"
		    "      grpc: {disabled: true}\n",
		     &a, &m, &pp, &rs);
	struct km_json *api = json(a, "{}"), *db = json(a, "{}"), *rpc = json(a, "{}");
	km_json_set(a, rs.by_type[CP_XDS_CLUSTER], "kri_msvc_mesh-1_zone-uni__api_80", api);
	km_json_set(a, rs.by_type[CP_XDS_CLUSTER], "kri_msvc_mesh-1_zone-uni__db_5432", db);
	km_json_set(a, rs.by_type[CP_XDS_CLUSTER], "kri_msvc_mesh-1_zone-uni__rpc_9090", rpc);
	cp_policy_apply_prepared(&pp, &rs);
	char *ja = compact(a, api), *jd = compact(a, db), *jr = compact(a, rpc);
	/* http2: HTTP check with the proxy's labels, headers split at commas */
	CHECK(strstr(ja, "\"commonLbConfig\":{\"zoneAwareLbConfig\":{\"failTrafficOnPanic\":true}}") &&
	      strstr(ja, "\"timeout\":\"15s\",\"interval\":\"10s\",\"unhealthyThreshold\":5,\"healthyThreshold\":1") &&
	      strstr(ja, "\"httpHealthCheck\":{\"path\":\"/health\",\"requestHeadersToAdd\":[{\"header\":{\"key\":"
			 "\"x-kuma-tags\",\"value\":\"\\u0026app=web\\u0026\\u0026b=2\\u0026") &&
	      strstr(ja, "{\"header\":{\"key\":\"x-a\",\"value\":\"q\"},\"appendAction\":\"OVERWRITE_IF_EXISTS_OR_ADD\"}") &&
	      strstr(ja, "\"expectedStatuses\":[{\"start\":\"200\",\"end\":\"201\"},{\"start\":\"204\",\"end\":\"205\"}],"
			 "\"codecClientType\":\"HTTP2\""));
	/* tcp: payloads in hex */
	CHECK(strstr(jd, "\"tcpHealthCheck\":{\"send\":{\"text\":\"6869\"},\"receive\":[{\"text\":\"6f6b\"}]}") != NULL);
	/* grpc disabled, tcp on: the TCP fallback */
	CHECK(strstr(jr, "\"tcpHealthCheck\"") && !strstr(jr, "grpcHealthCheck"));
	km_arena_free(a);
}

/* ---- MeshTrace ---- */

/* One Dataplane with an HTTP inbound. */
#define WEB_HTTP                                                                                   \
	"type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web}\n"                           \
	"networking: {address: 10.0.0.1, inbound: [{port: 8080, protocol: http}]}\n"

static void test_trace(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	/* upstream's inbound-outbound-zipkin case (meshtrace plugin goldens) */
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    tags:\n    - {name: app, literal: backend}\n    - {name: app_code, header: {name: app_code}}\n"
		     "    - {name: client_id, header: {name: client_id, default: none}}\n"
		     "    sampling: {overall: 10, client: 20, random: 50}\n"
		     "    backends:\n    - type: Zipkin\n      zipkin: {url: 'http://jaeger-collector.mesh-observability:9411/api/v2/spans',\n"
		     "               apiVersion: httpProto, traceId128bit: true}\n",
		     &a, &m, &pp, &rs);
	struct km_json *in = json(a, "{\"trafficDirection\":\"INBOUND\",\"filterChains\":[{\"filters\":[{\"name\":"
				     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	cp_policy_apply_prepared(&pp, &rs);
	const char *cluster = "system_meshtrace_zipkin_http---jaeger-collector-mesh-observability-9411-api-v2-spans";
	CHECK_STREQ(compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], cluster)),
		    km_arena_printf(a,
				    "{\"name\":\"%s\",\"connectTimeout\":\"5s\",\"loadAssignment\":{\"clusterName\":\"%s\","
				    "\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":{\"address\":{\"socketAddress\":{\"address\":"
				    "\"jaeger-collector.mesh-observability\",\"portValue\":9411}}}}]}]},\"type\":\"STRICT_DNS\","
				    "\"dnsLookupFamily\":\"V4_ONLY\"}",
				    cluster, cluster));
	char *tr = compact(a, in);
	CHECK(strstr(tr, "\"tracing\":{\"spawnUpstreamSpan\":false,\"overallSampling\":{\"value\":10},\"clientSampling\":"
			 "{\"value\":20},\"randomSampling\":{\"value\":50},\"customTags\":[{\"tag\":\"app\",\"literal\":"
			 "{\"value\":\"backend\"}},{\"tag\":\"app_code\",\"requestHeader\":{\"name\":\"app_code\"}},"
			 "{\"tag\":\"client_id\",\"requestHeader\":{\"name\":\"client_id\",\"defaultValue\":\"none\"}},"
			 "{\"tag\":\"kuma.mesh\",\"literal\":{\"value\":\"mesh-1\"}},{\"tag\":\"kuma.zone\",\"literal\":"
			 "{\"value\":\"zone-uni\"}}]") &&
	      strstr(tr, "\"collectorEndpoint\":\"/api/v2/spans\",\"collectorEndpointVersion\":\"HTTP_PROTO\","
			 "\"sharedSpanContext\":true,\"collectorHostname\":\"jaeger-collector.mesh-observability:9411\","
			 "\"traceId128bit\":true"));
	km_arena_free(a);
	/* datadog with split services: the outbound's name in it */
	plugin_setup("type: Dataplane\nmesh: mesh-1\nname: web-1\nlabels: {app: web}\n"
		     "networking: {address: 10.0.0.1, inbound: [{port: 8080}]}\n"
		     "---\ntype: MeshService\nmesh: mesh-1\nname: backend\nspec: {ports: [{port: 80, appProtocol: http}]}\n"
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    backends: [{type: Datadog, datadog: {url: 'http://ingest.datadog.eu:8126', splitService: true}}]\n",
		     &a, &m, &pp, &rs);
	struct km_json *out = outbound_listener(a, BACKEND, true);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], BACKEND, out);
	cp_policy_apply_prepared(&pp, &rs);
	CHECK(strstr(compact(a, out), "\"collectorCluster\":\"system_meshtrace_datadog_http---ingest-datadog-eu-8126\","
				      "\"serviceName\":\"unknown_OUTBOUND_" BACKEND "\"") != NULL);
	/* an outbound's set alone gets no collector cluster */
	CHECK(rs.by_type[CP_XDS_CLUSTER]->len == 0);
	km_arena_free(a);
}

/* ---- MeshMetric ---- */

static const char *sha256_hex(struct km_arena *a, const char *s)
{
	unsigned char d[32];
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), d, &n, EVP_sha256(), NULL);
	char *out = km_arena_alloc(a, 65);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	return out;
}

#define METRIC_DP                                                                                  \
	"type: Dataplane\nmesh: mesh-1\nname: backend\nlabels: {kuma.io/workload: backend}\n"          \
	"networking: {address: 192.168.0.1, inbound: [{port: 8080, tags: {kuma.io/service: backend}}]}\n"

static void test_metric(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	struct cp_xds_metadata md = {.workdir = KM_STR("/tmp")};
	/* upstream's "basic" plugin case: the JSON kuma-dp gets is written as
	 * Go writes it, so the ETag is upstream's for the same conf */
	plugin_setup(METRIC_DP "---\ntype: MeshMetric\nmesh: mesh-1\nname: mm\nspec:\n  targetRef: {kind: Mesh}\n"
			       "  default:\n    sidecar: {includeUnused: false}\n"
			       "    applications: [{port: 8080, path: /metrics}]\n"
			       "    backends: [{type: Prometheus, prometheus: {port: 5670, path: /metrics}}]\n",
		     &a, &m, &pp, &rs);
	pp.c.md = &md;
	pp.c.local = true;
	cp_policy_apply_prepared(&pp, &rs);
	const char *body = "{\"observability\":{\"metrics\":{\"applications\":[{\"path\":\"/metrics\",\"port\":8080,"
			   "\"address\":\"\"}],\"backends\":[{\"type\":\"Prometheus\",\"name\":null}],\"sidecar\":{"
			   "\"includeUnused\":false},\"extraLabels\":{\"kuma.proxy_role\":\"sidecar\",\"kuma.workload\":"
			   "\"backend\",\"mesh\":\"mesh-1\",\"zone\":\"zone-uni\"}}}}";
	const char *etag = sha256_hex(a, body);
	struct km_json *dyn = km_json_get(rs.by_type[CP_XDS_LISTENER], "system_dynamicconfig");
	CHECK(dyn != NULL);
	char *dyn_text = compact(a, dyn);
	CHECK(strstr(dyn_text, "\"address\":{\"pipe\":{\"path\":\"/tmp/kuma-mesh-metric-config.sock\"}}") != NULL);
	CHECK(strstr(dyn_text, km_arena_printf(a,
					       "\"routes\":[{\"name\":\"system_dynamicconfig_meshmetric_not_modified\","
					       "\"match\":{\"path\":\"/meshmetric\",\"headers\":[{\"name\":\"If-None-Match\","
					       "\"stringMatch\":{\"exact\":\"%s\"}}]},\"directResponse\":{\"status\":304}},"
					       "{\"name\":\"system_dynamicconfig_meshmetric\",\"match\":{\"path\":\"/meshmetric\"},"
					       "\"responseHeadersToAdd\":[{\"header\":{\"key\":\"Etag\",\"value\":\"%s\"}}],",
					       etag, etag)) != NULL);
	struct km_json *hcm = cp_policy_chain_hcm(km_json_get(dyn, "filterChains")->items[0]);
	struct km_json *rc = km_json_get(hcm, "routeConfig");
	const struct km_json *routes = km_json_get(km_json_get(rc, "virtualHosts")->items[0], "routes");
	CHECK(routes->len == 2);
	struct km_str got = km_json_get_string(km_json_get(km_json_get(routes->items[1], "directResponse"), "body"),
					       "inlineString");
	CHECK(km_str_eqc(got, body));
	CHECK(km_json_i64_sat(km_json_get(rc, "maxDirectResponseBodySizeBytes")) == (int64_t)strlen(body));
	const char *name = "system_meshmetric_prometheus_default-backend";
	CHECK_STREQ(compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], name)),
		    "{\"name\":\"system_meshmetric_prometheus_default-backend\",\"type\":\"STATIC\",\"connectTimeout\":"
		    "\"5s\",\"loadAssignment\":{\"clusterName\":\"system_meshmetric_prometheus_default-backend\","
		    "\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":{\"address\":{\"pipe\":{\"path\":"
		    "\"/tmp/kuma-mh-backend-mesh-1.sock\"}}}}]}]}}");
	char *l = compact(a, km_json_get(rs.by_type[CP_XDS_LISTENER], name));
	CHECK(strstr(l, "\"address\":{\"socketAddress\":{\"address\":\"192.168.0.1\",\"portValue\":5670}},"
			"\"enableReusePort\":false,") != NULL);
	CHECK(strstr(l, "\"routes\":[{\"match\":{\"prefix\":\"/metrics\"},\"route\":{\"cluster\":"
			"\"system_meshmetric_prometheus_default-backend\",\"prefixRewrite\":\"/meshmetric\"}}]") != NULL);
	CHECK(strstr(l, "transportSocket") == NULL && strstr(l, "\"trafficDirection\":\"INBOUND\"") != NULL);
	/* an outbound's resource set alone: nothing of the proxy's own */
	struct cp_xds_resources rs2;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		rs2.by_type[t] = km_json_object(a);
	pp.c.local = false;
	cp_policy_apply_prepared(&pp, &rs2);
	CHECK(rs2.by_type[CP_XDS_LISTENER]->len == 0 && rs2.by_type[CP_XDS_CLUSTER]->len == 0);
	km_arena_free(a);

	/* two backends, one named and on
	 * ProvidedTLS with kuma-dp's files: a TLS chain after one matching
	 * TLS; without the files the other stays plaintext. A long work dir:
	 * socket paths cut to fit. */
	char longdir[120];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = 0;
	struct cp_xds_metadata md2 = {.workdir = km_str_c(longdir),
				      .metrics_cert = KM_STR("/path/cert"),
				      .metrics_key = KM_STR("/path/key"),
				      .features = json(a = km_arena_new(0), "[\"feature-reuse-port\"]")};
	struct km_arena *keep = a;
	plugin_setup(METRIC_DP "---\ntype: MeshMetric\nmesh: mesh-1\nname: mm\nspec:\n  targetRef: {kind: Mesh}\n"
			       "  default:\n    backends:\n"
			       "    - {type: Prometheus, prometheus: {clientId: main-scraper, port: 5670, path: /m,"
			       " tls: {mode: ProvidedTLS}}}\n"
			       "    - {type: Prometheus, prometheus: {port: 5671, path: /metrics}}\n",
		     &a, &m, &pp, &rs);
	pp.c.md = &md2;
	pp.c.local = true;
	cp_policy_apply_prepared(&pp, &rs);
	CHECK(rs.by_type[CP_XDS_LISTENER]->len == 3 && rs.by_type[CP_XDS_CLUSTER]->len == 2);
	struct km_json *tl = km_json_get(rs.by_type[CP_XDS_LISTENER], "system_meshmetric_prometheus_main-scraper");
	CHECK(tl != NULL);
	const struct km_json *chains = km_json_get(tl, "filterChains");
	CHECK(chains && chains->len == 2);
	CHECK(strstr(compact(a, chains->items[0]), "\"filterChainMatch\":{\"transportProtocol\":\"tls\"}") != NULL &&
	      strstr(compact(a, chains->items[0]), "transportSocket") == NULL);
	CHECK(strstr(compact(a, chains->items[1]),
		     "\"tlsCertificates\":[{\"certificateChain\":{\"filename\":\"/path/cert\"},\"privateKey\":"
		     "{\"filename\":\"/path/key\"}}]") != NULL);
	CHECK(strstr(compact(a, tl), "\"enableReusePort\":true") != NULL);
	char *cl = compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], "system_meshmetric_prometheus_default-backend"));
	CHECK(strstr(cl, km_arena_printf(a, "\"path\":\"%.98s.sock\"", longdir)) != NULL);
	/* kuma-dp's JSON names one Prometheus backend whatever their number */
	CHECK(strstr(compact(a, km_json_get(rs.by_type[CP_XDS_LISTENER], "system_dynamicconfig")),
		     "\\\"backends\\\":[{\\\"type\\\":\\\"Prometheus\\\",\\\"name\\\":null}],\\\"extraLabels\\\"") != NULL);
	km_arena_free(a);
	km_arena_free(keep);

	/* a zone egress alone: its role, no workload, no applications */
	plugin_setup("type: Dataplane\nmesh: mesh-1\nname: ze\nlabels: {kuma.io/workload: x}\n"
		     "networking: {address: 10.0.0.9, listeners: [{type: ZoneEgress, address: 10.0.0.9, port: 10002}]}\n"
		     "---\ntype: MeshMetric\nmesh: mesh-1\nname: mm\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    applications: [{port: 8080, path: /metrics}]\n"
		     "    backends: [{type: Prometheus, prometheus: {port: 5670, path: /metrics}}]\n",
		     &a, &m, &pp, &rs);
	pp.c.md = &md;
	pp.c.local = true;
	cp_policy_apply_prepared(&pp, &rs);
	CHECK(strstr(compact(a, km_json_get(rs.by_type[CP_XDS_LISTENER], "system_dynamicconfig")),
		     "{\\\"observability\\\":{\\\"metrics\\\":{\\\"applications\\\":null,") != NULL);
	CHECK(strstr(compact(a, km_json_get(rs.by_type[CP_XDS_LISTENER], "system_dynamicconfig")),
		     "\\\"extraLabels\\\":{\\\"kuma.proxy_role\\\":\\\"zone-egress\\\",\\\"mesh\\\":\\\"mesh-1\\\"") != NULL);
	km_arena_free(a);
}

/* MeshTrace with an OpenTelemetry backend: the backendRef resolves to a
 * MeshOpenTelemetryBackend by labels (upstream's inbound-outbound-otel
 * shapes), gRPC with an HTTP/2 cluster, or OTLP/HTTP with the traces path. */
static void test_trace_otel(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshOpenTelemetryBackend\nmesh: mesh-1\nname: otel-collector\n"
		     "spec: {endpoint: {address: jaeger-collector.mesh-observability, port: 4317}}\n"
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend,"
		     " labels: {kuma.io/display-name: otel-collector}}}}]\n",
		     &a, &m, &pp, &rs);
	struct km_json *in = json(a, "{\"trafficDirection\":\"INBOUND\",\"filterChains\":[{\"filters\":[{\"name\":"
				     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	cp_policy_apply_prepared(&pp, &rs);
	CHECK_STREQ(compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], "system_meshtrace_otel_otel-collector")),
		    "{\"name\":\"system_meshtrace_otel_otel-collector\",\"connectTimeout\":\"5s\",\"loadAssignment\":{"
		    "\"clusterName\":\"system_meshtrace_otel_otel-collector\",\"endpoints\":[{\"lbEndpoints\":[{\"endpoint\":"
		    "{\"address\":{\"socketAddress\":{\"address\":\"jaeger-collector.mesh-observability\",\"portValue\":"
		    "4317}}}}]}]},\"type\":\"STRICT_DNS\",\"dnsLookupFamily\":\"V4_ONLY\",\"typedExtensionProtocolOptions\":"
		    "{\"envoy.extensions.upstreams.http.v3.HttpProtocolOptions\":{\"@type\":\"type.googleapis.com/envoy."
		    "extensions.upstreams.http.v3.HttpProtocolOptions\",\"explicitHttpConfig\":{\"http2ProtocolOptions\":"
		    "{}}}}}");
	CHECK(strstr(compact(a, in), "\"provider\":{\"name\":\"envoy.tracers.opentelemetry\",\"typedConfig\":{\"@type\":"
				     "\"type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig\",\"grpcService\":{"
				     "\"envoyGrpc\":{\"clusterName\":\"system_meshtrace_otel_otel-collector\"}},"
				     "\"serviceName\":\"unknown\"}}") != NULL);
	km_arena_free(a);
	/* OTLP/HTTP with a base path; a second, newer match loses */
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshOpenTelemetryBackend\nmesh: mesh-1\nname: otel-http\ncreationTime: 2026-01-01T00:00:00Z\n"
		     "labels: {team: obs}\n"
		     "spec: {protocol: http, endpoint: {address: 10.0.0.9, port: 4318, path: /otlp}}\n"
		     "---\ntype: MeshOpenTelemetryBackend\nmesh: mesh-1\nname: otel-newer\ncreationTime: 2026-02-01T00:00:00Z\n"
		     "labels: {team: obs}\nspec: {endpoint: {address: 10.0.0.10}}\n"
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend,"
		     " labels: {team: obs}}}}]\n",
		     &a, &m, &pp, &rs);
	in = json(a, "{\"trafficDirection\":\"INBOUND\",\"filterChains\":[{\"filters\":[{\"name\":"
		     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	cp_policy_apply_prepared(&pp, &rs);
	char *cl = compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], "system_meshtrace_otel_otel-http"));
	CHECK(strstr(cl, "\"address\":\"10.0.0.9\",\"portValue\":4318") && strstr(cl, "\"type\":\"STATIC\"") &&
	      !strstr(cl, "http2ProtocolOptions"));
	CHECK(strstr(compact(a, in), "\"httpService\":{\"httpUri\":{\"uri\":\"http://10.0.0.9:4318/otlp/v1/traces\","
				     "\"cluster\":\"system_meshtrace_otel_otel-http\",\"timeout\":\"10s\"}}") != NULL);
	km_arena_free(a);
	/* a backend without an address: the node's HOST_IP */
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshOpenTelemetryBackend\nmesh: mesh-1\nname: node-local\nspec: {endpoint: {port: 4317}}\n"
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend,"
		     " labels: {kuma.io/display-name: node-local}}}}]\n",
		     &a, &m, &pp, &rs);
	struct cp_xds_metadata md = {.host_ip = KM_STR("192.168.7.7")};
	pp.c.md = &md;
	pp.c.local = true;
	in = json(a, "{\"trafficDirection\":\"INBOUND\",\"filterChains\":[{\"filters\":[{\"name\":"
		     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	cp_policy_apply_prepared(&pp, &rs);
	CHECK(strstr(compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], "system_meshtrace_otel_node-local")),
		     "\"address\":\"192.168.7.7\",\"portValue\":4317") != NULL);
	km_arena_free(a);
	/* a reference nothing matches: no tracing, no cluster */
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshTrace\nmesh: mesh-1\nname: trace\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    backends: [{type: OpenTelemetry, openTelemetry: {backendRef: {kind: MeshOpenTelemetryBackend,"
		     " labels: {team: nobody}}}}]\n",
		     &a, &m, &pp, &rs);
	in = json(a, "{\"trafficDirection\":\"INBOUND\",\"filterChains\":[{\"filters\":[{\"name\":"
		     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	cp_policy_apply_prepared(&pp, &rs);
	CHECK(rs.by_type[CP_XDS_CLUSTER]->len == 0 && strstr(compact(a, in), "tracing") == NULL);
	km_arena_free(a);
}

/* ---- MeshProxyPatch ---- */

static void test_proxy_patch(void)
{
	struct km_arena *a;
	struct cp_xds_mesh *m;
	struct cp_policy_prepared pp;
	struct cp_xds_resources rs;
	plugin_setup(WEB_HTTP
		     "---\ntype: MeshService\nmesh: mesh-1\nname: backend\nspec: {ports: [{port: 80, appProtocol: http}]}\n"
		     "---\ntype: MeshProxyPatch\nmesh: mesh-1\nname: patch\nspec:\n  targetRef: {kind: Mesh}\n  default:\n"
		     "    appendModifications:\n"
		     "    - cluster: {operation: Patch, match: {origin: outbound}, value: 'connectTimeout: 9s'}\n"
		     "    - cluster:\n        operation: Add\n        value: |\n          name: extra\n          type: STATIC\n"
		     "          connect_timeout: 1s\n"
		     "    - cluster: {operation: Patch, match: {name: extra},\n"
		     "                jsonPatches: [{op: replace, path: /connectTimeout, value: 2s}]}\n"
		     "    - cluster: {operation: Patch, match: {name: extra}, jsonPatches: [{op: remove, path: /nope}]}\n"
		     "    - cluster: {operation: Patch, match: {name: extra}, jsonPatches: [{op: add, path: /bogus, value: 1}]}\n"
		     "    - listener: {operation: Patch, match: {origin: inbound},\n"
		     "                 jsonPatches: [{op: replace, path: /statPrefix, value: patched}]}\n"
		     "    - httpFilter:\n        operation: AddBefore\n        match: {name: envoy.filters.http.router}\n"
		     "        value: |\n          name: envoy.filters.http.lua\n          typedConfig:\n"
		     "            '@type': type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\n"
		     "            defaultSourceCode: {inlineString: 'function envoy_on_request(h) end'}\n"
		     "    - virtualHost: {operation: Patch, match: {origin: outbound}, value: 'domains: [x.local]'}\n"
		     "    - listener: {operation: Remove, match: {name: gone}}\n",
		     &a, &m, &pp, &rs);
	struct km_json *cl = json(a, "{\"name\":\"" BACKEND "\",\"connectTimeout\":\"5s\"}");
	km_json_set(a, rs.by_type[CP_XDS_CLUSTER], BACKEND, cl);
	/* listeners that are valid messages: a modification whose result is
	 * none is undone */
#define HCM_AT "\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3." \
	       "HttpConnectionManager\""
#define ROUTER "{\"name\":\"envoy.filters.http.router\",\"typedConfig\":{\"@type\":\"type.googleapis.com/" \
	       "envoy.extensions.filters.http.router.v3.Router\"}}"
	struct km_json *out = json(a, "{\"filterChains\":[{\"filters\":[{\"name\":"
				      "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{" HCM_AT
				      ",\"statPrefix\":\"out\",\"httpFilters\":[" ROUTER "],\"routeConfig\":"
				      "{\"virtualHosts\":[{\"name\":\"b\",\"routes\":[{\"match\":{\"prefix\":\"/\"},"
				      "\"route\":{\"cluster\":\"" BACKEND "\"}}]}]}}}]}]}");
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], BACKEND, out);
	struct km_json *in = json(a, "{\"statPrefix\":\"in\",\"filterChains\":[{\"filters\":[{\"name\":"
				     "\"envoy.filters.network.http_connection_manager\",\"typedConfig\":{" HCM_AT
				     ",\"statPrefix\":\"in\",\"httpFilters\":[" ROUTER "]}}]}]}");
#undef HCM_AT
#undef ROUTER
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080", in);
	km_json_set(a, rs.by_type[CP_XDS_LISTENER], "gone", json(a, "{}"));
	cp_policy_apply_prepared(&pp, &rs);
	/* a value merged into every outbound cluster (an undone modification
	 * restores the resources from a copy: look them up again) */
	cl = km_json_get(rs.by_type[CP_XDS_CLUSTER], BACKEND);
	out = km_json_get(rs.by_type[CP_XDS_LISTENER], BACKEND);
	CHECK_STREQ(compact(a, cl), "{\"name\":\"" BACKEND "\",\"connectTimeout\":\"9s\"}");
	/* an added cluster (snake_case read through the schema), then patched;
	 * a patch that does not apply, or leaves no valid Cluster, is undone */
	CHECK_STREQ(compact(a, km_json_get(rs.by_type[CP_XDS_CLUSTER], "extra")),
		    "{\"name\":\"extra\",\"type\":\"STATIC\",\"connectTimeout\":\"2s\"}");
	/* a JSON patch gives the resource a new tree */
	in = km_json_get(rs.by_type[CP_XDS_LISTENER], "self_inbound_dp_8080");
	CHECK(strstr(compact(a, in), "\"statPrefix\":\"patched\"") &&
	      strstr(compact(a, in), "\"httpFilters\":[{\"name\":\"envoy.filters.http.lua\""));
	/* repeated fields are appended */
	CHECK(strstr(compact(a, out), "\"domains\":[\"x.local\"]") != NULL);
	CHECK(km_json_get(rs.by_type[CP_XDS_LISTENER], "gone") == NULL);
	km_arena_free(a);
}

int main(void)
{
	test_proxy_patch();
	test_trace();
	test_trace_otel();
	test_metric();
	test_health_check();
	test_tcp_route();
	test_access_log();
	test_load_balancing();
	test_inbound_plugins();
	test_meshhttproute();
	test_may_affect();
	test_merge();
	test_durations();
	test_inbound_rules();
	test_to_rules();
	test_dataplane_policies_goldens();
	return test_summary();
}
