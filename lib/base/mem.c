/* SPDX-License-Identifier: Apache-2.0 */
/* Aborting allocation wrappers: out-of-memory is not a recoverable error here. */
#include "base/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
/* a request glibc serves from its large bins: one that no freed block is
 * likely to fit exactly (an exact fit ends its walk of the unsorted ones),
 * under the mmap threshold (which skips no walk, but keeps this cheap) */
#define SETTLE_SIZE (64 * 1024 + 24)
/* glibc's most unsorted blocks sorted per allocation (MAX_ITERS) */
#define SETTLE_PER_CALL 10000
#endif

static void oom(size_t n)
{
	fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", n);
	abort();
}

void *km_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *km_calloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *km_realloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *km_strndup(const char *s, size_t n)
{
	char *p = km_malloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *km_strdup(const char *s)
{
	return km_strndup(s, strlen(s));
}

void km_heap_settle(size_t nfreed)
{
#ifdef __GLIBC__
	for (size_t i = 0; i <= nfreed / SETTLE_PER_CALL; i++) {
		void *p = malloc(SETTLE_SIZE);
		/* the pair must not be optimised away */
		__asm__ volatile("" : : "r"(p) : "memory");
		free(p);
	}
#else
	(void)nfreed;
#endif
}
