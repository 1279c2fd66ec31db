/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of the proto-based core types: Dataplane (networking, inbounds,
 * outbounds, delegated gateway, zone-proxy listeners), Mesh and Zone (RFC 1035
 * names). Paths and messages follow upstream's dataplane validator. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resource/validate_util.h"

static const char kinds_msg[] =
	"invalid value. Available values are: MeshExternalService,MeshMultiZoneService,MeshService";

static bool is_backend_kind(struct km_str k)
{
	return km_str_eqc(k, "MeshService") || km_str_eqc(k, "MeshExternalService") ||
	       km_str_eqc(k, "MeshMultiZoneService");
}

static void check_port(struct km_violations *out, const char *field, int64_t port)
{
	if (port <= 0 || port > 65535)
		km_violations_add(out, field, "port must be in the range [1, 65535]");
}

bool km_v_is_dns_name(struct km_str s)
{
	size_t nodots = 0;
	for (size_t i = 0; i < s.len; i++)
		nodots += s.ptr[i] != '.';
	if (s.len == 0 || nodots > 255 || km_v_is_ip(s))
		return false;
	size_t i = 0;
	for (;;) {
		size_t st = i;
		while (i < s.len && ((s.ptr[i] >= 'a' && s.ptr[i] <= 'z') ||
				     (s.ptr[i] >= 'A' && s.ptr[i] <= 'Z') ||
				     (s.ptr[i] >= '0' && s.ptr[i] <= '9') || s.ptr[i] == '_' ||
				     (s.ptr[i] == '-' && i > st)))
			i++;
		if (i == st || i - st > 63)
			return i == s.len && st > 0; /* trailing '.' allowed */
		if (i == s.len)
			return true;
		if (s.ptr[i] != '.')
			return false;
		i++;
		if (i == s.len)
			return true;
	}
}

static void check_address(struct km_violations *out, const char *field, struct km_str addr)
{
	if (addr.len == 0) {
		km_violations_add(out, field, "address can't be empty");
		return;
	}
	if (km_str_eqc(addr, "0.0.0.0") || km_str_eqc(addr, "::"))
		km_violations_add(out, field, "must not be 0.0.0.0 or ::");
	if (!km_v_is_ip(addr) && !km_v_is_dns_name(addr))
		km_violations_add(out, field, "address has to be valid IP address or domain name");
}

static bool unspecified(struct km_str ip)
{
	return km_str_eqc(ip, "0.0.0.0") || km_str_eqc(ip, "::");
}

static bool loopback_overlap(struct km_str ip)
{
	return unspecified(ip) || km_str_eqc(ip, "127.0.0.1");
}

static void check_probe_duration(struct km_violations *out, const char *field,
				 const struct km_json *probe, const char *key)
{
	int64_t ns;
	int r = km_v_dur(probe, key, &ns);
	if (r < 0)
		km_violations_add(out, field, "must have a valid value");
	else if (r > 0 && ns == 0)
		km_violations_add(out, field, "must have a positive value");
}

static void validate_inbound(struct km_arena *a, struct km_violations *out, const char *p,
			     const struct km_json *in, struct km_str dp_addr)
{
	int64_t port = km_v_int(in, "port", 0);
	int64_t sport = km_v_int(in, "servicePort", 0);
	check_port(out, km_v_path(a, "%s.port", p), port);
	if (sport != 0)
		check_port(out, km_v_path(a, "%s.servicePort", p), sport);
	struct km_str saddr = km_v_str(in, "serviceAddress");
	struct km_str addr = km_v_str(in, "address");
	const char *sap = km_v_path(a, "%s.serviceAddress", p);
	static const char differ[] =
		"serviceAddress and servicePort has to differ from address and port";
	if (saddr.len) {
		if (!km_v_is_ip(saddr))
			km_violations_add(out, sap, "serviceAddress has to be valid IP address");
		if (km_str_eq(saddr, dp_addr) && (sport == 0 || sport == port))
			km_violations_add(out, sap, differ);
	}
	if (addr.len) {
		if (!km_v_is_ip(addr))
			km_violations_add(out, km_v_path(a, "%s.address", p),
					  "address has to be valid IP address");
		if (km_str_eq(addr, saddr) && (sport == 0 || sport == port))
			km_violations_add(out, sap, differ);
	}
	struct km_str proto = km_v_str(in, "protocol");
	if (proto.len) {
		char low[16] = "";
		if (proto.len < sizeof(low))
			for (size_t i = 0; i < proto.len; i++)
				low[i] = (char)(proto.ptr[i] >= 'A' && proto.ptr[i] <= 'Z' ?
							proto.ptr[i] + 32 :
							proto.ptr[i]);
		static const char *const known[] = {"http", "http2", "tcp", "tls", "grpc", "mysql"};
		bool ok = false;
		for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
			ok = ok || strcmp(low, known[i]) == 0;
		if (!ok)
			km_violations_add(
				out, km_v_path(a, "%s.protocol", p),
				"has an invalid value \"%.*s\". Allowed values: grpc, http, "
				"http2, tcp",
				KM_STR_FMT(proto));
	}
	struct km_json *probe = km_v_get(in, "serviceProbe");
	if (probe) {
		check_probe_duration(out, km_v_path(a, "%s.serviceProbe.interval", p), probe,
				     "interval");
		check_probe_duration(out, km_v_path(a, "%s.serviceProbe.timeout", p), probe,
				     "timeout");
		if (km_v_get(probe, "unhealthyThreshold") &&
		    km_v_int(probe, "unhealthyThreshold", 0) == 0)
			km_violations_add(out,
					  km_v_path(a, "%s.serviceProbe.unhealthyThreshold", p),
					  "must have a positive value");
		if (km_v_get(probe, "healthyThreshold") &&
		    km_v_int(probe, "healthyThreshold", 0) == 0)
			km_violations_add(out, km_v_path(a, "%s.serviceProbe.healthyThreshold", p),
					  "must have a positive value");
	}
}

