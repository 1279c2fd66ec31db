/* SPDX-License-Identifier: Apache-2.0 */
/* Validator of MeshPassthrough: top-level targetRef and default.appendMatch
 * (type Domain/IP/CIDR, protocol, port, one L7 protocol per port, unique
 * value per port+protocol). Bookkeeping lives in the caller's arena. */
#include <string.h>

#include "resource/validate_util.h"

static const char *const protocols[] = {"tcp", "tls", "grpc", "http", "http2", "mysql", NULL};
/* protocols that cannot share a port with another protocol */
static const char *const l7_protocols[] = {"grpc", "http", "http2", NULL};

/* Go net.ParseCIDR: an IP, "/", a decimal prefix within the address size. */
static bool is_cidr(struct km_str s)
{
	const char *slash = memchr(s.ptr, '/', s.len);
	if (!s.len || !slash)
		return false;
	struct km_str ip = {s.ptr, (size_t)(slash - s.ptr)};
	struct km_str bits = {slash + 1, s.len - ip.len - 1};
	unsigned max;
	if (km_v_is_ipv4(ip))
		max = 32;
	else if (km_v_is_ipv6(ip))
		max = 128;
	else
		return false;
	if (!bits.len || bits.len > 3)
		return false;
	unsigned n = 0;
	for (size_t i = 0; i < bits.len; i++) {
		if (bits.ptr[i] < '0' || bits.ptr[i] > '9')
			return false;
		n = n * 10 + (unsigned)(bits.ptr[i] - '0');
	}
	return n <= max;
}

/* regexp `^\*[^.]+`: a wildcard glued to a label ("*w.example.com") */
static bool partial_wildcard(struct km_str v)
{
	return v.len >= 2 && v.ptr[0] == '*' && v.ptr[1] != '.';
}

struct seen {
	int64_t port;
	struct km_str protocol, value;
};

static void append_match(struct km_arena *a, struct km_violations *out, const struct km_json *ms)
{
	struct seen *port_proto = km_arena_alloc(a, (ms->len + 1) * sizeof(*port_proto));
	struct seen *values = km_arena_alloc(a, (ms->len + 1) * sizeof(*values));
	size_t npp = 0, nv = 0;
	for (size_t i = 0; i < ms->len; i++) {
		const struct km_json *m = ms->items[i];
		const char *p = km_v_path(a, "spec.default.appendMatch[%zu]", i);
		const char *pport = km_v_path(a, "%s.port", p);
		const char *pval = km_v_path(a, "%s.value", p);
		const char *pproto = km_v_path(a, "%s.protocol", p);
		struct km_str proto = km_v_str(m, "protocol"), type = km_v_str(m, "type");
		struct km_str value = km_v_str(m, "value");
		struct km_json *pj = km_v_get(m, "port");
		bool has_port = pj != NULL;
		int64_t port = km_v_int(m, "port", 0);
		if (km_str_eqc(proto, "mysql") && !has_port)
			km_violations_add(out, pport, "port must be defined for Mysql protocol");
		if ((has_port && port == 0) || port > 65535 || port < 0)
			km_violations_add(out, pport, "port must be a valid (1-65535)");
		if (has_port) {
			size_t k = 0;
			while (k < npp && port_proto[k].port != port)
				k++;
			if (k < npp && !km_str_eq(port_proto[k].protocol, proto) &&
			    km_v_in(proto, l7_protocols)) {
				km_violations_add(
					out, pport,
					"using the same port in multiple matches requires "
					"the same protocol for the following protocols: "
					"[grpc http http2]");
			} else {
				if (k == npp)
					npp++;
				port_proto[k] = (struct seen){port, proto, KM_STR_NULL};
			}
			size_t j = 0;
			while (j < nv &&
			       !(values[j].port == port && km_str_eq(values[j].protocol, proto) &&
				 km_str_eq(values[j].value, value)))
				j++;
			if (j < nv)
				km_violations_add(
					out, pval,
					"value %.*s is already defiend for this port and protocol",
					KM_STR_FMT(value));
			else
				values[nv++] = (struct seen){port, proto, value};
		}
		if (!km_v_in(proto, protocols))
			km_v_must_be_one_of(out, pproto, "protocol", protocols);
		if (km_str_eqc(type, "CIDR")) {
			if (!is_cidr(value))
				km_violations_add(out, pval, "provided CIDR has incorrect value");
		} else if (km_str_eqc(type, "IP")) {
			if (!km_v_is_ip(value))
				km_violations_add(out, pval, "provided IP has incorrect value");
		} else if (km_str_eqc(type, "Domain")) {
			if (km_str_eqc(proto, "tcp") || km_str_eqc(proto, "mysql"))
				km_violations_add(out, pproto,
						  "protocol %.*s is not supported for a domain",
						  KM_STR_FMT(proto));
			if (partial_wildcard(value))
				km_violations_add(
					out, pval,
					"provided DNS has incorrect value, partial wildcard is "
					"currently not supported");
			bool wildcard = value.len && value.ptr[0] == '*';
			if (!has_port && wildcard && km_v_in(proto, l7_protocols))
				km_violations_add(
					out, pport,
					"wildcard domains doesn't work for all ports and layer 7 "
					"protocol");
			struct km_str host = value;
			if (km_str_has_prefix(host, "*.")) {
				host.ptr += 2;
				host.len -= 2;
			}
			if (!(host.len && host.ptr[0] == '*') && !km_v_is_dns_name(host))
				km_violations_add(out, pval, "provided DNS has incorrect value");
		} else {
			km_violations_add(
				out, km_v_path(a, "%s.type", p),
				"provided type %.*s is not supported, one of Domain, IP, or CIDR "
				"is supported",
				KM_STR_FMT(type));
		}
	}
}

void km_validate_meshpassthrough(struct km_arena *a, const struct km_resource_doc *doc,
				 struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	static const char *const top_kinds[] = {"Mesh", "Dataplane", NULL};
	struct km_json *top = km_v_get(spec, "targetRef");
	if (top) {
		struct km_target_ref_opts o = {top_kinds, false};
		km_validate_target_ref(a, out, "spec.targetRef", top, &o);
	}
	struct km_json *ms = km_v_get(km_v_get(spec, "default"), "appendMatch");
	if (ms && ms->kind == KM_JSON_ARRAY)
		append_match(a, out, ms);
}
