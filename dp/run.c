/* SPDX-License-Identifier: Apache-2.0 */
/* `kuma-dp run`: load and check the configuration, prepare the work dir and
 * token, then on one event loop fetch the bootstrap (retrying as upstream),
 * start the readiness reporter, Envoy and the MeshMetric fetcher (metrics.c),
 * and supervise Envoy: SIGCHLD ends
 * the run with Envoy's status, SIGTERM/SIGINT drain (readiness 503, admin
 * /healthcheck/fail, wait drain time) then stop Envoy, SIGUSR2 drains inbound
 * listeners for good. One run arena holds everything; the temporary work dir
 * is removed at the end. */
#include <curl/curl.h>
#include <errno.h>
#include <ftw.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "base/err.h"
#include "base/log.h"
#include "dp/dp.h"
#include "resource/validate.h"

#define SUB "kuma-dp"
#define KILL_DELAY_MS 5000 /* upstream's exec WaitDelay before SIGKILL */

enum phase { P_BOOTSTRAP, P_RUNNING, P_DRAINING, P_STOPPING };

struct run {
	struct dp_config *c;
	struct km_arena *a;
	struct km_loop *loop;
	const char *dataplane_json;
	const char *features[8];
	size_t nfeatures;
	const char *host_ip;
	uint64_t started_ms;
	struct km_timer retry_timer, drain_timer, kill_timer;
	struct dp_bootstrap_out boot;
	struct dp_readiness *ready;
	struct dp_metrics *metrics;
	struct dp_accesslog *accesslog;
	pid_t envoy;
	enum phase phase;
	bool drained; /* SIGUSR2 already drained the listeners */
	int exit_code;
};

static void fail_run(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_run(struct run *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	r->exit_code = 1;
	km_loop_stop(r->loop);
}

static const char *dur(struct km_arena *a, int64_t ns)
{
	return km_duration_format(a, ns);
}

/* ---- Envoy supervision ---- */

static void on_kill_timer(struct km_loop *loop, void *ctx)
{
	struct run *r = ctx;
	if (r->envoy > 0) {
		km_warn(SUB, "Envoy did not stop in time, killing it pid=%d", (int)r->envoy);
		kill(r->envoy, SIGKILL);
	}
}

static void stop_envoy(struct run *r)
{
	km_info(SUB, "stopping all Kuma DP components");
	km_loop_timer_stop(r->loop, &r->drain_timer);
	dp_readiness_stop(r->ready);
	r->ready = NULL;
	dp_metrics_stop(r->metrics);
	r->metrics = NULL;
	r->phase = P_STOPPING;
	if (r->envoy > 0) {
		km_info(SUB, "stopping Envoy");
		kill(r->envoy, SIGTERM);
		km_loop_timer_start(r->loop, &r->kill_timer, KILL_DELAY_MS, on_kill_timer, r);
	} else {
		km_loop_stop(r->loop);
	}
}

static void on_drain_timer(struct km_loop *loop, void *ctx)
{
	stop_envoy(ctx);
}

static void on_sigchld(struct km_loop *loop, int signo, void *ctx)
{
	struct run *r = ctx;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid != r->envoy)
			continue;
		r->envoy = 0;
		km_loop_timer_stop(loop, &r->kill_timer);
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r->phase == P_STOPPING) {
			km_info(SUB, "Envoy terminated successfully");
			r->exit_code = 0;
		} else {
			if (code == 0)
				km_info(SUB, "Envoy terminated successfully");
			else if (WIFEXITED(status))
				km_error(SUB, "Envoy terminated with an error err=\"exit status %d\"", code);
			else
				km_error(SUB, "Envoy terminated with an error err=\"signal: %s\"",
					 strsignal(WTERMSIG(status)));
			r->exit_code = code;
			km_info(SUB, "stopping all Kuma DP components");
		}
		km_loop_timer_stop(loop, &r->drain_timer);
		dp_readiness_stop(r->ready);
		r->ready = NULL;
		dp_metrics_stop(r->metrics);
		r->metrics = NULL;
		dp_accesslog_stop(r->accesslog);
		r->accesslog = NULL;
		km_loop_stop(loop);
	}
}

