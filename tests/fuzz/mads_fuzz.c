/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for MADS requests (cp/mads.c): the first byte says how
 * many of the next bytes are the ?fetch-timeout value (0: none), the rest
 * is the DiscoveryRequest body. Nothing crashes; an accepted request's
 * strings are readable and a refused one has a title and a detail. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "cp/mads.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t tl = data[0] % 32;
	if (tl > size - 1)
		tl = size - 1;
	struct km_str ft = {(const char *)data + 1, tl};
	const char *body = (const char *)data + 1 + tl;
	size_t len = size - 1 - tl;
	struct km_arena *a = km_arena_new(4096);
	struct cp_mads_request r;
	const char *title = NULL, *detail = NULL;
	int rc = cp_mads_parse_request(a, body, len, tl ? &ft : NULL, 5000000000LL, &r, &title, &detail);
	if (rc == 0) {
		volatile size_t sum = 0;
		for (size_t i = 0; i < r.client.len; i++)
			sum += (unsigned char)r.client.ptr[i];
		for (size_t i = 0; i < r.version.len; i++)
			sum += (unsigned char)r.version.ptr[i];
		(void)sum;
	} else if (rc != -1 || !title || !detail || !strlen(title)) {
		abort();
	}
	km_arena_free(a);
	return 0;
}
