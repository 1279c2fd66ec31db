/* SPDX-License-Identifier: Apache-2.0 */
/* MeshTrafficPermission: an RBAC filter with the matcher API on every
 * inbound filter chain protected by the mesh's TLS (proxies without a
 * workload identity are left alone). Deny matches of every rule come
 * first, then allow and allowWithShadowDeny; what matches nothing is denied
 * by the action "default". allowWithShadowDeny also goes into a shadow
 * matcher as deny, so Envoy counts what would have been refused. HTTP
 * chains get envoy.filters.http.rbac first in the HCM; TCP chains get
 * envoy.filters.network.rbac first in the chain. */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

#define RBAC_ACTION "type.googleapis.com/envoy.config.rbac.v3.Action"

static struct km_json *action(struct km_arena *a, const char *name, bool deny)
{
	struct km_json *act = km_json_fmt(a, "{\"@type\":\"" RBAC_ACTION "\",\"name\":%s}", name);
	if (deny)
		km_json_set(a, act, "action", km_json_cstring(a, "DENY"));
	return km_json_fmt(a, "{\"action\":{\"name\":\"envoy.filters.rbac.action\",\"typedConfig\":%J}}", act);
}

/* One field matcher for a list of matches (ORed), or NULL when none has a
 * predicate. */
static struct km_json *field_matcher(struct km_arena *a, const struct km_json *list, const char *name,
				     bool deny)
{
	struct km_json *preds = km_json_array(a);
	for (size_t i = 0; list && list->kind == KM_JSON_ARRAY && i < list->len; i++) {
		struct km_json *p = cp_policy_match_predicate(a, list->items[i]);
		if (p)
			km_json_array_push(a, preds, p);
	}
	if (!preds->len)
		return NULL;
	return km_json_fmt(a, "{\"predicate\":%J,\"onMatch\":%J}", cp_policy_predicates(a, preds, "orMatcher"),
			   action(a, name, deny));
}

static struct km_json *concat(struct km_arena *a, const struct km_json *x, const struct km_json *y)
{
	struct km_json *out = km_json_array(a);
	for (int k = 0; k < 2; k++) {
		const struct km_json *l = k ? y : x;
		for (size_t i = 0; l && l->kind == KM_JSON_ARRAY && i < l->len; i++)
			km_json_array_push(a, out, l->items[i]);
	}
	return out;
}

static struct km_json *finish(struct km_arena *a, struct km_json *matchers)
{
	struct km_json *m = km_json_object(a);
	if (matchers->len)
		km_json_set(a, m, "matcherList", km_json_fmt(a, "{\"matchers\":%J}", matchers));
	km_json_set(a, m, "onNoMatch", action(a, "default", true));
	return m;
}

/* The matcher and (when some rule has allowWithShadowDeny) shadow matcher. */
static void build_matchers(struct km_arena *a, const struct cp_policy_inbound *in,
			   struct km_json **matcher, struct km_json **shadow)
{
	struct km_json *list = km_json_array(a), *slist = km_json_array(a);
	bool any_shadow = false;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < in->nrules; i++) {
			const struct cp_policy_rule *r = &in->rules[i];
			const char *name = r->origin.policy ? r->origin.policy->kri : "";
			struct km_json *fm;
			if (pass == 0)
				fm = field_matcher(a, km_json_get(r->conf, "deny"), name, true);
			else
				fm = field_matcher(a,
						   concat(a, km_json_get(r->conf, "allow"),
							  km_json_get(r->conf, "allowWithShadowDeny")),
						   name, false);
			if (fm)
				km_json_array_push(a, list, fm);
			if (pass == 1) {
				const struct km_json *sd = km_json_get(r->conf, "allowWithShadowDeny");
				if (sd && sd->kind == KM_JSON_ARRAY) {
					any_shadow = true;
					fm = field_matcher(a, sd, name, true);
					if (fm)
						km_json_array_push(a, slist, fm);
				}
			}
		}
	*matcher = finish(a, list);
	*shadow = any_shadow && slist->len ? finish(a, slist) : NULL;
}

static bool has_sni(const struct cp_policy_inbound *in)
{
	static const char *const keys[] = {"deny", "allow", "allowWithShadowDeny"};
	for (size_t i = 0; i < in->nrules; i++)
		for (size_t k = 0; k < 3; k++) {
			const struct km_json *l = km_json_get(in->rules[i].conf, keys[k]);
			for (size_t j = 0; l && l->kind == KM_JSON_ARRAY && j < l->len; j++)
				if (km_json_get(l->items[j], "sni"))
					return true;
		}
	return false;
}

