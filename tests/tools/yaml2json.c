/* SPDX-License-Identifier: Apache-2.0 */
/* Test tool: reads YAML streams on stdin, separated by NUL bytes, and
 * prints one line per stream: {"docs":[...]} with its documents as
 * km_yaml_parse() reads them, or {"error":"..."}. The differential test
 * against PyYAML (tests/e2e/test_yaml_pyyaml.py) runs thousands of cases
 * through one process. */
#include <stdio.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "codec/json.h"
#include "codec/yaml.h"

static void one(const char *text, size_t len)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT, out = KM_BUF_INIT;
	struct km_json **docs = NULL;
	size_t ndocs = 0;
	struct km_json *res = km_json_object(a);
	if (km_yaml_parse(a, text, len, &docs, &ndocs, &err) != 0) {
		km_json_set(a, res, "error", km_json_cstring(a, km_buf_cstr(&err)));
	} else {
		struct km_json *arr = km_json_array(a);
		for (size_t i = 0; i < ndocs; i++)
			km_json_array_push(a, arr, docs[i]);
		km_json_set(a, res, "docs", arr);
	}
	km_json_write(&out, res, 0, 0);
	fwrite(out.data, 1, out.len, stdout);
	fputc('\n', stdout);
	km_buf_fini(&out);
	km_buf_fini(&err);
	km_arena_free(a);
}

int main(void)
{
	struct km_buf in = KM_BUF_INIT;
	in.max = 64u << 20;
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (km_buf_append(&in, chunk, n) != 0) {
			fprintf(stderr, "input too large\n");
			return 2;
		}
	const char *p = in.data ? in.data : "";
	size_t left = in.len;
	while (left) {
		const char *z = memchr(p, 0, left);
		size_t len = z ? (size_t)(z - p) : left;
		one(p, len);
		if (!z)
			break;
		p = z + 1;
		left -= len + 1;
	}
	km_buf_fini(&in);
	return 0;
}
