/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of the observability policies: MeshTrace and MeshAccessLog
 * (backends, formats, OpenTelemetry backend references and attributes),
 * with the URL/path heuristics of the Go libraries upstream relies on. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/json.h"
#include "resource/validate_util.h"

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

static const char *const kinds_mesh_dp[] = {"Mesh", "Dataplane", NULL};

/* upstream ValidateBackendResourceRef at <p> */
static void backend_resource_ref(struct km_arena *a, struct km_violations *out, const char *p,
				 const struct km_json *ref)
{
	if (!km_str_eqc(km_v_str(ref, "kind"), "MeshOpenTelemetryBackend")) {
		static const char *const k[] = {"MeshOpenTelemetryBackend", NULL};
		km_v_must_be_one_of(out, km_v_path(a, "%s.kind", p), "kind", k);
	}
	if (km_v_len(ref, "labels") == 0)
		km_violations_add(out, p, "backendRef must have exactly one defined: labels");
}

/* govalidator.IsURL, approximated: optional known scheme, a host of
 * letters/digits/dots/dashes (or an IP), optional port, no spaces. */
bool km_v_is_url(struct km_str s)
{
	if (s.len == 0 || s.len >= 2083 || memchr(s.ptr, ' ', s.len) || s.ptr[0] == '.')
		return false;
	size_t i = 0;
	long sep = km_str_find(s, KM_STR("://"));
	if (sep >= 0) {
		struct km_str sch = {s.ptr, (size_t)sep};
		static const char *const ok[] = {"http", "https", "ftp", "tcp",
						 "udp",  "ws",    "wss", NULL};
		if (!km_v_in(sch, ok))
			return false;
		i = (size_t)sep + 3;
	}
	size_t hs = i;
	size_t at = hs;
	for (size_t j = hs; j < s.len && s.ptr[j] != '/'; j++)
		if (s.ptr[j] == '@')
			at = j + 1;
	i = hs = at;
	if (i < s.len && s.ptr[i] == '[') {
		while (i < s.len && s.ptr[i] != ']')
			i++;
		i++;
	} else {
		while (i < s.len &&
		       ((s.ptr[i] >= 'a' && s.ptr[i] <= 'z') ||
			(s.ptr[i] >= 'A' && s.ptr[i] <= 'Z') ||
			(s.ptr[i] >= '0' && s.ptr[i] <= '9') || s.ptr[i] == '.' || s.ptr[i] == '-'))
			i++;
	}
	if (i == hs)
		return false;
	if (i < s.len && s.ptr[i] == ':') {
		size_t ps = ++i;
		while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9')
			i++;
		if (i == ps || i - ps > 5)
			return false;
	}
	return i == s.len || s.ptr[i] == '/' || s.ptr[i] == '?' || s.ptr[i] == '#';
}

