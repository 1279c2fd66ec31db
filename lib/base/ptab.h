/* SPDX-License-Identifier: Apache-2.0 */
/* An open-addressing table of entries its caller owns, by a 64-bit hash the
 * caller computes. Each slot holds the entry's hash beside its pointer, so a
 * probe reads an entry only when the hashes agree. Equality, the entries'
 * memory and what a filter keeps are the caller's; the table owns only its
 * slots. Not thread-safe: a caller shared by threads locks around it. */
#ifndef KM_BASE_PTAB_H
#define KM_BASE_PTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct km_ptab_slot {
	uint64_t h;
	void *e; /* NULL: free */
};

/* Zeroed is empty. At most half of the slots are used. */
struct km_ptab {
	struct km_ptab_slot *slot;
	size_t cap, n; /* cap: 0 or a power of two */
};

/* The next entry added with hash <h>, or NULL when there is none: *<it>
 * starts at 0 and says where the search goes on. The table must not change
 * between calls. */
void *km_ptab_next(const struct km_ptab *t, uint64_t h, size_t *it);

/* Every entry, one per call, in slot order (*<it> starts at 0), or NULL
 * after the last. */
void *km_ptab_each(const struct km_ptab *t, size_t *it);

/* Adds <e> under <h>; an equal entry already there stays (the caller looks
 * first). Grows the slots when half would be used. */
void km_ptab_add(struct km_ptab *t, uint64_t h, void *e);

/* Makes room for <n> entries in all, so that adding them grows nothing. */
void km_ptab_reserve(struct km_ptab *t, size_t n);

/* Keeps the entries <keep> returns true for; <keep> takes those it refuses
 * (frees them, or hands them on). The slots shrink while under a quarter
 * would be used, down to the size a first add makes. */
void km_ptab_filter(struct km_ptab *t, bool (*keep)(void *e, void *arg), void *arg);

/* Frees the slots (not the entries: filter them out first). */
void km_ptab_fini(struct km_ptab *t);

#endif
