/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for cp_envoy_admin_sanitize (cp/envoyadmin.c), which
 * reads a proxy's config dump: arbitrary bytes either fail with -EINVAL or
 * give JSON that parses again, and sanitizing that output again changes
 * nothing (every token is gone, "[redacted]" stays). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "cp/envoyadmin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_buf out = KM_BUF_INIT, again = KM_BUF_INIT;
	int rc = cp_envoy_admin_sanitize((struct km_str){(const char *)data, size}, &out);
	if (rc != 0 && rc != -EINVAL)
		abort();
	if (rc == 0) {
		struct km_arena *a = km_arena_new(4096);
		struct km_json *v = NULL;
		if (km_json_parse(a, out.data ? out.data : "", out.len, &v, NULL) != 0)
			abort(); /* redacting broke the JSON */
		if (cp_envoy_admin_sanitize((struct km_str){out.data ? out.data : "", out.len}, &again) != 0)
			abort();
		if (again.len != out.len || (out.len && memcmp(again.data, out.data, out.len) != 0))
			abort(); /* a token survived the first pass */
		km_arena_free(a);
	}
	km_buf_fini(&out);
	km_buf_fini(&again);
	return 0;
}
