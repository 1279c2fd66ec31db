/* SPDX-License-Identifier: Apache-2.0 */
/* Lookup in the generated, sorted message table: a binary search over full
 * names. Nothing is allocated. */
#include <string.h>

#include "pb/registry.h"

const ProtobufCMessageDescriptor *km_pb_find(struct km_str name)
{
	for (size_t i = name.len; i > 0; i--) {
		if (name.ptr[i - 1] == '/') {
			name.ptr += i;
			name.len -= i;
			break;
		}
	}
	if (name.len == 0)
		return NULL;
	size_t lo = 0, hi = km_pb_registry_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = km_str_cmp(km_str_c(km_pb_registry_table[mid].name), name);
		if (c == 0)
			return km_pb_registry_table[mid].desc;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
