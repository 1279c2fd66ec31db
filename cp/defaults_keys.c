/* SPDX-License-Identifier: Apache-2.0 */
/* Signing-key secrets and the bootstrap admin token: RSA keys generated with
 * OpenSSL, stored base64-encoded in (Global)Secrets as upstream names them. */
#include "cp/defaults_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "base/log.h"
#include "cp/manager.h"
#include "cp/tokens/tokens.h"

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

/* Keys generated ahead on threads of their own (cp_defaults_keys_prefetch),
 * taken in order by the loop thread. */
static struct prefetched {
	pthread_t th;
	struct km_buf pem;
	int rc;
} pool[3];
static size_t npool, taken;

static void *keygen_main(void *arg)
{
	struct prefetched *p = arg;
	p->rc = km_jwt_keygen(&p->pem, 2048);
	return NULL;
}

void cp_defaults_keys_prefetch(size_t n)
{
	cp_defaults_keys_drain();
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the loop's signalfd gets them */
	for (size_t i = 0; i < n && i < sizeof(pool) / sizeof(pool[0]); i++) {
		pool[npool] = (struct prefetched){.pem = KM_BUF_INIT};
		if (pthread_create(&pool[npool].th, NULL, keygen_main, &pool[npool]) != 0)
			break;
		npool++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* The next prefetched key (waiting for it), or a new one made here. */
static int next_key(struct km_buf *pem)
{
	if (taken == npool)
		return km_jwt_keygen(pem, 2048);
	struct prefetched *p = &pool[taken++];
	pthread_join(p->th, NULL);
	*pem = p->pem;
	p->pem = (struct km_buf)KM_BUF_INIT;
	return p->rc;
}

void cp_defaults_keys_drain(void)
{
	while (taken < npool) {
		struct km_buf pem = KM_BUF_INIT;
		next_key(&pem);
		if (pem.data)
			OPENSSL_cleanse(pem.data, pem.len);
		km_buf_fini(&pem);
	}
	npool = taken = 0;
}

int cp_defaults_signing_key(struct cp_runtime *rt, struct km_arena *a, const char *type,
			    struct km_str mesh, const char *name)
{
	if (exists(rt, a, type, mesh, name))
		return 0;
	struct km_buf pem = KM_BUF_INIT;
	int rc = next_key(&pem);
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
	static const char *const groups[] = {"mesh-system:admin"};
	struct km_buf tok = KM_BUF_INIT, err = KM_BUF_INIT;
	rc = cp_tokens_user_issue(&tok, (const char *)pem, (size_t)n, CP_TOKENS_DEFAULT_KID,
				  "mesh-system:admin", groups, 1, km_time_now() / 1000000000,
				  10LL * 365 * 24 * 3600, NULL, &err);
	if (rc == 0)
		rc = store_secret(rt, a, "GlobalSecret", KM_STR(""), "admin-user-token", tok.data, tok.len);
	else
		km_error("defaults", "cannot sign the admin token error=%s", km_buf_cstr(&err));
	km_buf_fini(&tok);
	km_buf_fini(&err);
	return rc;
}
