/* SPDX-License-Identifier: Apache-2.0 */
/* Validation results: every violation with its field path, in check order,
 * as upstream's ValidationError collects them. Storage is the arena given at
 * init; the collector itself is a value owned by the caller. */
#ifndef KM_RESOURCE_VIOLATIONS_H
#define KM_RESOURCE_VIOLATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/arena.h"

struct km_violation {
	const char *field;
	const char *message;
};

struct km_violations {
	struct km_arena *a;
	struct km_violation *items;
	size_t len, cap;
};

static inline void km_violations_init(struct km_violations *v, struct km_arena *a)
{
	v->a = a;
	v->items = NULL;
	v->len = v->cap = 0;
}

void km_violations_add(struct km_violations *v, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends every violation of <src>, prefixing fields with <prefix> ("spec"). */
void km_violations_merge(struct km_violations *dst, const struct km_violations *src,
			 const char *prefix);

/* Field-path builders: "spec.to[0].default" style, allocated in the arena. */
const char *km_path_field(struct km_arena *a, const char *base, const char *field);
const char *km_path_index(struct km_arena *a, const char *base, size_t i);
/* labels["kuma.io/origin"] style keys */
const char *km_path_key(struct km_arena *a, const char *base, const char *key);

#endif
