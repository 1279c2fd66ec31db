/* SPDX-License-Identifier: Apache-2.0 */
/* User and dataplane tokens: claim building in upstream's JSON field order,
 * and validation in golang-jwt's order (decode, kid, key, signature, times),
 * then the revocation list. Parsed values live in the caller's arena. */
#include "cp/tokens/tokens.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "codec/json.h"

#define ISSUE_SKEW 5 /* seconds, upstream's hard-coded clock skew */

char *cp_tokens_dp_key_prefix(struct km_arena *a, const char *mesh)
{
	return km_arena_printf(a, "%s%s", CP_TOKENS_DP_KEY_PREFIX, mesh);
}

char *cp_tokens_dp_revocations_name(struct km_arena *a, const char *mesh)
{
	return km_arena_printf(a, "%s%s", CP_TOKENS_DP_REVOCATIONS_PREFIX, mesh);
}

char *cp_tokens_signing_key_name(struct km_arena *a, const char *prefix, const char *kid)
{
	if (strcmp(kid, "0") == 0)
		return km_arena_strdup(a, prefix);
	return km_arena_printf(a, "%s-%s", prefix, kid);
}

long long cp_tokens_signing_key_serial(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	long long v;
	if (strncmp(name, prefix, n) != 0)
		return -1;
	if (name[n] != '-' || km_str_to_i64(km_str_c(name + n + 1), &v) != 0)
		return 0;
	return v;
}

void cp_tokens_key_not_found(struct km_buf *err, const char *prefix, const char *kid,
			     const char *mesh)
{
	char name[512];
	if (strcmp(kid, "0") == 0)
		snprintf(name, sizeof(name), "%s", prefix);
	else
		snprintf(name, sizeof(name), "%s-%s", prefix, kid);
	if (!mesh || !*mesh)
		km_buf_printf(err,
			      "there is no signing key with KID %s. GlobalSecret of name \"%s\" is "
			      "not found. If signing key was rotated, regenerate the token",
			      kid, name);
	else
		km_buf_printf(err,
			      "there is no signing key with KID %s. Secret of name \"%s\" in mesh "
			      "\"%s\" is not found. If signing key was rotated, regenerate the token",
			      kid, name, mesh);
}

bool cp_tokens_is_revoked(const char *data, size_t len, const char *jti)
{
	size_t jl = strlen(jti);
	if (len == 0)
		return false;
	if (data[len - 1] == '\n')
		len--;
	for (size_t start = 0; start <= len;) {
		const char *comma = memchr(data + start, ',', len - start);
		size_t end = comma ? (size_t)(comma - data) : len;
		if (end - start == jl && memcmp(data + start, jti, jl) == 0)
			return true;
		start = end + 1;
	}
	return false;
}

void cp_tokens_uuid(char buf[37])
{
	unsigned char r[16];
	if (RAND_bytes(r, sizeof(r)) != 1)
		abort(); /* no randomness: nothing safe to do */
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(buf, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
		 r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
		 r[14], r[15]);
}

/* ---- issuing ---- */

static void set_registered(struct km_arena *a, struct km_json *c, int64_t now, int64_t valid_for,
			   const char *jti)
{
	char uuid[37];
	int64_t t = now - ISSUE_SKEW;
	if (!jti) {
		cp_tokens_uuid(uuid);
		jti = uuid;
	}
	km_json_set(a, c, "exp", km_json_int(a, t + valid_for + ISSUE_SKEW));
	km_json_set(a, c, "nbf", km_json_int(a, t));
	km_json_set(a, c, "iat", km_json_int(a, t));
	km_json_set(a, c, "jti", km_json_cstring(a, jti));
}

static struct km_json *str_array(struct km_arena *a, const char *const *v, size_t n)
{
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < n; i++)
		km_json_array_push(a, arr, km_json_cstring(a, v[i]));
	return arr;
}

