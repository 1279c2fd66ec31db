/* SPDX-License-Identifier: Apache-2.0 */
/* Validator of MeshHTTPRoute: to[] targetRefs, rules (matches, filters,
 * backendRefs) and hostnames, with upstream's paths and messages. */
#include <string.h>

#include "resource/validate_util.h"

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

static const char *const kinds_mesh_dp[] = {"Mesh", "Dataplane", NULL};
static const char *const backend_kinds[] = {"MeshService", "MeshExternalService",
					    "MeshMultiZoneService", NULL};

static void path_match(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *m)
{
	if (!m)
		return;
	struct km_str t = km_v_str(m, "type"), v = km_v_str(m, "value");
	const char *vp = km_v_path(a, "%s.value", p);
	if (km_str_eqc(t, "PathPrefix")) {
		if (km_str_eqc(v, "/"))
			return;
		if (km_str_has_suffix(v, "/"))
			km_violations_add(out, vp,
					  "does not need a trailing slash because only a "
					  "`/`-separated prefix or an entire path is matched");
		if (!km_str_has_prefix(v, "/"))
			km_violations_add(out, vp, "must be an absolute path");
	} else if (km_str_eqc(t, "Exact")) {
		if (!km_str_has_prefix(v, "/"))
			km_violations_add(out, vp, "must be an absolute path");
	}
}

static bool all_prefix(const struct km_json *matches)
{
	for (size_t i = 0; matches && i < matches->len; i++) {
		struct km_json *p = km_v_get(matches->items[i], "path");
		if (!p || !km_str_eqc(km_v_str(p, "type"), "PathPrefix"))
			return false;
	}
	return true;
}

static void precise_hostname(struct km_violations *out, const char *p, const struct km_json *h)
{
	if (!h || h->kind != KM_JSON_STRING)
		return;
	if (km_v_is_ip(h->s)) {
		km_violations_add(out, p, "cannot be an IP address");
		return;
	}
	km_v_dns1123_subdomain(out, p, h->s);
}

static void header_modifier(struct km_arena *a, struct km_violations *out, const char *p,
			    const struct km_json *hm)
{
	struct km_json *set = km_v_get(hm, "set"), *add = km_v_get(hm, "add"),
		       *rm = km_v_get(hm, "remove");
	if (!set && !add && !rm) {
		km_violations_add(out, p, "must have at least one defined: set, add, remove");
		return;
	}
	struct km_str seen[256];
	size_t n = 0;
	static const char *const keys[] = {"set", "add", "remove"};
	for (size_t k = 0; k < 3; k++) {
		struct km_json *l = arr(hm, keys[k]);
		for (size_t i = 0; l && i < l->len; i++) {
			struct km_str name =
				k == 2 ? (l->items[i]->kind == KM_JSON_STRING ? l->items[i]->s :
										KM_STR("")) :
					 km_v_str(l->items[i], "name");
			bool dup = false;
			for (size_t j = 0; j < n && !dup; j++)
				dup = km_str_eq(seen[j], name);
			if (dup)
				km_violations_add(out,
						  km_v_path(a, "%s.%s[%zu].name", p, keys[k], i),
						  "duplicate header name");
			else if (n < sizeof(seen) / sizeof(seen[0]))
				seen[n++] = name;
		}
	}
}

