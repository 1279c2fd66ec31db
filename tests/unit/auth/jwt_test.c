/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for lib/auth/jwt: base64url, keys, sign/verify, tamper, expiry. */
#include <errno.h>
#include <string.h>

#include "auth/jwt.h"
#include "../test.h"

static struct km_buf key1 = KM_BUF_INIT, key2 = KM_BUF_INIT, pub1 = KM_BUF_INIT;

static void test_b64(void)
{
	struct km_buf b = KM_BUF_INIT, e = KM_BUF_INIT;
	km_jwt_b64url_encode(&b, "\xfb\xff", 2);
	CHECK_STREQ(km_buf_cstr(&b), "-_8");
	km_buf_reset(&b);
	km_jwt_b64url_encode(&b, "hello", 5);
	CHECK_STREQ(km_buf_cstr(&b), "aGVsbG8");
	km_buf_reset(&b);
	CHECK(km_jwt_b64url_decode(&b, "aGVsbG8", 7, &e) == 0 && b.len == 5 && !memcmp(b.data, "hello", 5));
	km_buf_reset(&b);
	CHECK(km_jwt_b64url_decode(&b, "aGVsbG8=", 8, &e) == -EBADMSG);
	CHECK_STREQ(km_buf_cstr(&e), "illegal base64 data at input byte 7");
	km_buf_reset(&e);
	CHECK(km_jwt_b64url_decode(&b, "a+b/", 4, NULL) == -EBADMSG);
	CHECK(km_jwt_b64url_decode(&b, "abcde", 5, NULL) == -EBADMSG);
	km_buf_fini(&b);
	km_buf_fini(&e);
}

static void test_keys(void)
{
	CHECK(km_jwt_keygen(&key1, 0) == 0);
	CHECK(strncmp(km_buf_cstr(&key1), "-----BEGIN RSA PRIVATE KEY-----", 31) == 0);
	CHECK(km_jwt_is_private_pem(key1.data, key1.len));
	CHECK(km_jwt_keygen(&key2, 2048) == 0);
	CHECK(km_jwt_public_pem(&pub1, key1.data, key1.len, NULL) == 0);
	CHECK(strncmp(km_buf_cstr(&pub1), "-----BEGIN RSA PUBLIC KEY-----", 30) == 0);
	CHECK(!km_jwt_is_private_pem(pub1.data, pub1.len));
	struct km_buf x = KM_BUF_INIT;
	CHECK(km_jwt_public_pem(&x, "garbage", 7, NULL) == -EINVAL);
	CHECK(km_jwt_public_pem(&x, pub1.data, pub1.len, NULL) == -EINVAL);
	km_buf_fini(&x);
}