static void on_exit_signal(struct km_loop *loop, int signo, void *ctx)
{
	struct run *r = ctx;
	switch (r->phase) {
	case P_BOOTSTRAP:
		km_info(SUB, "Kuma DP caught an exit signal");
		fail_run(r, "Failed to fetch Envoy bootstrap config. context canceled");
		return;
	case P_RUNNING: {
		km_info(SUB, "Kuma DP caught an exit signal signal=%s", strsignal(signo));
		if (r->drained) {
			km_info(SUB, "already drained, exit immediately");
			stop_envoy(r);
			return;
		}
		dp_readiness_terminating(r->ready);
		km_info(SUB, "draining Envoy connections");
		struct km_buf err = KM_BUF_INIT;
		if (dp_envoy_admin_post(r->boot.admin_socket, r->boot.admin_port, "/healthcheck/fail",
					&err) != 0) {
			km_error(SUB, "could not drain connections err=\"%s\"", km_buf_cstr(&err));
			km_buf_fini(&err);
			stop_envoy(r);
			return;
		}
		km_buf_fini(&err);
		km_info(SUB, "waiting for connections to be drained waitTime=%s",
			dur(r->a, r->c->drain_time));
		r->phase = P_DRAINING;
		km_loop_timer_start(loop, &r->drain_timer, (uint64_t)(r->c->drain_time / 1000000),
				    on_drain_timer, r);
		return;
	}
	case P_DRAINING:
		km_info(SUB, "second exit signal, not waiting for the drain to finish");
		stop_envoy(r);
		return;
	case P_STOPPING:
		if (r->envoy > 0)
			kill(r->envoy, SIGKILL);
		return;
	}
}

static void on_usr2(struct km_loop *loop, int signo, void *ctx)
{
	struct run *r = ctx;
	if (r->phase != P_RUNNING || r->drained)
		return;
	km_info(SUB, "draining Envoy connections");
	struct km_buf err = KM_BUF_INIT;
	if (dp_envoy_admin_post(r->boot.admin_socket, r->boot.admin_port,
				"/drain_listeners?inboundonly&graceful&skip_exit", &err) != 0)
		km_error(SUB, "could not drain connections err=\"%s\"", km_buf_cstr(&err));
	km_buf_fini(&err);
	r->drained = true;
}

/* ---- bootstrap and start ---- */

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -errno;
	fchmod(fileno(f), mode);
	size_t w = fwrite(data, 1, len, f);
	int rc = (w == len) ? 0 : -EIO;
	if (fclose(f) != 0 && !rc)
		rc = -errno;
	return rc;
}

static const char *readiness_addr(const struct run *r)
{
	if (*r->boot.admin_address)
		return r->boot.admin_address;
	bool k8s = getenv("POD_NAME") != NULL;
	bool v6 = strchr(r->boot.networking_address, ':') != NULL;
	if (k8s)
		return v6 ? "::" : "0.0.0.0";
	return v6 ? "::1" : "127.0.0.1";
}

static void start_envoy(struct run *r)
{
	struct dp_config *c = r->c;
	const char *cfg = km_arena_printf(r->a, "%s/bootstrap.yaml", c->work_dir);
	int rc = write_file(cfg, r->boot.yaml.ptr, r->boot.yaml.len, 0600);
	if (rc) {
		fail_run(r, "failed to persist Envoy bootstrap config on disk: open %s: %s", cfg,
			 dp_util_strerror(r->a, -rc));
		return;
	}
	km_info(SUB, "bootstrap configuration saved to a file file=%s", cfg);
	if (c->dns_enabled)
		km_info(SUB, "embedded DNS proxy is not available in this kuma-dp, running without "
			     "it port=%u",
			c->dns_port);
	r->ready = dp_readiness_start(r->loop, readiness_addr(r), (int)c->readiness_port,
				      r->boot.admin_socket);
	if (!r->ready) {
		fail_run(r, "could not start the readiness reporter on port %u", c->readiness_port);
		return;
	}
	struct km_buf err = KM_BUF_INIT;
	const char *path;
	if (dp_envoy_lookup(r->a, c->binary_path, &path, &err) != 0) {
		fail_run(r, "could not find envoy executable: %s", km_buf_cstr(&err));
		km_buf_fini(&err);
		return;
	}
	km_buf_fini(&err);
	char **argv = dp_envoy_args(r->a, c, path, cfg);
	struct km_buf line = KM_BUF_INIT;
	for (char **p = argv + 1; *p; p++)
		km_buf_printf(&line, "%s%s", p == argv + 1 ? "" : " ", *p);
	km_info(SUB, "starting Envoy path=%s arguments=[%s]", path, km_buf_cstr(&line));
	km_buf_fini(&line);
	/* the pipe Tcp access logs go through exists before Envoy opens it */
	r->accesslog = dp_accesslog_start(
	    r->loop, dp_metrics_socket_name(r->a, c->work_dir, km_arena_printf(r->a, "kuma-al-%s-%s", c->name, c->mesh)));
	rc = dp_envoy_start(argv, &r->envoy);
	if (rc) {
		fail_run(r, "envoy executable failed: %s", dp_util_strerror(r->a, -rc));
		return;
	}
	r->phase = P_RUNNING;
	struct dp_metrics_opts mo = {
	    .work_dir = c->work_dir,
	    .name = c->name,
	    .mesh = c->mesh,
	    .admin_socket = r->boot.admin_socket,
	    .admin_address = r->boot.admin_address,
	    .admin_port = r->boot.admin_port,
	    .default_address = r->boot.networking_address,
	    .refresh_ns = c->dynamic_config_refresh,
	};
	r->metrics = dp_metrics_start(r->loop, &mo);
	km_info(SUB, "starting Kuma DP version=%s", DP_VERSION);
}

