/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of the outbound-centric to[] policies: MeshRetry and
 * MeshCircuitBreaker (which also has rules[]). Paths and messages follow
 * upstream's per-policy validators. */
#include <stdlib.h>
#include <string.h>

#include "resource/validate_util.h"

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

static const char *const kinds_mesh_dp[] = {"Mesh", "Dataplane", NULL};

/* ---- MeshRetry ------------------------------------------------------------ */

static bool http_status_known(struct km_str s)
{
	long long code;
	if (km_str_to_i64(s, &code) != 0)
		return false;
	static const int known[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
				    300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404,
				    405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
				    418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501,
				    502, 503, 504, 505, 506, 507, 508, 510, 511};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i] == code)
			return true;
	return false;
}

static void retry_backoffs(struct km_arena *a, struct km_violations *out, const char *p,
			   const struct km_json *c)
{
	struct km_json *bo = km_v_get(c, "backOff");
	if (bo && !km_v_get(bo, "baseInterval") && !km_v_get(bo, "maxInterval"))
		km_violations_add(out, km_v_path(a, "%s.backOff", p), "must not be empty");
	struct km_json *rl = km_v_get(c, "rateLimitedBackOff");
	if (rl) {
		int64_t ns;
		if (km_v_dur(rl, "maxInterval", &ns) > 0 && ns <= 0)
			km_violations_add(out, km_v_path(a, "%s.rateLimitedBackOff.maxInterval", p),
					  "must be defined and greater than zero");
		struct km_json *rh = arr(rl, "resetHeaders");
		if (!km_v_get(rl, "resetHeaders"))
			km_violations_add(out, km_v_path(a, "%s.rateLimitedBackOff.resetHeaders", p),
					  "must be defined");
		for (size_t i = 0; rh && i < rh->len; i++)
			if (!km_v_str(rh->items[i], "name").len)
				km_violations_add(out,
						  km_v_path(a, "%s.rateLimitedBackOff.resetHeaders[%zu].name", p, i),
						  "must be defined");
	}
}

static void retry_on_item(struct km_violations *out, const char *field, const struct km_json *v,
			  const char *const *allowed, bool http_codes)
{
	struct km_str s = v->kind == KM_JSON_STRING ? v->s : KM_STR("");
	if (km_v_in(s, allowed) || (http_codes && http_status_known(s)))
		return;
	km_violations_add(out, field, "unknown item '%.*s'", KM_STR_FMT(s));
}

