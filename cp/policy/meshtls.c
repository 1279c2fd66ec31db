/* SPDX-License-Identifier: Apache-2.0 */
/* MeshTLS: the TLS mode of inbounds (Strict, the default, or Permissive)
 * and the TLS version and ciphers of inbound and outbound mesh TLS. Only
 * proxies with a workload identity are touched: their inbound listeners
 * already carry the mesh's DownstreamTlsContext (cp/xds/generate.c). In
 * Permissive mode the listener gets a TLS inspector and three filter
 * chains: plaintext, TLS that is not the mesh's (passed to the
 * application as is) and the mesh's TLS (ALPN "kuma"). */
#include <string.h>

#include "codec/jsonf.h"
#include "cp/policy/policy.h"

static const char *tls_version(struct km_str v)
{
	static const struct {
		const char *api, *envoy;
	} map[] = {{"TLSAuto", "TLS_AUTO"}, {"TLS10", "TLSv1_0"}, {"TLS11", "TLSv1_1"},
		   {"TLS12", "TLSv1_2"},    {"TLS13", "TLSv1_3"}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (km_str_eqc(v, map[i].api))
			return map[i].envoy;
	return NULL;
}

/* commonTlsContext.tlsParams from the conf's tlsVersion and tlsCiphers. */
static void tls_params(struct km_arena *a, struct km_json *transport_socket, const struct km_json *conf)
{
	struct km_json *common = km_json_get(km_json_get(transport_socket, "typedConfig"), "commonTlsContext");
	if (!common || !conf)
		return;
	const struct km_json *ver = km_json_get(conf, "tlsVersion");
	const struct km_json *ciphers = km_json_get(conf, "tlsCiphers");
	const char *min = tls_version(km_json_get_string(ver, "min"));
	const char *max = tls_version(km_json_get_string(ver, "max"));
	bool have_ciphers = ciphers && ciphers->kind == KM_JSON_ARRAY && ciphers->len;
	if (!min && !max && !have_ciphers)
		return;
	struct km_json *p = km_json_object(a);
	if (min)
		km_json_set(a, p, "tlsMinimumProtocolVersion", km_json_cstring(a, min));
	if (max)
		km_json_set(a, p, "tlsMaximumProtocolVersion", km_json_cstring(a, max));
	if (have_ciphers)
		km_json_set(a, p, "cipherSuites", km_json_clone(a, ciphers));
	km_json_set(a, common, "tlsParams", p);
}

/* A copy of the filters for a chain without the mesh's TLS: no client
 * certificate details to forward. */
static struct km_json *plain_filters(struct km_arena *a, const struct km_json *filters)
{
	struct km_json *out = km_json_clone(a, filters);
	for (size_t i = 0; out && out->kind == KM_JSON_ARRAY && i < out->len; i++) {
		struct km_json *tc = km_json_get(out->items[i], "typedConfig");
		if (!tc)
			continue;
		km_json_del(tc, "forwardClientCertDetails");
		km_json_del(tc, "setCurrentClientCertDetails");
	}
	return out;
}

static void permissive(struct km_arena *a, struct km_json *listener, struct km_json *chain)
{
	struct km_json *filters = km_json_get(chain, "filters");
	struct km_json *chains = km_json_array(a);
	km_json_array_push(a, chains,
			   km_json_fmt(a, "{\"filterChainMatch\":{\"transportProtocol\":\"raw_buffer\"},\"filters\":%J}",
				       plain_filters(a, filters)));
	km_json_array_push(a, chains,
			   km_json_fmt(a, "{\"filterChainMatch\":{\"transportProtocol\":\"tls\"},\"filters\":%J}",
				       plain_filters(a, filters)));
	km_json_set(a, chain, "filterChainMatch",
		    km_json_fmt(a, "{\"applicationProtocols\":[\"kuma\"],\"transportProtocol\":\"tls\"}"));
	km_json_array_push(a, chains, chain);
	km_json_set(a, listener, "filterChains", chains);
	cp_policy_ensure_tls_inspector(a, listener);
}

static bool mesh_tls(const struct km_json *obj)
{
	return km_str_eqc(km_json_get_string(km_json_get(obj, "transportSocket"), "name"),
			  "envoy.transport_sockets.tls");
}

/* Outbound mesh TLS follows the Mesh-wide conf: MeshTLS targets the Mesh or
 * Dataplanes, so every inbound has the same catch-all; the first one says. */
static const struct km_json *mesh_conf(struct km_arena *a, const struct cp_policy_matched *mp)
{
	for (size_t i = 0; i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		const struct km_json *conf = in->inbound && in->resource ? cp_policy_inbound_conf(a, in) : NULL;
		if (conf)
			return conf;
	}
	return NULL;
}

const struct km_json *cp_policy_meshtls_outbound_conf(struct cp_policy_apply_ctx *c,
						      const struct cp_policy_matched *mp, const char *kri)
{
	(void)kri;
	return mesh_conf(c->a, mp);
}

void cp_policy_meshtls_apply(struct cp_policy_apply_ctx *c, const struct cp_policy_matched *mp)
{
	struct km_arena *a = c->a;
	struct km_json *listeners = c->rs->by_type[CP_XDS_LISTENER];
	struct km_json *clusters = c->rs->by_type[CP_XDS_CLUSTER];
	for (size_t i = 0; listeners && i < mp->ninbounds; i++) {
		const struct cp_policy_inbound *in = &mp->inbounds[i];
		if (!in->inbound || !in->resource)
			continue;
		struct km_json *l = km_json_get(listeners, in->resource);
		struct km_json *chains = l ? km_json_get(l, "filterChains") : NULL;
		if (!chains || chains->kind != KM_JSON_ARRAY || chains->len != 1 || !mesh_tls(chains->items[0]))
			continue;
		struct km_json *conf = cp_policy_inbound_conf(a, in);
		struct km_json *chain = chains->items[0];
		tls_params(a, km_json_get(chain, "transportSocket"), conf);
		if (km_str_eqc(km_json_get_string(conf, "mode"), "Permissive"))
			permissive(a, l, chain);
	}
	const struct km_json *outbound = NULL;
	for (size_t i = 0; clusters && i < clusters->len; i++) {
		struct km_json *cl = clusters->members[i].val;
		if (!mesh_tls(cl))
			continue;
		if (!outbound && !(outbound = mesh_conf(a, mp)))
			break;
		tls_params(a, km_json_get(cl, "transportSocket"), outbound);
	}
}
