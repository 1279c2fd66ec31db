/* SPDX-License-Identifier: Apache-2.0 */
/* The xDS server: Aggregated Discovery Service over gRPC, both the delta
 * (DeltaAggregatedResources, what kuma-dp's bootstrap asks for) and the
 * state-of-the-world (StreamAggregatedResources) variants. It keeps one
 * stream object per connected proxy, recomputes a mesh's proxies when a write
 * touches that mesh (event driven, no polling), sends only resources whose
 * content changed, registers Dataplanes announced by kuma-dp and maintains
 * their DataplaneInsight. */
#ifndef CP_XDS_SERVER_H
#define CP_XDS_SERVER_H

#include "base/prom.h"
#include "cp/dpserver/server.h"
#include "cp/events.h"
#include "cp/runtime.h"
#include "cp/xds/generate.h"

struct cp_xds_server;

/* Upper bounds (µs) of the generation-time histogram's buckets; the last
 * bucket counts everything slower. */
#define CP_XDS_GEN_BUCKETS 24
extern const unsigned cp_xds_gen_bucket_us[CP_XDS_GEN_BUCKETS - 1];

/* xds_generation's result label */
enum { CP_XDS_SYNC_CHANGED, CP_XDS_SYNC_GENERATED, CP_XDS_SYNC_SKIP, CP_XDS_SYNC_RESULTS };
extern const char *const cp_xds_sync_result[CP_XDS_SYNC_RESULTS];
/* xds_snapshot_resources' buckets: 1, 2, 4, ... 2048 (ExponentialBuckets(1, 2, 12)) */
#define CP_XDS_SNAPRES_NB 12
extern const double cp_xds_snapres_le[CP_XDS_SNAPRES_NB];

struct cp_xds_stats {
	uint64_t streams_active;
	uint64_t responses_sent;
	uint64_t acks, nacks;
	uint64_t regenerations;         /* proxy configs recomputed */
	uint64_t regenerations_noop;    /* ...that changed nothing: nothing sent */
	uint64_t regenerations_skipped; /* proxies a change could not affect: not regenerated */
	uint64_t resources_sent;
	uint64_t resources_shared;  /* outbound resources reused from another proxy's generation */
	uint64_t resources_reused;  /* local resources reused from the proxy's previous generation */
	uint64_t resources_encoded; /* resources generated and encoded */
	uint64_t contexts;   /* mesh contexts built (cp_xds_mesh_build, after changes) */
	uint64_t context_ns; /* their CPU time (not in any proxy's generation) */
	uint64_t contexts_kept; /* rebuilds found unneeded (MeshService status rewrites) */
	uint64_t passes_kept;   /* recompute passes that found the context kept: no proxy looked at */
	uint64_t share_swept;   /* share table entries dropped: no proxy held them any more */
	/* CPU time of building one proxy's configuration (generation,
	 * policies, encoding; not sending, not the mesh context), per bucket,
	 * not cumulative */
	uint64_t gen_hist[CP_XDS_GEN_BUCKETS];
	uint64_t gen_sum_ns;
	/* certificates signed for proxies: CPU time each (same buckets) */
	uint64_t issue_hist[CP_XDS_GEN_BUCKETS];
	uint64_t issue_sum_ns;
	/* upstream's families (cp/metrics.c) */
	uint64_t responses_by_type[CP_XDS_NTYPES];
	uint64_t acks_by_type[CP_XDS_NTYPES], nacks_by_type[CP_XDS_NTYPES];
	uint64_t gen_errors; /* builds that failed: no configuration for the proxy */
	/* xds_generation: milliseconds of a proxy's sync by result, in
	 * DefBuckets (a skipped proxy counts as 0 ms) */
	uint64_t sync_counts[CP_XDS_SYNC_RESULTS][KM_PROM_DEF_NB + 1];
	double sync_sum_ms[CP_XDS_SYNC_RESULTS];
	/* xds_delivery: milliseconds from a configuration ready to its ACK or NACK */
	uint64_t delivery_counts[KM_PROM_DEF_NB + 1];
	double delivery_sum_ms;
	/* xds_snapshot_resources: resources of each type per new snapshot */
	uint64_t snapres_counts[CP_XDS_NTYPES][CP_XDS_SNAPRES_NB + 1];
	double snapres_sum[CP_XDS_NTYPES];
	/* HDS (cp/xds/hds.c) */
	uint64_t hds_streams_active, hds_requests, hds_reports, hds_gen_errors;
	uint64_t hds_gen_counts[KM_PROM_DEF_NB + 1]; /* milliseconds of a specifier */
	double hds_gen_sum_ms;
};

struct cp_xds_server *cp_xds_server_new(struct cp_runtime *rt, struct cp_events *bus);
void cp_xds_server_free(struct cp_xds_server *s);
/* The gRPC methods to register on the dp-server. */
const struct cp_grpc_method *cp_xds_server_methods(struct cp_xds_server *s, size_t *n);
void cp_xds_server_stats(const struct cp_xds_server *s, struct cp_xds_stats *out);
/* Upstream's xds_client_versions: the connected proxies by kuma-dp version
 * (those that named one), one call of <fn> per version. Loop thread. */
void cp_xds_server_client_versions(const struct cp_xds_server *s,
				   void (*fn)(void *ctx, const char *version, size_t n), void *ctx);

#endif
