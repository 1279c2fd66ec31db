/* SPDX-License-Identifier: Apache-2.0 */
/* List filters shared by every store backend: name substring, label
 * equality (all must match) and an optional caller predicate. */
#include "codec/json.h"
#include "cp/store/store.h"

bool cp_store_matches(const struct cp_list_opts *o, struct km_arena *scratch,
		      const struct km_resource *r)
{
	if (o->name_contains.len && km_str_find(r->name, o->name_contains) < 0)
		return false;
	if (o->labels_len) {
		struct km_json *l = NULL;
		if (r->labels.len && km_json_parse(scratch, r->labels.ptr, r->labels.len, &l, NULL))
			return false;
		for (size_t i = 0; i < o->labels_len; i++) {
			struct km_json *v = km_json_get_str(l, o->labels[i].key);
			if (!v || v->kind != KM_JSON_STRING || !km_str_eq(v->s, o->labels[i].value))
				return false;
		}
	}
	if (o->match && !o->match(o->match_ctx, r))
		return false;
	return true;
}
