/* SPDX-License-Identifier: Apache-2.0 */
#include "base/prom.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double km_prom_def_le[KM_PROM_DEF_NB] = {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

void km_prom_observe(struct km_prom_hist *h, double v, uint64_t count)
{
	size_t i = 0;
	while (i < h->n && v > h->le[i])
		i++;
	h->counts[i] += count;
	h->sum += v * (double)count;
}

void km_prom_family(struct km_buf *out, const char *name, const char *type, const char *help)
{
	km_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void number(struct km_buf *out, double v)
{
	if (isinf(v))
		km_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	else if (isnan(v))
		km_buf_puts(out, "NaN");
	else if (v == floor(v) && fabs(v) < 1e15)
		km_buf_printf(out, "%.0f", v);
	else {
		/* the shortest text that reads back as <v> (Go's FormatFloat -1) */
		char t[32];
		for (int prec = 1; prec <= 17; prec++) {
			snprintf(t, sizeof(t), "%.*g", prec, v);
			if (strtod(t, NULL) == v)
				break;
		}
		km_buf_puts(out, t);
	}
}

void km_prom_sample(struct km_buf *out, const char *name, const char *labels, double v)
{
	km_buf_puts(out, name);
	if (labels && *labels)
		km_buf_printf(out, "{%s}", labels);
	km_buf_putc(out, ' ');
	number(out, v);
	km_buf_putc(out, '\n');
}

void km_prom_label(struct km_buf *out, const char *name, const char *value)
{
	km_buf_printf(out, "%s=\"", name);
	for (const char *p = value ? value : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			km_buf_putc(out, '\\');
		if (*p == '\n')
			km_buf_puts(out, "\\n");
		else
			km_buf_putc(out, *p);
	}
	km_buf_putc(out, '"');
}

void km_prom_hist_write(struct km_buf *out, const char *name, const char *labels, const struct km_prom_hist *h)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;
	for (size_t i = 0; i <= h->n; i++) {
		cum += h->counts[i];
		km_buf_printf(out, "%s_bucket{%s%sle=\"", name, labels ? labels : "", sep);
		if (i < h->n)
			number(out, h->le[i]);
		else
			km_buf_puts(out, "+Inf");
		km_buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
	}
	km_buf_printf(out, "%s_sum", name);
	if (*sep)
		km_buf_printf(out, "{%s}", labels);
	km_buf_putc(out, ' ');
	number(out, h->sum);
	km_buf_printf(out, "\n%s_count", name);
	if (*sep)
		km_buf_printf(out, "{%s}", labels);
	km_buf_printf(out, " %llu\n", (unsigned long long)cum);
}

/* Copies a sample's label pairs <p>..<end> (after its '{') with <pair> put
 * where client_golang would print it: label names in order, le and quantile
 * last. Returns where the copy stopped (the closing '}', or <end>). */
static const char *insert_pair(struct km_buf *out, const char *p, const char *end, const char *name,
			       const struct km_buf *pair)
{
	bool done = false, first = true;
	size_t nl = strlen(name);
	while (p < end && *p != '}') {
		const char *n = p;
		while (p < end && *p != '=')
			p++;
		size_t len = (size_t)(p - n);
		bool last_kind = (len == 2 && memcmp(n, "le", 2) == 0) || (len == 8 && memcmp(n, "quantile", 8) == 0);
		int cmp = memcmp(n, name, len < nl ? len : nl);
		if (!done && (last_kind || cmp > 0 || (cmp == 0 && len > nl))) {
			km_buf_add(out, pair->data, pair->len);
			km_buf_putc(out, ',');
			done = true;
		}
		/* the pair: name="value" with escapes, then an optional ',' */
		const char *q = p + (p < end);
		if (q < end && *q == '"') {
			for (q++; q < end && *q != '"'; q++)
				if (*q == '\\' && q + 1 < end)
					q++;
			q += q < end;
		}
		if (q < end && *q == ',')
			q++;
		km_buf_add(out, n, (size_t)(q - n));
		first = false;
		p = q;
	}
	if (!done) {
		if (!first && out->len && out->data[out->len - 1] != ',')
			km_buf_putc(out, ',');
		km_buf_add(out, pair->data, pair->len);
	}
	return p;
}

void km_prom_add_label(struct km_buf *out, const char *text, size_t len, const char *name, const char *value)
{
	struct km_buf pair = KM_BUF_INIT;
	km_prom_label(&pair, name, value);
	const char *p = text, *end = text + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		if (p == eol || *p == '#') {
			km_buf_add(out, p, (size_t)(eol - p));
		} else {
			/* the metric name ends at '{' or the first blank */
			const char *q = p;
			while (q < eol && *q != '{' && *q != ' ' && *q != '\t')
				q++;
			km_buf_add(out, p, (size_t)(q - p));
			km_buf_putc(out, '{');
			if (q < eol && *q == '{')
				q = insert_pair(out, q + 1, eol, name, &pair);
			else
				km_buf_add(out, pair.data, pair.len);
			if (q < eol && *q == '}')
				q++;
			km_buf_putc(out, '}');
			km_buf_add(out, q, (size_t)(eol - q));
		}
		if (nl)
			km_buf_putc(out, '\n');
		p = nl ? nl + 1 : end;
	}
	km_buf_fini(&pair);
}
