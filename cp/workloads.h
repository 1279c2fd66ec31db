/* SPDX-License-Identifier: Apache-2.0 */
/* Universal MeshService and Workload generation from `kuma.io/workload`
 * labels, event driven and leader only: a Dataplane write marks its mesh,
 * and one pass per mesh reconciles the generated MeshServices (ports from
 * the inbounds, state and proxy counts from inbound health) and Workloads.
 * A MeshService whose last Dataplane left is deleted after a grace period. */
#ifndef CP_WORKLOADS_H
#define CP_WORKLOADS_H

#include "base/prom.h"
#include "cp/events.h"
#include "cp/runtime.h"

struct cp_workloads;

/* DataplaneInsights are read through <rt>->insight_memo, the MeshInsight
 * resyncer's (cp_insights_memo), kept by it; without one, a memo of its own. */
struct cp_workloads *cp_workloads_start(struct cp_runtime *rt, struct cp_events *bus, int64_t grace_period_ns);
void cp_workloads_set_active(struct cp_workloads *w, bool active);
void cp_workloads_stop(struct cp_workloads *w);

/* Passes run, their wall time on the loop thread, the records they wrote
 * and the workloads they reconciled: every one of a mesh in a full pass,
 * those a change touched otherwise (GET :5680/metrics). */
struct cp_workloads_stats {
	uint64_t passes, writes, workloads;
	double seconds;
	/* upstream's component_meshservice_generator: milliseconds per pass */
	uint64_t pass_counts[KM_PROM_DEF_NB + 1];
	double pass_sum_ms;
};
void cp_workloads_stats(const struct cp_workloads *w, struct cp_workloads_stats *out);

#endif
