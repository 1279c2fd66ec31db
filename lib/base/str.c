/* SPDX-License-Identifier: Apache-2.0 */
/* String view helpers. */
#include "base/str.h"

#include <errno.h>
#include <limits.h>

int km_str_cmp(struct km_str a, struct km_str b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
	if (c)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}

long km_str_find(struct km_str hay, struct km_str needle)
{
	if (needle.len == 0)
		return 0;
	if (needle.len > hay.len)
		return -1;
	for (size_t i = 0; i + needle.len <= hay.len; i++)
		if (memcmp(hay.ptr + i, needle.ptr, needle.len) == 0)
			return (long)i;
	return -1;
}

int km_str_to_u64(struct km_str s, unsigned long long *out)
{
	if (s.len == 0 || s.len > 20)
		return -EINVAL;
	unsigned long long v = 0;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (c < '0' || c > '9')
			return -EINVAL;
		unsigned d = (unsigned)(c - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int km_str_to_i64(struct km_str s, long long *out)
{
	int neg = 0;
	if (s.len && (s.ptr[0] == '-' || s.ptr[0] == '+')) {
		neg = s.ptr[0] == '-';
		s.ptr++;
		s.len--;
	}
	unsigned long long v;
	int rc = km_str_to_u64(s, &v);
	if (rc)
		return rc;
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return -ERANGE;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return -ERANGE;
		*out = (long long)v;
	}
	return 0;
}
