/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/xds/dpauth.c: dataplane-token verification against signing-key
 * Secrets and static keys, revocations, and the name/mesh/tag/workload
 * bindings with upstream's messages (pkg/xds/auth/universal/auth_test.go). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "auth/jwt.h"
#include "base/err.h"
#include "codec/json.h"
#include "cp/runtime.h"
#include "cp/tokens/tokens.h"
#include "cp/xds/dpauth.h"
#include "resource/resource.h"

static struct km_buf key_default = KM_BUF_INIT, key_other = KM_BUF_INIT;

static void put_resource(struct cp_runtime *rt, const char *type, const char *mesh,
			 const char *name, const char *spec)
{
	struct km_resource r = {0};
	r.type = km_rtype_by_name(km_str_c(type));
	r.mesh = km_str_c(mesh);
	r.name = km_str_c(name);
	r.spec = km_str_c(spec);
	CHECK(cp_store_create(rt->store, &r) == 0);
}

static void put_secret(struct cp_runtime *rt, const char *type, const char *mesh, const char *name,
		       const char *data, size_t len)
{
	char *b64 = calloc(1, 4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)data, (int)len);
	struct km_buf spec = KM_BUF_INIT;
	km_buf_printf(&spec, "{\"data\":\"%s\"}", b64);
	put_resource(rt, type, mesh, name, km_buf_cstr(&spec));
	km_buf_fini(&spec);
	free(b64);
}

/* Issues a token signed by <key> (kid "1") for <id>. */
static const char *issue(struct km_arena *a, struct km_buf *key, const struct cp_tokens_dp *id,
			 int64_t valid_for, const char *jti)
{
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	int rc = cp_tokens_dp_issue(&tok, key->data, key->len, "1", id, km_time_now() / 1000000000,
				    valid_for, jti, &err);
	CHECK(rc == 0);
	const char *t = km_arena_strdup(a, km_buf_cstr(&tok));
	km_buf_fini(&tok);
	km_buf_fini(&err);
	return t;
}

static struct km_json *labels(struct km_arena *a, const char *json)
{
	struct km_json *j = NULL;
	CHECK(km_json_parse(a, json, strlen(json), &j, NULL) == 0);
	return j;
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
	put_resource(&e->rt, "Mesh", "", "default", "{}");
	put_resource(&e->rt, "Mesh", "", "other", "{}");
	put_secret(&e->rt, "Secret", "default", "dataplane-token-signing-key-default-1",
		   key_default.data, key_default.len);
	put_secret(&e->rt, "Secret", "other", "dataplane-token-signing-key-other-1", key_other.data,
		   key_other.len);
}

static void env_fini(struct env *e)
{
	cp_store_free(e->rt.store);
	cp_config_fini(&e->cfg);
}

/* Runs the check and compares the result code and the message. */
static void expect(struct env *e, const char *token, const char *mesh, const char *name,
		   const struct km_json *lbls, int want_rc, const char *want_msg)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_dpauth_check(&e->rt, a, token, km_str_c(mesh), km_str_c(name), lbls, &err);
	if (rc != want_rc)
		fprintf(stderr, "rc %d, want %d (%s)\n", rc, want_rc, km_buf_cstr(&err));
	CHECK(rc == want_rc);
	if (want_msg)
		CHECK_STREQ(km_buf_cstr(&err), want_msg);
	km_buf_fini(&err);
	km_arena_free(a);
}

