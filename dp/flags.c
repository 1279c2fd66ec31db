/* SPDX-License-Identifier: Apache-2.0 */
/* `kuma-dp run` configuration: one table of flags and KUMA_* variables with
 * upstream's names, parsed like cobra/pflag (flags) and envconfig (variables,
 * applied after the flags so that a set variable wins, as upstream's
 * config.Load does), then validated with upstream's messages. Every string
 * stored in the config is copied into the config's arena. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/str.h"
#include "dp/dp.h"
#include "resource/validate.h"

enum kind { K_STR, K_BOOL, K_DUR, K_U32, K_U64, K_VARS, K_STRS };

struct flag {
	const char *name;  /* long flag without "--", or NULL for env-only settings */
	char shorthand;
	const char *env;   /* variable name, or NULL for flag-only settings */
	const char *field; /* Go field name, for envconfig's error text */
	enum kind kind;
	size_t off;
	const char *usage;
};

#define F(m) offsetof(struct dp_config, m)

/* Root flags (--log-*) are accepted here too: cobra makes them persistent. */
static const struct flag flags[] = {
    {"log-level", 0, NULL, NULL, K_STR, F(log_level), "log level: one of off|info|debug"},
    {"log-output-path", 0, NULL, NULL, K_STRS, 0, "path to the file that will be filled with logs"},
    {"log-max-retained-files", 0, NULL, NULL, K_STRS, 0, "maximum number of the old log files to retain"},
    {"log-max-size", 0, NULL, NULL, K_STRS, 0, "maximum size in megabytes of a log file before it gets rotated"},
    {"log-max-age", 0, NULL, NULL, K_STRS, 0, "maximum number of days to retain old log files"},
    {"name", 0, "KUMA_DATAPLANE_NAME", "Name", K_STR, F(name), "Name of the Dataplane"},
    {"mesh", 0, "KUMA_DATAPLANE_MESH", "Mesh", K_STR, F(mesh), "Mesh that Dataplane belongs to"},
    {"proxy-type", 0, "KUMA_DATAPLANE_PROXY_TYPE", "ProxyType", K_STR, F(proxy_type), "type of the Dataplane (\"dataplane\")"},
    {"drain-time", 0, "KUMA_DATAPLANE_DRAIN_TIME", "DrainTime", K_DUR, F(drain_time), "drain time for Envoy connections on Kuma DP shutdown"},
    {NULL, 0, "KUMA_READINESS_PORT", "ReadinessPort", K_U32, F(readiness_port), NULL},
    {"cp-address", 0, "KUMA_CONTROL_PLANE_URL", "URL", K_STR, F(cp_url), "URL of the Control Plane Dataplane Server. Example: https://localhost:5678"},
    {NULL, 0, "KUMA_CONTROL_PLANE_CA_CERT", "CaCert", K_STR, F(ca_cert), NULL},
    {"ca-cert-file", 0, "KUMA_CONTROL_PLANE_CA_CERT_FILE", "CaCertFile", K_STR, F(ca_cert_file), "Path to CA cert by which connection to the Control Plane will be verified if HTTPS is used"},
    {"skip-verify", 0, "KUMA_CONTROL_PLANE_TLS_SKIP_VERIFY", "TlsSkipVerify", K_BOOL, F(skip_verify), "Skip TLS verification of the Control Plane certificate (insecure, for development/testing only)"},
    {NULL, 0, "KUMA_CONTROL_PLANE_RETRY_BACKOFF", "Backoff", K_DUR, F(retry_backoff), NULL},
    {NULL, 0, "KUMA_CONTROL_PLANE_RETRY_MAX_DURATION", "MaxDuration", K_DUR, F(retry_max), NULL},
    {"binary-path", 0, "KUMA_DATAPLANE_RUNTIME_BINARY_PATH", "BinaryPath", K_STR, F(binary_path), "Binary path of Envoy executable"},
    {"concurrency", 0, "KUMA_DATAPLANE_RUNTIME_CONCURRENCY", "Concurrency", K_U32, F(concurrency), "Number of Envoy worker threads"},
    {"work-dir", 0, "KUMA_DATAPLANE_RUNTIME_WORK_DIR", "WorkDir", K_STR, F(work_dir), "Directory in which Kuma DP config will be generated"},
    {"dataplane-token-file", 0, "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", "TokenPath", K_STR, F(token_path), "Path to a file with dataplane token (use 'kumactl generate dataplane-token' to get one)"},
    {"dataplane-token", 0, "KUMA_DATAPLANE_RUNTIME_TOKEN", "Token", K_STR, F(token), "Dataplane Token"},
    {"dataplane", 0, "KUMA_DATAPLANE_RUNTIME_RESOURCE", "Resource", K_STR, F(resource), "Dataplane template to apply (YAML or JSON)"},
    {"dataplane-file", 'd', "KUMA_DATAPLANE_RUNTIME_RESOURCE_PATH", "ResourcePath", K_STR, F(resource_path), "Path to Dataplane template to apply (YAML or JSON)"},
    {"dataplane-var", 'v', NULL, NULL, K_VARS, 0, "Variables to replace Dataplane template"},
    {"envoy-log-level", 0, "KUMA_DATAPLANE_RUNTIME_ENVOY_LOG_LEVEL", "EnvoyLogLevel", K_STR, F(envoy_log_level), "Envoy log level. Available values are: [trace][debug][info][warning|warn][error][critical][off]. By default it inherits Kuma DP logging level."},
    {"envoy-component-log-level", 0, "KUMA_DATAPLANE_RUNTIME_ENVOY_COMPONENT_LOG_LEVEL", "EnvoyComponentLogLevel", K_STR, F(envoy_component_log_level), "Configures Envoy's --component-log-level"},
    {"metrics-cert-path", 0, "KUMA_DATAPLANE_RUNTIME_METRICS_CERT_PATH", "CertPath", K_STR, F(metrics_cert_path), "A path to the certificate for metrics listener"},
    {"metrics-key-path", 0, "KUMA_DATAPLANE_RUNTIME_METRICS_KEY_PATH", "KeyPath", K_STR, F(metrics_key_path), "A path to the certificate key for metrics listener"},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_DYNAMIC_CONFIGURATION_REFRESH_INTERVAL", "RefreshInterval", K_DUR, F(dynamic_config_refresh), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_DYNAMIC_SYSTEM_CA_PATH", "SystemCaPath", K_STR, F(system_ca_path), NULL},
    {"bind-outbounds", 0, "KUMA_DATAPLANE_RUNTIME_BIND_OUTBOUNDS", "BindOutbounds", K_BOOL, F(bind_outbounds), "If true then dataplane bind outbounds to real addresses"},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_IPV6_ENABLED", "IPv6Enabled", K_BOOL, F(ipv6_enabled), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_STRICT_INBOUND_PORTS_ENABLED", "StrictInboundPortsEnabled", K_BOOL, F(strict_inbound_ports), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_OTEL_PIPE_ENABLED", "OtelPipeEnabled", K_BOOL, F(otel_pipe), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_REUSE_PORT_ENABLED", "ReusePortEnabled", K_BOOL, F(reuse_port), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_SPIRE_SUPPORTED", "Supported", K_BOOL, F(spire_supported), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RUNTIME_SPIRE_SOCKET_PATH", "SocketPath", K_STR, F(spire_socket_path), NULL},
    {NULL, 0, "KUMA_DATAPLANE_RESOURCES_MAX_MEMORY_BYTES", "MaxMemoryBytes", K_U64, F(max_memory_bytes), NULL},
    {"dns-enabled", 0, "KUMA_DNS_ENABLED", "Enabled", K_BOOL, F(dns_enabled), "If true then builtin DNS functionality is enabled and the embedded DNS proxy is started"},
    {"dns-proxy-port", 0, "KUMA_DNS_PROXY_PORT", "ProxyPort", K_U32, F(dns_port), "A port on which the embedded DNS proxy listens."},
    {NULL, 0, "KUMA_APPLICATION_PROBE_PROXY_PORT", "Port", K_U32, F(app_probe_port), NULL},
    {"transparent-proxy", 0, NULL, NULL, K_BOOL, F(transparent_proxy), "Enable transparent proxy with default configuration"},
    {"transparent-proxy-config", 0, NULL, NULL, K_STRS, 0, "Enable transparent proxy with provided configuration"},
};

