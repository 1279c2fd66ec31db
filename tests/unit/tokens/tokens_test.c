/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for cp/tokens: user and dataplane token claims, kid lookup,
 * revocation and upstream's error texts. */
#include <errno.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "cp/tokens/tokens.h"
#include "../test.h"

static struct km_buf key1 = KM_BUF_INIT, key2 = KM_BUF_INIT;

/* kid "1" -> key1, "2" -> key2, anything else not found */
static int lookup(void *ud, const char *kid, struct km_str *pem, struct km_buf *err)
{
	(void)ud;
	(void)err;
	if (strcmp(kid, "1") == 0)
		*pem = (struct km_str){key1.data, key1.len};
	else if (strcmp(kid, "2") == 0)
		*pem = (struct km_str){key2.data, key2.len};
	else
		return -KM_E_NOT_FOUND;
	return 0;
}

static void test_names(void)
{
	struct km_arena *a = km_arena_new(0);
	CHECK_STREQ(cp_tokens_dp_key_prefix(a, "default"), "dataplane-token-signing-key-default");
	CHECK_STREQ(cp_tokens_dp_revocations_name(a, "demo"), "dataplane-token-revocations-demo");
	CHECK_STREQ(cp_tokens_signing_key_name(a, "user-token-signing-key", "3"), "user-token-signing-key-3");
	CHECK_STREQ(cp_tokens_signing_key_name(a, "user-token-signing-key", "0"), "user-token-signing-key");
	CHECK(cp_tokens_signing_key_serial("user-token-signing-key-12", "user-token-signing-key") == 12);
	CHECK(cp_tokens_signing_key_serial("user-token-signing-key", "user-token-signing-key") == 0);
	CHECK(cp_tokens_signing_key_serial("other", "user-token-signing-key") == -1);
	CHECK(cp_tokens_is_revoked("a,b,c\n", 6, "c"));
	CHECK(cp_tokens_is_revoked("a,b,c", 5, "a"));
	CHECK(!cp_tokens_is_revoked("a,b,c", 5, "d"));
	CHECK(!cp_tokens_is_revoked("", 0, ""));
	CHECK(!cp_tokens_is_revoked("ab", 2, "a"));
	char u[37];
	cp_tokens_uuid(u);
	CHECK(strlen(u) == 36 && u[14] == '4' && u[8] == '-');
	km_arena_free(a);
}