static void prepend(struct km_arena *a, struct km_json *arr, struct km_json *v)
{
	km_json_array_push(a, arr, v);
	memmove(arr->items + 1, arr->items, (arr->len - 1) * sizeof(*arr->items));
	arr->items[0] = v;
}

static void drop_filter(struct km_json *filters, const char *name)
{
	for (size_t i = 0; i < filters->len; i++)
		if (km_str_eqc(km_json_get_string(filters->items[i], "name"), name)) {
			memmove(filters->items + i, filters->items + i + 1,
				(filters->len - i - 1) * sizeof(*filters->items));
			filters->len--;
			return;
		}
}

static void configure_chain(struct km_arena *a, struct km_json *chain, const char *stat_name,
			    struct km_json *matcher, struct km_json *shadow)
{
	struct km_json *filters = km_json_get(chain, "filters");
	if (!filters || filters->kind != KM_JSON_ARRAY)
		return;
	drop_filter(filters, "envoy.filters.network.rbac");
	for (size_t i = 0; i < filters->len; i++) {
		if (!km_str_eqc(km_json_get_string(filters->items[i], "name"),
				"envoy.filters.network.http_connection_manager"))
			continue;
		struct km_json *hcm = km_json_get(filters->items[i], "typedConfig");
		struct km_json *hf = hcm ? km_json_get(hcm, "httpFilters") : NULL;
		if (!hf || hf->kind != KM_JSON_ARRAY)
			return;
		drop_filter(hf, "envoy.filters.http.rbac");
		struct km_json *tc = km_json_fmt(
		    a, "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC\","
		       "\"matcher\":%J}",
		    matcher);
		if (shadow)
			km_json_set(a, tc, "shadowMatcher", shadow);
		prepend(a, hf, km_json_fmt(a, "{\"name\":\"envoy.filters.http.rbac\",\"typedConfig\":%J}", tc));
		return;
	}
	/* "inbound:x" + "." so the stats read <listener>.rbac.allowed */
	struct km_json *tc = km_json_fmt(
	    a, "{\"@type\":\"type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC\","
	       "\"statPrefix\":%s,\"matcher\":%J}",
	    km_arena_printf(a, "%s.", stat_name), matcher);
	if (shadow)
		km_json_set(a, tc, "shadowMatcher", shadow);
	prepend(a, filters, km_json_fmt(a, "{\"name\":\"envoy.filters.network.rbac\",\"typedConfig\":%J}", tc));
}

void cp_policy_meshtrafficpermission_apply(struct cp_policy_apply_ctx *c,
					   const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	for (size_t i = 0; listeners && i < listeners->len; i++) {
		struct km_json *l = listeners->members[i].val;
		/* the proxy's inbounds, not the admin listener (its TLS chain
		 * admits the control plane by its own client certificate) */
		if (!km_str_eqc(km_json_get_string(l, "trafficDirection"), "INBOUND") ||
		    !km_str_has_prefix(listeners->members[i].key, "self_inbound_"))
			continue;
		const char *name = km_arena_strndup(a, listeners->members[i].key.ptr, listeners->members[i].key.len);
		/* the inbound's rules; an inbound no policy selects still gets
		 * an RBAC filter, which denies everything */
		const struct cp_policy_inbound *in = NULL;
		for (size_t k = 0; k < mp->ninbounds; k++)
			if (mp->inbounds[k].resource && strcmp(mp->inbounds[k].resource, name) == 0)
				in = &mp->inbounds[k];
		struct cp_policy_inbound none = {0};
		if (!in)
			in = &none;
		struct km_json *matcher = NULL, *shadow = NULL;
		struct km_json *chains = km_json_get(l, "filterChains");
		for (size_t k = 0; chains && chains->kind == KM_JSON_ARRAY && k < chains->len; k++) {
			struct km_json *ch = chains->items[k];
			if (!km_str_eqc(km_json_get_string(km_json_get(ch, "transportSocket"), "name"),
					"envoy.transport_sockets.tls"))
				continue;
			if (!matcher)
				build_matchers(a, in, &matcher, &shadow);
			configure_chain(a, ch, name, matcher, shadow);
		}
		if (matcher && has_sni(in))
			cp_policy_ensure_tls_inspector(a, l);
	}
}
