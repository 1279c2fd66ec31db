/* SPDX-License-Identifier: Apache-2.0 */
/* POST /bootstrap: decode the BootstrapRequest, find or validate the
 * Dataplane, check the CP certificate against the address the proxy used, and
 * render the Envoy bootstrap in protojson shape (camelCase keys, durations as
 * "1s", int64 as strings). All memory is the request arena's. */
#include "cp/xds/bootstrap.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/err.h"
#include "base/log.h"
#include "codec/yaml.h"
#include "cp/runtime.h"
#include "resource/resource.h"
#include "resource/validate.h"

#define LOG                "xds.bootstrap"
#define ADS_CLUSTER        "system_ads"
#define ACCESS_LOG_CLUSTER "system_access_log_sink"
#define CP_VALIDATION_CTX  "cp_validation_ctx"
#define WORKLOAD_LABEL     "kuma.io/workload"

static const char dp_token_required[] =
	"Dataplane Token is required. Generate token using 'kumactl generate dataplane-token > "
	"/path/file' and provide it via --dataplane-token-file=/path/file argument to Kuma DP";

static const char not_ca[] =
	"A data plane proxy is trying to verify the control plane using the certificate which is "
	"not a certificate authority (basic constraint 'CA' is set to 'false').\n"
	"Provide CA that was used to sign a certificate used in the control plane by using "
	"'kuma-dp run --ca-cert-file=file' or via KUMA_CONTROL_PLANE_CA_CERT_FILE";

/* ---- request decoding (Go encoding/json into BootstrapRequest) ---- */

/* The member Go would store into field <name>: keys match case-insensitively
 * and a later duplicate wins. */
static const struct km_json *field(const struct km_json *obj, const char *name)
{
	const struct km_json *v = NULL;
	size_t n = strlen(name);
	if (!obj || obj->kind != KM_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->len; i++)
		if (obj->members[i].key.len == n &&
		    strncasecmp(obj->members[i].key.ptr, name, n) == 0)
			v = obj->members[i].val;
	return v;
}

struct decoder {
	struct km_arena *a;
	struct km_buf *err;
	const char *strct; /* Go struct name for messages */
	int rc;
};

static void type_error(struct decoder *d, const struct km_json *v, const char *fld,
		       const char *type)
{
	static const char *const kinds[] = {"null", "bool", "number", "string", "array", "object"};
	if (d->rc)
		return;
	km_buf_printf(d->err, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
		      kinds[v->kind], d->strct, fld, type);
	d->rc = -KM_E_PARSE;
}

static const char *get_str(struct decoder *d, const struct km_json *obj, const char *name)
{
	const struct km_json *v = field(obj, name);
	if (!v || v->kind == KM_JSON_NULL)
		return "";
	if (v->kind != KM_JSON_STRING) {
		type_error(d, v, name, "string");
		return "";
	}
	return km_arena_strndup(d->a, v->s.ptr, v->s.len);
}

static bool get_bool(struct decoder *d, const struct km_json *obj, const char *name)
{
	const struct km_json *v = field(obj, name);
	if (!v || v->kind == KM_JSON_NULL)
		return false;
	if (v->kind != KM_JSON_BOOL) {
		type_error(d, v, name, "bool");
		return false;
	}
	return v->b;
}

static uint32_t get_u32(struct decoder *d, const struct km_json *obj, const char *name)
{
	const struct km_json *v = field(obj, name);
	if (!v || v->kind == KM_JSON_NULL)
		return 0;
	if (v->kind != KM_JSON_NUMBER || !v->is_int || v->i < 0 || v->i > 0xffffffffLL) {
		type_error(d, v, name, "uint32");
		return 0;
	}
	return (uint32_t)v->i;
}

/* Object member <name> (NULL when absent or null); other kinds are errors. */
static const struct km_json *get_obj(struct decoder *d, const struct km_json *obj, const char *name,
				     const char *type)
{
	const struct km_json *v = field(obj, name);
	if (!v || v->kind == KM_JSON_NULL)
		return NULL;
	if (v->kind != KM_JSON_OBJECT) {
		type_error(d, v, name, type);
		return NULL;
	}
	return v;
}

/* Sets <key> to a string in <out> unless empty (protojson leaves it out). */
static void set_nonempty(struct km_arena *a, struct km_json *out, const char *key, const char *v)
{
	if (v && *v)
		km_json_set(a, out, key, km_json_cstring(a, v));
}

/* {"kumaDp":{...},"envoy":{...}} as protojson prints mesh_proto.Version. */
static struct km_json *decode_version(struct decoder *d, const struct km_json *body)
{
	struct km_arena *a = d->a;
	struct km_json *out = km_json_object(a);
	const char *saved = d->strct;
	d->strct = "BootstrapRequest.version";
	const struct km_json *ver = get_obj(d, body, "version", "types.Version");
	d->strct = "BootstrapRequest.version.kumaDp";
	const struct km_json *kd = get_obj(d, ver, "kumaDp", "types.KumaDpVersion");
	struct km_json *k = km_json_object(a);
	set_nonempty(a, k, "version", get_str(d, kd, "version"));
	set_nonempty(a, k, "gitTag", get_str(d, kd, "gitTag"));
	set_nonempty(a, k, "gitCommit", get_str(d, kd, "gitCommit"));
	set_nonempty(a, k, "buildDate", get_str(d, kd, "buildDate"));
	d->strct = "BootstrapRequest.version.envoy";
	const struct km_json *ev = get_obj(d, ver, "envoy", "types.EnvoyVersion");
	struct km_json *e = km_json_object(a);
	set_nonempty(a, e, "version", get_str(d, ev, "version"));
	set_nonempty(a, e, "build", get_str(d, ev, "build"));
	if (get_bool(d, ev, "kumaDpCompatible"))
		km_json_set(a, e, "kumaDpCompatible", km_json_bool(a, true));
	km_json_set(a, out, "kumaDp", k);
	km_json_set(a, out, "envoy", e);
	d->strct = saved;
	return out;
}

static struct km_json *decode_string_map(struct decoder *d, const struct km_json *body,
					 const char *name)
{
	const struct km_json *m = get_obj(d, body, name, "map[string]string");
	if (!m || !m->len)
		return NULL;
	struct km_json *out = km_json_object(d->a);
	for (size_t i = 0; i < m->len; i++) {
		const struct km_json *v = m->members[i].val;
		if (v->kind != KM_JSON_STRING && v->kind != KM_JSON_NULL) {
			type_error(d, v, name, "string");
			return NULL;
		}
		km_json_set_str(d->a, out, m->members[i].key,
				v->kind == KM_JSON_NULL ? km_json_cstring(d->a, "") :
							  km_json_string(d->a, v->s));
	}
	return out;
}

