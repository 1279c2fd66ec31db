/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver: arbitrary bytes as a token through km_jwt_parse, signature
 * verification with a fixed key, time checks and the user/dataplane token
 * validators. One RSA key is generated on the first call and kept. */
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "cp/tokens/tokens.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct km_buf key = KM_BUF_INIT;

static int lookup(void *ud, const char *kid, struct km_str *pem, struct km_buf *err)
{
	(void)ud;
	(void)err;
	if (kid[0] == '1' && kid[1] == 0) {
		*pem = (struct km_str){key.data, key.len};
		return 0;
	}
	return -KM_E_NOT_FOUND;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a;
	struct km_buf err = {NULL, 0, 0, 4096};
	struct km_jwt t;

	if (!key.len && km_jwt_keygen(&key, 0))
		return 0;
	a = km_arena_new(0);
	if (km_jwt_parse(a, (const char *)data, size, &t, &err) == 0) {
		km_jwt_verify_signature(&t, key.data, key.len, &err);
		km_jwt_validate_times(&t, 1000, 5, true, &err);
	}
	struct cp_tokens_validator v = {lookup, NULL, "user-token-signing-key", NULL,
					KM_STR("a,b"), true, 1000};
	struct cp_tokens_user u;
	struct cp_tokens_dp d;
	km_buf_reset(&err);
	cp_tokens_user_validate(a, &v, (const char *)data, size, &u, &err);
	km_buf_reset(&err);
	cp_tokens_dp_validate(a, &v, (const char *)data, size, &d, &err);
	km_buf_fini(&err);
	km_arena_free(a);
	return 0;
}