static void retry_default(struct km_arena *a, struct km_violations *out, const char *dp,
			  const struct km_json *conf)
{
	const char *p = km_v_path(a, "%s.conf", dp);
	struct km_json *tcp = km_v_get(conf, "tcp"), *http = km_v_get(conf, "http"),
		       *grpc = km_v_get(conf, "grpc");
	if (!tcp && !http && !grpc)
		km_violations_add(out, p, "at least one of the 'tcp', 'http', 'grpc' must be specified");
	if (tcp) {
		struct km_json *m = km_v_get(tcp, "maxConnectAttempt");
		if (!m)
			km_violations_add(out, km_v_path(a, "%s.tcp", p), "must not be empty");
		else if (km_v_int(tcp, "maxConnectAttempt", 1) == 0)
			km_violations_add(out, km_v_path(a, "%s.tcp.maxConnectAttempt", p), "must be greater than 0");
	}
	if (http) {
		const char *hp = km_v_path(a, "%s.http", p);
		static const char *const keys[] = {"numRetries", "perTryTimeout", "backOff", "retryOn",
						   "retriableRequestHeaders", "retriableResponseHeaders",
						   "rateLimitedBackOff", "hostSelection"};
		bool any = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			any = any || km_v_get(http, keys[i]);
		if (!any)
			km_violations_add(out, hp, "must not be empty");
		retry_backoffs(a, out, hp, http);
		static const char *const on[] = {"5xx", "GatewayError", "Reset", "Retriable4xx",
						 "ConnectFailure", "EnvoyRatelimited", "RefusedStream",
						 "Http3PostConnectFailure", "HttpMethodConnect",
						 "HttpMethodDelete", "HttpMethodGet", "HttpMethodHead",
						 "HttpMethodOptions", "HttpMethodPatch", "HttpMethodPost",
						 "HttpMethodPut", "HttpMethodTrace", NULL};
		struct km_json *ro = arr(http, "retryOn");
		for (size_t i = 0; ro && i < ro->len; i++)
			retry_on_item(out, km_v_path(a, "%s.retryOn[%zu]", hp, i), ro->items[i], on, true);
		struct km_json *hs = arr(http, "hostSelection");
		bool prio = false;
		for (size_t i = 0; hs && i < hs->len; i++) {
			const struct km_json *pr = hs->items[i];
			struct km_str t = km_v_str(pr, "predicate");
			const char *ip = km_v_path(a, "%s.hostSelection[%zu]", hp, i);
			if (km_str_eqc(t, "OmitHostsWithTags")) {
				if (!km_v_get(pr, "tags"))
					km_violations_add(out, km_v_path(a, "%s.tags", ip), "must be defined");
			} else if (km_str_eqc(t, "OmitPreviousPriorities")) {
				if (prio)
					km_violations_add(out, km_v_path(a, "%s.predicate", ip),
							  "OmitPreviousPriorities must only be specified once");
				if (km_v_int(pr, "updateFrequency", 0) <= 0)
					km_violations_add(out, km_v_path(a, "%s.updateFrequency", ip),
							  "must be defined and greater than zero");
				prio = true;
			} else if (!km_str_eqc(t, "OmitPreviousHosts")) {
				km_violations_add(out, km_v_path(a, "%s.predicate", ip),
						  "unknown predicate type '%.*s'", KM_STR_FMT(t));
			}
		}
	}
	if (grpc) {
		const char *gp = km_v_path(a, "%s.grpc", p);
		static const char *const keys[] = {"numRetries", "perTryTimeout", "backOff", "retryOn",
						   "rateLimitedBackOff"};
		bool any = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			any = any || km_v_get(grpc, keys[i]);
		if (!any)
			km_violations_add(out, gp, "must not be empty");
		retry_backoffs(a, out, gp, grpc);
		static const char *const on[] = {"Canceled", "DeadlineExceeded", "Internal",
						 "ResourceExhausted", "Unavailable", NULL};
		struct km_json *ro = arr(grpc, "retryOn");
		for (size_t i = 0; ro && i < ro->len; i++)
			retry_on_item(out, km_v_path(a, "%s.retryOn[%zu]", gp, i), ro->items[i], on, false);
	}
}

static const char *const to_kinds_route[] = {"Mesh", "MeshExternalService", NULL};
static const char *const to_kinds_all[] = {"Mesh", "MeshService", "MeshExternalService",
					   "MeshMultiZoneService", "MeshHTTPRoute", NULL};

void km_validate_meshretry(struct km_arena *a, const struct km_resource_doc *doc,
			   struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	bool route = km_str_eqc(km_v_str(top, "kind"), "MeshHTTPRoute");
	struct km_json *to = arr(spec, "to");
	for (size_t i = 0; to && i < to->len; i++) {
		struct km_target_ref_opts o = {route ? to_kinds_route : to_kinds_all, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		retry_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			      km_v_get(to->items[i], "default"));
	}
}

/* ---- MeshCircuitBreaker ------------------------------------------------------ */

static void gt_zero_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
			   const struct km_json *obj, const char *key)
{
	if (km_v_get(obj, key) && km_v_int(obj, key, 1) <= 0)
		km_violations_add(out, km_v_path(a, "%s.%s", p, key), "must be greater than 0");
}

static void dur_gt_zero_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
			       const struct km_json *obj, const char *key)
{
	int64_t ns;
	if (km_v_dur(obj, key, &ns) > 0 && ns <= 0)
		km_violations_add(out, km_v_path(a, "%s.%s", p, key), "must be greater than zero when defined");
}

static void uint_percentage_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
				   const struct km_json *obj, const char *key)
{
	if (km_v_get(obj, key) && km_v_int(obj, key, 0) > 100)
		km_violations_add(out, km_v_path(a, "%s.%s", p, key), "must be in inclusive range [0, 100]");
}

/* intstr decimal: 0 parsed, -1 invalid, 1 absent */
int km_v_decimal(const struct km_json *obj, const char *key, double *d)
{
	struct km_json *v = km_v_get(obj, key);
	if (!v)
		return 1;
	if (v->kind == KM_JSON_NUMBER) {
		*d = v->is_int ? (double)v->i : v->d;
		return 0;
	}
	if (v->kind != KM_JSON_STRING || v->s.len == 0 || v->s.len > 64)
		return -1;
	char buf[72], *end;
	memcpy(buf, v->s.ptr, v->s.len);
	buf[v->s.len] = 0;
	*d = strtod(buf, &end);
	return *end || end == buf ? -1 : 0;
}

