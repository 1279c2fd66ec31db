/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-cp's GET :5680/metrics (cp/metrics.h). */
#include "cp/metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/mem.h"
#include "base/prom.h"
#include "cp/config/config.h"
#include "cp/dpserver/server.h"
#include "cp/insights.h"
#include "cp/mads.h"
#include "cp/pki/pki.h"
#include "cp/store/store.h"
#include "cp/workloads.h"
#include "cp/xds/server.h"

/* ---- upstream's families ---- */

static const char *const resource_type_name[CP_XDS_NTYPES] = {
    [CP_XDS_SECRET] = "Secret", [CP_XDS_CLUSTER] = "Cluster", [CP_XDS_ENDPOINT] = "Endpoint",
    [CP_XDS_LISTENER] = "Listener"};

static void hist(struct km_buf *out, const char *name, const char *labels, const double *le, size_t n,
		 const uint64_t *counts, double sum)
{
	struct km_prom_hist h = {le, n, (uint64_t *)counts, sum};
	km_prom_hist_write(out, name, labels, &h);
}

/* hist() for a child of a vector: nothing while it has no observation (a
 * Go vector holds only the label sets observed). */
static void child_hist(struct km_buf *out, const char *name, const char *labels, const double *le, size_t n,
		       const uint64_t *counts, double sum)
{
	uint64_t seen = 0;
	for (size_t b = 0; b <= n; b++)
		seen += counts[b];
	if (seen)
		hist(out, name, labels, le, n, counts, sum);
}

/* A vector family: its lines only when it has samples (Go prints no empty
 * family). <samples> is emptied. */
static void vector(struct km_buf *out, const char *name, const char *type, const char *help, struct km_buf *samples)
{
	if (samples->len) {
		km_prom_family(out, name, type, help);
		km_buf_add(out, samples->data, samples->len);
	}
	samples->len = 0;
}

static void cert_expiry(void *ctx, const char *mesh, int64_t not_after_ns)
{
	struct km_buf *v = ctx, l = KM_BUF_INIT;
	km_prom_label(&l, "mesh", mesh);
	km_prom_sample(v, "xds_cert_expiration_timestamp_seconds", km_buf_cstr(&l), (double)(not_after_ns / 1000000000));
	km_buf_fini(&l);
}

static void client_version(void *ctx, const char *version, size_t n)
{
	struct km_buf *v = ctx, l = KM_BUF_INIT;
	km_prom_label(&l, "client_version", version);
	km_prom_sample(v, "xds_client_versions", km_buf_cstr(&l), (double)n);
	km_buf_fini(&l);
}