static struct km_json *decode_features(struct decoder *d, const struct km_json *body)
{
	struct km_json *out = km_json_array(d->a);
	const struct km_json *v = field(body, "features");
	if (!v || v->kind == KM_JSON_NULL)
		return out;
	if (v->kind != KM_JSON_ARRAY) {
		type_error(d, v, "features", "[]string");
		return out;
	}
	for (size_t i = 0; i < v->len; i++) {
		const struct km_json *it = v->items[i];
		if (it->kind != KM_JSON_STRING && it->kind != KM_JSON_NULL) {
			type_error(d, it, "features", "string");
			return out;
		}
		struct km_str s = it->kind == KM_JSON_STRING ? it->s : KM_STR("");
		bool dup = false; /* upstream keeps features in a set */
		for (size_t j = 0; j < out->len && !dup; j++)
			dup = km_str_eq(out->items[j]->s, s);
		if (!dup)
			km_json_array_push(d->a, out, km_json_string(d->a, s));
	}
	return out;
}

/* One redirect flow {"enabled":bool,"port":uint16}. */
static struct km_json *decode_flow(struct decoder *d, const struct km_json *redirect,
				   const char *name, bool *enabled)
{
	const struct km_json *f = get_obj(d, redirect, name, "dataplane.DatalpaneTrafficFlow");
	struct km_json *out = km_json_object(d->a);
	bool en = get_bool(d, f, "enabled");
	const struct km_json *p = field(f, "port");
	int64_t port = 0;
	if (p && p->kind != KM_JSON_NULL) {
		if (p->kind != KM_JSON_NUMBER || !p->is_int || p->i < 0 || p->i > 65535)
			type_error(d, p, "port", "config.Port");
		else
			port = p->i;
	}
	km_json_set(d->a, out, "enabled", km_json_bool(d->a, en));
	km_json_set(d->a, out, "port", km_json_int(d->a, port));
	if (enabled)
		*enabled = en;
	return out;
}

