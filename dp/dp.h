/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-dp: the data-plane agent. One run loads its configuration from flags
 * and KUMA_* variables (flags.c), renders the Dataplane template (template.c),
 * fetches the Envoy bootstrap from the control plane (bootstrap.c), runs and
 * supervises Envoy (envoy.c), answers readiness probes (readiness.c) and
 * serves MeshMetric's Prometheus scrapes (metrics.c). Everything a run
 * allocates lives in the run's arena (struct dp_config.a). */
#ifndef DP_DP_H
#define DP_DP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/str.h"
#include "codec/json.h"
#include "ev/loop.h"

#define DP_VERSION "3.0.0"
#define DP_PRODUCT "Kuma"
/* The Envoy release this kuma-dp is built and tested against (~ constraint). */
#define DP_ENVOY_VERSION "1.40.0"

struct dp_var {
	const char *key, *value;
};

/* Effective configuration (upstream pkg/config/app/kuma-dp Config). Strings
 * are owned by <a>; durations are nanoseconds. */
struct dp_config {
	struct km_arena *a;
	const char *log_level;
	/* control plane */
	const char *cp_url;
	const char *ca_cert;      /* PEM; wins over ca_cert_file */
	const char *ca_cert_file;
	bool skip_verify;
	int64_t retry_backoff;
	int64_t retry_max;
	/* dataplane */
	const char *mesh, *name, *proxy_type;
	int64_t drain_time;
	uint32_t readiness_port;
	/* runtime */
	const char *binary_path, *work_dir;
	uint32_t concurrency;
	const char *token, *token_path;
	const char *resource, *resource_path;
	struct dp_var *vars;
	size_t nvars;
	const char *envoy_log_level, *envoy_component_log_level;
	const char *metrics_cert_path, *metrics_key_path;
	const char *system_ca_path;
	const char *spire_socket_path;
	bool bind_outbounds, ipv6_enabled, strict_inbound_ports, otel_pipe, reuse_port;
	bool spire_supported;
	uint64_t max_memory_bytes;
	int64_t dynamic_config_refresh; /* DynamicConfiguration.RefreshInterval */
	bool transparent_proxy;
	/* dns */
	bool dns_enabled;
	uint32_t dns_port;
	uint32_t app_probe_port;
};

/* ---- flags.c ---- */

/* Fills <c> with upstream's defaults; strings live in <a>. */
void dp_flags_defaults(struct dp_config *c, struct km_arena *a);
/* Parses `kuma-dp run` arguments (argv[0] is the first flag) into <c>, then
 * applies KUMA_* variables from <envp> on top (upstream loads the environment
 * after the flags, so a set variable wins). Returns 0, 1 when --help was
 * printed, -EINVAL for a bad flag (pflag's message in <err>) or -EBADMSG for
 * a bad variable (envconfig's message). */
int dp_flags_parse(struct dp_config *c, int argc, char **argv, char **envp, struct km_buf *err);
/* Upstream Config.Validate(): "configuration validation failed: ..." in <err>. */
int dp_flags_validate(const struct dp_config *c, struct km_buf *err);
void dp_flags_usage(FILE *out);

/* ---- template.c ---- */

/* Renders a mustache template with <vars> ("a.b" keys are nested names) into
 * <out>: {{x}} HTML-escaped, {{{x}}} raw, {{#x}}/{{^x}} sections, comments,
 * delimiter changes; missing names render empty. On a syntax error returns
 * -KM_E_PARSE with the engine's "line N: ..." text in <err>. */
int dp_template_render(struct km_str tmpl, const struct dp_var *vars, size_t nvars,
		       struct km_buf *out, struct km_buf *err);

/* Reads --dataplane / --dataplane-file, renders and validates the Dataplane.
 * Returns 0 with *<json> NULL when no template was given; otherwise *<json>
 * is the resource as upstream sends it in dataplaneResource (compact JSON,
 * owned by c->a) and *<mesh>, *<name> come from it. Errors: -EINVAL/-EIO
 * with upstream's text in <err>. */
int dp_template_load(struct dp_config *c, const char **json, const char **mesh,
		     const char **name, struct km_buf *err);

/* ---- envoy.c ---- */

struct dp_envoy_version {
	const char *version; /* "1.40.0" */
	const char *build;   /* "<sha>/1.40.0/Clean/RELEASE/BoringSSL" */
	bool compatible;
};

/* Finds <configured> like upstream: as given (PATH lookup when it has no
 * slash), then ./envoy, then envoy next to /proc/self/exe. */
int dp_envoy_lookup(struct km_arena *a, const char *configured, const char **path,
		    struct km_buf *err);
/* Parses `envoy --version` output; 0 or -EINVAL ("wrong Envoy build format: ..."). */
int dp_envoy_version_parse(struct km_arena *a, struct km_str output, struct dp_envoy_version *v,
			   struct km_buf *err);