static void validate_outbound(struct km_arena *a, struct km_violations *out, const char *p,
			      const struct km_json *ob)
{
	check_port(out, km_v_path(a, "%s.port", p), km_v_int(ob, "port", 0));
	struct km_str addr = km_v_str(ob, "address");
	if (addr.len && !km_v_is_ip(addr))
		km_violations_add(out, km_v_path(a, "%s.address", p),
				  "address has to be valid IP address");
	struct km_json *br = km_v_get(ob, "backendRef");
	const char *bp = km_v_path(a, "%s.backendRef", p);
	if (!br) {
		km_violations_add(out, bp, "must be defined");
		return;
	}
	struct km_str kind = km_v_str(br, "kind");
	if (!is_backend_kind(kind))
		km_violations_add(out, km_v_path(a, "%s.kind", bp), kinds_msg);
	if (km_v_str(br, "name").len == 0 && km_v_len(br, "labels") == 0)
		km_violations_add(out, bp, "either 'name' or 'labels' should be specified");
	if (!km_str_eqc(kind, "MeshExternalService"))
		check_port(out, km_v_path(a, "%s.port", bp), km_v_int(br, "port", 0));
}

static void validate_reachable(struct km_arena *a, struct km_violations *out,
			       const struct km_json *tp)
{
	struct km_json *refs = km_v_get(km_v_get(tp, "reachableBackends"), "refs");
	if (!refs || refs->kind != KM_JSON_ARRAY)
		return;
	for (size_t i = 0; i < refs->len; i++) {
		const struct km_json *r = refs->items[i];
		const char *p = km_v_path(
			a, "networking.transparentProxing.reachableBackends.refs[%zu]", i);
		struct km_str name = km_v_str(r, "name"), ns = km_v_str(r, "namespace");
		bool labels = km_v_len(r, "labels") > 0;
		if (!is_backend_kind(km_v_str(r, "kind")))
			km_violations_add(out, km_v_path(a, "%s.kind", p), kinds_msg);
		const char *np = km_v_path(a, "%s.name", p);
		if (name.len) {
			if (name.len > 253)
				km_violations_add(out, np, "value length must less or equal 253");
			else if (!km_v_is_dns1123_subdomain(name))
				km_violations_add(out, np, "%s", km_v_rfc1123_msg);
		}
		if (!name.len && !ns.len && !labels)
			km_violations_add(out, np, "name or labels are required");
		if (!name.len && ns.len)
			km_violations_add(out, np, "name is required, when namespace is defined");
		if ((name.len || ns.len) && labels)
			km_violations_add(out, km_v_path(a, "%s.labels", p),
					  "labels cannot be defined when name is specified");
	}
}

static const char *section_name(struct km_arena *a, const struct km_json *in)
{
	struct km_str n = km_v_str(in, "name");
	if (n.len)
		return km_arena_strndup(a, n.ptr, n.len);
	return km_arena_printf(a, "%lld", (long long)km_v_int(in, "port", 0));
}