/* dataplaneConfig re-marshalled as upstream's DataplaneConfig struct. */
static struct km_json *decode_tproxy(struct decoder *d, const struct km_json *body, bool *enabled)
{
	struct km_arena *a = d->a;
	const char *saved = d->strct;
	*enabled = false;
	d->strct = "BootstrapRequest.dataplaneConfig";
	const struct km_json *c = get_obj(d, body, "dataplaneConfig", "dataplane.DataplaneConfig");
	if (!c) {
		d->strct = saved;
		return NULL;
	}
	struct km_json *out = km_json_object(a), *r = km_json_object(a), *vnet = km_json_object(a);
	const char *mode = get_str(d, c, "ipFamilyMode");
	char *lower = km_arena_strdup(a, mode);
	for (char *p = lower; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	if (*lower && strcmp(lower, "dualstack") != 0 && strcmp(lower, "ipv4") != 0 && !d->rc) {
		km_buf_printf(d->err, "value '%s' is not a valid IPFamilyMode", mode);
		d->rc = -KM_E_PARSE;
	}
	d->strct = "BootstrapRequest.dataplaneConfig.redirect";
	const struct km_json *red = get_obj(d, c, "redirect", "dataplane.DataplaneRedirect");
	bool in = false, outb = false;
	km_json_set(a, r, "inbound", decode_flow(d, red, "inbound", &in));
	km_json_set(a, r, "outbound", decode_flow(d, red, "outbound", &outb));
	km_json_set(a, r, "dns", decode_flow(d, red, "dns", NULL));
	const struct km_json *vn = get_obj(d, red, "vnet", "dataplane.DataplaneVNet");
	const struct km_json *nets = field(vn, "networks");
	if (nets && nets->kind == KM_JSON_ARRAY && nets->len) {
		struct km_json *arr = km_json_array(a);
		for (size_t i = 0; i < nets->len; i++) {
			if (nets->items[i]->kind != KM_JSON_STRING) {
				type_error(d, nets->items[i], "networks", "string");
				break;
			}
			km_json_array_push(a, arr, km_json_string(a, nets->items[i]->s));
		}
		km_json_set(a, vnet, "networks", arr);
	} else if (nets && nets->kind != KM_JSON_NULL && nets->kind != KM_JSON_ARRAY) {
		type_error(d, nets, "networks", "[]string");
	}
	km_json_set(a, r, "vnet", vnet);
	km_json_set(a, out, "ipFamilyMode", km_json_cstring(a, lower));
	km_json_set(a, out, "redirect", r);
	/* Enabled(): a flow is on and the family is not IPv4-only (the address
	 * is unknown at this point, so IPv4-only counts as off) */
	*enabled = (in || outb) && strcmp(lower, "ipv4") != 0;
	d->strct = saved;
	return out;
}

int cp_bootstrap_request_parse(struct km_arena *a, struct km_str body,
			       struct cp_bootstrap_request *out, struct km_buf *err)
{
	struct km_json *j = NULL;
	memset(out, 0, sizeof(*out));
	if (km_json_parse(a, body.ptr ? body.ptr : "", body.len, &j, err))
		return -KM_E_PARSE;
	if (j->kind != KM_JSON_OBJECT) {
		if (j->kind != KM_JSON_NULL) {
			static const char *const kinds[] = {"null",   "bool",  "number",
							    "string", "array", "object"};
			km_buf_printf(
				err,
				"json: cannot unmarshal %s into Go value of type types.BootstrapRequest",
				kinds[j->kind]);
			return -KM_E_PARSE;
		}
		j = km_json_object(a);
	}
	struct decoder d = {a, err, "BootstrapRequest", 0};
	out->mesh = get_str(&d, j, "mesh");
	out->name = get_str(&d, j, "name");
	out->proxy_type = get_str(&d, j, "proxyType");
	out->token = get_str(&d, j, "dataplaneToken");
	out->token_path = get_str(&d, j, "dataplaneTokenPath");
	out->dp_resource = get_str(&d, j, "dataplaneResource");
	out->host = "";
	out->version = decode_version(&d, j);
	out->ca_cert = get_str(&d, j, "caCert");
	out->dynamic_metadata = decode_string_map(&d, j, "dynamicMetadata");
	out->otel_env = (struct km_json *)get_obj(&d, j, "otelEnv", "xds.OtelBootstrapInventory");
	if (out->otel_env)
		out->otel_env = km_json_clone(a, out->otel_env);
	out->dns_port = get_u32(&d, j, "dnsPort");
	out->readiness_port = get_u32(&d, j, "readinessPort");
	out->app_probe_proxy_enabled = get_bool(&d, j, "appProbeProxyDisabled");
	out->operating_system = get_str(&d, j, "operatingSystem");
	out->features = decode_features(&d, j);
	d.strct = "BootstrapRequest.resources";
	const struct km_json *res = get_obj(&d, j, "resources", "types.ProxyResources");
	const struct km_json *heap = field(res, "maxHeapSizeBytes");
	if (heap && heap->kind != KM_JSON_NULL &&
	    (heap->kind != KM_JSON_NUMBER || !heap->is_int || heap->i < 0))
		type_error(&d, heap, "maxHeapSizeBytes", "uint64");
	d.strct = "BootstrapRequest";
	out->workdir = get_str(&d, j, "workdir");
	d.strct = "BootstrapRequest.metricsResources";
	const struct km_json *mr = get_obj(&d, j, "metricsResources", "types.MetricsResources");
	out->metrics_cert_path = get_str(&d, mr, "certPath");
	out->metrics_key_path = get_str(&d, mr, "keyPath");
	d.strct = "BootstrapRequest";
	out->system_ca_path = get_str(&d, j, "systemCaPath");
	out->transparent_proxy = decode_tproxy(&d, j, &out->transparent_proxy_enabled);
	out->ipv6_enabled = get_bool(&d, j, "ipv6Enabled");
	d.strct = "BootstrapRequest.spireResources";
	const struct km_json *sr = get_obj(&d, j, "spireResources", "types.SpireResources");
	out->spire_socket_path = get_str(&d, sr, "socketPath");
	return d.rc;
}

/* ---- small helpers ---- */

const char *cp_bootstrap_host_only(struct km_arena *a, const char *hostport)
{
	const char *hp = hostport ? hostport : "";
	size_t n = strlen(hp);
	if (hp[0] == '[') {
		const char *end = strchr(hp, ']');
		if (end && end[1] == ':' && !strchr(end + 2, ':') && !strchr(end + 2, '[') &&
		    !strchr(end + 2, ']'))
			return km_arena_strndup(a, hp + 1, (size_t)(end - hp - 1));
		return km_arena_strdup(a, hp);
	}
	const char *colon = strchr(hp, ':');
	if (!colon || strchr(colon + 1, ':') || memchr(hp, '[', n) || memchr(hp, ']', n))
		return km_arena_strdup(a, hp); /* no port (or a bare IPv6 address) */
	return km_arena_strndup(a, hp, (size_t)(colon - hp));
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* govalidator.IsDNSName: labels of [A-Za-z0-9_][A-Za-z0-9_-]{0,62}, dot
 * separated, an optional trailing '.' or '_', not an IP. */
static bool is_dns_name(const char *s)
{
	size_t n = strlen(s), label = 0;
	if (!n || is_ip(s))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '_';
		if (c == '.') {
			if (!label)
				return false;
			label = 0;
		} else if (word || (c == '-' && label)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* Upstream picks V4_ONLY when the xDS host is a DNS name (not localhost)
 * that resolves to IPv4 addresses only. Results are cached for a minute so a
 * slow resolver costs one lookup per host, not one per proxy. */
static const char *dns_lookup_family(const char *host)
{
	static struct {
		char host[256];
		int64_t until;
		const char *family;
	} cache[8];
	static unsigned next;
	if (!is_dns_name(host) || strcmp(host, "localhost") == 0 ||
	    strlen(host) >= sizeof(cache[0].host))
		return NULL;
	int64_t now = km_time_now();
	for (size_t i = 0; i < sizeof(cache) / sizeof(cache[0]); i++)
		if (strcmp(cache[i].host, host) == 0 && cache[i].until > now)
			return cache[i].family;
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	const char *family = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) == 0) {
		bool v6 = false, any = false;
		for (struct addrinfo *p = res; p; p = p->ai_next) {
			any = true;
			if (p->ai_family == AF_INET6)
				v6 = true;
		}
		family = any && !v6 ? "V4_ONLY" : NULL;
		freeaddrinfo(res);
	} else {
		km_info(LOG,
			"error looking up XDS host to determine DnsLookupFamily, falling back to AUTO hostname=%s",
			host);
	}
	unsigned slot = next++ % (sizeof(cache) / sizeof(cache[0]));
	snprintf(cache[slot].host, sizeof(cache[slot].host), "%s", host);
	cache[slot].until = now + 60LL * 1000000000;
	cache[slot].family = family;
	return family;
}

/* Go filepath.Join(dir, file) for the cases that occur: "" dir, trailing or
 * doubled slashes. */
static const char *path_join(struct km_arena *a, const char *dir, const char *file)
{
	if (!dir || !*dir)
		return km_arena_strdup(a, file);
	struct km_buf b = KM_BUF_INIT;
	km_buf_printf(&b, "%s/%s", dir, file);
	char *s = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	char *w = s;
	for (const char *r = s; *r; r++) {
		if (*r == '/' && w > s && w[-1] == '/')
			continue;
		if (*r == '/' && r[1] == '.' && (r[2] == '/' || r[2] == 0)) {
			r++;
			continue;
		}
		*w++ = *r;
	}
	*w = 0;
	return s;
}

/* Socket paths fit the 104-byte Unix limit: at most 98 bytes + ".sock". */
static const char *socket_name(struct km_arena *a, const char *path)
{
	size_t n = strlen(path);
	return km_arena_printf(a, "%.*s.sock", (int)(n > 98 ? 98 : n), path);
}

const char *cp_xds_socket_path(struct km_arena *a, struct km_str workdir, const char *name)
{
	return socket_name(a, path_join(a, km_arena_strndup(a, workdir.ptr ? workdir.ptr : "", workdir.len), name));
}

static const char *b64(struct km_arena *a, struct km_str data)
{
	char *out = km_arena_alloc(a, 4 * ((data.len + 2) / 3) + 1);
	if (data.len)
		EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)data.ptr,
				(int)data.len);
	return out;
}