static void test_roundtrip(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *claims = km_json_object(a);
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	struct km_jwt t;

	km_json_set(a, claims, "Name", km_json_cstring(a, "admin"));
	km_json_set(a, claims, "exp", km_json_int(a, 2000));
	km_json_set(a, claims, "nbf", km_json_int(a, 1000));
	CHECK(km_jwt_sign(&tok, key1.data, key1.len, "1", claims, &err) == 0);
	/* header is {"alg":"RS256","kid":"1","typ":"JWT"} */
	CHECK(strncmp(tok.data, "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEiLCJ0eXAiOiJKV1QifQ.", 51) == 0);

	CHECK(km_jwt_verify(a, tok.data, tok.len, pub1.data, pub1.len, 1500, 0, &t, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&err), "");
	CHECK(km_str_eqc(t.kid, "1") && t.kid_is_string);
	CHECK(km_str_eqc(km_json_get_string(t.claims, "Name"), "admin"));
	/* private key verifies too */
	CHECK(km_jwt_verify(a, tok.data, tok.len, key1.data, key1.len, 1500, 0, &t, &err) == 0);

	/* expiry and not-before, with leeway */
	CHECK(km_jwt_verify(a, tok.data, tok.len, pub1.data, pub1.len, 2000, 0, &t, &err) == -EKEYEXPIRED);
	CHECK_STREQ(km_buf_cstr(&err), "token has invalid claims: token is expired");
	km_buf_reset(&err);
	CHECK(km_jwt_verify(a, tok.data, tok.len, pub1.data, pub1.len, 2000, 5, &t, &err) == 0);
	CHECK(km_jwt_verify(a, tok.data, tok.len, pub1.data, pub1.len, 999, 0, &t, &err) == -ETIME);
	CHECK_STREQ(km_buf_cstr(&err), "token has invalid claims: token is not valid yet");
	km_buf_reset(&err);

	/* wrong key */
	CHECK(km_jwt_verify(a, tok.data, tok.len, key2.data, key2.len, 1500, 0, &t, &err) == -EKEYREJECTED);
	CHECK_STREQ(km_buf_cstr(&err), "token signature is invalid: crypto/rsa: verification error");
	km_buf_reset(&err);

	/* tamper with the claims */
	struct km_buf bad = KM_BUF_INIT;
	struct km_json *c2 = km_json_clone(a, claims);
	km_json_set(a, c2, "Name", km_json_cstring(a, "root"));
	struct km_buf body = KM_BUF_INIT, enc = KM_BUF_INIT;
	km_json_write(&body, c2, 0, 0);
	km_jwt_b64url_encode(&enc, body.data, body.len);
	const char *d1 = strchr(tok.data, '.'), *d2 = strchr(d1 + 1, '.');
	km_buf_append(&bad, tok.data, (size_t)(d1 - tok.data) + 1);
	km_buf_append(&bad, enc.data, enc.len);
	km_buf_puts(&bad, d2);
	CHECK(km_jwt_verify(a, bad.data, bad.len, pub1.data, pub1.len, 1500, 0, &t, &err) == -EKEYREJECTED);
	km_buf_reset(&err);
	/* flip one signature character */
	km_buf_reset(&bad);
	km_buf_append(&bad, tok.data, tok.len);
	bad.data[bad.len - 3] = bad.data[bad.len - 3] == 'A' ? 'B' : 'A';
	CHECK(km_jwt_verify(a, bad.data, bad.len, pub1.data, pub1.len, 1500, 0, &t, &err) == -EKEYREJECTED);
	km_buf_reset(&err);

	/* bad key input */
	CHECK(km_jwt_sign(&bad, pub1.data, pub1.len, "1", claims, &err) == -EINVAL);
	km_buf_reset(&err);
	CHECK(km_jwt_verify(a, tok.data, tok.len, "nope", 4, 1500, 0, &t, &err) == -EINVAL);
	km_buf_reset(&err);

	km_buf_fini(&bad);
	km_buf_fini(&body);
	km_buf_fini(&enc);
	km_buf_fini(&tok);
	km_buf_fini(&err);
	km_arena_free(a);
}

static void test_garbage(void)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	struct km_jwt t;
	static const struct {
		const char *tok;
		int rc;
		const char *msg;
	} cases[] = {
	    {"this-is-not-valid-jwt-token", -EBADMSG,
	     "token is malformed: token contains an invalid number of segments"},
	    {"a.b.c.d", -EBADMSG, "token is malformed: token contains an invalid number of segments"},
	    {"", -EBADMSG, "token is malformed: token contains an invalid number of segments"},
	    {"!!.e30.", -EBADMSG,
	     "token is malformed: could not base64 decode header: illegal base64 data at input byte 0"},
	    {"bm90anNvbg.e30.", -EBADMSG, NULL},
	    {"W10.e30.", -EBADMSG, NULL},                          /* header [] */
	    {"e30.e30.", -ENOTSUP, "token is unverifiable: signing method (alg) is unspecified"},
	    {"eyJhbGciOiJmb28ifQ.e30.", -ENOTSUP,
	     "token is unverifiable: signing method (alg) is unavailable"},
	    {"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJ4In0.", -EBADMSG, NULL}, /* exp: "x" */
	    {"eyJhbGciOiJSUzI1NiJ9.e30.@@", -EBADMSG, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = km_jwt_parse(a, cases[i].tok, strlen(cases[i].tok), &t, &err);
		CHECK(rc == cases[i].rc);
		if (cases[i].msg)
			CHECK_STREQ(km_buf_cstr(&err), cases[i].msg);
		km_buf_reset(&err);
	}
	/* parses fine but has an empty signature */
	CHECK(km_jwt_verify(a, "eyJhbGciOiJSUzI1NiJ9.e30.", 25, pub1.data, pub1.len, 0, 0, &t, &err) == -EKEYREJECTED);
	km_buf_reset(&err);
	/* HS256 is refused at verification */
	CHECK(km_jwt_verify(a, "eyJhbGciOiJIUzI1NiJ9.e30.", 25, pub1.data, pub1.len, 0, 0, &t, &err) == -ENOTSUP);
	km_buf_reset(&err);
	/* oversized */
	static char big[KM_JWT_MAX_LEN + 2];
	memset(big, 'a', sizeof(big) - 1);
	CHECK(km_jwt_parse(a, big, sizeof(big) - 1, &t, &err) == -E2BIG);
	km_buf_fini(&err);
	km_arena_free(a);
}

int main(void)
{
	test_b64();
	test_keys();
	test_roundtrip();
	test_garbage();
	km_buf_fini(&key1);
	km_buf_fini(&key2);
	km_buf_fini(&pub1);
	return test_summary();
}