static const char *read_token(struct run *r, struct km_buf *err)
{
	const struct dp_config *c = r->c;
	const char *tok = "";
	if (c->token_path && *c->token_path) {
		FILE *f = fopen(c->token_path, "rb");
		if (!f) {
			km_buf_printf(err, "open %s: %s", c->token_path, dp_util_strerror(r->a, errno));
			return NULL;
		}
		struct km_buf b = KM_BUF_INIT;
		b.max = KM_JWT_MAX_LEN;
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if (km_buf_append(&b, chunk, n) != 0)
				break;
		fclose(f);
		tok = km_arena_strndup(r->a, km_buf_cstr(&b), b.len);
		km_buf_fini(&b);
	}
	if (c->token && *c->token)
		tok = c->token;
	struct km_str s = km_str_c(tok);
	while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\n' || s.ptr[0] == '\r' || s.ptr[0] == '\t'))
		s.ptr++, s.len--;
	while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\n' ||
			 s.ptr[s.len - 1] == '\r' || s.ptr[s.len - 1] == '\t'))
		s.len--;
	return km_arena_strndup(r->a, s.ptr, s.len);
}

static void on_retry_timer(struct km_loop *loop, void *ctx);

/* One attempt; returns the verdict and fills <err>. */
static enum dp_bootstrap_verdict attempt(struct run *r, struct km_buf *err)
{
	struct dp_config *c = r->c;
	km_info(SUB, "trying to fetch bootstrap configuration from the Control Plane");
	const char *path;
	struct km_buf why = KM_BUF_INIT;
	struct dp_envoy_version ev;
	if (dp_envoy_lookup(r->a, c->binary_path, &path, &why) != 0 ||
	    dp_envoy_version(r->a, path, &ev, &why) != 0) {
		km_buf_printf(err, "failed to get Envoy version: %s", km_buf_cstr(&why));
		km_buf_fini(&why);
		return DP_BOOTSTRAP_RETRY;
	}
	km_buf_fini(&why);
	if (!ev.compatible)
		km_info(SUB, "Envoy version incompatible expected=%s current=%s", DP_ENVOY_VERSION,
			ev.version);
	else
		km_info(SUB, "fetched Envoy version version=%s build=%s", ev.version, ev.build);
	const char *tok = read_token(r, err);
	if (!tok)
		return DP_BOOTSTRAP_RETRY;
	struct dp_bootstrap_in in = {r->dataplane_json, r->features, r->nfeatures, r->host_ip,
				     "linux"};
	struct km_buf body = KM_BUF_INIT;
	dp_bootstrap_request(&body, r->a, c, &in, &ev, tok);
	enum dp_bootstrap_verdict v = dp_bootstrap_fetch_once(r->a, c, km_buf_cstr(&body), &r->boot, err);
	km_buf_fini(&body);
	return v;
}