/* protojson Duration: "1s", "1.500s", "0.000001s". */
static const char *pb_duration(struct km_arena *a, int64_t ns)
{
	int64_t s = ns / 1000000000, f = ns % 1000000000;
	const char *sign = ns < 0 && s == 0 ? "-" : "";
	if (f < 0)
		f = -f;
	if (f == 0)
		return km_arena_printf(a, "%lds", (long)s);
	if (f % 1000000 == 0)
		return km_arena_printf(a, "%s%ld.%03lds", sign, (long)s, (long)(f / 1000000));
	if (f % 1000 == 0)
		return km_arena_printf(a, "%s%ld.%06lds", sign, (long)s, (long)(f / 1000));
	return km_arena_printf(a, "%s%ld.%09lds", sign, (long)s, (long)f);
}

/* ---- rendering (upstream template_v3.go) ---- */

static struct km_json *obj(struct km_arena *a)
{
	return km_json_object(a);
}

static void put(struct km_arena *a, struct km_json *o, const char *k, struct km_json *v)
{
	km_json_set(a, o, k, v);
}

static void put_s(struct km_arena *a, struct km_json *o, const char *k, const char *v)
{
	km_json_set(a, o, k, km_json_cstring(a, v));
}

static void put_i(struct km_arena *a, struct km_json *o, const char *k, int64_t v)
{
	km_json_set(a, o, k, km_json_int(a, v));
}

static struct km_json *arr1(struct km_arena *a, struct km_json *v)
{
	struct km_json *arr = km_json_array(a);
	km_json_array_push(a, arr, v);
	return arr;
}

static struct km_json *typed(struct km_arena *a, const char *type)
{
	struct km_json *o = obj(a);
	put_s(a, o, "@type", type);
	return o;
}

static struct km_json *keepalive(struct km_arena *a)
{
	struct km_json *ka = obj(a), *uco = obj(a);
	put_i(a, ka, "keepaliveProbes", 3);
	put_i(a, ka, "keepaliveTime", 10);
	put_i(a, ka, "keepaliveInterval", 10);
	put(a, uco, "tcpKeepalive", ka);
	return uco;
}

/* clusters_v3.Http2Configurer: explicit HTTP/2 upstream protocol options. */
static struct km_json *http2_options(struct km_arena *a)
{
	struct km_json *opts = typed(
		a, "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
	struct km_json *explicit = obj(a);
	put(a, explicit, "http2ProtocolOptions", obj(a));
	put(a, opts, "explicitHttpConfig", explicit);
	struct km_json *teo = obj(a);
	put(a, teo, "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", opts);
	return teo;
}

static struct km_json *load_assignment(struct km_arena *a, const char *cluster,
				       struct km_json *address)
{
	struct km_json *ep = obj(a), *lb = obj(a), *loc = obj(a), *la = obj(a);
	put(a, ep, "address", address);
	put(a, lb, "endpoint", ep);
	put(a, loc, "lbEndpoints", arr1(a, lb));
	put_s(a, la, "clusterName", cluster);
	put(a, la, "endpoints", arr1(a, loc));
	return la;
}

static struct km_json *pipe_address(struct km_arena *a, const char *path, int mode)
{
	struct km_json *pipe = obj(a), *addr = obj(a);
	put_s(a, pipe, "path", path);
	if (mode)
		put_i(a, pipe, "mode", mode);
	put(a, addr, "pipe", pipe);
	return addr;
}

static struct km_json *socket_address(struct km_arena *a, const char *host, uint32_t port)
{
	struct km_json *sa = obj(a), *addr = obj(a);
	put_s(a, sa, "address", host);
	if (port)
		put_i(a, sa, "portValue", port);
	put(a, addr, "socketAddress", sa);
	return addr;
}

static struct km_json *inline_bytes(struct km_arena *a, struct km_str data)
{
	struct km_json *ds = obj(a);
	put_s(a, ds, "inlineBytes", b64(a, data));
	return ds;
}

static bool use_token_file(const struct cp_bootstrap_params *p)
{
	return p->reloadable_tokens && *p->req->token_path;
}

static struct km_json *grpc_service(struct km_arena *a, const struct cp_bootstrap_params *p)
{
	struct km_json *svc = obj(a);
	if (!use_token_file(p)) {
		struct km_json *eg = obj(a);
		put_s(a, eg, "clusterName", ADS_CLUSTER);
		put(a, svc, "envoyGrpc", eg);
		return svc;
	}
	struct km_json *gg = obj(a);
	const char *host = p->xds_host;
	put_s(a, gg, "targetUri",
	      strchr(host, ':') ? km_arena_printf(a, "[%s]:%u", host, p->xds_port) :
				  km_arena_printf(a, "%s:%u", host, p->xds_port));
	put_s(a, gg, "statPrefix", "ads");
	put_s(a, gg, "credentialsFactoryName", "envoy.grpc_credentials.file_based_metadata");
	struct km_json *cfg = typed(
		a, "type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig");
	struct km_json *sd = obj(a);
	put_s(a, sd, "filename", p->req->token_path);
	put(a, cfg, "secretData", sd);
	struct km_json *plugin = obj(a), *cc = obj(a);
	put_s(a, plugin, "name", "envoy.grpc_credentials.file_based_metadata");
	put(a, plugin, "typedConfig", cfg);
	put(a, cc, "fromPlugin", plugin);
	put(a, gg, "callCredentials", arr1(a, cc));
	static const char *const names[] = {"grpc.keepalive_time_ms", "grpc.keepalive_timeout_ms",
					    "grpc.http2.max_pings_without_data",
					    "grpc.max_receive_message_length"};
	int64_t values[] = {10000, 30000, 0, p->xds_grpc_max_receive_message_bytes};
	struct km_json *args = obj(a), *ca = obj(a);
	for (size_t i = 0; i < 4; i++) {
		struct km_json *v = obj(a);
		put_s(a, v, "intValue", km_arena_printf(a, "%ld", (long)values[i])); /* int64 */
		put(a, args, names[i], v);
	}
	put(a, ca, "args", args);
	put(a, gg, "channelArgs", ca);
	struct km_json *ssl = obj(a), *chc = obj(a);
	put(a, ssl, "rootCerts", inline_bytes(a, p->ca_pem));
	put(a, chc, "sslCredentials", ssl);
	put(a, gg, "channelCredentials", chc);
	put(a, svc, "googleGrpc", gg);
	return svc;
}

static struct km_json *api_config_source(struct km_arena *a, const struct cp_bootstrap_params *p,
					 const char *api_type)
{
	struct km_json *src = obj(a);
	put_s(a, src, "apiType", api_type);
	put_s(a, src, "transportApiVersion", "V3");
	put(a, src, "setNodeOnFirstMessageOnly", km_json_bool(a, true));
	struct km_json *svc = grpc_service(a, p);
	if ((!p->reloadable_tokens || !*p->req->token_path) && *p->req->token) {
		struct km_json *hv = obj(a);
		put_s(a, hv, "key", "authorization");
		put_s(a, hv, "value", p->req->token);
		put(a, svc, "initialMetadata", arr1(a, hv));
	}
	put(a, src, "grpcServices", arr1(a, svc));
	return src;
}

static struct km_json *ads_config_source(struct km_arena *a)
{
	struct km_json *cs = obj(a);
	put(a, cs, "ads", obj(a));
	put_s(a, cs, "initialFetchTimeout", "0s");
	put_s(a, cs, "resourceApiVersion", "V3");
	return cs;
}

static struct km_json *static_clusters(struct km_arena *a, const struct cp_bootstrap_params *p,
				       const char *mesh, const char *name)
{
	struct km_json *clusters = km_json_array(a);
	const char *timeout = pb_duration(a, p->xds_connect_timeout);

	struct km_json *sink = obj(a);
	put_s(a, sink, "name", ACCESS_LOG_CLUSTER);
	put_s(a, sink, "connectTimeout", timeout);
	put(a, sink, "upstreamConnectionOptions", keepalive(a));
	put_s(a, sink, "type", "STATIC");
	const char *al = socket_name(
		a, path_join(a, p->req->workdir, km_arena_printf(a, "kuma-al-%s-%s", name, mesh)));
	put(a, sink, "loadAssignment",
	    load_assignment(a, ACCESS_LOG_CLUSTER, pipe_address(a, al, 0)));
	put(a, sink, "typedExtensionProtocolOptions", http2_options(a));
	km_json_array_push(a, clusters, sink);

	if (use_token_file(p))
		return clusters;
	struct km_json *ads = obj(a);
	put_s(a, ads, "name", ADS_CLUSTER);
	put_s(a, ads, "connectTimeout", timeout);
	put(a, ads, "upstreamConnectionOptions", keepalive(a));
	put_s(a, ads, "type", is_ip(p->xds_host) ? "STATIC" : "STRICT_DNS");
	if (p->dns_lookup_family)
		put_s(a, ads, "dnsLookupFamily", p->dns_lookup_family);
	put(a, ads, "loadAssignment",
	    load_assignment(a, ADS_CLUSTER, socket_address(a, p->xds_host, p->xds_port)));
	put(a, ads, "typedExtensionProtocolOptions", http2_options(a));
	struct km_json *tls = typed(
		a,
		"type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext");
	put_s(a, tls, "sni", p->xds_host);
	struct km_json *ctc = obj(a), *params = obj(a), *sds = obj(a);
	put_s(a, params, "tlsMinimumProtocolVersion", "TLSv1_2");
	put(a, ctc, "tlsParams", params);
	put_s(a, sds, "name", CP_VALIDATION_CTX);
	put(a, ctc, "validationContextSdsSecretConfig", sds);
	put(a, tls, "commonTlsContext", ctc);
	struct km_json *ts = obj(a);
	put_s(a, ts, "name", "envoy.transport_sockets.tls");
	put(a, ts, "typedConfig", tls);
	put(a, ads, "transportSocket", ts);
	km_json_array_push(a, clusters, ads);
	return clusters;
}

static struct km_json *stats_config(struct km_arena *a)
{
	static const char *const tags[][2] = {
		{"name", "^grpc\\.((.+)\\.)"},
		{"status", "^grpc.*streams_closed(_([0-9]+))"},
		{"worker", "(worker_([0-9]+)\\.)"},
		{"listener", "((.+?)\\.)rbac\\."},
	};
	struct km_json *list = km_json_array(a), *sc = obj(a);
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		struct km_json *t = obj(a);
		put_s(a, t, "tagName", tags[i][0]);
		put_s(a, t, "regex", tags[i][1]);
		km_json_array_push(a, list, t);
	}
	put(a, sc, "statsTags", list);
	return sc;
}

