/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-cp: `run` loads the configuration, opens the store, creates the
 * defaults, starts the API and diagnostics servers and runs the event loop
 * until SIGTERM/SIGINT; `version` and `migrate up` as upstream. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "cp/api/api.h"
#include "cp/config/config.h"
#include "cp/config/tls.h"
#include "cp/envoyadmin.h"
#include "cp/events.h"
#include "cp/insights.h"
#include "cp/mads.h"
#include "cp/manager.h"
#include "cp/workloads.h"
#include "cp/pki/pki.h"
#include "cp/dpserver/cert.h"
#include "cp/dpserver/server.h"
#include "cp/xds/bootstrap.h"
#include "cp/xds/server.h"

extern char **environ;

static void on_signal(struct km_loop *loop, int signo, void *ctx)
{
	km_info("kuma-cp", "received signal, stopping signal=%d", signo);
	km_loop_stop(loop);
}

struct leader_ctx {
	struct cp_runtime *rt;
	struct cp_insights *insights;
	struct cp_workloads *workloads;
	struct cp_pki *pki;
	const struct cp_config *cfg;
	struct km_timer retry;
	bool leader;
};

/* Leader-only work starts and stops with leadership. */
static void ensure_defaults(struct km_loop *loop, void *ctx)
{
	struct leader_ctx *l = ctx;
	if (!l->leader)
		return;
	int rc = cp_defaults_ensure(l->rt, l->cfg->defaults.skip_mesh_creation,
				    l->cfg->defaults.skip_hostname_generators);
	if (!rc && l->rt->envoy_admin) {
		struct km_buf err = KM_BUF_INIT;
		rc = cp_envoy_admin_ensure_ca(l->rt->envoy_admin, &err);
		if (rc)
			km_warn("kuma-cp", "%s", km_buf_cstr(&err));
		km_buf_fini(&err);
	}
	if (rc) {
		/* typically the store is briefly unavailable: try again */
		km_warn("kuma-cp", "could not create default resources, retrying error=%s", km_strerror(rc));
		km_loop_timer_start(loop, &l->retry, 2000, ensure_defaults, l);
	}
}

static void on_leader(void *ctx, bool leader)
{
	struct leader_ctx *l = ctx;
	l->leader = leader;
	l->rt->leader = leader;
	if (leader)
		ensure_defaults(l->rt->loop, l);
	else
		km_loop_timer_stop(l->rt->loop, &l->retry);
	if (l->insights)
		cp_insights_set_active(l->insights, leader);
	if (l->workloads)
		cp_workloads_set_active(l->workloads, leader);
	if (l->pki)
		cp_pki_set_active(l->pki, leader);
}

/* The API over HTTPS (apiServer.https, upstream's port 5682): its own
 * certificate files, else general's, else the generated one. */