static void write_upstream(const struct cp_metrics_src *src, const struct cp_xds_stats *st, struct km_buf *out)
{
	const struct cp_runtime *rt = src->rt;
	struct km_buf l = KM_BUF_INIT;
	/* cp_info's labels, as upstream's build information and identity (a
	 * NULL value is written empty) */
	const char *const info[][2] = {
	    {"build_date", "unknown"},
	    {"cluster_id", rt ? rt->cluster_id : NULL},
	    {"git_commit", "unknown"},
	    {"git_tag", rt ? rt->version : NULL},
	    {"instance_id", rt ? rt->instance_id : NULL},
	    {"product", "Kuma"},
	    {"version", rt ? rt->version : NULL},
	};
	for (size_t i = 0; i < sizeof(info) / sizeof(info[0]); i++) {
		if (i)
			km_buf_putc(&l, ',');
		km_prom_label(&l, info[i][0], info[i][1]);
	}
	km_prom_family(out, "cp_info", "gauge", "Static information about the CP instance");
	km_prom_sample(out, "cp_info", km_buf_cstr(&l), 1);
	km_prom_family(out, "leader", "gauge", "1 indicates that this instance is leader");
	km_prom_sample(out, "leader", "", rt && rt->leader ? 1 : 0);
	/* the event bus calls its subscribers as the store changes (cp/events.c):
	 * there is no channel to fill, nothing is ever dropped */
	km_prom_family(out, "events_dropped", "counter", "Number of dropped events in event bus due to full channels");
	km_prom_sample(out, "events_dropped", "", 0);
	if (!src->xds)
		goto out;

	km_prom_family(out, "xds_streams_active", "gauge", "Number of active connections between a server and a client");
	km_prom_sample(out, "xds_streams_active", "", (double)st->streams_active);
	struct km_buf v = KM_BUF_INIT;
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		for (int nack = 0; nack < 2; nack++) {
			uint64_t n = nack ? st->nacks_by_type[t] : st->acks_by_type[t];
			if (!n)
				continue; /* as a Go vector: only the label sets seen */
			l.len = 0;
			km_prom_label(&l, "confirmation", nack ? "NACK" : "ACK");
			km_buf_putc(&l, ',');
			/* a proxy's rejection is not a user error (webhooks, KDS) */
			km_prom_label(&l, "error_type", nack ? "other" : "no_error");
			km_buf_putc(&l, ',');
			km_prom_label(&l, "type_url", cp_xds_type_url[t]);
			km_prom_sample(&v, "xds_requests_received", km_buf_cstr(&l), (double)n);
		}
	vector(out, "xds_requests_received", "counter", "Number of confirmations requests from a client", &v);
	for (int t = 0; t < CP_XDS_NTYPES; t++)
		if (st->responses_by_type[t]) {
			l.len = 0;
			km_prom_label(&l, "type_url", cp_xds_type_url[t]);
			km_prom_sample(&v, "xds_responses_sent", km_buf_cstr(&l), (double)st->responses_by_type[t]);
		}
	vector(out, "xds_responses_sent", "counter", "Number of responses sent by the server to a client", &v);
	for (int r = 0; r < CP_XDS_SYNC_RESULTS; r++) {
		l.len = 0;
		km_prom_label(&l, "proxy_type", "dataplane");
		km_buf_putc(&l, ',');
		km_prom_label(&l, "result", cp_xds_sync_result[r]);
		child_hist(&v, "xds_generation", km_buf_cstr(&l), km_prom_def_le, KM_PROM_DEF_NB, st->sync_counts[r],
		     st->sync_sum_ms[r]);
	}
	vector(out, "xds_generation", "histogram", "Summary of XDS Snapshot generation", &v);
	km_prom_family(out, "xds_generation_errors", "counter", "Counter of errors during XDS generation");
	km_prom_sample(out, "xds_generation_errors", "", (double)st->gen_errors);
	km_prom_family(out, "xds_delivery", "histogram",
		       "Summary of config delivery including a response (ACK/NACK) from the client");
	hist(out, "xds_delivery", "", km_prom_def_le, KM_PROM_DEF_NB, st->delivery_counts, st->delivery_sum_ms);
	for (int t = 0; t < CP_XDS_NTYPES; t++) {
		l.len = 0;
		km_prom_label(&l, "resource_type", resource_type_name[t]);
		child_hist(&v, "xds_snapshot_resources", km_buf_cstr(&l), cp_xds_snapres_le, CP_XDS_SNAPRES_NB,
		     st->snapres_counts[t], st->snapres_sum[t]);
	}
	vector(out, "xds_snapshot_resources", "histogram",
	       "Distribution of resource counts per xDS snapshot by resource type.", &v);
	cp_xds_server_client_versions(src->xds, client_version, &v);
	vector(out, "xds_client_versions", "gauge",
	       "Number of clients for each version. It only counts connections where they sent at least one request",
	       &v);
	cp_pki_cert_expirations(rt ? rt->pki : NULL, cert_expiry, &v);
	vector(out, "xds_cert_expiration_timestamp_seconds", "gauge",
	       "Unix timestamp (seconds) when the MeshIdentity workload certificate expires. Compute remaining "
	       "lifetime in PromQL as `xds_cert_expiration_timestamp_seconds - time()`.",
	       &v);
	if (src->insights) {
		struct cp_insights_hists ih;
		cp_insights_hists(src->insights, &ih);
		km_prom_family(out, "insights_resyncer_processor_idle_time", "histogram",
			       "Summary of the time that the processor loop sits idle, the closer this gets to 0 the more "
			       "the processing loop is at capacity");
		hist(out, "insights_resyncer_processor_idle_time", "", km_prom_def_le, KM_PROM_DEF_NB, ih.idle_counts,
		     ih.idle);
		km_prom_family(out, "insights_resyncer_event_time_to_process", "histogram",
			       "Summary of the time between an event being added to a batch and it being processed, in a "
			       "well behaving system this should be less of equal to the MinResyncInterval");
		hist(out, "insights_resyncer_event_time_to_process", "", km_prom_def_le, KM_PROM_DEF_NB,
		     ih.to_process_counts, ih.to_process);
		for (int w = 0; w < 2; w++)
			child_hist(&v, "insights_resyncer_event_time_processing",
				   w ? "reason=\"force\",result=\"changed\"" : "reason=\"force\",result=\"no_changes\"",
				   km_prom_def_le, KM_PROM_DEF_NB, ih.processing_counts[w], ih.processing[w]);
		vector(out, "insights_resyncer_event_time_processing", "histogram",
		       "Summary of the time spent to process an event", &v);
	}
	struct cp_workloads_stats ws;
	cp_workloads_stats(src->workloads, &ws);
	if (src->workloads) {
		km_prom_family(out, "component_meshservice_generator", "histogram",
			       "Summary of MeshService generation duration");
		hist(out, "component_meshservice_generator", "", km_prom_def_le, KM_PROM_DEF_NB, ws.pass_counts,
		     ws.pass_sum_ms);
	}
	km_prom_family(out, "hds_streams_active", "gauge", "Number of active connections between a server and a client");
	km_prom_sample(out, "hds_streams_active", "", (double)st->hds_streams_active);
	km_prom_family(out, "hds_requests_received", "counter", "Number of HealthCheckRequests from a client");
	km_prom_sample(out, "hds_requests_received", "", (double)st->hds_requests);
	km_prom_family(out, "hds_responses_sent", "counter", "Number of EndpointHealthResponses from a client");
	km_prom_sample(out, "hds_responses_sent", "", (double)st->hds_reports);
	km_prom_family(out, "hds_generation", "histogram", "Summary of HDS Snapshot generation");
	hist(out, "hds_generation", "", km_prom_def_le, KM_PROM_DEF_NB, st->hds_gen_counts, st->hds_gen_sum_ms);
	km_prom_family(out, "hds_generation_errors", "counter", "Counter of errors during HDS generation");
	km_prom_sample(out, "hds_generation_errors", "", (double)st->hds_gen_errors);
	km_buf_fini(&v);
out:
	km_buf_fini(&l);
}

