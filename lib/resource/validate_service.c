/* SPDX-License-Identifier: Apache-2.0 */
/* Validators of the service-like types: MeshService, MeshExternalService and
 * MeshMultiZoneService. Their names become DNS labels, so all of them check
 * the display name as an RFC 1035 label first, as upstream does. Also holds
 * the shared TLS version and secure data source checks. */
#include <string.h>

#include "resource/validate_util.h"

static const char *const app_protocols[] = {"grpc", "http", "http2", "tcp", NULL};

static void rfc1035_name(const struct km_resource_doc *doc, struct km_violations *out)
{
	struct km_str d = km_json_get_string(doc->labels, "kuma.io/display-name");
	struct km_str n = d.len ? d : doc->name;
	if (n.len)
		km_v_dns1035_label(out, "name", n);
}

static struct km_json *arr(const struct km_json *obj, const char *key)
{
	struct km_json *v = km_v_get(obj, key);
	return v && v->kind == KM_JSON_ARRAY ? v : NULL;
}

/* core_meta.ParseProtocol lowercases; SupportedProtocols is the list above */
static bool supported_protocol(struct km_str p)
{
	char low[16];
	if (p.len >= sizeof(low))
		return false;
	for (size_t i = 0; i < p.len; i++)
		low[i] = (char)(p.ptr[i] >= 'A' && p.ptr[i] <= 'Z' ? p.ptr[i] + 32 : p.ptr[i]);
	return km_v_in((struct km_str){low, p.len}, app_protocols);
}

void km_validate_meshservice(struct km_arena *a, const struct km_resource_doc *doc,
			     struct km_violations *out)
{
	rfc1035_name(doc, out);
	struct km_json *ports = arr(doc->spec, "ports");
	for (size_t i = 0; ports && i < ports->len; i++) {
		struct km_str ap = km_v_str(ports->items[i], "appProtocol");
		if (ap.len && !supported_protocol(ap))
			km_violations_add(out, km_v_path(a, "spec.ports[%zu].appProtocol", i), "%s",
					  km_v_one_of_list(a, "appProtocol", app_protocols));
	}
	struct km_json *sel = km_v_get(doc->spec, "selector");
	if (km_v_get(sel, "dataplaneRef") && km_v_get(sel, "dataplaneLabels"))
		km_violations_add(out, "spec.selector",
				  "must specify only one of: dataplaneRef or dataplaneLabels");
}

void km_validate_meshmultizoneservice(struct km_arena *a, const struct km_resource_doc *doc,
				      struct km_violations *out)
{
	rfc1035_name(doc, out);
	struct km_json *ms = km_v_get(km_v_get(doc->spec, "selector"), "meshService");
	if (km_v_len(ms, "matchLabels") == 0)
		km_violations_add(out, "spec.selector.meshService.matchLabels", "cannot be empty");
	struct km_json *ports = arr(doc->spec, "ports");
	if (!ports || ports->len == 0)
		km_violations_add(out, "spec.ports", "cannot be empty");
	for (size_t i = 0; ports && i < ports->len; i++) {
		struct km_json *name = km_v_get(ports->items[i], "name");
		if (name && name->kind == KM_JSON_STRING && name->s.len == 0)
			km_violations_add(out, km_v_path(a, "spec.ports[%zu].name", i),
					  "must not be empty");
		struct km_str ap = km_v_str(ports->items[i], "appProtocol");
		if (!km_v_in(ap, app_protocols))
			km_violations_add(out, km_v_path(a, "spec.ports[%zu].appProtocol", i), "%s",
					  km_v_one_of_list(a, "appProtocol", app_protocols));
	}
}

/* ---- shared TLS / data source checks ---------------------------------------- */

static const char *const tls_versions[] = {"TLSAuto", "TLS10", "TLS11", "TLS12", "TLS13", NULL};