static int start_https_api(struct cp_runtime *rt, const struct cp_config *cfg, struct cp_api **out)
{
	const char *ca_file = cfg->api_server.https.tls_ca_file;
	if (cfg->api_server.https.tls_cipher_suites.n) {
		km_error("kuma-cp", "apiServer.https.tlsCipherSuites is not supported: the HTTPS API negotiates "
				    "with GnuTLS's default suites; leave it empty (dpServer.tlsCipherSuites applies)");
		return -ENOTSUP;
	}
	struct cp_dpserver_cert cert = {0};
	struct km_buf err = KM_BUF_INIT, ca = KM_BUF_INIT;
	int rc = cp_server_cert_load(cfg, cfg->api_server.https.tls_cert_file, cfg->api_server.https.tls_key_file, &cert,
				     &err);
	if (!rc && ca_file && *ca_file) {
		FILE *f = fopen(ca_file, "rb");
		char buf[4096];
		size_t n;
		while (f && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			km_buf_append(&ca, buf, n);
		if (!f || !strstr(km_buf_cstr(&ca), "-----BEGIN CERTIFICATE-----")) {
			km_buf_printf(&err, "failed to load PEM client certificate from \"%s\"", ca_file);
			rc = -EINVAL;
		}
		if (f)
			fclose(f);
	}
	if (rc) {
		km_error("kuma-cp", "API server HTTPS: %s", km_buf_cstr(&err));
	} else {
		struct cp_http_tls tls = {
		    .cert_pem = km_buf_cstr(&cert.cert_pem),
		    .key_pem = km_buf_cstr(&cert.key_pem),
		    .priorities = cp_tls_gnutls_priorities(cfg->api_server.https.tls_min_version,
							  cfg->api_server.https.tls_max_version),
		    .client_ca_pem = ca.len ? km_buf_cstr(&ca) : NULL,
		    .require_client_cert = cfg->api_server.https.require_client_cert,
		};
		*out = cp_api_start_tls(rt, cfg->api_server.https.interface, (int)cfg->api_server.https.port, &tls);
		rc = *out ? 0 : -EIO;
	}
	cp_dpserver_cert_fini(&cert);
	km_buf_fini(&err);
	km_buf_fini(&ca);
	return rc;
}

struct dp_http_ctx {
	struct cp_runtime *rt;
	const char *ca_pem;
};

/* Plain HTTP on the dp-server: POST /bootstrap. */
static void on_dp_http(void *ctx, struct cp_http_req *req)
{
	struct dp_http_ctx *d = ctx;
	if (km_str_eqc(req->path, "/bootstrap")) {
		if (strcmp(req->method, "POST") != 0) {
			req->status = 405;
			req->content_type = "text/plain";
			km_buf_puts(&req->out, "Method not allowed");
			return;
		}
		cp_bootstrap_handle(d->rt, d->ca_pem, req);
		return;
	}
	req->status = 404;
	req->content_type = "text/plain";
	km_buf_puts(&req->out, "404 page not found\n");
}

/* What GET :5680/metrics reports on. */
struct metrics_src {
	struct cp_xds_server *xds;
	struct cp_workloads *workloads;
	struct cp_insights *insights;
	struct cp_mads *mads;
};

/* The controllers' passes on the loop thread: what holds pushes back while
 * they run (docs/performance.md, step 19). */
static void write_controller_metrics(const struct metrics_src *src, struct km_buf *out)
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

static void write_metrics(void *ctx, struct km_buf *out)
{
	const struct metrics_src *src = ctx;
	struct cp_xds_stats st;
	cp_xds_server_stats(src->xds, &st);
	static const struct {
		const char *name, *help, *type;
		size_t off;
	} rows[] = {
	    {"xds_streams_active", "Connected ADS streams.", "gauge", offsetof(struct cp_xds_stats, streams_active)},
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
	write_process_metrics(out);
}

static void usage(FILE *f)
{
	fprintf(f, "Universal Control Plane for Envoy-based Service Mesh.\n\n"
		   "Usage:\n  kuma-cp [command]\n\n"
		   "Available Commands:\n"
		   "  migrate     Migrate database to which Control Plane is connected\n"
		   "  run         Launch Control Plane\n"
		   "  version     Print version\n\n"
		   "Flags:\n"
		   "  -h, --help               help for kuma-cp\n"
		   "      --log-level string   log level: one of off|info|debug (default \"info\")\n");
}

static void random_hex(char *out, size_t n)
{
	FILE *f = fopen("/dev/urandom", "rb");
	unsigned char b[32] = {0};
	if (f) {
		size_t r = fread(b, 1, sizeof(b), f);
		(void)r;
		fclose(f);
	}
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++)
		out[i] = hex[(b[i % 32] >> ((i / 32) % 2 ? 4 : 0)) & 15];
	out[n] = 0;
}

/* Builds allocate and free their arenas for every proxy on two threads:
 * with glibc's defaults the freed top of the heap went back to the kernel
 * (and large blocks were mmapped afresh), so the next builds faulted in
 * and zeroed the same pages again, hundreds of microseconds each at
 * 10,000 proxies (docs/performance.md). Kept instead, up to the peak the
 * process reached; GLIBC_TUNABLES still override these. */
static void malloc_tune(void)
{
	if (!getenv("GLIBC_TUNABLES")) {
		mallopt(M_TRIM_THRESHOLD, 256 << 20);
		mallopt(M_MMAP_THRESHOLD, 32 << 20);
	}
}

static int run(const char *config_path)
{
	malloc_tune();
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_config_load(&cfg, config_path, environ, &err);
	if (rc == 0)
		rc = cp_config_validate(&cfg, &err);
	if (rc) {
		fprintf(stderr, "Error: could not load the configuration: %s\n", km_buf_cstr(&err));
		km_buf_fini(&err);
		cp_config_fini(&cfg);
		return 1;
	}
	km_buf_fini(&err);
	struct cp_runtime rt = {0};
	struct cp_events bus = {0};
	struct cp_insights *insights = NULL;
	rt.cfg = &cfg;
	rt.loop = km_loop_new();
	if (strcmp(cfg.store.type, "postgres") == 0) {
		struct km_buf serr = KM_BUF_INIT;
		rt.store = cp_store_postgres_new(&cfg, rt.loop, &serr);
		if (!rt.store) {
			fprintf(stderr, "Error: could not start the postgres store: %s\n", km_buf_cstr(&serr));
			km_buf_fini(&serr);
			km_loop_free(rt.loop);
			cp_config_fini(&cfg);
			return 1;
		}
		km_buf_fini(&serr);
	} else {
		rt.store = cp_store_memory_new();
	}
	cp_events_attach(&bus, rt.store);
	rt.zone = cfg.multizone.zone.name;
	rt.global_mode = strcmp(cfg.mode, "global") == 0;
	rt.federated = !rt.global_mode && cfg.multizone.zone.global_address &&
		       *cfg.multizone.zone.global_address;
	rt.localhost_is_admin = cfg.api_server.authn.localhost_is_admin;
	rt.read_only = cfg.api_server.read_only;
	const char *hooks = getenv("KUMA_TEST_HOOKS");
	rt.test_hooks = hooks && strcmp(hooks, "true") == 0;
	rt.side_effects = true;
	rt.version = KM_VERSION;
	char host[256] = "localhost", suffix[8], cluster[40], inst[300];
	gethostname(host, sizeof(host) - 1);
	random_hex(suffix, 4);
	snprintf(inst, sizeof(inst), "%s-%s", host, suffix);
	char raw[33];
	random_hex(raw, 32);
	snprintf(cluster, sizeof(cluster), "%.8s-%.4s-4%.3s-a%.3s-%.12s", raw, raw + 8, raw + 12,
		 raw + 15, raw + 18);
	rt.hostname = host;
	rt.instance_id = inst;
	rt.cluster_id = cluster;
	struct km_arena *cfg_arena = km_arena_new(0);
	rt.config_json = cp_config_to_json(cfg_arena, &cfg);

	int exit_code = 0;
	struct cp_api *api = NULL, *api_https = NULL;
	struct cp_http *diag = NULL;
	struct cp_dpserver *dps = NULL;
	struct cp_mads *mads = NULL;
	struct cp_dpserver_cert cert = {0};
	struct cp_xds_server *xds = cp_xds_server_new(&rt, &bus);
	static struct metrics_src msrc;
	msrc.xds = xds;
	rt.metrics = write_metrics;
	rt.metrics_ctx = &msrc;
	insights = cp_insights_start(&rt, &bus, (uint64_t)CP_CONFIG_MS(cfg.metrics.mesh.min_resync_interval));
	rt.insight_memo = insights ? cp_insights_memo(insights) : NULL;
	struct cp_workloads *workloads = cp_workloads_start(&rt, &bus, cfg.mesh_service.deletion_grace_period);
	msrc.workloads = workloads;
	msrc.insights = insights;
	struct cp_pki *pki = cp_pki_start(&rt, &bus);
	/* autogenerated CAs use ECDSA P-256 (upstream: RSA-2048): leaf keys follow
	 * the CA, and an RSA-2048 key costs ~0.3 s of the single loop per proxy */
	if (pki)
		cp_pki_set_autogen_key(pki, CP_PKI_KEY_EC_P256);
	rt.pki = pki;
	if (!rt.global_mode) /* upstream: the Envoy Admin CA is a zone's */
		rt.envoy_admin = cp_envoy_admin_new(&rt);
	struct leader_ctx lctx = {.rt = &rt, .insights = insights, .workloads = workloads, .pki = pki, .cfg = &cfg};
	cp_store_elect(rt.store, on_leader, &lctx);
	if (cfg.api_server.http.enabled) {
		api = cp_api_start(&rt, cfg.api_server.http.interface, (int)cfg.api_server.http.port);
		if (!api) {
			exit_code = 1;
			goto out;
		}
	}
	if (cfg.api_server.https.enabled && start_https_api(&rt, &cfg, &api_https)) {
		exit_code = 1;
		goto out;
	}
	if (!rt.global_mode) {
		struct km_buf cerr = KM_BUF_INIT;
		if (cp_dpserver_cert_load(&cfg, &cert, &cerr)) {
			km_error("kuma-cp", "dp-server certificate: %s", km_buf_cstr(&cerr));
			km_buf_fini(&cerr);
			exit_code = 1;
			goto out;
		}
		km_buf_fini(&cerr);
		static struct dp_http_ctx dctx;
		dctx.rt = &rt;
		dctx.ca_pem = km_buf_cstr(&cert.cert_pem);
		size_t nm;
		const struct cp_grpc_method *methods = cp_xds_server_methods(xds, &nm);
		struct km_buf ciphers = KM_BUF_INIT;
		int dropped = 0;
		cp_tls_ciphers(&cfg.dp_server.tls_cipher_suites, &ciphers, &dropped, NULL);
		if (dropped)
			km_warn("kuma-cp", "dpServer.tlsCipherSuites: %d RC4 suite(s) left out: OpenSSL 3 has none",
				dropped);
		struct cp_dpserver_config dcfg = {
		    .iface = "0.0.0.0",
		    .port = cfg.dp_server.port,
		    .cert_pem = cert.cert_path,
		    .key_pem = cert.key_path,
		    .tls_min = cp_tls_version(cfg.dp_server.tls_min_version),
		    .tls_max = cp_tls_version(cfg.dp_server.tls_max_version),
		    .tls_ciphers = km_buf_cstr(&ciphers),
		    .read_header_timeout_ms = (uint64_t)CP_CONFIG_MS(cfg.dp_server.read_header_timeout),
		    .http = on_dp_http,
		    .http_ctx = &dctx,
		    .methods = methods,
		    .nmethods = nm,
		};
		dps = cp_dpserver_start(rt.loop, &dcfg); /* the cipher list is read here */
		km_buf_fini(&ciphers);
		if (!dps) {
			exit_code = 1;
			goto out;
		}
	}
	if (!rt.global_mode && cfg.monitoring_assignment_server.enabled) {
		mads = cp_mads_start(&rt, &bus);
		if (!mads) {
			exit_code = 1;
			goto out;
		}
		msrc.mads = mads;
	}
	diag = cp_api_diagnostics_start(&rt, "0.0.0.0", (int)cfg.diagnostics.server_port);
	if (!diag) {
		exit_code = 1;
		goto out;
	}
	km_loop_signal(rt.loop, SIGTERM, on_signal, NULL);
	km_loop_signal(rt.loop, SIGINT, on_signal, NULL);
	signal(SIGPIPE, SIG_IGN);
	rt.ready = true;
	km_info("kuma-cp", "control plane started version=%s instance=%s mode=%s store=%s", rt.version,
		rt.instance_id, cfg.mode, cfg.store.type);
	km_loop_run(rt.loop);
	km_info("kuma-cp", "stopped");
out:
	/* requests in flight answer their API clients before the API stops */
	cp_envoy_admin_free(rt.envoy_admin);
	rt.envoy_admin = NULL;
	msrc.mads = NULL;
	cp_mads_stop(mads);
	cp_dpserver_stop(dps);
	cp_xds_server_free(xds);
	cp_dpserver_cert_fini(&cert);
	km_loop_timer_stop(rt.loop, &lctx.retry);
	msrc.workloads = NULL;
	msrc.insights = NULL;
	cp_workloads_stop(workloads); /* reads the insights' memo */
	rt.insight_memo = NULL;
	cp_insights_stop(insights);
	cp_pki_stop(pki);
	cp_http_stop(diag);
	cp_api_stop(api);
	cp_api_stop(api_https);
	cp_store_free(rt.store);
	km_loop_free(rt.loop);
	km_arena_free(cfg_arena);
	cp_config_fini(&cfg);
	return exit_code;
}

static int migrate_up(const char *config_path)
{
	struct cp_config cfg;
	cp_config_init_defaults(&cfg);
	struct km_buf err = KM_BUF_INIT;
	int rc = cp_config_load(&cfg, config_path, environ, &err);
	if (rc == 0)
		rc = cp_config_validate(&cfg, &err);
	if (rc == 0 && strcmp(cfg.store.type, "postgres") != 0) {
		km_buf_printf(&err, "migrations apply to the postgres store only (store.type is %s)", cfg.store.type);
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = cp_store_postgres_migrate(&cfg, &err);
	if (rc)
		fprintf(stderr, "Error: %s\n", km_buf_cstr(&err));
	else
		km_info("kuma-cp", "database migrated to the newest schema");
	km_buf_fini(&err);
	cp_config_fini(&cfg);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *cmd = NULL, *config = NULL;
	const char *sub = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config-file") == 0) && i + 1 < argc) {
			config = argv[++i];
		} else if (strncmp(a, "--config-file=", 14) == 0) {
			config = a + 14;
		} else if (strcmp(a, "--log-level") == 0 && i + 1 < argc) {
			if (km_log_set_level(argv[++i])) {
				fprintf(stderr, "Error: invalid log level %s\n", argv[i]);
				return 1;
			}
		} else if (strncmp(a, "--log-level=", 12) == 0) {
			if (km_log_set_level(a + 12)) {
				fprintf(stderr, "Error: invalid log level %s\n", a + 12);
				return 1;
			}
		} else if (a[0] == '-') {
			fprintf(stderr, "Error: unknown flag: %s\n", a);
			return 1;
		} else if (!cmd) {
			cmd = a;
		} else if (!sub) {
			sub = a;
		} else {
			fprintf(stderr, "Error: unexpected argument %s\n", a);
			return 1;
		}
	}
	if (!cmd) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "run") == 0)
		return run(config);
	if (strcmp(cmd, "version") == 0) {
		printf("Kuma: %s\n", KM_VERSION);
		return 0;
	}
	if (strcmp(cmd, "migrate") == 0) {
		if (!sub || strcmp(sub, "up") != 0) {
			fprintf(stderr, "Error: usage: kuma-cp migrate up [-c config]\n");
			return 1;
		}
		return migrate_up(config);
	}
	fprintf(stderr, "Error: unknown command \"%s\" for \"kuma-cp\"\n", cmd);
	usage(stderr);
	return 1;
}
