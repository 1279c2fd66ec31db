/* SPDX-License-Identifier: Apache-2.0 */
/* Validation entry points: schema normalisation, the table of per-type
 * validators, meta checks, Go durations and the helpers every validator
 * shares (validate_util.h). Messages are upstream's, verbatim. */
#include "resource/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "resource/schema.h"
#include "resource/validate_util.h"

/* ---- per-type validator table ------------------------------------------ */

static const struct {
	const char *type;
	km_validate_fn *fn;
} validators[] = {
	{"Dataplane", km_validate_dataplane},
	{"HostnameGenerator", km_validate_hostnamegenerator},
	{"Mesh", km_validate_mesh},
	{"MeshAccessLog", km_validate_meshaccesslog},
	{"MeshCircuitBreaker", km_validate_meshcircuitbreaker},
	{"MeshExternalService", km_validate_meshexternalservice},
	{"MeshFaultInjection", km_validate_meshfaultinjection},
	{"MeshHTTPRoute", km_validate_meshhttproute},
	{"MeshHealthCheck", km_validate_meshhealthcheck},
	{"MeshIdentity", km_validate_meshidentity},
	{"MeshLoadBalancingStrategy", km_validate_meshloadbalancingstrategy},
	{"MeshMetric", km_validate_meshmetric},
	{"MeshMultiZoneService", km_validate_meshmultizoneservice},
	{"MeshOpenTelemetryBackend", km_validate_meshopentelemetrybackend},
	{"MeshPassthrough", km_validate_meshpassthrough},
	{"MeshProxyPatch", km_validate_meshproxypatch},
	{"MeshRateLimit", km_validate_meshratelimit},
	{"MeshRetry", km_validate_meshretry},
	{"MeshService", km_validate_meshservice},
	{"MeshTCPRoute", km_validate_meshtcproute},
	{"MeshTLS", km_validate_meshtls},
	{"MeshTimeout", km_validate_meshtimeout},
	{"MeshTrace", km_validate_meshtrace},
	{"MeshTrafficPermission", km_validate_meshtrafficpermission},
	{"MeshTrust", km_validate_meshtrust},
	{"MeshZoneAddress", km_validate_meshzoneaddress},
	{"Workload", km_validate_workload},
	{"Zone", km_validate_zone},
};

int km_validate_resource_ex(struct km_arena *a, struct km_resource_doc *doc,
			    struct km_violations *out, unsigned flags)
{
	size_t before = out->len;
	const struct km_schema_root *root = km_schema_root_find(doc->type->name);
	bool flat = !km_rtype_has(doc->type, KM_RT_NEW_STYLE);
	if (root) {
		struct km_violations errs;
		km_violations_init(&errs, a);
		const char *sp = flat ? "" : "spec";
		unsigned so = (flags & KM_VALIDATE_VALIDATOR_ONLY) ? KM_SCHEMA_COERCE_STRINGS : 0;
		km_schema_normalize(a, root->spec, &doc->spec, sp, &errs, so);
		if (doc->status && root->status >= 0)
			km_schema_normalize(a, root->status, &doc->status, "status", &errs, so);
		if (!(flags & KM_VALIDATE_VALIDATOR_ONLY) && errs.len) {
			km_schema_errors_to_violations(&errs, out, flat);
			return -KM_E_INVALID;
		}
	}
	for (size_t i = 0; i < sizeof(validators) / sizeof(validators[0]); i++)
		if (strcmp(validators[i].type, doc->type->name) == 0)
			validators[i].fn(a, doc, out);
	return out->len > before ? -KM_E_INVALID : 0;
}

int km_validate_resource(struct km_arena *a, struct km_resource_doc *doc, struct km_violations *out)
{
	return km_validate_resource_ex(a, doc, out, 0);
}

/* ---- meta --------------------------------------------------------------- */

const char km_v_rfc1123_msg[] =
	"invalid characters. A lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
	"characters, '-' or '.', and must start and end with an alphanumeric character";

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool km_v_is_dns1123_label(struct km_str s)
{
	if (s.len == 0 || !is_lower_alnum(s.ptr[0]) || !is_lower_alnum(s.ptr[s.len - 1]))
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_lower_alnum(s.ptr[i]) && s.ptr[i] != '-')
			return false;
	return true;
}

