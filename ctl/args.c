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

/* ---- Go durations ---- */

int ctl_args_duration_parse(const char *s, int64_t *ns)
{
	static const struct {
		const char *unit;
		double mult;
	} units[] = {
	    {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6},
	    {"s", 1e9}, {"m", 60e9}, {"h", 3600e9},
	};
	const char *p = s;
	bool neg = false;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (strcmp(p, "0") == 0) {
		*ns = 0;
		return 0;
	}
	if (*p == '\0')
		return -EINVAL;
	double total = 0;
	while (*p) {
		const char *start = p;
		double v = 0, frac = 0, scale = 1;
		while (*p >= '0' && *p <= '9')
			v = v * 10 + (*p++ - '0');
		bool digits = p > start;
		if (*p == '.') {
			p++;
			const char *fs = p;
			while (*p >= '0' && *p <= '9') {
				scale /= 10;
				frac += (*p++ - '0') * scale;
			}
			digits = digits || p > fs;
		}
		if (!digits)
			return -EINVAL;
		size_t best = 0;
		double mult = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t n = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, n) == 0 && n > best) {
				best = n;
				mult = units[i].mult;
			}
		}
		if (!best)
			return -EINVAL;
		p += best;
		total += (v + frac) * mult;
	}
	if (total > 9.2233720368547e18)
		return -ERANGE;
	*ns = (int64_t)(neg ? -total : total);
	return 0;
}

/* Writes <v> / 10^<prec> with trailing zeros of the fraction removed. */
static void put_frac(struct km_buf *b, uint64_t v, int prec)
{
	uint64_t p10 = 1;
	for (int i = 0; i < prec; i++)
		p10 *= 10;
	km_buf_printf(b, "%llu", (unsigned long long)(v / p10));
	uint64_t f = v % p10;
	if (f) {
		char digits[24];
		int n = prec;
		while (n > 0 && f % 10 == 0) {
			f /= 10;
			n--;
		}
		snprintf(digits, sizeof(digits), "%0*llu", n, (unsigned long long)f);
		km_buf_printf(b, ".%s", digits);
	}
}

const char *ctl_args_duration_format(struct km_arena *a, int64_t ns)
{
	struct km_buf b = KM_BUF_INIT;
	uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
	if (ns < 0)
		km_buf_putc(&b, '-');
	if (u == 0) {
		km_buf_puts(&b, "0s");
	} else if (u < 1000) {
		km_buf_printf(&b, "%lluns", (unsigned long long)u);
	} else if (u < 1000000) {
		put_frac(&b, u, 3);
		km_buf_puts(&b, "\xc2\xb5s");
	} else if (u < 1000000000) {
		put_frac(&b, u, 6);
		km_buf_puts(&b, "ms");
	} else {
		uint64_t secs_ns = u % 60000000000ull;
		uint64_t mins = u / 60000000000ull;
		if (mins >= 60) {
			km_buf_printf(&b, "%lluh", (unsigned long long)(mins / 60));
			km_buf_printf(&b, "%llum", (unsigned long long)(mins % 60));
		} else if (mins > 0) {
			km_buf_printf(&b, "%llum", (unsigned long long)mins);
		}
		put_frac(&b, secs_ns, 9);
		km_buf_putc(&b, 's');
	}
	const char *s = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}