static void on_retry_timer(struct km_loop *loop, void *ctx)
{
	struct run *r = ctx;
	struct km_buf err = KM_BUF_INIT;
	enum dp_bootstrap_verdict v = attempt(r, &err);
	if (v == DP_BOOTSTRAP_OK) {
		if (*r->boot.admin_socket)
			km_info(SUB, "received bootstrap configuration adminSocketPath=%s",
				r->boot.admin_socket);
		else
			km_info(SUB, "received bootstrap configuration adminPort=%d",
				r->boot.admin_port);
		km_buf_fini(&err);
		start_envoy(r);
		return;
	}
	if (v == DP_BOOTSTRAP_FATAL) {
		fail_run(r, "Failed to fetch Envoy bootstrap config. %s", km_buf_cstr(&err));
		km_buf_fini(&err);
		return;
	}
	uint64_t elapsed = km_loop_now_ms() - r->started_ms;
	uint64_t max = (uint64_t)(r->c->retry_max / 1000000);
	uint64_t backoff = (uint64_t)(r->c->retry_backoff / 1000000);
	if (elapsed >= max) {
		fail_run(r, "Failed to fetch Envoy bootstrap config. %s", km_buf_cstr(&err));
		km_buf_fini(&err);
		return;
	}
	if (strncmp(km_buf_cstr(&err), "Dataplane entity not found", 26) == 0)
		km_info(SUB, "Dataplane entity is not yet found in the Control Plane. If you are "
			     "running on Kubernetes, the control plane is most likely still in the "
			     "process of converting Pod to Dataplane. If it takes too long, check pod "
			     "events and control plane logs to see possible cause. Retrying. backoff=%s",
			dur(r->a, r->c->retry_backoff));
	else
		km_info(SUB, "could not fetch bootstrap configuration, make sure you are not trying "
			     "to connect to global-cp. retrying (this could help only if you're "
			     "connecting to zone-cp). backoff=%s err=\"%s\"",
			dur(r->a, r->c->retry_backoff), km_buf_cstr(&err));
	km_buf_fini(&err);
	if (backoff > max - elapsed)
		backoff = max - elapsed;
	km_loop_timer_start(loop, &r->retry_timer, backoff, on_retry_timer, r);
}

/* ---- preparation ---- */

/* nftw callback: removes everything, carrying on past failures. */
static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)remove(path);
	return 0;
}

static bool has_local_ipv6(void)
{
	struct ifaddrs *ifs, *i;
	if (getifaddrs(&ifs) != 0)
		return false;
	bool found = false;
	for (i = ifs; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6)
			continue;
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)i->ifa_addr;
		if (!IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) && !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			found = true;
	}
	freeifaddrs(ifs);
	return found;
}

static const char *os_ca_path(void)
{
	static const char *const files[] = {
	    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
	    "/etc/ssl/ca-bundle.pem", "/etc/pki/tls/cacert.pem",
	    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct stat st;
		if (stat(files[i], &st) == 0) {
			km_info("system-certificate-selector",
				"using OS provided CA certificate certificate path=%s", files[i]);
			return files[i];
		}
	}
	km_info("system-certificate-selector", "OS provided certificate not found");
	return "";
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Upstream's token check (app/kuma-dp/pkg/config ValidateTokenPath). */
static int validate_token_path(struct km_arena *a, const char *path, struct km_buf *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		km_buf_printf(err, "could not read file %s: stat %s: %s", path, path,
			      dp_util_strerror(a, errno));
		return -EINVAL;
	}
	struct km_buf b = KM_BUF_INIT;
	b.max = KM_JWT_MAX_LEN;
	char chunk[4096];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (km_buf_append(&b, chunk, n) != 0) {
			rc = -E2BIG;
			break;
		}
	fclose(f);
	if (b.len == 0) {
		km_buf_printf(err, "token under file %s is empty", path);
		km_buf_fini(&b);
		return -EINVAL;
	}
	struct km_str s = {km_buf_cstr(&b), b.len};
	while (s.len && strchr(" \t\r\n", s.ptr[0]))
		s.ptr++, s.len--;
	while (s.len && strchr(" \t\r\n", s.ptr[s.len - 1]))
		s.len--;
	if (!rc && (memchr(s.ptr, '\n', s.len) || memchr(s.ptr, '\r', s.len) ||
		    memchr(s.ptr, '\0', s.len))) {
		km_buf_puts(err, "Token shouldn't contain line breaks within the token, only at the "
				 "start or end");
		rc = -EINVAL;
	} else {
		struct km_jwt jwt;
		struct km_buf why = KM_BUF_INIT;
		if (rc || km_jwt_parse(a, s.ptr, s.len, &jwt, &why) != 0) {
			km_buf_printf(err, "not valid JWT token. Can't parse it.: %s",
				      rc ? "token is too long" : km_buf_cstr(&why));
			rc = -EINVAL;
		}
		km_buf_fini(&why);
	}
	km_buf_fini(&b);
	return rc;
}