static void validate_listeners(struct km_arena *a, struct km_violations *out,
			       const struct km_json *net)
{
	struct km_json *ls = km_v_get(net, "listeners");
	struct km_json *ins = km_v_get(net, "inbound");
	size_t nin = ins && ins->kind == KM_JSON_ARRAY ? ins->len : 0;
	if (!ls || ls->kind != KM_JSON_ARRAY)
		return;
	struct km_str dp_addr = km_v_str(net, "address");
	const char **names = km_arena_alloc(a, (nin + ls->len + 1) * sizeof(*names));
	size_t nnames = 0;
	for (size_t i = 0; i < nin; i++)
		names[nnames++] = section_name(a, ins->items[i]);
	const char **keys = km_arena_alloc(a, (ls->len + 1) * sizeof(*keys));
	struct km_str *types = km_arena_alloc(a, (ls->len + 1) * sizeof(*types));
	for (size_t i = 0; i < ls->len; i++) {
		const struct km_json *l = ls->items[i];
		const char *p = km_v_path(a, "networking.listeners[%zu]", i);
		struct km_str type = km_v_str(l, "type");
		if (type.len == 0 || km_str_eqc(type, "Unspecified"))
			km_violations_add(out, km_v_path(a, "%s.type", p),
					  "type must be ZoneIngress or ZoneEgress");
		struct km_str addr = km_v_str(l, "address");
		check_address(out, km_v_path(a, "%s.address", p), addr);
		int64_t port = km_v_int(l, "port", 0);
		check_port(out, km_v_path(a, "%s.port", p), port);
		struct km_str name = km_v_str(l, "name");
		if (name.len) {
			const char *n = km_arena_strndup(a, name.ptr, name.len);
			bool dup = false;
			for (size_t j = 0; j < nnames && !dup; j++)
				dup = strcmp(names[j], n) == 0;
			if (dup)
				km_violations_add(
					out, km_v_path(a, "%s.name", p),
					"name \"%s\" must be unique across inbounds and listeners",
					n);
			names[nnames++] = n;
		}
		const char *key =
			km_arena_printf(a, "%.*s:%lld", KM_STR_FMT(addr), (long long)port);
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++) {
			if (strcmp(keys[j], key) != 0)
				continue;
			seen = true;
			bool same = km_str_eq(types[j].len ? types[j] : KM_STR("Unspecified"),
					      type.len ? type : KM_STR("Unspecified"));
			km_violations_add(
				out, p,
				same ? "address:port %s is already used by another listener" :
				       "address:port %s is used by listeners of different types",
				key);
		}
		keys[i] = key;
		types[i] = type;
		for (size_t j = 0; j < nin; j++) {
			struct km_str ia = km_v_str(ins->items[j], "address");
			if (!ia.len)
				ia = dp_addr;
			const char *ik =
				km_arena_printf(a, "%.*s:%lld", KM_STR_FMT(ia),
						(long long)km_v_int(ins->items[j], "port", 0));
			if (strcmp(ik, key) == 0) {
				km_violations_add(
					out, p, "address:port %s collides with an inbound listener",
					key);
				break;
			}
		}
	}
}

static int cmp_cstr(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void validate_gateway(struct km_arena *a, struct km_violations *out,
			     const struct km_json *gw)
{
	struct km_json *tags = km_v_get(gw, "tags");
	size_t n = tags && tags->kind == KM_JSON_OBJECT ? tags->len : 0;
	const char *p = "networking.gateway.tags";
	struct km_str proto = km_v_str(tags, "kuma.io/protocol");
	if (km_v_get(tags, "kuma.io/protocol")) {
		bool tcp = proto.len == 3 && strncasecmp(proto.ptr, "tcp", 3) == 0;
		if (!tcp)
			km_violations_add(
				out, km_path_key(a, p, "kuma.io/protocol"),
				"other values than tcp are not allowed, provided value \"%.*s\"",
				KM_STR_FMT(proto));
	}
	const char **keys = km_arena_alloc(a, (n + 1) * sizeof(*keys));
	for (size_t i = 0; i < n; i++)
		keys[i] = km_arena_strndup(a, tags->members[i].key.ptr, tags->members[i].key.len);
	qsort(keys, n, sizeof(*keys), cmp_cstr);
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i];
		if (!*k)
			km_violations_add(out, p, "tag name must be non-empty");
		for (const char *c = k; *c; c++) {
			if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			      (*c >= '0' && *c <= '9') || strchr(".-_:/", *c))) {
				km_violations_add(
					out, km_path_key(a, p, k),
					"tag name must consist of alphanumeric characters, dots, "
					"dashes, slashes and underscores");
				break;
			}
		}
		struct km_str v = km_v_str(tags, k);
		if (v.len == 0)
			km_violations_add(out, km_path_key(a, p, k), "tag value must be non-empty");
		for (size_t j = 0; j < v.len; j++) {
			char c = v.ptr[j];
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || strchr(".-_:", c))) {
				km_violations_add(
					out, km_path_key(a, p, k),
					"tag value must consist of alphanumeric characters, dots, "
					"dashes and underscores");
				break;
			}
		}
	}
	if (n > 0 && !km_v_get(tags, "kuma.io/service"))
		km_violations_add(out, p, "mandatory tag \"kuma.io/service\" is missing");
}

