/* SPDX-License-Identifier: Apache-2.0 */
/* Arena: a chunked bump allocator. Everything one generation (a request, a
 * config load, a snapshot) allocates lives here and dies with km_arena_free().
 * Out-of-memory aborts, so callers never check for NULL. */
#ifndef KM_BASE_ARENA_H
#define KM_BASE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct km_arena;

/* Returns a new arena owned by the caller; <chunk> is the minimal chunk size
 * (0 picks a default). */
struct km_arena *km_arena_new(size_t chunk);
void km_arena_free(struct km_arena *a);
/* Zeroed, 16-byte aligned memory valid until <a> is freed. */
void *km_arena_alloc(struct km_arena *a, size_t size);
/* As km_arena_alloc, without zeroing: for blocks the caller fills whole. */
void *km_arena_alloc_raw(struct km_arena *a, size_t size);
/* Grows a block previously returned by km_arena_alloc; old contents are copied. */
void *km_arena_realloc(struct km_arena *a, void *old, size_t old_size, size_t new_size);
char *km_arena_strndup(struct km_arena *a, const char *s, size_t n);
char *km_arena_strdup(struct km_arena *a, const char *s);
char *km_arena_printf(struct km_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *km_arena_vprintf(struct km_arena *a, const char *fmt, va_list ap);
/* Total bytes reserved by the arena (for memory accounting). */
size_t km_arena_size(const struct km_arena *a);

#endif
