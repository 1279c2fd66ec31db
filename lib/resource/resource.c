/* SPDX-License-Identifier: Apache-2.0 */
/* Universal wire form <-> stored resource: meta extraction with Go-compatible
 * type errors, canonical serialisation, KRI and computed SNIs. */
#include "resource/resource.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"

static const char *go_kind(const struct km_json *v)
{
	switch (v->kind) {
	case KM_JSON_NULL: return "null";
	case KM_JSON_BOOL: return "bool";
	case KM_JSON_NUMBER: return "number";
	case KM_JSON_STRING: return "string";
	case KM_JSON_ARRAY: return "array";
	case KM_JSON_OBJECT: return "object";
	}
	return "value";
}

static int type_error(struct km_buf *err, const struct km_json *v, const char *field,
		      const char *gotype)
{
	if (err)
		km_buf_printf(err,
			      "json: cannot unmarshal %s into Go struct field ResourceMeta.%s of type %s",
			      go_kind(v), field, gotype);
	return -KM_E_PARSE;
}

static bool is_meta_key(struct km_str k, bool new_style)
{
	static const char *const meta[] = {"type", "name", "mesh", "labels", "creationTime",
					   "modificationTime", "kri"};
	for (size_t i = 0; i < sizeof(meta) / sizeof(meta[0]); i++)
		if (km_str_eqc(k, meta[i]))
			return true;
	(void)new_style;
	return false;
}

int km_resource_doc_from_json(struct km_arena *a, const struct km_json *doc,
			      const struct km_rtype *want, struct km_resource_doc *out,
			      struct km_buf *err)
{
	memset(out, 0, sizeof(*out));
	if (!doc || doc->kind != KM_JSON_OBJECT) {
		if (err)
			km_buf_printf(err, "json: cannot unmarshal %s into Go value of type map[string]interface {}",
				      doc ? go_kind(doc) : "null");
		return -KM_E_PARSE;
	}
	struct km_json *v;
	if ((v = km_json_get(doc, "type")) && v->kind != KM_JSON_STRING && v->kind != KM_JSON_NULL)
		return type_error(err, v, "type", "string");
	if ((v = km_json_get(doc, "name")) && v->kind != KM_JSON_STRING && v->kind != KM_JSON_NULL)
		return type_error(err, v, "name", "string");
	if ((v = km_json_get(doc, "mesh")) && v->kind != KM_JSON_STRING && v->kind != KM_JSON_NULL)
		return type_error(err, v, "mesh", "string");
	struct km_json *labels = km_json_get(doc, "labels");
	if (labels && labels->kind != KM_JSON_OBJECT && labels->kind != KM_JSON_NULL)
		return type_error(err, labels, "labels", "map[string]string");
	if (labels && labels->kind == KM_JSON_OBJECT) {
		for (size_t i = 0; i < labels->len; i++) {
			struct km_json *lv = labels->members[i].val;
			if (lv->kind != KM_JSON_STRING && lv->kind != KM_JSON_NULL)
				return type_error(err, lv, "labels", "string");
		}
	}
	struct km_str tname = km_json_get_string(doc, "type");
	const struct km_rtype *t = want;
	if (!t) {
		t = km_rtype_by_name(tname);
		if (!t) {
			if (err)
				km_buf_printf(err, "unknown type '%.*s'", KM_STR_FMT(tname));
			return -KM_E_NOT_FOUND;
		}
	}
	out->type = t;
	out->name = km_json_get_string(doc, "name");
	out->mesh = t->scope == KM_SCOPE_MESH ? km_json_get_string(doc, "mesh") : KM_STR("");
	if (labels && labels->kind == KM_JSON_OBJECT && labels->len) {
		out->labels = km_json_object(a);
		for (size_t i = 0; i < labels->len; i++) {
			struct km_json *lv = labels->members[i].val;
			km_json_set_str(a, out->labels, labels->members[i].key,
					lv->kind == KM_JSON_NULL ? km_json_cstring(a, "") : lv);
		}
	}
	struct km_str ts = km_json_get_string(doc, "creationTime");
	if (ts.len)
		km_time_parse(ts, &out->ctime);
	ts = km_json_get_string(doc, "modificationTime");
	if (ts.len)
		km_time_parse(ts, &out->mtime);