int cp_tokens_user_issue(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
			 const char *name, const char *const *groups, size_t n_groups, int64_t now,
			 int64_t valid_for, const char *jti, struct km_buf *err)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *c = km_json_object(a);
	int rc;

	km_json_set(a, c, "Name", km_json_cstring(a, name ? name : ""));
	km_json_set(a, c, "Groups", groups ? str_array(a, groups, n_groups) : km_json_null(a));
	set_registered(a, c, now, valid_for, jti);
	rc = km_jwt_sign(out, key_pem, key_len, kid, c, err);
	km_arena_free(a);
	return rc;
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static int cmp_tag(const void *x, const void *y)
{
	return strcmp(((const struct cp_tokens_tag *)x)->key, ((const struct cp_tokens_tag *)y)->key);
}

int cp_tokens_dp_issue(struct km_buf *out, const char *key_pem, size_t key_len, const char *kid,
		       const struct cp_tokens_dp *id, int64_t now, int64_t valid_for,
		       const char *jti, struct km_buf *err)
{
	struct km_arena *a = km_arena_new(0);
	struct km_json *c = km_json_object(a), *tags = km_json_object(a);
	struct cp_tokens_tag *sorted = km_arena_alloc(a, (id->n_tags + 1) * sizeof(*sorted));
	int rc;

	if (id->n_tags)
		memcpy(sorted, id->tags, id->n_tags * sizeof(*sorted));
	qsort(sorted, id->n_tags, sizeof(*sorted), cmp_tag);
	for (size_t i = 0; i < id->n_tags; i++) {
		const char **vals = km_arena_alloc(a, (sorted[i].n_values + 1) * sizeof(char *));
		if (sorted[i].n_values)
			memcpy(vals, sorted[i].values, sorted[i].n_values * sizeof(char *));
		qsort(vals, sorted[i].n_values, sizeof(char *), cmp_cstr);
		km_json_set(a, tags, sorted[i].key, str_array(a, vals, sorted[i].n_values));
	}
	km_json_set(a, c, "Name", km_json_cstring(a, id->name ? id->name : ""));
	km_json_set(a, c, "Mesh", km_json_cstring(a, id->mesh ? id->mesh : ""));
	km_json_set(a, c, "Tags", tags);
	km_json_set(a, c, "Type", km_json_cstring(a, id->type ? id->type : ""));
	km_json_set(a, c, "Workload", km_json_cstring(a, id->workload ? id->workload : ""));
	set_registered(a, c, now, valid_for, jti);
	rc = km_jwt_sign(out, key_pem, key_len, kid, c, err);
	km_arena_free(a);
	return rc;
}

/* ---- validation ---- */

static const char *kind_name(const struct km_json *v)
{
	static const char *const names[] = {"null", "bool", "number", "string", "array", "object"};
	return names[v->kind];
}

/* Go's "could not JSON decode claim" error for a claim of the wrong shape. */
static int shape_error(struct km_buf *err, const char *strct, const char *field,
		       const struct km_json *v, const char *type)
{
	km_buf_printf(err,
		      "token is malformed: could not JSON decode claim: json: cannot unmarshal %s "
		      "into Go struct field %s.%s of type %s",
		      kind_name(v), strct, field, type);
	return -EBADMSG;
}

static const char *opt_string(struct km_arena *a, const struct km_json *claims, const char *key,
			      const char *strct, int *rc, struct km_buf *err)
{
	const struct km_json *v = km_json_get(claims, key);
	if (!v || v->kind == KM_JSON_NULL)
		return "";
	if (v->kind != KM_JSON_STRING) {
		*rc = shape_error(err, strct, key, v, "string");
		return "";
	}
	return km_arena_strndup(a, v->s.ptr, v->s.len);
}

