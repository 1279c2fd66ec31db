/* SPDX-License-Identifier: Apache-2.0 */
/* RS256 JSON Web Tokens over OpenSSL 3 EVP: base64url, sign, parse, verify,
 * and RSA signing keys in upstream Kuma's secret format (PKCS#1 PEM). Tokens
 * are peer-controlled: every input is size-capped, and parsed trees live in
 * the caller's arena. Errors are negative codes plus golang-jwt v5 texts. */
#ifndef KM_AUTH_JWT_H
#define KM_AUTH_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "codec/json.h"

#define KM_JWT_MAX_LEN (64u * 1024u)  /* longest token accepted */
#define KM_JWT_MAX_KEY (16u * 1024u)  /* longest PEM key accepted */
#define KM_JWT_RSA_BITS 2048          /* upstream util_rsa.DefaultKeySize */

/* Error codes (negative returns) and what they mean:
 *  -EBADMSG       malformed token ("token is malformed: ...")
 *  -ENOTSUP       alg missing/unknown/not RS256 ("token is unverifiable: ...")
 *  -EKEYREJECTED  signature does not verify ("token signature is invalid: ...")
 *  -EKEYEXPIRED   exp is in the past ("token has invalid claims: token is expired")
 *  -ETIME         nbf/iat in the future ("token has invalid claims: token is not valid yet")
 *  -EINVAL        unusable key or arguments
 *  -E2BIG         token or key above its cap */

/* A parsed (not yet verified) token. Trees and bytes live in the arena given
 * to km_jwt_parse; signing_input borrows from the token text. */
struct km_jwt {
	struct km_json *header;
	struct km_json *claims;
	struct km_str alg;
	struct km_str kid;  /* empty when absent */
	bool has_kid;       /* header carries "kid" */
	bool kid_is_string; /* ...and it is a JSON string */
	struct km_str signing_input; /* "<header>.<claims>" */
	unsigned char *sig;
	size_t sig_len;
};

/* Unpadded base64url (RFC 7515 §2). Decode rejects padding and bad characters
 * and writes Go's "illegal base64 data at input byte N" into <err>. */
int km_jwt_b64url_encode(struct km_buf *out, const void *data, size_t len);
int km_jwt_b64url_decode(struct km_buf *out, const char *s, size_t len, struct km_buf *err);

/* Signs <claims> (a JSON object) with the RSA private key <key_pem> and appends
 * the compact token to <out>. The header is {"alg":"RS256","kid":<kid>,"typ":"JWT"}
 * ("kid" left out when <kid> is NULL). */
int km_jwt_sign(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
		const struct km_json *claims, struct km_buf *err);

/* Splits and decodes <token> without checking the signature: header and claims
 * must be JSON objects, registered claims must have their JSON types
 * (exp/nbf/iat numbers, jti/iss/sub strings) and alg must name a JWS algorithm. */
int km_jwt_parse(struct km_arena *a, const char *token, size_t len, struct km_jwt *out,
		 struct km_buf *err);
/* Checks the RS256 signature of <t> with a PEM key: private ("RSA PRIVATE KEY",
 * PKCS#8) or public ("RSA PUBLIC KEY", "PUBLIC KEY"); DER PKCS#1 is accepted
 * too (upstream's legacy secrets). */
int km_jwt_verify_signature(const struct km_jwt *t, const char *key_pem, size_t key_len,
			    struct km_buf *err);
/* Checks exp and nbf against <now> (unix seconds) with <leeway> seconds of
 * clock skew; iat is checked too when <check_iat>. */
int km_jwt_validate_times(const struct km_jwt *t, int64_t now, int64_t leeway, bool check_iat,
			  struct km_buf *err);
/* parse + verify_signature + validate_times (exp/nbf), in golang-jwt's order. */
int km_jwt_verify(struct km_arena *a, const char *token, size_t len, const char *key_pem,
		  size_t key_len, int64_t now, int64_t leeway, struct km_jwt *out,
		  struct km_buf *err);

/* Generates an RSA key of <bits> (0 = 2048) and appends it as PKCS#1
 * "RSA PRIVATE KEY" PEM, the bytes upstream stores in signing-key secrets. */
int km_jwt_keygen(struct km_buf *pem_out, int bits);
/* Appends the PKCS#1 "RSA PUBLIC KEY" PEM of a private key PEM. */
int km_jwt_public_pem(struct km_buf *out, const char *key_pem, size_t key_len, struct km_buf *err);
/* True when <pem> holds a private key block ("RSA PRIVATE KEY"/"PRIVATE KEY"). */
bool km_jwt_is_private_pem(const char *pem, size_t len);

#endif
