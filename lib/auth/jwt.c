/* SPDX-License-Identifier: Apache-2.0 */
/* RS256 JWT on OpenSSL 3: keys are decoded per call into a short-lived
 * EVP_PKEY (freed before return); parsed tokens live in the caller's arena.
 * Error texts follow golang-jwt v5 so API responses match upstream Kuma. */
#include "auth/jwt.h"

#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int km_jwt_b64url_encode(struct km_buf *out, const void *data, size_t len)
{
	const unsigned char *p = data;
	char q[4];
	size_t i = 0;
	int rc = 0;

	for (; i + 3 <= len && rc == 0; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
		q[0] = b64url[v >> 18];
		q[1] = b64url[(v >> 12) & 63];
		q[2] = b64url[(v >> 6) & 63];
		q[3] = b64url[v & 63];
		rc = km_buf_append(out, q, 4);
	}
	if (rc == 0 && len - i == 1) {
		unsigned v = (unsigned)p[i] << 16;
		q[0] = b64url[v >> 18];
		q[1] = b64url[(v >> 12) & 63];
		rc = km_buf_append(out, q, 2);
	} else if (rc == 0 && len - i == 2) {
		unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
		q[0] = b64url[v >> 18];
		q[1] = b64url[(v >> 12) & 63];
		q[2] = b64url[(v >> 6) & 63];
		rc = km_buf_append(out, q, 3);
	}
	return rc;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

int km_jwt_b64url_decode(struct km_buf *out, const char *s, size_t len, struct km_buf *err)
{
	unsigned acc = 0;
	int bits = 0;

	if (len % 4 == 1) { /* Go reports the byte after the last full quantum */
		if (err)
			km_buf_printf(err, "illegal base64 data at input byte %zu", len - 1);
		return -EBADMSG;
	}
	for (size_t i = 0; i < len; i++) {
		int v = b64val(s[i]);
		if (v < 0) {
			if (err)
				km_buf_printf(err, "illegal base64 data at input byte %zu", i);
			return -EBADMSG;
		}
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			unsigned char byte = (unsigned char)(acc >> bits);
			if (km_buf_append(out, &byte, 1))
				return -E2BIG;
		}
	}
	return 0;
}

/* ---- keys ---- */

static bool looks_pem(const char *s, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	for (size_t i = 0; i + sizeof(tag) - 1 <= len; i++)
		if (memcmp(s + i, tag, sizeof(tag) - 1) == 0)
			return true;
	return false;
}

bool km_jwt_is_private_pem(const char *pem, size_t len)
{
	static const char *const tags[] = {"-----BEGIN RSA PRIVATE KEY-----",
					   "-----BEGIN PRIVATE KEY-----"};
	for (size_t t = 0; t < 2; t++) {
		size_t n = strlen(tags[t]);
		for (size_t i = 0; i + n <= len; i++)
			if (memcmp(pem + i, tags[t], n) == 0)
				return true;
	}
	return false;
}

static EVP_PKEY *decode_key(const char *data, size_t len, int selection)
{
	EVP_PKEY *pkey = NULL;
	const unsigned char *p = (const unsigned char *)data;
	size_t left = len;
	OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(
	    &pkey, looks_pem(data, len) ? "PEM" : "DER", NULL, "RSA", selection, NULL, NULL);
	if (!dctx)
		return NULL;
	if (!OSSL_DECODER_from_data(dctx, &p, &left)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OSSL_DECODER_CTX_free(dctx);
	return pkey;
}

/* Loads an RSA key (private first, then public) or returns NULL. */
static EVP_PKEY *load_key(const char *data, size_t len, bool need_private)
{
	EVP_PKEY *k;
	if (!data || len == 0 || len > KM_JWT_MAX_KEY)
		return NULL;
	k = decode_key(data, len, EVP_PKEY_KEYPAIR);
	if (!k && !need_private)
		k = decode_key(data, len, EVP_PKEY_PUBLIC_KEY);
	if (k && !EVP_PKEY_is_a(k, "RSA")) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	return k;
}

static int encode_key(struct km_buf *out, EVP_PKEY *pkey, int selection)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int rc = -EINVAL;
	OSSL_ENCODER_CTX *ectx =
	    OSSL_ENCODER_CTX_new_for_pkey(pkey, selection, "PEM", "type-specific", NULL);
	if (ectx && OSSL_ENCODER_CTX_get_num_encoders(ectx) > 0 &&
	    OSSL_ENCODER_to_data(ectx, &data, &len))
		rc = km_buf_append(out, data, len);
	OPENSSL_free(data);
	OSSL_ENCODER_CTX_free(ectx);
	return rc;
}

