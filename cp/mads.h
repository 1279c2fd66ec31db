/* SPDX-License-Identifier: Apache-2.0 */
/* The monitoring assignment discovery service (MADS v1, port 5676): what
 * Prometheus's kuma_sd_configs polls to learn its scrape targets. POST
 * /v3/discovery:monitoringassignments with a DiscoveryRequest in protobuf
 * JSON answers, for the client id in node.id, one MonitoringAssignment per
 * Dataplane whose MeshMetric has a Prometheus backend of that client id
 * (no clientId: "_kuma-default-client"), as upstream's HTTP endpoint does:
 * long polling with ?fetch-timeout (default
 * monitoringAssignmentServer.defaultFetchTimeout), 304 when the client's
 * version_info is still current at the end of it.
 *
 * Event-driven: assignments are recomputed only after a write to a Mesh,
 * Dataplane or MeshMetric, never on a timer: for the next request that does
 * not hold the current version, or, when polls are waiting, 50 ms after the
 * write (writes in a burst coalesce; after a recomputation that took T, not
 * before 3T passed, so at scale it keeps at most a quarter of the loop). A
 * version is the hash of the client's assignments, so a write that changes
 * none wakes nobody. A recomputation re-reads only the records written since
 * the last (a kept mesh context cache per mesh with MeshMetrics) and matches
 * only the Dataplanes that changed, unless the mesh's MeshMetrics did. */
#ifndef CP_MADS_H
#define CP_MADS_H

#include "cp/events.h"
#include "cp/manager.h"

struct cp_mads;

/* Starts serving on monitoringAssignmentServer.port (TLS with tlsEnabled);
 * NULL and an error logged when it cannot listen. */
struct cp_mads *cp_mads_start(struct cp_runtime *rt, struct cp_events *bus);
int cp_mads_port(const struct cp_mads *m);

struct cp_mads_stats {
	uint64_t builds;   /* assignment recomputations */
	uint64_t build_ns; /* their CPU time (the loop thread's) */
	uint64_t matched;  /* Dataplanes matched to MeshMetrics anew (the others kept theirs) */
	uint64_t responses; /* 200 answers (initial fetches and woken polls) */
	uint64_t waiting;  /* long polls waiting now */
};
/* A DiscoveryRequest body (protobuf JSON, proto or JSON field names) and the
 * ?fetch-timeout value, read as the endpoint reads them: 0 with <out>
 * filled (strings in <a> or the body), or -1 with the 400's title and
 * detail. Every request goes through it (and the mads fuzz driver). */
struct cp_mads_request {
	struct km_str client;  /* node.id */
	struct km_str version; /* version_info */
	int64_t timeout_ns;    /* the fetch timeout, else <default_timeout_ns> */
};
int cp_mads_parse_request(struct km_arena *a, const char *body, size_t len, const struct km_str *fetch_timeout,
			  int64_t default_timeout_ns, struct cp_mads_request *out, const char **title, const char **detail);

/* Zeroes when <m> is NULL (the server is off). */
void cp_mads_stats(const struct cp_mads *m, struct cp_mads_stats *out);
/* Answers the waiting requests (304) and stops. */
void cp_mads_stop(struct cp_mads *m);

#endif