/* resources_count{resource_type,tenant}: the leader's counts of every
 * type, read at most once a minute (upstream's store counter runs on the
 * leader every minute): on PostgreSQL one GROUP BY over the table. */
#define COUNT_EVERY_NS (60LL * 1000000000)

static void write_resource_counts(const struct cp_metrics_src *src, struct km_buf *out)
{
	static size_t counts[256];
	static int64_t at;
	static bool have;
	struct cp_runtime *rt = src->rt;
	if (!rt || !rt->leader || !rt->store || km_rtypes_len > 256 ||
	    (rt->cfg && !rt->cfg->metrics.control_plane.report_resources_count))
		return;
	int64_t now = cp_store_clock_ns();
	if (!have || now - at >= COUNT_EVERY_NS) {
		if (cp_store_count_types(rt->store, KM_STR(""), counts) != 0)
			return;
		at = now;
		have = true;
	}
	km_prom_family(out, "resources_count", "gauge", "Number of stored resources of each type (all meshes).");
	struct km_buf l = KM_BUF_INIT;
	for (size_t i = 0; i < km_rtypes_len; i++) {
		if (!counts[i] && km_rtypes[i].scope != KM_SCOPE_GLOBAL)
			continue;
		l.len = 0;
		km_prom_label(&l, "resource_type", km_rtypes[i].name);
		km_buf_putc(&l, ',');
		km_prom_label(&l, "tenant", "");
		km_prom_sample(out, "resources_count", km_buf_cstr(&l), (double)counts[i]);
	}
	km_buf_fini(&l);
}

/* <prefix>_http_*: per server, handler, method and code (label sets made
 * as requests come, up to HTTP_SETS a server: every route of the API with
 * its methods and codes fits; paths no route serves are what the bound is
 * for) */