#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

void dp_flags_defaults(struct dp_config *c, struct km_arena *a)
{
	memset(c, 0, sizeof(*c));
	c->a = a;
	c->log_level = "info";
	c->cp_url = "https://localhost:5678";
	c->retry_backoff = 3 * INT64_C(1000000000);
	c->retry_max = 300 * INT64_C(1000000000);
	c->proxy_type = "dataplane";
	c->drain_time = 30 * INT64_C(1000000000);
	c->readiness_port = 9902;
	c->binary_path = "envoy";
	c->dynamic_config_refresh = 1 * INT64_C(1000000000);
	c->ipv6_enabled = true;
	c->strict_inbound_ports = true;
	/* Upstream defaults the OTel pipe on; this kuma-dp has no OTel receiver
	 * yet, so it does not advertise the feature unless asked to. */
	c->otel_pipe = false;
	c->reuse_port = true;
	c->dns_enabled = true;
	c->dns_port = 15053;
}

void dp_flags_usage(FILE *out)
{
	fprintf(out, "Launch Dataplane (Envoy).\n\nUsage:\n  kuma-dp run [flags]\n\nFlags:\n");
	for (size_t i = 0; i < NFLAGS; i++) {
		if (!flags[i].name)
			continue;
		char head[64];
		if (flags[i].shorthand)
			snprintf(head, sizeof(head), "-%c, --%s", flags[i].shorthand, flags[i].name);
		else
			snprintf(head, sizeof(head), "    --%s", flags[i].name);
		fprintf(out, "  %-36s %s\n", head, flags[i].usage ? flags[i].usage : "");
	}
	fprintf(out, "  %-36s %s\n", "-h, --help", "help for run");
}

