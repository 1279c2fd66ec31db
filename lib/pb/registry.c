/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "base/hash.h"
#include "base/mem.h"
#include "pb/registry.h"

/* The table by name hash, built once: every Any in a resource being
 * encoded or decoded is looked up here (a binary search compared a dozen
 * names of about 40 bytes each time). Twice the table's size, linear
 * probing; read-only once built. */
static const struct km_pb_registry_entry **by_hash;
static size_t by_hash_mask;
static pthread_once_t by_hash_once = PTHREAD_ONCE_INIT;

static uint64_t name_hash(const char *p, size_t n)
{
	return km_hash(KM_FNV_INIT, p, n);
}

static void by_hash_build(void)
{
	size_t cap = 16;
	while (cap < 2 * km_pb_registry_count)
		cap *= 2;
	by_hash = km_calloc(cap, sizeof(*by_hash));
	by_hash_mask = cap - 1;
	for (size_t i = 0; i < km_pb_registry_count; i++) {
		const char *n = km_pb_registry_table[i].name;
		size_t j = (size_t)name_hash(n, strlen(n)) & by_hash_mask;
		while (by_hash[j])
			j = (j + 1) & by_hash_mask;
		by_hash[j] = &km_pb_registry_table[i];
	}
}

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
	pthread_once(&by_hash_once, by_hash_build);
	for (size_t j = (size_t)name_hash(name.ptr, name.len) & by_hash_mask; by_hash[j]; j = (j + 1) & by_hash_mask)
		if (km_str_eqc(name, by_hash[j]->name))
			return by_hash[j]->desc;
	return NULL;
}