#define HTTP_SETS 1024
#define SIZE_NB 8
static const double size_le[SIZE_NB] = {100, 1000, 10000, 100000, 1e6, 1e7, 1e8, 1e9};
static const char *const http_prefix[CP_METRICS_HTTP_SERVERS] = {"dp_server", "api_server"};

struct http_set {
	char handler[128], method[16];
	int code;
	uint64_t dur[KM_PROM_DEF_NB + 1], size[SIZE_NB + 1];
	double dur_sum, size_sum;
};
static struct http_set *http_sets[CP_METRICS_HTTP_SERVERS];
static size_t n_http_sets[CP_METRICS_HTTP_SERVERS], cap_http_sets[CP_METRICS_HTTP_SERVERS];

struct inflight {
	char handler[128];
	int64_t n;
};
static struct inflight inflights[CP_METRICS_HTTP_SERVERS][256]; /* handlers with deferred answers */
static size_t n_inflights[CP_METRICS_HTTP_SERVERS];

void cp_metrics_http_inflight(int server, const char *handler, int delta)
{
	if (server < 0 || server >= CP_METRICS_HTTP_SERVERS || strlen(handler) >= sizeof(inflights[0][0].handler))
		return;
	struct inflight *f = NULL;
	for (size_t i = 0; i < n_inflights[server] && !f; i++)
		if (strcmp(inflights[server][i].handler, handler) == 0)
			f = &inflights[server][i];
	if (!f) {
		if (n_inflights[server] == sizeof(inflights[0]) / sizeof(inflights[0][0]))
			return;
		f = &inflights[server][n_inflights[server]++];
		snprintf(f->handler, sizeof(f->handler), "%s", handler);
	}
	f->n += delta;
}

static int64_t inflight_of(int server, const char *handler)
{
	for (size_t i = 0; i < n_inflights[server]; i++)
		if (strcmp(inflights[server][i].handler, handler) == 0)
			return inflights[server][i].n;
	return 0;
}

void cp_metrics_http(int server, const char *handler, const char *method, int code, double seconds, size_t bytes)
{
	if (server < 0 || server >= CP_METRICS_HTTP_SERVERS)
		return;
	struct http_set *sets = http_sets[server], *hs = NULL;
	size_t *n = &n_http_sets[server];
	for (size_t i = 0; i < *n && !hs; i++)
		if (sets[i].code == code && strcmp(sets[i].handler, handler) == 0 && strcmp(sets[i].method, method) == 0)
			hs = &sets[i];
	if (!hs) {
		if (*n == HTTP_SETS || strlen(handler) >= sizeof(hs->handler) || strlen(method) >= sizeof(hs->method))
			return;
		if (*n == cap_http_sets[server]) {
			cap_http_sets[server] = *n ? 2 * *n : 16;
			http_sets[server] = km_realloc(http_sets[server], cap_http_sets[server] * sizeof(*sets));
			sets = http_sets[server];
			memset(sets + *n, 0, (cap_http_sets[server] - *n) * sizeof(*sets));
		}
		hs = &sets[(*n)++];
		snprintf(hs->handler, sizeof(hs->handler), "%s", handler);
		snprintf(hs->method, sizeof(hs->method), "%s", method);
		hs->code = code;
	}
	struct km_prom_hist d = {km_prom_def_le, KM_PROM_DEF_NB, hs->dur, hs->dur_sum};
	km_prom_observe(&d, seconds, 1);
	hs->dur_sum = d.sum;
	struct km_prom_hist z = {size_le, SIZE_NB, hs->size, hs->size_sum};
	km_prom_observe(&z, (double)bytes, 1);
	hs->size_sum = z.sum;
}

