/* SPDX-License-Identifier: Apache-2.0 */
/* Heap helpers that abort on out-of-memory, so callers need not check. */
#ifndef KM_BASE_MEM_H
#define KM_BASE_MEM_H

#include <stddef.h>

void *km_malloc(size_t n);
void *km_calloc(size_t n, size_t size);
void *km_realloc(void *p, size_t n);
char *km_strdup(const char *s);
char *km_strndup(const char *s, size_t n);

/* Has the allocator put away what the calling thread's heap was handed
 * back (about <nfreed> blocks), now rather than in the next allocation it
 * cannot serve from its cache. glibc leaves freed blocks unsorted and
 * sorts them (10,000 at most per call) in such an allocation: after
 * thousands of frees that allocation took milliseconds, in whatever
 * latency-bound work came next. Call it where nobody waits. Elsewhere than
 * glibc it does nothing. */
void km_heap_settle(size_t nfreed);

#endif