int km_jwt_keygen(struct km_buf *pem_out, int bits)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)(bits > 0 ? bits : KM_JWT_RSA_BITS));
	int rc;
	if (!pkey)
		return -EINVAL;
	rc = encode_key(pem_out, pkey, EVP_PKEY_KEYPAIR);
	EVP_PKEY_free(pkey);
	return rc;
}

int km_jwt_public_pem(struct km_buf *out, const char *key_pem, size_t key_len, struct km_buf *err)
{
	EVP_PKEY *pkey = load_key(key_pem, key_len, true);
	int rc;
	if (!pkey) {
		if (err)
			km_buf_puts(err, "could not parse RSA private key");
		return -EINVAL;
	}
	rc = encode_key(out, pkey, EVP_PKEY_PUBLIC_KEY);
	EVP_PKEY_free(pkey);
	return rc;
}

/* ---- sign ---- */

int km_jwt_sign(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
		const struct km_json *claims, struct km_buf *err)
{
	struct km_buf hdr = KM_BUF_INIT, body = KM_BUF_INIT, input = KM_BUF_INIT;
	unsigned char *sig = NULL;
	size_t sig_len = 0;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *pkey = NULL;
	int rc = -EINVAL;

	if (!claims || claims->kind != KM_JSON_OBJECT) {
		if (err)
			km_buf_puts(err, "claims must be a JSON object");
		return -EINVAL;
	}
	pkey = load_key(key_pem, key_len, true);
	if (!pkey) {
		if (err)
			km_buf_puts(err, "could not sign a token: invalid RSA private key");
		goto out;
	}
	km_buf_puts(&hdr, "{\"alg\":\"RS256\"");
	if (kid) {
		km_buf_puts(&hdr, ",\"kid\":");
		km_json_write_string(&hdr, km_str_c(kid));
	}
	km_buf_puts(&hdr, ",\"typ\":\"JWT\"}");
	km_json_write(&body, claims, 0, 0);
	km_jwt_b64url_encode(&input, hdr.data, hdr.len);
	km_buf_putc(&input, '.');
	km_jwt_b64url_encode(&input, body.data, body.len);

	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
	    EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input.data, input.len) != 1) {
		if (err)
			km_buf_puts(err, "could not sign a token");
		goto out;
	}
	sig = OPENSSL_malloc(sig_len);
	if (!sig || EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input.data, input.len) != 1) {
		if (err)
			km_buf_puts(err, "could not sign a token");
		goto out;
	}
	km_buf_append(out, input.data, input.len);
	km_buf_putc(out, '.');
	km_jwt_b64url_encode(out, sig, sig_len);
	rc = 0;
out:
	OPENSSL_free(sig);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	km_buf_fini(&hdr);
	km_buf_fini(&body);
	km_buf_fini(&input);
	return rc;
}

/* ---- parse / verify ---- */

static const char *const known_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
					 "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
					 "EdDSA", "none",  NULL};

static int malformed(struct km_buf *err, const char *what, const char *detail)
{
	if (err)
		km_buf_printf(err, "token is malformed: %s%s%s", what, detail ? ": " : "",
			      detail ? detail : "");
	return -EBADMSG;
}

static int decode_segment(struct km_arena *a, const char *s, size_t len, const char *what,
			  struct km_json **out, struct km_buf *err)
{
	struct km_buf raw = {NULL, 0, 0, KM_JWT_MAX_LEN};
	struct km_buf why = KM_BUF_INIT;
	char msg[64];
	int rc;

