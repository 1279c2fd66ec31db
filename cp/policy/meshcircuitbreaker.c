/* SPDX-License-Identifier: Apache-2.0 */
/* MeshCircuitBreaker: connection limits on the default-priority threshold
 * of a cluster's circuitBreakers, and outlier detection (with the panic
 * threshold in commonLbConfig), on inbound and outbound clusters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

/* Outlier detection's durations (tags 24-25): written as they are,
 * deciding nothing. */
const struct cp_policy_conf_var cp_policy_meshcircuitbreaker_conf_vars[] = {
    {"outlierDetection.interval", 24},
    {"outlierDetection.baseEjectionTime", 25},
    {NULL, 0},
};

static struct km_json *default_threshold(struct km_arena *a, struct km_json *cluster)
{
	struct km_json *cb = cp_policy_obj(a, cluster, "circuitBreakers");
	struct km_json *th = km_json_get(cb, "thresholds");
	if (!th || th->kind != KM_JSON_ARRAY) {
		th = km_json_array(a);
		km_json_set(a, cb, "thresholds", th);
	}
	for (size_t i = 0; i < th->len; i++) {
		struct km_str prio = km_json_get_string(th->items[i], "priority");
		if (!prio.len || km_str_eqc(prio, "DEFAULT"))
			return th->items[i];
	}
	struct km_json *t = km_json_object(a);
	km_json_array_push(a, th, t);
	return t;
}

static void copy_uint(struct km_arena *a, struct km_json *dst, const char *dkey,
		      const struct km_json *src, const char *skey)
{
	struct km_json *v = km_json_get(src, skey);
	if (v && v->kind == KM_JSON_NUMBER)
		km_json_set(a, dst, dkey, km_json_clone(a, v));
}

/* IntOrString decimal ("1.9", 1900) as a double. */
static bool decimal(const struct km_json *v, double *out)
{
	if (!v)
		return false;
	if (v->kind == KM_JSON_NUMBER) {
		*out = v->is_int ? (double)v->i : v->d;
		return true;
	}
	if (v->kind != KM_JSON_STRING || !v->s.len || v->s.len > 60)
		return false;
	char buf[64];
	memcpy(buf, v->s.ptr, v->s.len);
	buf[v->s.len] = 0;
	char *end;
	*out = strtod(buf, &end);
	return *end == 0;
}

static void detectors(struct km_arena *a, struct km_json *od, const struct km_json *d)
{
	struct km_json *c;
	c = km_json_get(km_json_get(d, "totalFailures"), "consecutive");
	km_json_set(a, od, "enforcingConsecutive5xx", km_json_int(a, c ? 100 : 0));
	if (c)
		km_json_set(a, od, "consecutive5xx", km_json_clone(a, c));
	c = km_json_get(km_json_get(d, "localOriginFailures"), "consecutive");
	km_json_set(a, od, "enforcingConsecutiveLocalOriginFailure", km_json_int(a, c ? 100 : 0));
	if (c)
		km_json_set(a, od, "consecutiveLocalOriginFailure", km_json_clone(a, c));
	c = km_json_get(km_json_get(d, "gatewayFailures"), "consecutive");
	km_json_set(a, od, "enforcingConsecutiveGatewayFailure", km_json_int(a, c ? 100 : 0));
	if (c)
		km_json_set(a, od, "consecutiveGatewayFailure", km_json_clone(a, c));
	if (!d)
		return;
	struct km_json *sr = km_json_get(d, "successRate");
	km_json_set(a, od, "enforcingSuccessRate", km_json_int(a, sr ? 100 : 0));
	km_json_set(a, od, "enforcingLocalOriginSuccessRate", km_json_int(a, sr ? 100 : 0));
	if (sr) {
		copy_uint(a, od, "successRateMinimumHosts", sr, "minimumHosts");
		copy_uint(a, od, "successRateRequestVolume", sr, "requestVolume");
		double f;
		if (decimal(km_json_get(sr, "standardDeviationFactor"), &f))
			km_json_set(a, od, "successRateStdevFactor",
				    km_json_int(a, (int64_t)trunc(f * 1000)));
	}
	struct km_json *fp = km_json_get(d, "failurePercentage");
	km_json_set(a, od, "enforcingFailurePercentage", km_json_int(a, fp ? 100 : 0));
	km_json_set(a, od, "enforcingFailurePercentageLocalOrigin", km_json_int(a, fp ? 100 : 0));
	if (fp) {
		copy_uint(a, od, "failurePercentageMinimumHosts", fp, "minimumHosts");
		copy_uint(a, od, "failurePercentageRequestVolume", fp, "requestVolume");
		copy_uint(a, od, "failurePercentageThreshold", fp, "threshold");
	}
}

