/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/pki/pki.c on the memory store: the MeshIdentity controller
 * (CA Secrets owned by the identity, MeshTrust, status conditions with
 * upstream's reasons, provided CAs and their errors) and the leaf API (best
 * match, readiness, caching, rotation at 4/5 of the lifetime, trust bundle,
 * issuance deferred to another thread). */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "base/err.h"
#include "codec/jsonf.h"
#include "cp/manager.h"
#include "cp/pki/pki.h"

#define NS 1000000000LL

static struct cp_config cfg;
static struct cp_runtime rt;
static struct cp_events bus;
static struct cp_pki *pki;
static int64_t fake_now;

static int64_t clock_fn(void)
{
	return fake_now;
}

static struct km_json *js(struct km_arena *a, const char *text)
{
	struct km_json *j = NULL;
	CHECK(km_json_parse(a, text, strlen(text), &j, NULL) == 0);
	return j;
}

static int create(struct km_arena *a, const char *type, const char *mesh, const char *name, const char *labels,
		  const char *spec)
{
	struct km_resource_doc d = {.type = km_rtype_by_name(km_str_c(type)), .mesh = km_str_c(mesh),
				    .name = km_str_c(name), .labels = labels ? js(a, labels) : NULL,
				    .spec = js(a, spec)};
	struct km_violations v;
	km_violations_init(&v, a);
	int rc = cp_manager_create(&rt, a, &d, &v);
	for (size_t i = 0; i < v.len; i++)
		fprintf(stderr, "violation %s: %s\n", v.items[i].field, v.items[i].message);
	return rc;
}

static void put_secret(struct km_arena *a, const char *mesh, const char *name, const char *data)
{
	struct km_buf b = KM_BUF_INIT;
	cp_pki_base64_encode(&b, data, strlen(data));
	const char *spec = km_arena_printf(a, "{\"data\":\"%s\"}", km_buf_cstr(&b));
	km_buf_fini(&b);
	struct km_resource cur;
	if (cp_store_get(rt.store, a, km_rtype_by_name(KM_STR("Secret")), km_str_c(mesh), km_str_c(name), &cur) == 0)
		cp_store_remove(rt.store, cur.type, cur.mesh, cur.name, 0);
	CHECK(create(a, "Secret", mesh, name, NULL, spec) == 0);
}

static bool get(struct km_arena *a, const char *type, const char *mesh, const char *name, struct km_resource *r)
{
	return cp_store_get(rt.store, a, km_rtype_by_name(km_str_c(type)), km_str_c(mesh), km_str_c(name), r) == 0;
}

/* "<type>=<status>/<reason>: <message>" for every condition, joined by "|". */
static const char *conditions(struct km_arena *a, const char *mesh, const char *name)
{
	struct km_resource r;
	if (!get(a, "MeshIdentity", mesh, name, &r))
		return "(missing)";
	struct km_json *st = NULL;
	if (!r.status.len || km_json_parse(a, r.status.ptr, r.status.len, &st, NULL))
		return "(no status)";
	struct km_json *c = km_json_get(st, "conditions");
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; c && i < c->len; i++)
		km_buf_printf(&b, "%s%.*s=%.*s/%.*s: %.*s", i ? "|" : "",
			      KM_STR_FMT(km_json_get_string(c->items[i], "type")),
			      KM_STR_FMT(km_json_get_string(c->items[i], "status")),
			      KM_STR_FMT(km_json_get_string(c->items[i], "reason")),
			      KM_STR_FMT(km_json_get_string(c->items[i], "message")));
	const char *res = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return res;
}

static const char *ready_conds =
    "Provider=True/ProviderInitialized: Provider successfully initialized|MeshTrustCreated=True/MeshTrustCreated: "
    "MeshTrust has been successfully created|Ready=True/Ready: Successfully initialized";

static const char *identity_spec(struct km_arena *a, const char *extra_bundled, const char *selector)
{
	return km_arena_printf(a,
			       "{\"selector\":{\"dataplane\":{\"matchLabels\":%s}},\"provider\":{\"type\":\"Bundled\","
			       "\"bundled\":{\"meshTrustCreation\":\"Enabled\",%s}}}",
			       selector, extra_bundled);
}