static struct km_json *validation_secret(struct km_arena *a, const struct cp_bootstrap_params *p)
{
	struct km_json *sans = km_json_array(a);
	static const char *const types[] = {"DNS", "IP_ADDRESS"};
	for (size_t i = 0; i < 2; i++) {
		struct km_json *m = obj(a), *exact = obj(a);
		put_s(a, m, "sanType", types[i]);
		put_s(a, exact, "exact", p->xds_host);
		put(a, m, "matcher", exact);
		km_json_array_push(a, sans, m);
	}
	struct km_json *vc = obj(a), *secret = obj(a);
	put(a, vc, "matchTypedSubjectAltNames", sans);
	put(a, vc, "trustedCa", inline_bytes(a, p->ca_pem));
	put_s(a, secret, "name", CP_VALIDATION_CTX);
	put(a, secret, "validationContext", vc);
	return secret;
}

static struct km_json *node(struct km_arena *a, const struct cp_bootstrap_params *p)
{
	const struct cp_bootstrap_request *r = p->req;
	struct km_json *n = obj(a), *md = obj(a);
	put_s(a, n, "id", p->id);
	put_s(a, n, "cluster", p->service);
	put(a, md, "version", r->version ? km_json_clone(a, r->version) : obj(a));
	put(a, md, "features", km_json_clone(a, r->features));
	put_s(a, md, "workdir", r->workdir);
	put_s(a, md, "metricsCertPath", r->metrics_cert_path);
	put_s(a, md, "metricsKeyPath", r->metrics_key_path);
	put_s(a, md, "systemCaPath", r->system_ca_path);
	put(a, md, "ipv6Enabled", km_json_bool(a, r->ipv6_enabled));
	put_s(a, md, "spireAgent.socketPath", r->spire_socket_path);
	if (*r->dp_resource)
		put_s(a, md, "dataplane.resource", r->dp_resource);
	if (p->admin_port) {
		put_s(a, md, "dataplane.admin.port", km_arena_printf(a, "%u", p->admin_port));
		put_s(a, md, "dataplane.admin.address", p->admin_address);
		if (*p->admin_socket_path)
			put_s(a, md, "dataplane.admin.socketPath", p->admin_socket_path);
	}
	if (r->dns_port)
		put_s(a, md, "dataplane.dns.port", km_arena_printf(a, "%u", r->dns_port));
	if (r->readiness_port)
		put_s(a, md, "dataplane.readinessReporter.port",
		      km_arena_printf(a, "%u", r->readiness_port));
	if (r->app_probe_proxy_enabled)
		put_s(a, md, "dataplane.appProbeProxy.enabled", "true");
	if (*r->proxy_type)
		put_s(a, md, "dataplane.proxyType", r->proxy_type);
	if (r->dynamic_metadata && r->dynamic_metadata->len)
		put(a, md, "dynamicMetadata", km_json_clone(a, r->dynamic_metadata));
	if (r->transparent_proxy)
		put(a, md, "transparentProxy", km_json_clone(a, r->transparent_proxy));
	if (r->otel_env)
		put(a, md, "otelEnvInventory", km_json_clone(a, r->otel_env));
	put(a, n, "metadata", md);
	return n;
}