static void *field_ptr(struct dp_config *c, const struct flag *f)
{
	return (char *)c + f->off;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const fl[] = {"0", "f", "F", "FALSE", "false", "False"};
	for (size_t i = 0; i < 6; i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, fl[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* Go strconv.ParseUint with <base> (0 = prefix-detected) and <bits>. */
static int parse_uint(const char *s, int base, int bits, uint64_t *out, struct km_buf *why)
{
	const char *p = s;
	if (!*p || *p == '-' || *p == '+') {
		km_buf_printf(why, "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
		return -EINVAL;
	}
	if (base == 0 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'O' ||
					 p[1] == 'b' || p[1] == 'B')) {
		base = (p[1] == 'x' || p[1] == 'X') ? 16 : (p[1] == 'b' || p[1] == 'B') ? 2 : 8;
		p += 2;
	} else if (base == 0) {
		base = (p[0] == '0' && p[1]) ? 8 : 10;
	}
	uint64_t v = 0;
	bool range = false;
	if (!*p) {
		km_buf_printf(why, "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
		return -EINVAL;
	}
	for (; *p; p++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'z')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'Z')
			d = *p - 'A' + 10;
		else if (*p == '_')
			continue;
		else
			d = 99;
		if (d >= base) {
			km_buf_printf(why, "strconv.ParseUint: parsing \"%s\": invalid syntax", s);
			return -EINVAL;
		}
		if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
			range = true;
		else
			v = v * (uint64_t)base + (uint64_t)d;
	}
	if (range || (bits < 64 && v >> bits)) {
		km_buf_printf(why, "strconv.ParseUint: parsing \"%s\": value out of range", s);
		return -ERANGE;
	}
	*out = v;
	return 0;
}

/* Sets <f> from text <v>; on failure writes the parser's reason into <why>.
 * <base> is 10 for pflag, 0 for envconfig. */
static int set_value(struct dp_config *c, const struct flag *f, const char *v, int base,
		     bool first_var, struct km_buf *why)
{
	switch (f->kind) {
	case K_STR:
		*(const char **)field_ptr(c, f) = km_arena_strdup(c->a, v);
		return 0;
	case K_STRS:
		return 0; /* accepted, not used */
	case K_BOOL:
		if (parse_bool(v, (bool *)field_ptr(c, f)) != 0) {
			km_buf_printf(why, "strconv.ParseBool: parsing \"%s\": invalid syntax", v);
			return -EINVAL;
		}
		return 0;
	case K_DUR: {
		int64_t ns;
		if (km_duration_parse(km_str_c(v), &ns) != 0) {
			km_buf_printf(why, "time: invalid duration \"%s\"", v);
			return -EINVAL;
		}
		*(int64_t *)field_ptr(c, f) = ns;
		return 0;
	}
	case K_U32: {
		uint64_t u;
		int rc = parse_uint(v, base, 32, &u, why);
		if (rc)
			return rc;
		*(uint32_t *)field_ptr(c, f) = (uint32_t)u;
		return 0;
	}
	case K_U64: {
		uint64_t u;
		int rc = parse_uint(v, base, 64, &u, why);
		if (rc)
			return rc;
		*(uint64_t *)field_ptr(c, f) = u;
		return 0;
	}
	case K_VARS: {
		/* pflag stringToString: comma-separated k=v pairs; repeats merge */
		if (first_var)
			c->nvars = 0;
		const char *p = v;
		while (1) {
			const char *comma = strchr(p, ',');
			size_t n = comma ? (size_t)(comma - p) : strlen(p);
			const char *eq = memchr(p, '=', n);
			if (!eq) {
				km_buf_printf(why, "%.*s must be formatted as key=value", (int)n, p);
				return -EINVAL;
			}
			const char *key = km_arena_strndup(c->a, p, (size_t)(eq - p));
			const char *val = km_arena_strndup(c->a, eq + 1, n - (size_t)(eq - p) - 1);
			size_t i;
			for (i = 0; i < c->nvars; i++)
				if (strcmp(c->vars[i].key, key) == 0)
					break;
			if (i == c->nvars) {
				c->vars = km_arena_realloc(c->a, c->vars, c->nvars * sizeof(*c->vars),
							   (c->nvars + 1) * sizeof(*c->vars));
				c->nvars++;
				c->vars[i].key = key;
			}
			c->vars[i].value = val;
			if (!comma)
				break;
			p = comma + 1;
		}
		return 0;
	}
	}
	return -EINVAL;
}

static const char *go_type(enum kind k)
{
	switch (k) {
	case K_BOOL:
		return "bool";
	case K_DUR:
		return "types.Duration";
	case K_U32:
		return "uint32";
	case K_U64:
		return "uint64";
	default:
		return "string";
	}
}

static const char *flag_label(struct km_arena *a, const struct flag *f)
{
	if (f->shorthand)
		return km_arena_printf(a, "-%c, --%s", f->shorthand, f->name);
	return km_arena_printf(a, "--%s", f->name);
}

static int apply_flag(struct dp_config *c, const struct flag *f, const char *v, bool *vars_seen,
		      struct km_buf *err)
{
	struct km_buf why = KM_BUF_INIT;
	bool first = f->kind == K_VARS && !*vars_seen;
	if (f->kind == K_VARS)
		*vars_seen = true;
	int rc = set_value(c, f, v, 10, first, &why);
	if (rc)
		km_buf_printf(err, "invalid argument \"%s\" for \"%s\" flag: %s", v,
			      flag_label(c->a, f), km_buf_cstr(&why));
	km_buf_fini(&why);
	return rc ? -EINVAL : 0;
}

static const struct flag *find_long(const char *name, size_t n)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags[i].name && strlen(flags[i].name) == n && memcmp(flags[i].name, name, n) == 0)
			return &flags[i];
	return NULL;
}

