/* SPDX-License-Identifier: Apache-2.0 */
/* Schema walk over the generated tables: defaulting, unknown-field pruning
 * and kube-openapi style checks. Messages follow kube-openapi's wording
 * ("spec.x in body should be one of [A B]"); callers sort them as upstream's
 * REST decoder does. Compiled patterns are cached for the process lifetime. */
#include "resource/schema.h"

#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "resource/resource.h"
#include "resource/validate.h"

const struct km_schema_root *km_schema_root_find(const char *type)
{
	for (size_t i = 0; i < km_schema_roots_len; i++)
		if (strcmp(km_schema_roots[i].type, type) == 0)
			return &km_schema_roots[i];
	return NULL;
}

static const char *json_kind_name(const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_NULL: return "null";
	case KM_JSON_BOOL: return "boolean";
	case KM_JSON_NUMBER: return "number";
	case KM_JSON_STRING: return "string";
	case KM_JSON_ARRAY: return "array";
	case KM_JSON_OBJECT: return "object";
	}
	return "unknown";
}

static void err_add(struct km_violations *errs, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void err_add(struct km_violations *errs, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = km_arena_vprintf(errs->a, fmt, ap);
	va_end(ap);
	km_violations_add(errs, "", "%s in body %s", path, msg);
}

static bool number_is_integral(const struct km_json *v)
{
	int64_t i;
	return km_json_as_i64(v, &i);
}

/* Go's %v of a float64 that holds an integer prints it without a fraction. */
static const char *fmt_limit(struct km_arena *a, long long n)
{
	return km_arena_printf(a, "%lld", n);
}

static size_t utf8_len(struct km_str s)
{
	size_t n = 0;
	for (size_t i = 0; i < s.len; i++)
		if (((unsigned char)s.ptr[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* A tiny cache of compiled patterns keyed by the table's string pointer. */
struct re_slot {
	const char *key;
	regex_t re;
	bool ok;
};
static struct re_slot re_cache[64];

static bool pattern_match(const char *ere, struct km_str s)
{
	struct re_slot *slot = NULL;
	for (size_t i = 0; i < sizeof(re_cache) / sizeof(re_cache[0]); i++) {
		if (re_cache[i].key == ere) {
			slot = &re_cache[i];
			break;
		}
		if (!re_cache[i].key) {
			slot = &re_cache[i];
			slot->key = ere;
			slot->ok = regcomp(&slot->re, ere, REG_EXTENDED | REG_NOSUB) == 0;
			break;
		}
	}
	if (!slot || !slot->ok)
		return true; /* never reject on our own limitation */
	char buf[1024];
	if (s.len >= sizeof(buf) || memchr(s.ptr, 0, s.len))
		return false;
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = 0;
	return regexec(&slot->re, buf, 0, NULL, 0) == 0;
}

static bool base64_valid(struct km_str s)
{
	size_t n = 0, pad = 0;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.ptr[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			n++;
			continue;
		}
		if (pad)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
		n++;
	}
	return pad <= 2 && n % 4 == 0;
}

static bool enum_has(const struct km_schema_node *n, const struct km_json *v)
{
	for (int i = 0; i < n->nenums; i++) {
		const char *e = km_schema_enums[n->enums + i];
		size_t el = strlen(e);
		if (v->kind == KM_JSON_STRING) {
			if (e[0] == '"' && el == v->s.len + 2 &&
			    memcmp(e + 1, v->s.ptr, v->s.len) == 0)
				return true;
		} else if (v->kind == KM_JSON_NUMBER && e[0] != '"') {
			char *end;
			double d = strtod(e, &end);
			if (d == (v->is_int ? (double)v->i : v->d))
				return true;
		} else if (v->kind == KM_JSON_BOOL) {
			if (strcmp(e, v->b ? "true" : "false") == 0)
				return true;
		}
	}
	return false;
}

static const char *enum_list(struct km_arena *a, const struct km_schema_node *n)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_putc(&b, '[');
	for (int i = 0; i < n->nenums; i++) {
		const char *e = km_schema_enums[n->enums + i];
		if (i)
			km_buf_putc(&b, ' ');
		if (e[0] == '"')
			km_buf_append(&b, e + 1, strlen(e) - 2);
		else
			km_buf_puts(&b, e);
	}
	km_buf_putc(&b, ']');
	const char *r = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return r;
}

static struct km_json *default_value(struct km_arena *a, const struct km_schema_node *n)
{
	struct km_json *v = NULL;
	if (km_json_parse(a, n->def, strlen(n->def), &v, NULL) != 0)
		return NULL;
	return v;
}

static bool type_ok(struct km_arena *a, const struct km_schema_node *n, const struct km_json *v,
		    const char *path, struct km_violations *errs)
{
	const char *want = NULL;
	switch ((enum km_schema_kind)n->kind) {
	case KM_SK_ANY: return true;
	case KM_SK_OBJECT:
	case KM_SK_MAP:
		if (v->kind != KM_JSON_OBJECT)
			want = "object";
		break;
	case KM_SK_ARRAY:
		if (v->kind != KM_JSON_ARRAY)
			want = "array";
		break;
	case KM_SK_STRING:
		if (v->kind != KM_JSON_STRING)
			want = "string";
		break;
	case KM_SK_INT:
		if (v->kind != KM_JSON_NUMBER || !number_is_integral(v))
			want = "integer";
		break;
	case KM_SK_NUMBER:
		if (v->kind != KM_JSON_NUMBER)
			want = "number";
		break;
	case KM_SK_BOOL:
		if (v->kind != KM_JSON_BOOL)
			want = "boolean";
		break;
	case KM_SK_INT_OR_STRING:
		if (v->kind == KM_JSON_STRING ||
		    (v->kind == KM_JSON_NUMBER && number_is_integral(v)))
			return true;
		err_add(errs, path, "must validate at least one schema (anyOf)");
		if (v->kind != KM_JSON_NUMBER || !number_is_integral(v))
			err_add(errs, path, "must be of type integer: \"%s\"", json_kind_name(v));
		err_add(errs, path, "must be of type string: \"%s\"", json_kind_name(v));
		return false;
	}
	(void)a;
	if (!want)
		return true;
	err_add(errs, path, "must be of type %s: \"%s\"", want, json_kind_name(v));
	return false;
}

void km_schema_normalize(struct km_arena *a, int node, struct km_json **vp, const char *path,
			 struct km_violations *errs, unsigned opts)
{
	const struct km_schema_node *n = &km_schema_nodes[node];
	struct km_json *v = *vp;
	if (v->kind == KM_JSON_NULL && n->def) {
		struct km_json *d = default_value(a, n);
		if (d)
			*vp = v = d;
	}
	if (n->kind == KM_SK_ANY)
		return;
	if ((opts & KM_SCHEMA_COERCE_STRINGS) && n->kind == KM_SK_STRING &&
	    (v->kind == KM_JSON_NUMBER || v->kind == KM_JSON_BOOL)) {
		struct km_str text =
			v->kind == KM_JSON_BOOL ? km_str_c(v->b ? "true" : "false") : v->s;
		*vp = v = km_json_string(a, text);
	}
	if (!type_ok(a, n, v, path, errs))
		return;
	if (n->nenums && !enum_has(n, v))
		err_add(errs, path, "should be one of %s", enum_list(a, n));

	switch ((enum km_schema_kind)n->kind) {
	case KM_SK_OBJECT: {
		/* drop members the Go struct does not know */
		size_t w = 0;
		for (size_t i = 0; i < v->len; i++) {
			bool known = false;
			for (int p = 0; p < n->nprops && !known; p++)
				known = km_str_eqc(v->members[i].key,
						   km_schema_props[n->props + p].name);
			if (known)
				v->members[w++] = v->members[i];
		}
		v->len = w;
		for (int p = 0; p < n->nprops; p++) {
			const struct km_schema_prop *pr = &km_schema_props[n->props + p];
			const struct km_schema_node *cn = &km_schema_nodes[pr->node];
			const char *cpath = *path ? km_arena_printf(a, "%s.%s", path, pr->name) :
						    km_arena_strdup(a, pr->name);
			struct km_json *cv = km_json_get(v, pr->name);
			if (!cv && cn->def) {
				cv = default_value(a, cn);
				if (cv)
					km_json_set(a, v, pr->name, cv);
			}
			if (!cv) {
				if (pr->required)
					err_add(errs, cpath, "is required");
				continue;
			}
			for (size_t i = 0; i < v->len; i++) {
				if (km_str_eqc(v->members[i].key, pr->name)) {
					km_schema_normalize(a, pr->node, &v->members[i].val, cpath,
							    errs, opts);
					break;
				}
			}
		}
		break;
	}
	case KM_SK_MAP:
		for (size_t i = 0; i < v->len; i++) {
			const char *cpath =
				km_arena_printf(a, "%s.%.*s", path, KM_STR_FMT(v->members[i].key));
			km_schema_normalize(a, n->child, &v->members[i].val, cpath, errs, opts);
		}
		break;
	case KM_SK_ARRAY:
		if (n->min_items >= 0 && v->len < (size_t)n->min_items)
			err_add(errs, path, "should have at least %d items", n->min_items);
		if (n->max_items >= 0 && v->len > (size_t)n->max_items)
			err_add(errs, path, "should have at most %d items", n->max_items);
		for (size_t i = 0; i < v->len; i++) {
			const char *cpath = km_arena_printf(a, "%s[%zu]", path, i);
			km_schema_normalize(a, n->child, &v->items[i], cpath, errs, opts);
		}
		break;
	case KM_SK_STRING:
	case KM_SK_INT_OR_STRING:
		if (v->kind != KM_JSON_STRING)
			goto numeric;
		if (n->max_len >= 0 && utf8_len(v->s) > (size_t)n->max_len)
			err_add(errs, path, "should be at most %d chars long", n->max_len);
		if (n->min_len >= 0 && utf8_len(v->s) < (size_t)n->min_len)
			err_add(errs, path, "should be at least %d chars long", n->min_len);
		if (n->pattern && !pattern_match(n->pattern_ere, v->s))
			err_add(errs, path, "should match '%s'", n->pattern);
		if (n->format && strcmp(n->format, "byte") == 0 && !base64_valid(v->s))
			err_add(errs, path, "must be of type byte: \"%.*s\"", KM_STR_FMT(v->s));
		if (n->format && strcmp(n->format, "date-time") == 0) {
			int64_t t;
			if (km_time_parse(v->s, &t) != 0)
				err_add(errs, path, "must be of type date-time: \"%.*s\"",
					KM_STR_FMT(v->s));
		}
		if (n->flags & KM_SF_DURATION) {
			int64_t d;
			if (km_duration_parse(v->s, &d) != 0)
				err_add(errs, path, "must be of type duration: \"%.*s\"",
					KM_STR_FMT(v->s));
		}
		break;
	case KM_SK_INT:
	case KM_SK_NUMBER:
numeric : {
	double d = v->is_int ? (double)v->i : v->d;
	if ((n->flags & KM_SF_HAS_MIN) && d < (double)n->min)
		err_add(errs, path, "should be greater than or equal to %s", fmt_limit(a, n->min));
	if ((n->flags & KM_SF_HAS_MAX) && d > (double)n->max)
		err_add(errs, path, "should be less than or equal to %s", fmt_limit(a, n->max));
	break;
}
	default: break;
	}
}

static int cmp_msg(const void *x, const void *y)
{
	const struct km_violation *a = x, *b = y;
	return strcmp(a->message, b->message);
}

void km_schema_errors_to_violations(struct km_violations *errs, struct km_violations *out,
				    bool flat)
{
	if (errs->len > 1)
		qsort(errs->items, errs->len, sizeof(errs->items[0]), cmp_msg);
	for (size_t i = 0; i < errs->len; i++) {
		const char *m = errs->items[i].message;
		const char *sp = strchr(m, ' ');
		if (sp && (flat || strncmp(m, "spec.", 5) == 0)) {
			char *field = km_arena_strndup(out->a, m, (size_t)(sp - m));
			km_violations_add(out, field, "%s", sp + 1);
		} else {
			km_violations_add(out, "", "%s", m);
		}
	}
}
