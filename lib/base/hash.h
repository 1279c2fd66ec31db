/* SPDX-License-Identifier: Apache-2.0 */
/* 64-bit FNV-1a: resource versions, fingerprints and hash-table keys. Not a
 * cryptographic hash; nothing here must resist a chosen input. */
#ifndef KM_BASE_HASH_H
#define KM_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>

#define KM_FNV_INIT 1469598103934665603ULL

/* Continues the hash <h> over <n> bytes at <p>. */
static inline uint64_t km_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return h;
}

/* Continues <h> over one separator byte, so that ("ab","c") and ("a","bc")
 * hash apart. */
static inline uint64_t km_fnv_sep(uint64_t h, unsigned char sep)
{
	return (h ^ sep) * 1099511628211ULL;
}

#endif
