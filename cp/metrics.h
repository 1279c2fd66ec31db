/* SPDX-License-Identifier: Apache-2.0 */
/* GET :5680/metrics: upstream's families under upstream's names, labels and
 * units (what Kuma's Grafana dashboards and alerts query: cp_info, leader,
 * xds_streams_active, xds_requests_received, xds_responses_sent,
 * xds_generation, xds_generation_errors, xds_delivery,
 * xds_snapshot_resources, hds_*, process_*), then this control plane's own
 * (xds_*_total, the build-time histograms, the controllers', MADS's). Every
 * sample carries zone="<zone name>" ("Global" on a global control plane), as
 * upstream's registry adds it. */
#ifndef CP_METRICS_H
#define CP_METRICS_H

#include "base/buf.h"
#include "cp/runtime.h"

struct cp_xds_server;
struct cp_workloads;
struct cp_insights;
struct cp_mads;
struct cp_dpserver;

/* What the metrics read; members may be NULL (not running). */
struct cp_metrics_src {
	struct cp_runtime *rt;
	struct cp_xds_server *xds;
	struct cp_workloads *workloads;
	struct cp_insights *insights;
	struct cp_mads *mads;
	struct cp_dpserver *dps; /* grpc_server_* */
};

/* One plain HTTP request on the dp-server (POST /bootstrap): upstream's
 * dp_server_http_* families (go-http-metrics: handler = the URL path, at
 * most 64 label sets are kept, later ones are not counted). Loop thread. */
void cp_metrics_dp_http(const char *path, const char *method, int code, double seconds, size_t bytes);

/* The exposition of <ctx> (a struct cp_metrics_src), appended to <out>. */
void cp_metrics_write(void *ctx, struct km_buf *out);

#endif
