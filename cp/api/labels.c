/* SPDX-License-Identifier: Apache-2.0 */
/* Labels on REST writes: validation of user labels (Kubernetes qualified-name
 * and label-value rules, origin/zone/mesh consistency) and the computed labels
 * upstream stamps on every write (display-name, mesh, origin, zone, env). */
#include "cp/api/labels.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static bool alnum(char c)
{
	return isalnum((unsigned char)c) != 0;
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] */
static bool qualified_part(struct km_str s)
{
	if (s.len == 0 || !alnum(s.ptr[0]) || !alnum(s.ptr[s.len - 1]))
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!alnum(s.ptr[i]) && s.ptr[i] != '-' && s.ptr[i] != '_' && s.ptr[i] != '.')
			return false;
	return true;
}

/* RFC 1123 subdomain */
static bool dns1123_subdomain(struct km_str s)
{
	if (s.len == 0 || s.len > 253)
		return false;
	size_t start = 0;
	for (size_t i = 0; i <= s.len; i++) {
		if (i == s.len || s.ptr[i] == '.') {
			if (i == start)
				return false;
			if (!(islower((unsigned char)s.ptr[start]) || isdigit((unsigned char)s.ptr[start])) ||
			    !(islower((unsigned char)s.ptr[i - 1]) || isdigit((unsigned char)s.ptr[i - 1])))
				return false;
			for (size_t j = start; j < i; j++)
				if (!islower((unsigned char)s.ptr[j]) && !isdigit((unsigned char)s.ptr[j]) &&
				    s.ptr[j] != '-')
					return false;
			start = i + 1;
		}
	}
	return true;
}

static const char qname_msg[] =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