static void write_http(int server, struct km_buf *out)
{
	const struct http_set *sets = http_sets[server];
	size_t n = n_http_sets[server];
	if (!n)
		return;
	struct km_buf l = KM_BUF_INIT, name = KM_BUF_INIT;
	const char *fam[2] = {"http_request_duration_seconds", "http_response_size_bytes"};
	const char *help[2] = {"The latency of the HTTP requests.", "The size of the HTTP responses."};
	for (int f = 0; f < 2; f++) {
		name.len = 0;
		km_buf_printf(&name, "%s_%s", http_prefix[server], fam[f]);
		km_prom_family(out, km_buf_cstr(&name), "histogram", help[f]);
		for (size_t i = 0; i < n; i++) {
			const struct http_set *hs = &sets[i];
			l.len = 0;
			km_buf_printf(&l, "code=\"%d\",", hs->code);
			km_prom_label(&l, "handler", hs->handler);
			km_buf_putc(&l, ',');
			km_prom_label(&l, "method", hs->method);
			km_buf_puts(&l, ",service=\"\"");
			if (f == 0)
				hist(out, km_buf_cstr(&name), km_buf_cstr(&l), km_prom_def_le, KM_PROM_DEF_NB, hs->dur,
				     hs->dur_sum);
			else
				hist(out, km_buf_cstr(&name), km_buf_cstr(&l), size_le, SIZE_NB, hs->size, hs->size_sum);
		}
	}
	/* the answers left waiting (deferred) now; the others are answered
	 * within their callback */
	name.len = 0;
	km_buf_printf(&name, "%s_http_requests_inflight", http_prefix[server]);
	km_prom_family(out, km_buf_cstr(&name), "gauge", "The number of inflight requests being handled at the same time.");
	for (size_t i = 0; i < n; i++) {
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = strcmp(sets[j].handler, sets[i].handler) != 0;
		if (!first)
			continue;
		l.len = 0;
		km_prom_label(&l, "handler", sets[i].handler);
		km_buf_puts(&l, ",service=\"\"");
		km_prom_sample(out, km_buf_cstr(&name), km_buf_cstr(&l), (double)inflight_of(server, sets[i].handler));
	}
	km_buf_fini(&l);
	km_buf_fini(&name);
}

/* ---- this control plane's ---- */

/* The controllers' passes on the loop thread: what holds pushes back while
 * they run (docs/performance.md, step 19). */
static void write_controller_metrics(const struct cp_metrics_src *src, struct km_buf *out)
{
	struct cp_workloads_stats ws;
	cp_workloads_stats(src->workloads, &ws);
	uint64_t ip;
	double isec;
	cp_insights_stats(src->insights, &ip, &isec);
	km_buf_printf(out,
		      "# HELP meshservice_generator_passes_total MeshService and Workload generator passes.\n"
		      "# TYPE meshservice_generator_passes_total counter\nmeshservice_generator_passes_total %llu\n"
		      "# HELP meshservice_generator_pass_seconds_total Wall time of those passes on the loop thread.\n"
		      "# TYPE meshservice_generator_pass_seconds_total counter\nmeshservice_generator_pass_seconds_total %.6f\n"
		      "# HELP meshservice_generator_writes_total Generated MeshServices and Workloads created or updated "
		      "(a pass writes only what differs from the store).\n"
		      "# TYPE meshservice_generator_writes_total counter\nmeshservice_generator_writes_total %llu\n"
		      "# HELP meshservice_generator_workloads_total Workloads (kuma.io/workload groups) the passes "
		      "reconciled: all of a mesh's in a full pass, those a change touched otherwise.\n"
		      "# TYPE meshservice_generator_workloads_total counter\nmeshservice_generator_workloads_total %llu\n"
		      "# HELP mesh_insight_resyncs_total MeshInsight recomputations that read at least one mesh.\n"
		      "# TYPE mesh_insight_resyncs_total counter\nmesh_insight_resyncs_total %llu\n"
		      "# HELP mesh_insight_resync_seconds_total Wall time of those recomputations on the loop thread.\n"
		      "# TYPE mesh_insight_resync_seconds_total counter\nmesh_insight_resync_seconds_total %.6f\n",
		      (unsigned long long)ws.passes, ws.seconds, (unsigned long long)ws.writes,
		      (unsigned long long)ws.workloads, (unsigned long long)ip,
		      isec);
	struct cp_mads_stats ms;
	cp_mads_stats(src->mads, &ms);
	km_buf_printf(out,
		      "# HELP mads_assignment_builds_total Monitoring assignment recomputations (after Mesh, Dataplane "
		      "or MeshMetric writes, when a request or a waiting long poll needs them).\n"
		      "# TYPE mads_assignment_builds_total counter\nmads_assignment_builds_total %llu\n"
		      "# HELP mads_assignment_build_seconds_total CPU time of those recomputations on the loop thread.\n"
		      "# TYPE mads_assignment_build_seconds_total counter\nmads_assignment_build_seconds_total %.6f\n"
		      "# HELP mads_dataplanes_matched_total Dataplanes matched to their MeshMetrics by those "
		      "recomputations (the others, and their mesh's MeshMetrics, had not changed: kept).\n"
		      "# TYPE mads_dataplanes_matched_total counter\nmads_dataplanes_matched_total %llu\n"
		      "# HELP mads_responses_total Monitoring assignment responses with assignments (not 304).\n"
		      "# TYPE mads_responses_total counter\nmads_responses_total %llu\n"
		      "# HELP mads_long_polls_waiting Long polls waiting for a change.\n"
		      "# TYPE mads_long_polls_waiting gauge\nmads_long_polls_waiting %llu\n",
		      (unsigned long long)ms.builds, (double)ms.build_ns / 1e9, (unsigned long long)ms.matched,
		      (unsigned long long)ms.responses,
		      (unsigned long long)ms.waiting);
}