void km_v_percentage_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
			    const struct km_json *obj, const char *key)
{
	double d;
	int r = km_v_decimal(obj, key, &d);
	const char *f = km_v_path(a, "%s.%s", p, key);
	if (r < 0)
		km_violations_add(out, f, "string must be a valid number");
	else if (r == 0 && (d < 0 || d > 100))
		km_violations_add(out, f, "must be in inclusive range [0.0, 100.0]");
}

static void cb_default(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *conf)
{
	struct km_json *cl = km_v_get(conf, "connectionLimits"), *od = km_v_get(conf, "outlierDetection");
	if (!cl && !od) {
		km_violations_add(out, p, "at least one of: 'connectionLimits' or 'outlierDetection' should be configured");
		return;
	}
	if (cl) {
		const char *cp = km_v_path(a, "%s.connectionLimits", p);
		static const char *const k[] = {"maxConnections", "maxConnectionPools", "maxPendingRequests",
						"maxRetries", "maxRequests"};
		for (size_t i = 0; i < 5; i++)
			gt_zero_or_nil(a, out, cp, cl, k[i]);
	}
	if (!od)
		return;
	const char *op = km_v_path(a, "%s.outlierDetection", p);
	dur_gt_zero_or_nil(a, out, op, od, "interval");
	dur_gt_zero_or_nil(a, out, op, od, "baseEjectionTime");
	uint_percentage_or_nil(a, out, op, od, "maxEjectionPercent");
	km_v_percentage_or_nil(a, out, op, od, "healthyPanicThreshold");
	struct km_json *det = km_v_get(od, "detectors");
	const char *dp = km_v_path(a, "%s.detectors", op);
	if (!det) {
		km_violations_add(out, dp, "must be defined");
		return;
	}
	static const char *const names[] = {"totalFailures", "gatewayFailures", "localOriginFailures",
					    "successRate", "failurePercentage"};
	bool any = false;
	for (size_t i = 0; i < 5; i++)
		any = any || km_v_get(det, names[i]);
	if (!any) {
		km_violations_add(out, dp, "must have at least one defined: totalFailures, gatewayFailures, "
					   "localOriginFailures, successRate, failurePercentage");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		struct km_json *d = km_v_get(det, names[i]);
		if (d)
			gt_zero_or_nil(a, out, km_v_path(a, "%s.%s", dp, names[i]), d, "consecutive");
	}
	struct km_json *sr = km_v_get(det, "successRate");
	if (sr) {
		const char *sp = km_v_path(a, "%s.successRate", dp);
		gt_zero_or_nil(a, out, sp, sr, "minimumHosts");
		gt_zero_or_nil(a, out, sp, sr, "requestVolume");
		double d;
		int r = km_v_decimal(sr, "standardDeviationFactor", &d);
		if (r < 0)
			km_violations_add(out, km_v_path(a, "%s.standardDeviationFactor", sp), "invalid number");
		else if (r == 0 && d <= 0)
			km_violations_add(out, km_v_path(a, "%s.standardDeviationFactor", sp),
					  "must be greater than 0");
	}
	struct km_json *fp = km_v_get(det, "failurePercentage");
	if (fp) {
		const char *pp = km_v_path(a, "%s.failurePercentage", dp);
		gt_zero_or_nil(a, out, pp, fp, "minimumHosts");
		gt_zero_or_nil(a, out, pp, fp, "requestVolume");
		uint_percentage_or_nil(a, out, pp, fp, "threshold");
	}
}

void km_validate_meshcircuitbreaker(struct km_arena *a, const struct km_resource_doc *doc,
				    struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, km_v_affects_inbounds(spec)};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *rules = arr(spec, "rules"), *to = arr(spec, "to");
	if ((!rules || !rules->len) && (!to || !to->len))
		km_violations_add(out, "spec", "at least one of 'to' or 'rules' has to be defined");
	for (size_t i = 0; rules && i < rules->len; i++)
		cb_default(a, out, km_v_path(a, "spec.from[%zu].default", i), km_v_get(rules->items[i], "default"));
	static const char *const kinds[] = {"Mesh", "MeshService", "MeshExternalService",
					    "MeshMultiZoneService", NULL};
	for (size_t i = 0; to && i < to->len; i++) {
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		cb_default(a, out, km_v_path(a, "spec.to[%zu].default", i), km_v_get(to->items[i], "default"));
	}
}