void km_v_tls_version(struct km_arena *a, struct km_violations *out, const char *p,
		      const struct km_json *version)
{
	int order[2] = {-1, -1};
	static const char *const keys[] = {"min", "max"};
	for (int k = 0; k < 2; k++) {
		struct km_json *v = km_v_get(version, keys[k]);
		if (!v)
			continue;
		struct km_str s = v->kind == KM_JSON_STRING ? v->s : KM_STR("");
		if (!km_v_in(s, tls_versions))
			km_v_must_be_one_of(out, km_v_path(a, "%s.%s", p, keys[k]), keys[k],
					    tls_versions);
		else if (!km_str_eqc(s, "TLSAuto"))
			order[k] = s.ptr[4] - '0'; /* TLS1x */
	}
	if (order[0] >= 0 && order[1] >= 0 && order[0] > order[1])
		km_violations_add(out, km_v_path(a, "%s.min", p),
				  "min version must be lower than max");
}

void km_v_secure_data_source(struct km_arena *a, struct km_violations *out, const char *p,
			     const struct km_json *sds)
{
	if (!sds)
		return;
	struct km_str t = km_v_str(sds, "type");
	if (km_str_eqc(t, "EnvVar")) {
		struct km_json *ev = km_v_get(sds, "envVar");
		if (!ev)
			km_violations_add(out, km_v_path(a, "%s.envVar", p), "must be defined");
		else if (!km_v_str(ev, "name").len)
			km_violations_add(out, km_v_path(a, "%s.envVar.name", p),
					  "must be defined");
	} else if (km_str_eqc(t, "InsecureInline")) {
		struct km_json *in = km_v_get(sds, "insecureInline");
		if (!in)
			km_violations_add(out, km_v_path(a, "%s.insecureInline", p),
					  "must be defined");
		else if (!km_v_str(in, "value").len)
			km_violations_add(out, km_v_path(a, "%s.insecureInline.value", p),
					  "must be defined");
	} else if (km_str_eqc(t, "File")) {
		struct km_json *f = km_v_get(sds, "file");
		if (!f)
			km_violations_add(out, km_v_path(a, "%s.file", p), "must be defined");
		else if (!km_v_str(f, "path").len)
			km_violations_add(out, km_v_path(a, "%s.file.path", p), "must be defined");
	} else if (km_str_eqc(t, "Secret")) {
		struct km_json *sr = km_v_get(sds, "secretRef");
		if (!sr) {
			km_violations_add(out, km_v_path(a, "%s.secretRef", p), "must be defined");
		} else {
			struct km_str k = km_v_str(sr, "kind");
			if (!km_str_eqc(k, "Secret"))
				km_violations_add(out, km_v_path(a, "%s.secretRef.kind", p),
						  "%.*s must be one of: Secret", KM_STR_FMT(k));
			if (!km_v_str(sr, "name").len)
				km_violations_add(out, km_v_path(a, "%s.secretRef.name", p),
						  "must be defined");
		}
	} else {
		km_violations_add(out, km_v_path(a, "%s.type", p),
				  "%.*s must be one of: EnvVar, InsecureInline, File, Secret",
				  KM_STR_FMT(t));
	}
}

/* MeshExternalService only allows cluster-side sources */
static void mes_data_source(struct km_arena *a, struct km_violations *out, const char *p,
			    const struct km_json *sds)
{
	if (!sds)
		return;
	struct km_str t = km_v_str(sds, "type");
	if (km_str_eqc(t, "File") || km_str_eqc(t, "EnvVar")) {
		km_violations_add(out, km_v_path(a, "%s.type", p),
				  "%.*s must be one of: Secret, InsecureInline", KM_STR_FMT(t));
		return;
	}
	km_v_secure_data_source(a, out, p, sds);
}

static void mes_verification_sources(struct km_arena *a, struct km_violations *out, const char *p,
				     const struct km_json *ver)
{
	mes_data_source(a, out, km_v_path(a, "%s.caCert", p), km_v_get(ver, "caCert"));
	mes_data_source(a, out, km_v_path(a, "%s.clientCert", p), km_v_get(ver, "clientCert"));
	mes_data_source(a, out, km_v_path(a, "%s.clientKey", p), km_v_get(ver, "clientKey"));
}