	snprintf(msg, sizeof(msg), "could not base64 decode %s", what);
	rc = km_jwt_b64url_decode(&raw, s, len, &why);
	if (rc) {
		rc = malformed(err, msg, km_buf_cstr(&why));
		goto out;
	}
	snprintf(msg, sizeof(msg), "could not JSON decode %s", what);
	rc = km_json_parse(a, raw.data ? raw.data : "", raw.len, out, &why);
	if (rc) {
		rc = malformed(err, msg, km_buf_cstr(&why));
		goto out;
	}
	if ((*out)->kind != KM_JSON_OBJECT) {
		char detail[96];
		static const char *const kinds[] = {"null", "bool", "number", "string", "array", "object"};
		snprintf(detail, sizeof(detail), "json: cannot unmarshal %s into Go value of type %s",
			 kinds[(*out)->kind], strcmp(what, "header") == 0 ? "map[string]interface {}" : "claims");
		rc = malformed(err, msg, detail);
	}
out:
	km_buf_fini(&raw);
	km_buf_fini(&why);
	return rc;
}

static int check_claim_types(const struct km_json *claims, struct km_buf *err)
{
	static const char *const nums[] = {"exp", "nbf", "iat"};
	static const char *const strs[] = {"jti", "iss", "sub"};
	for (size_t i = 0; i < 3; i++) {
		const struct km_json *v = km_json_get(claims, nums[i]);
		if (v && v->kind != KM_JSON_NUMBER && v->kind != KM_JSON_NULL) {
			char detail[96];
			snprintf(detail, sizeof(detail), "invalid type for claim %s", nums[i]);
			return malformed(err, "could not JSON decode claim", detail);
		}
		v = km_json_get(claims, strs[i]);
		if (v && v->kind != KM_JSON_STRING && v->kind != KM_JSON_NULL) {
			char detail[96];
			snprintf(detail, sizeof(detail),
				 "json: cannot unmarshal %s into Go struct field .%s of type string",
				 v->kind == KM_JSON_NUMBER ? "number" : v->kind == KM_JSON_BOOL ? "bool"
				 : v->kind == KM_JSON_ARRAY ? "array" : "object", strs[i]);
			return malformed(err, "could not JSON decode claim", detail);
		}
	}
	return 0;
}

int km_jwt_parse(struct km_arena *a, const char *token, size_t len, struct km_jwt *out,
		 struct km_buf *err)
{
	const char *d1, *d2;
	struct km_buf sig = {NULL, 0, 0, KM_JWT_MAX_LEN};
	struct km_buf why = KM_BUF_INIT;
	int rc;

	memset(out, 0, sizeof(*out));
	if (len > KM_JWT_MAX_LEN) {
		if (err)
			km_buf_printf(err, "token is malformed: token is longer than %u bytes", KM_JWT_MAX_LEN);
		return -E2BIG;
	}
	d1 = token ? memchr(token, '.', len) : NULL;
	d2 = d1 ? memchr(d1 + 1, '.', (size_t)(token + len - d1 - 1)) : NULL;
	if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(token + len - d2 - 1)))
		return malformed(err, "token contains an invalid number of segments", NULL);

	rc = decode_segment(a, token, (size_t)(d1 - token), "header", &out->header, err);
	if (rc)
		return rc;
	rc = decode_segment(a, d1 + 1, (size_t)(d2 - d1 - 1), "claim", &out->claims, err);
	if (rc)
		return rc;
	rc = check_claim_types(out->claims, err);
	if (rc)
		return rc;

	const struct km_json *alg = km_json_get(out->header, "alg");
	if (!alg || alg->kind != KM_JSON_STRING) {
		if (err)
			km_buf_puts(err, "token is unverifiable: signing method (alg) is unspecified");
		return -ENOTSUP;
	}
	out->alg = alg->s;
	bool known = false;
	for (size_t i = 0; known_algs[i]; i++)
		known = known || km_str_eqc(alg->s, known_algs[i]);
	if (!known) {
		if (err)
			km_buf_puts(err, "token is unverifiable: signing method (alg) is unavailable");
		return -ENOTSUP;
	}
	const struct km_json *kid = km_json_get(out->header, "kid");
	out->has_kid = kid != NULL;
	out->kid_is_string = kid && kid->kind == KM_JSON_STRING;
	if (out->kid_is_string)
		out->kid = kid->s;

	rc = km_jwt_b64url_decode(&sig, d2 + 1, (size_t)(token + len - d2 - 1), &why);
	if (rc) {
		rc = malformed(err, "could not base64 decode signature", km_buf_cstr(&why));
		km_buf_fini(&why);
		km_buf_fini(&sig);
		return rc;
	}
	out->sig_len = sig.len;
	out->sig = km_arena_alloc(a, sig.len + 1);
	if (sig.len)
		memcpy(out->sig, sig.data, sig.len);
	out->signing_input = (struct km_str){token, (size_t)(d2 - token)};
	km_buf_fini(&why);
	km_buf_fini(&sig);
	return 0;
}

