/* SPDX-License-Identifier: Apache-2.0 */
/* The Kuma 3.0 resource registry as one table (see type.h). Row order is the
 * alphabetical order upstream's /_resources answers with. */
#include "resource/type.h"

/* clang-format off */
const struct km_rtype km_rtypes[] = {
	{"Dataplane", "dataplanes", NULL, "dataplane", "dataplanes", "dp", "Dataplane", "Dataplanes", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | 0, NULL, NULL},
	{"DataplaneInsight", "dataplane-insights", NULL, NULL, NULL, "", "Dataplane Insight", "Dataplane Insights", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_READ_ONLY | KM_RT_INSIGHT, "Dataplane", NULL},
	{"GlobalSecret", "globalsecrets", "global-secrets", "global-secret", "global-secrets", "", "Global Secret", "Global Secrets", KM_SCOPE_GLOBAL,
	 KM_RT_ZONE_LABELS | KM_RT_ADMIN_ONLY | KM_RT_FEDERATION, NULL, NULL},
	{"HostnameGenerator", "hostnamegenerators", NULL, "hostnamegenerator", "hostnamegenerators", "hg", "Hostname Generator", "Hostname Generators", KM_SCOPE_GLOBAL,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION, NULL, "{}"},
	{"Mesh", "meshes", NULL, "mesh", "meshes", "m", "Mesh", "Meshes", KM_SCOPE_GLOBAL,
	 KM_RT_FEDERATION | KM_RT_RFC1035, NULL, NULL},
	{"MeshAccessLog", "meshaccesslogs", NULL, "meshaccesslog", "meshaccesslogs", "mal", "Mesh Access Log", "Mesh Access Logs", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshCircuitBreaker", "meshcircuitbreakers", NULL, "meshcircuitbreaker", "meshcircuitbreakers", "mcb", "Mesh Circuit Breaker", "Mesh Circuit Breakers", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshExternalService", "meshexternalservices", NULL, "meshexternalservice", "meshexternalservices", "extsvc", "Mesh External Service", "Mesh External Services", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION | KM_RT_RFC1035, NULL, "{\"vip\":{}}"},
	{"MeshFaultInjection", "meshfaultinjections", NULL, "meshfaultinjection", "meshfaultinjections", "mfi", "Mesh Fault Injection", "Mesh Fault Injections", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshHTTPRoute", "meshhttproutes", NULL, "meshhttproute", "meshhttproutes", "mhttpr", "Mesh HTTP Route", "Mesh HTTP Routes", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshHealthCheck", "meshhealthchecks", NULL, "meshhealthcheck", "meshhealthchecks", "mhc", "Mesh Health Check", "Mesh Health Checks", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshIdentity", "meshidentities", NULL, "meshidentity", "meshidentities", "mid", "Mesh Identity", "Mesh Identities", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION, NULL, "{}"},
	{"MeshInsight", "mesh-insights", NULL, NULL, NULL, "", "Mesh Insight", "Mesh Insights", KM_SCOPE_GLOBAL,
	 KM_RT_READ_ONLY, NULL, NULL},
	{"MeshLoadBalancingStrategy", "meshloadbalancingstrategies", NULL, "meshloadbalancingstrategy", "meshloadbalancingstrategies", "mlbs", "Mesh Load Balancing Strategy", "Mesh Load Balancing Strategies", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshMetric", "meshmetrics", NULL, "meshmetric", "meshmetrics", "mm", "Mesh Metric", "Mesh Metrics", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_FEDERATION, NULL, NULL},
	{"MeshMultiZoneService", "meshmultizoneservices", NULL, "meshmultizoneservice", "meshmultizoneservices", "mzsvc", "Mesh Multi Zone Service", "Mesh Multi Zone Services", KM_SCOPE_MESH,
	 KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION | KM_RT_RFC1035, NULL, "{}"},
	{"MeshOpenTelemetryBackend", "meshopentelemetrybackends", NULL, "meshopentelemetrybackend", "meshopentelemetrybackends", "motb", "Mesh OpenTelemetry Backend", "Mesh OpenTelemetry Backends", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION, NULL, "{}"},
	{"MeshPassthrough", "meshpassthroughs", NULL, "meshpassthrough", "meshpassthroughs", "mp", "Mesh Passthrough", "Mesh Passthroughs", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_FEDERATION, NULL, NULL},
	{"MeshProxyPatch", "meshproxypatches", NULL, "meshproxypatch", "meshproxypatches", "mpp", "Mesh Proxy Patch", "Mesh Proxy Patches", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_FEDERATION, NULL, NULL},
	{"MeshRateLimit", "meshratelimits", NULL, "meshratelimit", "meshratelimits", "mrl", "Mesh Rate Limit", "Mesh Rate Limits", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshRetry", "meshretries", NULL, "meshretry", "meshretries", "mr", "Mesh Retry", "Mesh Retries", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshService", "meshservices", NULL, "meshservice", "meshservices", "msvc", "Mesh Service", "Mesh Services", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_RFC1035, NULL, "{\"tls\":{},\"dataplaneProxies\":{}}"},
	{"MeshTCPRoute", "meshtcproutes", NULL, "meshtcproute", "meshtcproutes", "mtcpr", "Mesh TCP Route", "Mesh TCP Routes", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshTLS", "meshtlses", NULL, "meshtls", "meshtlses", "mtls", "Mesh TLS", "Mesh TLSes", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshTimeout", "meshtimeouts", NULL, "meshtimeout", "meshtimeouts", "mt", "Mesh Timeout", "Mesh Timeouts", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_TO | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_OUTBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshTrace", "meshtraces", NULL, "meshtrace", "meshtraces", "mtr", "Mesh Trace", "Mesh Traces", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_FEDERATION, NULL, NULL},
	{"MeshTrafficPermission", "meshtrafficpermissions", NULL, "meshtrafficpermission", "meshtrafficpermissions", "mtp", "Mesh Traffic Permission", "Mesh Traffic Permissions", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_POLICY | KM_RT_HAS_RULES | KM_RT_INBOUND | KM_RT_FEDERATION, NULL, NULL},
	{"MeshTrust", "meshtrusts", NULL, "meshtrust", "meshtrusts", "mtrust", "Mesh Trust", "Mesh Trusts", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS | KM_RT_FEDERATION, NULL, "{}"},
	{"MeshZoneAddress", "meshzoneaddresses", NULL, "meshzoneaddress", "meshzoneaddresses", "mza", "Mesh Zone Address", "Mesh Zone Addresses", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS, NULL, NULL},
	{"Secret", "secrets", NULL, "secret", "secrets", "", "Secret", "Secrets", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_ADMIN_ONLY | KM_RT_FEDERATION, NULL, NULL},
	{"ServiceInsight", "service-insights", NULL, NULL, NULL, "", "Service Insight", "Service Insights", KM_SCOPE_MESH,
	 KM_RT_READ_ONLY, NULL, NULL},
	{"Workload", "workloads", NULL, "workload", "workloads", "wl", "Workload", "Workloads", KM_SCOPE_MESH,
	 KM_RT_ZONE_LABELS | KM_RT_NEW_STYLE | KM_RT_HAS_STATUS, NULL, "{\"dataplaneProxies\":{\"connected\":0,\"healthy\":0,\"total\":0}}"},
	{"Zone", "zones", NULL, "zone", "zones", "z", "Zone", "Zones", KM_SCOPE_GLOBAL,
	 KM_RT_ZONE_LABELS | KM_RT_RFC1035, NULL, NULL},
	{"ZoneInsight", "zone-insights", NULL, NULL, NULL, "", "Zone Insight", "Zone Insights", KM_SCOPE_GLOBAL,
	 KM_RT_ZONE_LABELS | KM_RT_READ_ONLY | KM_RT_INSIGHT, "Zone", NULL},
};
/* clang-format on */

const size_t km_rtypes_len = sizeof(km_rtypes) / sizeof(km_rtypes[0]);

const struct km_rtype *km_rtype_by_name(struct km_str name)
{
	for (size_t i = 0; i < km_rtypes_len; i++)
		if (km_str_eqc(name, km_rtypes[i].name))
			return &km_rtypes[i];
	return NULL;
}

const struct km_rtype *km_rtype_by_path(struct km_str path)
{
	for (size_t i = 0; i < km_rtypes_len; i++)
		if (km_str_eqc(path, km_rtypes[i].path) ||
		    (km_rtypes[i].alt_path && km_str_eqc(path, km_rtypes[i].alt_path)))
			return &km_rtypes[i];
	return NULL;
}

const struct km_rtype *km_rtype_by_arg(struct km_str arg)
{
	for (size_t i = 0; i < km_rtypes_len; i++) {
		const struct km_rtype *t = &km_rtypes[i];
		if ((t->kumactl_arg && km_str_eqc(arg, t->kumactl_arg)) ||
		    (t->kumactl_plural && km_str_eqc(arg, t->kumactl_plural)))
			return t;
	}
	/* upstream also accepts the alias without the dash */
	if (km_str_eqc(arg, "globalsecret") || km_str_eqc(arg, "globalsecrets"))
		return km_rtype_by_name(KM_STR("GlobalSecret"));
	return NULL;
}

const struct km_rtype *km_rtype_by_short(struct km_str s)
{
	if (s.len == 0)
		return NULL;
	for (size_t i = 0; i < km_rtypes_len; i++)
		if (km_str_eqc(s, km_rtypes[i].short_name))
			return &km_rtypes[i];
	return NULL;
}
