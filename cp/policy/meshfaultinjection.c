/* SPDX-License-Identifier: Apache-2.0 */
/* MeshFaultInjection: HTTP fault filters on the inbounds it selects. Each
 * rule's faults (an abort, a delay and a response bandwidth limit each at a
 * percentage) become one envoy.filters.http.fault per entry of its `http`
 * list, before the router, named after the rule's policy. A rule with
 * matches wraps its filters in an ExtensionWithMatcher that skips them for
 * clients no match names (the matcher API over the peer's SPIFFE ID). TCP
 * inbounds are left alone. */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

/* A bandwidth ("10kbps", "5Mbps", "1Gbps") in kbps, or -1. */
static int64_t kbps(struct km_str v)
{
	static const struct {
		const char *suffix;
		int64_t mul;
	} units[] = {{"Gbps", 1000000}, {"Mbps", 1000}, {"kbps", 1}};
	for (size_t i = 0; i < 3; i++) {
		if (!km_str_has_suffix(v, units[i].suffix))
			continue;
		int64_t n = 0;
		size_t len = v.len - strlen(units[i].suffix);
		if (!len)
			return -1;
		for (size_t k = 0; k < len; k++) {
			if (v.ptr[k] < '0' || v.ptr[k] > '9' || n > INT64_MAX / 10 / units[i].mul)
				return -1;
			n = n * 10 + (v.ptr[k] - '0');
		}
		return n * units[i].mul;
	}
	return -1;
}

/* The HTTPFault of one entry of a conf's `http` list. */
static struct km_json *fault(struct km_arena *a, const struct km_json *f)
{
	struct km_json *out =
		km_json_fmt(a, "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault\"}");
	const struct km_json *delay = km_json_get(f, "delay");
	struct km_json *d = delay ? cp_policy_duration(a, km_json_get(delay, "value")) : NULL;
	if (d) {
		struct km_json *o = km_json_fmt(a, "{\"fixedDelay\":%T}", d);
		struct km_json *p = cp_policy_percentage(a, km_json_get(delay, "percentage"));
		if (p)
			km_json_set(a, o, "percentage", p);
		km_json_set(a, out, "delay", o);
	}
	const struct km_json *abort = km_json_get(f, "abort");
	if (abort) {
		struct km_json *o =
			km_json_fmt(a, "{\"httpStatus\":%D}", km_json_i64_sat(km_json_get(abort, "httpStatus")));
		struct km_json *p = cp_policy_percentage(a, km_json_get(abort, "percentage"));
		if (p)
			km_json_set(a, o, "percentage", p);
		km_json_set(a, out, "abort", o);
	}
	const struct km_json *bw = km_json_get(f, "responseBandwidth");
	int64_t limit = bw ? kbps(km_json_get_string(bw, "limit")) : -1;
	if (limit >= 0) {
		/* uint64 in protobuf JSON: a string */
		struct km_json *o = km_json_fmt(a, "{\"fixedLimit\":{\"limitKbps\":%s}}",
						km_arena_printf(a, "%lld", (long long)limit));
		struct km_json *p = cp_policy_percentage(a, km_json_get(bw, "percentage"));
		if (p)
			km_json_set(a, o, "percentage", p);
		km_json_set(a, out, "responseRateLimit", o);
	}
	return out;
}

/* The HTTP filters of rule <r> (kri: its policy's). */
static void rule_filters(struct km_arena *a, const struct cp_policy_rule *r, struct km_json *out)
{
	const struct km_json *http = km_json_get(r->conf, "http");
	if (!http || http->kind != KM_JSON_ARRAY)
		return;
	struct km_json *pred = r->match ? cp_policy_match_predicate(a, r->match) : NULL;
	const char *name = r->origin.policy && r->origin.policy->kri ? r->origin.policy->kri : "envoy.filters.http.fault";
	for (size_t i = 0; i < http->len; i++) {
		struct km_json *f = fault(a, http->items[i]);
		if (!pred) { /* every client: the fault filter itself */
			km_json_array_push(a, out, km_json_fmt(a, "{\"name\":%s,\"typedConfig\":%T}", name, f));
			continue;
		}
		km_json_array_push(
		    a, out,
		    km_json_fmt(a,
				"{\"name\":%s,\"typedConfig\":{\"@type\":"
				"\"type.googleapis.com/envoy.extensions.common.matching.v3.ExtensionWithMatcher\","
				"\"extensionConfig\":{\"name\":\"envoy.filters.http.fault\",\"typedConfig\":%T},"
				"\"xdsMatcher\":{\"matcherList\":{\"matchers\":[{\"predicate\":{\"notMatcher\":%J},"
				"\"onMatch\":{\"action\":{\"name\":\"skip\",\"typedConfig\":{\"@type\":"
				"\"type.googleapis.com/envoy.extensions.filters.common.matcher.action.v3.SkipFilter\"}}}}]}}}}",
				name, f, pred));
	}
}

void cp_policy_meshfaultinjection_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		struct km_json *l = in->inbound && in->nrules ? km_json_get(listeners, in->resource) : NULL;
		if (!l || !cp_xds_is_http(km_json_get_string(in->inbound, "protocol")))
			continue;
		struct km_json *filters = km_json_array(a);
		for (size_t r = 0; r < in->nrules; r++)
			rule_filters(a, &in->rules[r], filters);
		struct km_json *chains = km_json_get(l, "filterChains");
		for (size_t k = 0; chains && chains->kind == KM_JSON_ARRAY && k < chains->len; k++) {
			struct km_json *hcm = cp_policy_chain_hcm(chains->items[k]);
			for (size_t f = 0; hcm && f < filters->len; f++)
				cp_policy_insert_http_filter(a, hcm, km_json_clone(a, filters->items[f]), false);
		}
	}
}