bool km_v_is_dns1123_subdomain(struct km_str s)
{
	size_t start = 0;
	for (size_t i = 0; i <= s.len; i++) {
		if (i == s.len || s.ptr[i] == '.') {
			if (!km_v_is_dns1123_label((struct km_str){s.ptr + start, i - start}))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool km_v_is_dns1035_label(struct km_str s)
{
	return km_v_is_dns1123_label(s) && s.ptr[0] >= 'a' && s.ptr[0] <= 'z';
}

const char km_v_dns1123_sub_msg[] =
	"a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
	"'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
	"for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char km_v_dns1035_msg[] =
	"a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
	"alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
	"'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

void km_v_dns1123_subdomain(struct km_violations *out, const char *field, struct km_str s)
{
	if (s.len > 253)
		km_violations_add(out, field, "must be no more than 253 characters");
	if (!km_v_is_dns1123_subdomain(s))
		km_violations_add(out, field, "%s", km_v_dns1123_sub_msg);
}

void km_v_dns1035_label(struct km_violations *out, const char *field, struct km_str s)
{
	/* NameIsDNS1035Label joins its messages with ", " into one violation */
	const char *len = s.len > 63 ? "must be no more than 63 characters" : NULL;
	const char *chars = km_v_is_dns1035_label(s) ? NULL : km_v_dns1035_msg;
	if (len && chars)
		km_violations_add(out, field, "%s, %s", len, chars);
	else if (len || chars)
		km_violations_add(out, field, "%s", len ? len : chars);
}

static void check_identifier(struct km_violations *out, const char *field, struct km_str s,
			     bool mesh)
{
	if (s.len == 0) {
		km_violations_add(out, field, "cannot be empty");
		return;
	}
	if (s.len > 253) {
		km_violations_add(out, field, "value length must less or equal 253");
		return;
	}
	if (mesh) {
		for (size_t i = 0; i < s.len; i++) {
			char c = s.ptr[i];
			if (!is_lower_alnum(c) && c != '-' && c != '_' && c != '.') {
				km_violations_add(
					out, field,
					"invalid characters. Valid characters are numbers, lowercase "
					"latin letters and '-', '_', '.' symbols.");
				return;
			}
		}
	} else if (!km_v_is_dns1123_subdomain(s)) {
		km_violations_add(out, field, "%s", km_v_rfc1123_msg);
	}
}

void km_validate_meta(struct km_arena *a, const struct km_resource_doc *doc,
		      struct km_violations *out)
{
	(void)a;
	check_identifier(out, "name", doc->name, false);
	if (doc->type->scope == KM_SCOPE_MESH)
		check_identifier(out, "mesh", doc->mesh, true);
}

/* ---- durations ------------------------------------------------------------ */

int km_duration_parse(struct km_str s, int64_t *nanos)
{
	size_t i = 0;
	bool neg = false;
	if (i < s.len && (s.ptr[i] == '-' || s.ptr[i] == '+'))
		neg = s.ptr[i++] == '-';
	if (s.len - i == 1 && s.ptr[i] == '0') {
		*nanos = 0;
		return 0;
	}
	if (i == s.len)
		return -EINVAL;
	unsigned long long total = 0;
	while (i < s.len) {
		unsigned long long v = 0, frac = 0, scale = 1;
		bool digits = false;
		while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
			if (v > (1ULL << 63) / 10)
				return -EINVAL;
			v = v * 10 + (unsigned)(s.ptr[i++] - '0');
			digits = true;
		}
		if (i < s.len && s.ptr[i] == '.') {
			i++;
			while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
				if (scale < 1000000000000000000ULL) {
					frac = frac * 10 + (unsigned)(s.ptr[i] - '0');
					scale *= 10;
				}
				i++;
				digits = true;
			}
		}
		if (!digits)
			return -EINVAL;
		size_t u = i;
		while (i < s.len && s.ptr[i] != '.' && !(s.ptr[i] >= '0' && s.ptr[i] <= '9'))
			i++;
		struct km_str unit = {s.ptr + u, i - u};
		unsigned long long mul;
		if (km_str_eqc(unit, "ns"))
			mul = 1;
		else if (km_str_eqc(unit, "us") || km_str_eqc(unit, "\xc2\xb5s") ||
			 km_str_eqc(unit, "\xce\xbcs"))
			mul = 1000;
		else if (km_str_eqc(unit, "ms"))
			mul = 1000000;
		else if (km_str_eqc(unit, "s"))
			mul = 1000000000ULL;
		else if (km_str_eqc(unit, "m"))
			mul = 60000000000ULL;
		else if (km_str_eqc(unit, "h"))
			mul = 3600000000000ULL;
		else
			return -EINVAL;
		if (v > (1ULL << 63) / mul)
			return -EINVAL;
		unsigned long long part = v * mul;
		if (frac)
			part += (unsigned long long)((double)frac * ((double)mul / (double)scale));
		total += part;
		if (total > (1ULL << 63) - (neg ? 0 : 1))
			return -EINVAL;
	}
	*nanos = neg ? -(int64_t)(total - 1) - 1 : (int64_t)total;
	return 0;
}

const char *km_duration_format(struct km_arena *a, int64_t d)
{
	char buf[40];
	int w = (int)sizeof(buf);
	unsigned long long u = d < 0 ? (unsigned long long)(-(d + 1)) + 1 : (unsigned long long)d;
	bool neg = d < 0;
	if (u < 1000000000ULL) {
		/* sub-second: one unit with a fraction */
		int prec = 0;
		const char *unit;
		if (u == 0)
			return km_arena_strdup(a, "0s");
		if (u < 1000) {
			unit = "ns";
		} else if (u < 1000000) {
			unit = "\xc2\xb5s";
			prec = 3;
		} else {
			unit = "ms";
			prec = 6;
		}
		unsigned long long div = 1;
		for (int i = 0; i < prec; i++)
			div *= 10;
		unsigned long long ip = u / div, fp = u % div;
		char frac[16] = "";
		if (fp) {
			snprintf(frac, sizeof(frac), ".%0*llu", prec, fp);
			size_t n = strlen(frac);
			while (n > 1 && frac[n - 1] == '0')
				frac[--n] = 0;
		}
		return km_arena_printf(a, "%s%llu%s%s", neg ? "-" : "", ip, frac, unit);
	}
	w--;
	buf[w] = 0;
	unsigned long long secs = u / 1000000000ULL, fp = u % 1000000000ULL;
	char frac[16] = "";
	if (fp) {
		snprintf(frac, sizeof(frac), ".%09llu", fp);
		size_t n = strlen(frac);
		while (n > 1 && frac[n - 1] == '0')
			frac[--n] = 0;
	}
	unsigned long long h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
	if (h)
		return km_arena_printf(a, "%s%lluh%llum%llu%ss", neg ? "-" : "", h, m, s, frac);
	if (m)
		return km_arena_printf(a, "%s%llum%llu%ss", neg ? "-" : "", m, s, frac);
	return km_arena_printf(a, "%s%llu%ss", neg ? "-" : "", s, frac);
}

/* ---- helpers for validators ---------------------------------------------- */

struct km_json *km_v_get(const struct km_json *obj, const char *key)
{
	if (!obj || obj->kind != KM_JSON_OBJECT)
		return NULL;
	struct km_json *v = km_json_get(obj, key);
	return v && v->kind != KM_JSON_NULL ? v : NULL;
}

struct km_str km_v_str(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_STRING ? v->s : KM_STR("");
}

size_t km_v_len(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && (v->kind == KM_JSON_ARRAY || v->kind == KM_JSON_OBJECT) ? v->len : 0;
}

int64_t km_v_int(const struct km_json *obj, const char *key, int64_t dflt)
{
	struct km_json *v = km_v_get(obj, key);
	if (!v || v->kind != KM_JSON_NUMBER)
		return dflt;
	return km_json_i64_sat(v);
}

int km_v_dur(const struct km_json *obj, const char *key, int64_t *ns)
{
	struct km_json *v = km_v_get(obj, key);
	if (!v)
		return 0;
	if (v->kind != KM_JSON_STRING || km_duration_parse(v->s, ns) != 0)
		return -1;
	return 1;
}

const char *km_v_path(struct km_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = km_arena_vprintf(a, fmt, ap);
	va_end(ap);
	return s;
}

static bool kind_in(struct km_str k, const char *const *kinds)
{
	for (; *kinds; kinds++)
		if (km_str_eqc(k, *kinds))
			return true;
	return false;
}

void km_validate_target_ref(struct km_arena *a, struct km_violations *out, const char *path,
			    const struct km_json *ref, const struct km_target_ref_opts *o)
{
	struct km_str kind = km_v_str(ref, "kind");
	const char *kp = km_v_path(a, "%s.kind", path);
	if (kind.len == 0) {
		km_violations_add(out, kp, "must be defined");
		return;
	}
	if (!kind_in(kind, o->kinds)) {
		km_violations_add(out, kp, "value '%.*s' is not supported", KM_STR_FMT(kind));
		return;
	}
	bool has_labels = km_v_len(ref, "labels") > 0;
	bool has_section = km_v_str(ref, "sectionName").len > 0;
	const char *lp = km_v_path(a, "%s.labels", path);
	const char *sp = km_v_path(a, "%s.sectionName", path);
	char k[64];
	snprintf(k, sizeof(k), "%.*s", KM_STR_FMT(kind));
	if (km_str_eqc(kind, "Mesh")) {
		if (has_labels)
			km_violations_add(out, lp, "must not be set with kind Mesh");
		if (has_section)
			km_violations_add(out, sp, "must not be set with kind Mesh");
	} else if (km_str_eqc(kind, "Dataplane")) {
		if (!o->inbound_policy && has_section)
			km_violations_add(out, sp, "can only be used with inbound policies");
	} else if (km_str_eqc(kind, "MeshService") || km_str_eqc(kind, "MeshMultiZoneService")) {
		if (!has_labels)
			km_violations_add(out, lp, "must be set when kind is %s", k);
	} else if (km_str_eqc(kind, "MeshHTTPRoute") || km_str_eqc(kind, "MeshExternalService")) {
		if (has_section)
			km_violations_add(out, sp, "must not be set with kind %s", k);
		if (!has_labels)
			km_violations_add(out, lp, "must be set when kind is %s", k);
	}
}

bool km_v_affects_inbounds(const struct km_json *spec)
{
	return km_v_len(spec, "rules") > 0;
}

static bool spiffe_td_char(char c)
{
	return is_lower_alnum(c) || c == '.' || c == '-' || c == '_';
}

static bool spiffe_path_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-' || c == '_';
}

