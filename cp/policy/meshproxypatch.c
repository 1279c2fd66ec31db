/* SPDX-License-Identifier: Apache-2.0 */
/* MeshProxyPatch: the proxy-wide appendModifications, in order, over the
 * generated resources: clusters and listeners (Add, Remove, Patch),
 * network and HTTP filters of the matching listeners' chains (AddFirst,
 * AddLast, AddBefore, AddAfter, Remove, Patch) and virtual hosts of their
 * route configurations (Add, Remove, Patch). A value is the Envoy message
 * as YAML, read through its schema (so it is canonical protobuf JSON like
 * the generated trees); a Patch merges it as protobuf merges messages
 * (fields replaced, repeated fields appended, messages merged, an Any of
 * another type replaced) or applies its jsonPatches (RFC 6902) to the
 * resource (a filter's typed config). A value or patch that does not apply,
 * or whose result is no valid message, leaves the resources as they were.
 * Origins are the resource's kind of name: inbound (self_inbound_*),
 * outbound (kri_*), admin (system_envoy_admin, system_probe_readiness). */
#include <stdlib.h>
#include <string.h>

#include "codec/jsonf.h"
#include "codec/yaml.h"
#include "cp/policy/policy.h"
#include "pb/json.h"
#include "pb/registry.h"

#define HCM "envoy.filters.network.http_connection_manager"

static size_t len_of(const struct km_json *v)
{
	return v && v->kind == KM_JSON_ARRAY ? v->len : 0;
}

/* <yaml> as canonical JSON of message <type>, or NULL. */
static struct km_json *read_value(struct km_arena *a, const struct km_json *mod, const char *type)
{
	struct km_str text = km_json_get_string(mod, "value");
	struct km_json **docs;
	size_t n;
	const ProtobufCMessageDescriptor *d = km_pb_find(km_str_c(type));
	ProtobufCMessage *msg;
	if (!text.len || !d || km_yaml_parse(a, text.ptr, text.len, &docs, &n, NULL) || n != 1 ||
	    km_pb_from_json(a, d, docs[0], &msg, NULL))
		return NULL;
	return km_pb_to_json(a, msg);
}

/* Merges <src> into <dst> (objects) as protobuf merges messages. */
static void merge(struct km_arena *a, struct km_json *dst, const struct km_json *src)
{
	for (size_t i = 0; i < src->len; i++) {
		struct km_str key = src->members[i].key;
		const struct km_json *sv = src->members[i].val;
		struct km_json *dv = km_json_get_str(dst, key);
		bool same_any = dv && dv->kind == KM_JSON_OBJECT && sv->kind == KM_JSON_OBJECT &&
				km_str_eq(km_json_get_string(dv, "@type"), km_json_get_string(sv, "@type"));
		if (dv && dv->kind == KM_JSON_OBJECT && sv->kind == KM_JSON_OBJECT && same_any) {
			merge(a, dv, sv);
		} else if (dv && dv->kind == KM_JSON_ARRAY && sv->kind == KM_JSON_ARRAY) {
			for (size_t k = 0; k < sv->len; k++)
				km_json_array_push(a, dv, km_json_clone(a, sv->items[k]));
		} else {
			km_json_set_str(a, dst, key, km_json_clone(a, sv));
		}
	}
}

/* ---- RFC 6902 ---- */

/* The parent of JSON pointer <path> in <doc> and its last token; false when
 * it does not lead anywhere. */
