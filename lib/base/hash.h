/* SPDX-License-Identifier: Apache-2.0 */
/* 64-bit FNV-1a: resource versions, fingerprints and hash-table keys; and
 * km_hash, eight bytes per step, for long keys on hot paths. Not
 * cryptographic hashes; nothing here must resist a chosen input. */
#ifndef KM_BASE_HASH_H
#define KM_BASE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* Continues <h> over <n> bytes at <p>, a word at a time (FNV-1a's one
 * multiply per byte is the cost of hashing kilobyte keys). The result
 * depends on the byte order of the machine: for tables and versions kept
 * in memory only. */
static inline uint64_t km_hash(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	const uint64_t k = 0x9E3779B97F4A7C15ULL;
	h ^= (uint64_t)n * k;
	for (; n >= 8; b += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, b, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	uint64_t w = 0;
	if (n)
		memcpy(&w, b, n);
	h = (h ^ w) * k;
	h ^= h >> 32;
	h *= 0xD6E8FEB86659FD93ULL;
	h ^= h >> 32;
	return h;
}

#endif