const char *km_v_spiffe_error(struct km_str id)
{
	if (id.len == 0)
		return "cannot be empty";
	if (!km_str_has_prefix(id, "spiffe://"))
		return "scheme is missing or invalid";
	struct km_str rest = {id.ptr + 9, id.len - 9};
	size_t i = 0;
	while (i < rest.len && rest.ptr[i] != '/') {
		if (!spiffe_td_char(rest.ptr[i]))
			return "trust domain characters are limited to lowercase letters, numbers, dots, "
			       "dashes, and underscores";
		i++;
	}
	if (i == 0)
		return "trust domain is missing";
	if (i == rest.len)
		return NULL;
	if (rest.ptr[rest.len - 1] == '/')
		return "path cannot have a trailing slash";
	size_t seg = i + 1; /* rest.ptr[i] == '/' */
	for (size_t j = seg; j <= rest.len; j++) {
		if (j < rest.len && rest.ptr[j] != '/')
			continue;
		struct km_str s = {rest.ptr + seg, j - seg};
		if (s.len == 0)
			return "path cannot contain empty segments";
		if (km_str_eqc(s, ".") || km_str_eqc(s, ".."))
			return "path cannot contain dot segments";
		for (size_t c = 0; c < s.len; c++)
			if (!spiffe_path_char(s.ptr[c]))
				return "path segment characters are limited to letters, numbers, dots, "
				       "dashes, and underscores";
		seg = j + 1;
	}
	return NULL;
}