static void datadog_url(struct km_arena *a, struct km_violations *out, const char *p,
			struct km_str u)
{
	/* net/url.ParseRequestURI: "scheme:" + rest, or an absolute path */
	size_t i = 0;
	while (i < u.len &&
	       ((u.ptr[i] >= 'a' && u.ptr[i] <= 'z') || (u.ptr[i] >= 'A' && u.ptr[i] <= 'Z') ||
		(i > 0 && ((u.ptr[i] >= '0' && u.ptr[i] <= '9') || strchr("+-.", u.ptr[i])))))
		i++;
	bool has_scheme = i > 0 && i < u.len && u.ptr[i] == ':';
	if (!has_scheme && !(u.len && u.ptr[0] == '/')) {
		km_violations_add(out, p, "must be a valid url");
		return;
	}
	struct km_str scheme = has_scheme ? (struct km_str){u.ptr, i} : KM_STR("");
	struct km_str rest = has_scheme ? (struct km_str){u.ptr + i + 1, u.len - i - 1} : u;
	struct km_str port = KM_STR(""), path = KM_STR(""), query = KM_STR("");
	bool user = false, opaque = false;
	size_t q = 0;
	while (q < rest.len && rest.ptr[q] != '?')
		q++;
	if (q < rest.len)
		query = (struct km_str){rest.ptr + q + 1, rest.len - q - 1};
	rest.len = q;
	if (km_str_has_prefix(rest, "//")) {
		size_t e = 2;
		while (e < rest.len && rest.ptr[e] != '/')
			e++;
		struct km_str auth = {rest.ptr + 2, e - 2};
		path = (struct km_str){rest.ptr + e, rest.len - e};
		for (size_t j = 0; j < auth.len; j++)
			if (auth.ptr[j] == '@') {
				user = true;
				auth = (struct km_str){auth.ptr + j + 1, auth.len - j - 1};
				j = 0;
			}
		for (size_t j = auth.len; j > 0; j--) {
			if (auth.ptr[j - 1] == ']')
				break;
			if (auth.ptr[j - 1] == ':') {
				port = (struct km_str){auth.ptr + j, auth.len - j};
				break;
			}
		}
	} else if (has_scheme && (rest.len == 0 || rest.ptr[0] != '/')) {
		opaque = rest.len > 0;
	} else {
		path = rest;
	}
	if (!km_str_eqc(scheme, "http"))
		km_violations_add(out, p, "scheme must be http");
	if (!port.len) {
		km_violations_add(out, p, "port must be defined");
	} else {
		long long n;
		if (km_str_to_i64(port, &n) != 0 || n <= 0 || n > 65535)
			km_violations_add(out, p, "port must be a valid (1-65535)");
	}
	if (opaque)
		km_violations_add(out, p, "opaque must not be defined");
	if (user)
		km_violations_add(out, p, "user must not be defined");
	if (path.len)
		km_violations_add(out, p, "path must not be defined");
	if (query.len)
		km_violations_add(out, p, "query must not be defined");
}

static void sampling(struct km_arena *a, struct km_violations *out, const char *p,
		     const struct km_json *s, const char *key)
{
	double d = 0;
	int r = km_v_decimal(s, key, &d);
	const char *f = km_v_path(a, "%s.%s", p, key);
	if (r > 0)
		return;
	if (r < 0) {
		km_violations_add(out, f, "string is not a number");
		return;
	}
	if (d < 0 || d > 100)
		km_violations_add(out, f, "must be between 0 and 100");
}

void km_validate_meshtrace(struct km_arena *a, const struct km_resource_doc *doc,
			   struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *def = km_v_get(spec, "default");
	struct km_json *bs = arr(def, "backends");
	if (!km_v_get(def, "backends"))
		km_violations_add(out, "spec.default.backends", "must be defined");
	if (bs && bs->len > 1) {
		km_violations_add(out, "spec.default.backends",
				  "must have zero or one backend defined");
	} else if (bs && bs->len == 1) {
		const struct km_json *b = bs->items[0];
		struct km_str t = km_v_str(b, "type");
		if (km_str_eqc(t, "Datadog")) {
			struct km_json *dd = km_v_get(b, "datadog");
			if (!dd)
				km_violations_add(out, "spec.default.backends[0].datadog",
						  "must be defined");
			else
				datadog_url(a, out, "spec.default.backends[0].datadog.url",
					    km_v_str(dd, "url"));
		} else if (km_str_eqc(t, "Zipkin")) {
			struct km_json *z = km_v_get(b, "zipkin");
			struct km_str u = km_v_str(z, "url");
			if (!z)
				km_violations_add(out, "spec.default.backends[0].zipkin",
						  "must be defined");
			else if (!u.len)
				km_violations_add(out, "spec.default.backends[0].zipkin.url",
						  "must not be empty");
			else if (!km_v_is_url(u))
				km_violations_add(out, "spec.default.backends[0].zipkin.url",
						  "must be a valid url");
		} else if (km_str_eqc(t, "OpenTelemetry")) {
			struct km_json *ot = km_v_get(b, "openTelemetry");
			const char *op = "spec.default.backends[0].openTelemetry";
			if (!ot)
				km_violations_add(out, op, "must be defined");
			else if (!km_v_get(ot, "backendRef"))
				km_violations_add(out, km_v_path(a, "%s.backendRef", op),
						  "must be defined");
			else
				backend_resource_ref(a, out, km_v_path(a, "%s.backendRef", op),
						     km_v_get(ot, "backendRef"));
		}
	}
	struct km_json *tags = arr(def, "tags");
	for (size_t i = 0; tags && i < tags->len; i++) {
		const struct km_json *t = tags->items[i];
		const char *tp = km_v_path(a, "spec.default.tags[%zu]", i);
		if (!km_v_str(t, "name").len)
			km_violations_add(out, km_v_path(a, "%s.name", tp), "must not be empty");
		if ((km_v_get(t, "header") != NULL) == (km_v_get(t, "literal") != NULL))
			km_violations_add(out, tp,
					  "tag must have only one type defined: header, literal");
	}
	struct km_json *s = km_v_get(def, "sampling");
	if (s) {
		sampling(a, out, "spec.default.sampling", s, "client");
		sampling(a, out, "spec.default.sampling", s, "random");
		sampling(a, out, "spec.default.sampling", s, "overall");
	}
}