static void *run_issue(void *issue)
{
	cp_pki_issue_run(issue);
	return NULL;
}

static void test_autogenerate(struct km_arena *a)
{
	CHECK(create(a, "MeshIdentity", "default", "identity", NULL,
		     identity_spec(a, "\"insecureAllowSelfSigned\":true,\"autogenerate\":{\"enabled\":true},"
				      "\"certificateParameters\":{\"expiry\":\"10h\"}", "{}")) == 0);
	/* before the controller ran: the identity applies but is not ready */
	struct cp_pki_leaf leaf;
	struct km_json *labels = js(a, "{\"kuma.io/workload\":\"backend\",\"app\":\"web\"}");
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), labels, &leaf) == -EAGAIN);
	CHECK_STREQ(leaf.error, "identity hasn't been initialized yet");
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "default", "identity"), ready_conds);
	/* the CA Secrets, owned by the identity */
	struct km_resource ca, key, trust;
	CHECK(get(a, "Secret", "default", "identity-root-ca", &ca));
	CHECK(get(a, "Secret", "default", "identity-private-key", &key));
	CHECK(km_str_eqc(ca.owner_type, "MeshIdentity") && km_str_eqc(ca.owner_name, "identity"));
	CHECK(km_str_eqc(key.owner_type, "MeshIdentity") && km_str_eqc(key.owner_name, "identity"));
	/* the MeshTrust with the CA, its trust domain and origin */
	CHECK(get(a, "MeshTrust", "default", "identity", &trust));
	struct km_json *tspec = js(a, km_arena_strndup(a, trust.spec.ptr, trust.spec.len));
	struct km_json *tstatus = js(a, km_arena_strndup(a, trust.status.ptr, trust.status.len));
	CHECK(km_str_eqc(km_json_get_string(tspec, "trustDomain"), "default.zone-1.mesh.local"));
	CHECK_STREQ(km_arena_strndup(a, km_json_get_string(km_json_get(tstatus, "origin"), "kri").ptr,
				     km_json_get_string(km_json_get(tstatus, "origin"), "kri").len),
		    "kri_mid_default_zone-1__identity_");
	struct km_json *bundles = km_json_get(tspec, "caBundles");
	CHECK(bundles && bundles->len == 1);
	/* a second pass writes nothing */
	struct km_resource before, after;
	get(a, "MeshIdentity", "default", "identity", &before);
	cp_pki_reconcile_all(pki);
	get(a, "MeshIdentity", "default", "identity", &after);
	CHECK(before.version == after.version);
	get(a, "MeshTrust", "default", "identity", &after);
	CHECK(after.version == trust.version);

	/* a leaf */
	fake_now = 1800000000LL * NS;
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), labels, &leaf) == 0);
	CHECK_STREQ(leaf.secret_name, "kri_mid_default_zone-1__identity_");
	CHECK_STREQ(leaf.identity_kri, "kri_mid_default_zone-1__identity_");
	CHECK_STREQ(leaf.spiffe_id, "spiffe://default.zone-1.mesh.local/workload/backend");
	CHECK_STREQ(leaf.trust_domain, "default.zone-1.mesh.local");
	CHECK_STREQ(leaf.key_type, "RSA-2048");
	CHECK(leaf.issued_now && leaf.cert_pem && leaf.key_pem);
	CHECK(leaf.issued_at_ns == fake_now);
	CHECK(leaf.not_after_ns == fake_now + 10 * 3600 * NS);
	CHECK(leaf.renew_at_ns == fake_now + 8 * 3600 * NS);
	uint64_t issued = cp_pki_issued(pki);
	/* cached until 4/5 of the lifetime */
	fake_now += 8 * 3600 * NS - 1;
	struct cp_pki_leaf again;
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), labels, &again) == 0);
	CHECK(!again.issued_now && strcmp(again.cert_pem, leaf.cert_pem) == 0 && cp_pki_issued(pki) == issued);
	fake_now += 1;
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), labels, &again) == 0);
	CHECK(again.issued_now && strcmp(again.cert_pem, leaf.cert_pem) != 0 && cp_pki_issued(pki) == issued + 1);
	CHECK(again.renew_at_ns == fake_now + 8 * 3600 * NS);
	/* a status-only write of the identity does not reissue */
	cp_pki_reconcile_all(pki);
	struct cp_pki_leaf third;
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), labels, &third) == 0);
	CHECK(!third.issued_now);
	/* a label change that changes the SPIFFE ID does */
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"),
			  js(a, "{\"kuma.io/workload\":\"other\"}"), &third) == 0);
	CHECK(third.issued_now);
	CHECK_STREQ(third.spiffe_id, "spiffe://default.zone-1.mesh.local/workload/other");
	/* a certificate due during a pass of the builder thread: decided here,
	 * signed on another thread, kept when finished back here; the mesh's
	 * caches dropped meanwhile (a Secret written) keep its CA until then */
	struct km_json *other = js(a, "{\"kuma.io/workload\":\"other\"}");
	fake_now += 8 * 3600 * NS;
	uint64_t before_deferred = cp_pki_issued(pki);
	struct cp_pki_issue *issue = NULL;
	struct cp_pki_leaf dl;
	CHECK(cp_pki_leaf_deferred(pki, a, KM_STR("default"), KM_STR("dp-1"), other, &dl, &issue) == -EINPROGRESS);
	CHECK(issue && !dl.cert_pem && !dl.key_pem);
	CHECK_STREQ(dl.spiffe_id, "spiffe://default.zone-1.mesh.local/workload/other");
	CHECK(create(a, "Secret", "default", "unrelated", NULL, "{\"data\":\"YQ==\"}") == 0);
	pthread_t th;
	CHECK(pthread_create(&th, NULL, run_issue, issue) == 0);
	pthread_join(th, NULL);
	CHECK(cp_pki_issue_cert(issue) && cp_pki_issue_key(issue));
	CHECK(cp_pki_issue_finish(pki, issue, a, &dl) == 0);
	CHECK(dl.issued_now && dl.cert_pem && dl.key_pem && dl.issued_at_ns == fake_now);
	CHECK(cp_pki_issued(pki) == before_deferred + 1);
	struct cp_pki_leaf kept;
	CHECK(cp_pki_leaf(pki, a, KM_STR("default"), KM_STR("dp-1"), other, &kept) == 0);
	CHECK(!kept.issued_now && strcmp(kept.cert_pem, dl.cert_pem) == 0);
	/* each leaf carries the hash generation fingerprints instead of its
	 * PEMs: the same as the builder thread computes of what it signed */
	CHECK(dl.pem_fp && dl.pem_fp == cp_pki_pem_fp(dl.cert_pem, dl.key_pem));
	CHECK(kept.pem_fp == dl.pem_fp && third.pem_fp != dl.pem_fp);
	CHECK(third.pem_fp == cp_pki_pem_fp(third.cert_pem, third.key_pem));
	/* one never run or finished is dropped */
	fake_now += 8 * 3600 * NS;
	CHECK(cp_pki_leaf_deferred(pki, a, KM_STR("default"), KM_STR("dp-1"), other, &dl, &issue) == -EINPROGRESS);
	cp_pki_issue_free(issue);
	CHECK(cp_pki_issued(pki) == before_deferred + 1);
	/* the leaf verifies against the trust bundle */
	const char *pem = NULL;
	struct km_json *tds = NULL;
	CHECK(cp_pki_trust_bundle(pki, a, KM_STR("default"), &pem, &tds) == 0);
	CHECK(tds && tds->len == 1 && km_str_eqc(tds->members[0].key, "default.zone-1.mesh.local"));
	CHECK(cp_pki_trust_fp(pki, KM_STR("default")) != 0);
	BIO *b1 = BIO_new_mem_buf(pem, -1), *b2 = BIO_new_mem_buf(third.cert_pem, -1);
	X509 *cax = PEM_read_bio_X509(b1, NULL, NULL, NULL), *lx = PEM_read_bio_X509(b2, NULL, NULL, NULL);
	CHECK(cax && lx && X509_verify(lx, X509_get0_pubkey(cax)) == 1);
	X509_free(cax);
	X509_free(lx);
	BIO_free(b1);
	BIO_free(b2);
	struct km_json *kris = NULL;
	CHECK(cp_pki_trust_kris(pki, a, KM_STR("default"), &kris) == 0);
	CHECK(kris && kris->len == 1 && km_str_eqc(kris->items[0]->s, "kri_mtrust_default_zone-1__identity_"));
	/* no identity: not found */
	CHECK(cp_pki_leaf(pki, a, KM_STR("other"), KM_STR("dp-1"), labels, &leaf) == -KM_E_NOT_FOUND);
}