static int prepare(struct run *r, bool *tmp_created)
{
	struct dp_config *c = r->c;
	struct km_buf err = KM_BUF_INIT;
	int rc = -EINVAL;

	km_info(SUB, "starting Data Plane version=%s", DP_VERSION);
	if (c->transparent_proxy) {
		fputs("Error: transparent proxy is not supported by this kuma-dp\n", stderr);
		goto out;
	}
	if (strcmp(c->proxy_type, "dataplane") != 0) {
		fprintf(stderr, "Error: invalid proxy type \"%s\"\n", c->proxy_type);
		goto out;
	}
	if (!c->envoy_log_level || !*c->envoy_log_level)
		c->envoy_log_level = c->log_level;

	const char *mesh = NULL, *name = NULL;
	if (dp_template_load(c, &r->dataplane_json, &mesh, &name, &err) != 0) {
		km_error(SUB, "failed to read dataplane proxyType=%s err=\"%s\"", c->proxy_type,
			 km_buf_cstr(&err));
		fprintf(stderr, "Error: %s\n", km_buf_cstr(&err));
		goto out;
	}
	if (r->dataplane_json) {
		if ((c->name && *c->name) || (c->mesh && *c->mesh)) {
			fputs("Error: --name and --mesh cannot be specified when a dataplane definition "
			      "is provided, mesh and name will be read from the dataplane definition\n",
			      stderr);
			goto out;
		}
		c->mesh = mesh;
		c->name = name;
	}

	if (!c->work_dir || !*c->work_dir) {
		const char *tmp = getenv("TMPDIR");
		char *dir = km_arena_printf(r->a, "%s/kuma-dp-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(dir)) {
			km_error(SUB, "unable to create a temporary directory to store generated "
				      "configuration err=\"%s\"",
				 dp_util_strerror(r->a, errno));
			fprintf(stderr, "Error: mkdtemp %s: %s\n", dir, dp_util_strerror(r->a, errno));
			goto out;
		}
		/* traverse-only for others: probes and admin clients reach the sockets */
		chmod(dir, 0711);
		c->work_dir = dir;
		*tmp_created = true;
		km_info(SUB, "generated configurations will be stored in a temporary directory dir=%s",
			dir);
	} else {
		int e = mkdir_p(c->work_dir, 0711);
		if (e) {
			km_error(SUB, "unable to create work directory dir=%s", c->work_dir);
			fprintf(stderr, "Error: mkdir %s: %s\n", c->work_dir,
				dp_util_strerror(r->a, -e));
			goto out;
		}
	}

	if (!c->system_ca_path || !*c->system_ca_path)
		c->system_ca_path = os_ca_path();

	if ((!c->ca_cert || !*c->ca_cert) && c->ca_cert_file && *c->ca_cert_file) {
		FILE *f = fopen(c->ca_cert_file, "rb");
		if (!f) {
			fprintf(stderr, "Error: could not read certificate file %s: open %s: %s\n",
				c->ca_cert_file, c->ca_cert_file, dp_util_strerror(r->a, errno));
			goto out;
		}
		struct km_buf pem = KM_BUF_INIT;
		pem.max = 1u << 20;
		char chunk[4096];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if (km_buf_append(&pem, chunk, n) != 0)
				break;
		fclose(f);
		c->ca_cert = km_arena_strndup(r->a, km_buf_cstr(&pem), pem.len);
		km_buf_fini(&pem);
	}

	if (c->ipv6_enabled && !has_local_ipv6())
		c->ipv6_enabled = false;

	r->features[r->nfeatures++] = "feature-tcp-accesslog-via-named-pipe";
	if (c->otel_pipe)
		r->features[r->nfeatures++] = "feature-otel-via-kuma-dp";
	if (c->bind_outbounds)
		r->features[r->nfeatures++] = "feature-bind-outbounds";
	if (c->spire_supported)
		r->features[r->nfeatures++] = "feature-spire";
	if (c->strict_inbound_ports)
		r->features[r->nfeatures++] = "feature-strict-inbound-ports";
	if (c->reuse_port)
		r->features[r->nfeatures++] = "feature-reuse-port";
	const char *hip = getenv("HOST_IP");
	if (hip && *hip)
		r->host_ip = hip;

	/* dataplane token: a literal token is stored in the work dir */
	if (c->token && *c->token) {
		const char *p = km_arena_printf(r->a, "%s/%s", c->work_dir, c->name);
		int e = write_file(p, c->token, strlen(c->token), 0600);
		if (e) {
			km_error(SUB, "unable to create file with dataplane token");
			fprintf(stderr, "Error: open %s: %s\n", p, dp_util_strerror(r->a, -e));
			goto out;
		}
		c->token_path = p;
	}
	if (c->token_path && *c->token_path && validate_token_path(r->a, c->token_path, &err) != 0) {
		km_error(SUB, "unable to get or generate dataplane token");
		fprintf(stderr,
			"Error: dataplane token is invalid, in Kubernetes you must mount a "
			"serviceAccount token, in universal you must start your proxy with a generated "
			"token.: %s\n",
			km_buf_cstr(&err));
		goto out;
	}
	rc = 0;
out:
	km_buf_fini(&err);
	return rc;
}

