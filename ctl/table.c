/* SPDX-License-Identifier: Apache-2.0 */
/* kumactl printers: the table writer (Go text/tabwriter layout with padding
 * 3), the AGE/duration cells, and the json and yaml output forms. Tables
 * borrow their cells from the caller's arena; output goes to a km_buf. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/yaml.h"
#include "ctl/ctl.h"

void ctl_table_init(struct ctl_table *t, struct km_arena *a, const char *const *headers,
		    size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->a = a;
	t->ncols = ncols;
	if (ncols) /* upstream prints nothing at all for a table without headers */
		ctl_table_row(t, headers);
}

void ctl_table_row(struct ctl_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 8;
		t->rows = km_arena_realloc(t->a, t->rows, t->cap * sizeof(*t->rows),
					   ncap * sizeof(*t->rows));
		t->cap = ncap;
	}
	const char **row = km_arena_alloc(t->a, t->ncols * sizeof(*row));
	for (size_t i = 0; i < t->ncols; i++)
		row[i] = cells[i] ? cells[i] : "";
	t->rows[t->nrows++] = row;
}

static size_t rune_count(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

void ctl_table_write(const struct ctl_table *t, struct km_buf *out)
{
	size_t *w = km_arena_alloc(t->a, (t->ncols + 1) * sizeof(*w));
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t col = 0; col + 1 < t->ncols; col++) {
			size_t n = rune_count(t->rows[r][col]) + 3;
			if (n > w[col])
				w[col] = n;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t col = 0; col < t->ncols; col++) {
			const char *cell = t->rows[r][col];
			km_buf_puts(out, cell);
			if (col + 1 < t->ncols)
				for (size_t k = rune_count(cell); k < w[col]; k++)
					km_buf_putc(out, ' ');
		}
		km_buf_putc(out, '\n');
	}
	if (t->footer && *t->footer)
		km_buf_printf(out, "\n%s\n", t->footer);
}