static int string_list(struct km_arena *a, const struct km_json *v, const char *strct,
		       const char *field, size_t cap, const char ***out, size_t *n,
		       struct km_buf *err)
{
	*out = NULL;
	*n = 0;
	if (!v || v->kind == KM_JSON_NULL)
		return 0;
	if (v->kind != KM_JSON_ARRAY)
		return shape_error(err, strct, field, v, "[]string");
	if (v->len > cap) {
		km_buf_printf(err, "token is malformed: claim %s has more than %zu entries", field, cap);
		return -EBADMSG;
	}
	*out = km_arena_alloc(a, (v->len + 1) * sizeof(char *));
	for (size_t i = 0; i < v->len; i++) {
		const struct km_json *it = v->items[i];
		if (it->kind == KM_JSON_NULL) {
			(*out)[i] = "";
			continue;
		}
		if (it->kind != KM_JSON_STRING)
			return shape_error(err, strct, field, it, "string");
		(*out)[i] = km_arena_strndup(a, it->s.ptr, it->s.len);
	}
	*n = v->len;
	return 0;
}

static int wrap_parse_error(const struct cp_tokens_validator *v, int rc, const char *msg,
			    struct km_buf *err)
{
	if (rc == -ETIME)
		km_buf_printf(err,
			      "token is not yet valid: 'valid_from' date is in the future. Check if "
			      "the system clock on the instance that issued the token is set "
			      "correctly: %s",
			      msg);
	else if (v->memory_store)
		km_buf_printf(err,
			      "could not parse token. kuma-cp runs with an in-memory database and "
			      "its state isn't preserved between restarts. Keep in mind that an "
			      "in-memory database cannot be used with multiple instances of the "
			      "control plane: %s",
			      msg);
	else
		km_buf_printf(err, "could not parse token: %s", msg);
	return -KM_E_UNAUTHENTICATED;
}

typedef int (*claims_fn)(struct km_arena *a, const struct km_json *claims, void *out,
			 struct km_buf *err);

/* The shared pipeline: decode, claim shape, kid, key, signature, times, revocation. */
static int validate(struct km_arena *a, const struct cp_tokens_validator *v, const char *token,
		    size_t len, claims_fn decode, void *out, const char **jti, struct km_buf *err)
{
	struct km_buf msg = KM_BUF_INIT;
	struct km_jwt t;
	struct km_str pem = KM_STR_NULL;
	int rc;

	rc = km_jwt_parse(a, token, len, &t, &msg);
	if (rc == 0)
		rc = decode(a, t.claims, out, &msg);
	if (rc == 0 && !t.has_kid) {
		km_buf_puts(&msg, "token is unverifiable: error while executing keyfunc: JWT token "
				  "must have kid header");
		rc = -ENOTSUP;
	} else if (rc == 0 && !t.kid_is_string) {
		km_buf_puts(&msg, "token is unverifiable: error while executing keyfunc: JWT token "
				  "kid header must be a string");
		rc = -ENOTSUP;
	} else if (rc == 0 && !km_str_eqc(t.alg, "RS256")) {
		km_buf_printf(&msg,
			      "token is unverifiable: error while executing keyfunc: unsupported "
			      "token alg %.*s. Allowed algorithm is RS256",
			      KM_STR_FMT(t.alg));
		rc = -ENOTSUP;
	}
	if (rc == 0) {
		char *kid = km_arena_strndup(a, t.kid.ptr, t.kid.len);
		struct km_buf why = KM_BUF_INIT;
		rc = v->key(v->key_ud, kid, &pem, &why);
		if (rc == -KM_E_NOT_FOUND) {
			cp_tokens_key_not_found(err, v->key_prefix ? v->key_prefix : "", kid,
						v->key_mesh);
			km_buf_fini(&why);
			km_buf_fini(&msg);
			return -KM_E_NOT_FOUND;
		}
		if (rc)
			km_buf_printf(&msg, "token is unverifiable: error while executing keyfunc: %s",
				      km_buf_cstr(&why));
		km_buf_fini(&why);
	}
	if (rc == 0)
		rc = km_jwt_verify_signature(&t, pem.ptr, pem.len, &msg);
	if (rc == 0)
		rc = km_jwt_validate_times(&t, v->now, 0, false, &msg);
	if (rc) {
		rc = wrap_parse_error(v, rc, km_buf_cstr(&msg), err);
		km_buf_fini(&msg);
		return rc;
	}
	km_buf_fini(&msg);
	const struct km_json *j = km_json_get(t.claims, "jti");
	*jti = j && j->kind == KM_JSON_STRING ? km_arena_strndup(a, j->s.ptr, j->s.len) : "";
	if (cp_tokens_is_revoked(v->revoked.ptr, v->revoked.len, *jti)) {
		km_buf_puts(err, "token is revoked");
		return -KM_E_UNAUTHENTICATED;
	}
	return 0;
}