static void test_not_self_signed_allowed(struct km_arena *a)
{
	CHECK(create(a, "MeshIdentity", "default", "strict", NULL,
		     identity_spec(a, "\"autogenerate\":{\"enabled\":true}", "{\"never\":\"x\"}")) == 0);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "default", "strict"),
		    "Provider=False/ProviderValidationError: self-signed certificates are not allowed|"
		    "Ready=False/Failure: One of initialization steps failed");
	struct km_resource r;
	CHECK(get(a, "Secret", "default", "strict-root-ca", &r)); /* initialized before validation, as upstream */
	CHECK(!get(a, "MeshTrust", "default", "strict", &r));
	/* deleting the identity deletes its CA */
	CHECK(cp_store_remove(rt.store, km_rtype_by_name(KM_STR("MeshIdentity")), KM_STR("default"), KM_STR("strict"),
			      0) == 0);
	CHECK(!get(a, "Secret", "default", "strict-root-ca", &r));
	CHECK(!get(a, "Secret", "default", "strict-private-key", &r));
}

static void test_provided(struct km_arena *a)
{
	CHECK(create(a, "Mesh", "", "prov", NULL, "{}") == 0);
	struct km_buf cert = KM_BUF_INIT, key = KM_BUF_INIT, cert2 = KM_BUF_INIT, key2 = KM_BUF_INIT,
		      err = KM_BUF_INIT;
	CHECK(cp_pki_x509_ca_generate(CP_PKI_KEY_EC_P256, "prov.example", km_time_now(), &cert, &key, &err) == 0);
	CHECK(cp_pki_x509_ca_generate(CP_PKI_KEY_EC_P256, "prov.example", km_time_now(), &cert2, &key2, &err) == 0);
	put_secret(a, "prov", "my-ca-cert", km_buf_cstr(&cert));
	put_secret(a, "prov", "my-ca-key", km_buf_cstr(&key));
	const char *ca_src = "\"ca\":{\"certificate\":{\"type\":\"Secret\",\"secretRef\":{\"kind\":\"Secret\","
			     "\"name\":\"my-ca-cert\"}},\"privateKey\":{\"type\":\"Secret\",\"secretRef\":{\"kind\":"
			     "\"Secret\",\"name\":\"my-ca-key\"}}}";
	CHECK(create(a, "MeshIdentity", "prov", "provided", NULL,
		     identity_spec(a, km_arena_printf(a, "\"insecureAllowSelfSigned\":true,%s", ca_src), "{}")) == 0);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "provided"), ready_conds);
	struct km_resource r;
	CHECK(!get(a, "Secret", "prov", "provided-root-ca", &r)); /* nothing generated */
	CHECK(get(a, "MeshTrust", "prov", "provided", &r));
	struct cp_pki_leaf leaf;
	CHECK(cp_pki_leaf(pki, a, KM_STR("prov"), KM_STR("dp"), js(a, "{\"kuma.io/workload\":\"w\"}"), &leaf) == 0);
	CHECK_STREQ(leaf.key_type, "ECDSA-P256");
	CHECK_STREQ(leaf.spiffe_id, "spiffe://prov.zone-1.mesh.local/workload/w");
	CHECK(strstr(leaf.key_pem, "BEGIN EC PRIVATE KEY") != NULL);
	uint64_t trust_fp = cp_pki_trust_fp(pki, KM_STR("prov"));
	CHECK(trust_fp != 0);
	CHECK(leaf.not_after_ns - leaf.issued_at_ns <= 5 * 24 * 3600 * NS &&
	      leaf.not_after_ns - leaf.issued_at_ns > 5 * 24 * 3600 * NS - NS); /* default 120h */
	/* the CA changes: MeshTrust gets the new CA too, and leaves are reissued */
	put_secret(a, "prov", "my-ca-cert", km_buf_cstr(&cert2));
	put_secret(a, "prov", "my-ca-key", km_buf_cstr(&key2));
	cp_pki_reconcile_all(pki);
	CHECK(get(a, "MeshTrust", "prov", "provided", &r));
	struct km_json *spec = js(a, km_arena_strndup(a, r.spec.ptr, r.spec.len));
	CHECK(km_json_get(spec, "caBundles")->len == 2);
	/* generation's hash of the trust domains moves with them */
	CHECK(cp_pki_trust_fp(pki, KM_STR("prov")) != 0 && cp_pki_trust_fp(pki, KM_STR("prov")) != trust_fp);
	struct cp_pki_leaf leaf2;
	CHECK(cp_pki_leaf(pki, a, KM_STR("prov"), KM_STR("dp"), js(a, "{\"kuma.io/workload\":\"w\"}"), &leaf2) == 0);
	CHECK(leaf2.issued_now);
	/* malformed, mismatched, missing: reported in status, never a crash */
	put_secret(a, "prov", "my-ca-cert", "garbage");
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "provided"),
		    "Provider=False/ProviderValidationError: cert: not a valid TLS key pair: tls: failed to find "
		    "any PEM data in certificate input|Ready=False/Failure: One of initialization steps failed");
	put_secret(a, "prov", "my-ca-cert", km_buf_cstr(&cert));
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "provided"),
		    "Provider=False/ProviderValidationError: cert: not a valid TLS key pair: tls: private key does "
		    "not match public key|Ready=False/Failure: One of initialization steps failed");
	CHECK(cp_pki_leaf(pki, a, KM_STR("prov"), KM_STR("dp"), js(a, "{\"kuma.io/workload\":\"w\"}"), &leaf2) ==
	      -EAGAIN);
	cp_store_remove(rt.store, km_rtype_by_name(KM_STR("Secret")), KM_STR("prov"), KM_STR("my-ca-key"), 0);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "provided"),
		    "Provider=False/ProviderValidationError: resource not found: type=\"Secret\" name=\"my-ca-key\" "
		    "mesh=\"prov\"|Ready=False/Failure: One of initialization steps failed");
	/* self-signed without the opt-in */
	put_secret(a, "prov", "my-ca-key", km_buf_cstr(&key));
	CHECK(create(a, "MeshIdentity", "prov", "provided-strict", NULL,
		     identity_spec(a, ca_src, "{\"x\":\"y\"}")) == 0);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "provided-strict"),
		    "Provider=False/ProviderValidationError: self-signed certificates are not allowed|"
		    "Ready=False/Failure: One of initialization steps failed");
	/* inline sources and a CA that is not a CA */
	const char *inline_src = km_arena_printf(
	    a, "\"insecureAllowSelfSigned\":true,\"ca\":{\"certificate\":{\"type\":\"InsecureInline\","
	       "\"insecureInline\":{\"value\":%s}},\"privateKey\":{\"type\":\"EnvVar\",\"envVar\":{\"name\":"
	       "\"KM_PKI_TEST_KEY\"}}}",
	    "\"x\"");
	CHECK(create(a, "MeshIdentity", "prov", "inline", NULL, identity_spec(a, inline_src, "{\"x\":\"z\"}")) == 0);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "prov", "inline"),
		    "Provider=False/ProviderValidationError: environment variable: KM_PKI_TEST_KEY is not defined|"
		    "Ready=False/Failure: One of initialization steps failed");
	km_buf_fini(&cert);
	km_buf_fini(&key);
	km_buf_fini(&cert2);
	km_buf_fini(&key2);
	km_buf_fini(&err);
}

