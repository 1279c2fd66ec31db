/* SPDX-License-Identifier: Apache-2.0 */
/* kuma-dp: the data-plane agent. One run loads its configuration from flags
 * and KUMA_* variables (flags.c), renders the Dataplane template (template.c),
 * fetches the Envoy bootstrap from the control plane (bootstrap.c), runs and
 * supervises Envoy (envoy.c) and answers readiness probes (readiness.c).
 * Everything a run allocates lives in the run's arena (struct dp_config.a). */
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

/* ---- run.c / wait.c ---- */
int dp_run_main(int argc, char **argv, char **envp, const char *log_level);
int dp_wait_main(int argc, char **argv);

/* ---- util.c ---- */
/* base64 (standard alphabet, padding optional, whitespace skipped) into
 * <out>; 0 or -EINVAL. */
int dp_util_base64_decode(struct km_str in, struct km_buf *out);
/* strerror(<e>) as Go prints it (lower-case first letter), in <a>. */
const char *dp_util_strerror(struct km_arena *a, int e);

#endif