static int64_t exp_of(const struct km_json *claims)
{
	const struct km_json *e = km_json_get(claims, "exp");
	if (!e || e->kind != KM_JSON_NUMBER)
		return 0;
	return e->is_int ? e->i : (int64_t)e->d;
}

static int decode_user(struct km_arena *a, const struct km_json *claims, void *p,
		       struct km_buf *err)
{
	struct cp_tokens_user *u = p;
	int rc = 0;
	memset(u, 0, sizeof(*u));
	u->name = opt_string(a, claims, "Name", "UserClaims", &rc, err);
	if (rc)
		return rc;
	rc = string_list(a, km_json_get(claims, "Groups"), "UserClaims", "Groups",
			 CP_TOKENS_MAX_GROUPS, &u->groups, &u->n_groups, err);
	u->exp = exp_of(claims);
	const struct km_json *t = km_json_get(claims, "iat");
	u->iat = t && t->kind == KM_JSON_NUMBER && t->is_int ? t->i : 0;
	t = km_json_get(claims, "nbf");
	u->nbf = t && t->kind == KM_JSON_NUMBER && t->is_int ? t->i : 0;
	return rc;
}

int cp_tokens_user_validate(struct km_arena *a, const struct cp_tokens_validator *v,
			    const char *token, size_t len, struct cp_tokens_user *out,
			    struct km_buf *err)
{
	const char *jti = "";
	int rc = validate(a, v, token, len, decode_user, out, &jti, err);
	out->jti = jti;
	return rc;
}

static int decode_dp(struct km_arena *a, const struct km_json *claims, void *p, struct km_buf *err)
{
	struct cp_tokens_dp *d = p;
	int rc = 0;
	memset(d, 0, sizeof(*d));
	d->name = opt_string(a, claims, "Name", "DataplaneClaims", &rc, err);
	if (!rc)
		d->mesh = opt_string(a, claims, "Mesh", "DataplaneClaims", &rc, err);
	if (!rc)
		d->type = opt_string(a, claims, "Type", "DataplaneClaims", &rc, err);
	if (!rc)
		d->workload = opt_string(a, claims, "Workload", "DataplaneClaims", &rc, err);
	if (rc)
		return rc;
	d->exp = exp_of(claims);
	const struct km_json *tags = km_json_get(claims, "Tags");
	if (!tags || tags->kind == KM_JSON_NULL)
		return 0;
	if (tags->kind != KM_JSON_OBJECT)
		return shape_error(err, "DataplaneClaims", "Tags", tags, "map[string][]string");
	if (tags->len > CP_TOKENS_MAX_TAGS) {
		km_buf_printf(err, "token is malformed: claim Tags has more than %d entries",
			      CP_TOKENS_MAX_TAGS);
		return -EBADMSG;
	}
	d->tags = km_arena_alloc(a, (tags->len + 1) * sizeof(*d->tags));
	for (size_t i = 0; i < tags->len; i++) {
		struct cp_tokens_tag *t = &d->tags[i];
		t->key = km_arena_strndup(a, tags->members[i].key.ptr, tags->members[i].key.len);
		rc = string_list(a, tags->members[i].val, "DataplaneClaims", "Tags", CP_TOKENS_MAX_TAGS,
				 &t->values, &t->n_values, err);
		if (rc)
			return rc;
	}
	d->n_tags = tags->len;
	return 0;
}

int cp_tokens_dp_validate(struct km_arena *a, const struct cp_tokens_validator *v,
			  const char *token, size_t len, struct cp_tokens_dp *out,
			  struct km_buf *err)
{
	const char *jti = "";
	int rc = validate(a, v, token, len, decode_dp, out, &jti, err);
	out->jti = jti;
	return rc;
}
