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
	static const int known[] = {100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208,
				    226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403,
				    404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416,
				    417, 418, 421, 422, 423, 424, 425, 426, 428, 429, 431, 451, 500,
				    501, 502, 503, 504, 505, 506, 507, 508, 510, 511};
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
			km_violations_add(out,
					  km_v_path(a, "%s.rateLimitedBackOff.resetHeaders", p),
					  "must be defined");
		for (size_t i = 0; rh && i < rh->len; i++)
			if (!km_v_str(rh->items[i], "name").len)
				km_violations_add(
					out,
					km_v_path(a, "%s.rateLimitedBackOff.resetHeaders[%zu].name",
						  p, i),
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
		km_violations_add(out, p,
				  "at least one of the 'tcp', 'http', 'grpc' must be specified");
	if (tcp) {
		struct km_json *m = km_v_get(tcp, "maxConnectAttempt");
		if (!m)
			km_violations_add(out, km_v_path(a, "%s.tcp", p), "must not be empty");
		else if (km_v_int(tcp, "maxConnectAttempt", 1) <= 0) /* a uint32 upstream */
			km_violations_add(out, km_v_path(a, "%s.tcp.maxConnectAttempt", p),
					  "must be greater than 0");
	}
	if (http) {
		const char *hp = km_v_path(a, "%s.http", p);
		static const char *const keys[] = {"numRetries",
						   "perTryTimeout",
						   "backOff",
						   "retryOn",
						   "retriableRequestHeaders",
						   "retriableResponseHeaders",
						   "rateLimitedBackOff",
						   "hostSelection"};
		bool any = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			any = any || km_v_get(http, keys[i]);
		if (!any)
			km_violations_add(out, hp, "must not be empty");
		retry_backoffs(a, out, hp, http);
		static const char *const on[] = {"5xx",
						 "GatewayError",
						 "Reset",
						 "Retriable4xx",
						 "ConnectFailure",
						 "EnvoyRatelimited",
						 "RefusedStream",
						 "Http3PostConnectFailure",
						 "HttpMethodConnect",
						 "HttpMethodDelete",
						 "HttpMethodGet",
						 "HttpMethodHead",
						 "HttpMethodOptions",
						 "HttpMethodPatch",
						 "HttpMethodPost",
						 "HttpMethodPut",
						 "HttpMethodTrace",
						 NULL};
		struct km_json *ro = arr(http, "retryOn");
		for (size_t i = 0; ro && i < ro->len; i++)
			retry_on_item(out, km_v_path(a, "%s.retryOn[%zu]", hp, i), ro->items[i], on,
				      true);
		struct km_json *hs = arr(http, "hostSelection");
		bool prio = false;
		for (size_t i = 0; hs && i < hs->len; i++) {
			const struct km_json *pr = hs->items[i];
			struct km_str t = km_v_str(pr, "predicate");
			const char *ip = km_v_path(a, "%s.hostSelection[%zu]", hp, i);
			if (km_str_eqc(t, "OmitHostsWithTags")) {
				if (!km_v_get(pr, "tags"))
					km_violations_add(out, km_v_path(a, "%s.tags", ip),
							  "must be defined");
			} else if (km_str_eqc(t, "OmitPreviousPriorities")) {
				if (prio)
					km_violations_add(
						out, km_v_path(a, "%s.predicate", ip),
						"OmitPreviousPriorities must only be specified once");
				if (km_v_int(pr, "updateFrequency", 0) <= 0)
					km_violations_add(out,
							  km_v_path(a, "%s.updateFrequency", ip),
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
		static const char *const keys[] = {"numRetries", "perTryTimeout", "backOff",
						   "retryOn", "rateLimitedBackOff"};
		bool any = false;
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			any = any || km_v_get(grpc, keys[i]);
		if (!any)
			km_violations_add(out, gp, "must not be empty");
		retry_backoffs(a, out, gp, grpc);
		static const char *const on[] = {"Canceled",    "DeadlineExceeded",
						 "Internal",    "ResourceExhausted",
						 "Unavailable", NULL};
		struct km_json *ro = arr(grpc, "retryOn");
		for (size_t i = 0; ro && i < ro->len; i++)
			retry_on_item(out, km_v_path(a, "%s.retryOn[%zu]", gp, i), ro->items[i], on,
				      false);
	}
}

static const char *const to_kinds_route[] = {"Mesh", "MeshExternalService", NULL};
static const char *const to_kinds_all[] = {
	"Mesh",          "MeshService", "MeshExternalService", "MeshMultiZoneService",
	"MeshHTTPRoute", NULL};

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
		km_violations_add(out, km_v_path(a, "%s.%s", p, key),
				  "must be greater than zero when defined");
}

static void uint_percentage_or_nil(struct km_arena *a, struct km_violations *out, const char *p,
				   const struct km_json *obj, const char *key)
{
	if (km_v_get(obj, key) && km_v_int(obj, key, 0) > 100)
		km_violations_add(out, km_v_path(a, "%s.%s", p, key),
				  "must be in inclusive range [0, 100]");
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
	struct km_json *cl = km_v_get(conf, "connectionLimits"),
		       *od = km_v_get(conf, "outlierDetection");
	if (!cl && !od) {
		km_violations_add(
			out, p,
			"at least one of: 'connectionLimits' or 'outlierDetection' should be configured");
		return;
	}
	if (cl) {
		const char *cp = km_v_path(a, "%s.connectionLimits", p);
		static const char *const k[] = {"maxConnections", "maxConnectionPools",
						"maxPendingRequests", "maxRetries", "maxRequests"};
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
	static const char *const names[] = {"totalFailures", "gatewayFailures",
					    "localOriginFailures", "successRate",
					    "failurePercentage"};
	bool any = false;
	for (size_t i = 0; i < 5; i++)
		any = any || km_v_get(det, names[i]);
	if (!any) {
		km_violations_add(out, dp,
				  "must have at least one defined: totalFailures, gatewayFailures, "
				  "localOriginFailures, successRate, failurePercentage");
		return;
	}
	for (size_t i = 0; i < 3; i++) {
		struct km_json *d = km_v_get(det, names[i]);
		if (d)
			gt_zero_or_nil(a, out, km_v_path(a, "%s.%s", dp, names[i]), d,
				       "consecutive");
	}
	struct km_json *sr = km_v_get(det, "successRate");
	if (sr) {
		const char *sp = km_v_path(a, "%s.successRate", dp);
		gt_zero_or_nil(a, out, sp, sr, "minimumHosts");
		gt_zero_or_nil(a, out, sp, sr, "requestVolume");
		double d;
		int r = km_v_decimal(sr, "standardDeviationFactor", &d);
		if (r < 0)
			km_violations_add(out, km_v_path(a, "%s.standardDeviationFactor", sp),
					  "invalid number");
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
		cb_default(a, out, km_v_path(a, "spec.from[%zu].default", i),
			   km_v_get(rules->items[i], "default"));
	static const char *const kinds[] = {"Mesh", "MeshService", "MeshExternalService",
					    "MeshMultiZoneService", NULL};
	for (size_t i = 0; to && i < to->len; i++) {
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		cb_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			   km_v_get(to->items[i], "default"));
	}
}

/* ---- MeshHealthCheck -------------------------------------------------------- */

static void hc_default(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *conf)
{
	static const char *const durs[] = {"interval", "timeout"};
	for (size_t i = 0; i < 2; i++)
		dur_gt_zero_or_nil(a, out, p, conf, durs[i]);
	static const char *const th[] = {"unhealthyThreshold", "healthyThreshold"};
	for (size_t i = 0; i < 2; i++)
		if (km_v_get(conf, th[i]) && km_v_int(conf, th[i], 1) <= 0)
			km_violations_add(out, km_v_path(a, "%s.%s", p, th[i]),
					  "must be greater than zero when defined");
	dur_gt_zero_or_nil(a, out, p, conf, "initialJitter");
	dur_gt_zero_or_nil(a, out, p, conf, "intervalJitter");
	if (km_v_get(conf, "intervalJitterPercent")) {
		int64_t v = km_v_int(conf, "intervalJitterPercent", 0);
		if (v < 0 || v > 100)
			km_violations_add(out, km_v_path(a, "%s.intervalJitterPercent", p),
					  "must be in inclusive range [0, 100]");
	}
	dur_gt_zero_or_nil(a, out, p, conf, "noTrafficInterval");
	struct km_json *elp = km_v_get(conf, "eventLogPath");
	if (elp && (elp->kind != KM_JSON_STRING || elp->s.len == 0))
		km_violations_add(out, km_v_path(a, "%s.eventLogPath", p),
				  "must be a valid path when defined");
	struct km_json *http = km_v_get(conf, "http");
	if (http) {
		struct km_json *path = km_v_get(http, "path");
		if (path && path->kind == KM_JSON_STRING && path->s.len == 0)
			km_violations_add(out, km_v_path(a, "%s.http.path", p), "must be defined");
		struct km_json *st = arr(http, "expectedStatuses");
		for (size_t i = 0; st && i < st->len; i++) {
			const struct km_json *s = st->items[i];
			int64_t code =
				km_json_i64_sat(s);
			if (code < 100 || code >= 600)
				km_violations_add(
					out, km_v_path(a, "%s.http.expectedStatuses[%zu]", p, i),
					"must be in inclusive range [100, 599]");
		}
	}
	if (!http && !km_v_get(conf, "tcp") && !km_v_get(conf, "grpc"))
		km_violations_add(out, p, "must have at least one defined: http, tcp, grpc");
}

void km_validate_meshhealthcheck(struct km_arena *a, const struct km_resource_doc *doc,
				 struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	static const char *const kinds[] = {"Mesh", "MeshService", "MeshExternalService",
					    "MeshMultiZoneService", NULL};
	struct km_json *to = arr(spec, "to");
	for (size_t i = 0; to && i < to->len; i++) {
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		hc_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			   km_v_get(to->items[i], "default"));
	}
}

/* ---- MeshTCPRoute ------------------------------------------------------------ */

static const char *const backend_kinds[] = {"MeshService", "MeshExternalService",
					    "MeshMultiZoneService", NULL};

void km_v_backend_refs(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *refs)
{
	for (size_t i = 0; refs && refs->kind == KM_JSON_ARRAY && i < refs->len; i++) {
		const struct km_json *r = refs->items[i];
		const char *ip = km_v_path(a, "%s[%zu]", p, i);
		struct km_target_ref_opts o = {backend_kinds, false};
		km_validate_target_ref(a, out, ip, r, &o);
		if (km_str_eqc(km_v_str(r, "kind"), "MeshMultiZoneService") && !km_v_get(r, "port"))
			km_violations_add(out, km_v_path(a, "%s.port", ip),
					  "must be defined with kind MeshMultiZoneService");
		if (km_v_int(r, "weight", 0) > 4294967295LL)
			km_violations_add(out, km_v_path(a, "%s.weight", ip),
					  "must be in inclusive range [0, 4294967295]");
	}
}

void km_validate_meshtcproute(struct km_arena *a, const struct km_resource_doc *doc,
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
		struct km_target_ref_opts o = {backend_kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		struct km_json *rules = arr(to->items[i], "rules");
		for (size_t j = 0; rules && j < rules->len; j++) {
			const char *bp =
				km_v_path(a, "spec.to[%zu].rules[%zu].default.backendRefs", i, j);
			struct km_json *refs =
				arr(km_v_get(rules->items[j], "default"), "backendRefs");
			if (!refs || !refs->len)
				km_violations_add(out, bp, "must be defined");
			else
				km_v_backend_refs(a, out, bp, refs);
		}
	}
}

/* ---- MeshFaultInjection ----------------------------------------------------- */

static void percentage_required(struct km_arena *a, struct km_violations *out, const char *p,
				const struct km_json *obj)
{
	double d;
	int r = km_v_decimal(obj, "percentage", &d);
	const char *f = km_v_path(a, "%s.percentage", p);
	if (r < 0)
		km_violations_add(out, f, "string must be a valid number");
	else if (r == 0 && (d < 0 || d > 100))
		km_violations_add(out, f, "must be in inclusive range [0.0, 100.0]");
}

static bool bandwidth_ok(struct km_str s)
{
	size_t i = 0;
	while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9')
		i++;
	if (i < s.len && (s.ptr[i] == ' ' || s.ptr[i] == '\t'))
		i++;
	size_t u = i;
	while (i < s.len && (s.ptr[i] == 'G' || s.ptr[i] == 'M' || s.ptr[i] == 'k'))
		i++;
	return i > u && s.len - i == 3 && memcmp(s.ptr + i, "bps", 3) == 0;
}

static void fi_default(struct km_arena *a, struct km_violations *out, const char *dp,
		       const struct km_json *conf)
{
	struct km_json *http = arr(conf, "http");
	const char *p = km_v_path(a, "%s.http", dp);
	for (size_t i = 0; http && i < http->len; i++) {
		const struct km_json *f = http->items[i];
		struct km_json *ab = km_v_get(f, "abort"), *de = km_v_get(f, "delay"),
			       *bw = km_v_get(f, "responseBandwidth");
		if (ab) {
			const char *ap = km_v_path(a, "%s.abort[%zu]", p, i);
			int64_t st = km_v_int(ab, "httpStatus", 0);
			if (st < 100 || st >= 600)
				km_violations_add(out, km_v_path(a, "%s.httpStatus", ap),
						  "must be in inclusive range [100, 599]");
			percentage_required(a, out, ap, ab);
		}
		if (de) {
			const char *xp = km_v_path(a, "%s.delay[%zu]", p, i);
			int64_t ns;
			if (km_v_dur(de, "value", &ns) > 0 && ns < 0)
				km_violations_add(out, km_v_path(a, "%s.value", xp),
						  "must not be negative when defined");
			percentage_required(a, out, xp, de);
		}
		if (bw) {
			const char *bp = km_v_path(a, "%s.responseBandwidth[%zu]", p, i);
			struct km_str l = km_v_str(bw, "limit");
			if (!l.len)
				km_violations_add(out, km_v_path(a, "%s.limit", bp),
						  "must be defined");
			else if (!bandwidth_ok(l))
				km_violations_add(out, km_v_path(a, "%s.limit", bp),
						  "must be in kbps/Mbps/Gbps units");
			percentage_required(a, out, bp, bw);
		}
	}
}

void km_validate_meshfaultinjection(struct km_arena *a, const struct km_resource_doc *doc,
				    struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, km_v_affects_inbounds(spec)};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *rules = arr(spec, "rules");
	for (size_t i = 0; rules && i < rules->len; i++) {
		const char *rp = km_v_path(a, "spec.rules[%zu]", i);
		struct km_json *ms = arr(rules->items[i], "matches");
		for (size_t j = 0; ms && j < ms->len; j++)
			km_validate_match(a, out, km_v_path(a, "%s.matches[%zu]", rp, j),
					  ms->items[j]);
		fi_default(a, out, km_v_path(a, "%s.default", rp),
			   km_v_get(rules->items[i], "default"));
	}
	struct km_str tk = km_v_str(top, "kind");
	bool gateways = !tk.len || km_str_eqc(tk, "Mesh") || km_str_eqc(tk, "MeshHTTPRoute");
	struct km_json *to = arr(spec, "to");
	if (!gateways && to && to->len) {
		km_violations_add(out, "spec.to", "must not be defined");
		return;
	}
	static const char *const kinds[] = {"Mesh", NULL};
	for (size_t i = 0; to && i < to->len; i++) {
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		fi_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			   km_v_get(to->items[i], "default"));
	}
}

