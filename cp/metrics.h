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

/* One HTTP request answered: upstream's go-http-metrics families,
 * dp_server_http_* for the dp-server's plain HTTP (POST /bootstrap; handler
 * = the URL path), api_server_http_* for the REST API (handler = the
 * route's template). At most 1024 label sets a server are kept (later ones
 * are not counted). Loop thread. */
enum { CP_METRICS_DP_SERVER, CP_METRICS_API_SERVER, CP_METRICS_HTTP_SERVERS };
void cp_metrics_http(int server, const char *handler, const char *method, int code, double seconds, size_t bytes);
/* A request of <handler> left waiting (a deferred answer: +1) or answered
 * after waiting (-1): <prefix>_http_requests_inflight. */
void cp_metrics_http_inflight(int server, const char *handler, int delta);

/* The exposition of <ctx> (a struct cp_metrics_src), appended to <out>. */
void cp_metrics_write(void *ctx, struct km_buf *out);

#endif