static void test_other_providers(struct km_arena *a)
{
	CHECK(create(a, "Mesh", "", "misc", NULL, "{}") == 0);
	CHECK(create(a, "MeshIdentity", "misc", "spiffe-only", NULL, "{\"selector\":{}}") == 0);
	CHECK(create(a, "MeshIdentity", "misc", "spire", NULL,
		     "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"app\":\"spire\"}}},\"provider\":{\"type\":"
		     "\"Spire\",\"spire\":{}}}") == 0);
	CHECK(create(a, "MeshIdentity", "misc", "ext", NULL,
		     "{\"provider\":{\"type\":\"Extension\",\"extension\":{\"name\":\"acm\"}}}") == 0);
	CHECK(create(a, "MeshIdentity", "misc", "no-trust", NULL,
		     "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"app\":\"nt\"}}},\"provider\":{\"type\":"
		     "\"Bundled\",\"bundled\":{\"meshTrustCreation\":\"Disabled\",\"insecureAllowSelfSigned\":true,"
		     "\"autogenerate\":{\"enabled\":true}}}}") == 0);
	cp_pki_set_autogen_key(pki, CP_PKI_KEY_EC_P256);
	cp_pki_reconcile_all(pki);
	CHECK_STREQ(conditions(a, "misc", "spiffe-only"),
		    "SpiffeIDProvider=True/SpiffeIDProvided: Providing only SpiffeIDs for services.|"
		    "Ready=False/PartiallyReady: Running in SpiffeID providing only mode.");
	CHECK_STREQ(conditions(a, "misc", "spire"),
		    "Provider=True/ProviderInitialized: Provider successfully initialized|Ready=True/Ready: "
		    "Successfully initialized");
	CHECK_STREQ(conditions(a, "misc", "ext"),
		    "Provider=False/ProviderInitializationError: unknown extension \"acm\", registered: []|"
		    "Ready=False/Failure: One of initialization steps failed");
	CHECK_STREQ(conditions(a, "misc", "no-trust"),
		    "Provider=True/ProviderInitialized: Provider successfully initialized|Ready=True/Ready: "
		    "Successfully initialized");
	struct km_resource r;
	CHECK(!get(a, "MeshTrust", "misc", "no-trust", &r));
	/* best match: the more specific selector wins */
	struct cp_pki_leaf leaf;
	CHECK(cp_pki_leaf(pki, a, KM_STR("misc"), KM_STR("dp"), js(a, "{\"app\":\"nt\",\"kuma.io/workload\":\"a\"}"),
			  &leaf) == 0);
	CHECK_STREQ(leaf.identity_name, "no-trust");
	CHECK_STREQ(leaf.key_type, "ECDSA-P256");
	CHECK(cp_pki_leaf(pki, a, KM_STR("misc"), KM_STR("dp2"),
			  js(a, "{\"app\":\"spire\",\"kuma.io/workload\":\"a\"}"), &leaf) == 0);
	CHECK(leaf.external && !leaf.cert_pem);
	CHECK_STREQ(leaf.spiffe_id, "spiffe://misc.zone-1.mesh.local/workload/a");
	/* the trust bundle of a mesh without MeshTrust is empty */
	const char *pem = NULL;
	CHECK(cp_pki_trust_bundle(pki, a, KM_STR("misc"), &pem, NULL) == 0);
	CHECK_STREQ(pem, "");
}

int main(void)
{
	cp_config_init_defaults(&cfg);
	rt.store = cp_store_memory_new();
	rt.cfg = &cfg;
	rt.zone = "zone-1";
	cp_events_attach(&bus, rt.store);
	pki = cp_pki_start(&rt, &bus);
	cp_pki_set_clock(pki, clock_fn);
	fake_now = km_time_now();
	cp_pki_set_active(pki, true);
	struct km_arena *a = km_arena_new(0);
	CHECK(create(a, "Mesh", "", "default", NULL, "{}") == 0);
	CHECK(create(a, "Mesh", "", "other", NULL, "{}") == 0);
	test_autogenerate(a);
	test_not_self_signed_allowed(a);
	test_provided(a);
	test_other_providers(a);
	km_arena_free(a);
	cp_pki_stop(pki);
	cp_store_free(rt.store);
	cp_config_fini(&cfg);
	return test_summary();
}