/* ---- MeshRateLimit ----------------------------------------------------------- */

static void rate(struct km_arena *a, struct km_violations *out, const char *p,
		 const struct km_json *r)
{
	if (km_v_int(r, "num", 0) <= 0)
		km_violations_add(out, km_v_path(a, "%s.num", p), "must be greater than 0");
	int64_t ns = 0;
	km_v_dur(r, "interval", &ns);
	if (ns <= 50000000LL)
		km_violations_add(out, km_v_path(a, "%s.interval", p),
				  "must be greater than: 50ms");
}

static void rl_default(struct km_arena *a, struct km_violations *out, const char *dp,
		       const struct km_json *conf)
{
	const char *p = km_v_path(a, "%s.local", dp);
	struct km_json *local = km_v_get(conf, "local");
	if (!local) {
		km_violations_add(out, p, "must be defined");
		return;
	}
	struct km_json *http = km_v_get(local, "http"), *tcp = km_v_get(local, "tcp");
	if (!http && !tcp)
		km_violations_add(out, p, "must have at least one defined: tcp, http");
	if (http) {
		const char *hp = km_v_path(a, "%s.http", p);
		if (!km_v_get(http, "disabled") && !km_v_get(http, "requestRate") &&
		    !km_v_get(http, "onRateLimit")) {
			km_violations_add(
				out, hp,
				"must have at least one defined: disabled, requestRate, onRateLimit");
		} else {
			if (km_v_get(http, "requestRate"))
				rate(a, out, km_v_path(a, "%s.requestRate", hp),
				     km_v_get(http, "requestRate"));
			struct km_json *orl = km_v_get(http, "onRateLimit");
			if (orl)
				gt_zero_or_nil(a, out, km_v_path(a, "%s.onRateLimit", hp), orl,
					       "status");
		}
	}
	if (tcp) {
		const char *tp = km_v_path(a, "%s.tcp", p);
		if (!km_v_get(tcp, "disabled") && !km_v_get(tcp, "connectionRate"))
			km_violations_add(
				out, tp,
				"must have at least one defined: disabled, connectionRate");
		else if (km_v_get(tcp, "connectionRate"))
			rate(a, out, km_v_path(a, "%s.connectionRate", tp),
			     km_v_get(tcp, "connectionRate"));
	}
}

