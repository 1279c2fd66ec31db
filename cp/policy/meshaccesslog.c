/* SPDX-License-Identifier: Apache-2.0 */
/* MeshAccessLog: access logs of inbounds (from rules: each rule's backends,
 * a CEL filter on the peer for a rule with matches) and of outbound
 * listeners (the destination's backends for every request; with HTTP, a
 * route with a rule of its own logs to that rule's backends instead: the
 * route carries its kri as metadata, a Lua filter first in the HCM copies
 * it to dynamic metadata, and metadata filters on the logs pick by it).
 * Logs go into the HTTP connection manager or the TCP proxy of each filter
 * chain. Formats are upstream's: a plain text line (its default ones when
 * none is given) or JSON fields, the %KUMA_*% placeholders replaced with
 * this proxy's values. File backends write where they say; Tcp backends
 * write JSON lines {"address", "message"} to the named pipe kuma-dp reads
 * (<workdir>/kuma-al-<name>-<mesh>.sock) and forwards to the address.
 * OpenTelemetry backends need the OTLP access-log protos, which the
 * pinned package lacks (docs/compatibility.md). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "codec/jsonf.h"
#include "cp/policy/policy.h"
#include "cp/xds/bootstrap.h"

#define FILE_LOG "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
#define ROUTES_NS "kuma.routes"
#define ROUTE_KEY "route_kri"

static const char DEFAULT_TCP[] =
	"[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%(%KUMA_SOURCE_SERVICE%)->"
	"%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, sent %BYTES_SENT% bytes, received: "
	"%BYTES_RECEIVED% bytes";
static const char DEFAULT_HTTP[] =
	"[%START_TIME%] %KUMA_MESH% \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
	"%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
	"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
	"\"%REQ(X-B3-TRACEID?X-DATADOG-TRACEID)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" "
	"\"%KUMA_SOURCE_SERVICE%\" \"%KUMA_DESTINATION_SERVICE%\" \"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%\" "
	"\"%UPSTREAM_HOST%\"";

static const char LUA_COPY[] = "function envoy_on_request(handle)\n"
			       "  local meta = handle:metadata():get(\"" ROUTE_KEY "\")\n"
			       "  if meta ~= nil then\n"
			       "    handle:streamInfo():dynamicMetadata():set(\"" ROUTES_NS "\", \"" ROUTE_KEY
			       "\", meta)\n"
			       "  end\n"
			       "end\n";

/* What the %KUMA_*% placeholders stand for. */
struct values {
	struct km_str source, source_ip, dest, mesh, zone, workload;
	const char *direction;
	const char *tcp_sink; /* kuma-dp's named pipe for Tcp backends */
};

static size_t len_of(const struct km_json *v)
{
	return v && v->kind == KM_JSON_ARRAY ? v->len : 0;
}

/* <format> with every placeholder replaced, in upstream's order. */
static char *interpolate(struct km_arena *a, struct km_str format, const struct values *v)
{
	const struct {
		const char *key;
		struct km_str val;
	} subs[] = {
	    {"%KUMA_SOURCE_ADDRESS%", km_str_c(km_arena_printf(a, "%.*s:0", KM_STR_FMT(v->source_ip)))},
	    {"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%", v->source_ip},
	    {"%KUMA_SOURCE_SERVICE%", v->source},
	    {"%KUMA_DESTINATION_SERVICE%", v->dest},
	    {"%KUMA_MESH%", v->mesh},
	    {"%KUMA_TRAFFIC_DIRECTION%", km_str_c(v->direction)},
	    {"%KUMA_ZONE%", v->zone},
	    {"%KUMA_WORKLOAD%", v->workload},
	};
	struct km_buf cur = KM_BUF_INIT, next = KM_BUF_INIT;
	km_buf_add(&cur, format.ptr, format.len);
	for (size_t s = 0; s < sizeof(subs) / sizeof(subs[0]); s++) {
		size_t klen = strlen(subs[s].key);
		km_buf_reset(&next);
		for (size_t i = 0; i < cur.len;) {
			if (i + klen <= cur.len && memcmp(cur.data + i, subs[s].key, klen) == 0) {
				km_buf_add(&next, subs[s].val.ptr, subs[s].val.len);
				i += klen;
			} else {
				km_buf_add(&next, cur.data + i, 1);
				i++;
			}
		}
		struct km_buf t = cur;
		cur = next;
		next = t;
	}
	char *out = km_arena_strndup(a, cur.data ? cur.data : "", cur.len);
	km_buf_fini(&cur);
	km_buf_fini(&next);
	return out;
}

