/* SPDX-License-Identifier: Apache-2.0 */
/* Access to the parsed command line (flag values with their defaults), the
 * cobra-style error line, stdout writes, and Go time.Duration parsing and
 * printing. Values are borrowed from argv or the invocation arena. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl/ctl.h"

int ctl_args_fail(struct ctl_ctx *c, const char *fmt, ...)
{
	(void)c;
	va_list ap;
	va_start(ap, fmt);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

int ctl_args_out(const struct km_buf *b)
{
	if (b->len && fwrite(b->data, 1, b->len, stdout) != b->len)
		return 1;
	return fflush(stdout) == 0 ? 0 : 1;
}

static const struct ctl_flag_def *find_def(const struct ctl_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->ndefs; i++)
		if (strcmp(c->defs[i]->name, name) == 0)
			return c->defs[i];
	return NULL;
}

const char *ctl_args_str(const struct ctl_ctx *c, const char *name)
{
	for (size_t i = c->nvals; i-- > 0;)
		if (strcmp(c->vals[i].def->name, name) == 0)
			return c->vals[i].value;
	const struct ctl_flag_def *d = find_def(c, name);
	return d ? d->defval : NULL;
}

bool ctl_args_bool(const struct ctl_ctx *c, const char *name)
{
	const char *v = ctl_args_str(c, name);
	return v && strcmp(v, "true") == 0;
}

bool ctl_args_given(const struct ctl_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->nvals; i++)
		if (strcmp(c->vals[i].def->name, name) == 0)
			return true;
	return false;
}

size_t ctl_args_all(const struct ctl_ctx *c, const char *name, const char ***out)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nvals; i++)
		if (strcmp(c->vals[i].def->name, name) == 0)
			n++;
	const char **v = km_arena_alloc(c->a, (n + 1) * sizeof(*v));
	n = 0;
	for (size_t i = 0; i < c->nvals; i++)
		if (strcmp(c->vals[i].def->name, name) == 0)
			v[n++] = c->vals[i].value;
	*out = v;
	return n;
}

const char *ctl_args_mesh(const struct ctl_ctx *c)
{
	const char *m = ctl_args_str(c, "mesh");
	return m && *m ? m : "default";
}