/* ---- MeshAccessLog --------------------------------------------------------------- */

/* govalidator.IsFilePath for unix paths */
static bool is_file_path(struct km_str s)
{
	if (!s.len || s.ptr[0] != '/')
		return false;
	return !memchr(s.ptr, 0, s.len) && s.len < 32768;
}

static void otel_attribute_key(struct km_violations *out, const char *p, struct km_str k)
{
	if (!k.len) {
		km_violations_add(out, p, "must be defined");
		return;
	}
	if (memchr(k.ptr, '%', k.len)) {
		km_violations_add(out, p,
				  "must be a static OpenTelemetry attribute name; placeholders are "
				  "only supported in values");
		return;
	}
	if (km_str_has_prefix(k, "otel.")) {
		km_violations_add(out, p, "must not use the reserved OpenTelemetry prefix 'otel.'");
		return;
	}
	bool ok = k.ptr[0] >= 'a' && k.ptr[0] <= 'z';
	for (size_t i = 1; ok && i < k.len; i++) {
		char c = k.ptr[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (c == '.' || c == '_')
			ok = i + 1 < k.len && ((k.ptr[i + 1] >= 'a' && k.ptr[i + 1] <= 'z') ||
					       (k.ptr[i + 1] >= '0' && k.ptr[i + 1] <= '9'));
		else
			ok = alnum;
	}
	if (!ok)
		km_violations_add(
			out, p,
			"must start with a lowercase letter, use only lowercase letters, "
			"digits, '.' or '_', avoid consecutive delimiters, and end with a "
			"letter or digit");
}

static bool json_pair_ok(struct km_arena *a, struct km_str k, struct km_str v)
{
	char *txt = km_arena_printf(a, "{\"%.*s\": \"%.*s\"}", KM_STR_FMT(k), KM_STR_FMT(v));
	struct km_json *j;
	return km_json_parse(a, txt, strlen(txt), &j, NULL) == 0;
}

static void log_format(struct km_arena *a, struct km_violations *out, const char *p,
		       const struct km_json *f)
{
	struct km_str t = km_v_str(f, "type");
	if (km_str_eqc(t, "Plain")) {
		struct km_json *pl = km_v_get(f, "plain");
		if (!pl)
			km_violations_add(out, km_v_path(a, "%s.plain", p), "must be defined");
		else if (pl->kind == KM_JSON_STRING && !pl->s.len)
			km_violations_add(out, km_v_path(a, "%s.plain", p), "must not be empty");
	} else if (km_str_eqc(t, "Json")) {
		struct km_json *js = km_v_get(f, "json");
		if (!js) {
			km_violations_add(out, km_v_path(a, "%s.json", p), "must be defined");
			return;
		}
		if (js->kind != KM_JSON_ARRAY || js->len == 0) {
			km_violations_add(out, km_v_path(a, "%s.json", p), "must not be empty");
			return;
		}
		for (size_t i = 0; i < js->len; i++) {
			const char *ip = km_v_path(a, "%s.json[%zu]", p, i);
			struct km_str k = km_v_str(js->items[i], "key"),
				      v = km_v_str(js->items[i], "value");
			if (!k.len)
				km_violations_add(out, km_v_path(a, "%s.key", ip),
						  "key cannot be empty");
			if (!v.len)
				km_violations_add(out, km_v_path(a, "%s.value", ip),
						  "value cannot be empty");
			if (!json_pair_ok(a, k, v))
				km_violations_add(out, ip, "is not a valid JSON object");
		}
	}
}

static void log_default(struct km_arena *a, struct km_violations *out, const char *p,
			const struct km_json *conf)
{
	struct km_json *bs = km_v_get(conf, "backends");
	if (!bs) {
		km_violations_add(out, km_v_path(a, "%s.backends", p), "must be defined");
		return;
	}
	for (size_t i = 0; bs->kind == KM_JSON_ARRAY && i < bs->len; i++) {
		const struct km_json *b = bs->items[i];
		const char *bp = km_v_path(a, "%s.backends[%zu]", p, i);
		struct km_str t = km_v_str(b, "type");
		if (km_str_eqc(t, "File")) {
			struct km_json *f = km_v_get(b, "file");
			if (!f) {
				km_violations_add(out, km_v_path(a, "%s.file", bp),
						  "must be defined");
				continue;
			}
			if (km_v_get(f, "format"))
				log_format(a, out, km_v_path(a, "%s.file.format", bp),
					   km_v_get(f, "format"));
			if (!is_file_path(km_v_str(f, "path")))
				km_violations_add(out, km_v_path(a, "%s.file.path", bp),
						  "file backend requires a valid path");
		} else if (km_str_eqc(t, "Tcp")) {
			struct km_json *tcp = km_v_get(b, "tcp");
			if (!tcp) {
				km_violations_add(out, km_v_path(a, "%s.tcp", bp),
						  "must be defined");
				continue;
			}
			if (km_v_get(tcp, "format"))
				log_format(a, out, km_v_path(a, "%s.tcp.format", bp),
					   km_v_get(tcp, "format"));
			if (!km_v_is_url(km_v_str(tcp, "address")))
				km_violations_add(out, km_v_path(a, "%s.tcp.address", bp),
						  "tcp backend requires valid address");
		} else if (km_str_eqc(t, "OpenTelemetry")) {
			struct km_json *ot = km_v_get(b, "openTelemetry");
			const char *op = km_v_path(a, "%s.openTelemetry", bp);
			if (!ot) {
				km_violations_add(out, op, "must be defined");
				continue;
			}
			if (!km_v_get(ot, "backendRef"))
				km_violations_add(out, km_v_path(a, "%s.backendRef", op),
						  "must be defined");
			else
				backend_resource_ref(a, out, km_v_path(a, "%s.backendRef", op),
						     km_v_get(ot, "backendRef"));
			struct km_json *at = arr(ot, "attributes");
			for (size_t j = 0; at && j < at->len; j++)
				otel_attribute_key(out,
						   km_v_path(a, "%s.attributes[%zu].key", op, j),
						   km_v_str(at->items[j], "key"));
		}
	}
}

void km_validate_meshaccesslog(struct km_arena *a, const struct km_resource_doc *doc,
			       struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	struct km_target_ref_opts o = {kinds_mesh_dp, km_v_affects_inbounds(spec)};
	struct km_json mesh_ref = {.kind = KM_JSON_OBJECT};
	if (!top) {
		/* upstream validates the implicit top-level ref (kind Mesh) */
		km_json_set(a, &mesh_ref, "kind", km_json_cstring(a, "Mesh"));
		top = &mesh_ref;
	}
	km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	struct km_json *rules = arr(spec, "rules"), *to = arr(spec, "to");
	size_t nr = rules ? rules->len : 0, nt = to ? to->len : 0;
	if (nr && nt)
		km_violations_add(out, "spec", "'to' must be empty when 'rules' is defined");
	if (!nr && !nt)
		km_violations_add(out, "spec", "at least one of 'to' or 'rules' has to be defined");
	static const char *const kinds[] = {
		"Mesh",          "MeshService", "MeshExternalService", "MeshMultiZoneService",
		"MeshHTTPRoute", NULL};
	for (size_t i = 0; i < nt; i++) {
		struct km_target_ref_opts to_o = {kinds, false};
		km_validate_target_ref(a, out, km_v_path(a, "spec.to[%zu].targetRef", i),
				       km_v_get(to->items[i], "targetRef"), &to_o);
		log_default(a, out, km_v_path(a, "spec.to[%zu].default", i),
			    km_v_get(to->items[i], "default"));
	}
	for (size_t i = 0; i < nr; i++) {
		const char *rp = km_v_path(a, "spec.rules[%zu]", i);
		struct km_json *ms = arr(rules->items[i], "matches");
		for (size_t j = 0; ms && j < ms->len; j++)
			km_validate_match(a, out, km_v_path(a, "%s.matches[%zu]", rp, j),
					  ms->items[j]);
		log_default(a, out, km_v_path(a, "%s.default", rp),
			    km_v_get(rules->items[i], "default"));
	}
}

/* ---- MeshMetric ------------------------------------------------------------------ */

static bool regex_ok(struct km_str s)
{
	char buf[1024];
	if (s.len >= sizeof(buf))
		return false;
	memcpy(buf, s.ptr, s.len);
	buf[s.len] = 0;
	regex_t re;
	if (regcomp(&re, buf, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	regfree(&re);
	return true;
}

void km_validate_meshmetric(struct km_arena *a, const struct km_resource_doc *doc,
			    struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {kinds_mesh_dp, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *def = km_v_get(spec, "default");
	struct km_json *prof = km_v_get(km_v_get(def, "sidecar"), "profiles");
	static const char *const sel_keys[] = {"exclude", "include"};
	for (size_t k = 0; k < 2; k++) {
		struct km_json *sels = arr(prof, sel_keys[k]);
		for (size_t i = 0; sels && i < sels->len; i++) {
			const struct km_json *s = sels->items[i];
			const char *p = km_v_path(a, "spec.default.sidecar.profiles.%s[%zu]",
						  sel_keys[k], i);
			struct km_str t = km_v_str(s, "type");
			if (km_str_eqc(t, "Regex")) {
				if (!regex_ok(km_v_str(s, "match")))
					km_violations_add(out, km_v_path(a, "%s.match", p),
							  "invalid regex");
			} else if (!km_str_eqc(t, "Prefix") && !km_str_eqc(t, "Exact") &&
				   !km_str_eqc(t, "Contains")) {
				km_violations_add(
					out, km_v_path(a, "%s.type", p),
					"unrecognized type '%.*s' - 'Regex', 'Prefix', 'Exact' are supported",
					KM_STR_FMT(t));
			}
		}
	}
	struct km_json *ap = arr(prof, "appendProfiles");
	for (size_t i = 0; ap && i < ap->len; i++) {
		struct km_str n = km_v_str(ap->items[i], "name");
		if (!km_str_eqc(n, "All") && !km_str_eqc(n, "None") && !km_str_eqc(n, "Basic"))
			km_violations_add(
				out,
				km_v_path(a,
					  "spec.default.sidecar.profiles.appendProfiles[%zu].name",
					  i),
				"unrecognized profile name '%.*s' - 'All', 'None', 'Basic' are supported",
				KM_STR_FMT(n));
	}
	struct km_json *apps = arr(def, "applications");
	for (size_t i = 0; apps && i < apps->len; i++) {
		int64_t port = km_v_int(apps->items[i], "port", 0);
		if (port <= 0 || port > 65535)
			km_violations_add(
				out, km_v_path(a, "spec.default.applications.application[%zu]", i),
				"port must be a valid (1-65535)");
	}
	struct km_json *bs = arr(def, "backends");
	for (size_t i = 0; bs && i < bs->len; i++) {
		const struct km_json *b = bs->items[i];
		const char *p = km_v_path(a, "spec.default.backends.backend[%zu]", i);
		struct km_str t = km_v_str(b, "type");
		if (km_str_eqc(t, "Prometheus")) {
			struct km_json *pr = km_v_get(b, "prometheus");
			int64_t port = km_v_int(pr, "port", 0);
			if (!pr)
				km_violations_add(out, km_v_path(a, "%s.prometheus", p),
						  "must be defined");
			else if (port <= 0 || port > 65535)
				km_violations_add(out, km_v_path(a, "%s.port", p),
						  "port must be a valid (1-65535)");
		} else if (km_str_eqc(t, "OpenTelemetry")) {
			struct km_json *ot = km_v_get(b, "openTelemetry");
			const char *op = km_v_path(a, "%s.openTelemetry", p);
			if (!ot)
				km_violations_add(out, op, "must be defined");
			else if (!km_v_get(ot, "backendRef"))
				km_violations_add(out, km_v_path(a, "%s.backendRef", op),
						  "must be defined");
			else
				backend_resource_ref(a, out, km_v_path(a, "%s.backendRef", op),
						     km_v_get(ot, "backendRef"));
		} else {
			km_violations_add(out, p, "unrecognized type");
		}
	}
}

/* ---- MeshOpenTelemetryBackend ----------------------------------------------------- */

void km_validate_meshopentelemetrybackend(struct km_arena *a, const struct km_resource_doc *doc,
					  struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	struct km_json *pv = km_v_get(spec, "protocol");
	struct km_str proto = pv && pv->kind == KM_JSON_STRING ? pv->s : KM_STR("grpc");
	struct km_json *ep = km_v_get(spec, "endpoint");
	if (ep) {
		struct km_json *addr = km_v_get(ep, "address");
		if (addr) {
			struct km_str s = addr->kind == KM_JSON_STRING ? addr->s : KM_STR("");
			if (!s.len)
				km_violations_add(out, "spec.endpoint.address",
						  "must not be empty");
			else if (!km_v_is_ip(s) && !km_v_is_dns_name(s))
				km_violations_add(out, "spec.endpoint.address",
						  "address has to be a valid IP or hostname");
		}
		if (km_v_get(ep, "port")) {
			int64_t port = km_v_int(ep, "port", 0);
			if (port <= 0 || port > 65535)
				km_violations_add(out, "spec.endpoint.port",
						  "port must be a valid (1-65535)");
		}
		struct km_str path = km_v_str(ep, "path");
		if (path.len) {
			if (km_str_eqc(proto, "grpc") || !proto.len) {
				km_violations_add(out, "spec.endpoint.path",
						  "must not be set when protocol is grpc");
			} else {
				if (!km_str_has_prefix(path, "/"))
					km_violations_add(out, "spec.endpoint.path",
							  "must start with /");
				if (memchr(path.ptr, '?', path.len) ||
				    memchr(path.ptr, '#', path.len))
					km_violations_add(out, "spec.endpoint.path",
							  "must not contain query or fragment");
			}
		}
	}
	static const char *const protos[] = {"grpc", "http", NULL};
	if (proto.len && !km_v_in(proto, protos))
		km_v_must_be_one_of(out, "spec.protocol", "protocol", protos);
	struct km_json *env = km_v_get(spec, "env");
	static const char *const modes[] = {"Disabled", "Optional", "Required", NULL};
	static const char *const prec[] = {"ExplicitFirst", "EnvFirst", NULL};
	struct km_str m = km_v_str(env, "mode"), p = km_v_str(env, "precedence");
	if (m.len && !km_v_in(m, modes))
		km_v_must_be_one_of(out, "spec.env.mode", "mode", modes);
	if (p.len && !km_v_in(p, prec))
		km_v_must_be_one_of(out, "spec.env.precedence", "precedence", prec);
}