/* A backend's format: plain text (the default line unless it gives one)
 * or JSON fields, placeholders filled; *<omit>: omitEmptyValues. Returns
 * the text line (with its newline) or, for JSON, NULL with *<fields>. */
static char *format_of(struct km_arena *a, const struct km_json *fmt, const char *dflt, const struct values *v,
		       struct km_json **fields, bool *omit)
{
	const struct km_json *o = km_json_get(fmt, "omitEmptyValues");
	*omit = o && o->kind == KM_JSON_BOOL && o->b;
	*fields = NULL;
	const struct km_json *json = km_json_get(fmt, "json");
	if (fmt && km_str_eqc(km_json_get_string(fmt, "type"), "Json") && json) {
		*fields = km_json_object(a);
		for (size_t i = 0; i < len_of(json); i++) {
			struct km_str key = km_json_get_string(json->items[i], "key");
			km_json_set_str(a, *fields, key,
					km_json_cstring(a, interpolate(a, km_json_get_string(json->items[i], "value"), v)));
		}
		return NULL;
	}
	struct km_str plain = fmt ? km_json_get_string(fmt, "plain") : KM_STR("");
	if (!plain.len)
		plain = km_str_c(dflt);
	return km_arena_printf(a, "%s\n", interpolate(a, plain, v));
}

/* The access log of one File or Tcp backend, or NULL (another kind). */
static struct km_json *file_log(struct km_arena *a, const struct km_json *backend, const char *dflt,
				const struct values *v)
{
	struct km_str type = km_json_get_string(backend, "type");
	const struct km_json *file = km_json_get(backend, "file"), *tcp = km_json_get(backend, "tcp");
	struct km_json *lf, *fields;
	bool omit;
	struct km_str path;
	if (km_str_eqc(type, "File") && file) {
		path = km_json_get_string(file, "path");
		char *line = format_of(a, km_json_get(file, "format"), dflt, v, &fields, &omit);
		lf = line ? km_json_fmt(a, "{\"textFormatSource\":{\"inlineString\":%s}}", line)
			  : km_json_fmt(a, "{\"jsonFormat\":%T}", fields);
	} else if (km_str_eqc(type, "Tcp") && tcp && v->tcp_sink) {
		/* one JSON line per entry for kuma-dp: where to, and what */
		path = km_str_c(v->tcp_sink);
		struct km_str addr = km_json_get_string(tcp, "address");
		char *line = format_of(a, km_json_get(tcp, "format"), dflt, v, &fields, &omit);
		lf = km_json_fmt(a, "{\"jsonFormat\":{\"address\":%S,\"message\":%T}}", &addr,
				 line ? km_json_cstring(a, line) : fields);
	} else {
		return NULL;
	}
	if (omit)
		km_json_set(a, lf, "omitEmptyValues", km_json_bool(a, true));
	return km_json_fmt(a,
			   "{\"name\":\"envoy.access_loggers.file\",\"typedConfig\":{\"@type\":\"" FILE_LOG
			   "\",\"path\":%S,\"logFormat\":%T}}",
			   &path, lf);
}

/* Appends the logs of <conf>'s backends to <out>, each with <filter>. */
static void conf_logs(struct km_arena *a, const struct km_json *conf, const char *dflt, const struct values *v,
		      const struct km_json *filter, struct km_json *out)
{
	const struct km_json *backends = km_json_get(conf, "backends");
	for (size_t i = 0; i < len_of(backends); i++) {
		struct km_json *l = file_log(a, backends->items[i], dflt, v);
		if (!l)
			continue;
		if (filter)
			km_json_set(a, l, "filter", km_json_clone(a, filter));
		km_json_array_push(a, out, l);
	}
}

