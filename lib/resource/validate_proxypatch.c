/* SPDX-License-Identifier: Apache-2.0 */
/* Validator of MeshProxyPatch: one modification per appendModifications entry,
 * the operations each kind allows, match rules, RFC 6902 JSON patch blocks and
 * native Envoy values. A value is checked to be a YAML/JSON object (upstream
 * also decodes it into the Envoy proto; see VALIDATION.md). All allocations
 * go to the caller's arena. */
#include <string.h>

#include "codec/yaml.h"
#include "resource/validate_util.h"

static const char *const patch_ops[] = {"add", "remove", "replace", "move", "copy", NULL};
static const char *const from_ops[] = {"move", "copy", NULL};
static const char *const value_ops[] = {"add", "replace", NULL};

/* `"<a>" <msg> when "op" is one of ["x", "y"]` (upstream MakeOneOfErr with a second field) */
static void one_of_err(struct km_violations *out, const char *path, const char *field,
		       const char *msg, const char *const *ops)
{
	km_violations_add(out, path, "\"%s\" %s when \"op\" is one of [\"%s\", \"%s\"]", field, msg,
			  ops[0], ops[1]);
}

void km_v_json_patch_block(struct km_arena *a, struct km_violations *out, const char *p,
			   const struct km_json *patches)
{
	size_t n = patches && patches->kind == KM_JSON_ARRAY ? patches->len : 0;
	if (n == 0)
		km_violations_add(out, p, "must not be empty");
	for (size_t i = 0; i < n; i++) {
		const struct km_json *blk = patches->items[i];
		const char *bp = km_v_path(a, "%s[%zu]", p, i);
		struct km_str op = km_v_str(blk, "op");
		if (!km_v_in(op, patch_ops))
			km_v_must_be_one_of(out, km_v_path(a, "%s.op", bp), "op", patch_ops);
		bool has_from = km_v_get(blk, "from") != NULL;
		const char *fp = km_v_path(a, "%s.from", bp);
		if (km_v_in(op, from_ops)) {
			if (!has_from)
				one_of_err(out, fp, "from", "must not be empty", from_ops);
		} else if (has_from) {
			one_of_err(out, fp, "from", "is allowed only", from_ops);
		}
		/* json.RawMessage: a present null is still a value */
		bool has_value = blk && blk->kind == KM_JSON_OBJECT && km_json_get(blk, "value");
		const char *vp = km_v_path(a, "%s.value", bp);
		if (km_v_in(op, value_ops)) {
			if (!has_value)
				one_of_err(out, vp, "value", "must not be empty", value_ops);
		} else if (has_value) {
			one_of_err(out, vp, "value", "is allowed only", value_ops);
		}
		struct km_json *path = km_v_get(blk, "path");
		const char *pp = km_v_path(a, "%s.path", bp);
		if (!path)
			km_violations_add(out, pp, "must be defined");
		else if (km_str_eqc(op, "remove") && path->kind == KM_JSON_STRING &&
			 (path->s.len == 0 || km_str_eqc(path->s, "/")))
			km_violations_add(out, pp, "root path cannot be removed");
	}
}

/* NULL when <text> is acceptable as a native Envoy resource, else the decoder's
 * message. Upstream converts YAML to JSON (keeping the raw text when that
 * fails) and decodes it with jsonpb into the resource message. */
static const char *envoy_value_error(struct km_arena *a, struct km_str text)
{
	struct km_buf err = KM_BUF_INIT;
	struct km_json **docs = NULL;
	size_t n = 0;
	const struct km_json *v = NULL;
	const char *msg = NULL;
	if (km_yaml_parse(a, text.ptr, text.len, &docs, &n, &err) == 0) {
		v = n ? docs[0] : NULL;
	} else {
		struct km_json *j = NULL;
		km_buf_reset(&err);
		if (km_json_parse(a, text.ptr, text.len, &j, &err) == 0) {
			v = j;
		} else {
			/* jsonpb reads through json.Decoder: a cut document is io.ErrUnexpectedEOF
			 */
			const char *e = km_buf_cstr(&err);
			msg = strstr(e, "unexpected end of JSON input") ? "unexpected EOF" :
									  km_arena_strdup(a, e);
		}
	}
	km_buf_fini(&err);
	if (msg || !v || v->kind == KM_JSON_NULL || v->kind == KM_JSON_OBJECT)
		return msg;
	static const char *const kind_names[] = {
		[KM_JSON_BOOL] = "bool",
		[KM_JSON_NUMBER] = "number",
		[KM_JSON_STRING] = "string",
		[KM_JSON_ARRAY] = "array",
	};
	return km_arena_printf(a,
			       "json: cannot unmarshal %s into Go value of type "
			       "map[string]json.RawMessage",
			       kind_names[v->kind]);
}

static void resource_value(struct km_arena *a, struct km_violations *out, const char *p,
			   const struct km_json *mod)
{
	struct km_json *v = km_v_get(mod, "value");
	const char *vp = km_v_path(a, "%s.value", p);
	if (!v) {
		km_violations_add(out, vp, "must be defined");
		return;
	}
	const char *e = v->kind == KM_JSON_STRING ? envoy_value_error(a, v->s) : NULL;
	if (e)
		km_violations_add(out, vp, "native Envoy resource is not valid: %s", e);
}

