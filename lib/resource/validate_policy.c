/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of the inbound-centric targetRef policies: MeshTrafficPermission
 * and MeshTimeout (to[] and rules[] forms). Paths start at "spec" as upstream. */
#include <string.h>

#include "resource/validate_util.h"

static const char *const kinds_mesh_dp[] = {"Mesh", "Dataplane", NULL};

static void top_target_ref(struct km_arena *a, struct km_violations *out,
			   const struct km_json *spec)
{
	struct km_json *ref = km_v_get(spec, "targetRef");
	if (!ref)
		return;
	struct km_target_ref_opts o = {kinds_mesh_dp, km_v_affects_inbounds(spec)};
	km_validate_target_ref(a, out, "spec.targetRef", ref, &o);
}

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

/* ---- MeshTrafficPermission ------------------------------------------------ */

void km_validate_meshtrafficpermission(struct km_arena *a, const struct km_resource_doc *doc,
				       struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	top_target_ref(a, out, spec);
	struct km_json *rules = arr(spec, "rules");
	if (!rules || rules->len == 0)
		km_violations_add(out, "spec", "policy must define rules");
	static const char *const fields[] = {"allow", "allowWithShadowDeny", "deny"};
	for (size_t i = 0; rules && i < rules->len; i++) {
		struct km_json *def = km_v_get(rules->items[i], "default");
		const char *p = km_v_path(a, "spec.rules[%zu]", i);
		if (!km_v_len(def, "deny") && !km_v_len(def, "allow") &&
		    !km_v_len(def, "allowWithShadowDeny"))
			km_violations_add(
				out, p,
				"at least one of 'allow', 'allowWithShadowDeny', 'deny' has to be defined");
		for (size_t f = 0; f < 3; f++) {
			struct km_json *ms = arr(def, fields[f]);
			for (size_t j = 0; ms && j < ms->len; j++)
				km_validate_match(a, out,
						  km_v_path(a, "%s.%s[%zu]", p, fields[f], j),
						  ms->items[j]);
		}
	}
}

/* ---- MeshTimeout ------------------------------------------------------------ */

static void dur_not_negative(struct km_arena *a, struct km_violations *out, const char *base,
			     const struct km_json *obj, const char *key)
{
	int64_t ns;
	if (km_v_dur(obj, key, &ns) > 0 && ns < 0)
		km_violations_add(out, km_v_path(a, "%s.%s", base, key),
				  "must not be negative when defined");
}

static void dur_positive(struct km_arena *a, struct km_violations *out, const char *base,
			 const struct km_json *obj, const char *key)
{
	int64_t ns;
	if (km_v_dur(obj, key, &ns) > 0 && ns <= 0)
		km_violations_add(out, km_v_path(a, "%s.%s", base, key),
				  "must be greater than zero when defined");
}

static void must_be_nil(struct km_arena *a, struct km_violations *out, const char *base,
			const struct km_json *obj, const char *key, const char *msg)
{
	if (km_v_get(obj, key))
		km_violations_add(out, km_v_path(a, "%s.%s", base, key), "%s", msg);
}

static void timeout_default(struct km_arena *a, struct km_violations *out, const char *p,
			    const struct km_json *conf, struct km_str top_kind)
{
	struct km_json *http = km_v_get(conf, "http");
	if (!km_v_get(conf, "connectionTimeout") && !km_v_get(conf, "idleTimeout") && !http) {
		km_violations_add(out, p, "at least one timeout should be configured");
		return;
	}
	const char *hp = km_v_path(a, "%s.http", p);
	if (km_str_eqc(top_kind, "MeshHTTPRoute")) {
		const char *msg =
			"can't be specified when top-level TargetRef is referencing MeshHTTPRoute";
		must_be_nil(a, out, p, conf, "connectionTimeout", msg);
		must_be_nil(a, out, p, conf, "idleTimeout", msg);
		must_be_nil(a, out, hp, http, "maxStreamDuration", msg);
		must_be_nil(a, out, hp, http, "maxConnectionDuration", msg);
	}
	dur_positive(a, out, p, conf, "connectionTimeout");
	dur_not_negative(a, out, p, conf, "idleTimeout");
	if (!http)
		return;
	if (!km_v_get(http, "requestTimeout") && !km_v_get(http, "streamIdleTimeout") &&
	    !km_v_get(http, "maxStreamDuration") && !km_v_get(http, "maxConnectionDuration"))
		km_violations_add(out, hp,
				  "at least one timeout in this section should be configured");
	static const char *const hk[] = {"requestTimeout", "streamIdleTimeout", "maxStreamDuration",
					 "maxConnectionDuration", "requestHeadersTimeout"};
	for (size_t i = 0; i < sizeof(hk) / sizeof(hk[0]); i++)
		dur_not_negative(a, out, hp, http, hk[i]);
}