	if (km_rtype_has(t, KM_RT_NEW_STYLE)) {
		struct km_json *spec = km_json_get(doc, "spec");
		if (spec && spec->kind != KM_JSON_OBJECT && spec->kind != KM_JSON_NULL) {
			if (err)
				km_buf_printf(err, "json: cannot unmarshal %s into Go value of type %s",
					      go_kind(spec), "map[string]interface {}");
			return -KM_E_PARSE;
		}
		out->spec = spec && spec->kind == KM_JSON_OBJECT ? spec : km_json_object(a);
		struct km_json *status = km_json_get(doc, "status");
		if (status && status->kind == KM_JSON_OBJECT)
			out->status = status;
	} else {
		out->spec = km_json_object(a);
		for (size_t i = 0; i < doc->len; i++) {
			if (is_meta_key(doc->members[i].key, false))
				continue;
			km_json_append_member(a, out->spec, doc->members[i].key, doc->members[i].val);
		}
	}
	return 0;
}

static struct km_str to_text(struct km_arena *a, const struct km_json *v)
{
	if (!v)
		return KM_STR("");
	struct km_buf b = KM_BUF_INIT;
	km_json_write(&b, v, 0, 0);
	struct km_str s = {km_arena_strndup(a, km_buf_cstr(&b), b.len), b.len};
	km_buf_fini(&b);
	return s;
}

void km_resource_from_doc(struct km_arena *a, const struct km_resource_doc *d,
			  struct km_resource *out)
{
	memset(out, 0, sizeof(*out));
	out->type = d->type;
	out->mesh = (struct km_str){km_arena_strndup(a, d->mesh.ptr ? d->mesh.ptr : "", d->mesh.len), d->mesh.len};
	out->name = (struct km_str){km_arena_strndup(a, d->name.ptr ? d->name.ptr : "", d->name.len), d->name.len};
	out->ctime = d->ctime;
	out->mtime = d->mtime;
	out->labels = d->labels && d->labels->len ? to_text(a, d->labels) : KM_STR("");
	out->spec = d->spec ? to_text(a, d->spec) : KM_STR("{}");
	out->status = d->status ? to_text(a, d->status) : KM_STR("");
}

static struct km_json *parse_text(struct km_arena *a, struct km_str s)
{
	struct km_json *v = NULL;
	if (s.len == 0 || km_json_parse(a, s.ptr, s.len, &v, NULL) != 0)
		return NULL;
	return v;
}

int km_resource_to_doc(struct km_arena *a, const struct km_resource *r, struct km_resource_doc *out)
{
	memset(out, 0, sizeof(*out));
	out->type = r->type;
	out->mesh = r->mesh;
	out->name = r->name;
	out->ctime = r->ctime;
	out->mtime = r->mtime;
	out->labels = parse_text(a, r->labels);
	out->spec = parse_text(a, r->spec);
	if (!out->spec)
		out->spec = km_json_object(a);
	out->status = parse_text(a, r->status);
	return 0;
}

static struct km_str label_value(struct km_arena *a, struct km_str labels, const char *key)
{
	/* labels are small: a parse is cheaper than keeping a second form */
	struct km_json *l = parse_text(a, labels);
	return km_json_get_string(l, key);
}

