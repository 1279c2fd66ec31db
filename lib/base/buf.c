/* SPDX-License-Identifier: Apache-2.0 */
/* Growable, optionally capped byte buffer. */
#include "base/buf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static int reserve(struct km_buf *b, size_t extra)
{
	if (b->max && b->len + extra > b->max)
		return -E2BIG;
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = km_realloc(b->data, cap);
	b->cap = cap;
	return 0;
}

int km_buf_append(struct km_buf *b, const void *p, size_t n)
{
	int rc = reserve(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
	return 0;
}

char *km_buf_extend(struct km_buf *b, size_t n)
{
	if (reserve(b, n))
		return NULL;
	char *p = b->data + b->len;
	b->len += n;
	b->data[b->len] = 0;
	return p;
}

int km_buf_puts(struct km_buf *b, const char *s)
{
	return km_buf_append(b, s, strlen(s));
}

int km_buf_putc(struct km_buf *b, char c)
{
	return km_buf_append(b, &c, 1);
}

int km_buf_vprintf(struct km_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return -EINVAL;
	int rc = reserve(b, (size_t)n);
	if (rc)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int km_buf_printf(struct km_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = km_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void km_buf_reset(struct km_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void km_buf_fini(struct km_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *km_buf_steal(struct km_buf *b)
{
	char *p = b->data;
	if (!p)
		p = km_strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