void km_validate_match(struct km_arena *a, struct km_violations *out, const char *path,
		       const struct km_json *match)
{
	struct km_json *sid = km_v_get(match, "spiffeID");
	if (sid) {
		const char *e = km_v_spiffe_error(km_v_str(sid, "value"));
		if (e)
			km_violations_add(out, km_v_path(a, "%s.spiffeID", path),
					  "must be a valid Spiffe ID: %s", e);
	}
	struct km_json *sni = km_v_get(match, "sni");
	if (sni) {
		struct km_str t = km_v_str(sni, "type");
		const char *tp = km_v_path(a, "%s.sni.type", path);
		if (t.len == 0)
			km_violations_add(out, tp, "must be set");
		else if (!km_str_eqc(t, "Exact"))
			km_violations_add(out, tp,
					  "unrecognized type \"%.*s\", supported values are: Exact",
					  KM_STR_FMT(t));
		struct km_str v = km_v_str(sni, "value");
		const char *vp = km_v_path(a, "%s.sni.value", path);
		if (v.len == 0)
			km_violations_add(out, vp, "must be set");
		else
			km_v_dns1123_subdomain(out, vp, v);
	}
}

/* ---- IP addresses (Go net.ParseIP) ---------------------------------------- */

bool km_v_is_ipv4(struct km_str s)
{
	int parts = 0;
	size_t i = 0;
	while (parts < 4) {
		if (i >= s.len || s.ptr[i] < '0' || s.ptr[i] > '9')
			return false;
		unsigned v = 0;
		size_t st = i;
		while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9') {
			v = v * 10 + (unsigned)(s.ptr[i] - '0');
			if (v > 255 || i - st > 2)
				return false;
			i++;
		}
		if (i - st > 1 && s.ptr[st] == '0')
			return false;
		parts++;
		if (parts < 4) {
			if (i >= s.len || s.ptr[i] != '.')
				return false;
			i++;
		}
	}
	return i == s.len;
}

