/* SPDX-License-Identifier: Apache-2.0 */
/* Health discovery (HDS) for the proxies kuma-dp starts, as upstream's
 * tracker: Envoy opens the stream from its bootstrap and sends a
 * HealthCheckRequest naming its node; after the node's dataplane token
 * checks out it gets a HealthCheckSpecifier asking for an HTTP check of
 * its own admin /ready (cluster system_envoy_admin) and a TCP check of
 * every inbound with a serviceProbe (cluster localhost:<workload port>),
 * with dpServer.hds.checkDefaults where the probe says nothing, reporting
 * every dpServer.hds.interval. Reports flip the Dataplane's inbounds
 * between Ready and NotReady (state, and health.ready for older readers):
 * an inbound whose check fails, or every inbound while Envoy's /ready
 * fails (draining). Event-driven: a write to the Dataplane re-sends the
 * specifier only when its bytes change; a report equal to the last one
 * writes nothing. */
#ifndef CP_XDS_HDS_H
#define CP_XDS_HDS_H

#include "base/prom.h"
#include "cp/dpserver/server.h"
#include "cp/events.h"
#include "cp/runtime.h"

struct cp_hds;

struct cp_hds *cp_hds_new(struct cp_runtime *rt, struct cp_events *bus);
/* The StreamHealthCheck method for the dp-server. */
struct cp_grpc_method cp_hds_method(struct cp_hds *h);
void cp_hds_free(struct cp_hds *h);

/* For upstream's hds_* metrics (cp/metrics.c). */
struct cp_hds_stats {
	uint64_t streams_active;
	uint64_t requests; /* HealthCheckRequests (a stream's first message) */
	uint64_t reports;  /* EndpointHealthResponses */
	uint64_t gen_errors;
	uint64_t gen_counts[KM_PROM_DEF_NB + 1]; /* CPU milliseconds to make and encode a specifier */
	double gen_sum_ms;
};
void cp_hds_stats(const struct cp_hds *h, struct cp_hds_stats *out);

/* One message of the stream read as the server reads it (fuzzing, tests):
 * 1 a health report (Envoy's own health and how many workload ports it
 * names in *<envoy_healthy>, *<nports>), 0 another message, -1 bytes
 * that do not decode or a report on clusters never asked about. */
int cp_hds_parse_report(struct km_arena *a, const uint8_t *data, size_t len, bool *envoy_healthy, size_t *nports);

#endif