static void check_key(struct km_violations *v, const char *field, struct km_str k)
{
	const char *slash = memchr(k.ptr, '/', k.len);
	struct km_str name = k, prefix = KM_STR_NULL;
	if (slash) {
		prefix = (struct km_str){k.ptr, (size_t)(slash - k.ptr)};
		name = (struct km_str){slash + 1, k.len - prefix.len - 1};
		if (memchr(name.ptr, '/', name.len)) {
			km_violations_add(
			    v, field,
			    "a valid label key must consist of alphanumeric characters, '-', '_' or '.', "
			    "and must start and end with an alphanumeric character (e.g. 'MyName',  or "
			    "'my.name',  or '123-abc', regex used for validation is "
			    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
			    "prefix and '/' (e.g. 'example.com/MyName')");
			return;
		}
		if (prefix.len == 0)
			km_violations_add(v, field, "prefix part must be non-empty");
		else if (!dns1123_subdomain(prefix))
			km_violations_add(
			    v, field,
			    "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
			    "alphanumeric characters, '-' or '.', and must start and end with an "
			    "alphanumeric character (e.g. 'example.com', regex used for validation is "
			    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')");
	}
	if (name.len == 0)
		km_violations_add(v, field, "name part must be non-empty");
	if (name.len > 63)
		km_violations_add(v, field, "name part must be no more than 63 characters");
	if (!qualified_part(name))
		km_violations_add(v, field, "%s", qname_msg);
}

static void check_value(struct km_violations *v, const char *field, struct km_str val)
{
	if (val.len > 63)
		km_violations_add(v, field, "must be no more than 63 characters");
	if (val.len && !qualified_part(val))
		km_violations_add(
		    v, field,
		    "a valid label must be an empty string or consist of alphanumeric characters, "
		    "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
		    "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
		    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')");
}

static int cmp_members(const void *a, const void *b)
{
	const struct km_json_member *x = a, *y = b;
	return km_str_cmp(x->key, y->key);
}

void cp_labels_validate(struct km_arena *a, const struct cp_runtime *rt, const struct km_rtype *t,
			const struct km_resource_doc *d, struct km_violations *v)
{
	struct km_str origin = km_json_get_string(d->labels, "kuma.io/origin");
	bool has_origin = km_json_get(d->labels, "kuma.io/origin") != NULL;
	if (has_origin && !km_str_eqc(origin, "zone") && !km_str_eqc(origin, "global"))
		km_violations_add(v, "labels[\"kuma.io/origin\"]",
				  "unknown resource origin %.*s", KM_STR_FMT(origin));
	if (rt->global_mode && has_origin && !km_str_eqc(origin, "global"))
		km_violations_add(v, "labels[\"kuma.io/origin\"]",
				  "the origin label must be set to 'global'");
	if (rt->federated && km_rtype_has(t, KM_RT_POLICY) && (!has_origin || !km_str_eqc(origin, "zone")))
		km_violations_add(v, "labels[\"kuma.io/origin\"]", "the origin label must be set to 'zone'");
	if (!rt->global_mode && !km_str_eqc(origin, "global")) {
		struct km_json *zone = km_json_get(d->labels, "kuma.io/zone");
		if (zone && (zone->kind != KM_JSON_STRING || !km_str_eqc(zone->s, rt->zone)))
			km_violations_add(v, "labels[\"kuma.io/zone\"]", "kuma.io/zone label should have %s value",
					  rt->zone);
		struct km_json *mesh = km_json_get(d->labels, "kuma.io/mesh");
		if (mesh && (mesh->kind != KM_JSON_STRING || !km_str_eq(mesh->s, d->mesh)))
			km_violations_add(v, "labels[\"kuma.io/mesh\"]",
					  "kuma.io/mesh label must not differ from mesh set on resource");
	}
	if (km_rtype_has(t, KM_RT_POLICY)) {
		struct km_json *role = km_json_get(d->labels, "kuma.io/policy-role");
		if (role && (role->kind != KM_JSON_STRING || !km_str_eqc(role->s, "system")))
			km_violations_add(v, "labels[\"kuma.io/policy-role\"]",
					  "kuma.io/policy-role label should have system value, got %.*s",
					  KM_STR_FMT(role->s));
	}
	if (!d->labels)
		return;
	/* sorted keys, as upstream iterates them */
	struct km_json_member *sorted = km_arena_alloc(a, (d->labels->len + 1) * sizeof(*sorted));
	memcpy(sorted, d->labels->members, d->labels->len * sizeof(*sorted));
	qsort(sorted, d->labels->len, sizeof(*sorted), cmp_members);
	for (size_t i = 0; i < d->labels->len; i++) {
		char *key = km_arena_strndup(a, sorted[i].key.ptr, sorted[i].key.len);
		const char *field = km_path_key(a, "labels", key);
		check_key(v, field, sorted[i].key);
		if (sorted[i].val->kind == KM_JSON_STRING)
			check_value(v, field, sorted[i].val->s);
	}
}

struct km_json *cp_labels_compute(struct km_arena *a, const struct cp_runtime *rt,
				  const struct km_rtype *t, const struct km_json *existing,
				  struct km_str mesh, struct km_str name, const struct km_json *spec)
{
	struct km_json *l = existing ? km_json_clone(a, existing) : km_json_object(a);
	km_json_set(a, l, "kuma.io/display-name", km_json_string(a, name));
	if (t->scope == KM_SCOPE_MESH && !km_json_get(l, "kuma.io/mesh"))
		km_json_set(a, l, "kuma.io/mesh", km_json_string(a, mesh.len ? mesh : KM_STR("default")));
	if (rt->global_mode) {
		km_json_set(a, l, "kuma.io/origin", km_json_cstring(a, "global"));
	} else {
		km_json_set(a, l, "kuma.io/origin", km_json_cstring(a, "zone"));
		if (km_rtype_has(t, KM_RT_ZONE_LABELS)) {
			if (!km_json_get(l, "kuma.io/zone"))
				km_json_set(a, l, "kuma.io/zone", km_json_cstring(a, rt->zone));
			if (!km_json_get(l, "kuma.io/env"))
				km_json_set(a, l, "kuma.io/env", km_json_cstring(a, "universal"));
		}
	}
	if (strcmp(t->name, "Dataplane") == 0) {
		km_json_del(l, "kuma.io/proxy-type");
		bool ingress = false, egress = false;
		struct km_json *ls = km_json_get(km_json_get(spec, "networking"), "listeners");
		for (size_t i = 0; ls && ls->kind == KM_JSON_ARRAY && i < ls->len; i++) {
			struct km_str ty = km_json_get_string(ls->items[i], "type");
			ingress |= km_str_eqc(ty, "ZoneIngress");
			egress |= km_str_eqc(ty, "ZoneEgress");
		}
		if (ingress)
			km_json_set(a, l, "kuma.io/listener-zoneingress", km_json_cstring(a, "enabled"));
		else
			km_json_del(l, "kuma.io/listener-zoneingress");
		if (egress)
			km_json_set(a, l, "kuma.io/listener-zoneegress", km_json_cstring(a, "enabled"));
		else
			km_json_del(l, "kuma.io/listener-zoneegress");
	}
	km_json_sort_keys(l);
	return l;
}