static struct km_json *admin(struct km_arena *a, const struct cp_bootstrap_params *p)
{
	struct km_json *ad = obj(a);
	if (*p->admin_socket_path)
		put(a, ad, "address", pipe_address(a, p->admin_socket_path, 0600));
	else
		put(a, ad, "address", socket_address(a, p->admin_address, p->admin_port));
	if (p->admin_access_log_path && *p->admin_access_log_path) {
		struct km_json *fal = typed(
			a,
			"type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog");
		put_s(a, fal, "path", p->admin_access_log_path);
		struct km_json *log = obj(a);
		put_s(a, log, "name", "envoy.access_loggers.file");
		put(a, log, "typedConfig", fal);
		put(a, ad, "accessLog", arr1(a, log));
	}
	return ad;
}

struct km_json *cp_bootstrap_config_build(struct km_arena *a, const struct cp_bootstrap_params *p)
{
	/* upstream re-parses the node id: the mesh is up to the first dot */
	const char *dot = strchr(p->id, '.');
	if (!dot || !dot[1])
		return NULL;
	const char *mesh = km_arena_strndup(a, p->id, (size_t)(dot - p->id));
	const char *name = dot + 1;

	struct km_json *b = obj(a);
	put(a, b, "node", node(a, p));

	struct km_json *layer = obj(a), *sl = obj(a), *lr = obj(a);
	put_i(a, sl, "re2.max_program_size.error_level", 4294967295LL);
	put_i(a, sl, "re2.max_program_size.warn_level", 1000);
	put_s(a, layer, "name", "kuma");
	put(a, layer, "staticLayer", sl);
	put(a, lr, "layers", arr1(a, layer));
	put(a, b, "layeredRuntime", lr);
	put(a, b, "statsConfig", stats_config(a));

	struct km_json *dr = obj(a);
	put(a, dr, "ldsConfig", ads_config_source(a));
	put(a, dr, "cdsConfig", ads_config_source(a));
	put(a, dr, "adsConfig", api_config_source(a, p, "DELTA_GRPC"));
	put(a, b, "dynamicResources", dr);

	struct km_json *sr = obj(a);
	put(a, sr, "secrets", arr1(a, validation_secret(a, p)));
	put(a, sr, "clusters", static_clusters(a, p, mesh, name));
	put(a, b, "staticResources", sr);

	struct km_json *re = obj(a);
	put_s(a, re, "name", "envoy.regex_engines.google_re2");
	put(a, re, "typedConfig",
	    typed(a, "type.googleapis.com/envoy.extensions.regex_engines.v3.GoogleRE2"));
	put(a, b, "defaultRegexEngine", re);

	if (p->hds_enabled)
		put(a, b, "hdsConfig", api_config_source(a, p, "GRPC"));
	if (p->admin_port)
		put(a, b, "admin", admin(a, p));
	return b;
}

void cp_bootstrap_yaml(struct km_buf *out, struct km_json *config)
{
	km_json_sort_keys(config);
	km_yaml_write(out, config);
}

/* ---- certificates ---- */

static X509 *first_cert(const char *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return NULL;
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return x;
}

/* Go x509.Certificate.VerifyHostname: IPs against IP SANs, names against
 * DNS SANs (wildcards allowed), the subject CN never. */
static bool verify_hostname(X509 *x, const char *host)
{
	size_t n = strlen(host);
	char ip[64];
	if (n >= 3 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(ip)) {
		memcpy(ip, host + 1, n - 2);
		ip[n - 2] = 0;
	} else {
		snprintf(ip, sizeof(ip), "%s", host);
	}
	if (is_ip(ip))
		return X509_check_ip_asc(x, ip, 0) == 1;
	return X509_check_host(x, host, n, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT, NULL) == 1;
}

/* %q of the certificate's SANs, IPs first then DNS names, as upstream lists them. */
static void put_sans(struct km_buf *b, X509 *x)
{
	GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int n = names ? sk_GENERAL_NAME_num(names) : 0;
	bool first = true;
	km_buf_putc(b, '[');
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < n; i++) {
			const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
			char text[INET6_ADDRSTRLEN + 1] = "";
			if (pass == 0 && g->type == GEN_IPADD) {
				const unsigned char *d = ASN1_STRING_get0_data(g->d.iPAddress);
				int len = ASN1_STRING_length(g->d.iPAddress);
				static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0,    0,
									   0, 0, 0, 0, 0xff, 0xff};
				if (len == 4)
					inet_ntop(AF_INET, d, text, sizeof(text));
				else if (len == 16 && memcmp(d, v4mapped, 12) == 0)
					inet_ntop(AF_INET, d + 12, text, sizeof(text));
				else if (len == 16)
					inet_ntop(AF_INET6, d, text, sizeof(text));
				else
					snprintf(text, sizeof(text), "?");
			} else if (pass == 1 && g->type == GEN_DNS) {
				const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
				int len = ASN1_STRING_length(g->d.dNSName);
				if (!first)
					km_buf_putc(b, ' ');
				first = false;
				km_buf_putc(b, '"');
				km_buf_append(b, d, (size_t)len);
				km_buf_putc(b, '"');
				continue;
			} else {
				continue;
			}
			if (!first)
				km_buf_putc(b, ' ');
			first = false;
			km_buf_printf(b, "\"%s\"", text);
		}
	}
	km_buf_putc(b, ']');
	GENERAL_NAMES_free(names);
}

