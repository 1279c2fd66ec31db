/* SPDX-License-Identifier: Apache-2.0 */
/* Validator of MeshLoadBalancingStrategy: load balancer, locality awareness
 * (local zone affinity, cross-zone failover) and hash policies. */
#include <string.h>

#include "resource/validate_util.h"

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

static void hash_policies(struct km_arena *a, struct km_violations *out, const char *p,
			  const struct km_json *hp)
{
	static const struct {
		const char *type, *field;
	} kinds[] = {{"Header", "header"},
		     {"Cookie", "cookie"},
		     {"QueryParameter", "queryParameter"},
		     {"FilterState", "filterState"},
		     {"Connection", "connection"}};
	for (size_t i = 0; hp && i < hp->len; i++) {
		const struct km_json *h = hp->items[i];
		const char *ip = km_v_path(a, "%s[%zu]", p, i);
		struct km_str t = km_v_str(h, "type");
		size_t k = 0;
		while (k < 5 && !km_str_eqc(t, kinds[k].type))
			k++;
		if (k == 5) {
			km_violations_add(out, km_v_path(a, "%s.type", ip), "unrecognized type");
			continue;
		}
		struct km_json *v = km_v_get(h, kinds[k].field);
		if (!v)
			km_violations_add(out, km_v_path(a, "%s.%s", ip, kinds[k].field),
					  "must be defined");
		else if (k == 1 && km_v_get(v, "path") &&
			 !km_str_has_prefix(km_v_str(v, "path"), "/"))
			km_violations_add(out, km_v_path(a, "%s.cookie.path", ip),
					  "must be an absolute path");
	}
}

static void cross_zone(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *cz, const struct km_json *tref)
{
	if (km_str_eqc(km_v_str(tref, "kind"), "MeshService") &&
	    (km_v_str(tref, "sectionName").len || km_v_len(tref, "labels")))
		km_violations_add(out, p, "must not be set: MeshService traffic is local");
	struct km_json *fo = arr(cz, "failover");
	for (size_t i = 0; fo && i < fo->len; i++) {
		const struct km_json *f = fo->items[i];
		const char *fp = km_v_path(a, "%s.failover[%zu]", p, i);
		struct km_json *from = km_v_get(f, "from");
		if (from) {
			struct km_json *zs = arr(from, "zones");
			if (!zs || !zs->len)
				km_violations_add(out, km_v_path(a, "%s.from.zones", fp),
						  "must not be empty");
			for (size_t z = 0; zs && z < zs->len; z++)
				if (zs->items[z]->kind != KM_JSON_STRING || !zs->items[z]->s.len)
					km_violations_add(out,
							  km_v_path(a, "%s.from.zones[%zu]", fp, z),
							  "must not be empty");
		}
		struct km_json *to = km_v_get(f, "to");
		struct km_str t = km_v_str(to, "type");
		size_t nz = km_v_len(to, "zones");
		const char *zp = km_v_path(a, "%s.to.zones", fp);
		if (km_str_eqc(t, "Any") || km_str_eqc(t, "None")) {
			if (nz)
				km_violations_add(out, zp, "must be empty when type is %.*s",
						  KM_STR_FMT(t));
		} else if (km_str_eqc(t, "AnyExcept") || km_str_eqc(t, "Only")) {
			if (!nz)
				km_violations_add(out, zp, "must not be empty when type is %.*s",
						  KM_STR_FMT(t));
		} else {
			km_violations_add(out, km_v_path(a, "%s.to.type", fp), "unrecognized type");
		}
	}
	struct km_json *ft = km_v_get(cz, "failoverThreshold");
	if (ft) {
		double d;
		int r = km_v_decimal(ft, "percentage", &d);
		const char *pp = km_v_path(a, "%s.failoverThreshold.percentage", p);
		if (r > 0)
			d = 0, r = 0;
		if (r < 0)
			km_violations_add(out, pp, "string must be a valid number");
		else if (d < 0 || d > 100)
			km_violations_add(out, pp, "must be in inclusive range [0.0, 100.0]");
		else if (d == 0)
			km_violations_add(out, pp, "must be greater than 0");
	}
}

void km_validate_meshloadbalancingstrategy(struct km_arena *a, const struct km_resource_doc *doc,
					   struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	static const char *const top_kinds[] = {"Mesh", "Dataplane", NULL};
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {top_kinds, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	static const char *const kinds[] = {
		"Mesh",          "MeshService", "MeshExternalService", "MeshMultiZoneService",
		"MeshHTTPRoute", NULL};
	struct km_json *to = arr(spec, "to");
	for (size_t i = 0; to && i < to->len; i++) {
		const struct km_json *t = to->items[i];
		struct km_json *tref = km_v_get(t, "targetRef");
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i), tref, &o);
		struct km_json *conf = km_v_get(t, "default");
		const char *dp = km_v_path(a, "spec.to[%zu].default", i);
		if (km_str_eqc(km_v_str(tref, "kind"), "MeshHTTPRoute")) {
			hash_policies(a, out, km_v_path(a, "%s.hashPolicies", dp),
				      arr(conf, "hashPolicies"));
			static const char msg[] =
				"field is not allowed when targetRef.kind is MeshHTTPRoute, only hashPolicies is supported";
			if (km_v_get(conf, "loadBalancer"))
				km_violations_add(out, km_v_path(a, "%s.loadBalancer", dp), msg);
			if (km_v_get(conf, "localityAwareness"))
				km_violations_add(out, km_v_path(a, "%s.localityAwareness", dp),
						  msg);
			continue;
		}
		struct km_json *lb = km_v_get(conf, "loadBalancer");
		if (lb && km_str_eqc(km_v_str(lb, "type"), "LeastRequest")) {
			struct km_json *lr = km_v_get(lb, "leastRequest");
			double d;
			int r = km_v_decimal(lr, "activeRequestBias", &d);
			const char *bp =
				km_v_path(a, "%s.loadBalancer.leastRequest.activeRequestBias", dp);
			if (r < 0)
				km_violations_add(out, bp, "string must be a valid number");
			else if (r == 0 && d < 0)
				km_violations_add(out, bp, "must be greater or equal then: 0");
		}
		struct km_json *la = km_v_get(conf, "localityAwareness");
		if (la) {
			const char *lp = km_v_path(a, "%s.localityAwareness", dp);
			struct km_json *tags = arr(km_v_get(la, "localZone"), "affinityTags");
			size_t weighted = 0;
			for (size_t j = 0; tags && j < tags->len; j++) {
				const struct km_json *tg = tags->items[j];
				const char *tp =
					km_v_path(a, "%s.localZone.affinityTags[%zu]", lp, j);
				if (!km_v_str(tg, "key").len)
					km_violations_add(out, km_v_path(a, "%s.key", tp),
							  "must not be empty");
				if (km_v_get(tg, "weight")) {
					if (km_v_int(tg, "weight", 1) <= 0)
						km_violations_add(out,
								  km_v_path(a, "%s.weight", tp),
								  "must be greater than 0");
					weighted++;
				}
			}
			if (weighted && tags && weighted != tags->len)
				km_violations_add(out,
						  km_v_path(a, "%s.localZone.affinityTags", lp),
						  "all or none affinity tags should have weight");
			struct km_json *cz = km_v_get(la, "crossZone");
			if (cz)
				cross_zone(a, out, km_v_path(a, "%s.crossZone", lp), cz, tref);
		}
		hash_policies(a, out, km_v_path(a, "%s.hashPolicies", dp),
			      arr(conf, "hashPolicies"));
	}
}