int km_jwt_verify_signature(const struct km_jwt *t, const char *key_pem, size_t key_len,
			    struct km_buf *err)
{
	EVP_PKEY *pkey;
	EVP_MD_CTX *md;
	int ok;

	if (!km_str_eqc(t->alg, "RS256")) {
		if (err)
			km_buf_printf(err, "unsupported token alg %.*s. Allowed algorithm is RS256",
				      KM_STR_FMT(t->alg));
		return -ENOTSUP;
	}
	pkey = load_key(key_pem, key_len, false);
	if (!pkey) {
		if (err)
			km_buf_puts(err, "token is unverifiable: invalid RSA key");
		return -EINVAL;
	}
	md = EVP_MD_CTX_new();
	ok = md && (size_t)EVP_PKEY_get_size(pkey) == t->sig_len &&
	     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	     EVP_DigestVerify(md, t->sig, t->sig_len, (const unsigned char *)t->signing_input.ptr,
			      t->signing_input.len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	if (!ok) {
		if (err)
			km_buf_puts(err, "token signature is invalid: crypto/rsa: verification error");
		return -EKEYREJECTED;
	}
	return 0;
}

static bool claim_time(const struct km_json *claims, const char *name, double *out)
{
	const struct km_json *v = km_json_get(claims, name);
	if (!v || v->kind != KM_JSON_NUMBER)
		return false;
	*out = v->is_int ? (double)v->i : v->d;
	return true;
}

int km_jwt_validate_times(const struct km_jwt *t, int64_t now, int64_t leeway, bool check_iat,
			  struct km_buf *err)
{
	double exp, nbf, iat;
	double n = (double)now;

	/* golang-jwt v5: exp valid while now < exp + leeway; nbf when now >= nbf - leeway */
	if (claim_time(t->claims, "exp", &exp) && !(n < exp + (double)leeway)) {
		if (err)
			km_buf_puts(err, "token has invalid claims: token is expired");
		return -EKEYEXPIRED;
	}
	if (check_iat && claim_time(t->claims, "iat", &iat) && n + (double)leeway < iat) {
		if (err)
			km_buf_puts(err, "token has invalid claims: token used before issued");
		return -ETIME;
	}
	if (claim_time(t->claims, "nbf", &nbf) && n < nbf - (double)leeway) {
		if (err)
			km_buf_puts(err, "token has invalid claims: token is not valid yet");
		return -ETIME;
	}
	return 0;
}

int km_jwt_verify(struct km_arena *a, const char *token, size_t len, const char *key_pem,
		  size_t key_len, int64_t now, int64_t leeway, struct km_jwt *out,
		  struct km_buf *err)
{
	int rc = km_jwt_parse(a, token, len, out, err);
	if (rc == 0)
		rc = km_jwt_verify_signature(out, key_pem, key_len, err);
	if (rc == 0)
		rc = km_jwt_validate_times(out, now, leeway, false, err);
	return rc;
}