/* Adds <logs> to every HTTP connection manager and TCP proxy of <l>. */
static void add_logs(struct km_arena *a, struct km_json *l, const struct km_json *logs)
{
	if (!logs->len)
		return;
	const struct km_json *chains = km_json_get(l, "filterChains");
	for (size_t c = 0; c < len_of(chains); c++) {
		const struct km_json *filters = km_json_get(chains->items[c], "filters");
		for (size_t f = 0; f < len_of(filters); f++) {
			struct km_str name = km_json_get_string(filters->items[f], "name");
			if (!km_str_eqc(name, "envoy.filters.network.http_connection_manager") &&
			    !km_str_eqc(name, "envoy.filters.network.tcp_proxy"))
				continue;
			struct km_json *tc = km_json_get(filters->items[f], "typedConfig");
			struct km_json *al = km_json_get(tc, "accessLog");
			if (!al || al->kind != KM_JSON_ARRAY) {
				al = km_json_array(a);
				km_json_set(a, tc, "accessLog", al);
			}
			for (size_t i = 0; i < logs->len; i++)
				km_json_array_push(a, al, km_json_clone(a, logs->items[i]));
		}
	}
}

/* The CEL expression of an inbound match (peer SPIFFE ID, SNI), or NULL. */
static const char *cel(struct km_arena *a, const struct km_json *match)
{
	struct km_buf b = KM_BUF_INIT;
	const struct km_json *sp = km_json_get(match, "spiffeID");
	if (sp) {
		struct km_buf q = KM_BUF_INIT;
		km_json_write_string(&q, km_json_get_string(sp, "value"));
		if (km_str_eqc(km_json_get_string(sp, "type"), "Prefix"))
			km_buf_printf(&b, "connection.uri_san_peer_certificate.startsWith(%s)", km_buf_cstr(&q));
		else
			km_buf_printf(&b, "connection.uri_san_peer_certificate == %s", km_buf_cstr(&q));
		km_buf_fini(&q);
	}
	const struct km_json *sni = km_json_get(match, "sni");
	if (sni) {
		struct km_buf q = KM_BUF_INIT;
		km_json_write_string(&q, km_json_get_string(sni, "value"));
		km_buf_printf(&b, "%sconnection.requested_server_name == %s", b.len ? " && " : "", km_buf_cstr(&q));
		km_buf_fini(&q);
	}
	char *out = b.len ? km_arena_strndup(a, b.data, b.len) : NULL;
	km_buf_fini(&b);
	return out;
}

/* ---- the proxy's values ---- */

static void proxy_values(const struct cp_policy_apply_ctx *c, struct values *v)
{
	const struct cp_xds_dataplane *dp = c->dp;
	struct km_arena *a = c->a;
	struct km_str wl = km_json_get_string(dp->labels, "kuma.io/workload");
	v->source = wl.len ? wl : KM_STR("unknown");
	v->source_ip = km_json_get_string(km_json_get(dp->spec, "networking"), "address");
	v->mesh = dp->res.mesh;
	v->tcp_sink = cp_xds_socket_path(
	    a, c->md ? c->md->workdir : KM_STR(""),
	    km_arena_printf(a, "kuma-al-%.*s-%.*s", KM_STR_FMT(dp->res.name), KM_STR_FMT(dp->res.mesh)));
	v->zone = km_json_get_string(dp->labels, "kuma.io/zone");
	v->workload = wl.len ? km_str_c(km_arena_printf(
				       a, "kri_wl_%.*s_%.*s_%.*s_%.*s_", KM_STR_FMT(dp->res.mesh), KM_STR_FMT(v->zone),
				       KM_STR_FMT(km_json_get_string(dp->labels, "k8s.kuma.io/namespace")), KM_STR_FMT(wl)))
			     : KM_STR("");
}

static bool http_listener(const struct km_json *l)
{
	const struct km_json *chains = km_json_get(l, "filterChains");
	return len_of(chains) && cp_policy_chain_hcm(chains->items[0]) != NULL;
}

/* ---- inbounds ---- */

