/* SPDX-License-Identifier: Apache-2.0 */
/* The control plane's process-wide context: the loop, the store and the
 * settings every component reads. Created once in main() and passed down;
 * it outlives every component. */
#ifndef CP_RUNTIME_H
#define CP_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#include "cp/config/config.h"
#include "cp/store/store.h"
#include "ev/loop.h"

struct cp_pki;

struct cp_runtime {
	struct km_loop *loop;
	struct cp_store *store;
	const char *zone;        /* multizone.zone.name */
	bool global_mode;        /* mode == global */
	bool federated;          /* zone CP with multizone.zone.globalAddress */
	bool localhost_is_admin; /* apiServer.authn.localhostIsAdmin */
	bool read_only;          /* apiServer.readOnly */
	bool test_hooks;         /* KUMA_TEST_HOOKS=true enables the test routes */
	bool side_effects;       /* create mesh defaults on Mesh creation, generate Workloads and
				  * MeshServices from Dataplanes; off after /_test/reset */
	bool ready;              /* /ready answers 200 */
	const char *instance_id;
	const char *hostname;
	const char *cluster_id;
	const char *version;
	struct km_json *config_json;  /* effective config for GET /config (owned by main) */
	const struct cp_config *cfg; /* effective configuration (owned by main) */
	bool leader;                 /* this instance runs the leader-only work */
	struct cp_pki *pki;          /* workload identities (cp/pki), for the xDS generators */
	struct cp_envoy_admin *envoy_admin; /* the proxies' admin API (cp/envoyadmin.h); NULL on a Global CP */
	/* the controllers' DataplaneInsight memo (cp_insights_memo), told by the
	 * insight writer when a write leaves its fact as it was */
	struct cp_memo *insight_memo;
	/* appends Prometheus text for GET :5680/metrics (set by main) */
	void (*metrics)(void *ctx, struct km_buf *out);
	void *metrics_ctx;
};

#define KM_VERSION "3.0.0"

#endif