const char *ctl_table_duration(struct km_arena *a, int64_t ns)
{
	long long secs = ns / 1000000000LL;
	if (secs < -1)
		return "never";
	if (secs < 0)
		return "0s";
	if (secs < 60)
		return km_arena_printf(a, "%llds", secs);
	long long mins = ns / 60000000000LL;
	if (mins < 60)
		return km_arena_printf(a, "%lldm", mins);
	long long hours = ns / 3600000000000LL;
	if (hours < 24)
		return km_arena_printf(a, "%lldh", hours);
	if (hours < 24 * 365)
		return km_arena_printf(a, "%lldd", hours / 24);
	return km_arena_printf(a, "%lldy", (long long)((double)ns / 3.6e12 / 24 / 365));
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

/* RFC 3339 to (seconds, nanoseconds) without int64-nanosecond range limits. */
static bool parse_time(struct km_str s, long long *sec, long long *nsec)
{
	char buf[64];
	if (s.len < 19 || s.len >= sizeof(buf))
		return false;
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = '\0';
	int y, mo, d, h, mi, se, n = 0;
	if (sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6)
		return false;
	const char *p = buf + n;
	long long frac = 0;
	if (*p == '.') {
		p++;
		long long scale = 100000000;
		while (*p >= '0' && *p <= '9') {
			frac += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	long long off = 0;
	if (*p == '+' || *p == '-') {
		int oh = 0, om = 0;
		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return false;
		off = (oh * 3600LL + om * 60LL) * (*p == '-' ? -1 : 1);
	} else if (*p != 'Z' && *p != 'z') {
		return false;
	}
	*sec = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL + h * 3600LL + mi * 60LL +
	       se - off;
	*nsec = frac;
	return true;
}

const char *ctl_table_age(struct km_arena *a, struct km_str ts, int64_t now_ns)
{
	long long sec, nsec;
	if (!parse_time(ts, &sec, &nsec))
		sec = -62135596800LL, nsec = 0; /* Go's zero time */
	long long now_s = now_ns / 1000000000LL, now_n = now_ns % 1000000000LL;
	long long ds = now_s - sec, dn = now_n - nsec;
	int64_t d;
	if (ds > 9223372035LL)
		d = INT64_MAX;
	else if (ds < -9223372035LL)
		d = INT64_MIN;
	else
		d = ds * 1000000000LL + dn;
	return ctl_table_duration(a, d);
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

const char *ctl_table_tags(struct km_arena *a, const struct km_json *labels,
			   const struct km_json *networking)
{
	size_t cap = (labels && labels->kind == KM_JSON_OBJECT ? labels->len : 0);
	const struct km_json *gw = networking ? km_json_get(networking, "gateway") : NULL;
	const struct km_json *gtags = gw ? km_json_get(gw, "tags") : NULL;
	if (gtags && gtags->kind == KM_JSON_OBJECT)
		cap += gtags->len;
	if (cap == 0)
		return "";
	const char **items = km_arena_alloc(a, cap * sizeof(*items));
	size_t n = 0;
	if (labels && labels->kind == KM_JSON_OBJECT)
		for (size_t i = 0; i < labels->len; i++) {
			struct km_str k = labels->members[i].key;
			struct km_str v = labels->members[i].val->s;
			const char *gv = NULL;
			if (gtags && gtags->kind == KM_JSON_OBJECT) {
				struct km_str g = km_json_get_string(
					gtags, km_arena_strndup(a, k.ptr, k.len));
				if (g.len && !km_str_eq(g, v))
					gv = km_arena_strndup(a, g.ptr, g.len);
			}
			if (gv) {
				/* values are sorted and joined by "," */
				const char *lv = km_arena_strndup(a, v.ptr, v.len);
				bool lfirst = strcmp(lv, gv) < 0;
				items[n++] = km_arena_printf(a, "%.*s=%s,%s", KM_STR_FMT(k),
							     lfirst ? lv : gv, lfirst ? gv : lv);
			} else {
				items[n++] = km_arena_printf(a, "%.*s=%.*s", KM_STR_FMT(k),
							     KM_STR_FMT(v));
			}
		}
	if (gtags && gtags->kind == KM_JSON_OBJECT)
		for (size_t i = 0; i < gtags->len; i++) {
			struct km_str k = gtags->members[i].key;
			if (labels && labels->kind == KM_JSON_OBJECT && km_json_get_str(labels, k))
				continue;
			items[n++] = km_arena_printf(a, "%.*s=%.*s", KM_STR_FMT(k),
						     KM_STR_FMT(gtags->members[i].val->s));
		}
	qsort(items, n, sizeof(*items), cmp_cstr);
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < n; i++)
		km_buf_printf(&b, "%s%s", i ? " " : "", items[i]);
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

const char *ctl_table_pagination(struct km_arena *a, const struct km_json *list)
{
	const struct km_json *next = list ? km_json_get(list, "next") : NULL;
	if (!next || next->kind != KM_JSON_STRING)
		return NULL;
	struct km_str u = next->s;
	long q = km_str_find(u, KM_STR("?"));
	if (q < 0)
		return NULL;
	const char *p = u.ptr + q + 1, *end = u.ptr + u.len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;
		if ((size_t)(stop - p) > 7 && memcmp(p, "offset=", 7) == 0 && stop > p + 7)
			return km_arena_printf(
				a,
				"Rerun command with --offset=%.*s argument to retrieve more resources",
				(int)(stop - p - 7), p + 7);
		p = stop + 1;
	}
	return NULL;
}

void ctl_table_print_json(const struct km_json *v, struct km_buf *out)
{
	km_json_write(out, v, 2, 0);
	km_buf_putc(out, '\n');
}

void ctl_table_print_yaml(struct km_arena *a, const struct km_json *v, struct km_buf *out)
{
	struct km_json *c = km_json_clone(a, v);
	km_json_sort_keys(c);
	km_yaml_write(out, c);
}

static bool is_meta_key(struct km_str k)
{
	static const char *const keys[] = {
		"type", "mesh", "name", "creationTime", "modificationTime", "labels", "kri"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (km_str_eqc(k, keys[i]))
			return true;
	return false;
}

void ctl_table_print_resource_yaml(struct km_arena *a, const struct km_json *res,
				   struct km_buf *out)
{
	const struct km_rtype *t = km_rtype_by_name(km_json_get_string(res, "type"));
	if (res->kind != KM_JSON_OBJECT || (t && km_rtype_has(t, KM_RT_NEW_STYLE)) ||
	    km_json_get(res, "spec")) {
		ctl_table_print_yaml(a, res, out);
		return;
	}
	struct km_json *meta = km_json_object(a), *spec = km_json_object(a);
	for (size_t i = 0; i < res->len; i++) {
		struct km_json *dst = is_meta_key(res->members[i].key) ? meta : spec;
		km_json_append_member(a, dst, res->members[i].key,
				      km_json_clone(a, res->members[i].val));
	}
	km_json_sort_keys(meta);
	km_yaml_write(out, meta);
	if (spec->len) {
		km_json_sort_keys(spec);
		km_yaml_write(out, spec);
	}
}

void ctl_table_resources(struct ctl_table *t, struct km_arena *a, const struct km_rtype *rtype,
			 const struct km_json *v, bool is_list, int64_t now_ns)
{
	static const char *const dp_headers[] = {"MESH", "NAME", "TAGS", "ADDRESS", "AGE"};
	static const char *const mesh_headers[] = {"MESH", "NAME", "AGE"};
	static const char *const global_headers[] = {"NAME", "AGE"};
	bool dp = strcmp(rtype->name, "Dataplane") == 0;
	if (dp)
		ctl_table_init(t, a, dp_headers, 5);
	else if (rtype->scope == KM_SCOPE_MESH)
		ctl_table_init(t, a, mesh_headers, 3);
	else
		ctl_table_init(t, a, global_headers, 2);
	const struct km_json *items = is_list ? km_json_get(v, "items") : NULL;
	size_t n = is_list ? (items && items->kind == KM_JSON_ARRAY ? items->len : 0) : 1;
	for (size_t i = 0; i < n; i++) {
		const struct km_json *r = is_list ? items->items[i] : v;
		const char *mesh = km_arena_strndup(a, km_json_get_string(r, "mesh").ptr,
						    km_json_get_string(r, "mesh").len);
		const char *name = km_arena_strndup(a, km_json_get_string(r, "name").ptr,
						    km_json_get_string(r, "name").len);
		const char *age =
			ctl_table_age(a, km_json_get_string(r, "modificationTime"), now_ns);
		if (dp) {
			const struct km_json *net = km_json_get(r, "networking");
			struct km_str addr = net ? km_json_get_string(net, "address") : KM_STR("");
			const char *cells[5] = {mesh, name,
						ctl_table_tags(a, km_json_get(r, "labels"), net),
						km_arena_strndup(a, addr.ptr, addr.len), age};
			ctl_table_row(t, cells);
		} else if (rtype->scope == KM_SCOPE_MESH) {
			const char *cells[3] = {mesh, name, age};
			ctl_table_row(t, cells);
		} else {
			const char *cells[2] = {name, age};
			ctl_table_row(t, cells);
		}
	}
	if (is_list)
		t->footer = ctl_table_pagination(a, v);
}