static const char *san_mismatch(struct km_arena *a, const char *host, X509 *x)
{
	struct km_buf b = KM_BUF_INIT;
	km_buf_printf(
		&b,
		"A data plane proxy is trying to connect to the control plane using \"%s\" address, "
		"but the certificate in the control plane has the following SANs ",
		host);
	put_sans(&b, x);
	km_buf_printf(
		&b,
		". Either change the --cp-address in kuma-dp to one of those or execute the following steps:\n"
		"1) Generate a new certificate with the address you are trying to use. It is recommended to "
		"use trusted Certificate Authority, but you can also generate self-signed certificates using "
		"'kumactl generate tls-certificate --type=server --hostname=%s'\n"
		"2) Set KUMA_GENERAL_TLS_CERT_FILE and KUMA_GENERAL_TLS_KEY_FILE or the equivalent in Kuma CP "
		"config file to the new certificate.\n"
		"3) Start kuma-dp, the control plane picks up the new certificate on its own.",
		host);
	const char *s = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

/* basicConstraints present with CA:FALSE (Go: BasicConstraintsValid && !IsCA). */
static bool explicitly_not_ca(X509 *x)
{
	uint32_t flags = X509_get_extension_flags(x);
	return (flags & EXFLAG_BCONS) && !(flags & EXFLAG_CA);
}

/* ---- generation (upstream generator.go) ---- */

static void fail(struct cp_bootstrap_result *out, int status, const char *body)
{
	out->status = status;
	out->body = body ? body : "";
	out->config = NULL;
}

static const char *violations_text(struct km_arena *a, const struct km_violations *v)
{
	struct km_buf b = KM_BUF_INIT;
	for (size_t i = 0; i < v->len; i++)
		km_buf_printf(&b, "%s%s: %s", i ? "; " : "", v->items[i].field,
			      v->items[i].message);
	const char *s = km_arena_strdup(a, km_buf_cstr(&b));
	km_buf_fini(&b);
	return s;
}

static bool mesh_exists(struct cp_runtime *rt, struct km_arena *a, struct km_str mesh, int *rc)
{
	struct km_resource m;
	*rc = cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Mesh")), KM_STR(""), mesh, &m);
	return *rc == 0;
}

/* The Dataplane: from the request (validated, never stored) or from the
 * store. Fills <spec>, <labels>, <mesh>; returns false after fail(). */
static bool dataplane_for(struct cp_runtime *rt, struct km_arena *a,
			  const struct cp_bootstrap_request *req, struct cp_bootstrap_result *out,
			  struct km_json **spec, struct km_json **labels, struct km_str *mesh)
{
	int rc;
	if (*req->dp_resource) {
		struct km_json **docs = NULL;
		size_t n = 0;
		struct km_buf err = KM_BUF_INIT;
		struct km_resource_doc d;
		rc = km_yaml_parse(a, req->dp_resource, strlen(req->dp_resource), &docs, &n, &err);
		if (rc == 0 && n == 0) {
			km_buf_puts(&err, "empty resource");
			rc = -KM_E_PARSE;
		}
		if (rc == 0)
			rc = km_resource_doc_from_json(a, docs[0], NULL, &d, &err);
		if (rc == 0 && strcmp(d.type->name, "Dataplane") != 0) {
			km_buf_puts(&err, "invalid resource");
			rc = -EINVAL;
		}
		if (rc) {
			km_error(LOG, "Could not generate a bootstrap configuration err=\"%s\"",
				 km_buf_cstr(&err));
			km_buf_fini(&err);
			fail(out, 500, "");
			return false;
		}
		km_buf_fini(&err);
		struct km_violations v;
		km_violations_init(&v, a);
		if (km_validate_resource(a, &d, &v) || v.len) {
			fail(out, 422, violations_text(a, &v));
			return false;
		}
		if (req->transparent_proxy_enabled) {
			const struct km_json *net = km_json_get(d.spec, "networking");
			const struct km_json *ob = net ? km_json_get(net, "outbound") : NULL;
			if (ob && ob->kind == KM_JSON_ARRAY && ob->len) {
				fail(out, 422,
				     "outbound: should be empty since dataplane is in Transparent Proxying mode");
				return false;
			}
		}
		if (!mesh_exists(rt, a, d.mesh, &rc)) {
			if (rc == -KM_E_NOT_FOUND)
				fail(out, 422,
				     km_arena_printf(a, "mesh: mesh \"%.*s\" does not exist",
						     KM_STR_FMT(d.mesh)));
			else
				fail(out, 500, "");
			return false;
		}
		*spec = d.spec;
		*labels = d.labels;
		*mesh = d.mesh;
		return true;
	}
	struct km_resource r;
	rc = cp_store_get(rt->store, a, km_rtype_by_name(KM_STR("Dataplane")), km_str_c(req->mesh),
			  km_str_c(req->name), &r);
	if (rc) {
		fail(out, rc == -KM_E_NOT_FOUND ? 404 : 500, "");
		return false;
	}
	struct km_resource_doc d;
	if (km_resource_to_doc(a, &r, &d)) {
		fail(out, 500, "");
		return false;
	}
	*spec = d.spec;
	*labels = d.labels;
	*mesh = r.mesh;
	return true;
}

static uint32_t admin_port_of(const struct km_json *spec)
{
	const struct km_json *net = spec ? km_json_get(spec, "networking") : NULL;
	const struct km_json *ad = net ? km_json_get(net, "admin") : NULL;
	const struct km_json *port = ad ? km_json_get(ad, "port") : NULL;
	if (!port || port->kind != KM_JSON_NUMBER || !port->is_int || port->i <= 0 ||
	    port->i > 0xffffffffLL)
		return 0;
	return (uint32_t)port->i;
}

void cp_bootstrap_generate(struct cp_runtime *rt, struct km_arena *a, const char *cp_ca_pem,
			   struct cp_bootstrap_request *req, struct cp_bootstrap_result *out)
{
	const struct cp_config *cfg = rt->cfg;
	memset(out, 0, sizeof(*out));
	out->body = "";
	if (!*req->proxy_type)
		req->proxy_type = "dataplane";
	const char *authn =
		cfg->dp_server.authn.dp_proxy.type ? cfg->dp_server.authn.dp_proxy.type : "";
	bool auth = strcmp(authn, "none") != 0;
	if (auth && strcmp(req->proxy_type, "dataplane") == 0 && !*req->token &&
	    !*req->token_path) {
		fail(out, 422, dp_token_required);
		return;
	}
	const char *xds_host =
		cfg->bootstrap_server.params.xds_host ? cfg->bootstrap_server.params.xds_host : "";
	X509 *served = cp_ca_pem ? first_cert(cp_ca_pem, strlen(cp_ca_pem)) : NULL;
	if (!*xds_host) {
		/* the configured host wins; otherwise the host the proxy dialled must be in the
		 * SANs */
		if (!served) {
			km_error(
				LOG,
				"Could not generate a bootstrap configuration err=\"no dp-server certificate\"");
			fail(out, 500, "");
			return;
		}
		if (!verify_hostname(served, req->host)) {
			fail(out, 400, san_mismatch(a, req->host, served));
			X509_free(served);
			return;
		}
		xds_host = req->host;
	}

	struct cp_bootstrap_params p = {0};
	p.req = req;
	p.id = km_arena_printf(a, "%s.%s", req->mesh, req->name);
	p.admin_address = cfg->bootstrap_server.params.admin_address ?
				  cfg->bootstrap_server.params.admin_address :
				  "";
	p.admin_access_log_path = cfg->bootstrap_server.params.admin_access_log_path;
	p.admin_socket_path = "";
	p.xds_host = xds_host;
	p.xds_port = cfg->bootstrap_server.params.xds_port ? cfg->bootstrap_server.params.xds_port :
							     (uint32_t)cfg->dp_server.port;
	p.xds_connect_timeout = cfg->bootstrap_server.params.xds_connect_timeout;
	p.xds_grpc_max_receive_message_bytes =
		cfg->bootstrap_server.params.xds_grpc_max_receive_message_bytes;
	p.reloadable_tokens = cfg->dp_server.authn.enable_reloadable_tokens;
	if (cfg->bootstrap_server.params.envoy_admin_unix_socket) {
		if (*req->workdir)
			p.admin_socket_path =
				socket_name(a, path_join(a, req->workdir, "kuma-envoy-admin"));
		else
			km_info(LOG,
				"[WARNING] admin unix domain socket enabled but workdir is empty, falling back to TCP admin proxyId=%s",
				p.id);
	}
	if (strcmp(req->proxy_type, "dataplane") != 0) {
		km_error(
			LOG,
			"Could not generate a bootstrap configuration err=\"unknown proxy type %s\"",
			req->proxy_type);
		fail(out, 500, "");
		X509_free(served);
		return;
	}
	p.hds_enabled = cfg->dp_server.hds.enabled;
	struct km_json *spec = NULL, *labels = NULL;
	struct km_str dp_mesh;
	if (!dataplane_for(rt, a, req, out, &spec, &labels, &dp_mesh)) {
		X509_free(served);
		return;
	}
	const struct km_json *net = km_json_get(spec, "networking");
	out->address = km_arena_strndup(a, km_json_get_string(net, "address").ptr,
					km_json_get_string(net, "address").len);
	struct km_str wl = labels ? km_json_get_string(labels, WORKLOAD_LABEL) : KM_STR_NULL;
	p.service = wl.len ? km_arena_strndup(a, wl.ptr, wl.len) : "unknown";
	p.admin_port = admin_port_of(spec);
	if (!p.admin_port)
		p.admin_port = cfg->bootstrap_server.params.admin_port;
	int rc;
	if (!mesh_exists(rt, a, dp_mesh, &rc)) {
		fail(out, rc == -KM_E_NOT_FOUND ? 404 : 500, "");
		X509_free(served);
		return;
	}

	/* the CA handed to Envoy: the request's caCert wins over the served certificate */
	X509 *ca = served;
	if (*req->ca_cert) {
		ca = first_cert(req->ca_cert, strlen(req->ca_cert));
		if (!ca) {
			km_error(
				LOG,
				"Could not generate a bootstrap configuration err=\"could not parse certificate from request .CaCert: could not parse certificate\"");
			fail(out, 500, "");
			X509_free(served);
			return;
		}
		p.ca_pem = km_str_c(req->ca_cert);
	} else if (served) {
		p.ca_pem = km_str_c(cp_ca_pem);
	} else {
		km_error(
			LOG,
			"Could not generate a bootstrap configuration err=\"no dp-server certificate\"");
		fail(out, 500, "");
		return;
	}
	bool bad_ca = explicitly_not_ca(ca);
	if (ca != served)
		X509_free(ca);
	X509_free(served);
	if (bad_ca) {
		fail(out, 400, not_ca);
		return;
	}
	p.dns_lookup_family = dns_lookup_family(p.xds_host);
	out->config = cp_bootstrap_config_build(a, &p);
	if (!out->config) {
		km_error(
			LOG,
			"Could not generate a bootstrap configuration err=\"failed creating bootstrap conf: name must not be empty\"");
		fail(out, 500, "");
		return;
	}
	out->status = 200;
}

/* ---- HTTP ---- */

void cp_bootstrap_handle(struct cp_runtime *rt, const char *cp_ca_pem, struct cp_http_req *req)
{
	struct km_arena *a = req->a;
	struct cp_bootstrap_request br;
	struct km_buf err = KM_BUF_INIT;
	km_buf_reset(&req->out);
	if (cp_bootstrap_request_parse(a, req->body, &br, &err)) {
		km_error(LOG, "Could not parse a request err=\"%s\"", km_buf_cstr(&err));
		km_buf_fini(&err);
		req->status = 400;
		req->content_type = "text/plain; charset=utf-8";
		return;
	}
	km_buf_fini(&err);
	const char *host = cp_http_header(req, ":authority");
	if (!host || !*host)
		host = cp_http_header(req, "host");
	br.host = cp_bootstrap_host_only(a, host);

	struct cp_bootstrap_result res;
	cp_bootstrap_generate(rt, a, cp_ca_pem, &br, &res);
	if (res.status != 200) {
		req->status = res.status;
		req->content_type = "text/plain; charset=utf-8";
		km_buf_puts(&req->out, res.body);
		return;
	}
	struct km_buf yaml = KM_BUF_INIT;
	cp_bootstrap_yaml(&yaml, res.config);
	const char *accept = cp_http_header(req, "accept");
	req->status = 200;
	if (accept && strcmp(accept, "application/json") == 0) {
		req->content_type = "application/json";
		km_buf_puts(&req->out, "{\"bootstrap\":\"");
		km_buf_puts(&req->out, b64(a, (struct km_str){km_buf_cstr(&yaml), yaml.len}));
		km_buf_puts(&req->out,
			    "\",\"kumaSidecarConfiguration\":{\"networking\":{\"address\":");
		km_json_write_string(&req->out, km_str_c(res.address));
		/* upstream never fills metrics, so the nil slice marshals as null */
		km_buf_puts(&req->out, "},\"metrics\":{\"aggregate\":null}}}");
	} else {
		req->content_type = "text/x-yaml";
		km_buf_append(&req->out, yaml.data, yaml.len);
	}
	km_buf_fini(&yaml);
}