static bool resolve(struct km_arena *a, struct km_json *doc, struct km_str path, struct km_json **parent,
		    struct km_str *last)
{
	if (!path.len || path.ptr[0] != '/')
		return false;
	struct km_json *cur = doc;
	size_t i = 1;
	for (;;) {
		const char *slash = memchr(path.ptr + i, '/', path.len - i);
		size_t end = slash ? (size_t)(slash - path.ptr) : path.len;
		/* unescape ~1 and ~0 */
		char *tok = km_arena_alloc(a, end - i + 1);
		size_t t = 0;
		for (size_t k = i; k < end; k++) {
			if (path.ptr[k] == '~' && k + 1 < end && (path.ptr[k + 1] == '0' || path.ptr[k + 1] == '1'))
				tok[t++] = path.ptr[++k] == '0' ? '~' : '/';
			else
				tok[t++] = path.ptr[k];
		}
		tok[t] = 0;
		struct km_str ts = {tok, t};
		if (!slash) {
			*parent = cur;
			*last = ts;
			return cur && (cur->kind == KM_JSON_OBJECT || cur->kind == KM_JSON_ARRAY);
		}
		if (!cur)
			return false;
		if (cur->kind == KM_JSON_OBJECT) {
			cur = km_json_get_str(cur, ts);
		} else if (cur->kind == KM_JSON_ARRAY) {
			char *e;
			long idx = strtol(tok, &e, 10);
			cur = *e || idx < 0 || (size_t)idx >= cur->len ? NULL : cur->items[idx];
		} else {
			return false;
		}
		i = end + 1;
	}
}

static bool index_of(const struct km_json *arr, struct km_str tok, bool append, size_t *out)
{
	if (append && tok.len == 1 && tok.ptr[0] == '-') {
		*out = arr->len;
		return true;
	}
	char buf[24];
	if (!tok.len || tok.len >= sizeof(buf))
		return false;
	memcpy(buf, tok.ptr, tok.len);
	buf[tok.len] = 0;
	char *e;
	long idx = strtol(buf, &e, 10);
	if (*e || idx < 0 || (size_t)idx > arr->len - (append ? 0 : 1) || (!append && !arr->len))
		return false;
	*out = (size_t)idx;
	return true;
}

static struct km_json *get_at(struct km_arena *a, struct km_json *doc, struct km_str path)
{
	struct km_json *parent;
	struct km_str last;
	if (!resolve(a, doc, path, &parent, &last))
		return NULL;
	if (parent->kind == KM_JSON_OBJECT)
		return km_json_get_str(parent, last);
	size_t idx;
	return index_of(parent, last, false, &idx) ? parent->items[idx] : NULL;
}

static bool remove_at(struct km_arena *a, struct km_json *doc, struct km_str path)
{
	struct km_json *parent;
	struct km_str last;
	if (!resolve(a, doc, path, &parent, &last))
		return false;
	if (parent->kind == KM_JSON_OBJECT)
		return km_json_del(parent, km_arena_strndup(a, last.ptr, last.len));
	size_t idx;
	if (!index_of(parent, last, false, &idx))
		return false;
	memmove(parent->items + idx, parent->items + idx + 1, (parent->len - idx - 1) * sizeof(*parent->items));
	parent->len--;
	return true;
}

static bool add_at(struct km_arena *a, struct km_json *doc, struct km_str path, struct km_json *v, bool replace)
{
	struct km_json *parent;
	struct km_str last;
	if (!resolve(a, doc, path, &parent, &last))
		return false;
	if (parent->kind == KM_JSON_OBJECT) {
		if (replace && !km_json_get_str(parent, last))
			return false;
		km_json_set_str(a, parent, last, v);
		return true;
	}
	size_t idx;
	if (!index_of(parent, last, !replace, &idx))
		return false;
	if (replace) {
		parent->items[idx] = v;
		return true;
	}
	km_json_array_push(a, parent, v);
	memmove(parent->items + idx + 1, parent->items + idx, (parent->len - 1 - idx) * sizeof(*parent->items));
	parent->items[idx] = v;
	return true;
}

