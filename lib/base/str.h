/* SPDX-License-Identifier: Apache-2.0 */
/* String views: {ptr, len} pairs that borrow memory from an arena or a
 * longer-lived owner; they are never freed on their own. */
#ifndef KM_BASE_STR_H
#define KM_BASE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct km_str {
	const char *ptr;
	size_t len;
};

#define KM_STR(lit) ((struct km_str){(lit), sizeof(lit) - 1})
#define KM_STR_NULL ((struct km_str){NULL, 0})
#define KM_STR_FMT(s) (int)(s).len, (s).ptr

static inline struct km_str km_str_c(const char *s)
{
	return (struct km_str){s, s ? strlen(s) : 0};
}

static inline bool km_str_eq(struct km_str a, struct km_str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline bool km_str_eqc(struct km_str a, const char *b)
{
	return km_str_eq(a, km_str_c(b));
}

static inline bool km_str_has_prefix(struct km_str s, const char *p)
{
	size_t n = strlen(p);
	return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static inline bool km_str_has_suffix(struct km_str s, const char *p)
{
	size_t n = strlen(p);
	return s.len >= n && memcmp(s.ptr + s.len - n, p, n) == 0;
}

int km_str_cmp(struct km_str a, struct km_str b);
/* Finds <needle> in <hay>; returns its offset or -1. */
long km_str_find(struct km_str hay, struct km_str needle);
/* Parses a whole decimal integer; 0 or -EINVAL/-ERANGE. */
int km_str_to_i64(struct km_str s, long long *out);
int km_str_to_u64(struct km_str s, unsigned long long *out);

#endif