static void write_histogram(struct km_buf *out, const char *name, const char *help, const uint64_t *hist,
			    uint64_t sum_ns)
{
	km_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (size_t b = 0; b < CP_XDS_GEN_BUCKETS; b++) {
		cum += hist[b];
		if (b < CP_XDS_GEN_BUCKETS - 1)
			km_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, cp_xds_gen_bucket_us[b] / 1e6,
				      (unsigned long long)cum);
		else
			km_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	km_buf_printf(out, "%s_sum %.9f\n%s_count %llu\n", name, sum_ns / 1e9, name, (unsigned long long)cum);
}

/* The process metrics Prometheus clients export by default (dashboards and
 * alerts on control planes read them): CPU, memory, descriptors, start. */
static void write_process_metrics(struct km_buf *out)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	/* fields after the ")" closing the command: state(3) ... utime(14)
	 * stime(15) ... starttime(22) vsize(23) rss(24) */
	const char *p = strrchr(buf, ')');
	unsigned long long v[25] = {0};
	for (int field = 3; p && *p && field <= 24; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			break;
		v[field] = strtoull(p + 1, NULL, 10);
	}
	double tick = (double)sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	double btime = 0;
	f = fopen("/proc/stat", "r");
	while (f && fgets(buf, sizeof(buf), f))
		if (strncmp(buf, "btime ", 6) == 0)
			btime = strtod(buf + 6, NULL);
	if (f)
		fclose(f);
	size_t fds = 0;
	DIR *d = opendir("/proc/self/fd");
	for (struct dirent *e; d && (e = readdir(d));)
		fds += e->d_name[0] != '.';
	if (d)
		closedir(d);
	if (fds)
		fds--; /* the directory's own descriptor */
	struct rlimit rl = {0};
	getrlimit(RLIMIT_NOFILE, &rl);
	km_buf_printf(out,
		      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
		      "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.2f\n"
		      "# HELP process_open_fds Number of open file descriptors.\n"
		      "# TYPE process_open_fds gauge\nprocess_open_fds %zu\n"
		      "# HELP process_max_fds Maximum number of open file descriptors.\n"
		      "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n"
		      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
		      "# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes %llu\n"
		      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
		      "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %llu\n"
		      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
		      "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds %.2f\n",
		      (double)(v[14] + v[15]) / tick, fds, (unsigned long long)rl.rlim_cur, v[23],
		      v[24] * (unsigned long long)page, btime + (double)v[22] / tick);
}