static const struct flag *find_short(char ch)
{
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags[i].shorthand == ch)
			return &flags[i];
	return NULL;
}

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

int dp_flags_parse(struct dp_config *c, int argc, char **argv, char **envp, struct km_buf *err)
{
	bool vars_seen = false;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--") == 0)
			break;
		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			dp_flags_usage(stdout);
			return 1;
		}
		if (arg[0] != '-' || arg[1] == 0)
			continue; /* positional arguments are ignored, as cobra does for run */
		if (arg[1] == '-') {
			const char *name = arg + 2;
			const char *eq = strchr(name, '=');
			size_t n = eq ? (size_t)(eq - name) : strlen(name);
			const struct flag *f = find_long(name, n);
			if (!f) {
				km_buf_printf(err, "unknown flag: --%.*s", (int)n, name);
				return -EINVAL;
			}
			const char *v;
			if (eq)
				v = eq + 1;
			else if (f->kind == K_BOOL)
				v = "true";
			else if (i + 1 < argc)
				v = argv[++i];
			else {
				km_buf_printf(err, "flag needs an argument: --%s", f->name);
				return -EINVAL;
			}
			if (apply_flag(c, f, v, &vars_seen, err))
				return -EINVAL;
			continue;
		}
		/* shorthand: -d file, -dfile, -d=file */
		const struct flag *f = find_short(arg[1]);
		if (!f) {
			km_buf_printf(err, "unknown shorthand flag: '%c' in %s", arg[1], arg);
			return -EINVAL;
		}
		const char *v;
		if (arg[2] == '=')
			v = arg + 3;
		else if (arg[2])
			v = arg + 2;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			km_buf_printf(err, "flag needs an argument: '%c' in -%c", arg[1], arg[1]);
			return -EINVAL;
		}
		if (apply_flag(c, f, v, &vars_seen, err))
			return -EINVAL;
	}
	/* environment after flags: envconfig overrides whatever is set */
	for (size_t i = 0; i < NFLAGS; i++) {
		const struct flag *f = &flags[i];
		if (!f->env)
			continue;
		const char *v = env_get(envp, f->env);
		if (!v)
			continue;
		struct km_buf why = KM_BUF_INIT;
		int rc = set_value(c, f, v, 0, false, &why);
		if (rc)
			km_buf_printf(err,
				      "processing environment variables failed: envconfig.Process: "
				      "assigning %s to %s: converting '%s' to type %s. details: %s",
				      f->env, f->field, v, go_type(f->kind), km_buf_cstr(&why));
		km_buf_fini(&why);
		if (rc)
			return -EBADMSG;
	}
	return 0;
}

