/* SPDX-License-Identifier: Apache-2.0 */
/* Signing-key secrets and the bootstrap admin token: RSA keys generated with
 * OpenSSL, stored base64-encoded in (Global)Secrets as upstream names them. */
#include "cp/defaults_keys.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "base/log.h"
#include "cp/manager.h"

static struct km_json *b64_json(struct km_arena *a, const char *data, size_t len)
{
	char *out = km_arena_alloc(a, 4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data, (int)len);
	return km_json_string(a, (struct km_str){out, (size_t)(n > 0 ? n : 0)});
}

static int store_secret(struct cp_runtime *rt, struct km_arena *a, const char *type,
			struct km_str mesh, const char *name, const char *data, size_t len)
{
	struct km_resource_doc d = {0};
	d.type = km_rtype_by_name(km_str_c(type));
	d.mesh = mesh;
	d.name = km_str_c(name);
	d.spec = km_json_object(a);
	km_json_set(a, d.spec, "data", b64_json(a, data, len));
	struct km_violations v;
	km_violations_init(&v, a);
	int rc = cp_manager_create(rt, a, &d, &v);
	if (rc == 0)
		km_info("defaults", "secret created type=%s name=%s mesh=%.*s", type, name, KM_STR_FMT(mesh));
	return rc == -KM_E_EXISTS ? 0 : rc;
}

static bool exists(struct cp_runtime *rt, struct km_arena *a, const char *type, struct km_str mesh,
		   const char *name)
{
	struct km_resource r;
	return cp_store_get(rt->store, a, km_rtype_by_name(km_str_c(type)), mesh, km_str_c(name), &r) == 0;
}

int cp_defaults_signing_key(struct cp_runtime *rt, struct km_arena *a, const char *type,
			    struct km_str mesh, const char *name)
{
	if (exists(rt, a, type, mesh, name))
		return 0;
	struct km_buf pem = KM_BUF_INIT;
	int rc = km_jwt_keygen(&pem, 2048);
	if (rc == 0)
		rc = store_secret(rt, a, type, mesh, name, pem.data, pem.len);
	km_buf_fini(&pem);
	return rc;
}

/* Upstream's admin token: a user token for mesh-system:admin valid 10 years. */
int cp_defaults_admin_token(struct cp_runtime *rt, struct km_arena *a)
{
	if (exists(rt, a, "GlobalSecret", KM_STR(""), "admin-user-token"))
		return 0;
	struct km_resource key;
	int rc = cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("GlobalSecret")), KM_STR(""),
			      KM_STR("user-token-signing-key-1"), &key);
	if (rc)
		return rc;
	struct km_json *spec;
	if (km_json_parse(a, key.spec.ptr, key.spec.len, &spec, NULL))
		return -EINVAL;
	struct km_str b64 = km_json_get_string(spec, "data");
	unsigned char *pem = km_arena_alloc(a, b64.len + 1);
	int n = EVP_DecodeBlock(pem, (const unsigned char *)b64.ptr, (int)b64.len);
	if (n < 0)
		return -EINVAL;
	while (n > 0 && pem[n - 1] == 0)
		n--; /* EVP_DecodeBlock pads the output with zeros */
	int64_t now = km_time_now() / 1000000000;
	unsigned char jti[16];
	RAND_bytes(jti, sizeof(jti));
	char jtis[40];
	snprintf(jtis, sizeof(jtis), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 jti[0], jti[1], jti[2], jti[3], jti[4], jti[5], (jti[6] & 0x0f) | 0x40, jti[7],
		 (jti[8] & 0x3f) | 0x80, jti[9], jti[10], jti[11], jti[12], jti[13], jti[14], jti[15]);
	struct km_json *claims = km_json_object(a);
	km_json_set(a, claims, "Name", km_json_cstring(a, "mesh-system:admin"));
	struct km_json *groups = km_json_array(a);
	km_json_array_push(a, groups, km_json_cstring(a, "mesh-system:admin"));
	km_json_set(a, claims, "Groups", groups);
	km_json_set(a, claims, "exp", km_json_int(a, now + 10LL * 365 * 24 * 3600));
	km_json_set(a, claims, "nbf", km_json_int(a, now - 300));
	km_json_set(a, claims, "iat", km_json_int(a, now));
	km_json_set(a, claims, "jti", km_json_cstring(a, jtis));
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	rc = km_jwt_sign(&tok, (const char *)pem, (size_t)n, "1", claims, &err);
	if (rc == 0)
		rc = store_secret(rt, a, "GlobalSecret", KM_STR(""), "admin-user-token", tok.data, tok.len);
	else
		km_error("defaults", "cannot sign the admin token error=%s", km_buf_cstr(&err));
	km_buf_fini(&tok);
	km_buf_fini(&err);
	return rc;
}
