/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the kumactl unit tests: locating upstream's kumactl
 * goldens (KUMA_CONFORMANCE_DIR or ../shared/conformance/kuma from the repo
 * root) and reading files into an arena. */
#ifndef KM_TESTS_UNIT_CTL_UTIL_H
#define KM_TESTS_UNIT_CTL_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"

/* Whole file <dir>/<name> under app/kumactl, or NULL when absent. */
static inline char *ctl_test_read(struct km_arena *a, const char *rel)
{
	const char *root = getenv("KUMA_CONFORMANCE_DIR");
	char path[1024];
	snprintf(path, sizeof(path), "%s/app/kumactl/%s",
		 root ? root : "../shared/conformance/kuma", rel);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct km_buf b = KM_BUF_INIT;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		km_buf_append(&b, chunk, n);
	fclose(f);
	char *s = km_arena_strndup(a, km_buf_cstr(&b), b.len);
	km_buf_fini(&b);
	return s;
}

static inline struct km_json *ctl_test_json(struct km_arena *a, const char *text)
{
	struct km_json *v = NULL;
	if (!text || km_json_parse(a, text, strlen(text), &v, NULL) < 0)
		return NULL;
	return v;
}

#endif