const char *km_resource_kri(struct km_arena *a, const struct km_resource *r)
{
	if (!r->type->short_name || !*r->type->short_name)
		return "";
	struct km_json *l = parse_text(a, r->labels);
	struct km_str zone = km_json_get_string(l, "kuma.io/zone");
	struct km_str ns = km_json_get_string(l, "k8s.kuma.io/namespace");
	struct km_str display = km_json_get_string(l, "kuma.io/display-name");
	struct km_str name = display.len ? display : r->name;
	return km_arena_printf(a, "kri_%s_%.*s_%.*s_%.*s_%.*s_", r->type->short_name,
			       KM_STR_FMT(r->mesh), KM_STR_FMT(zone), KM_STR_FMT(ns), KM_STR_FMT(name));
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

/* MeshService, MeshMultiZoneService and MeshExternalService advertise one SNI
 * per port: sni.<short>.<mesh>[.<zone>[.<ns>]].<name>.<port>. */
static struct km_json *snis(struct km_arena *a, const struct km_resource *r)
{
	const char *tn = r->type->name;
	bool ext = strcmp(tn, "MeshExternalService") == 0;
	if (!ext && strcmp(tn, "MeshService") != 0 && strcmp(tn, "MeshMultiZoneService") != 0)
		return NULL;
	struct km_json *spec = parse_text(a, r->spec);
	int64_t ports[256];
	size_t n = 0;
	if (ext) {
		struct km_json *m = km_json_get(spec, "match");
		struct km_json *p = km_json_get(m, "port");
		if (p && p->kind == KM_JSON_NUMBER && p->is_int)
			ports[n++] = p->i;
	} else {
		struct km_json *ps = km_json_get(spec, "ports");
		for (size_t i = 0; ps && ps->kind == KM_JSON_ARRAY && i < ps->len && n < 256; i++) {
			struct km_json *p = km_json_get(ps->items[i], "port");
			if (p && p->kind == KM_JSON_NUMBER && p->is_int)
				ports[n++] = p->i;
		}
	}
	struct km_json *arr = km_json_array(a);
	if (n == 0)
		return arr;
	qsort(ports, n, sizeof(ports[0]), cmp_i64);
	struct km_str zone = label_value(a, r->labels, "kuma.io/zone");
	struct km_str ns = label_value(a, r->labels, "k8s.kuma.io/namespace");
	struct km_str display = label_value(a, r->labels, "kuma.io/display-name");
	struct km_str name = display.len ? display : r->name;
	for (size_t i = 0; i < n; i++) {
		if (i && ports[i] == ports[i - 1])
			continue;
		struct km_buf b = KM_BUF_INIT;
		km_buf_printf(&b, "sni.%s.%.*s", r->type->short_name, KM_STR_FMT(r->mesh));
		if (zone.len) {
			km_buf_printf(&b, ".%.*s", KM_STR_FMT(zone));
			if (ns.len)
				km_buf_printf(&b, ".%.*s", KM_STR_FMT(ns));
		}
		km_buf_printf(&b, ".%.*s.%lld", KM_STR_FMT(name), (long long)ports[i]);
		struct km_json *e = km_json_object(a);
		km_json_set(a, e, "port", km_json_int(a, ports[i]));
		km_json_set(a, e, "sni", km_json_cstring(a, km_buf_cstr(&b)));
		km_json_array_push(a, arr, e);
		km_buf_fini(&b);
	}
	return arr;
}

/* <over> merged onto <base> (objects recursively; anything else replaces). */
static struct km_json *merge_over(struct km_arena *a, struct km_json *base, struct km_json *over)
{
	if (!over)
		return base;
	if (!base || base->kind != KM_JSON_OBJECT || over->kind != KM_JSON_OBJECT)
		return over;
	for (size_t i = 0; i < over->len; i++) {
		struct km_json *b = km_json_get_str(base, over->members[i].key);
		km_json_set_str(a, base, over->members[i].key, merge_over(a, b, over->members[i].val));
	}
	return base;
}

struct km_json *km_resource_to_json(struct km_arena *a, const struct km_resource *r)
{
	struct km_json *o = km_json_object(a);
	km_json_set(a, o, "type", km_json_cstring(a, r->type->name));
	if (r->type->scope == KM_SCOPE_MESH)
		km_json_set(a, o, "mesh", km_json_string(a, r->mesh));
	km_json_set(a, o, "name", km_json_string(a, r->name));
	km_json_set(a, o, "creationTime", km_json_cstring(a, km_time_format(a, r->ctime)));
	km_json_set(a, o, "modificationTime", km_json_cstring(a, km_time_format(a, r->mtime)));
	struct km_json *labels = parse_text(a, r->labels);
	if (labels && labels->len)
		km_json_set(a, o, "labels", labels);
	const char *kri = km_resource_kri(a, r);
	if (*kri)
		km_json_set(a, o, "kri", km_json_cstring(a, kri));
	struct km_json *sn = snis(a, r);
	if (sn)
		km_json_set(a, o, "snis", sn);
	struct km_json *spec = parse_text(a, r->spec);
	if (km_rtype_has(r->type, KM_RT_NEW_STYLE)) {
		km_json_set(a, o, "spec", spec ? spec : km_json_object(a));
		struct km_json *status = parse_text(a, r->status);
		/* a stored status is shown as upstream marshals its Go struct: the
		 * members that are never omitted come from the type's skeleton */
		if (status && r->type->status_skeleton)
			status = merge_over(a, parse_text(a, km_str_c(r->type->status_skeleton)), status);
		if (status)
			km_json_set(a, o, "status", status);
	} else if (spec) {
		for (size_t i = 0; i < spec->len; i++)
			km_json_set_str(a, o, spec->members[i].key, spec->members[i].val);
	}
	return o;
}

int km_resource_write_json(struct km_buf *out, struct km_arena *a, const struct km_resource *r,
			   int indent, int depth)
{
	return km_json_write(out, km_resource_to_json(a, r), indent, depth);
}

const char *km_time_format(struct km_arena *a, int64_t ns)
{
	if (ns == 0)
		return "0001-01-01T00:00:00Z";
	time_t sec = (time_t)(ns / 1000000000);
	long frac = (long)(ns % 1000000000);
	if (frac < 0) {
		frac += 1000000000;
		sec--;
	}
	struct tm tm;
	gmtime_r(&sec, &tm);
	char base[40];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (!frac)
		return km_arena_printf(a, "%sZ", base);
	char f[16];
	snprintf(f, sizeof(f), "%09ld", frac);
	size_t n = strlen(f);
	while (n > 0 && f[n - 1] == '0')
		f[--n] = 0;
	return km_arena_printf(a, "%s.%sZ", base, f);
}

static int digits(const char *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

int km_time_parse(struct km_str s, int64_t *out)
{
	const char *p = s.ptr;
	if (s.len < 20 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != 't') ||
	    p[13] != ':' || p[16] != ':')
		return -EINVAL;
	struct tm tm = {0};
	tm.tm_year = digits(p, 4) - 1900;
	tm.tm_mon = digits(p + 5, 2) - 1;
	tm.tm_mday = digits(p + 8, 2);
	tm.tm_hour = digits(p + 11, 2);
	tm.tm_min = digits(p + 14, 2);
	tm.tm_sec = digits(p + 17, 2);
	if (tm.tm_year < -1900 || tm.tm_mon < 0 || tm.tm_mday < 0 || tm.tm_hour < 0 ||
	    tm.tm_min < 0 || tm.tm_sec < 0)
		return -EINVAL;
	size_t i = 19;
	int64_t frac = 0;
	if (i < s.len && p[i] == '.') {
		i++;
		int64_t scale = 100000000;
		while (i < s.len && p[i] >= '0' && p[i] <= '9') {
			frac += (p[i] - '0') * scale;
			scale /= 10;
			i++;
		}
	}
	long off = 0;
	if (i < s.len && (p[i] == 'Z' || p[i] == 'z')) {
		i++;
	} else if (i + 6 <= s.len && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
		int hh = digits(p + i + 1, 2), mm = digits(p + i + 4, 2);
		if (hh < 0 || mm < 0)
			return -EINVAL;
		off = (hh * 3600L + mm * 60L) * (p[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return -EINVAL;
	}
	if (i != s.len)
		return -EINVAL;
	if (tm.tm_year == 1 - 1900 && tm.tm_mon == 0 && tm.tm_mday == 1 && !tm.tm_hour &&
	    !tm.tm_min && !tm.tm_sec && !frac) {
		*out = 0; /* Go's zero time */
		return 0;
	}
	/* nanoseconds since 1970 fit int64 only for years 1678..2261 */
	if (tm.tm_year < 1678 - 1900 || tm.tm_year > 2261 - 1900)
		return -ERANGE;
	time_t t = timegm(&tm);
	*out = ((int64_t)t - off) * 1000000000 + frac;
	return 0;
}

int64_t km_time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}
