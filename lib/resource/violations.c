/* SPDX-License-Identifier: Apache-2.0 */
/* Violation collector and field-path helpers. */
#include "resource/violations.h"

#include <stdarg.h>
#include <string.h>

void km_violations_add(struct km_violations *v, const char *field, const char *fmt, ...)
{
	if (v->len == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 8;
		v->items = km_arena_realloc(v->a, v->items, v->cap * sizeof(*v->items),
					    cap * sizeof(*v->items));
		v->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	v->items[v->len].field = km_arena_strdup(v->a, field ? field : "");
	v->items[v->len].message = km_arena_vprintf(v->a, fmt, ap);
	va_end(ap);
	v->len++;
}

void km_violations_merge(struct km_violations *dst, const struct km_violations *src,
			 const char *prefix)
{
	for (size_t i = 0; i < src->len; i++) {
		const char *f = src->items[i].field;
		const char *full = prefix && *prefix
				       ? (*f ? km_path_field(dst->a, prefix, f) : prefix)
				       : f;
		km_violations_add(dst, full, "%s", src->items[i].message);
	}
}

const char *km_path_field(struct km_arena *a, const char *base, const char *field)
{
	if (!base || !*base)
		return km_arena_strdup(a, field);
	if (field[0] == '[')
		return km_arena_printf(a, "%s%s", base, field);
	return km_arena_printf(a, "%s.%s", base, field);
}

const char *km_path_index(struct km_arena *a, const char *base, size_t i)
{
	return km_arena_printf(a, "%s[%zu]", base ? base : "", i);
}

const char *km_path_key(struct km_arena *a, const char *base, const char *key)
{
	return km_arena_printf(a, "%s[\"%s\"]", base ? base : "", key);
}