/* Applies <patches> to a copy of <doc>: the copy, or NULL when one fails. */
static struct km_json *json_patch(struct km_arena *a, const struct km_json *doc, const struct km_json *patches)
{
	struct km_json *d = km_json_clone(a, doc);
	for (size_t i = 0; i < len_of(patches); i++) {
		const struct km_json *p = patches->items[i];
		struct km_str op = km_json_get_string(p, "op"), path = km_json_get_string(p, "path"),
			      from = km_json_get_string(p, "from");
		const struct km_json *value = km_json_get(p, "value");
		bool ok;
		if (km_str_eqc(op, "add"))
			ok = value && add_at(a, d, path, km_json_clone(a, value), false);
		else if (km_str_eqc(op, "replace"))
			ok = value && add_at(a, d, path, km_json_clone(a, value), true);
		else if (km_str_eqc(op, "remove"))
			ok = remove_at(a, d, path);
		else if (km_str_eqc(op, "test"))
			ok = value && km_json_equal(get_at(a, d, path), value);
		else if (km_str_eqc(op, "copy") || km_str_eqc(op, "move")) {
			struct km_json *v = get_at(a, d, from);
			ok = v && (!km_str_eqc(op, "move") || remove_at(a, d, from)) &&
			     add_at(a, d, path, km_json_clone(a, v), false);
		} else
			ok = false;
		if (!ok)
			return NULL;
	}
	return d;
}

/* ---- matching ---- */

static const char *origin_of(struct km_str name)
{
	if (km_str_has_prefix(name, "self_inbound_"))
		return "inbound";
	if (km_str_has_prefix(name, "kri_"))
		return "outbound";
	if (km_str_eqc(name, "system_envoy_admin") || km_str_eqc(name, "system_probe_readiness"))
		return "admin";
	return "";
}

/* A listener's tags (filterMetadata io.kuma.tags) include every one of <tags>. */
static bool tags_match(const struct km_json *listener, const struct km_json *tags)
{
	const struct km_json *have =
		km_json_get(km_json_get(km_json_get(listener, "metadata"), "filterMetadata"), "io.kuma.tags");
	for (size_t i = 0; tags && tags->kind == KM_JSON_OBJECT && i < tags->len; i++) {
		const struct km_json *v = km_json_get_str(have, tags->members[i].key);
		if (!v || v->kind != KM_JSON_STRING || tags->members[i].val->kind != KM_JSON_STRING ||
		    (!km_str_eqc(tags->members[i].val->s, "*") && !km_str_eq(v->s, tags->members[i].val->s)))
			return false;
	}
	return true;
}

/* Resource <name>/<res> against a match (NULL: all); <listener_keys> read
 * listenerName/listenerTags (filter mods) instead of name/tags. */
static bool resource_matches(const struct km_json *match, struct km_str name, const struct km_json *res,
			     bool listener_keys)
{
	if (!match)
		return true;
	struct km_str want = km_json_get_string(match, listener_keys ? "listenerName" : "name");
	if (want.len && !km_str_eq(want, name))
		return false;
	const struct km_json *origin = km_json_get(match, "origin");
	if (origin && origin->kind == KM_JSON_STRING && !km_str_eqc(origin->s, origin_of(name)))
		return false;
	return tags_match(res, km_json_get(match, listener_keys ? "listenerTags" : "tags"));
}

/* ---- modifications ---- */

static void resource_mod(struct km_arena *a, struct km_json *objs, const struct km_json *mod, const char *type)
{
	struct km_str op = km_json_get_string(mod, "operation");
	const struct km_json *match = km_json_get(mod, "match");
	if (km_str_eqc(op, "Add")) {
		struct km_json *v = read_value(a, mod, type);
		struct km_str name = km_json_get_string(v, "name");
		if (v && name.len)
			km_json_set_str(a, objs, name, v);
		return;
	}
	struct km_json *v = km_str_eqc(op, "Patch") ? read_value(a, mod, type) : NULL;
	const struct km_json *patches = km_json_get(mod, "jsonPatches");
	for (size_t i = 0; i < objs->len; i++) {
		struct km_json_member *m = &objs->members[i];
		if (!resource_matches(match, m->key, m->val, false))
			continue;
		if (km_str_eqc(op, "Remove")) {
			km_json_del(objs, km_arena_strndup(a, m->key.ptr, m->key.len));
			i--;
		} else if (km_str_eqc(op, "Patch") && len_of(patches)) {
			struct km_json *p = json_patch(a, m->val, patches);
			if (p)
				m->val = p;
		} else if (km_str_eqc(op, "Patch") && v) {
			merge(a, m->val, v);
		}
	}
}

