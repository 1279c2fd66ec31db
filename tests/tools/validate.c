/* SPDX-License-Identifier: Apache-2.0 */
/* Test tool: reads one universal YAML/JSON resource on stdin, runs the meta
 * checks (when name/mesh are present) and km_validate_resource, and prints
 * {"valid":bool,"violations":[{"field","message"}],"normalized":<doc>}.
 * argv[1] may name the type; --validator-only skips schema errors/defaults
 * (what upstream's validator unit tables exercise); --meta-only runs only
 * the meta checks. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "codec/json.h"
#include "codec/yaml.h"
#include "resource/resource.h"
#include "resource/validate.h"

int main(int argc, char **argv)
{
	const char *type = NULL;
	unsigned flags = 0;
	bool meta_only = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--validator-only") == 0)
			flags |= KM_VALIDATE_VALIDATOR_ONLY;
		else if (strcmp(argv[i], "--meta-only") == 0)
			meta_only = true;
		else
			type = argv[i];
	}
	struct km_buf in = KM_BUF_INIT;
	in.max = 16u << 20;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
		if (km_buf_append(&in, chunk, n) != 0) {
			fprintf(stderr, "input too large\n");
			return 2;
		}
	struct km_arena *a = km_arena_new(0);
	struct km_buf err = KM_BUF_INIT;
	struct km_json **docs = NULL;
	size_t ndocs = 0;
	if (km_yaml_parse(a, km_buf_cstr(&in), in.len, &docs, &ndocs, &err) != 0 || ndocs != 1) {
		fprintf(stderr, "parse error: %s\n", km_buf_cstr(&err));
		return 2;
	}
	struct km_json *doc = docs[0];
	const struct km_rtype *want = NULL;
	if (type) {
		want = km_rtype_by_name(km_str_c(type));
		if (!want) {
			fprintf(stderr, "unknown type %s\n", type);
			return 2;
		}
	}
	struct km_resource_doc d;
	if (km_resource_doc_from_json(a, doc, want, &d, &err) != 0) {
		fprintf(stderr, "decode error: %s\n", km_buf_cstr(&err));
		return 2;
	}
	struct km_violations v;
	km_violations_init(&v, a);
	if (meta_only || (!(flags & KM_VALIDATE_VALIDATOR_ONLY) &&
			  (km_json_get(doc, "name") || km_json_get(doc, "mesh"))))
		km_validate_meta(a, &d, &v);
	if (!meta_only)
		km_validate_resource_ex(a, &d, &v, flags);

	struct km_json *res = km_json_object(a);
	km_json_set(a, res, "valid", km_json_bool(a, v.len == 0));
	struct km_json *arr = km_json_array(a);
	for (size_t i = 0; i < v.len; i++) {
		struct km_json *o = km_json_object(a);
		km_json_set(a, o, "field", km_json_cstring(a, v.items[i].field));
		km_json_set(a, o, "message", km_json_cstring(a, v.items[i].message));
		km_json_array_push(a, arr, o);
	}
	km_json_set(a, res, "violations", arr);
	struct km_resource r;
	km_resource_from_doc(a, &d, &r);
	km_json_set(a, res, "normalized", km_resource_to_json(a, &r));
	struct km_buf out = KM_BUF_INIT;
	km_json_write(&out, res, 2, 0);
	printf("%s\n", km_buf_cstr(&out));
	km_buf_fini(&out);
	km_buf_fini(&in);
	km_buf_fini(&err);
	km_arena_free(a);
	return 0;
}