static void filters(struct km_arena *a, struct km_violations *out, const char *p,
		    const struct km_json *fs, const struct km_json *matches)
{
	for (size_t i = 0; fs && i < fs->len; i++) {
		const struct km_json *f = fs->items[i];
		const char *ip = km_v_path(a, "%s[%zu]", p, i);
		struct km_str t = km_v_str(f, "type");
		if (km_str_eqc(t, "RequestHeaderModifier") ||
		    km_str_eqc(t, "ResponseHeaderModifier")) {
			const char *key = km_str_eqc(t, "RequestHeaderModifier") ?
						  "requestHeaderModifier" :
						  "responseHeaderModifier";
			const char *fp = km_v_path(a, "%s.%s", ip, key);
			struct km_json *hm = km_v_get(f, key);
			if (!hm)
				km_violations_add(out, fp, "must be defined");
			else
				header_modifier(a, out, fp, hm);
		} else if (km_str_eqc(t, "RequestRedirect") || km_str_eqc(t, "URLRewrite")) {
			const char *key =
				km_str_eqc(t, "RequestRedirect") ? "requestRedirect" : "urlRewrite";
			const char *fp = km_v_path(a, "%s.%s", ip, key);
			struct km_json *r = km_v_get(f, key);
			if (!r) {
				km_violations_add(out, fp, "must be defined");
				continue;
			}
			if (km_v_get(km_v_get(r, "path"), "replacePrefixMatch") &&
			    !all_prefix(matches))
				km_violations_add(
					out, km_v_path(a, "%s.path.replacePrefixMatch", fp),
					"can only appear if all matches match a path prefix");
			precise_hostname(out, km_v_path(a, "%s.hostname", fp),
					 km_v_get(r, "hostname"));
			struct km_json *h2b = km_v_get(r, "hostToBackendHostname");
			if (!strcmp(key, "urlRewrite") && h2b && h2b->kind == KM_JSON_BOOL &&
			    h2b->b) {
				const char *hp = km_v_path(a, "%s.hostToBackendHostname", fp);
				km_violations_add(out, hp, "must not be set");
				if (km_v_get(r, "hostname"))
					km_violations_add(out, hp,
							  "cannot be set together with hostname");
			}
		} else if (km_str_eqc(t, "RequestMirror")) {
			struct km_json *m = km_v_get(f, "requestMirror");
			const char *fp = km_v_path(a, "%s.requestMirror", ip);
			if (!m) {
				km_violations_add(out, fp, "must be defined");
				continue;
			}
			struct km_json *one = km_json_array(a);
			km_json_array_push(a, one,
					   km_v_get(m, "backendRef") ? km_v_get(m, "backendRef") :
								       km_json_object(a));
			/* the mirror has one backendRef, reported without an index */
			struct km_violations tmp;
			km_violations_init(&tmp, a);
			km_v_backend_refs(a, &tmp, "", one);
			for (size_t k = 0; k < tmp.len; k++)
				km_violations_add(
					out,
					km_v_path(a, "%s.backendRef%s", fp, tmp.items[k].field + 3),
					"%s", tmp.items[k].message);
		}
	}
}

void km_validate_meshhttproute(struct km_arena *a, const struct km_resource_doc *doc,
			       struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *to = arr(spec, "to");
	for (size_t i = 0; to && i < to->len; i++) {
		const struct km_json *t = to->items[i];
		const char *tp = km_v_path(a, "spec.to[%zu]", i);
		struct km_target_ref_opts o = {backend_kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "%s.targetRef", tp),
				       km_v_get(t, "targetRef"), &o);
		struct km_json *rules = arr(t, "rules");
		for (size_t j = 0; rules && j < rules->len; j++) {
			const struct km_json *r = rules->items[j];
			const char *rp = km_v_path(a, "%s.rules[%zu]", tp, j);
			struct km_json *ms = arr(r, "matches");
			for (size_t k = 0; ms && k < ms->len; k++) {
				const struct km_json *m = ms->items[k];
				const char *mp = km_v_path(a, "%s.matches[%zu]", rp, k);
				path_match(a, out, km_v_path(a, "%s.path", mp),
					   km_v_get(m, "path"));
				struct km_json *qp = arr(m, "queryParams");
				for (size_t q = 0; qp && q < qp->len; q++) {
					struct km_str name = km_v_str(qp->items[q], "name");
					for (size_t w = 0; w < q; w++) {
						if (km_str_eq(km_v_str(qp->items[w], "name"),
							      name)) {
							km_violations_add(
								out,
								km_v_path(
									a,
									"%s.queryParams[%zu].name",
									mp, q),
								"multiple entries for name %.*s",
								KM_STR_FMT(name));
							break;
						}
					}
				}
				struct km_json *hs = arr(m, "headers");
				for (size_t h = 0; hs && h < hs->len; h++) {
					struct km_str ht = km_v_str(hs->items[h], "type");
					if ((km_str_eqc(ht, "Present") ||
					     km_str_eqc(ht, "Absent")) &&
					    km_v_str(hs->items[h], "value").len)
						km_violations_add(out,
								  km_v_path(a,
									    "%s.headers[%zu].value",
									    mp, h),
								  "must not be defined");
				}
			}
			struct km_json *def = km_v_get(r, "default");
			filters(a, out, km_v_path(a, "%s.default.filters", rp), arr(def, "filters"),
				ms);
			km_v_backend_refs(a, out, km_v_path(a, "%s.default.backendRefs", rp),
					  arr(def, "backendRefs"));
		}
		if (km_v_len(t, "hostnames") > 0)
			km_violations_add(out, km_v_path(a, "%s.hostnames", tp),
					  "must not be defined");
	}
}
