/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer driver for lib/codec/yaml.c: parse arbitrary bytes as a YAML
 * stream; every document must write back as YAML that parses to one equal
 * document, and as JSON that the JSON parser accepts. One arena per input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "codec/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	struct km_json **docs = NULL;
	size_t n = 0;
	if (km_yaml_parse(a, (const char *)data, size, &docs, &n, &err) != 0) {
		if (err.len == 0)
			abort(); /* every failure carries a message */
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct km_buf y = KM_BUF_INIT, j = KM_BUF_INIT, e2 = KM_BUF_INIT;
		struct km_json **back = NULL;
		size_t m = 0;
		if (km_yaml_write(&y, docs[i]) != 0)
			abort();
		if (km_yaml_parse(a, km_buf_cstr(&y), y.len, &back, &m, &e2) != 0) {
			fprintf(stderr, "reparse failed: %s\n--- yaml ---\n%s\n", km_buf_cstr(&e2), km_buf_cstr(&y));
			abort(); /* the writer produced YAML the parser rejects */
		}
		if (m != 1 || !km_json_equal(docs[i], back[0]))
			abort(); /* the round trip changed the document */
		struct km_json *jv = NULL;
		if (km_json_write(&j, docs[i], 0, 0) != 0 ||
		    km_json_parse(a, km_buf_cstr(&j), j.len, &jv, NULL) != 0)
			abort(); /* a YAML tree must be expressible as JSON */
		km_buf_fini(&y);
		km_buf_fini(&j);
		km_buf_fini(&e2);
	}
out:
	km_buf_fini(&err);
	km_arena_free(a);
	return 0;
}