static void test_tokens(void)
{
	struct env e;
	env_init(&e);
	struct km_arena *a = km_arena_new(0);
	struct km_json *backend =
		labels(a, "{\"kuma.io/workload\":\"backend\",\"app\":\"web\",\"version\":\"v1\"}");

	/* bound to name and mesh */
	struct cp_tokens_dp id = {.name = "dp-1", .mesh = "default"};
	const char *t = issue(a, &key_default, &id, 3600, "jti-1");
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	expect(&e, t, "default", "dp-2", backend, -KM_E_FORBIDDEN,
	       "authentication failed: proxy name from requestor: dp-2 is different than in token: dp-1");

	/* a token claiming mesh "default" signed with mesh "other"'s key */
	t = issue(a, &key_other, &id, 3600, "jti-2");
	expect(&e, t, "other", "dp-1", backend, -KM_E_FORBIDDEN,
	       "authentication failed: proxy mesh from requestor: other is different than in token: default");
	/* ...does not verify against mesh "default" */
	expect(&e, t, "default", "dp-1", backend, -KM_E_UNAUTHENTICATED, NULL);

	/* unbound token: valid for any Dataplane of the mesh */
	struct cp_tokens_dp any = {.mesh = ""};
	t = issue(a, &key_default, &any, 3600, "jti-3");
	expect(&e, t, "default", "whatever", NULL, 0, NULL);

	/* no key for the kid's mesh */
	expect(&e, t, "third", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: there is no signing key with KID 1. Secret of name "
	       "\"dataplane-token-signing-key-third-1\" in mesh \"third\" is not found. If signing key was "
	       "rotated, regenerate the token");

	/* missing and malformed tokens */
	expect(&e, NULL, "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: could not parse token. kuma-cp runs with an in-memory database and its "
	       "state isn't preserved between restarts. Keep in mind that an in-memory database cannot be used "
	       "with multiple instances of the control plane: token is malformed: token contains an invalid "
	       "number of segments");
	expect(&e, "a.b.c", "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED, NULL);

	/* expired */
	t = issue(a, &key_default, &any, -3600, "jti-4");
	expect(&e, t, "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED, NULL);

	/* revoked through the mesh Secret, then through the GlobalSecret */
	t = issue(a, &key_default, &any, 3600, "jti-5");
	const char *t6 = issue(a, &key_default, &any, 3600, "jti-6");
	put_secret(&e.rt, "Secret", "default", "dataplane-token-revocations-default",
		   "jti-0,jti-5\n", 12);
	expect(&e, t, "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: token is revoked");
	expect(&e, t6, "default", "dp-1", NULL, 0, NULL);
	put_secret(&e.rt, "GlobalSecret", "", "dataplane-token-revocations-default", "jti-6", 5);
	expect(&e, t6, "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: token is revoked");
	expect(&e, t, "default", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: token is revoked");

	/* authn type none */
	e.cfg.dp_server.authn.dp_proxy.type = "none";
	expect(&e, "junk", "default", "dp-1", NULL, 0, NULL);
	e.cfg.dp_server.authn.dp_proxy.type = "dpToken";

	km_arena_free(a);
	env_fini(&e);
}

static void test_static_keys(void)
{
	struct env e;
	env_init(&e);
	struct km_arena *a = km_arena_new(0);
	struct km_buf pub = KM_BUF_INIT, err = KM_BUF_INIT;
	CHECK(km_jwt_public_pem(&pub, key_other.data, key_other.len, &err) == 0);
	struct cp_config_key keys[] = {{"1", NULL, pub.data, "default"}};
	e.cfg.dp_server.authn.dp_proxy.dp_token.validator.public_keys.n = 1;
	e.cfg.dp_server.authn.dp_proxy.dp_token.validator.public_keys.items = keys;

	/* the static key of mesh "default" wins over the Secret with the same kid */
	struct cp_tokens_dp any = {.mesh = ""};
	const char *t = issue(a, &key_other, &any, 3600, "s-1");
	expect(&e, t, "default", "dp-1", NULL, 0, NULL);
	/* a key bound to mesh "default" does not serve mesh "other" (its Secret does) */
	expect(&e, t, "other", "dp-1", NULL, 0, NULL);
	keys[0].mesh = "";
	e.cfg.dp_server.authn.dp_proxy.dp_token.validator.use_secrets = false;
	expect(&e, t, "third", "dp-1", NULL, 0, NULL);
	const char *t2 = issue(a, &key_default, &any, 3600, "s-2");
	expect(&e, t2, "third", "dp-1", NULL, -KM_E_UNAUTHENTICATED, NULL);
	keys[0].kid = "9";
	expect(&e, t, "third", "dp-1", NULL, -KM_E_UNAUTHENTICATED,
	       "authentication failed: there is no signing key with KID 1. GlobalSecret of name \"-1\" is not "
	       "found. If signing key was rotated, regenerate the token");
	e.cfg.dp_server.authn.dp_proxy.dp_token.validator.public_keys.n = 0;
	e.cfg.dp_server.authn.dp_proxy.dp_token.validator.public_keys.items = NULL;
	km_buf_fini(&pub);
	km_buf_fini(&err);
	km_arena_free(a);
	env_fini(&e);
}

static void test_tags_and_workload(void)
{
	struct env e;
	env_init(&e);
	struct km_arena *a = km_arena_new(0);
	struct km_json *backend =
		labels(a, "{\"kuma.io/workload\":\"backend\",\"app\":\"web\",\"version\":\"v1\"}");
	struct km_json *nowl = labels(a, "{\"app\":\"web\"}");

	const char *vals_app[] = {"web", "api"};
	const char *vals_ver[] = {"v2", "v3", "v2"};
	struct cp_tokens_tag tags[] = {{"app", vals_app, 2}, {"version", vals_ver, 3}};
	struct cp_tokens_dp id = {.mesh = "default", .tags = tags, .n_tags = 1};
	const char *t = issue(a, &key_default, &id, 3600, "t-1");
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	expect(&e, t, "default", "dp-1", labels(a, "{\"other\":\"x\"}"), -KM_E_FORBIDDEN,
	       "authentication failed: dataplane has no tag \"app\" required by the token");
	expect(&e, t, "default", "dp-1", labels(a, "{\"app\":\"db\"}"), -KM_E_FORBIDDEN,
	       "authentication failed: dataplane contains tag \"app\" with value \"db\" which is not allowed "
	       "with this token. Allowed values in token are [\"api\" \"web\"]");
	id.n_tags = 2;
	t = issue(a, &key_default, &id, 3600, "t-2");
	expect(&e, t, "default", "dp-1", backend, -KM_E_FORBIDDEN,
	       "authentication failed: dataplane contains tag \"version\" with value \"v1\" which is not allowed "
	       "with this token. Allowed values in token are [\"v2\" \"v3\"]");

	/* workload-bound tokens */
	struct cp_tokens_dp wl = {.mesh = "default", .workload = "backend"};
	t = issue(a, &key_default, &wl, 3600, "w-1");
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	expect(&e, t, "default", "dp-1", nowl, -KM_E_FORBIDDEN,
	       "authentication failed: dataplane has no workload label required by the token");
	expect(&e, t, "default", "dp-1", labels(a, "{\"kuma.io/workload\":\"frontend\"}"),
	       -KM_E_FORBIDDEN,
	       "authentication failed: dataplane workload \"frontend\" is not allowed with this token. Allowed "
	       "workload in token is \"backend\"");

	/* an unbound token is fine until a MeshIdentity derives identity from the workload */
	struct cp_tokens_dp any = {.mesh = ""};
	t = issue(a, &key_default, &any, 3600, "w-2");
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	put_resource(&e.rt, "MeshIdentity", "default", "custom",
		     "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"app\":\"web\"}}},"
		     "\"spiffeID\":{\"path\":\"/static/{{ label \\\"app\\\" }}\"}}");
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	put_resource(&e.rt, "MeshIdentity", "default", "all", "{\"selector\":{\"dataplane\":{}}}");
	/* "custom" matches more labels, so it still decides */
	expect(&e, t, "default", "dp-1", backend, 0, NULL);
	put_resource(&e.rt, "MeshIdentity", "default", "aaa",
		     "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"version\":\"v1\"}}}}");
	/* same specificity, "aaa" sorts first and uses the default /workload/{{ .Workload }} */
	expect(&e, t, "default", "dp-1", backend, -KM_E_FORBIDDEN,
	       "authentication failed: dataplane with \"kuma.io/workload\" label \"backend\" derives its "
	       "identity from the workload, so it requires a workload-bound token");
	/* no workload label: nothing to protect */
	expect(&e, t, "default", "dp-1", nowl, 0, NULL);
	/* another mesh's identities do not count */
	struct cp_tokens_dp any2 = {.mesh = ""};
	t = issue(a, &key_other, &any2, 3600, "w-3");
	expect(&e, t, "other", "dp-1", backend, 0, NULL);

	km_arena_free(a);
	env_fini(&e);
}

static void test_identity_helpers(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *lb = labels(a, "{\"app\":\"web\",\"kuma.io/workload\":\"w\"}");
	size_t n;
	CHECK(!cp_dpauth_identity_selects(labels(a, "{}"), lb, &n));
	CHECK(!cp_dpauth_identity_selects(labels(a, "{\"selector\":{}}"), lb, &n));
	CHECK(cp_dpauth_identity_selects(labels(a, "{\"selector\":{\"dataplane\":{}}}"), lb, &n) &&
	      n == 0);
	CHECK(cp_dpauth_identity_selects(
		      labels(a,
			     "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"app\":\"web\"}}}}"),
		      lb, &n) &&
	      n == 1);
	CHECK(!cp_dpauth_identity_selects(
		labels(a, "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"app\":\"db\"}}}}"), lb,
		&n));
	CHECK(!cp_dpauth_identity_selects(
		labels(a, "{\"selector\":{\"dataplane\":{\"matchLabels\":{\"x\":\"y\"}}}}"), NULL,
		&n));

	CHECK(cp_dpauth_identity_uses_workload(labels(a, "{}"), "universal"));
	CHECK(!cp_dpauth_identity_uses_workload(labels(a, "{}"), "kubernetes"));
	CHECK(cp_dpauth_identity_uses_workload(
		labels(a, "{\"spiffeID\":{\"path\":\"/x/{{.Workload}}\"}}"), "kubernetes"));
	CHECK(cp_dpauth_identity_uses_workload(
		labels(a,
		       "{\"spiffeID\":{\"path\":\"/x/{{ label  \\\"kuma.io/workload\\\"\\t}}\"}}"),
		"universal"));
	CHECK(!cp_dpauth_identity_uses_workload(
		labels(a, "{\"spiffeID\":{\"path\":\"/x/{{ label\\\"kuma.io/workload\\\" }}\"}}"),
		"universal"));
	CHECK(!cp_dpauth_identity_uses_workload(
		labels(a, "{\"spiffeID\":{\"path\":\"/x/{{ .Workloads }}\"}}"), "universal"));
	CHECK(!cp_dpauth_identity_uses_workload(labels(a, "{\"spiffeID\":{\"path\":\"/static\"}}"),
						"universal"));
	CHECK(cp_dpauth_identity_uses_workload(labels(a, "{\"spiffeID\":{\"trustDomain\":\"x\"}}"),
					       "universal"));
	km_arena_free(a);
}

int main(void)
{
	CHECK(km_jwt_keygen(&key_default, 2048) == 0);
	CHECK(km_jwt_keygen(&key_other, 2048) == 0);
	test_tokens();
	test_static_keys();
	test_tags_and_workload();
	test_identity_helpers();
	km_buf_fini(&key_default);
	km_buf_fini(&key_other);
	return test_summary();
}