/* A filter named as <match> says (no name: every one). */
static bool filter_matches(const struct km_json *match, const struct km_json *filter)
{
	struct km_str want = km_json_get_string(match, "name");
	return !want.len || km_str_eq(want, km_json_get_string(filter, "name"));
}

static void insert(struct km_arena *a, struct km_json *arr, size_t at, struct km_json *v)
{
	km_json_array_push(a, arr, v);
	memmove(arr->items + at + 1, arr->items + at, (arr->len - 1 - at) * sizeof(*arr->items));
	arr->items[at] = v;
}

/* A filter list mod (network filters of a chain, HTTP filters of an HCM). */
static void filters_mod(struct km_arena *a, struct km_json *filters, const struct km_json *mod, struct km_json *value)
{
	struct km_str op = km_json_get_string(mod, "operation");
	const struct km_json *match = km_json_get(mod, "match");
	const struct km_json *patches = km_json_get(mod, "jsonPatches");
	if (km_str_eqc(op, "AddFirst") || km_str_eqc(op, "AddLast")) {
		if (value)
			insert(a, filters, km_str_eqc(op, "AddFirst") ? 0 : filters->len, km_json_clone(a, value));
		return;
	}
	for (size_t i = 0; i < filters->len; i++) {
		if (!filter_matches(match, filters->items[i]))
			continue;
		if (km_str_eqc(op, "AddBefore") || km_str_eqc(op, "AddAfter")) {
			if (value)
				insert(a, filters, km_str_eqc(op, "AddBefore") ? i : i + 1, km_json_clone(a, value));
			return; /* next to the first match */
		}
		if (km_str_eqc(op, "Remove")) {
			memmove(filters->items + i, filters->items + i + 1, (filters->len - i - 1) * sizeof(*filters->items));
			filters->len--;
			i--;
			continue;
		}
		struct km_json *tc = km_json_get(filters->items[i], "typedConfig");
		if (!km_str_eqc(op, "Patch") || !tc)
			continue;
		if (len_of(patches)) {
			struct km_json *p = json_patch(a, tc, patches);
			if (p)
				km_json_set(a, filters->items[i], "typedConfig", p);
		} else if (value) {
			merge(a, filters->items[i], value);
		}
	}
}