/* Runs `<path> --version` and parses it. */
int dp_envoy_version(struct km_arena *a, const char *path, struct dp_envoy_version *v,
		     struct km_buf *err);
/* ~<expected> semver check as upstream's VersionCompatible. */
bool dp_envoy_compatible(const char *expected, const char *version);
/* Envoy's argv (NULL-terminated, argv[0] = <path>) for <config_path>. */
char **dp_envoy_args(struct km_arena *a, const struct dp_config *c, const char *path,
		     const char *config_path);
/* Starts Envoy in its own process group (dies with us: PDEATHSIG). */
int dp_envoy_start(char **argv, pid_t *pid);
/* POSTs <path> to Envoy admin (<socket> when non-empty, else 127.0.0.1:<port>);
 * 0 when Envoy answered 200. */
int dp_envoy_admin_post(const char *socket, int port, const char *path, struct km_buf *err);

/* ---- bootstrap.c ---- */

struct dp_bootstrap_in {
	const char *dataplane_json; /* NULL when no template */
	const char **features;
	size_t nfeatures;
	const char *host_ip;        /* dynamicMetadata HOST_IP or NULL */
	const char *os;             /* "linux" */
};

/* Upstream's BootstrapRequest with MarshalIndent(" ") layout. <token> is the
 * trimmed token text or "". */
int dp_bootstrap_request(struct km_buf *out, struct km_arena *a, const struct dp_config *c,
			 const struct dp_bootstrap_in *in, const struct dp_envoy_version *ev,
			 const char *token);

enum dp_bootstrap_verdict {
	DP_BOOTSTRAP_OK,
	DP_BOOTSTRAP_RETRY, /* 404 "not found yet", 5xx, transport errors */
	DP_BOOTSTRAP_FATAL, /* 4xx: "Invalid request: <body>" */
};
/* Classifies a response as upstream's remote bootstrap client does and puts
 * its error text into <err>. */
enum dp_bootstrap_verdict dp_bootstrap_classify(long status, struct km_str body,
						struct km_buf *err);

struct dp_bootstrap_out {
	struct km_str yaml;          /* decoded Envoy bootstrap, in the arena */
	const char *admin_socket;    /* admin.address.pipe.path or "" */
	const char *admin_address;   /* admin socketAddress address or "" */
	int admin_port;
	const char *networking_address; /* kumaSidecarConfiguration.networking.address */
};
/* Decodes {"bootstrap":"<base64>","kumaSidecarConfiguration":{...}}. */
int dp_bootstrap_decode(struct km_arena *a, struct km_str body, struct dp_bootstrap_out *out,
			struct km_buf *err);

/* One POST <cp>/bootstrap. Returns the verdict; on OK <out> is filled. */
enum dp_bootstrap_verdict dp_bootstrap_fetch_once(struct km_arena *a, const struct dp_config *c,
						  const char *body, struct dp_bootstrap_out *out,
						  struct km_buf *err);

/* ---- readiness.c ---- */

struct dp_readiness;
/* Listens on <addr>:<port> serving GET /ready; proxies Envoy admin /ready over
 * <admin_socket> when non-empty. NULL (logged) on failure. */
struct dp_readiness *dp_readiness_start(struct km_loop *loop, const char *addr, int port,
					const char *admin_socket);
int dp_readiness_port(const struct dp_readiness *r);
/* From now on /ready answers 503 TERMINATING. */
void dp_readiness_terminating(struct dp_readiness *r);
void dp_readiness_stop(struct dp_readiness *r);

/* ---- metrics.c ---- */

/* Socket paths as upstream's pkg/core/xds/sockets.go: filepath.Join(<workdir>,
 * <file>) cut to 98 bytes, then ".sock" (Unix paths stop at 104 bytes on
 * some systems). The result lives in <a>. */
const char *dp_metrics_socket_name(struct km_arena *a, const char *workdir, const char *file);
/* <workdir>/kuma-mesh-metric-config.sock: Envoy's system_dynamicconfig listener. */
const char *dp_metrics_config_socket(struct km_arena *a, const char *workdir);
/* <workdir>/kuma-mh-<name>-<mesh>.sock: where the hijacker listens. */
const char *dp_metrics_hijacker_socket(struct km_arena *a, const char *workdir, const char *name,
				       const char *mesh);

/* MeshMetric selector types (upstream api/v1alpha1 SelectorType). */
enum dp_metrics_match {
	DP_METRICS_NEVER, /* an unknown type, or a regex that does not compile */
	DP_METRICS_PREFIX,
	DP_METRICS_REGEX,
	DP_METRICS_EXACT,
	DP_METRICS_CONTAINS,
};

struct dp_metrics_selector {
	enum dp_metrics_match type;
	const char *match;
	void *re; /* REGEX: the compiled regex_t (freed with the config) */
};

