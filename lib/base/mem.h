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

#endif
