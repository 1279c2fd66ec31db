/* SPDX-License-Identifier: Apache-2.0 */
/* MeshInsight computation, event driven: a write in a mesh marks the mesh
 * dirty and a timer (at most one run per <min_interval>) recomputes the
 * dirty meshes only. No periodic full resync: every input is a store write. */
#ifndef CP_INSIGHTS_H
#define CP_INSIGHTS_H

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

#endif
