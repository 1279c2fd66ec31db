/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer with an optional hard cap. A buffer fed by a peer
 * always has a cap; appends past it fail with -E2BIG and leave it unchanged.
 * Growth aborts on out-of-memory. The owner calls km_buf_fini(). */
#ifndef KM_BASE_BUF_H
#define KM_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/str.h"

struct km_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	size_t max; /* 0 = unbounded */
};

#define KM_BUF_INIT {NULL, 0, 0, 0}

int km_buf_append(struct km_buf *b, const void *p, size_t n);
int km_buf_puts(struct km_buf *b, const char *s);
int km_buf_putc(struct km_buf *b, char c);
int km_buf_printf(struct km_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int km_buf_vprintf(struct km_buf *b, const char *fmt, va_list ap);
/* km_buf_append inline when it fits an unbounded buffer without growing
 * (hot paths that append a few bytes at a time). */
static inline int km_buf_add(struct km_buf *b, const void *p, size_t n)
{
	if (b->data && !b->max && b->len + n < b->cap) {
		if (n) /* <p> may be NULL then */
			__builtin_memcpy(b->data + b->len, p, n);
		b->len += n;
		b->data[b->len] = 0;
		return 0;
	}
	return km_buf_append(b, p, n);
}
/* <n> more bytes at the end, for the caller to write (NULL past the cap:
 * the buffer is unchanged). */
char *km_buf_extend(struct km_buf *b, size_t n);
static inline int km_buf_put_str(struct km_buf *b, struct km_str s)
{
	return km_buf_append(b, s.ptr, s.len);
}
/* Appends <s> and a NUL; returns the offset <s> starts at (strings laid out
 * behind a struct in one allocation, pointed to once the buffer is final). */
static inline size_t km_buf_put_strz(struct km_buf *b, struct km_str s)
{
	size_t at = b->len;
	km_buf_append(b, s.ptr, s.len);
	km_buf_putc(b, '\0');
	return at;
}
void km_buf_reset(struct km_buf *b);
void km_buf_fini(struct km_buf *b);
/* Gives the bytes to the caller (free() them); the buffer becomes empty. */
char *km_buf_steal(struct km_buf *b);
static inline const char *km_buf_cstr(const struct km_buf *b)
{
	return b->data ? b->data : "";
}

#endif
