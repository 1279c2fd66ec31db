/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for cp/config/tls.c: upstream's version names, and every Go cipher
 * suite name mapping to a suite this OpenSSL accepts (TLS 1.3 suites and
 * RC4 left out, unknown names refused with upstream's message). */
#include <errno.h>
#include <openssl/ssl.h>
#include <string.h>

#include "../test.h"
#include "cp/config/tls.h"

static const char *const go12[] = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
};

static int list_of(const char *const *names, size_t n, struct km_buf *out, int *dropped, struct km_buf *err)
{
	struct cp_config_strlist l = {n, (char **)names};
	return cp_tls_ciphers(&l, out, dropped, err);
}

int main(void)
{
	CHECK(cp_tls_version("") == 0);
	CHECK(cp_tls_version("TLSv1_2") == TLS1_2_VERSION);
	CHECK(cp_tls_version("TLSv1_3") == TLS1_3_VERSION);
	CHECK(cp_tls_version("TLSv1_1") == -1 && cp_tls_version("tlsv1_2") == -1);

	/* each name alone is a list OpenSSL accepts, naming one suite */
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	SSL_CTX_set_security_level(ctx, 0); /* 3DES and plain RSA are weak, still suites */
	for (size_t i = 0; i < sizeof(go12) / sizeof(go12[0]); i++) {
		struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
		int dropped = -1;
		CHECK(list_of(&go12[i], 1, &out, &dropped, &err) == 0 && dropped == 0);
		CHECK(out.len && !strchr(km_buf_cstr(&out), ':'));
		if (SSL_CTX_set_cipher_list(ctx, km_buf_cstr(&out)) != 1) {
			fprintf(stderr, "OpenSSL refuses %s (%s)\n", km_buf_cstr(&out), go12[i]);
			CHECK(false);
		}
		km_buf_fini(&out);
		km_buf_fini(&err);
	}
	SSL_CTX_free(ctx);

	/* TLS 1.3 suites are not configurable (as in Go); RC4 is not in OpenSSL */
	static const char *const mixed[] = {"TLS_AES_128_GCM_SHA256", "TLS_RSA_WITH_RC4_128_SHA",
					    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_3DES_EDE_CBC_SHA"};
	struct km_buf out = KM_BUF_INIT, err = KM_BUF_INIT;
	int dropped = 0;
	CHECK(list_of(mixed, 4, &out, &dropped, &err) == 0);
	CHECK_STREQ(km_buf_cstr(&out), "ECDHE-RSA-AES128-GCM-SHA256:DES-CBC3-SHA");
	CHECK(dropped == 1);
	km_buf_reset(&out);
	static const char *const bad[] = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "AES128-SHA"};
	CHECK(list_of(bad, 2, &out, &dropped, &err) == -EINVAL);
	CHECK(strncmp(km_buf_cstr(&err), "unsupported tls cipher: AES128-SHA supported ciphers insecure:[", 63) == 0);
	CHECK(strstr(km_buf_cstr(&err), "], secure:[TLS_AES_128_GCM_SHA256 ") != NULL);
	km_buf_fini(&out);
	km_buf_fini(&err);
	return test_summary();
}