/* Profiles named in sidecar.profiles.appendProfiles. */
enum {
	DP_METRICS_PROFILE_ALL = 1,
	DP_METRICS_PROFILE_BASIC = 2,
	DP_METRICS_PROFILE_NONE = 4,
	DP_METRICS_PROFILE_OTHER = 8, /* a name upstream does not know */
};

struct dp_metrics_app {
	const char *name, *path, *address; /* "" when absent */
	uint32_t port;
};

/* One extraLabels pair as written on the wire: <key> made a valid label
 * name, <value> escaped for the text format. */
struct dp_metrics_label {
	const char *key, *value;
};

/* One /meshmetric answer (upstream dpapi.MeshMetricDpConfig), immutable once
 * parsed and refcounted as a whole: the fetcher holds one reference, every
 * scrape in flight another; all of it lives in <a>. */
struct dp_metrics_config {
	int refs;
	struct km_arena *a;
	struct dp_metrics_app *apps;
	size_t napps;
	size_t nprometheus; /* backends of type Prometheus */
	bool include_unused;
	unsigned profiles;     /* DP_METRICS_PROFILE_* bits; 0: none listed (Basic) */
	unsigned effective;    /* the broadest profile listed: one bit of the above */
	struct dp_metrics_selector *include, *exclude;
	size_t ninclude, nexclude;
	struct dp_metrics_label *labels; /* sorted by key */
	size_t nlabels;
};

/* Parses a /meshmetric body. Unknown fields are ignored and null stands for
 * absent, as Go's encoding/json does; a value of the wrong type or bad JSON
 * gives -KM_E_PARSE with the reason in <err>. On success *<out> holds one
 * reference. */
int dp_metrics_config_parse(struct km_str body, struct dp_metrics_config **out,
			    struct km_buf *err);
struct dp_metrics_config *dp_metrics_config_ref(struct dp_metrics_config *c);
void dp_metrics_config_unref(struct dp_metrics_config *c);
/* The Envoy admin path scraped under <c> (NULL: no config yet). */
const char *dp_metrics_envoy_path(const struct dp_metrics_config *c);

/* Rewrites one scraped body in the Prometheus text format into <out>: the
 * families in order of first appearance with their HELP and TYPE lines, and
 * <c>'s extraLabels on every sample. With <envoy> the sidecar profiles pick
 * the families (and Basic drops samples of Kuma's internal clusters). A body
 * that does not parse gives -KM_E_PARSE ("line N: ...") in <err> and nothing
 * in <out>: upstream drops the whole body then. <c> may be NULL (no
 * filtering, no labels). */
int dp_metrics_rewrite(const struct dp_metrics_config *c, bool envoy, struct km_str text,
		       struct km_buf *out, struct km_buf *err);

struct dp_metrics_opts {
	const char *work_dir, *name, *mesh;
	const char *admin_socket;  /* Envoy admin pipe, or "" */
	const char *admin_address; /* else admin at <address>:<port> ("" = 127.0.0.1) */
	int admin_port;
	const char *default_address; /* applications without an address */
	int64_t refresh_ns;          /* fetch interval */
};

struct dp_metrics;
/* Starts polling Envoy's /meshmetric every <o>->refresh_ns on <loop>; the
 * hijacker listens only while a config is present. Strings of <o> are
 * copied. */
struct dp_metrics *dp_metrics_start(struct km_loop *loop, const struct dp_metrics_opts *o);
/* The config in force, or NULL (borrowed: valid until the next fetch). */
const struct dp_metrics_config *dp_metrics_current(const struct dp_metrics *m);
/* Ends every transfer, answers scrapes in flight with 503, removes the
 * hijacker's socket file. NULL is fine. */
void dp_metrics_stop(struct dp_metrics *m);

/* ---- run.c / wait.c ---- */
int dp_run_main(int argc, char **argv, char **envp, const char *log_level);
int dp_wait_main(int argc, char **argv);

/* ---- util.c ---- */
/* base64 (standard alphabet, padding optional, whitespace skipped) into
 * <out>; 0 or -EINVAL. */
int dp_util_base64_decode(struct km_str in, struct km_buf *out);
/* strerror(<e>) as Go prints it (lower-case first letter), in <a>. */
const char *dp_util_strerror(struct km_arena *a, int e);

/* ---- accesslog.c ---- */

/* MeshAccessLog Tcp backends: the named pipe <path> Envoy writes JSON lines
 * to, each forwarded to its TCP address. NULL (logged) when the pipe cannot
 * be made. <loop> NULL: nothing is read (tests feed lines themselves). */
struct dp_accesslog;
struct dp_accesslog *dp_accesslog_start(struct km_loop *loop, const char *path);
/* One line as Envoy writes it, without the newline. */
void dp_accesslog_line(struct dp_accesslog *al, struct km_str line);
/* Closes the connections and removes the pipe. NULL is fine. */
void dp_accesslog_stop(struct dp_accesslog *al);

#endif