static void configure_cluster(struct km_arena *a, struct km_json *cluster,
			      const struct km_json *conf)
{
	if (!cluster || cluster->kind != KM_JSON_OBJECT)
		return;
	struct km_json *t = default_threshold(a, cluster);
	km_json_set(a, t, "trackRemaining", km_json_bool(a, true));
	struct km_json *cl = km_json_get(conf, "connectionLimits");
	if (cl) {
		copy_uint(a, t, "maxConnectionPools", cl, "maxConnectionPools");
		copy_uint(a, t, "maxConnections", cl, "maxConnections");
		copy_uint(a, t, "maxPendingRequests", cl, "maxPendingRequests");
		copy_uint(a, t, "maxRetries", cl, "maxRetries");
		copy_uint(a, t, "maxRequests", cl, "maxRequests");
	}
	struct km_json *o = km_json_get(conf, "outlierDetection");
	struct km_json *dis = km_json_get(o, "disabled");
	if (!o || (dis && dis->kind == KM_JSON_BOOL && dis->b))
		return;
	struct km_json *od = km_json_object(a);
	struct km_json *v;
	const struct cp_policy_conf_var *cv = cp_policy_meshcircuitbreaker_conf_vars;
	if ((v = cp_policy_conf_duration(a, conf, "outlierDetection.interval", cv, "")))
		km_json_set(a, od, "interval", v);
	if ((v = cp_policy_conf_duration(a, conf, "outlierDetection.baseEjectionTime", cv, "")))
		km_json_set(a, od, "baseEjectionTime", v);
	v = km_json_get(o, "splitExternalAndLocalErrors");
	if (v && v->kind == KM_JSON_BOOL && v->b)
		km_json_set(a, od, "splitExternalLocalOriginErrors", km_json_bool(a, true));
	copy_uint(a, od, "maxEjectionPercent", o, "maxEjectionPercent");
	detectors(a, od, km_json_get(o, "detectors"));
	km_json_set(a, cluster, "outlierDetection", od);
	double pct;
	if (decimal(km_json_get(o, "healthyPanicThreshold"), &pct)) {
		struct km_json *lb = cp_policy_obj(a, cluster, "commonLbConfig");
		km_json_set(a, lb, "healthyPanicThreshold",
			    km_json_fmt(a, "{\"value\":%J}",
					pct == trunc(pct) ? km_json_int(a, (int64_t)pct) :
							    km_json_double(a, pct)));
	}
}

void cp_policy_meshcircuitbreaker_apply(struct cp_policy_apply_ctx *c,
					const struct cp_policy_matched *mp)
{
	struct km_json *clusters = c->rs->by_type[CP_XDS_CLUSTER];
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		struct km_json *cl = in->inbound ? km_json_get(clusters, in->resource) : NULL;
		if (!cl)
			continue; /* also when building outbounds alone (cp/xds/share.c) */
		struct km_json *conf = cp_policy_inbound_conf(c->a, in);
		configure_cluster(c->a, cl, conf ? conf : km_json_object(c->a));
	}
	for (size_t i = 0; mp->nto && clusters && i < clusters->len; i++) {
		struct km_str key = clusters->members[i].key;
		const char *name = km_arena_strndup(c->a, key.ptr, key.len);
		if (strncmp(name, "kri_", 4) != 0)
			continue;
		const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, name);
		if (r)
			configure_cluster(c->a, clusters->members[i].val, r->conf);
	}
}