void km_validate_meshtimeout(struct km_arena *a, const struct km_resource_doc *doc,
			     struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	top_target_ref(a, out, spec);
	struct km_json *to = arr(spec, "to"), *rules = arr(spec, "rules");
	size_t nto = to ? to->len : 0, nrules = rules ? rules->len : 0;
	if (nrules && nto)
		km_violations_add(out, "spec", "fields 'to' must be empty when 'rules' is defined");
	if (!nrules && !nto)
		km_violations_add(out, "spec", "at least one of 'to' or 'rules' has to be defined");
	struct km_str top_kind = km_v_str(km_v_get(spec, "targetRef"), "kind");
	if (!top_kind.len)
		top_kind = KM_STR("Mesh");
	static const char *const to_kinds_route[] = {"Mesh", "MeshExternalService", NULL};
	static const char *const to_kinds[] = {
		"Mesh",          "MeshService", "MeshExternalService", "MeshMultiZoneService",
		"MeshHTTPRoute", NULL};
	for (size_t i = 0; i < nto; i++) {
		const char *p = km_v_path(a, "spec.to[%zu]", i);
		struct km_target_ref_opts o = {
			km_str_eqc(top_kind, "MeshHTTPRoute") ? to_kinds_route : to_kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "%s.targetRef", p),
				       km_v_get(to->items[i], "targetRef"), &o);
		timeout_default(a, out, km_v_path(a, "%s.default", p),
				km_v_get(to->items[i], "default"), top_kind);
	}
	for (size_t i = 0; i < nrules; i++) {
		const struct km_json *rule = rules->items[i];
		const char *p = km_v_path(a, "spec.rules[%zu]", i);
		const char *dp = km_v_path(a, "%s.default", p);
		struct km_json *conf = km_v_get(rule, "default");
		struct km_json *ms = arr(rule, "matches");
		bool has_spiffe = false;
		for (size_t j = 0; ms && j < ms->len; j++) {
			const struct km_json *m = ms->items[j];
			const char *mp = km_v_path(a, "%s.matches[%zu]", p, j);
			km_validate_match(a, out, mp, m);
			struct km_json *sid = km_v_get(m, "spiffeID");
			if (!sid && !km_v_get(m, "sni")) {
				km_violations_add(
					out, mp,
					"must specify at least one of 'spiffeID' or 'sni'");
				continue;
			}
			if (sid) {
				has_spiffe = true;
				struct km_str t = km_v_str(sid, "type");
				const char *tp = km_v_path(a, "%s.spiffeID.type", mp);
				if (!t.len)
					km_violations_add(out, tp, "must be set");
				else if (!km_str_eqc(t, "Exact") && !km_str_eqc(t, "Prefix"))
					km_violations_add(
						out, tp,
						"unrecognized type \"%.*s\", supported values are: Exact, Prefix",
						KM_STR_FMT(t));
			}
		}
		if (has_spiffe) {
			const char *msg =
				"can't be specified when matches contain spiffeID because this "
				"field cannot be conditioned on source identity";
			must_be_nil(a, out, dp, conf, "connectionTimeout", msg);
			must_be_nil(a, out, dp, conf, "idleTimeout", msg);
			struct km_json *http = km_v_get(conf, "http");
			const char *hp = km_v_path(a, "%s.http", dp);
			must_be_nil(a, out, hp, http, "requestHeadersTimeout", msg);
			must_be_nil(a, out, hp, http, "maxStreamDuration", msg);
			must_be_nil(a, out, hp, http, "maxConnectionDuration", msg);
		}
		timeout_default(a, out, dp, conf, top_kind);
	}
}