static void write_own_metrics(const struct cp_metrics_src *src, const struct cp_xds_stats *stp, struct km_buf *out)
{
	const struct cp_xds_stats st = *stp;
	static const struct {
		const char *name, *help, *type;
		size_t off;
	} rows[] = {
	    {"xds_responses_sent_total", "Discovery responses sent.", "counter", offsetof(struct cp_xds_stats, responses_sent)},
	    {"xds_resources_sent_total", "Resources sent in discovery responses.", "counter", offsetof(struct cp_xds_stats, resources_sent)},
	    {"xds_acks_total", "Responses acknowledged by proxies.", "counter", offsetof(struct cp_xds_stats, acks)},
	    {"xds_nacks_total", "Responses rejected by proxies.", "counter", offsetof(struct cp_xds_stats, nacks)},
	    {"xds_generations_total", "Proxy configurations recomputed.", "counter", offsetof(struct cp_xds_stats, regenerations)},
	    {"xds_generations_noop_total", "Recomputed configurations identical to what the proxy has (nothing sent).", "counter", offsetof(struct cp_xds_stats, regenerations_noop)},
	    {"xds_generations_skipped_total", "Proxies a change could not affect (compared by mesh-context fingerprints): not recomputed.", "counter", offsetof(struct cp_xds_stats, regenerations_skipped)},
	    {"xds_resources_shared_total", "Outbound resources taken encoded from another proxy's generation of the same mesh context.", "counter", offsetof(struct cp_xds_stats, resources_shared)},
	    {"xds_resources_reused_total", "Local resources (secrets, admin, inbounds) taken from the proxy's previous generation: nothing they are built from changed.", "counter", offsetof(struct cp_xds_stats, resources_reused)},
	    {"xds_resources_encoded_total", "Resources generated and encoded.", "counter", offsetof(struct cp_xds_stats, resources_encoded)},
	    {"xds_mesh_contexts_total", "Mesh contexts built (after changes), shared by the generations that follow.", "counter", offsetof(struct cp_xds_stats, contexts)},
	    {"xds_mesh_contexts_kept_total", "Mesh contexts kept: the MeshService writes since they were built changed nothing they hold (status counts).", "counter", offsetof(struct cp_xds_stats, contexts_kept)},
	    {"xds_recompute_passes_kept_total", "Recompute passes over a kept mesh context: no proxy's inputs moved, none was looked at.", "counter", offsetof(struct cp_xds_stats, passes_kept)},
	    {"xds_share_entries_swept_total", "Shared xDS resources dropped once no proxy held them (swept when idle after a pass).", "counter", offsetof(struct cp_xds_stats, share_swept)},
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		km_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", rows[i].name, rows[i].help,
			      rows[i].name, rows[i].type, rows[i].name,
			      (unsigned long long)*(const uint64_t *)((const char *)&st + rows[i].off));
	write_histogram(out, "xds_generation_seconds",
			"CPU time of building one proxy's configuration (generate, apply policies, encode; sends, the "
			"mesh context and certificate signing excluded).",
			st.gen_hist, st.gen_sum_ns);
	write_histogram(out, "xds_certificate_issue_seconds",
			"CPU time of signing one proxy's workload certificate (key, certificate), as its build "
			"needed it.",
			st.issue_hist, st.issue_sum_ns);
	km_buf_printf(out, "# HELP xds_mesh_context_seconds_total CPU time of building mesh contexts.\n"
			   "# TYPE xds_mesh_context_seconds_total counter\nxds_mesh_context_seconds_total %.9f\n",
		      st.context_ns / 1e9);
	write_controller_metrics(src, out);
}

void cp_metrics_write(void *ctx, struct km_buf *out)
{
	const struct cp_metrics_src *src = ctx;
	struct cp_xds_stats st = {0};
	if (src->xds)
		cp_xds_server_stats(src->xds, &st);
	struct km_buf b = KM_BUF_INIT;
	write_upstream(src, &st, &b);
	cp_store_metrics_write(&b);
	write_resource_counts(src, &b);
	write_http(CP_METRICS_DP_SERVER, &b);
	write_http(CP_METRICS_API_SERVER, &b);
	cp_dpserver_grpc_metrics_write(src->dps, &b);
	write_process_metrics(&b);
	if (src->xds)
		write_own_metrics(src, &st, &b);
	else
		write_controller_metrics(src, &b);
	const struct cp_runtime *rt = src->rt;
	const char *zone = rt && rt->global_mode ? "Global" : rt && rt->zone && *rt->zone ? rt->zone : "Zone";
	km_prom_add_label(out, b.data ? b.data : "", b.len, "zone", zone);
	km_buf_fini(&b);
}