static void test_user(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	const char *groups[] = {"mesh-system:admin"};
	struct cp_tokens_validator v = {lookup, NULL, CP_TOKENS_USER_KEY_PREFIX, NULL, KM_STR_NULL,
					false, 1000};
	struct cp_tokens_user u;
	struct km_jwt t;

	CHECK(cp_tokens_user_issue(&tok, key1.data, key1.len, "1", "admin", groups, 1, 1000, 3600,
				   "jti-1", &err) == 0);
	CHECK(km_jwt_parse(a, tok.data, tok.len, &t, &err) == 0);
	struct km_buf claims = KM_BUF_INIT;
	km_json_write(&claims, t.claims, 0, 0);
	CHECK_STREQ(km_buf_cstr(&claims), "{\"Name\":\"admin\",\"Groups\":[\"mesh-system:admin\"],"
					  "\"exp\":4600,\"nbf\":995,\"iat\":995,\"jti\":\"jti-1\"}");
	km_buf_fini(&claims);

	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&err), "");
	CHECK_STREQ(u.name, "admin");
	CHECK(u.n_groups == 1);
	CHECK_STREQ(u.groups[0], "mesh-system:admin");
	CHECK_STREQ(u.jti, "jti-1");
	CHECK(u.exp == 4600);

	/* revoked */
	v.revoked = KM_STR("x,jti-1\n");
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "token is revoked");
	km_buf_reset(&err);
	v.revoked = KM_STR_NULL;

	/* expired, memory store wording */
	v.now = 5000;
	v.memory_store = true;
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err),
		    "could not parse token. kuma-cp runs with an in-memory database and its state "
		    "isn't preserved between restarts. Keep in mind that an in-memory database "
		    "cannot be used with multiple instances of the control plane: token has invalid "
		    "claims: token is expired");
	km_buf_reset(&err);
	v.memory_store = false;

	/* not yet valid */
	v.now = 900;
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK(strncmp(km_buf_cstr(&err), "token is not yet valid: 'valid_from' date is in the future.", 59) == 0);
	km_buf_reset(&err);
	v.now = 1000;

	/* signed with key2 but claims kid 1 */
	km_buf_reset(&tok);
	CHECK(cp_tokens_user_issue(&tok, key2.data, key2.len, "1", "admin", NULL, 0, 1000, 60, NULL, &err) == 0);
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "could not parse token: token signature is invalid: crypto/rsa: verification error");
	km_buf_reset(&err);

	/* unknown kid */
	km_buf_reset(&tok);
	CHECK(cp_tokens_user_issue(&tok, key1.data, key1.len, "7", "admin", NULL, 0, 1000, 60, NULL, &err) == 0);
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_NOT_FOUND);
	CHECK_STREQ(km_buf_cstr(&err), "there is no signing key with KID 7. GlobalSecret of name "
				       "\"user-token-signing-key-7\" is not found. If signing key was "
				       "rotated, regenerate the token");
	km_buf_reset(&err);

	/* no kid */
	km_buf_reset(&tok);
	CHECK(cp_tokens_user_issue(&tok, key1.data, key1.len, NULL, "admin", NULL, 0, 1000, 60, NULL, &err) == 0);
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "could not parse token: token is unverifiable: error while "
				       "executing keyfunc: JWT token must have kid header");
	km_buf_reset(&err);

	/* claim of the wrong shape */
	struct km_json *c = km_json_object(a);
	km_json_set(a, c, "Name", km_json_int(a, 5));
	km_buf_reset(&tok);
	CHECK(km_jwt_sign(&tok, key1.data, key1.len, "1", c, &err) == 0);
	CHECK(cp_tokens_user_validate(a, &v, tok.data, tok.len, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "could not parse token: token is malformed: could not JSON "
				       "decode claim: json: cannot unmarshal number into Go struct "
				       "field UserClaims.Name of type string");
	km_buf_reset(&err);

	/* garbage */
	CHECK(cp_tokens_user_validate(a, &v, "this-is-not-valid-jwt-token", 27, &u, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "could not parse token: token is malformed: token contains an "
				       "invalid number of segments");
	km_buf_fini(&tok);
	km_buf_fini(&err);
	km_arena_free(a);
}

static void test_dataplane(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	const char *teams[] = {"web", "api"};
	const char *envs[] = {"prod"};
	struct cp_tokens_tag tags[] = {{"team", teams, 2}, {"env", envs, 1}};
	struct cp_tokens_dp id = {"dp-1", "default", "", "backend", tags, 2, NULL, 0};
	struct cp_tokens_validator v = {lookup, NULL, "dataplane-token-signing-key-default",
					"default", KM_STR_NULL, true, 1000};
	struct cp_tokens_dp out;
	struct km_jwt t;

	CHECK(cp_tokens_dp_issue(&tok, key1.data, key1.len, "1", &id, 1000, 60, "j", &err) == 0);
	CHECK(km_jwt_parse(a, tok.data, tok.len, &t, &err) == 0);
	struct km_buf claims = KM_BUF_INIT;
	km_json_write(&claims, t.claims, 0, 0);
	CHECK_STREQ(km_buf_cstr(&claims),
		    "{\"Name\":\"dp-1\",\"Mesh\":\"default\",\"Tags\":{\"env\":[\"prod\"],\"team\":"
		    "[\"api\",\"web\"]},\"Type\":\"\",\"Workload\":\"backend\",\"exp\":1060,\"nbf\":"
		    "995,\"iat\":995,\"jti\":\"j\"}");
	km_buf_fini(&claims);

	CHECK(cp_tokens_dp_validate(a, &v, tok.data, tok.len, &out, &err) == 0);
	CHECK_STREQ(out.name, "dp-1");
	CHECK_STREQ(out.mesh, "default");
	CHECK_STREQ(out.workload, "backend");
	CHECK(out.n_tags == 2);
	CHECK_STREQ(out.tags[1].key, "team");
	CHECK(out.tags[1].n_values == 2);
	CHECK_STREQ(out.tags[1].values[0], "api");

	v.revoked = KM_STR("j");
	CHECK(cp_tokens_dp_validate(a, &v, tok.data, tok.len, &out, &err) == -KM_E_UNAUTHENTICATED);
	CHECK_STREQ(km_buf_cstr(&err), "token is revoked");
	km_buf_reset(&err);
	v.revoked = KM_STR_NULL;

	km_buf_reset(&tok);
	CHECK(cp_tokens_dp_issue(&tok, key1.data, key1.len, "3", &id, 1000, 60, NULL, &err) == 0);
	CHECK(cp_tokens_dp_validate(a, &v, tok.data, tok.len, &out, &err) == -KM_E_NOT_FOUND);
	CHECK_STREQ(km_buf_cstr(&err),
		    "there is no signing key with KID 3. Secret of name "
		    "\"dataplane-token-signing-key-default-3\" in mesh \"default\" is not found. If "
		    "signing key was rotated, regenerate the token");
	km_buf_reset(&err);

	/* bad Tags shape */
	struct km_json *c = km_json_object(a);
	struct km_json *bad = km_json_object(a);
	km_json_set(a, bad, "team", km_json_cstring(a, "web"));
	km_json_set(a, c, "Tags", bad);
	km_buf_reset(&tok);
	CHECK(km_jwt_sign(&tok, key1.data, key1.len, "1", c, &err) == 0);
	CHECK(cp_tokens_dp_validate(a, &v, tok.data, tok.len, &out, &err) == -KM_E_UNAUTHENTICATED);
	CHECK(strstr(km_buf_cstr(&err), "Go struct field DataplaneClaims.Tags of type []string") != NULL);
	km_buf_fini(&tok);
	km_buf_fini(&err);
	km_arena_free(a);
}

int main(void)
{
	if (km_jwt_keygen(&key1, 0) || km_jwt_keygen(&key2, 0))
		return 2;
	test_names();
	test_user();
	test_dataplane();
	km_buf_fini(&key1);
	km_buf_fini(&key2);
	return test_summary();
}