void km_validate_meshratelimit(struct km_arena *a, const struct km_resource_doc *doc,
			       struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *rules = arr(spec, "rules"), *to = arr(spec, "to");
	size_t nr = rules ? rules->len : 0, nt = to ? to->len : 0;
	if (nr && nt)
		km_violations_add(out, "spec", "field 'to' must be empty when 'rules' is defined");
	if (!nr && !nt)
		km_violations_add(out, "spec", "at least one of 'to' or 'rules' has to be defined");
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, nr > 0};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_str tk = km_v_str(top, "kind");
	bool gateways = !tk.len || km_str_eqc(tk, "Mesh") || km_str_eqc(tk, "MeshHTTPRoute");
	if (gateways && nr) {
		km_violations_add(out, "spec.rules", "must not be defined");
	} else {
		for (size_t i = 0; i < nr; i++) {
			const struct km_json *rule = rules->items[i];
			const char *rp = km_v_path(a, "spec.rules[%zu]", i);
			struct km_json *conf = km_v_get(rule, "default");
			struct km_json *ms = arr(rule, "matches");
			bool spiffe = false;
			for (size_t j = 0; ms && j < ms->len; j++) {
				const struct km_json *m = ms->items[j];
				const char *mp = km_v_path(a, "%s.matches[%zu]", rp, j);
				km_validate_match(a, out, mp, m);
				struct km_json *sid = km_v_get(m, "spiffeID");
				if (!sid && !km_v_get(m, "sni")) {
					km_violations_add(
						out, mp,
						"must specify at least one of 'spiffeID' or 'sni'");
					continue;
				}
				if (sid) {
					spiffe = true;
					struct km_str t = km_v_str(sid, "type");
					const char *tp = km_v_path(a, "%s.spiffeID.type", mp);
					if (!t.len)
						km_violations_add(out, tp, "must be set");
					else if (!km_str_eqc(t, "Exact") &&
						 !km_str_eqc(t, "Prefix"))
						km_violations_add(
							out, tp,
							"unrecognized type \"%.*s\", supported values are: Exact, Prefix",
							KM_STR_FMT(t));
				}
			}
			if (spiffe && km_v_get(km_v_get(conf, "local"), "tcp"))
				km_violations_add(
					out, km_v_path(a, "%s.default.local.tcp", rp),
					"can't be specified when matches contain spiffeID because this "
					"field cannot be conditioned on source identity");
			rl_default(a, out, km_v_path(a, "%s.default", rp), conf);
		}
	}
	if (!gateways && nt) {
		km_violations_add(out, "spec.to", "must not be defined");
		return;
	}
	static const char *const kinds[] = {"Mesh", NULL};
	for (size_t i = 0; i < nt; i++) {
		struct km_target_ref_opts o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &o);
		rl_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			   km_v_get(to->items[i], "default"));
	}
}