/* Joins <part> to <acc> with multierr's "; ". */
static void join(struct km_buf *acc, const char *part)
{
	if (acc->len)
		km_buf_puts(acc, "; ");
	km_buf_puts(acc, part);
}

int dp_flags_validate(const struct dp_config *c, struct km_buf *err)
{
	struct km_buf all = KM_BUF_INIT, part = KM_BUF_INIT;
	/* .ControlPlane */
	if (c->retry_backoff <= 0)
		join(&part, ".Retry is not valid: .Backoff must be a positive duration");
	else if (c->retry_max <= 0)
		join(&part, ".Retry is not valid: .MaxDuration must be a positive duration");
	if (part.len) {
		km_buf_printf(&all, ".ControlPlane is not valid: %s", km_buf_cstr(&part));
		km_buf_reset(&part);
	}
	/* .Dataplane */
	bool tmpl = (c->resource && *c->resource) || (c->resource_path && *c->resource_path);
	if (!tmpl) {
		if (strcmp(c->proxy_type, "dataplane") != 0) {
			char m[256];
			snprintf(m, sizeof(m), ".ProxyType \"%s\" is not supported", c->proxy_type);
			join(&part, m);
		}
		if (!c->mesh || !*c->mesh)
			join(&part, ".Mesh must be non-empty");
		if (!c->name || !*c->name)
			join(&part, ".Name must be non-empty");
	}
	if (c->drain_time <= 0)
		join(&part, ".DrainTime must be positive");
	if (!tmpl && (c->readiness_port == 0 || c->readiness_port > 65535))
		join(&part, ".ReadinessPort has to be in (0, 65535] range");
	if (part.len) {
		struct km_buf t = KM_BUF_INIT;
		km_buf_printf(&t, ".Dataplane is not valid: %s", km_buf_cstr(&part));
		join(&all, km_buf_cstr(&t));
		km_buf_fini(&t);
		km_buf_reset(&part);
	}
	/* .DataplaneRuntime */
	if (!c->binary_path || !*c->binary_path)
		join(&all, ".DataplaneRuntime is not valid: .BinaryPath must be non-empty");
	/* .DNS */
	if (c->dns_enabled && (c->dns_port == 0 || c->dns_port > 65535))
		join(&all, ".DNS is not valid: .ProxyPort has to be in (0, 65535] range");
	int rc = 0;
	if (all.len) {
		km_buf_printf(err, "configuration validation failed: %s", km_buf_cstr(&all));
		rc = -EINVAL;
	}
	km_buf_fini(&all);
	km_buf_fini(&part);
	return rc;
}