int dp_run_main(int argc, char **argv, char **envp, const char *log_level)
{
	struct km_arena *a = km_arena_new(0);
	struct dp_config c;
	dp_flags_defaults(&c, a);
	if (log_level)
		c.log_level = log_level;
	struct km_buf err = KM_BUF_INIT;
	int rc = dp_flags_parse(&c, argc, argv, envp, &err);
	if (rc == 1) {
		km_arena_free(a);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "Error: %s\n", km_buf_cstr(&err));
		if (rc == -EINVAL)
			fputs("Run 'kuma-dp run --help' for usage.\n", stderr);
		km_buf_fini(&err);
		km_arena_free(a);
		return 1;
	}
	if (km_log_set_level(c.log_level) != 0) {
		fprintf(stderr, "Error: unsupported log level \"%s\"\n", c.log_level);
		km_arena_free(a);
		return 1;
	}
	if (dp_flags_validate(&c, &err) != 0) {
		km_error(SUB, "unable to load configuration err=\"%s\"", km_buf_cstr(&err));
		fprintf(stderr, "Error: %s\n", km_buf_cstr(&err));
		km_buf_fini(&err);
		km_arena_free(a);
		return 1;
	}
	km_buf_fini(&err);

	struct run r = {.c = &c, .a = a};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r.loop = km_loop_new();
	bool tmp_created = false;
	if (prepare(&r, &tmp_created) != 0) {
		r.exit_code = 1;
	} else {
		km_loop_signal(r.loop, SIGCHLD, on_sigchld, &r);
		km_loop_signal(r.loop, SIGTERM, on_exit_signal, &r);
		km_loop_signal(r.loop, SIGINT, on_exit_signal, &r);
		km_loop_signal(r.loop, SIGUSR2, on_usr2, &r);
		signal(SIGPIPE, SIG_IGN);
		km_info(SUB, "fetching bootstrap configuration");
		r.started_ms = km_loop_now_ms();
		km_loop_timer_start(r.loop, &r.retry_timer, 0, on_retry_timer, &r);
		km_loop_run(r.loop);
		if (r.envoy > 0) { /* leaving on an error while Envoy runs */
			kill(r.envoy, SIGKILL);
			waitpid(r.envoy, NULL, 0);
		}
		dp_readiness_stop(r.ready);
		dp_metrics_stop(r.metrics);
		dp_accesslog_stop(r.accesslog);
		km_info(SUB, "stopping Kuma DP");
	}
	if (tmp_created && nftw(c.work_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		km_error(SUB, "unable to remove a temporary directory with a generated Envoy config");
	km_loop_free(r.loop);
	curl_global_cleanup();
	int code = r.exit_code;
	km_arena_free(a);
	return code;
}