static void inbounds(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp, const struct values *pv)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		struct km_json *l = in->inbound && in->nrules ? km_json_get(listeners, in->resource) : NULL;
		if (!l)
			continue;
		struct values v = *pv;
		v.source = KM_STR("unknown");
		v.direction = "INBOUND";
		struct km_str section = km_json_get_string(in->inbound, "name");
		struct km_str wl = km_json_get_string(c->dp->labels, "kuma.io/workload");
		v.dest = section.len ? km_str_c(km_arena_printf(a, "kri_dp_%.*s_%.*s_%.*s_%.*s_%.*s",
								KM_STR_FMT(c->dp->res.mesh), KM_STR_FMT(v.zone),
								KM_STR_FMT(km_json_get_string(c->dp->labels,
											   "k8s.kuma.io/namespace")),
								KM_STR_FMT(c->dp->res.name), KM_STR_FMT(section)))
			 : wl.len    ? wl
				     : KM_STR("unknown");
		const char *dflt =
			cp_xds_is_http(km_json_get_string(in->inbound, "protocol")) ? DEFAULT_HTTP : DEFAULT_TCP;
		struct km_json *logs = km_json_array(a);
		for (size_t r = 0; r < in->nrules; r++) {
			const char *expr = in->rules[r].match ? cel(a, in->rules[r].match) : NULL;
			struct km_json *filter =
				expr ? km_json_fmt(a,
						   "{\"extensionFilter\":{\"name\":"
						   "\"envoy.access_loggers.extension_filters.cel\",\"typedConfig\":{\"@type\":"
						   "\"type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3."
						   "ExpressionFilter\",\"expression\":%s}}}",
						   expr)
				     : NULL;
			conf_logs(a, in->rules[r].conf, dflt, &v, filter, logs);
			if (in->rules[r].match && km_json_get(in->rules[r].match, "sni"))
				cp_policy_ensure_tls_inspector(a, l);
		}
		add_logs(a, l, logs);
	}
}

/* ---- outbounds ---- */

/* A route's kri as upstream prints it after parsing the route's name: the
 * section name's '_' dropped (rule_0 -> rule0). */
static char *route_id(struct km_arena *a, struct km_str name)
{
	char *out = km_arena_strndup(a, name.ptr, name.len);
	size_t seen = 0, w = 0;
	for (size_t i = 0; out[i]; i++) {
		if (out[i] == '_' && ++seen > 6)
			continue;
		out[w++] = out[i];
	}
	out[w] = 0;
	return out;
}

struct route_log {
	const char *id;
	const struct km_json *conf;
};

static int cmp_route_logs(const void *x, const void *y)
{
	return strcmp(((const struct route_log *)x)->id, ((const struct route_log *)y)->id);
}