static void chain_mods(struct km_arena *a, struct km_json *listeners, const struct km_json *mod, bool http,
		       bool vhosts, struct km_json *value)
{
	const struct km_json *match = km_json_get(mod, "match");
	for (size_t i = 0; i < listeners->len; i++) {
		struct km_json_member *m = &listeners->members[i];
		if (!vhosts && !resource_matches(match, m->key, m->val, true))
			continue;
		if (vhosts && km_json_get(match, "origin") &&
		    !km_str_eqc(km_json_get_string(match, "origin"), origin_of(m->key)))
			continue;
		struct km_json *chains = km_json_get(m->val, "filterChains");
		for (size_t c = 0; c < len_of(chains); c++) {
			struct km_json *filters = km_json_get(chains->items[c], "filters");
			if (!http && !vhosts) {
				if (filters && filters->kind == KM_JSON_ARRAY)
					filters_mod(a, filters, mod, value);
				continue;
			}
			struct km_json *hcm = cp_policy_chain_hcm(chains->items[c]);
			if (!hcm)
				continue;
			if (http) {
				struct km_json *hf = km_json_get(hcm, "httpFilters");
				if (hf && hf->kind == KM_JSON_ARRAY)
					filters_mod(a, hf, mod, value);
				continue;
			}
			struct km_json *rc = km_json_get(hcm, "routeConfig");
			struct km_str rcn = km_json_get_string(match, "routeConfigurationName");
			if (!rc || (rcn.len && !km_str_eq(rcn, km_json_get_string(rc, "name"))))
				continue;
			struct km_json *vhs = km_json_get(rc, "virtualHosts");
			if (!vhs || vhs->kind != KM_JSON_ARRAY)
				continue;
			struct km_str op = km_json_get_string(mod, "operation");
			if (km_str_eqc(op, "Add")) {
				if (value)
					km_json_array_push(a, vhs, km_json_clone(a, value));
				continue;
			}
			const struct km_json *patches = km_json_get(mod, "jsonPatches");
			for (size_t v = 0; v < vhs->len; v++) {
				if (!filter_matches(match, vhs->items[v]))
					continue;
				if (km_str_eqc(op, "Remove")) {
					memmove(vhs->items + v, vhs->items + v + 1, (vhs->len - v - 1) * sizeof(*vhs->items));
					vhs->len--;
					v--;
				} else if (km_str_eqc(op, "Patch") && len_of(patches)) {
					struct km_json *p = json_patch(a, vhs->items[v], patches);
					if (p)
						vhs->items[v] = p;
				} else if (km_str_eqc(op, "Patch") && value) {
					merge(a, vhs->items[v], value);
				}
			}
		}
	}
}

/* Whether every resource of <objs> (type <t>) that is not in <before> as it
 * was still is a valid message of its type: a patch can add a field the
 * message does not have, or set two members of a oneof. */
static bool still_valid(struct km_arena *a, const struct km_json *objs, const struct km_json *before, int t)
{
	for (size_t i = 0; i < objs->len; i++) {
		const struct km_json *was = km_json_get_str(before, objs->members[i].key);
		if (was && km_json_equal(was, objs->members[i].val))
			continue;
		struct km_buf bytes = KM_BUF_INIT;
		int rc = km_pb_encode_json(a, cp_xds_type_url[t], objs->members[i].val, &bytes, NULL);
		km_buf_fini(&bytes);
		if (rc != 0)
			return false;
	}
	return true;
}

void cp_policy_meshproxypatch_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	const struct km_json *mods = km_json_get(mp->proxy_conf, "appendModifications");
	for (size_t i = 0; i < len_of(mods); i++) {
		const struct km_json *m = mods->items[i], *mod;
		int t = km_json_get(m, "cluster") ? CP_XDS_CLUSTER : CP_XDS_LISTENER;
		struct km_json *objs = c->rs->by_type[t];
		/* a modification that leaves an invalid resource is undone */
		struct km_json *before = km_json_clone(a, objs);
		if ((mod = km_json_get(m, "cluster")))
			resource_mod(a, objs, mod, "envoy.config.cluster.v3.Cluster");
		else if ((mod = km_json_get(m, "listener")))
			resource_mod(a, objs, mod, "envoy.config.listener.v3.Listener");
		else if ((mod = km_json_get(m, "networkFilter")))
			chain_mods(a, objs, mod, false, false, read_value(a, mod, "envoy.config.listener.v3.Filter"));
		else if ((mod = km_json_get(m, "httpFilter")))
			chain_mods(a, objs, mod, true, false,
				   read_value(a, mod, "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter"));
		else if ((mod = km_json_get(m, "virtualHost")))
			chain_mods(a, objs, mod, false, true, read_value(a, mod, "envoy.config.route.v3.VirtualHost"));
		if (!still_valid(a, objs, before, t))
			c->rs->by_type[t] = before;
	}
}

const struct km_json *cp_policy_meshproxypatch_outbound_conf(struct cp_policy_apply_ctx *c,
							     const struct cp_policy_matched *mp, const char *kri)
{
	(void)c;
	(void)kri;
	return mp->proxy_conf;
}