bool km_v_is_ipv6(struct km_str s)
{
	char buf[64];
	if (s.len == 0 || s.len >= sizeof(buf) || !memchr(s.ptr, ':', s.len))
		return false;
	/* count groups by hand: hex groups of <= 4 digits, one "::", optional IPv4 tail */
	int groups = 0;
	bool dbl = false;
	size_t i = 0;
	if (s.len >= 2 && s.ptr[0] == ':' && s.ptr[1] == ':') {
		dbl = true;
		i = 2;
		if (i == s.len)
			return true;
	} else if (s.ptr[0] == ':') {
		return false;
	}
	while (i < s.len) {
		size_t st = i;
		while (i < s.len && ((s.ptr[i] >= '0' && s.ptr[i] <= '9') ||
				     (s.ptr[i] >= 'a' && s.ptr[i] <= 'f') ||
				     (s.ptr[i] >= 'A' && s.ptr[i] <= 'F')))
			i++;
		if (i < s.len && s.ptr[i] == '.') {
			if (!km_v_is_ipv4((struct km_str){s.ptr + st, s.len - st}))
				return false;
			groups += 2;
			i = s.len;
			break;
		}
		if (i == st || i - st > 4)
			return false;
		groups++;
		if (i == s.len)
			break;
		if (s.ptr[i] != ':')
			return false;
		i++;
		if (i < s.len && s.ptr[i] == ':') {
			if (dbl)
				return false;
			dbl = true;
			i++;
			if (i == s.len)
				break;
		} else if (i == s.len) {
			return false;
		}
	}
	return dbl ? groups < 8 : groups == 8;
}

bool km_v_is_ip(struct km_str s)
{
	return km_v_is_ipv4(s) || km_v_is_ipv6(s);
}

/* ---- "must be one of" messages -------------------------------------------- */

bool km_v_in(struct km_str s, const char *const *allowed)
{
	for (; *allowed; allowed++)
		if (km_str_eqc(s, *allowed))
			return true;
	return false;
}

void km_v_must_be_one_of(struct km_violations *out, const char *path, const char *field,
			 const char *const *allowed)
{
	char buf[512];
	size_t n = 0;
	for (const char *const *p = allowed; *p && n < sizeof(buf); p++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s\"%s\"",
				      p == allowed ? "" : ", ", *p);
	km_violations_add(out, path, "\"%s\" must be one of [%s]", field, n ? buf : "");
}

const char *km_v_one_of_list(struct km_arena *a, const char *entity, const char *const *allowed)
{
	char buf[512];
	size_t n = 0;
	for (const char *const *p = allowed; *p && n < sizeof(buf); p++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", p == allowed ? "" : ", ",
				      *p);
	return km_arena_printf(a, "%s must be one of: %s", entity, n ? buf : "");
}