static void outbound(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp, struct km_json *l,
		     const char *kri, const struct values *pv)
{
	struct km_arena *a = c->a;
	const struct cp_policy_to_rule *r = cp_policy_to_lookup(mp, kri);
	const struct cp_xds_port *port = cp_xds_mesh_port_by_kri(a, c->m, km_str_c(kri));
	struct values v = *pv;
	v.direction = "OUTBOUND";
	v.dest = KM_STR("");
	for (size_t s = 0; port && s < c->m->nservices; s++)
		for (size_t p = 0; p < c->m->services[s].nports; p++)
			if (&c->m->services[s].ports[p] == port)
				v.dest = c->m->services[s].store_name;
	bool http = http_listener(l);
	const char *dflt = http ? DEFAULT_HTTP : DEFAULT_TCP;
	struct km_json *logs = km_json_array(a);
	if (r)
		conf_logs(a, r->conf, dflt, &v, http ? km_json_fmt(a, "{\"metadataFilter\":{\"matcher\":{\"filter\":\"" ROUTES_NS
								   "\",\"path\":[{\"key\":\"" ROUTE_KEY "\"}],\"value\":"
								   "{\"nullMatch\":{}}},\"matchIfKeyNotFound\":true}}")
						     : NULL,
			  logs);
	/* routes with a rule of their own */
	struct km_json *hcm = http ? cp_policy_chain_hcm(km_json_get(l, "filterChains")->items[0]) : NULL;
	struct km_json *vhs = km_json_get(km_json_get(hcm, "routeConfig"), "virtualHosts");
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < len_of(vhs); i++)
		cap += len_of(km_json_get(vhs->items[i], "routes"));
	struct route_log *rl = km_arena_alloc(a, (cap + 1) * sizeof(*rl));
	for (size_t i = 0; i < len_of(vhs); i++) {
		const struct km_json *routes = km_json_get(vhs->items[i], "routes");
		for (size_t k = 0; k < len_of(routes); k++) {
			struct km_str name = km_json_get_string(routes->items[k], "name");
			const struct cp_policy_to_rule *rr = cp_policy_route_lookup(mp, name);
			if (!rr || !len_of(km_json_get(rr->conf, "backends")))
				continue;
			const char *id = route_id(a, name);
			km_json_set(a, cp_policy_obj(a, routes->items[k], "metadata"), "filterMetadata",
				    km_json_fmt(a, "{\"envoy.filters.http.lua\":{\"" ROUTE_KEY "\":%s}}", id));
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = strcmp(rl[j].id, id) == 0;
			if (!seen)
				rl[n++] = (struct route_log){id, rr->conf};
		}
	}
	qsort(rl, n, sizeof(*rl), cmp_route_logs);
	bool any = false;
	for (size_t i = 0; i < n; i++) {
		size_t before = logs->len;
		conf_logs(a, rl[i].conf, dflt, &v,
			  km_json_fmt(a,
				      "{\"metadataFilter\":{\"matcher\":{\"filter\":\"" ROUTES_NS "\",\"path\":[{\"key\":\"" ROUTE_KEY
				      "\"}],\"value\":{\"stringMatch\":{\"exact\":%s}}},\"matchIfKeyNotFound\":false}}",
				      rl[i].id),
			  logs);
		any |= logs->len > before;
	}
	add_logs(a, l, logs);
	if (any) {
		struct km_json *hf = km_json_get(hcm, "httpFilters");
		struct km_json *lua = km_json_fmt(
		    a,
		    "{\"name\":\"envoy.filters.http.lua\",\"typedConfig\":{\"@type\":"
		    "\"type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua\",\"defaultSourceCode\":"
		    "{\"inlineString\":%s}}}",
		    LUA_COPY);
		if (hf && hf->kind == KM_JSON_ARRAY) {
			km_json_array_push(a, hf, lua);
			memmove(hf->items + 1, hf->items, (hf->len - 1) * sizeof(*hf->items));
			hf->items[0] = lua;
		}
	}
}

void cp_policy_meshaccesslog_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct values v;
	proxy_values(c, &v);
	inbounds(c, mp, &v);
	bool routes = cp_policy_has_route_rules(mp);
	struct km_json *l;
	size_t i = 0;
	for (const char *kri; mp->nto && (kri = cp_policy_next_outbound(c, &i, &l));)
		if (routes || cp_policy_to_lookup(mp, kri))
			outbound(c, mp, l, kri, &v);
}

void cp_policy_meshaccesslog_key(const struct cp_policy_prepared *pp, const struct cp_policy_to_rule *r,
				 struct km_buf *key)
{
	/* the proxy's values the formats are filled with */
	const struct cp_xds_dataplane *dp = pp->c.dp;
	/* a Tcp backend writes to this proxy's own pipe: its name and work dir */
	bool tcp = false;
	const struct km_json *backends = r ? km_json_get(r->conf, "backends") : NULL;
	for (size_t i = 0; !tcp && i < len_of(backends); i++)
		tcp = km_str_eqc(km_json_get_string(backends->items[i], "type"), "Tcp");
	if (tcp || !r) {
		struct km_str wd = pp->c.md ? pp->c.md->workdir : KM_STR("");
		km_buf_add(key, "|t", 2);
		km_buf_add(key, dp->res.name.ptr, dp->res.name.len);
		km_buf_add(key, "|w", 2);
		km_buf_add(key, wd.ptr, wd.len);
	}
	struct km_str parts[] = {km_json_get_string(dp->labels, "kuma.io/workload"),
				 km_json_get_string(km_json_get(dp->spec, "networking"), "address"),
				 km_json_get_string(dp->labels, "kuma.io/zone"),
				 km_json_get_string(dp->labels, "k8s.kuma.io/namespace"), dp->res.mesh};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		km_buf_add(key, "|v", 2);
		km_buf_add(key, parts[i].ptr, parts[i].len);
	}
}
