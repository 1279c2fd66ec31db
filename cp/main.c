/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-cp: `run` loads the configuration, opens the store, creates the
 * defaults, starts the API and diagnostics servers and runs the event loop
 * until SIGTERM/SIGINT; `version` and `migrate up` as upstream. */
#include <errno.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "cp/metrics.h"
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

static void dp_http_route(struct dp_http_ctx *d, struct cp_http_req *req)
{
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

/* Plain HTTP on the dp-server: POST /bootstrap, measured as upstream's
 * middleware measures it (cp_metrics_dp_http). */
static void on_dp_http(void *ctx, struct cp_http_req *req)
{
	int64_t t0 = cp_store_clock_ns();
	dp_http_route(ctx, req);
	const char *path = km_arena_strndup(req->a, req->path.ptr, req->path.len);
	cp_metrics_http(CP_METRICS_DP_SERVER, path, req->method, req->status ? req->status : 200,
			   (double)(cp_store_clock_ns() - t0) / 1e9, req->out.len);
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
	static struct cp_metrics_src msrc;
	msrc.rt = &rt;
	msrc.xds = xds;
	rt.metrics = cp_metrics_write;
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
		msrc.dps = dps;
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
	msrc.dps = NULL;
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