static void patch(struct km_arena *a, struct km_violations *out, const char *p, const char *kind,
		  const struct km_json *mod)
{
	struct km_json *v = km_v_get(mod, "value");
	size_t npatches = km_v_len(mod, "jsonPatches");
	if (v) {
		const char *e = v->kind == KM_JSON_STRING ? envoy_value_error(a, v->s) : NULL;
		if (npatches)
			km_violations_add(out, p,
					  "%s must have only one type defined: value, jsonPatches",
					  kind);
		else if (e)
			km_violations_add(out, km_v_path(a, "%s.value", p),
					  "native Envoy resource is not valid: %s", e);
	} else if (npatches) {
		km_v_json_patch_block(a, out, km_v_path(a, "%s.jsonPatches", p),
				      km_v_get(mod, "jsonPatches"));
	} else {
		km_violations_add(out, p, "%s must have exactly one defined: value, jsonPatches",
				  kind);
	}
}

static void invalid_operation(struct km_violations *out, const char *p, bool filter)
{
	km_violations_add(out, p, "invalid operation. Available operations: %s",
			  filter ? "\"AddFirst\", \"AddLast\", \"AddBefore\", \"AddAfter\", "
				   "\"Patch\", \"Remove\"" :
				   "\"Add\", \"Patch\", \"Remove\"");
}

/* cluster, listener and virtualHost: Add, Patch, Remove */
static void resource_mod(struct km_arena *a, struct km_violations *out, const char *base,
			 const char *kind, const struct km_json *mod)
{
	const char *p = km_v_path(a, "%s.%s", base, kind);
	struct km_str op = km_v_str(mod, "operation");
	struct km_json *match = km_v_get(mod, "match");
	if (km_str_eqc(op, "Add")) {
		if (strcmp(kind, "virtualHost") == 0) {
			if (km_v_get(match, "name"))
				km_violations_add(out, km_v_path(a, "%s.match.name", p),
						  "must not be defined");
		} else if (match) {
			km_violations_add(out, km_v_path(a, "%s.match", p), "must not be defined");
		}
		resource_value(a, out, p, mod);
	} else if (km_str_eqc(op, "Patch")) {
		patch(a, out, p, kind, mod);
	} else if (km_str_eqc(op, "Remove")) {
		if (km_v_get(mod, "value"))
			km_violations_add(out, km_v_path(a, "%s.value", p), "must not be defined");
	} else {
		invalid_operation(out, km_v_path(a, "%s.operation", p), false);
	}
}

/* networkFilter and httpFilter: AddFirst/AddLast/AddBefore/AddAfter, Patch, Remove */
static void filter_mod(struct km_arena *a, struct km_violations *out, const char *base,
		       const char *kind, const struct km_json *mod)
{
	const char *p = km_v_path(a, "%s.%s", base, kind);
	const char *np = km_v_path(a, "%s.match.name", p);
	struct km_str op = km_v_str(mod, "operation");
	bool has_name = km_v_get(km_v_get(mod, "match"), "name") != NULL;
	if (km_str_eqc(op, "AddFirst") || km_str_eqc(op, "AddLast")) {
		resource_value(a, out, p, mod);
	} else if (km_str_eqc(op, "AddBefore") || km_str_eqc(op, "AddAfter")) {
		if (!has_name)
			km_violations_add(
				out, np,
				"must be defined. You need to pick a filter %s which this "
				"one will be added",
				km_str_eqc(op, "AddBefore") ? "before" : "after");
		resource_value(a, out, p, mod);
	} else if (km_str_eqc(op, "Patch")) {
		if (!has_name)
			km_violations_add(out, np, "must be defined");
		patch(a, out, p, kind, mod);
	} else if (km_str_eqc(op, "Remove")) {
		if (km_v_get(mod, "value"))
			km_violations_add(out, km_v_path(a, "%s.value", p), "must not be defined");
	} else {
		invalid_operation(out, km_v_path(a, "%s.operation", p), true);
	}
}

void km_validate_meshproxypatch(struct km_arena *a, const struct km_resource_doc *doc,
				struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	static const char *const top_kinds[] = {"Mesh", "Dataplane", NULL};
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {top_kinds, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *mods = km_v_get(km_v_get(spec, "default"), "appendModifications");
	size_t n = mods && mods->kind == KM_JSON_ARRAY ? mods->len : 0;
	if (n == 0)
		km_violations_add(out, "spec.default.appendModifications", "must not be empty");
	static const char *const kinds[] = {"cluster", "listener", "virtualHost", "networkFilter",
					    "httpFilter"};
	for (size_t i = 0; i < n; i++) {
		const struct km_json *m = mods->items[i];
		const char *p = km_v_path(a, "spec.default.appendModifications[%zu]", i);
		int count = 0;
		const char *kind = NULL;
		for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
			if (km_v_get(m, kinds[k]) && count++ == 0)
				kind = kinds[k];
		if (count != 1) {
			km_violations_add(out, p,
					  "exactly one modification can be defined at a time. "
					  "Currently, %d modifications are defined",
					  count);
			continue;
		}
		const struct km_json *mod = km_v_get(m, kind);
		if (strcmp(kind, "networkFilter") == 0 || strcmp(kind, "httpFilter") == 0)
			filter_mod(a, out, p, kind, mod);
		else
			resource_mod(a, out, p, kind, mod);
	}
}
