/* SPDX-License-Identifier: Apache-2.0 */
/* MeshInsight computation, event driven: a write in a mesh marks the mesh
 * dirty and a timer (at most one run per <min_interval>) recomputes the
 * dirty meshes only. No periodic full resync: every input is a store write. */
#ifndef CP_INSIGHTS_H
#define CP_INSIGHTS_H

#include "base/prom.h"
#include "cp/events.h"
#include "cp/runtime.h"

struct cp_insights;

struct cp_insights *cp_insights_start(struct cp_runtime *rt, struct cp_events *bus,
				      uint64_t min_interval_ms);
void cp_insights_stop(struct cp_insights *ins);
/* Only the leader computes insights; a new leader recomputes every mesh. */
void cp_insights_set_active(struct cp_insights *ins, bool active);
/* Recomputes every dirty mesh now (tests, shutdown). */
void cp_insights_flush(struct cp_insights *ins);

/* Flushes that recomputed at least one mesh, and their wall time on the
 * loop thread (GET :5680/metrics). */
void cp_insights_stats(const struct cp_insights *ins, uint64_t *passes, double *seconds);

/* Upstream's insights_resyncer_* histograms, in milliseconds (DefBuckets):
 * how long the resyncer sat idle before a flush, how long a mesh waited from
 * its first event to its recount, and each recount by result (0: the
 * MeshInsight did not change, 1: written). */
struct cp_insights_hists {
	uint64_t idle_counts[KM_PROM_DEF_NB + 1];
	double idle;
	uint64_t to_process_counts[KM_PROM_DEF_NB + 1];
	double to_process;
	uint64_t processing_counts[2][KM_PROM_DEF_NB + 1];
	double processing[2];
};
void cp_insights_hists(const struct cp_insights *ins, struct cp_insights_hists *out);

/* What the control plane's controllers need of a DataplaneInsight. */
struct cp_insight_fact {
	bool online; /* the last subscription is connected */
	char kuma_dp[48], envoy[48]; /* its versions (inline: no arena per insight) */
};
/* The memo computation of that fact (cp/memo.h). */
struct km_arena;
struct km_resource;
struct km_json;
void cp_insight_fact(struct km_arena *a, const struct km_resource *r, void *fact);
/* The same from the insight's parsed spec (<f> zeroed first). */
void cp_insight_fact_of(const struct km_json *spec, struct cp_insight_fact *f);
/* The resyncer's DataplaneInsight memo (struct cp_insight_fact), kept by
 * its change events: the MeshService generator reads the online flags
 * through it too, so that the burst of insight writes after a change is
 * read once, not once per controller (at 10,000 proxies on PostgreSQL a
 * whole listing is half a second on the loop). Valid until
 * cp_insights_stop; the marks of its other users are prefixed (cp_memo_mark_*). */
struct cp_memo *cp_insights_memo(struct cp_insights *ins);

#endif