static void validate_networking(struct km_arena *a, struct km_violations *out,
				const struct km_json *net)
{
	struct km_str addr = km_v_str(net, "address");
	check_address(out, "networking.address", addr);
	struct km_json *ins = km_v_get(net, "inbound");
	for (size_t i = 0; ins && ins->kind == KM_JSON_ARRAY && i < ins->len; i++)
		validate_inbound(a, out, km_v_path(a, "networking.inbound[%zu]", i), ins->items[i],
				 addr);
	struct km_json *obs = km_v_get(net, "outbound");
	for (size_t i = 0; obs && obs->kind == KM_JSON_ARRAY && i < obs->len; i++)
		validate_outbound(a, out, km_v_path(a, "networking.outbound[%zu]", i),
				  obs->items[i]);
	validate_reachable(a, out, km_v_get(net, "transparentProxying"));
}

void km_validate_dataplane(struct km_arena *a, const struct km_resource_doc *doc,
			   struct km_violations *out)
{
	struct km_json *net = km_v_get(doc->spec, "networking");
	if (!net) {
		km_violations_add(out, "networking", "must be defined");
		return;
	}
	struct km_json *admin = km_v_get(net, "admin");
	if (admin) {
		int64_t port = km_v_int(admin, "port", 0);
		struct km_str dp_addr = km_v_str(net, "address");
		struct km_json *ins = km_v_get(net, "inbound");
		bool in_clash = false, out_clash = false;
		for (size_t i = 0; ins && ins->kind == KM_JSON_ARRAY && i < ins->len; i++) {
			const struct km_json *in = ins->items[i];
			struct km_str ip = km_v_str(in, "address");
			if (!ip.len)
				ip = dp_addr;
			struct km_str wip = km_v_str(in, "serviceAddress");
			if (!wip.len)
				wip = ip;
			int64_t p = km_v_int(in, "port", 0);
			int64_t wp = km_v_int(in, "servicePort", 0);
			if (!wp)
				wp = p;
			if ((port == p && loopback_overlap(ip)) ||
			    (port == wp && loopback_overlap(wip)))
				in_clash = true;
		}
		struct km_json *obs = km_v_get(net, "outbound");
		for (size_t i = 0; obs && obs->kind == KM_JSON_ARRAY && i < obs->len; i++) {
			struct km_str ip = km_v_str(obs->items[i], "address");
			if (!ip.len)
				ip = KM_STR("127.0.0.1");
			if (port == km_v_int(obs->items[i], "port", 0) && loopback_overlap(ip))
				out_clash = true;
		}
		if (in_clash)
			km_violations_add(out, "networking.admin.port", "must differ from inbound");
		if (out_clash)
			km_violations_add(out, "networking.admin.port",
					  "must differ from outbound");
	}
	struct km_json *gw = km_v_get(net, "gateway");
	if (gw) {
		if (km_v_len(net, "inbound") > 0)
			km_violations_add(out, "networking.inbound",
					  "inbound cannot be defined for delegated gateways");
		if (km_v_len(net, "listeners") > 0)
			km_violations_add(out, "networking.listeners",
					  "listeners cannot be defined for delegated gateways");
		validate_gateway(a, out, gw);
		validate_networking(a, out, net);
	} else {
		validate_networking(a, out, net);
		validate_listeners(a, out, net);
	}
}

static struct km_str display_name(const struct km_resource_doc *doc)
{
	struct km_str d = km_json_get_string(doc->labels, "kuma.io/display-name");
	return d.len ? d : doc->name;
}

void km_validate_mesh(struct km_arena *a, const struct km_resource_doc *doc,
		      struct km_violations *out)
{
	(void)a;
	struct km_str n = display_name(doc);
	if (n.len)
		km_v_dns1035_label(out, "name", n);
}

void km_validate_zone(struct km_arena *a, const struct km_resource_doc *doc,
		      struct km_violations *out)
{
	km_validate_mesh(a, doc, out);
}