static bool valid_port(int64_t p)
{
	return p > 0 && p <= 65535;
}

void km_validate_meshexternalservice(struct km_arena *a, const struct km_resource_doc *doc,
				     struct km_violations *out)
{
	const struct km_json *spec = doc->spec;
	rfc1035_name(doc, out);
	struct km_json *match = km_v_get(spec, "match");
	struct km_str mt = km_v_str(match, "type");
	if (mt.len && !km_str_eqc(mt, "HostnameGenerator"))
		km_violations_add(
			out, "spec.match.type",
			"unrecognized type '%.*s' - only 'HostnameGenerator' is supported",
			KM_STR_FMT(mt));
	if (!valid_port(km_v_int(match, "port", 0)))
		km_violations_add(out, "spec.match.port", "port must be a valid (1-65535)");
	static const char *const match_protocols[] = {"tcp", "grpc", "http", "http2", NULL};
	if (!km_v_in(km_v_str(match, "protocol"), match_protocols))
		km_v_must_be_one_of(out, "spec.match.protocol", "protocol", match_protocols);

	struct km_json *ext = km_v_get(spec, "extension");
	struct km_json *tls = km_v_get(spec, "tls");
	struct km_json *ver = km_v_get(tls, "verification");
	if (!ext) {
		struct km_json *eps = arr(spec, "endpoints");
		for (size_t i = 0; eps && i < eps->len; i++) {
			struct km_str addr = km_v_str(eps->items[i], "address");
			bool ok = km_v_is_ip(addr) || km_v_is_dns_name(addr);
			if (ok && !valid_port(km_v_int(eps->items[i], "port", 0)))
				km_violations_add(out, km_v_path(a, "spec.endpoints[%zu].port", i),
						  "port must be a valid (1-65535)");
			if (!ok)
				km_violations_add(out,
						  km_v_path(a, "spec.endpoints[%zu].address", i),
						  "address has to be a valid IP or hostname");
		}
		if (tls) {
			struct km_json *version = km_v_get(tls, "version");
			if (version)
				km_v_tls_version(a, out, "spec.tls.version", version);
			if (ver) {
				const char *vp = "spec.tls.verification";
				struct km_json *sn = km_v_get(ver, "serverName");
				if (sn && !km_v_is_dns_name(
						  sn->kind == KM_JSON_STRING ? sn->s : KM_STR("")))
					km_violations_add(out, "spec.tls.verification.serverName",
							  "must be a valid DNS name");
				static const char *const modes[] = {"SkipSAN", "SkipCA", "SkipAll",
								    "Secured", NULL};
				struct km_str mode = km_v_str(ver, "mode");
				if (mode.len && !km_v_in(mode, modes))
					km_v_must_be_one_of(out, "spec.tls.verification.mode",
							    "mode", modes);
				struct km_json *sans = arr(ver, "subjectAltNames");
				static const char *const san_types[] = {"Prefix", "Exact", NULL};
				for (size_t i = 0; sans && i < sans->len; i++)
					if (!km_v_in(km_v_str(sans->items[i], "type"), san_types))
						km_v_must_be_one_of(
							out,
							km_v_path(a, "%s.subjectAltNames[%zu].type",
								  vp, i),
							"type", san_types);
				bool cc = km_v_get(ver, "clientCert"),
				     ck = km_v_get(ver, "clientKey");
				if (cc && !ck)
					km_violations_add(
						out, "spec.tls.verification.clientKey",
						"must be defined when clientCert is defined");
				if (!cc && ck)
					km_violations_add(
						out, "spec.tls.verification.clientCert",
						"must be defined when clientKey is defined");
				mes_verification_sources(a, out, vp, ver);
			}
		}
	} else if (ver) {
		mes_verification_sources(a, out, "spec.tls.verification", ver);
	}
	if (ext && !km_v_str(ext, "type").len)
		km_violations_add(out, "spec.extension.type", "must not be empty");
}
